"""Test set-up: the suite runs once per engine (NEB_CORE=pytorch, then NEB_CORE=jax; see Makefile).

- `dock` is the front catalogue, bound to the engine of this pass: tests written with it run on
  both engines across the two passes.
- `both` gives the two backend docks side by side (imported directly, bypassing the binding) for
  parity tests, which compare engines in one process; they are marked `once`.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HAVE_TORCH = importlib.util.find_spec("torch") is not None

# CPython 3.12.0-3.12.2 refuse new threads as soon as the interpreter starts to shut down (python/cpython#113964,
# fixed in 3.12.3): an Orbax save still in flight at exit cannot finish there, and TimeMachine exits with status 1.
saves_finish_at_exit = pytest.mark.skipif(
    (3, 12, 0) <= sys.version_info[:3] < (3, 12, 3),
    reason=f"Python {sys.version.split()[0]} cannot start threads at exit (python/cpython#113964; fixed in 3.12.3)",
)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """Without torch (the Python 3.12 pass on the newest JAX), a test module that imports torch is skipped, not an
    error. With torch installed this changes nothing."""
    report = yield
    if (
        not HAVE_TORCH
        and report.failed
        and isinstance(collector, pytest.Module)
        and "ModuleNotFoundError: No module named 'torch'" in str(report.longrepr)
    ):
        report.outcome = "skipped"
        report.longrepr = (str(collector.path), 0, "Skipped: imports torch, which this venv lacks (JAX-only pass)")
    return report


@pytest.fixture(scope="session")
def engine() -> str:
    """The engine of this pass ('pytorch' or 'jax')."""
    import nebulae

    return nebulae.Law.CORE


@pytest.fixture(scope="session")
def dock():
    """The front dock, bound to this pass's engine."""
    from nebulae.astro import dock as front

    front.Craft  # noqa: B018 (binds)
    return front


@pytest.fixture(scope="session")
def both():
    """(torch dock, jax dock) imported directly, for cross-engine parity in one process."""
    from nebulae.backends.jax import dock as jdock
    from nebulae.backends.torch import dock as tdock

    return tdock, jdock


def run_in_pty(code: str, args: list[str], env: dict, size: tuple[int, int] | None = None, timeout: float = 150) -> str:
    """Run `python -c code *args` with a pseudo-terminal (of `size` = (rows, cols) when given, set before Python
    starts) as its stdout and stderr; return what the terminal received (the child must exit 0)."""
    import fcntl
    import pty
    import struct
    import termios
    import time

    pid, fd = pty.fork()
    if pid == 0:  # child: the pty is its controlling terminal
        try:
            if size is not None:
                fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
            os.execve(sys.executable, [sys.executable, "-c", code, *args], env)
        finally:
            os._exit(127)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = b"".join(chunks).decode()
    assert os.waitstatus_to_exitcode(status) == 0, text
    return text


def run_python(code: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter from the repository root (for binding tests)."""
    full_env = {k: v for k, v in os.environ.items() if k != "NEB_CORE"}
    full_env["PYTHONPATH"] = str(ROOT)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def assert_close(a, b, rtol=1e-5, atol=1e-5, what=""):
    """np.testing.assert_allclose on NumPy copies, with a label."""
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol, err_msg=what)
