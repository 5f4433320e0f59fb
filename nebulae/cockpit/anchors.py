"""Anchor names on disk: `<scope>-<step>` plus the engine's suffix, listing, rotation and temporary names.

An anchor of scope S at step n is the entry ``S-n`` + suffix in a folder ('.pth' files on torch,
Orbax directories without suffix on JAX). n is the number of updates applied (the largest over the craft's
optimizers); off a grad_accum boundary (some micro-batches accumulated, or an update skipped for a non-finite
loss or by the loss scaler) the name is ``S-n.c``, c being the optimizer calls (micro-batches) made so far
(summed over the craft's optimizers), so two distinct states never share a name: with grad_accum=3, calls 6
and 7 give ``S-2`` and ``S-2.7``. Listing reads the folder, so rotation and "the newest anchor" work across
processes and runs. Newest means the highest (n, c), ``S-n`` before ``S-n.c``. Temporary entries always
start with '.' (``.S-n.pth.tmp-<host>-<pid>-<token>``), so they never match an anchor name; Orbax's own
``.orbax-checkpoint-tmp`` folders are made inside such hidden names.

What survives a kill (SIGKILL, power cut) at any instant, on both engines: every finished anchor, under its own
name or, while a re-save of that name is being swapped in, under a hidden name that `sweep` (run by every
`drop` and `to`) renames back: the new copy when it is complete, else the old one. A removal (rotation)
first renames the anchor aside, so a half-deleted anchor never carries an anchor name. `sweep` removes every
other leftover of this host's dead processes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import socket
import zlib
from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np

from nebulae import faults

_TEMP = re.compile(r"^\.(.+)\.(tmp|nebulae-new|nebulae-old|nebulae-del)-([A-Za-z0-9]*)-(\d+)-[0-9a-f]+$")
_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32]


class Step(NamedTuple):
    """Where a craft's optimizers stand: `updates` applied (the largest) and, off a grad_accum boundary, `calls`."""

    updates: int
    calls: int | None = None  # None at a boundary: every optimizer made exactly updates × grad_accum calls


def step_of(counters: Iterable[tuple[int, int, int]]) -> Step | None:
    """The anchor step from each optimizer's (updates, calls, grad_accum) in a craft; None without optimizers.

    At a boundary (every optimizer has the same updates and made exactly updates × grad_accum calls) the name
    is ``S-<updates>``, as before grad_accum states were told apart; else ``S-<updates>.<calls>`` (the sum of
    calls only grows, so distinct states of one run never share a name)."""
    counters = [(int(u), int(c), int(k)) for u, c, k in counters]
    if not counters:
        return None
    top = max(u for u, _, _ in counters)
    boundary = all(u == top and c == u * k for u, c, k in counters)
    return Step(top, None if boundary else sum(c for _, c, _ in counters))


def name(scope: str, step: int | Step) -> str:
    """The default anchor name for `scope` at `step` (without the engine's suffix)."""
    if isinstance(step, Step):
        return f"{scope}-{step.updates}" if step.calls is None else f"{scope}-{step.updates}.{step.calls}"
    return f"{scope}-{int(step)}"


def check_name(value: str, what: str) -> str:
    """`value` if it is a plain name (no folder part, not hidden), else a ValueError naming `what`."""
    if not isinstance(value, str) or not value or value.startswith(".") or "/" in value or "\\" in value:
        raise ValueError(
            f"TimeMachine: {what} {value!r} is not a plain name: anchors are named <scope>-<step> directly inside "
            "save_path, so a scope may not contain '/' or '\\' or start with '.' (a hidden name, as temporaries "
            "have) (use e.g. 'GAN_G' for 'GAN/G')"
        )
    return value


def check_file(file: str) -> None:
    """A ValueError unless `file` names an entry inside save_path (relative, no '..' part)."""
    parts = re.split(r"[\\/]", file)
    if os.path.isabs(file) or ".." in parts:
        raise ValueError(
            f"TimeMachine.drop: file={file!r} would write outside save_path: give a name inside it (e.g. 'best' or "
            "'net.h5', or 'runs/best' for a subfolder), or make another TimeMachine whose save_path is that folder"
        )


def pattern(scope: str, suffix: str) -> re.Pattern:
    """The regular expression of complete anchor names of `scope` (group 1: the step; group 2: the calls, off a
    grad_accum boundary)."""
    return re.compile(rf"^{re.escape(scope)}-(\d+)(?:\.(\d+))?{re.escape(suffix)}$")


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
        if match and complete(path):  # S-n before S-n.c: ordered by (updates, calls)
            found.append(((int(match.group(1)), int(match.group(2) or -1)), path))
    return [(key[0], path) for key, path in sorted(found)]


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
        remove(path, aside=True)
    return doomed


def remove(path: str, aside: bool = False) -> None:
    """Delete an anchor (a file or a directory); a missing one is ignored. `aside`: first rename it to a hidden
    name, so a kill during a long removal leaves a leftover for `sweep`, never a half anchor under its name."""
    if aside and os.path.lexists(path):
        hidden = temporary(path, "nebulae-del")
        try:
            os.rename(path, hidden)
        except FileNotFoundError:
            return
        fsync_folder(os.path.dirname(os.path.abspath(path)))
        faults.point("anchor.removing")
        path = hidden
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def temporary(final: str, kind: str = "tmp") -> str:
    """A hidden temporary path beside `final` that names this host and process (never an anchor name)."""
    folder, base = os.path.split(final)
    return os.path.join(folder, f".{base}.{kind}-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}")


def sweep(folder: str, complete: Callable[[str], bool] | None = None) -> list[str]:
    """Tidy `folder` after this host's dead processes: put back an anchor that a kill caught between the two
    renames of a re-save (the new copy if `complete` says it is whole, else the old one), then remove every
    other temporary entry they left. Returns the removed paths."""
    removed: list[str] = []
    if not os.path.isdir(folder):
        return removed
    orphans: dict[str, dict[str, str]] = {}
    for entry in sorted(os.listdir(folder)):
        stem, orbax, _ = entry.partition(".orbax-checkpoint-tmp")  # Orbax's unfinished folder: never whole
        match = _TEMP.match(stem)
        if match and match.group(3) == _HOST and not alive(int(match.group(4))):
            kind = match.group(2) + orbax
            orphans.setdefault(match.group(1), {})[kind] = os.path.join(folder, entry)
    for base, kinds in orphans.items():
        final = os.path.join(folder, base)
        if complete is not None and not os.path.lexists(final):
            for kind in ("nebulae-new", "nebulae-old"):
                if kind in kinds and complete(kinds[kind]):
                    os.rename(kinds.pop(kind), final)
                    fsync_folder(folder)
                    break
        for path in kinds.values():
            remove(path)
            removed.append(path)
    return removed


def alive(pid: int) -> bool:
    """Whether process `pid` of this host may still be running (this process, or one we may not signal, counts)."""
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


class CorruptAnchorError(ValueError):
    """An anchor whose bytes are not those written: flipped by a disk or a copy, or cut short."""


def digests(arrays: Iterable[tuple[str, np.ndarray]]) -> dict[str, int]:
    """{key: CRC-32 of the array's bytes}, stored in an anchor when it is written and checked when it is read."""
    return {key: zlib.crc32(np.ascontiguousarray(array).view(np.uint8).reshape(-1)) for key, array in arrays}


def verify(path: str, stored: dict[str, int] | None, arrays: Iterable[tuple[str, np.ndarray]]) -> None:
    """CorruptAnchorError naming `path` and the first array whose bytes differ from the `stored` digests (an
    anchor written before digests were stored has none: nothing to check)."""
    if not stored:
        return
    actual = digests(arrays)
    for key, crc in stored.items():
        if actual.get(key) != crc:
            raise CorruptAnchorError(
                f"the anchor {path!r} is corrupt: array {key!r} "
                + ("is missing" if key not in actual else "does not match the checksum stored when it was written")
                + " (a disk or copy error, or a cut-short file); it was not loaded: load an earlier anchor"
            )


def unreadable(path: str, err: BaseException) -> CorruptAnchorError:
    """The error for an anchor whose files cannot be read back (cut short, garbled)."""
    return CorruptAnchorError(
        f"the anchor {path!r} is corrupt or cut short and cannot be read ({type(err).__name__}: "
        f"{str(err).splitlines()[0] if str(err) else ''}); it was not loaded: load an earlier anchor"
    )


def full_disk(err: BaseException | None) -> bool:
    """Whether `err` or an error it was raised from (torch's zip writer raises 'unexpected pos ...' from the
    file's OSError) says the disk is full."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if getattr(err, "errno", None) == errno.ENOSPC or "No space left" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


def save_failed(path: str, err: BaseException, size: int | None = None) -> RuntimeError:
    """The error for a save that failed: a full disk is named as such (torch's zip writer hides the errno);
    `size`: the bytes the anchor was to hold, when known."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if full_disk(err) or (free is not None and free < 2**20):
        left = f"{free} bytes free" if free is not None else ""
        need = f"writing about {size} bytes" if size is not None else ""
        what = f" ({', '.join(filter(None, (need, left)))})" if need or left else ""
        return RuntimeError(
            f"saving the anchor {path!r} failed: no space left on device in {folder!r}{what}; free some space or "
            "give the TimeMachine another save_path. Earlier anchors are intact; this one was not written"
        )
    return RuntimeError(f"saving the anchor {path!r} failed: {type(err).__name__}: {err}; earlier anchors are intact")


def check_some(state: dict, craft, scope: str | None) -> None:
    """ValueError unless `state` (what an engine's `anchor.save` selected within `scope`) holds something."""
    if not state:
        raise ValueError(f"{type(craft).__name__} has nothing to save within scope {scope!r}")
