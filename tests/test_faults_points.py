"""nebulae.faults: a named point does nothing unless NEB_FAULT names it, then kills, fills the disk, or raises."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys

import pytest

from nebulae import faults

pytestmark = pytest.mark.once

SCRIPT = "from nebulae import faults\nfor i in range(3):\n    faults.point('demo.step')\n    print(i, flush=True)\n"


def _run(spec: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "NEB_FAULT"}
    if spec is not None:
        env["NEB_FAULT"] = spec
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60)


def test_an_unnamed_point_does_nothing():
    for spec in (None, "other.point", "demo.ste"):
        done = _run(spec)
        assert done.returncode == 0 and done.stdout.split() == ["0", "1", "2"], (spec, done.stderr)


def test_a_named_point_kills_the_process_the_nth_time_it_is_reached():
    first, third = _run("demo.step"), _run("other,demo.step@3=kill")
    assert first.returncode == -signal.SIGKILL and first.stdout == ""
    assert third.returncode == -signal.SIGKILL and third.stdout.split() == ["0", "1"]


def test_enospc_and_raise_actions_raise_where_the_point_is(monkeypatch):
    monkeypatch.setenv("NEB_FAULT", "a.write=enospc,b.step=raise,c.x=wobble")
    with pytest.raises(OSError) as err:
        faults.point("a.write")
    assert err.value.errno == errno.ENOSPC and "a.write" in str(err.value)
    with pytest.raises(RuntimeError, match="fault injected at b.step"):
        faults.point("b.step")
    with pytest.raises(ValueError, match="unknown action 'wobble' for 'c.x'"):
        faults.point("c.x")
    faults.point("d.unnamed")
