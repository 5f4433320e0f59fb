"""Start one process per world, watch them, and stop them all when one fails (engine-neutral).

Processes are started with spawn (never fork: CUDA and threads do not survive a fork). Each rank
reports an exception's traceback through its own pipe before it exits, and dies with the launcher
(`watch_parent`: a killed launcher leaves no orphan ranks training). The parent waits on the pipes
and the processes; when one rank fails it waits a moment for the others' news, blames the rank that
failed first (a rank that lost its peers in a collective is a consequence, not the cause; a rank
still alive after another gave up waiting for it is hung, and its stack is taken), terminates the
rest (which may be blocked in a collective) and raises WorldError with what it knows.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import faulthandler
import multiprocessing as mp
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait

GRACE = 5.0  # seconds a terminated rank gets before it is killed
SETTLE = 2.0  # seconds the launcher waits, after a first failure, for the other ranks' news
PARENT_POLL = 0.5  # seconds between a rank's checks that its launcher lives (where the kernel cannot tell it)
_STACK_SIGNAL = getattr(signal, "SIGUSR1", None)  # asks a hung rank for its stack (faulthandler)


class WorldError(RuntimeError):
    """A rank of a Multiverse failed; the message holds its rank, how it failed and its traceback."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def watch_parent(parent: int) -> None:
    """End this process (SIGKILL) as soon as the process `parent` is gone, so no child outlives its parent.

    Linux: the kernel's parent-death signal (immediate); elsewhere, and as a back-up, a daemon thread
    that checks every PARENT_POLL seconds.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # died before the watch was set
        os.kill(os.getpid(), signal.SIGKILL)

    def poll() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=poll, name="nebulae-parent-watch", daemon=True).start()


def raised(exc: BaseException, rank: int, nproc: int) -> WorldError:
    """The WorldError for an exception raised by the universe in this process (rank `rank` of `nproc`),
    with the same text as a spawned rank's; raise it `from exc`."""
    text = "".join(traceback.format_exception(exc)).rstrip()
    return WorldError(f"Multiverse: rank {rank} of {nproc} failed first (it raised {type(exc).__name__}).\n{text}")


def died_silently(peers: list[int], nproc: int, witness: int, exc: BaseException) -> str:
    """The WorldError text when rank `witness` lost its peers (`exc`) and none of `peers` said why: one of them
    was killed or exited (named when it is the only peer)."""
    who = f"rank {peers[0]} of {nproc}" if len(peers) == 1 else f"one of ranks {peers} of {nproc}"
    last = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return (
        f"Multiverse: {who} failed first (it died without a word: killed, or its process exited); rank {witness} "
        f"lost it in a collective: {type(exc).__name__}: {last}"
    )


def _rank_main(
    target: Callable, rank: int, env: dict, report, parent: int, stack: str, classify, args: tuple, kwargs: dict
) -> None:
    watch_parent(parent)
    os.environ.update(env)
    stack_file = None
    if _STACK_SIGNAL is not None:
        stack_file = open(stack, "w")  # noqa: SIM115 (open until the process ends)
        faulthandler.register(_STACK_SIGNAL, file=stack_file, all_threads=True)
    code = 0
    try:
        target(rank, *args, **kwargs)
    except BaseException as e:  # noqa: BLE001 (reported to the parent, which raises it)
        code = 1
        text = "".join(traceback.format_exception(e))
        kind = None
        with contextlib.suppress(Exception):
            kind = classify(e) if classify is not None else None
        with contextlib.suppress(Exception):
            report.send((text, kind, type(e).__name__))
    with contextlib.suppress(Exception):
        report.close()
    # Python's exit handlers run (checkpoints in flight finish), then the process leaves without the
    # interpreter's teardown: communication libraries' threads (gloo, NCCL) can abort it from C++
    # destructors at exit ("terminate called without an active exception").
    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr, stack_file):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


@dataclass
class _Rank:
    rank: int
    proc: mp.process.BaseProcess
    conn: object
    stack: str
    report: tuple[str, str | None, str] | None = None  # (traceback, "lost"/"timeout" when peers failed it, type)
    ended: float | None = None  # when the launcher saw it return (its report pipe closed empty) or exit
    failed: float | None = None  # when the launcher saw it fail

    def failure(self) -> bool:
        return self.report is not None or self.proc.exitcode not in (None, 0)


def launch(
    target: Callable,
    nworld: int,
    env: dict,
    args: tuple = (),
    kwargs: dict | None = None,
    classify: Callable[[BaseException], str | None] | None = None,
) -> None:
    """Run `target(rank, *args, **kwargs)` in `nworld` spawned processes with `env` (plus RANK, LOCAL_RANK).

    Returns when every rank has finished; raises WorldError soon after one raises, dies or hangs.
    `classify(exc)`, run in the rank, says "lost" or "timeout" when the exception only reports that the
    rank's peers failed it (a broken or timed-out collective), else None.
    """
    ctx = mp.get_context("spawn")
    stacks = tempfile.mkdtemp(prefix="nebulae-world-")
    ranks: list[_Rank] = []
    try:
        for rank in range(nworld):
            rank_env = {**env, "RANK": str(rank), "LOCAL_RANK": str(rank)}
            reader, writer = ctx.Pipe(duplex=False)
            stack = os.path.join(stacks, f"rank{rank}.stack")
            p = ctx.Process(
                target=_rank_main,
                args=(target, rank, rank_env, writer, os.getpid(), stack, classify, args, kwargs or {}),
                name=f"world-{rank}",
            )
            p.start()
            writer.close()
            ranks.append(_Rank(rank, p, reader, stack))
        failed = _watch(ranks)
        message = None if failed is None else _blame(ranks, failed)
    finally:
        _stop([r.proc for r in ranks])
        shutil.rmtree(stacks, ignore_errors=True)
    if message is not None:
        raise WorldError(message)


def _watch(ranks: list[_Rank]) -> list[_Rank] | None:
    """Wait until every rank exits cleanly (None) or one fails; then, for SETTLE seconds or until all
    have exited, gather the others' news. Returns the ranks that failed."""
    waiting = {r.conn: r for r in ranks} | {r.proc.sentinel: r for r in ranks}
    first = None
    while waiting:
        left = None if first is None else first + SETTLE - time.monotonic()
        if left is not None and left <= 0:
            break
        ready_now = wait(list(waiting), left)
        now = time.monotonic()  # one time for the batch: a rank's return and a peer's loss it caused tie
        for ready in ready_now:
            r = waiting.pop(ready)
            if ready is r.conn:
                with contextlib.suppress(EOFError, OSError):
                    r.report = r.conn.recv()
                if r.report is None:  # closed without a report: its universe returned (its exit comes later)
                    r.ended = r.ended or now
            else:
                r.proc.join()
                r.ended = r.ended or now
            if r.failed is None and r.failure():
                r.failed = now
                first = first or r.failed
        if first is None and all(r.proc.exitcode == 0 for r in ranks):
            return None
    return sorted((r for r in ranks if r.failed is not None), key=lambda r: r.failed)


def _blame(ranks: list[_Rank], failed: list[_Rank]) -> str:
    """The WorldError text: the rank that failed first, how, its traceback (or stack), then the others."""
    n = len(ranks)
    causes = [r for r in failed if r.report is None or r.report[1] is None]  # raised or died on their own
    hung = [r for r in ranks if r.proc.exitcode is None and r.failed is None]
    quit_early = [r for r in ranks if r.proc.exitcode == 0 and r.ended is not None and r.ended <= failed[0].failed]
    if causes:
        culprit = causes[0]
        how, details = _how(culprit)
    elif quit_early:
        culprit = quit_early[0]
        how = "it exited with status 0 while the other ranks still needed it"
        details = "(no traceback: the universe returned or exited early on this rank only)"
    elif hung:
        culprit = hung[0]
        waited = failed[0]
        why = "timed out waiting" if waited.report[1] == "timeout" else "gave up waiting"
        how = f"it hung: rank {waited.rank} {why} for it in a collective"
        details = _stack(culprit)
    else:
        culprit = failed[0]
        how, details = _how(culprit)
    others = [f"  rank {r.rank}: {_how(r)[0]}{_last_line(r)}" for r in failed if r is not culprit]
    text = f"Multiverse: rank {culprit.rank} of {n} failed first ({how}); the other ranks were stopped.\n{details}"
    if others:
        text += "\nThen:\n" + "\n".join(others)
    return text


def _how(r: _Rank) -> tuple[str, str]:
    code = r.proc.exitcode
    if r.report is not None:
        kind = {"lost": "it lost its peers", "timeout": "it timed out waiting for its peers"}.get(r.report[1])
        return kind or f"it raised {r.report[2]}", r.report[0].rstrip()
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by signal {signal.Signals(-code).name}", "(no traceback: the process was killed)"
    return f"it exited with status {code}", "(no traceback: the process exited without raising)"


def _last_line(r: _Rank) -> str:
    return f": {r.report[0].rstrip().splitlines()[-1]}" if r.report else ""


def _stack(r: _Rank) -> str:
    """A hung rank's Python stack, through faulthandler (empty when the platform has no SIGUSR1)."""
    if _STACK_SIGNAL is None:
        return "(no stack: this platform cannot ask a process for it)"
    with contextlib.suppress(OSError):
        os.kill(r.proc.pid, _STACK_SIGNAL)
    deadline, text = time.monotonic() + 2.0, ""
    while "File" not in text and time.monotonic() < deadline:
        time.sleep(0.2)  # faulthandler writes from the rank's signal handler
        with contextlib.suppress(OSError), open(r.stack) as f:
            text = f.read()
    return f"its stack when it was stopped:\n{text.rstrip()}" if text else "(no stack: the process did not answer)"


def _stop(procs: list) -> None:
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + GRACE
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()
