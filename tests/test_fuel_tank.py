"""fuel.depot.Tank: order, seeds, resume, rank sharding, workers, shards, CSV, errors, device prefetch.

Files are written with nebulae.fuel.layout.Writer (JPEG by simplejpeg); every row carries its own
index in the `idx` column so a batch tells which samples it holds. Worker tests are few and small.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import simplejpeg

from nebulae.fuel import layout
from nebulae.fuel.depot import Tank
from nebulae.fuel.layout import ColumnSpec, Writer
from nebulae.fuel.sampling import Plan
from tests.conftest import run_python

SIDE = 8
COLUMNS = [
    ColumnSpec("image", "uint8", "image"),
    ColumnSpec("idx", "int64", "scalar"),
    ColumnSpec("name", "str", "str"),
    ColumnSpec("tags", "int16", "vlen"),
]
SPEC = {"image": "vuint8", "idx": "int64"}


def _image(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    return np.repeat(np.repeat(rng.integers(0, 256, (2, 2, 3), dtype=np.uint8), SIDE // 2, 0), SIDE // 2, 1)


def looks_like(image: np.ndarray, i: int) -> bool:
    """Whether a decoded JPEG is sample i's image (mean error within JPEG's, far from every other sample)."""
    errors = [np.abs(image.astype(int) - _image(k)).mean() for k in range(30)]
    return errors[i] <= 3 and int(np.argmin(errors)) == i


def write_packed(path, rows: range, ragged_tags: bool = False) -> str:
    """A packed file whose row k holds sample number rows[k] (image, idx, name, tags)."""
    writer = Writer(path, COLUMNS, encode="jpeg", height=SIDE, width=SIDE, channel=3)
    for i in rows:
        tags = np.arange(1 + (i % 3 if ragged_tags else 1), dtype=np.int16)
        writer.append({"image": simplejpeg.encode_jpeg(_image(i), quality=95), "idx": i, "name": f"s{i}", "tags": tags})
    writer.close()
    return str(path)


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> str:
    return write_packed(tmp_path_factory.mktemp("tank") / "data.hdf5", range(23))


def prep_draw(item: dict, rng: np.random.Generator) -> dict:
    """Records one draw of the sample's generator and one of NumPy's global generator, and flips."""
    item["draw"] = rng.integers(0, 2**31)  # fits int32: JAX keeps 64-bit off
    item["glob"] = np.random.randint(0, 2**31)
    if item["draw"] % 2:
        item["image"] = item["image"][:, ::-1]
    return item


def prep_fail_on_7(item: dict) -> dict:
    if int(item["idx"]) == 7:
        raise KeyError("sample 7 is cursed")
    return item


def take(tank: Tank, n: int) -> list[dict]:
    return [tank.next() for _ in range(n)]


def assert_same(a: list[dict], b: list[dict], skip: tuple[str, ...] = ()) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for key in x:
            if key not in skip:
                np.testing.assert_array_equal(x[key], y[key], err_msg=key)


class TestOrderAndSeeds:
    pytestmark = pytest.mark.once

    def test_batches_are_stacked_numpy_with_spec_dtypes(self, packed):
        with Tank(packed, SPEC, batch_size=4) as tk:
            batch = tk.next()
        assert set(batch) == {"image", "idx"}
        assert batch["image"].shape == (4, SIDE, SIDE, 3) and batch["image"].dtype == np.uint8
        assert batch["idx"].shape == (4,) and batch["idx"].dtype == np.int64
        assert batch["image"].flags.c_contiguous
        for image, i in zip(batch["image"], batch["idx"]):
            assert looks_like(image, int(i))

    def test_same_seed_same_batches_and_each_epoch_a_new_permutation(self, packed):
        a = take(Tank(packed, SPEC, batch_size=4, seed=5), 12)
        b = take(Tank(packed, SPEC, batch_size=4, seed=5), 12)
        assert_same(a, b)
        epochs = [np.concatenate([x["idx"] for x in a[e * 5 : (e + 1) * 5]]) for e in range(2)]
        for order in epochs:
            assert len(set(order.tolist())) == 20  # 23 samples, 5 full batches of 4: 3 left out per epoch
        assert not np.array_equal(epochs[0], epochs[1])

    def test_different_seed_different_order(self, packed):
        a = np.concatenate([x["idx"] for x in take(Tank(packed, SPEC, batch_size=4, seed=1), 5)])
        b = np.concatenate([x["idx"] for x in take(Tank(packed, SPEC, batch_size=4, seed=2), 5)])
        assert not np.array_equal(a, b)

    def test_no_shuffle_serves_in_file_order(self, packed):
        tk = Tank(packed, SPEC, batch_size=5, shuffle=False)
        order = [x["idx"].tolist() for x in take(tk, 5)]
        assert order == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14], [15, 16, 17, 18, 19], [0, 1, 2, 3, 4]]

    @pytest.mark.parametrize("in_same_size, mpe, sizes", [(True, 5, [4] * 5), (False, 6, [4] * 5 + [3])])
    def test_mpe_follows_in_same_size(self, packed, in_same_size, mpe, sizes):
        tk = Tank(packed, SPEC, batch_size=4, in_same_size=in_same_size, seed=3)
        assert (tk.MPE, len(tk)) == (mpe, 23)
        batches = take(tk, mpe)
        assert [len(x["idx"]) for x in batches] == sizes
        assert (tk.epoch, tk.mile) == (1, 0)
        seen = np.concatenate([x["idx"] for x in batches])
        assert len(set(seen.tolist())) == len(seen) == sum(sizes)

    def test_augmentation_draws_differ_between_samples_and_epochs_and_repeat_per_seed(self, packed):
        tk = Tank(packed, SPEC, batch_size=4, prep_fn=prep_draw, seed=9)
        first = take(tk, 10)
        draws = np.concatenate([x["draw"] for x in first])
        assert len(set(draws.tolist())) == len(draws)  # every sample, every epoch: its own draw
        again = take(Tank(packed, SPEC, batch_size=4, prep_fn=prep_draw, seed=9), 10)
        assert_same(first, again, skip=("glob",))
        other = take(Tank(packed, SPEC, batch_size=4, prep_fn=prep_draw, seed=10), 1)
        assert not np.array_equal(other[0]["draw"], first[0]["draw"])

    def test_one_argument_prep_and_custom_fetch_as_in_the_brochure(self, packed):
        def fetcher(data, idx):
            return {"image": data["image"][idx], "label": data["idx"][idx].astype("int64")}

        def prep(data):
            data["image"] = np.transpose(data["image"], (2, 0, 1)).astype("float32")
            return data

        with Tank(packed, {"image": "vuint8", "idx": "int64"}, batch_size=6, fetch_fn=fetcher, prep_fn=prep) as tk:
            batch = tk.next()
        assert batch["image"].shape == (6, 3, SIDE, SIDE) and batch["image"].dtype == np.float32
        assert batch["label"].dtype == np.int64

    def test_prep_gets_the_generator_only_when_it_asks_for_it(self, packed):
        def keyword(item, rng=None):
            item["got"] = isinstance(rng, np.random.Generator)
            return item

        def sized(item, size=3):
            item["got"] = size == 3
            return item

        for prep in (keyword, sized):
            assert Tank(packed, SPEC, batch_size=2, prep_fn=prep).next()["got"].all()

    def test_custom_collate_and_all_columns_without_spec(self, packed):
        tk = Tank(packed, batch_size=3, shuffle=False, collate_fn=lambda items: [it["name"] for it in items])
        assert tk.next() == ["s0", "s1", "s2"]
        full = Tank(packed, batch_size=3, shuffle=False).next()
        assert set(full) == {"image", "idx", "name", "tags"}
        assert full["name"].tolist() == ["s0", "s1", "s2"] and full["tags"].shape == (3, 2)

    def test_ragged_rows_need_a_collate_fn(self, tmp_path):
        path = write_packed(tmp_path / "ragged.hdf5", range(6), ragged_tags=True)
        with pytest.raises(ValueError, match=r"batch\['tags'\].*different shapes.*collate_fn"):
            Tank(path, {"tags": "vint16"}, batch_size=3, shuffle=False).next()


class TestResume:
    pytestmark = pytest.mark.once

    def test_restore_mid_epoch_in_a_new_tank(self, packed):
        a = Tank(packed, SPEC, batch_size=4, prep_fn=prep_draw, seed=4)
        take(a, 7)  # epoch 1, mile 2
        state = json.loads(json.dumps(a.state()))
        assert (state["epoch"], state["mile"], state["seed"]) == (1, 2, 4)
        rest = take(a, 9)
        b = Tank(packed, SPEC, batch_size=4, prep_fn=prep_draw, seed=0)  # the state brings its seed
        b.restore(state)
        assert (b.epoch, b.mile) == (1, 2)
        assert_same(take(b, 9), rest, skip=("glob",))

    def test_restore_rewinds_the_same_tank(self, packed):
        tk = Tank(packed, SPEC, batch_size=4, seed=4)
        state = tk.state()
        first = take(tk, 3)
        tk.restore(state)
        assert_same(take(tk, 3), first)

    def test_restore_refuses_another_layout(self, packed):
        state = Tank(packed, SPEC, batch_size=4).state()
        with pytest.raises(ValueError, match="batch_size 4 but this Tank has 5"):
            Tank(packed, SPEC, batch_size=5).restore(state)
        with pytest.raises(ValueError, match="lacks"):
            Tank(packed, SPEC, batch_size=4).restore({"epoch": 0})


class TestRanks:
    pytestmark = pytest.mark.once

    @pytest.mark.parametrize("in_same_size, used", [(True, 16), (False, 23)])
    def test_two_ranks_see_each_sample_once_per_epoch(self, packed, in_same_size, used):
        tanks = [Tank(packed, SPEC, 4, in_same_size=in_same_size, seed=2, rank=r, world=2) for r in (0, 1)]
        assert tanks[0].MPE == tanks[1].MPE == (2 if in_same_size else 3)
        for _ in range(2):  # two epochs, each its own permutation
            seen = np.concatenate([x["idx"] for tk in tanks for x in take(tk, tk.MPE)])
            assert len(seen) == used and len(set(seen.tolist())) == used

    def test_ranks_without_shuffle_take_consecutive_pieces(self, packed):
        r0, r1 = (Tank(packed, SPEC, 3, shuffle=False, rank=r, world=2) for r in (0, 1))
        assert r0.next()["idx"].tolist() == [0, 1, 2] and r1.next()["idx"].tolist() == [3, 4, 5]

    def test_rank_and_world_default_from_the_environment(self, packed, monkeypatch):
        monkeypatch.setenv("RANK", "1")
        monkeypatch.setenv("WORLD_SIZE", "2")
        tk = Tank(packed, SPEC, 3, shuffle=False)
        assert (tk.plan.rank, tk.plan.world) == (1, 2) and tk.next()["idx"].tolist() == [3, 4, 5]

    def test_shard_switches_an_existing_tank_to_its_rank(self, packed):
        tk = Tank(packed, SPEC, 3, shuffle=False)
        tk.next()
        tk.shard(1, 2)
        assert (tk.MPE, tk.epoch, tk.mile) == (3, 0, 0)
        assert tk.next()["idx"].tolist() == [3, 4, 5]

    def test_plan_leaves_out_fewer_than_world_samples_when_keeping_the_ragged_batch(self):
        plan = Plan(length=17, batch_size=4, shuffle=False, in_same_size=False, rank=0, world=2)
        assert plan.mpe == 2  # 16 in two full chunks; 1 left over < world 2: left out
        plan = Plan(length=19, batch_size=4, shuffle=False, in_same_size=False, rank=1, world=2)
        assert plan.mpe == 3 and plan.indices(2)[2].tolist() == [18]
        with pytest.raises(ValueError, match="too few"):
            Plan(length=7, batch_size=4, world=2)


class TestWorkers:
    pytestmark = pytest.mark.once

    def test_two_workers_serve_exactly_the_in_process_batches(self, packed):
        solo = take(Tank(packed, SPEC, batch_size=4, prep_fn=prep_draw, seed=6), 12)
        with Tank(packed, SPEC, batch_size=4, prep_fn=prep_draw, seed=6, workers=2) as tk:
            duo = take(tk, 12)  # crosses two epoch boundaries
            procs = tk._res["pool"].procs
            state = tk.state()
        assert_same(solo, duo, skip=("glob",))
        glob = np.concatenate([x["glob"] for x in duo[1:]])  # workers reseed NumPy per batch: no repeats
        assert len(set(glob.tolist())) == len(glob)
        assert not any(p.is_alive() for p in procs)
        resumed = Tank(packed, SPEC, batch_size=4, prep_fn=prep_draw, seed=6, workers=2)
        resumed.restore(state)
        more = take(resumed, 4)
        resumed.close()
        with pytest.raises(RuntimeError, match="closed"):
            resumed.next()
        assert_same(more, take(Tank(packed, SPEC, batch_size=4, prep_fn=prep_draw, seed=6), 16)[12:], skip=("glob",))

    def test_workers_open_their_own_handle_for_blobs_too_big_for_ram(self, packed, monkeypatch):
        monkeypatch.setattr(layout, "CACHE_BYTES", 0)  # every blob stays on disk, read through h5py
        solo = take(Tank(packed, SPEC, batch_size=4, seed=1), 6)
        with Tank(packed, SPEC, batch_size=4, seed=1, workers=2) as tk:
            assert all(r._file is None for r in tk.source.reservoirs)  # the caller closed its handle before fork
            assert_same(solo, take(tk, 6))

    def test_an_error_in_a_worker_reaches_the_caller(self, packed):
        with Tank(packed, SPEC, batch_size=4, shuffle=False, prep_fn=prep_fail_on_7, workers=2) as tk:
            tk.next()
            with pytest.raises(KeyError, match="cursed") as info:
                tk.next()
        assert any("Tank worker" in note for note in getattr(info.value, "__notes__", []))

    def test_a_grain_worker_serves_the_same_batches(self, packed):
        solo = take(Tank(packed, SPEC, batch_size=4, prep_fn=prep_draw, seed=8), 7)
        with Tank(packed, SPEC, batch_size=4, prep_fn=prep_draw, seed=8, workers=1, pool="grain") as tk:
            assert_same(solo, take(tk, 7), skip=("glob",))

    def test_a_script_that_never_closes_its_tank_exits(self, packed):
        r = run_python(
            "from nebulae.fuel.depot import Tank\n"
            f"tk = Tank({packed!r}, batch_size=4, workers=2)\n"
            "print(tk.next()['idx'].shape)",
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        assert "(4,)" in r.stdout


class TestSources:
    pytestmark = pytest.mark.once

    def test_shards_as_a_list_and_as_a_glob(self, tmp_path):
        paths = [write_packed(tmp_path / f"part_{k}.hdf5", rows) for k, rows in enumerate([range(5), range(5, 12)])]
        for data_path in (paths, str(tmp_path / "part_*.hdf5")):
            tk = Tank(data_path, SPEC, batch_size=4, in_same_size=False, shuffle=False)
            assert len(tk) == 12 and tk.MPE == 3
            batches = take(tk, 3)
            assert np.concatenate([x["idx"] for x in batches]).tolist() == list(range(12))
            for image, i in zip(batches[1]["image"], batches[1]["idx"]):  # crosses the shard boundary
                assert looks_like(image, int(i))

    def test_shards_must_share_their_columns(self, tmp_path):
        a = write_packed(tmp_path / "a.hdf5", range(3))
        writer = Writer(tmp_path / "b.hdf5", [ColumnSpec("idx", "int64", "scalar")])
        writer.append({"idx": 3})
        writer.close()
        with pytest.raises(ValueError, match="b.hdf5.*shards must share their columns"):
            Tank([a, str(tmp_path / "b.hdf5")], batch_size=2)

    def test_csv_with_image_paths(self, tmp_path):
        (tmp_path / "img").mkdir()
        with open(tmp_path / "list.csv", "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["image", "label", "note"])
            for i in range(6):
                (tmp_path / "img" / f"{i}.jpg").write_bytes(simplejpeg.encode_jpeg(_image(i), quality=95))
                out.writerow([f"img/{i}.jpg", i * 10, f"n{i}"])
        tk = Tank(tmp_path / "list.csv", {"image": "vuint8", "label": "int64"}, batch_size=3, shuffle=False)
        batch = tk.next()
        assert batch["label"].tolist() == [0, 10, 20] and batch["label"].dtype == np.int64
        assert batch["image"].shape == (3, SIDE, SIDE, 3)
        assert looks_like(batch["image"][2], 2)
        plain = Tank(tmp_path / "list.csv", batch_size=2, shuffle=False).next()
        assert plain["label"].tolist() == ["0", "10"] and plain["note"].tolist() == ["n0", "n1"]
        (tmp_path / "img" / "4.jpg").unlink()
        with pytest.raises(FileNotFoundError, match=r"list.csv, line 6, column 'image'.*4.jpg"):
            Tank(tmp_path / "list.csv", {"image": "vuint8"}, batch_size=2)

    def test_bad_spec_key_names_the_key_and_the_file(self, packed):
        with pytest.raises(ValueError, match=r"data_specf key 'labl' is not a column of .*data.hdf5.*image, idx"):
            Tank(packed, {"image": "vuint8", "labl": "int64"}, batch_size=4)
        with pytest.raises(ValueError, match=r"data_specf\['idx'\]: unknown dtype 'int65'"):
            Tank(packed, {"idx": "int65"}, batch_size=4)

    def test_missing_or_foreign_files_get_clear_errors(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nowhere.hdf5"):
            Tank(tmp_path / "nowhere.hdf5", batch_size=4)
        with pytest.raises(FileNotFoundError, match=r"no data file matches.*\*.hdf5"):
            Tank(str(tmp_path / "*.hdf5"), batch_size=4)
        (tmp_path / "text.hdf5").write_text("not hdf5")
        with pytest.raises(ValueError, match="not an HDF5 file"):
            Tank(tmp_path / "text.hdf5", batch_size=4)

    def test_fuel_does_not_import_grain_or_an_engine(self, packed):
        r = run_python(
            "import sys\nfrom nebulae.fuel.depot import Tank\n"
            f"Tank({packed!r}, batch_size=4, workers=2).next()\n"
            "print(sorted({'torch', 'jax', 'grain'} & set(sys.modules)))"
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "[]"


def test_to_device_prefetches_engine_arrays(packed, dock):
    plain = take(Tank(packed, SPEC, batch_size=4, prep_fn=prep_draw, seed=3), 6)
    with Tank(packed, SPEC, batch_size=4, prep_fn=prep_draw, seed=3, to_device=True) as tk:
        on_device = take(tk, 4)
        state = tk.state()
        tk.restore({**state, "mile": 0})  # back to the start of epoch 0 ...
        again = tk.next()
    engine_type = type(dock.coat(np.zeros(2, np.float32)))
    for got, want in zip(on_device + [again], plain[:4] + [plain[0]]):
        for key in ("image", "idx", "draw"):
            assert type(got[key]) is engine_type
            np.testing.assert_array_equal(dock.shell(got[key]), want[key])


@pytest.mark.once
def test_workers_start_after_opencv_used_its_thread_pool(packed):
    """Forking after OpenCV started its thread pool must not deadlock the workers (it did once)."""
    code = (
        "import cv2, numpy as np\n"
        "from nebulae.fuel.depot import Tank\n"
        "cv2.setNumThreads(2)\n"
        "for _ in range(3):\n"
        "    cv2.GaussianBlur(np.ones((1500, 1500, 3), np.uint8), (31, 31), 5)  # starts OpenCV's pool\n"
        f"with Tank({str(packed)!r}, {{'image': 'vuint8', 'idx': 'int64'}}, batch_size=4, workers=2) as tk:\n"
        "    print([tk.next()['idx'].shape for _ in range(4)])\n"
        "print('threads', cv2.getNumThreads())\n"
    )
    r = run_python(code, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "[(4,), (4,), (4,), (4,)]" in r.stdout
    assert "threads 2" in r.stdout  # the parent's OpenCV setting is restored after the fork
