"""Named fault points, for tests that inject a fault at an exact place (a kill between two renames, a full disk).

The product calls `faults.point("anchor.between-renames")` where a crash matters; nothing happens unless the
environment variable NEB_FAULT names that point. NEB_FAULT is a comma-separated list of `point` or
`point=action` (`point@N=action`: only on the N-th time the point is reached, counting from 1):

- `kill` (the default): SIGKILL this process at once, as a power cut or the OOM killer would;
- `enospc`: raise OSError(ENOSPC), as a full disk does;
- `hang`: sleep forever (a stuck peer or worker);
- `raise`: raise RuntimeError naming the point.

Points are listed where they are reached; `grep -rn 'faults.point' nebulae backends` shows them all.
"""

from __future__ import annotations

import errno
import os
import signal
import time

__all__ = ["point"]

_reached: dict[str, int] = {}


def _actions() -> dict[str, tuple[int | None, str]]:
    out = {}
    for item in filter(None, (s.strip() for s in os.environ.get("NEB_FAULT", "").split(","))):
        name, _, action = item.partition("=")
        name, _, nth = name.partition("@")
        out[name] = (int(nth) if nth else None, action or "kill")
    return out


def point(name: str) -> None:
    """Reach the fault point `name`: act as NEB_FAULT says for it (see the module docstring), else nothing."""
    if "NEB_FAULT" not in os.environ:
        return
    spec = _actions().get(name)
    if spec is None:
        return
    _reached[name] = count = _reached.get(name, 0) + 1
    nth, action = spec
    if nth is not None and count != nth:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "enospc":
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (injected at {name})")
    elif action == "hang":
        while True:
            time.sleep(3600)
    elif action == "raise":
        raise RuntimeError(f"fault injected at {name}")
    else:
        raise ValueError(f"NEB_FAULT: unknown action {action!r} for {name!r}; use kill, enospc, hang or raise")
