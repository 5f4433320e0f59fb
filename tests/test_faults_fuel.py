"""fuel under faults: dead and stuck Tank workers, killed Generators, hostile or broken input files.

Everything here is engine-neutral (NumPy/OpenCV/h5py, real files, real worker processes), hence
marked `once`, but for the `to_device` test, which runs on each engine. Faults are injected through
`nebulae.faults` points (NEB_FAULT) or real SIGKILLs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from nebulae.fuel.depot import Tank
from tests.conftest import ROOT
from tests.test_fuel_tank import SPEC, write_packed


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> str:
    return write_packed(tmp_path_factory.mktemp("faults") / "data.hdf5", range(23))


def hang_on_9(item: dict) -> dict:
    """A prep_fn stuck forever on sample 9 (a deadlocked decoder, a network read that never returns)."""
    if int(item["idx"]) == 9:
        time.sleep(3600)
    return item


def _gone(procs, within: float) -> bool:
    deadline = time.monotonic() + within
    while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(p.is_alive() for p in procs)


# --------------------------------------------------------------------------- Tank workers


class TestTankWorkers:
    pytestmark = pytest.mark.once

    @pytest.mark.timeout(60)
    def test_a_worker_killed_mid_batch_is_named_with_its_signal_and_every_worker_stops(self, packed, monkeypatch):
        monkeypatch.setenv("NEB_FAULT", "tank.worker-batch@2=kill")  # each worker dies on its 2nd batch
        tk = Tank(packed, SPEC, batch_size=4, shuffle=False, workers=2)
        procs = tk._res["pool"].procs
        with pytest.raises(RuntimeError, match=r"Tank worker 0 \(pid \d+\) was killed by signal SIGKILL") as info:
            for _ in range(10):
                tk.next()
        assert "batch position 3" in str(info.value) and "restore" in str(info.value)
        assert _gone(procs, 5), "the pool was left open"
        with pytest.raises(RuntimeError, match="workers were stopped.*SIGKILL"):
            tk.next()  # later calls repeat why, instead of a bare "closed" or a hang
        tk.close()

    @pytest.mark.timeout(60)
    def test_a_worker_killed_from_outside_is_named_not_a_connection_reset(self, packed):
        tk = Tank(packed, SPEC, batch_size=4, shuffle=False, workers=2)
        procs = tk._res["pool"].procs
        tk.next()
        os.kill(procs[1].pid, signal.SIGKILL)
        procs[1].join(5)
        with pytest.raises(RuntimeError, match=rf"Tank worker 1 \(pid {procs[1].pid}\) was killed by signal SIGKILL"):
            for _ in range(10):
                tk.next()
        assert _gone(procs, 5)
        tk.close()

    @pytest.mark.timeout(60)
    def test_a_worker_that_exits_is_named_with_its_exit_code(self, packed):
        tk = Tank(packed, SPEC, batch_size=4, shuffle=False, workers=1, prep_fn=exit_on_9)
        with pytest.raises(RuntimeError, match=r"Tank worker 0 \(pid \d+\) exited with code 3 .*batch position 2"):
            for _ in range(10):
                tk.next()
        tk.close()

    @pytest.mark.timeout(60)
    def test_a_hanging_prep_fn_fails_after_worker_timeout_naming_the_worker(self, packed):
        tk = Tank(packed, SPEC, batch_size=4, shuffle=False, prep_fn=hang_on_9, workers=2, worker_timeout=1.5)
        procs = tk._res["pool"].procs
        tk.next()  # position 0, built in the caller
        tk.next()  # position 1 (worker 0)
        began = time.monotonic()
        with pytest.raises(RuntimeError, match=r"Tank worker 1 \(pid \d+\).*batch position 2.*worker_timeout=1.5 s"):
            tk.next()  # position 2 holds sample 9, on worker 1
        assert 1.4 <= time.monotonic() - began < 10
        assert _gone(procs, 3), "the stuck worker was left running"
        tk.close()

    @pytest.mark.parametrize("bad", [0, -1, "10", True])
    def test_worker_timeout_must_be_positive_seconds_or_none(self, packed, bad):
        with pytest.raises(ValueError, match="worker_timeout must be a positive number of seconds or None"):
            Tank(packed, SPEC, batch_size=4, workers=1, worker_timeout=bad)


def exit_on_9(item: dict) -> dict:
    if int(item["idx"]) == 9:
        os._exit(3)
    return item


@pytest.mark.timeout(60)
def test_a_worker_dying_behind_to_device_is_named_on_the_bound_engine(packed, dock, monkeypatch):
    monkeypatch.setenv("NEB_FAULT", "tank.worker-batch@2=kill")
    tk = Tank(packed, SPEC, batch_size=4, shuffle=False, workers=2, to_device=True)
    procs = tk._res["pool"].procs
    # both workers reach their own 2nd batch; which death the pool sees first depends on scheduling
    with pytest.raises(RuntimeError, match=r"Tank worker [01] \(pid \d+\) was killed by signal SIGKILL"):
        for _ in range(10):
            assert type(tk.next()["idx"]) is type(dock.coat(np.zeros(2, np.int32)))
    assert _gone(procs, 5)
    tk.close()


# --------------------------------------------------------------------------- Generator


def write_images(folder, n: int, side: int = 16) -> str:
    """n real PNG files and a CSV listing them with a label; returns the CSV's path."""
    import cv2

    os.makedirs(folder, exist_ok=True)
    lines = ["image,label"]
    for i in range(n):
        image = np.full((side, side, 3), i % 256, np.uint8)
        cv2.imwrite(os.path.join(folder, f"im{i}.png"), image)
        lines.append(f"im{i}.png,{i}")
    path = os.path.join(folder, "list.csv")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def python(code: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if k not in ("NEB_CORE", "NEB_FAULT")}
    full["PYTHONPATH"] = str(ROOT)
    full.update(env or {})
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=full, **kwargs)


def _with_token(token: str) -> list[int]:
    """Pids of the processes whose command line holds `token` (a forked worker shares its parent's)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if token.encode() in f.read():
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


PACK = """
import sys
from nebulae.fuel.generator import Generator
Generator(file_list=sys.argv[1] if len(sys.argv) > 1 else {csv!r}, dtype=['vuint8', 'int64'], encode='PNG').generate(
    {dst!r}, workers={workers})
"""


class TestGenerator:
    pytestmark = pytest.mark.once

    @pytest.mark.timeout(60)
    def test_workers_exit_within_seconds_of_a_killed_generator(self, tmp_path):
        csv_path = write_images(tmp_path / "raw", 600)
        token = f"neb-orphan-{os.getpid()}-{time.monotonic_ns()}"
        code = f"# {token}\n" + PACK.format(csv=csv_path, dst=str(tmp_path / "out.h5"), workers=2)
        # the Generator is SIGKILLed as it writes row 70, its workers busy with the next chunks
        proc = python(code, env={"NEB_FAULT": "generator.row@70=kill"}, stderr=subprocess.PIPE)
        assert proc.wait(60) == -signal.SIGKILL, proc.stderr.read().decode()
        deadline = time.monotonic() + 5
        while _with_token(token) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _with_token(token)
        for pid in left:  # do not leak them into the rest of the run
            os.kill(pid, signal.SIGKILL)
        assert not left, f"{len(left)} Generator worker(s) outlived their killed parent by 5 s"
        assert not (tmp_path / "out.h5").exists()

    @pytest.mark.timeout(60)
    @pytest.mark.parametrize("point", ["layout.column-written", "generator.before-replace"])
    def test_a_temp_file_left_by_a_kill_in_the_final_write_is_swept_by_the_next_run(self, tmp_path, point):
        from nebulae.fuel.generator import Generator

        csv_path = write_images(tmp_path / "raw", 5)
        dst = tmp_path / "out.h5"
        dst.write_bytes(b"the previous version")
        bystander = python("import time; time.sleep(60)")  # a live process: its temp file is work in progress
        live = tmp_path / f".out.h5.{bystander.pid}.0123456789ab.tmp"
        live.write_bytes(b"")
        try:
            proc = python(PACK.format(csv=csv_path, dst=str(dst), workers=0), env={"NEB_FAULT": point})
            assert proc.wait(60) == -signal.SIGKILL
            assert dst.read_bytes() == b"the previous version"  # never a half file at the destination
            left = [p for p in tmp_path.glob(".out.h5.*.tmp") if p != live]
            assert len(left) == 1 and str(proc.pid) in left[0].name
            Generator(file_list=csv_path, dtype=["vuint8", "int64"], encode="PNG").generate(dst, workers=0)
            assert sorted(p.name for p in tmp_path.glob(".out.h5.*")) == [live.name]
            with Tank(str(dst), {"image": "vuint8", "label": "int64"}, batch_size=5, shuffle=False) as tk:
                assert tk.next()["label"].tolist() == [0, 1, 2, 3, 4]
        finally:
            bystander.kill()
            bystander.wait()


# --------------------------------------------------------------------------- broken and hostile input


def huge_png(path, width: int, height: int) -> str:
    """A real, valid black 1-bit PNG of width x height pixels, streamed through zlib (a few hundred KB)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer = zlib.compressobj(1)
    rows = b"\x00" * ((1 + -(-width // 8)) * 256)  # 256 rows: filter byte 0 + zero bits
    body = b"".join(packer.compress(rows) for _ in range(height // 256)) + packer.compress(
        rows[: (1 + -(-width // 8)) * (height % 256)]
    )
    body += packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return str(path)


def one_image_csv(folder, name: str) -> str:
    path = os.path.join(folder, "list.csv")
    with open(path, "w") as f:
        f.write(f"image,label\nim0.png,0\n{name},1\n")
    import cv2

    cv2.imwrite(os.path.join(folder, "im0.png"), np.zeros((4, 4, 3), np.uint8))
    return path


def pack(csv_path, dst, **settings):
    from nebulae.fuel.generator import Generator

    return Generator(file_list=csv_path, dtype=["vuint8", "int64"], **settings).generate(dst, workers=0)


class TestBrokenFiles:
    pytestmark = pytest.mark.once

    def test_an_empty_image_names_the_file_and_the_csv_line(self, tmp_path):
        (tmp_path / "empty.png").write_bytes(b"")
        csv_path = one_image_csv(tmp_path, "empty.png")
        with pytest.raises(ValueError, match=r"list\.csv, line 3, column 'image'.*empty\.png is empty \(0 bytes\)"):
            pack(csv_path, tmp_path / "out.h5")
        assert not (tmp_path / "out.h5").exists()

    def test_an_empty_image_in_a_tank_csv_names_the_file_and_the_line(self, tmp_path):
        (tmp_path / "empty.png").write_bytes(b"")
        csv_path = one_image_csv(tmp_path, "empty.png")
        tk = Tank(csv_path, {"image": "vuint8", "label": "int64"}, batch_size=2, shuffle=False)
        with pytest.raises(ValueError, match=r"list\.csv, line 3, column 'image'.*empty\.png is empty \(0 bytes\)"):
            tk.next()

    @pytest.mark.timeout(60)
    def test_a_40000_square_png_is_refused_from_its_header(self, tmp_path):
        huge_png(tmp_path / "huge.png", 40000, 40000)
        csv_path = one_image_csv(tmp_path, "huge.png")
        with pytest.raises(
            ValueError, match=r"line 3, column 'image'.*huge\.png.*40000 x 40000 = 1,600,000,000 pixels"
        ):
            pack(csv_path, tmp_path / "out.h5")

    @pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
    def test_a_csv_not_in_utf8_names_the_file_line_and_encoding(self, tmp_path, encoding):
        import cv2

        cv2.imwrite(str(tmp_path / "café.png"), np.zeros((4, 4, 3), np.uint8))
        cv2.imwrite(str(tmp_path / "a.png"), np.zeros((4, 4, 3), np.uint8))
        path = tmp_path / "list.csv"
        path.write_bytes("image,label\na.png,0\ncafé.png,1\n".encode(encoding))
        expected = r"line 3, column 1 \('image'\): byte 0xe9 is not UTF-8" if encoding == "latin-1" else "UTF-16"
        with pytest.raises(ValueError, match=rf"list\.csv.*{expected}.*re-save it as UTF-8"):
            pack(str(path), tmp_path / "out.h5")
        with pytest.raises(ValueError, match=rf"list\.csv.*{expected}"):
            Tank(str(path), batch_size=1)

    def test_a_non_utf8_byte_in_a_later_column_names_that_column(self, tmp_path):
        path = tmp_path / "t.csv"
        path.write_bytes("a,b,name\n1,2,ok\n3,4,Zoë\n".encode("latin-1"))
        with pytest.raises(ValueError, match=r"t\.csv, line 3, column 3 \('name'\): byte 0xeb"):
            Tank(str(path), batch_size=1)

    def test_a_truncated_hdf5_names_the_file(self, packed, tmp_path):
        with open(packed, "rb") as f:
            data = f.read()
        cut = tmp_path / "cut.hdf5"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(ValueError, match=rf"{cut}: cannot open this HDF5 file.*truncated or damaged.*re-pack"):
            Tank(str(cut), SPEC, batch_size=4)

    @pytest.mark.parametrize("missing", ["idx", "image/offsets", "tags/data"])
    def test_a_missing_dataset_names_the_file_and_the_column(self, tmp_path, missing):
        import h5py

        path = write_packed(tmp_path / "holes.hdf5", range(6))
        with h5py.File(path, "a") as f:
            del f[missing]
        column = missing.split("/")[0]
        with pytest.raises(ValueError, match=rf"{path}: column '{column}' .*(missing|lacks its dataset {missing})"):
            Tank(path, batch_size=2)


class TestHostileFiles:
    pytestmark = pytest.mark.once

    @pytest.mark.timeout(60)
    def test_a_20000_square_png_bomb_is_refused_by_default_before_decoding(self, tmp_path):
        huge_png(tmp_path / "bomb.png", 20000, 20000)
        assert os.path.getsize(tmp_path / "bomb.png") < 400_000
        csv_path = one_image_csv(tmp_path, "bomb.png")
        code = (
            "import sys\nfrom nebulae.fuel.pack import main\n"
            f"rc = main([{csv_path!r}, {str(tmp_path / 'out.h5')!r}, '--dtype', 'vuint8,int64', '--workers', '0'])\n"
            "peak = [line for line in open('/proc/self/status') if line.startswith('VmHWM:')][0].split()[1]\n"
            "print(int(peak) // 1024, 'MiB')\nsys.exit(rc)"
        )
        proc = python(code, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, out + err
        assert "bomb.png" in err and "20000 x 20000 = 400,000,000 pixels, over the limit of 268,435,456" in err
        assert "--max-pixels" in err and "NEB_MAX_PIXELS" in err
        assert int(out.split()[0]) < 600  # never decoded (it took 2.35 GB)
        assert not (tmp_path / "out.h5").exists()

    def test_the_pixel_limit_is_an_argument_and_an_environment_variable(self, tmp_path, monkeypatch):
        import cv2

        csv_path = one_image_csv(tmp_path, "big.png")
        cv2.imwrite(str(tmp_path / "big.png"), np.zeros((30, 40, 3), np.uint8))
        for settings in ({"max_pixels": 1000}, {}):
            if not settings:
                monkeypatch.setenv("NEB_MAX_PIXELS", "1000")
            with pytest.raises(ValueError, match=r"big\.png.*40 x 30 = 1,200 pixels, over the limit of 1,000"):
                pack(csv_path, tmp_path / "out.h5", **settings)
        assert pack(csv_path, tmp_path / "out.h5", max_pixels=1200)  # the argument wins over the environment
        monkeypatch.setenv("NEB_MAX_PIXELS", "0")  # 0: no limit
        assert pack(csv_path, tmp_path / "out.h5")
        with Tank(str(tmp_path / "out.h5"), batch_size=1, shuffle=False) as tk:
            assert tk.next()["image"].shape == (1, 4, 4, 3) and tk.next()["image"].shape == (1, 30, 40, 3)
        monkeypatch.setenv("NEB_MAX_PIXELS", "lots")
        with pytest.raises(ValueError, match="NEB_MAX_PIXELS='lots' is not a pixel count"):
            pack(csv_path, tmp_path / "out.h5")

    def test_the_pixel_limit_guards_a_tank_csv_too(self, tmp_path, monkeypatch):
        import cv2

        csv_path = one_image_csv(tmp_path, "big.png")
        cv2.imwrite(str(tmp_path / "big.png"), np.zeros((30, 40, 3), np.uint8))
        monkeypatch.setenv("NEB_MAX_PIXELS", "1000")
        tk = Tank(csv_path, {"image": "vuint8", "label": "int64"}, batch_size=1, shuffle=False)
        tk.next()
        with pytest.raises(ValueError, match=r"line 3, column 'image'.*40 x 30 = 1,200 pixels.*NEB_MAX_PIXELS=N"):
            tk.next()

    @pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
    def test_paths_leaving_file_dir_are_refused_unless_allowed(self, tmp_path, how):
        import cv2

        inside, outside = tmp_path / "data", tmp_path / "secret"
        inside.mkdir()
        outside.mkdir()
        cv2.imwrite(str(outside / "x.png"), np.zeros((4, 4, 3), np.uint8))
        name = {"dotdot": "../secret/x.png", "absolute": str(outside / "x.png"), "symlink": "link.png"}[how]
        if how == "symlink":
            os.symlink(outside / "x.png", inside / "link.png")
        csv_path = one_image_csv(inside, name)
        with pytest.raises(ValueError, match=rf"line 3, column 'image': image path '{name}' leads outside file_dir"):
            pack(csv_path, tmp_path / "out.h5")
        assert not (tmp_path / "out.h5").exists()
        assert pack(csv_path, tmp_path / "out.h5", allow_outside=True)
        os.symlink(inside / "im0.png", inside / "fine.png")  # a link that stays inside is fine
        assert pack(one_image_csv(inside, "fine.png"), tmp_path / "ok.h5")
