"""kit: Timer, destine, parse_cfg/record_cfg, hotvec2mtx/mtx2hotvec, ver2num, rank, and `python -m nebulae info`."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest

from nebulae import kit
from tests.conftest import run_python


@pytest.mark.once
def test_timer_as_context_and_decorator():
    with kit.Timer() as t:
        time.sleep(0.02)
    assert 0.02 <= t.elapsed < 1 and t.calls == 1

    @kit.Timer
    def double(x):
        """Doubles."""
        time.sleep(0.01)
        return 2 * x

    assert double(4) == 8 and double(5) == 10  # the function's own result, not (time, result)
    assert double.calls == 2 and double.total >= 0.02 and 0.01 <= double.elapsed < 1
    assert double.__doc__ == "Doubles." and double.__name__ == "double"

    @kit.Timer(sync=False)
    def one():
        return 1

    assert one() == 1 and one.calls == 1

    class Model:
        @kit.Timer
        def step(self, x):
            return x + 1

    assert Model().step(1) == 2 and Model.step.calls == 1
    with pytest.raises(TypeError, match="one function"):
        kit.Timer()(1, 2)


def test_timer_syncs_the_bound_engine(dock, engine):
    x = dock.coat(np.ones((256, 256), np.float32))
    with kit.Timer() as t:
        y = x @ x  # queued asynchronously on JAX (and on CUDA): the Timer waits for it
    assert t.elapsed > 0
    assert dock.shell(y)[0, 0] == 256.0


def test_destine_seeds_every_stream(dock, engine):
    def draws():
        net = dock.Dense(3, 2)
        w = net.export_weights()["weight"]
        return random.random(), np.random.rand(), w

    kit.destine(7)
    a = draws()
    kit.destine(7)
    b = draws()
    assert a[:2] == b[:2]
    np.testing.assert_array_equal(a[2], b[2])
    if engine == "pytorch":
        import torch

        kit.destine(3)
        r1 = torch.rand(3)
        kit.destine(3)
        assert torch.equal(r1, torch.rand(3))
    with pytest.raises(ValueError, match="non-negative integer"):
        kit.destine(-1)
    with pytest.raises(ValueError, match="non-negative integer"):
        kit.destine(1.5)


@pytest.mark.once
def test_config_round_trip(tmp_path):
    config = {"name": "run-ü", "lr": 0.001, "layers": [64, 32], "nested": {"b": 1, "a": 2}}
    for ext in (".yml", ".yaml", ".json"):
        path = kit.record_cfg(tmp_path / f"sub/cfg{ext}", config)
        assert kit.parse_cfg(path) == config
    assert list(kit.parse_cfg(tmp_path / "sub/cfg.yml")["nested"]) == ["b", "a"]  # key order kept
    assert "ü" in (tmp_path / "sub/cfg.yml").read_text(encoding="utf-8")
    kept = kit.record_cfg(tmp_path / "sub/cfg.yml", {"x": 1}, overwrite=False)
    assert kept.name == "cfg_.yml" and kit.parse_cfg(tmp_path / "sub/cfg.yml") == config  # name intact
    assert kit.record_cfg(tmp_path / "sub/cfg.yml", {"x": 2}, overwrite=False).name == "cfg__.yml"
    with pytest.raises(ValueError, match="unknown extension '.txt'"):
        kit.parse_cfg(tmp_path / "cfg.txt")
    (tmp_path / "evil.yaml").write_text("!!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(Exception, match="python/object"):
        kit.parse_cfg(tmp_path / "evil.yaml")  # safe_load: no code runs


@pytest.mark.once
def test_hot_vectors():
    m = kit.hotvec2mtx(["0,2", [1, 3], 2, np.int64(0)], 4, on_value=5, off_value=-1)
    assert m.dtype == np.float32
    np.testing.assert_array_equal(m, [[5, -1, 5, -1], [-1, 5, -1, 5], [-1, -1, 5, -1], [5, -1, -1, -1]])
    assert kit.mtx2hotvec(m, off_value=-1) == [[0, 2], [1, 3], [2], [0]]
    np.testing.assert_array_equal(kit.hotvec2mtx(np.array([1, 0]), 2), [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="outside \\[0, 3\\)"):
        kit.hotvec2mtx([3], 3)
    with pytest.raises(ValueError, match="2-D"):
        kit.mtx2hotvec(np.ones(3))


@pytest.mark.once
def test_ver2num_orders_versions():
    assert kit.ver2num("2.1") > kit.ver2num("1.7.0")  # the original got this wrong
    assert kit.ver2num("2.1") == kit.ver2num("2.1.0") == 20100
    assert kit.ver2num("0.6.21a0") == kit.ver2num("0.6.21") == 621
    assert kit.ver2num("2.13.0+cu128") == 21300
    assert kit.ver2num("1.10.0", vbits=3) == 1010000
    with pytest.raises(ValueError, match="larger vbits"):
        kit.ver2num("1.100")
    with pytest.raises(ValueError, match="does not start with a version"):
        kit.ver2num("abc")


@pytest.mark.once
def test_rank_from_the_environment():
    code = "from nebulae.kit.rank import rank; print(rank())"
    assert run_python(code).stdout.strip() == "0"
    assert run_python(code, env={"RANK": "3"}).stdout.strip() == "3"
    assert run_python(code, env={"NEB_RANK": "2"}).stdout.strip() == "2"


@pytest.mark.once
def test_info_command():
    out = run_python("import sys; from nebulae.__main__ import main; sys.exit(main(['info']))")
    assert out.returncode == 0, out.stderr
    assert "numpy" in out.stdout and "NVIDIA GPUs (NVML): 0" in out.stdout and "python" in out.stdout
    for command in ("info", "gpus", "demo", "pack"):
        help_out = run_python(f"import sys; from nebulae.__main__ import main; sys.exit(main(['{command}', '--help']))")
        assert help_out.returncode == 0 and "usage" in help_out.stdout
