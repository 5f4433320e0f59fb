"""fuel.Generator: CSV + image files -> HDF5, read back through the layout's Reservoir.

Everything here is engine-neutral (NumPy/OpenCV/h5py), hence marked `once`. Images are small
synthetic arrays written with OpenCV/Pillow into tmp_path; pools are real worker processes.
"""

from __future__ import annotations

import _thread
import csv
import io
import multiprocessing
import os
import signal
import threading
import time

import cv2
import h5py
import numpy as np
import pytest
from PIL import ExifTags, Image, ImageOps

from nebulae.fuel import pack
from nebulae.fuel.generator import Generator, shard_paths
from nebulae.fuel.layout import Reservoir
from nebulae.fuel.progress import Bar
from tests.conftest import run_python

pytestmark = pytest.mark.once

ORIENTATION, MAKE, MODEL, DATE_ORIGINAL = 0x0112, 0x010F, 0x0110, 0x9003


def smooth(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    """A photo-like image: cubic-upsampled coarse noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (4, 4, channels), dtype=np.uint8)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, channels)


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def save(path, image: np.ndarray, fmt: str | None = None, exif=None, mode: str | None = None, **kw) -> str:
    """Write an RGB (or grey) array with Pillow; `mode` converts first (e.g. 'P', 'RGBA')."""
    pil = Image.fromarray(image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image)
    if mode:
        pil = pil.convert(mode)
    if exif is not None:
        kw["exif"] = exif
    pil.save(path, fmt, **kw)
    return str(path)


def write_csv(path, header: list[str], rows: list[list]) -> str:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def image_set(tmp_path, n: int, h: int = 16, w: int = 16, fmt: str = "png") -> list[str]:
    """n distinct images img_<i>.<fmt> in tmp_path; returns their names."""
    names = []
    for i in range(n):
        name = f"img_{i}.{fmt}"
        save(tmp_path / name, noise(h, w, seed=i) if fmt == "png" else smooth(h, w, seed=i))
        names.append(name)
    return names


def exif_with(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[MAKE], exif[MODEL] = "Nebulae", "Test Camera"
    exif.get_ifd(ExifTags.IFD.Exif)[DATE_ORIGINAL] = "2024:05:06 07:08:09"
    if orientation is not None:
        exif[ORIENTATION] = orientation
    return exif


def leftovers(folder) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


# ---------------------------------------------------------------------------------------------
# round trips


def test_every_scalar_dtype_round_trips(tmp_path):
    names = image_set(tmp_path, 3)
    header = ["image", "u8", "u16", "u32", "i8", "i16", "i32", "i64", "f16", "f32", "f64", "flag", "text"]
    dtypes = ["vuint8", "uint8", "uint16", "uint32", "int8", "int16", "int32", "int64"]
    dtypes += ["float16", "float32", "float64", "bool", "str"]
    rows = [
        [names[0], 0, 0, 0, -128, -32768, -(2**31), -(2**63), 0.5, 1.25, 1e-300, "true", "plain"],
        [names[1], 255, 65535, 2**32 - 1, 127, 32767, 2**31 - 1, 2**63 - 1, -2.0, -3.5, 1e300, "0", 'a, b "c"'],
        [names[2], 7, 8, 9, 0, 1, 2, 3, 65504, 7.0, -0.1, "No", "ünï cødé"],
    ]
    write_csv(tmp_path / "list.csv", header, rows)
    gen = Generator(file_dir=tmp_path, file_list=tmp_path / "list.csv", dtype=dtypes)
    assert gen.generate(tmp_path / "out.hdf5", encode="png") == [str(tmp_path / "out.hdf5")]
    res = Reservoir(tmp_path / "out.hdf5")
    assert res.keys() == header and len(res) == 3
    assert res.meta == {"encode": "png", "height": 0, "width": 0, "channel": 3}
    bools = [True, False, False]
    for i, row in enumerate(rows):
        for name, dtype, value in zip(header[1:-2], dtypes[1:-2], row[1:-2]):
            got = res[name][i]
            assert got.dtype == np.dtype(dtype), name
            assert got == np.asarray(value, dtype=dtype), (name, i)
        assert res["flag"][i].dtype == np.bool_ and bool(res["flag"][i]) is bools[i]
        assert res["text"][i] == row[-1]
        np.testing.assert_array_equal(res["image"][i], np.asarray(Image.open(tmp_path / names[i])))


def test_vlen_dtypes_ragged_empty_and_equal_lengths(tmp_path):
    names = image_set(tmp_path, 3)
    header = ["image", "labels", "boxes", "flags"]
    dtypes = ["vuint8", "vint64", "vfloat32", "vbool"]
    ragged = [[names[0], "1,2,3", "0.5", "yes,no"], [names[1], "", "1,2,3,4", ""], [names[2], "9", "", "TRUE"]]
    equal = [[n, "4,5", "1.5,2.5", "1,0"] for n in names]  # equal lengths broke the original's h5py write
    for tag, rows in (("ragged", ragged), ("equal", equal)):
        write_csv(tmp_path / f"{tag}.csv", header, rows)
        Generator(file_list=tmp_path / f"{tag}.csv", dtype=dtypes).generate(tmp_path / f"{tag}.h5", encode="PNG")
        res = Reservoir(tmp_path / f"{tag}.h5")
        for i, row in enumerate(rows):
            for name, dtype, cell in zip(header[1:], dtypes[1:], row[1:]):
                got = res[name][i]
                assert got.dtype == np.dtype(dtype[1:]) and got.ndim == 1, (tag, name)
                pieces = [p for p in cell.split(",") if p]
                if dtype == "vbool":
                    expect = [p.lower() in ("yes", "true", "1") for p in pieces]
                else:
                    expect = np.asarray([float(p) for p in pieces], dtype=dtype[1:])
                np.testing.assert_array_equal(got, expect, err_msg=f"{tag} {name} row {i}")


def test_is_seq_with_ragged_frame_counts(tmp_path):
    frames = image_set(tmp_path, 6)
    groups = [frames[0:1], frames[1:4], frames[4:6]]
    rows = [[",".join(g), i] for i, g in enumerate(groups)]
    write_csv(tmp_path / "seq.csv", ["video", "label"], rows)
    gen = Generator(file_dir=tmp_path, file_list="seq.csv", dtype=["vuint8", "int64"], is_seq=True)
    gen.generate(tmp_path / "seq.h5", encode="png", workers=2)
    res = Reservoir(tmp_path / "seq.h5")
    assert res.specs[0].kind == "frames"
    for i, group in enumerate(groups):
        video = res["video"][i]
        assert video.shape == (len(group), 16, 16, 3)
        for frame, name in zip(video, group):
            np.testing.assert_array_equal(frame, np.asarray(Image.open(tmp_path / name)))
        assert res["label"][i] == i


def test_shards_exact_count_non_empty_and_in_order(tmp_path):
    names = image_set(tmp_path, 7)
    write_csv(tmp_path / "list.csv", ["image", "idx"], [[n, i] for i, n in enumerate(names)])
    gen = Generator(file_dir=tmp_path, file_list=tmp_path / "list.csv", dtype=["vuint8", "int32"], encode="png")
    paths = gen.generate(tmp_path / "data.hdf5", shards=3)
    assert paths == shard_paths(tmp_path / "data.hdf5", 3)
    assert [os.path.basename(p) for p in paths] == ["data_1of3.hdf5", "data_2of3.hdf5", "data_3of3.hdf5"]
    sizes, seen = [], []
    for path in paths:
        res = Reservoir(path)
        sizes.append(len(res))
        for i in range(len(res)):
            seen.append(int(res["idx"][i]))
            np.testing.assert_array_equal(res["image"][i], noise(16, 16, seed=seen[-1]))
    assert sizes == [2, 2, 3] and seen == list(range(7))
    assert not os.path.exists(tmp_path / "data.hdf5")
    assert os.path.basename(shard_paths("d/x.h5", 12)[0]) == "x_01of12.h5"
    with pytest.raises(ValueError, match="shards=8 but .* only 7 data rows"):
        gen.generate(tmp_path / "more.hdf5", shards=8)
    assert not [n for n in os.listdir(tmp_path) if n.startswith("more")]


def test_png_is_pixel_exact_and_converts_modes(tmp_path):
    rgb = noise(12, 10, seed=1)
    save(tmp_path / "rgb.png", rgb)
    save(tmp_path / "rgba.png", np.dstack([rgb, np.full((12, 10), 77, np.uint8)]))
    save(tmp_path / "pal.png", rgb, mode="P")
    save(tmp_path / "grey.png", rgb, mode="L")
    save(tmp_path / "rgb.bmp", rgb)
    cv2.imwrite(str(tmp_path / "deep.png"), (rgb[:, :, ::-1].astype(np.uint16) * 257))  # 16-bit PNG
    files = ["rgb.png", "rgba.png", "pal.png", "grey.png", "rgb.bmp", "deep.png"]
    write_csv(tmp_path / "list.csv", ["image"], [[f] for f in files])
    Generator(file_list=tmp_path / "list.csv", dtype=["vuint8"]).generate(tmp_path / "o.h5", encode="PNG")
    res = Reservoir(tmp_path / "o.h5")
    expect = [rgb, rgb, np.asarray(Image.open(tmp_path / "pal.png").convert("RGB"))]
    expect += [np.repeat(np.asarray(Image.open(tmp_path / "grey.png"))[:, :, None], 3, axis=2), rgb, rgb]
    for i, (name, want) in enumerate(zip(files, expect)):
        got = res["image"][i]
        assert got.shape == (12, 10, 3) and got.dtype == np.uint8, name
        np.testing.assert_array_equal(got, want, err_msg=name)
        assert res["image"].raw(i)[:8].tobytes() == b"\x89PNG\r\n\x1a\n"


def test_jpeg_is_within_tolerance(tmp_path):
    image = smooth(64, 64, seed=3)
    save(tmp_path / "a.png", image)
    write_csv(tmp_path / "list.csv", ["image"], [["a.png"]])
    Generator(file_list=tmp_path / "list.csv", dtype=["vuint8"]).generate(tmp_path / "o.h5", encode="jpeg")
    res = Reservoir(tmp_path / "o.h5")
    assert res["image"].raw(0)[:2].tobytes() == b"\xff\xd8" and res.meta["encode"] == "jpeg"
    err = np.abs(res["image"][0].astype(int) - image).mean()
    assert 0 < err < 3, err


@pytest.mark.parametrize("encode", ["PNG", "JPEG"])
def test_channel_1_makes_grey(tmp_path, encode):
    image = smooth(20, 24, seed=4)
    save(tmp_path / "a.png", image)
    save(tmp_path / "b.jpg", image, quality=98)
    write_csv(tmp_path / "list.csv", ["image"], [["a.png"], ["b.jpg"]])
    Generator(file_list=tmp_path / "list.csv", dtype=["vuint8"]).generate(tmp_path / "o.h5", channel=1, encode=encode)
    res = Reservoir(tmp_path / "o.h5")
    assert res.meta["channel"] == 1
    want = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(int)
    for i in range(2):
        got = res["image"][i]
        assert got.shape == (20, 24, 1)
        with Image.open(io.BytesIO(res["image"].raw(i).tobytes())) as stored:
            assert stored.mode == "L"
        assert np.abs(got[:, :, 0].astype(int) - want).mean() < 2.0


def test_resize_down_and_up(tmp_path):
    big, small = noise(40, 60, seed=5), noise(10, 8, seed=6)
    photo = smooth(256, 192, seed=7)
    save(tmp_path / "big.png", big)
    save(tmp_path / "small.png", small)
    save(tmp_path / "photo.jpg", photo, quality=98)
    write_csv(tmp_path / "list.csv", ["image"], [["big.png"], ["small.png"], ["photo.jpg"]])
    gen = Generator(file_list=tmp_path / "list.csv", dtype=["vuint8"], encode="png")
    gen.generate(tmp_path / "o.h5", height=20, width=30)
    res = Reservoir(tmp_path / "o.h5")
    assert res.meta["height"] == 20 and res.meta["width"] == 30
    assert all(res["image"][i].shape == (20, 30, 3) for i in range(3))
    np.testing.assert_array_equal(res["image"][0], cv2.resize(big, (30, 20), interpolation=cv2.INTER_AREA))
    np.testing.assert_array_equal(res["image"][1], cv2.resize(small, (30, 20), interpolation=cv2.INTER_LINEAR))
    # the JPEG is decoded at a reduced DCT scale first: close to, not equal to, a full-size INTER_AREA
    ref = cv2.resize(photo, (30, 20), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(res["image"][2].astype(int) - ref).mean() < 2.5
    with pytest.raises(ValueError, match="both be > 0"):
        gen.generate(tmp_path / "p.h5", height=20, width=0)


# ---------------------------------------------------------------------------------------------
# EXIF


def oriented_sources(tmp_path, fmt: str) -> list[str]:
    """One asymmetric 24x40 image per EXIF orientation 1..8 (PNG: eXIf chunk; JPEG: APP1)."""
    base = noise(24, 40, seed=8) if fmt == "png" else smooth(24, 40, seed=8)
    kw = {"quality": 98} if fmt == "jpg" else {}
    return [save(tmp_path / f"o{o}.{fmt}", base, exif=exif_with(o), **kw) for o in range(1, 9)]


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_exif_orientation_applied_and_stripped(tmp_path, fmt):
    files = oriented_sources(tmp_path, fmt)
    write_csv(tmp_path / "list.csv", ["image"], [[os.path.basename(f)] for f in files])
    gen = Generator(file_list=tmp_path / "list.csv", dtype=["vuint8"], keep_exif=False, encode="png")
    gen.generate(tmp_path / "o.h5")
    res = Reservoir(tmp_path / "o.h5")
    for i, path in enumerate(files):
        with Image.open(path) as src:
            assert src.getexif()[ORIENTATION] == i + 1
            want = np.asarray(ImageOps.exif_transpose(src).convert("RGB"))
        got = res["image"][i]
        assert got.shape == ((40, 24, 3) if i + 1 >= 5 else (24, 40, 3)), i + 1
        if fmt == "png":
            np.testing.assert_array_equal(got, want, err_msg=f"orientation {i + 1}")
        else:
            assert np.abs(got.astype(int) - want).mean() < 1.0, i + 1
        with Image.open(io.BytesIO(res["image"].raw(i).tobytes())) as stored:
            assert len(stored.getexif()) == 0


@pytest.mark.parametrize("encode", ["JPEG", "PNG"])
def test_exif_kept_without_orientation(tmp_path, encode):
    files = oriented_sources(tmp_path, "jpg")
    write_csv(tmp_path / "list.csv", ["image"], [["o1.jpg"], ["o6.jpg"]])
    Generator(file_list=tmp_path / "list.csv", dtype=["vuint8"]).generate(tmp_path / "o.h5", encode=encode)
    res = Reservoir(tmp_path / "o.h5")
    for i, path in enumerate([files[0], files[5]]):
        with Image.open(io.BytesIO(res["image"].raw(i).tobytes())) as stored:
            assert stored.format == encode
            exif = stored.getexif()
            assert exif[MAKE] == "Nebulae" and exif[MODEL] == "Test Camera"
            assert exif.get_ifd(ExifTags.IFD.Exif)[DATE_ORIGINAL] == "2024:05:06 07:08:09"
            assert exif.get(ORIENTATION, 1) == 1
            with Image.open(path) as src:
                want = np.asarray(ImageOps.exif_transpose(src))
            assert stored.size == (want.shape[1], want.shape[0])
        # OpenCV honours orientation tags: the stored pixels must already be upright
        assert np.abs(res["image"][i].astype(int) - want).mean() < 3.0
    with Image.open(files[0]) as src:
        raw = src.info["exif"]
    if encode == "JPEG":
        assert raw in res["image"].raw(0).tobytes()  # no orientation to undo: the EXIF block is kept verbatim


# ---------------------------------------------------------------------------------------------
# settings


def test_modify_and_call_time_settings(tmp_path):
    names = image_set(tmp_path, 2, h=24, w=24)
    write_csv(tmp_path / "list.csv", ["image", "label"], [[n, i] for i, n in enumerate(names)])
    gen = Generator(config={"file_list": str(tmp_path / "list.csv"), "dtype": ["vuint8", "int64"], "height": 8})
    assert gen.settings["height"] == 8 and gen.settings["file_dir"] is None
    gen.modify(height=16, width=12)
    gen.generate(tmp_path / "a.h5")
    assert Reservoir(tmp_path / "a.h5")["image"][0].shape == (16, 12, 3)
    gen.modify(config={"height": 10, "width": 10, "encode": "png", "channel": 1}, height=99)
    gen.generate(tmp_path / "b.h5", width=6)  # call-time values apply to this call only
    res = Reservoir(tmp_path / "b.h5")
    assert res["image"][1].shape == (10, 6, 1) and res.meta["encode"] == "png"
    assert gen.settings["width"] == 10 and gen.settings["encode"] == "PNG"
    gen.modify(dtype=["vuint8", "float32"], file_dir=tmp_path, file_list="list.csv")
    gen.generate(tmp_path / "c.h5")
    assert Reservoir(tmp_path / "c.h5")["label"][1].dtype == np.float32


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hieght": 3}, "unknown Generator setting 'hieght' \\(did you mean 'height'\\?\\)"),
        ({"channel": 2}, "channel must be 1 \\(grey\\) or 3"),
        ({"encode": "webp"}, "encode must be 'JPEG' or 'PNG'"),
        ({"shards": 0}, "shards must be an integer >= 1"),
        ({"height": -1}, "height must be an integer >= 0"),
        ({"dtype": ["vunit8", "int8"]}, "unknown dtype 'vunit8' \\(did you mean 'vuint8'\\?\\).*valid dtypes: uint8"),
        ({"dtype": ["vuint8", "complex64"]}, "unknown dtype 'complex64'"),
        ({"dtype": ["vuint8", "vstr"]}, "'vstr' is not supported"),
        ({"keep_exif": "yes"}, "keep_exif must be True or False"),
    ],
)
def test_bad_settings_are_refused(change, message):
    gen = Generator(file_list="x.csv", dtype=["vuint8"])
    with pytest.raises((ValueError, TypeError), match=message):
        gen.modify(**change)
    with pytest.raises((ValueError, TypeError), match=message):
        Generator(config={"file_list": "x.csv", **change})
    assert gen.settings["channel"] == 3 and gen.settings["dtype"] == ["vuint8"]  # unchanged after a refusal


# ---------------------------------------------------------------------------------------------
# bad input: an error naming line and column; the destination stays as it was, no temp files


def bad_case(tmp_path, case: str):
    """(csv path, dtype, expected message regex) for one kind of bad input."""
    names = image_set(tmp_path, 4)
    rows = [[n, i] for i, n in enumerate(names)]
    header = ["image", "label"]
    match = None
    if case == "missing file":
        rows[1][0] = "nope.png"
        match = r"line 3, column 'image': image file not found: .*nope\.png"
    elif case == "undecodable":
        (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
        rows[2][0] = "junk.jpg"
        match = r"line 4, column 'image': cannot decode image .*junk\.jpg"
    elif case == "truncated jpeg":
        data = (tmp_path / save(tmp_path / "t.jpg", smooth(32, 32))).read_bytes()
        (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
        rows[3][0] = "t.jpg"
        match = r"line 5, column 'image': cannot decode image .*t\.jpg"
    elif case == "column count":
        rows[2].append("extra")
        match = r"line 4: expected 2 columns \(image, label\), got 3"
    elif case == "not an int":
        rows[1][1] = "abc"
        match = r"line 3, column 'label': cannot cast to int8: 'abc' is not an integer"
    elif case == "out of range":
        rows[3][1] = "300"
        match = r"line 5, column 'label': cannot cast to int8: 300 is out of range"
    elif case == "scalar with commas":
        rows[0][1] = "1,2"
        match = r"line 2, column 'label': .*use dtype 'vint8'"
    elif case == "header only":
        rows = []
        match = r"has a header \(image, label\) but no data rows"
    elif case == "duplicate header":
        header = ["image", "image"]
        match = r"line 1: duplicate header name 'image' \(columns 1 and 2\)"
    elif case == "dtype count":
        header, rows = ["image", "label", "extra"], [[*r, 0] for r in rows]
        match = r"2 dtypes for the 3 columns"
    path = write_csv(tmp_path / "list.csv", header, rows)
    if case == "empty file":
        (tmp_path / "list.csv").write_text("")
        match = r"list\.csv is empty"
    return path, ["vuint8", "int8"], match


BAD = [
    "missing file",
    "undecodable",
    "truncated jpeg",
    "column count",
    "not an int",
    "out of range",
    "scalar with commas",
    "header only",
    "empty file",
    "duplicate header",
    "dtype count",
]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_names_line_and_column_and_leaves_destination(tmp_path, case):
    path, dtype, match = bad_case(tmp_path, case)
    dst = tmp_path / "out" / "data.hdf5"
    dst.parent.mkdir()
    dst.write_bytes(b"previous content")
    for shards in (1, 2):
        with pytest.raises(ValueError, match=match):
            Generator(file_list=path, dtype=dtype).generate(dst, shards=shards, workers=0)
        assert dst.read_bytes() == b"previous content"
        assert sorted(os.listdir(dst.parent)) == ["data.hdf5"]


def test_bad_image_found_by_a_worker_late_removes_finished_shards(tmp_path):
    names = image_set(tmp_path, 160, h=8, w=8, fmt="jpg")
    (tmp_path / "junk.jpg").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    names[150] = "junk.jpg"
    write_csv(tmp_path / "list.csv", ["image", "label"], [[n, i] for i, n in enumerate(names)])
    dst = tmp_path / "out" / "data.h5"
    dst.parent.mkdir()
    for path in shard_paths(dst, 3):
        with open(path, "wb") as f:
            f.write(b"old shard")
    with pytest.raises(ValueError, match=r"line 152, column 'image': cannot decode image .*junk\.jpg"):
        Generator(file_list=tmp_path / "list.csv", dtype=["vuint8", "int64"]).generate(dst, shards=3, workers=2)
    for path in shard_paths(dst, 3):
        with open(path, "rb") as f:
            assert f.read() == b"old shard"
    assert leftovers(dst.parent) == []


def test_a_killed_worker_fails_cleanly(tmp_path):
    names = image_set(tmp_path, 400, h=64, w=64, fmt="jpg")
    write_csv(tmp_path / "list.csv", ["image"], [[n] for n in names])
    dst = tmp_path / "data.h5"
    dst.write_bytes(b"previous")
    gen = Generator(file_list=tmp_path / "list.csv", dtype=["vuint8"], encode="png", height=128, width=128)
    outcome = {}

    def target():
        try:
            outcome["paths"] = gen.generate(dst, workers=2)
        except BaseException as err:
            outcome["error"] = err

    thread = threading.Thread(target=target)
    thread.start()
    deadline = time.monotonic() + 30
    while not multiprocessing.active_children() and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.001)
    victims = multiprocessing.active_children()
    assert victims, "the pool never started"
    os.kill(victims[0].pid, signal.SIGKILL)
    thread.join(60)
    assert "paths" not in outcome, "generate finished before the worker was killed; enlarge the data"
    assert isinstance(outcome["error"], RuntimeError) and "worker process died" in str(outcome["error"])
    assert dst.read_bytes() == b"previous" and leftovers(tmp_path) == []


def test_ctrl_c_while_packing_leaves_nothing(tmp_path):
    names = image_set(tmp_path, 400, h=64, w=64, fmt="jpg")
    write_csv(tmp_path / "list.csv", ["image"], [[n] for n in names])
    dst = tmp_path / "data.h5"
    dst.write_bytes(b"previous")
    gen = Generator(file_list=tmp_path / "list.csv", dtype=["vuint8"], encode="png", height=128, width=128)

    def interrupt():  # Ctrl-C reaches the main thread as KeyboardInterrupt once the pool runs
        # wait for both workers: an interrupt landing while the main thread is still forking is swallowed by
        # the interpreter's at-fork hooks ("Exception ignored in _releaseLock") and never reaches generate
        deadline = time.monotonic() + 30
        while len(multiprocessing.active_children()) < 2 and time.monotonic() < deadline:
            time.sleep(0.001)
        _thread.interrupt_main()

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        gen.generate(dst, shards=2, workers=2)
    assert dst.read_bytes() == b"previous" and leftovers(tmp_path) == []
    assert not [n for n in os.listdir(tmp_path) if n.startswith("data_")]


def test_worker_pool_writes_the_same_file_as_one_process(tmp_path):
    names = image_set(tmp_path, 150, h=12, w=12, fmt="jpg")
    write_csv(tmp_path / "list.csv", ["image", "label"], [[n, i % 5] for i, n in enumerate(names)])
    gen = Generator(file_list=tmp_path / "list.csv", dtype=["vuint8", "uint8"], height=10, width=14)
    gen.generate(tmp_path / "a.h5", workers=0)
    gen.generate(tmp_path / "b.h5", workers=2)
    with h5py.File(tmp_path / "a.h5") as a, h5py.File(tmp_path / "b.h5") as b:
        for key in ("image/blob", "image/offsets", "label"):
            np.testing.assert_array_equal(a[key][...], b[key][...])


def test_workers_start_without_fork_once_jax_is_imported(tmp_path):
    names = image_set(tmp_path, 100, h=8, w=8, fmt="jpg")
    write_csv(tmp_path / "list.csv", ["image"], [[n] for n in names])
    code = f"""
import jax, sys
from nebulae.fuel import generator
method = generator._mp_context().get_start_method()
gen = generator.Generator(file_list={str(tmp_path / "list.csv")!r}, dtype=["vuint8"], encode="png")
gen.generate({str(tmp_path / "o.h5")!r}, workers=2)
print(method, jax.__name__)
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["forkserver", "jax"]
    res = Reservoir(tmp_path / "o.h5")
    assert len(res) == 100 and res["image"][99].shape == (8, 8, 3)


def test_csv_line_numbers_count_blank_lines_and_multiline_cells(tmp_path):
    names = image_set(tmp_path, 3)
    text = f'image,note,label\r\n{names[0]},"two\nlines",1\r\n\r\n{names[1]},x,2\r\n{names[2]},y,zz\r\n'
    (tmp_path / "list.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())  # with a UTF-8 BOM
    gen = Generator(file_list=tmp_path / "list.csv", dtype=["vuint8", "str", "int64"], encode="png")
    with pytest.raises(ValueError, match=r"line 6, column 'label': cannot cast to int64: 'zz' is not an integer"):
        gen.generate(tmp_path / "o.h5")
    (tmp_path / "list.csv").write_bytes(text.replace(",zz", ",3").encode())
    gen.generate(tmp_path / "o.h5")
    res = Reservoir(tmp_path / "o.h5")
    assert res.keys() == ["image", "note", "label"] and res["note"][0] == "two\nlines" and res["label"][2] == 3


def test_progress_bar_draws_on_stderr_when_enabled(capsys):
    with Bar(10, "packing test", enabled=True) as bar:
        for _ in range(5):
            bar.advance(2)
    assert bar.done == 10
    err = capsys.readouterr().err
    assert "packing test" in err and "10/10" in err


def test_pack_command_line(tmp_path, capsys):
    names = image_set(tmp_path, 3)
    write_csv(tmp_path / "list.csv", ["image", "label"], [[n, i] for i, n in enumerate(names)])
    argv = ["--dtype", "vuint8,int16", str(tmp_path / "list.csv"), str(tmp_path / "o.h5")]
    assert pack.main([*argv, "--height", "8", "--width", "8", "--shards", "3", "--encode", "png"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == shard_paths(tmp_path / "o.h5", 3)
    assert Reservoir(printed[2])["image"][0].shape == (8, 8, 3) and int(Reservoir(printed[2])["label"][0]) == 2
    assert pack.main(["--dtype", "vuint8,int1", *argv[2:]]) == 1
    assert "unknown dtype 'int1'" in capsys.readouterr().err
