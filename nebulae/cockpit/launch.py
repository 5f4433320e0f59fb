"""Start one process per world, watch them, and stop them all when one fails (engine-neutral).

Processes are started with spawn (never fork: CUDA and threads do not survive a fork). Each rank
reports an exception's traceback through a queue before it exits; the parent polls exit codes
and the queue, and as soon as one rank fails it terminates the others (which may be blocked in a
collective) and raises with that rank's traceback.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing as mp
import os
import queue
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable

GRACE = 5.0  # seconds a terminated rank gets before it is killed


class WorldError(RuntimeError):
    """A rank of a Multiverse failed; the message holds its rank and traceback."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(target: Callable, rank: int, env: dict, errors, args: tuple, kwargs: dict) -> None:
    os.environ.update(env)
    code = 0
    try:
        target(rank, *args, **kwargs)
    except BaseException as e:  # noqa: BLE001 (reported to the parent, which raises it)
        code = 1
        text = "".join(traceback.format_exception(e))
        with contextlib.suppress(Exception):
            errors.put((rank, text))
            errors.close()
            errors.join_thread()
    # Python's exit handlers run (checkpoints in flight finish), then the process leaves without the
    # interpreter's teardown: communication libraries' threads (gloo, NCCL) can abort it from C++
    # destructors at exit ("terminate called without an active exception").
    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def launch(target: Callable, nworld: int, env: dict, args: tuple = (), kwargs: dict | None = None) -> None:
    """Run `target(rank, *args, **kwargs)` in `nworld` spawned processes with `env` (plus RANK, LOCAL_RANK).

    Returns when every rank has finished; raises WorldError as soon as one raises or dies.
    """
    ctx = mp.get_context("spawn")
    errors = ctx.Queue()
    procs = []
    try:
        for rank in range(nworld):
            rank_env = {**env, "RANK": str(rank), "LOCAL_RANK": str(rank)}
            p = ctx.Process(
                target=_rank_main, args=(target, rank, rank_env, errors, args, kwargs or {}), name=f"world-{rank}"
            )
            p.start()
            procs.append(p)
        failure = _watch(procs, errors)
    finally:
        _stop(procs)
    if failure is not None:
        rank, text = failure
        raise WorldError(f"Multiverse: rank {rank} of {nworld} failed; the other ranks were stopped.\n{text}")


def _watch(procs: list, errors) -> tuple[int, str] | None:
    """Wait until every process exits cleanly (None) or one fails ((rank, traceback or exit status))."""
    while True:
        with contextlib.suppress(queue.Empty):
            return errors.get(timeout=0.2)
        codes = [p.exitcode for p in procs]
        for rank, code in enumerate(codes):
            if code not in (None, 0):
                with contextlib.suppress(queue.Empty):  # its traceback may still be in flight
                    return errors.get(timeout=1.0)
                return rank, _describe_exit(code)
        if all(code == 0 for code in codes):
            return None


def _describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"the process was killed by signal {signal.Signals(-code).name} (no traceback)"
    return f"the process exited with status {code} (no traceback)"


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
