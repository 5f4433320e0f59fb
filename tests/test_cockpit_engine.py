"""cockpit.Engine and kit.GPUtil: NVML through a fake pynvml, CPU placement, GPU selection and its errors.

This machine has no GPU: GPU selection is checked up to the point where the engine must see the
devices (CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER and JAX's memory policy as set in a fresh
interpreter, with a fake NVML listing four GPUs), and the 'too late' detection by initialising
the engine first (JAX: jax.devices(); torch: a CUDA-initialised flag forced on).
"""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from nebulae.cockpit.engine import CPU, GPU, Engine
from nebulae.kit.gputil import GpuInfo, GPUtil
from tests.conftest import run_python
from tests.models.steps import mlp, train_dev

FAKE_NVML = """
class NVMLError(Exception):
    pass

GPUS = [("Tesla A", 16000, 9000), ("Tesla B", 16000, 15000), ("Tesla C", 32000, 20000), ("Tesla D", 8000, 1000)]
BROKEN = set()
calls = {"init": 0, "shutdown": 0}

def nvmlInit():
    calls["init"] += 1

def nvmlShutdown():
    calls["shutdown"] += 1

def nvmlDeviceGetCount():
    return len(GPUS)

def nvmlDeviceGetHandleByIndex(i):
    if i in BROKEN:
        raise NVMLError("GPU is lost")
    return i

def nvmlDeviceGetName(h):
    return GPUS[h][0].encode()

class _Memory:
    def __init__(self, total, free):
        self.total, self.free, self.used = total, free, total - free

def nvmlDeviceGetMemoryInfo(h):
    return _Memory(GPUS[h][1] * 2**20, GPUS[h][2] * 2**20)

def nvmlDeviceGetUUID(h):
    return "GPU-%08d" % h
"""

INSTALL_FAKE = f"import sys, types\nnvml = types.ModuleType('pynvml')\nexec({FAKE_NVML!r}, nvml.__dict__)\n"
INSTALL_FAKE += "sys.modules['pynvml'] = nvml\n"


@pytest.fixture
def fake_nvml(monkeypatch):
    """A fake `pynvml` with two GPUs (16 GB with 9 GB free, 16 GB with 15 GB free), and no CUDA_VISIBLE_DEVICES."""
    module = types.ModuleType("pynvml")
    exec(FAKE_NVML, module.__dict__)
    module.GPUS = module.GPUS[:2]
    monkeypatch.setitem(sys.modules, "pynvml", module)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return module


@pytest.fixture
def restore_coat_device():
    """Put coat's device back as it was after a test that gears an Engine."""
    from nebulae import law

    tensor = sys.modules[f"{law.backend().__name__}.tensor"]
    before = tensor.device()
    yield
    tensor.set_device(before)


# ---------------------------------------------------------------------------------------------- GPUtil


def test_gputil_lists_gpus_by_free_memory(fake_nvml):
    util = GPUtil()
    assert util.devices() == [GpuInfo(0, "Tesla A", 16000, 9000), GpuInfo(1, "Tesla B", 16000, 15000)]
    assert util.count() == 2
    assert util.available(1, 2048) == [(1, "Tesla B", 16000, 15000)]
    assert [g.index for g in util.available(2, 2048)] == [1, 0]
    assert [g.index for g in util.available(2, 10000)] == [1]  # fewer qualify: fewer come back
    assert util.available(2, 20000) == []
    assert fake_nvml.calls["init"] == fake_nvml.calls["shutdown"] > 0  # every query shuts NVML down again


def test_gputil_honours_cuda_visible_devices_and_skips_lost_gpus(fake_nvml, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert [g.index for g in GPUtil().devices()] == [0]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-00000001")
    assert [g.index for g in GPUtil().devices()] == [1]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert GPUtil().devices() == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    fake_nvml.BROKEN.add(0)
    assert [g.index for g in GPUtil().devices()] == [1]


def test_gputil_rejects_bad_arguments(fake_nvml):
    with pytest.raises(ValueError, match="ngpus"):
        GPUtil().available(0, 1)
    with pytest.raises(ValueError, match="least_mem"):
        GPUtil().available(1, -5)


def test_gputil_without_drivers_reports_no_gpu(monkeypatch):
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        assert GPUtil().devices() == []  # the real module, no driver: no GPUs and no exception
    else:
        pynvml.nvmlShutdown()
        assert isinstance(GPUtil().devices(), list)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # the module missing altogether
    assert GPUtil().available(1, 0) == []


# ---------------------------------------------------------------------------------------------- Engine on CPU


def test_cpu_engine_places_crafts_and_coat(dock, engine, restore_coat_device):
    net = mlp(dock)
    train, _ = train_dev(dock, net, "Adam", lr=1e-2, ema=0.9)
    x = np.ones((4, 12), np.float32)
    z = np.arange(4) % 5
    if engine == "jax":
        import jax
        from flax import nnx

        from nebulae.backends.jax import anchor

        other = jax.devices("cpu")[-1]
        anchor.place(train, other)  # start somewhere else, so gear() has to move everything
        ng = Engine(CPU)
        assert ng.chips == jax.devices("cpu") and ng.chip == jax.devices("cpu")[0]
        train.gear(ng)
        held = [v.get_raw_value() for _, v in nnx.iter_graph(train) if isinstance(v, nnx.Variable)]
        assert held and all(a.devices() == {ng.chip} for a in held if isinstance(a, jax.Array))
        assert dock.coat(x).devices() == {ng.chip}
    else:
        import torch

        ng = Engine("cpu")
        assert ng.chips == [torch.device("cpu")]
        train.gear(ng)
        assert all(p.device.type == "cpu" for p in train.parameters())
        assert dock.coat(x).device == torch.device("cpu")
    assert np.isfinite(dock.shell(train(dock.coat(x), dock.coat(z))))
    assert "CPU" in repr(ng)


def test_engine_rejects_unknown_devices_and_counts(dock):
    with pytest.raises(ValueError, match="CPU or GPU"):
        Engine("TPU")
    with pytest.raises(ValueError, match="ngpus"):
        Engine(GPU, ngpus=0)


def test_gpu_without_gpus_fails_clearly(dock, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(RuntimeError, match=r"no usable NVIDIA GPU .*looked for 2 GPU"):
        Engine(GPU, ngpus=2)


def test_given_gpu_indices_are_validated_as_plain_ints(dock, fake_nvml):
    for bad in (("0",), (True,), (-1,), (0, 0), (0.0,)):
        with pytest.raises(ValueError, match="distinct non-negative"):
            Engine(GPU, available_gpus=bad)
    with pytest.raises(ValueError, match=r"GPU\(s\) \[5\] .*usable: \[0, 1\]"):
        Engine(GPU, available_gpus=(5,))
    with pytest.raises(ValueError, match="ngpus=2 but available_gpus lists only 1"):
        Engine(GPU, ngpus=2, available_gpus=(1,))
    with pytest.raises(RuntimeError, match=r"needs 2 GPU\(s\) with at least 12000 MiB free; only 1 qualify"):
        Engine(GPU, ngpus=2, least_mem=12000)


# ------------------------------------------------------------------------- GPU selection, fresh interpreters

REPORT = """
import json, os
from nebulae.cockpit.engine import Engine, GPU
try:
    Engine(GPU, {args})
    error = None
except Exception as e:
    error = type(e).__name__ + ': ' + str(e)
keys = ('CUDA_VISIBLE_DEVICES', 'CUDA_DEVICE_ORDER', 'XLA_PYTHON_CLIENT_PREALLOCATE')
print('REPORT ' + json.dumps({{'env': {{k: os.environ.get(k) for k in keys}}, 'error': error}}))
"""


def _report(engine: str, code: str, env: dict | None = None) -> dict:
    res = run_python(code, env={"NEB_CORE": engine, **(env or {})})
    assert res.returncode == 0, res.stderr[-3000:]
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("REPORT ")][-1]
    return json.loads(line[len("REPORT ") :])


def test_given_gpus_are_made_visible_before_the_engine_starts(engine):
    out = _report(engine, INSTALL_FAKE + REPORT.format(args="ngpus=2, available_gpus=(3, 1)"))
    assert out["env"]["CUDA_VISIBLE_DEVICES"] == "3,1"
    assert out["env"]["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    if engine == "jax":
        assert out["env"]["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"  # no 75 % grab on a shared GPU
    # no real GPU here: the engine itself must then say it sees none (CPU-only build / no driver)
    if out["error"] is not None:
        assert "RuntimeError" in out["error"] and ("sees no CUDA device" in out["error"] or "no GPU" in out["error"])


def test_gputil_choice_and_the_users_memory_settings_are_kept(engine):
    env = {"XLA_PYTHON_CLIENT_MEM_FRACTION": ".5"}
    out = _report(engine, INSTALL_FAKE + REPORT.format(args="ngpus=2, least_mem=2048"), env=env)
    assert out["env"]["CUDA_VISIBLE_DEVICES"] == "2,1"  # most free memory first (20 GB, 15 GB free)
    assert out["env"]["XLA_PYTHON_CLIENT_PREALLOCATE"] is None  # the user chose a policy: left alone


def test_asking_for_gpus_after_the_engine_started_is_too_late(engine):
    if engine == "jax":
        start = "import jax\njax.devices()\n"
    else:
        start = "import torch\ntorch.cuda.is_initialized = lambda: True\n"
    out = _report(engine, INSTALL_FAKE + start + REPORT.format(args="available_gpus=(1,)"))
    assert out["error"] is not None and "RuntimeError" in out["error"]
    assert "already" in out["error"] and "before" in out["error"]
    assert out["env"]["CUDA_VISIBLE_DEVICES"] is None  # nothing half-applied
