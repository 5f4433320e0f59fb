"""fuel.depot.Tank over in-memory data: a dict of NumPy arrays, a map-style dataset and a list of row dicts.

The same samples are written to a real packed HDF5 file (PNG, lossless, so the file decodes to exactly
the arrays) and held in memory; every memory Tank must serve bitwise the batches of the file Tank:
order, augmentation draws, resume mid-epoch and rank shares, in the caller and with 2 forked workers.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from nebulae.fuel.depot import Tank
from nebulae.fuel.layout import ColumnSpec, Writer

N, SIDE = 23, 8
SPEC = {"image": "vuint8", "idx": "int64", "x": "vfloat32", "name": "str"}
KINDS = ("dict", "map", "rows")


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "image": rng.integers(0, 256, (N, SIDE, SIDE, 3), dtype=np.uint8),
        "idx": np.arange(N, dtype=np.int64),
        "x": rng.standard_normal((N, 3)).astype(np.float32),
        "name": np.array([f"s{i}" for i in range(N)]),
    }


ARRAYS = _arrays()


class Rows:
    """A map-style dataset: `len()` and `[i]` -> {column: array} (what a torch Dataset looks like, without torch)."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def __getitem__(self, i: int) -> dict:
        return {key: value[i] for key, value in self.arrays.items()}


def memory(kind: str):
    if kind == "dict":
        return dict(ARRAYS)
    if kind == "map":
        return Rows(ARRAYS)
    return [{key: value[i] for key, value in ARRAYS.items()} for i in range(N)]


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> str:
    """ARRAYS as a packed file: PNG images (lossless), scalar idx, fixed-length vlen x, str name."""
    path = tmp_path_factory.mktemp("memory") / "same.hdf5"
    columns = [
        ColumnSpec("image", "uint8", "image"),
        ColumnSpec("idx", "int64", "scalar"),
        ColumnSpec("x", "float32", "vlen"),
        ColumnSpec("name", "str", "str"),
    ]
    writer = Writer(path, columns, encode="png", height=SIDE, width=SIDE, channel=3)
    for i in range(N):
        ok, png = cv2.imencode(".png", cv2.cvtColor(ARRAYS["image"][i], cv2.COLOR_RGB2BGR))
        assert ok
        writer.append({"image": png.tobytes(), "idx": i, "x": ARRAYS["x"][i], "name": str(ARRAYS["name"][i])})
    writer.close()
    whole = Tank(str(path), SPEC, batch_size=N, shuffle=False).next()
    for key, value in ARRAYS.items():  # the file holds exactly the arrays
        np.testing.assert_array_equal(whole[key], value, err_msg=key)
    return str(path)


def prep_draw(item: dict, rng: np.random.Generator) -> dict:
    """Seeded augmentation: records one draw, flips on odd draws, adds noise drawn from the same generator."""
    item["draw"] = rng.integers(0, 2**31)
    if item["draw"] % 2:
        item["image"] = item["image"][:, ::-1]
    item["x"] = item["x"] + rng.standard_normal(3).astype(np.float32)
    return item


def take(tank: Tank, n: int) -> list[dict]:
    return [tank.next() for _ in range(n)]


def assert_bitwise(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for k, (x, y) in enumerate(zip(a, b)):
        assert x.keys() == y.keys(), k
        for key in x:
            assert (x[key].dtype, x[key].shape) == (y[key].dtype, y[key].shape), (k, key)
            assert x[key].tobytes() == y[key].tobytes(), (k, key)


class TestSameAsTheFile:
    pytestmark = pytest.mark.once

    @pytest.mark.parametrize("workers", [0, 2])
    @pytest.mark.parametrize("kind", KINDS)
    def test_same_batches(self, packed, kind, workers):
        want = take(Tank(packed, SPEC, batch_size=4, seed=5), 12)  # 5 batches per epoch: crosses two epochs
        with Tank(memory(kind), SPEC, batch_size=4, seed=5, workers=workers) as tk:
            assert (len(tk), tk.MPE) == (N, 5)
            assert_bitwise(take(tk, 12), want)

    @pytest.mark.parametrize("kind", KINDS)
    def test_same_batches_unshuffled_with_the_ragged_batch_and_without_a_spec(self, packed, kind):
        want = take(Tank(packed, batch_size=4, shuffle=False, in_same_size=False), 7)
        assert [len(b["idx"]) for b in want] == [4] * 5 + [3, 4]
        assert_bitwise(take(Tank(memory(kind), batch_size=4, shuffle=False, in_same_size=False), 7), want)

    @pytest.mark.parametrize("workers", [0, 2])
    @pytest.mark.parametrize("kind", KINDS)
    def test_same_augmentation_draws(self, packed, kind, workers):
        want = take(Tank(packed, SPEC, batch_size=4, prep_fn=prep_draw, seed=9), 10)
        draws = np.concatenate([b["draw"] for b in want])
        assert len(set(draws.tolist())) == len(draws)  # each sample of each epoch draws its own
        with Tank(memory(kind), SPEC, batch_size=4, prep_fn=prep_draw, seed=9, workers=workers) as tk:
            assert_bitwise(take(tk, 10), want)

    def test_prep_never_writes_into_the_callers_arrays(self):
        data = {"v": np.zeros((8, 2), np.float32)}

        def bump(item):
            item["v"] += 1  # in place
            return item

        for source in (data, Rows(data)):
            Tank(source, batch_size=4, prep_fn=bump).next()
        assert not data["v"].any()


class TestResume:
    pytestmark = pytest.mark.once

    @pytest.mark.parametrize("workers", [0, 2])
    @pytest.mark.parametrize("kind", KINDS)
    def test_restore_mid_epoch_in_a_new_tank(self, packed, kind, workers):
        want = take(Tank(packed, SPEC, batch_size=4, prep_fn=prep_draw, seed=4), 16)
        with Tank(memory(kind), SPEC, batch_size=4, prep_fn=prep_draw, seed=4, workers=workers) as a:
            served = take(a, 7)  # epoch 1, mile 2
            state = json.loads(json.dumps(a.state()))
            rest = take(a, 9)
        assert (state["epoch"], state["mile"]) == (1, 2)
        with Tank(memory(kind), SPEC, batch_size=4, prep_fn=prep_draw, seed=0, workers=workers).restore(state) as b:
            assert (b.epoch, b.mile, b.seed) == (1, 2, 4)
            assert_bitwise(take(b, 9), rest)
        assert_bitwise(served + rest, want)

    def test_restore_returns_the_tank_for_files_too(self, packed):
        state = Tank(packed, SPEC, batch_size=4, seed=4).state()
        for seed in (4, 0):  # the same seed (seek) and another one (a new plan)
            tk = Tank(packed, SPEC, batch_size=4, seed=seed)
            assert tk.restore(state) is tk


class TestRanks:
    pytestmark = pytest.mark.once

    @pytest.mark.parametrize("in_same_size, used", [(True, 16), (False, 23)])
    @pytest.mark.parametrize("kind", KINDS)
    def test_two_ranks_share_each_epoch_as_for_files(self, packed, kind, in_same_size, used):
        files, mems = [], []
        for r in (0, 1):
            f = Tank(packed, SPEC, 8, in_same_size=in_same_size, seed=2)
            m = Tank(memory(kind), SPEC, 8, in_same_size=in_same_size, seed=2)
            f.shard(r, 2, 4)
            m.shard(r, 2, 4)
            files.append(f)
            mems.append(m)
        for _ in range(2):  # two epochs, each its own permutation
            shares = [take(m, m.MPE) for m in mems]
            for share, f in zip(shares, files):
                assert_bitwise(share, take(f, f.MPE))
            seen = [set(np.concatenate([b["idx"] for b in share]).tolist()) for share in shares]
            assert not seen[0] & seen[1]
            assert len(seen[0] | seen[1]) == used == sum(len(b["idx"]) for share in shares for b in share)


class TestWorkers:
    pytestmark = pytest.mark.once

    @pytest.mark.skipif(not os.path.exists("/proc/self/smaps_rollup"), reason="reads Linux /proc/<pid>/smaps_rollup")
    def test_workers_read_the_arrays_in_place(self):
        big = np.random.default_rng(1).integers(0, 256, (512, 512, 512), dtype=np.uint8)  # 128 MiB
        with Tank({"big": big, "i": np.arange(512)}, batch_size=8, seed=0, workers=2) as tk:
            batches = take(tk, 6)
            private = [_private_mib(p.pid) for p in tk._res["pool"].procs]
        for b in batches:
            np.testing.assert_array_equal(b["big"], big[b["i"]])
        assert max(private) < 32, f"workers hold {private} MiB of their own: the 128 MiB array was copied"

    def test_a_grain_worker_serves_the_same_batches(self, packed):
        want = take(Tank(packed, SPEC, batch_size=4, prep_fn=prep_draw, seed=8), 7)
        with Tank(memory("dict"), SPEC, batch_size=4, prep_fn=prep_draw, seed=8, workers=1, pool="grain") as tk:
            assert_bitwise(take(tk, 7), want)


def _private_mib(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return sum(int(fields[k].split()[0]) for k in ("Private_Dirty", "Private_Clean")) / 1024


class TestBadInput:
    pytestmark = pytest.mark.once

    def test_columns_of_different_lengths_name_each_length(self):
        with pytest.raises(ValueError, match=r"differ in length.*'image' has 5, 'label' has 4"):
            Tank({"image": np.zeros((5, 2, 2, 3), np.uint8), "label": np.arange(4)}, batch_size=2)

    def test_a_value_that_is_not_an_array_names_its_key(self):
        with pytest.raises(TypeError, match=r"data\['label'\] is of type 'list', not a NumPy array.*np.asarray"):
            Tank({"image": np.zeros((5, 2)), "label": [0, 1, 2, 3, 4]}, batch_size=2)
        with pytest.raises(TypeError, match=r"data\['tags'\] has dtype object"):
            Tank({"tags": np.array([[1], [1, 2]], dtype=object)}, batch_size=1)
        with pytest.raises(ValueError, match=r"data\['n'\] is a 0-d array"):
            Tank({"n": np.array(3)}, batch_size=1)
        with pytest.raises(ValueError, match="empty dict"):
            Tank({}, batch_size=1)

    def test_getitem_that_returns_no_dict_names_the_dataset_row_and_type(self):
        class Pairs:
            def __len__(self):
                return 6

            def __getitem__(self, i):
                return np.zeros(2), i

        with pytest.raises(TypeError, match=r"Pairs\[0\] returned a value of type 'tuple', not a dict"):
            Tank(Pairs(), batch_size=2)
        with pytest.raises(TypeError, match=r"one NumPy array.*\{column: array\}"):
            Tank(np.zeros((6, 2)), batch_size=2)

    @pytest.mark.parametrize("workers", [0, 2])
    def test_a_bad_row_later_names_its_index_and_column(self, workers):
        class Flaky(Rows):
            def __getitem__(self, i):
                row = super().__getitem__(i)
                if i == 5:
                    row["x"] = row["x"].tolist()
                if i == 9:
                    del row["name"]
                return row

        tk = Tank(Flaky(ARRAYS), SPEC, batch_size=4, shuffle=False, workers=workers)
        tk.next()  # rows 0..3
        with pytest.raises(TypeError, match=r"Flaky\[5\]\['x'\] is of type 'list', not a NumPy array"):
            tk.next()
        tk.close()
        with pytest.raises(KeyError, match=r"Flaky\[9\] has no column 'name'"):
            Tank(Flaky(ARRAYS), SPEC, batch_size=4, shuffle=False).restore({**tk.state(), "mile": 2}).next()

    def test_a_spec_key_that_is_not_a_column_lists_the_columns(self):
        with pytest.raises(ValueError, match=r"data_specf key 'labl' is not a column of in-memory data.*image, idx"):
            Tank(dict(ARRAYS), {"labl": "int64"}, batch_size=4)
        with pytest.raises(ValueError, match=r"'labl' is not a column of in-memory Rows.*image, idx"):
            Tank(Rows(ARRAYS), {"labl": "int64"}, batch_size=4)


@pytest.mark.parametrize("kind", ["dict", "map"])
def test_to_device_serves_the_files_batches_as_engine_arrays(packed, dock, kind):
    want = take(Tank(packed, SPEC, batch_size=4, prep_fn=prep_draw, seed=3), 6)
    spec = {k: v for k, v in SPEC.items() if k != "name"}  # text does not go to a device
    engine_type = type(dock.coat(np.zeros(2, np.float32)))
    with Tank(memory(kind), spec, batch_size=4, prep_fn=prep_draw, seed=3, workers=2, to_device=True) as tk:
        got = take(tk, 4)
        again = tk.restore({**tk.state(), "mile": 0}).next()  # back to the start of epoch 0
    for batch, ref in zip(got + [again], want[:4] + [want[0]]):
        for key in ("image", "idx", "x", "draw"):
            assert type(batch[key]) is engine_type
            np.testing.assert_array_equal(dock.shell(batch[key]), ref[key], err_msg=key)


@pytest.mark.once
def test_the_readme_example_runs_and_its_two_tanks_continue_one_stream():
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    start = text.index("**Data in memory.**")
    code = re.compile(r"```python\n(.*?)```", re.S).search(text, start).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    batch, tk, x, y = namespace["batch"], namespace["tk"], namespace["x"], namespace["y"]
    assert batch["image"].shape == (100, 32, 32, 3) and batch["label"].dtype == np.int64
    with Tank({"image": x, "label": y}, batch_size=100, seed=0) as ref:
        ref.next()
        assert_bitwise([tk.next()], [ref.next()])
    tk.close()
