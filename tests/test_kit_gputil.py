"""kit.GPUtil monitoring: a fake `pynvml` with two GPUs whose readings change, and the real module without drivers.

(Listing and selection are tested with cockpit.Engine in tests/test_cockpit_engine.py.)
"""

from __future__ import annotations

import sys
import threading
import time
import types

import pytest

from nebulae.kit.gputil import GPUtil, time_average
from tests.conftest import run_python

pytestmark = pytest.mark.once

FAKE = """
import threading

class NVMLError(Exception):
    pass

NVML_TEMPERATURE_GPU = 0
GPUS = [("Tesla A", 16000), ("Tesla B", 32000)]
reads = [0, 0]
lock = threading.Lock()
calls = {"init": 0, "shutdown": 0}

def nvmlInit():
    calls["init"] += 1

def nvmlShutdown():
    calls["shutdown"] += 1

def nvmlDeviceGetCount():
    return len(GPUS)

def nvmlDeviceGetHandleByIndex(i):
    return i

def nvmlDeviceGetName(h):
    return GPUS[h][0]

def nvmlDeviceGetUUID(h):
    return "GPU-%d" % h

class _Memory:
    def __init__(self, total, used):
        self.total, self.used, self.free = total, used, total - used

def nvmlDeviceGetMemoryInfo(h):
    # GPU 0 always uses 1000 MiB; GPU 1 uses 2000 MiB on its first reading, 4000 MiB afterwards
    used = 1000 if h == 0 else (2000 if reads[1] <= 1 else 4000)
    return _Memory(GPUS[h][1] * 2**20, used * 2**20)

def nvmlDeviceGetTemperature(h, sensor):
    with lock:
        reads[h] += 1
    return 40 + 10 * h

class _Util:
    def __init__(self, gpu):
        self.gpu, self.memory = gpu, 0

def nvmlDeviceGetUtilizationRates(h):
    return _Util(50 if h == 0 else min(100, 10 * reads[1]))
"""


@pytest.fixture
def fake_nvml(monkeypatch):
    module = types.ModuleType("pynvml")
    exec(FAKE, module.__dict__)
    monkeypatch.setitem(sys.modules, "pynvml", module)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return module


def test_time_average_is_the_trapezoid_rule():
    assert time_average([0, 1, 3], [10, 20, 20]) == pytest.approx((15 * 1 + 20 * 2) / 3)
    assert time_average([5, 5], [1, 3]) == 2  # no time spanned: the plain mean
    assert time_average([], []) != time_average([], [])  # NaN without samples
    with pytest.raises(ValueError, match="2 times but 1 values"):
        time_average([0, 1], [1])


def test_monitor_samples_two_changing_gpus(fake_nvml, capsys):
    util = GPUtil()
    util.monitor(0.02)
    assert any(t.name == "nebulae-gputil" for t in threading.enumerate())
    time.sleep(0.25)
    stats = util.status()
    assert not any(t.name == "nebulae-gputil" for t in threading.enumerate())  # stopped
    assert [(s.index, s.name) for s in stats] == [(0, "Tesla A"), (1, "Tesla B")]
    a, b = stats
    assert a.samples >= 3 and b.samples >= 3 and a.seconds > 0.1
    assert (a.temperature, a.utilisation, a.memory) == (40, 50, 1000)  # constant readings
    assert b.temperature == 50
    assert 2000 < b.memory < 4000  # 2000 MiB at first, then 4000: a time-weighted mean in between
    assert 10 < b.utilisation <= 100  # rising readings
    out = capsys.readouterr().out
    assert "Tesla A" in out and "Tesla B" in out and "Temp C" in out
    assert util.table in out
    assert fake_nvml.calls["init"] == fake_nvml.calls["shutdown"]  # NVML released by the thread


def test_monitor_arguments_and_order(fake_nvml):
    util = GPUtil()
    with pytest.raises(RuntimeError, match="call monitor"):
        util.status()
    with pytest.raises(ValueError, match="positive number"):
        util.monitor(0)
    with pytest.raises(ValueError, match="positive number"):
        util.monitor("5")
    util.monitor(5)  # a long period: status() still returns at once (the thread waits on an event)
    with pytest.raises(RuntimeError, match="already monitoring"):
        util.monitor(5)
    start = time.monotonic()
    stats = util.status()
    assert time.monotonic() - start < 2
    assert [s.samples for s in stats] == [2, 2]  # one at start, one at stop


def test_without_drivers_no_gpus_and_no_crash(monkeypatch, capsys):
    pytest.importorskip("pynvml")
    util = GPUtil()
    util.monitor(0.05)
    stats = util.status()
    real_gpus = util.count()
    assert len(stats) == real_gpus  # this machine: 0 (no NVIDIA driver), and no exception
    if real_gpus == 0:
        assert "no NVIDIA GPU" in capsys.readouterr().out
    monkeypatch.setitem(sys.modules, "pynvml", None)  # nvidia-ml-py missing altogether
    util.monitor(0.05)
    assert util.status() == []


def test_gpus_command_without_drivers():
    out = run_python("import sys; from nebulae.__main__ import main; sys.exit(main(['gpus']))")
    assert out.returncode == 0, out.stderr
    assert "GPU" in out.stdout
    out = run_python("import sys; from nebulae.__main__ import main; sys.exit(main(['gpus', '--help']))")
    assert out.returncode == 0 and "--monitor" in out.stdout
