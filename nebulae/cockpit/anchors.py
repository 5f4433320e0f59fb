"""Anchor names on disk: `<scope>-<step>` plus the engine's suffix, listing, rotation and temporary names.

An anchor of scope S at step n is the entry ``S-n`` + suffix in a folder ('.pth' files on torch,
Orbax directories without suffix on JAX). Listing reads the folder, so rotation and "the newest
anchor" work across processes and runs. Newest means the highest step. Temporary entries always
start with '.' (``.S-n.pth.tmp-<host>-<pid>-<token>``), or carry Orbax's ``.orbax-checkpoint-tmp``
ending, so they never match an anchor name; `sweep` removes the leftovers of this host's dead processes.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
from collections.abc import Callable

_TEMP = re.compile(r"^\..+\.(?:tmp|nebulae-new|nebulae-old)-([A-Za-z0-9]*)-(\d+)-[0-9a-f]+$")
_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32]


def name(scope: str, step: int) -> str:
    """The default anchor name for `scope` at `step` (without the engine's suffix)."""
    return f"{scope}-{int(step)}"


def pattern(scope: str, suffix: str) -> re.Pattern:
    """The regular expression of complete anchor names of `scope` (group 1 is the step)."""
    return re.compile(rf"^{re.escape(scope)}-(\d+){re.escape(suffix)}$")


def listing(folder: str, scope: str, suffix: str, complete: Callable[[str], bool]) -> list[tuple[int, str]]:
    """(step, absolute path) of the complete anchors of `scope` in `folder`, oldest (lowest step) first."""
    folder = os.path.abspath(folder)
    if not os.path.isdir(folder):
        return []
    regex = pattern(scope, suffix)
    found = []
    for entry in os.listdir(folder):
        match = regex.match(entry)
        path = os.path.join(folder, entry)
        if match and complete(path):
            found.append((int(match.group(1)), path))
    return sorted(found)


def step_in(path: str, scope: str, suffix: str) -> int | None:
    """The step of `path` when its name is a default anchor name of `scope`, else None."""
    match = pattern(scope, suffix).match(os.path.basename(path))
    return int(match.group(1)) if match else None


def rotate(folder: str, scope: str, suffix: str, keep: int, complete: Callable[[str], bool], protect: str) -> list:
    """Delete the oldest anchors of `scope` beyond the newest `keep`; `protect` (just written) is always kept."""
    if keep <= 0:
        return []
    found = listing(folder, scope, suffix, complete)
    others = [p for _, p in found if os.path.abspath(p) != os.path.abspath(protect)]
    kept = keep - (len(others) < len(found))
    doomed = others[: max(0, len(others) - kept)]
    for path in doomed:
        remove(path)
    return doomed


def remove(path: str) -> None:
    """Delete an anchor (a file or a directory); a missing one is ignored."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def temporary(final: str, kind: str = "tmp") -> str:
    """A hidden temporary path beside `final` that names this host and process (never an anchor name)."""
    folder, base = os.path.split(final)
    return os.path.join(folder, f".{base}.{kind}-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}")


def sweep(folder: str) -> list[str]:
    """Remove temporary entries (and their Orbax temporaries) left in `folder` by dead processes of this host."""
    removed = []
    if not os.path.isdir(folder):
        return removed
    for entry in os.listdir(folder):
        match = _TEMP.match(entry.split(".orbax-checkpoint-tmp")[0])
        if match and match.group(1) == _HOST and not _alive(int(match.group(2))):
            path = os.path.join(folder, entry)
            remove(path)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fsync_folder(folder: str) -> None:
    """Make a rename inside `folder` durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_some(state: dict, craft, scope: str | None) -> None:
    """ValueError unless `state` (what an engine's `anchor.save` selected within `scope`) holds something."""
    if not state:
        raise ValueError(f"{type(craft).__name__} has nothing to save within scope {scope!r}")
