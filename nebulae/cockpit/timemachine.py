"""TimeMachine: drop anchors (checkpoints) of a craft's whole state, and travel back to them.

    tm = TimeMachine(ckpt_path='./ckpt', save_path='./ckpt', max_anchors=3)
    tm.drop(train, tank=tk)            # ./ckpt/TRAIN-1200.pth (torch) or ./ckpt/TRAIN-1200/ (JAX)
    tm.to(train, tank=tk)              # the newest TRAIN anchor in ./ckpt: weights, optimizer, schedule,
                                       # warm-up, loss scale, EMA, RNG, Tank position
    tm.drop(net, file='net.h5')        # neutral weights by parameter path, readable by either engine

What an anchor holds is the engine's whole state of the craft (see `backends/<engine>/anchor.py`).
Names: `<craft.scope>-<step>`, step = updates applied by the optimizers inside the craft, or (without
one) one more than the highest anchor of that scope already in save_path. Off a grad_accum boundary
the name is `<scope>-<step>.<calls>` (calls: micro-batches so far), so distinct states never collide
(see `anchors`). A `file` names the anchor
instead ('best' or 'best.pth' -> best.pth on torch, best/ on JAX); '.h5'/'.hdf5' selects the neutral
format. `max_anchors` keeps the newest (highest step) anchors of the scope found in save_path — also
those of earlier runs — and never deletes the just-written one; named anchors are not rotated.

Asynchronous: `drop` returns once the state is copied to host memory (the next step may change or,
on JAX, donate the device buffers), and the rest (write, fsync, rename, rotation) finishes in the
background; while a save is in flight the host holds one more copy of the state.
The next `drop`, `to` or `wait()` waits for it and raises its error if it failed; an interpreter that
exits normally waits too, so no final anchor is lost. A crash at any point leaves every finished
anchor intact: files are renamed into place only when complete, and temporary names never look
like anchors. `asynchronous=False` makes every drop wait.

`to` reports missing and unexpected keys and shape mismatches in a warning; `frozen=True` turns
any of them into an error (nothing is loaded then). Scopes (`save_scope`, `ckpt_scope`) are
parameter-path prefixes with a '/' boundary ('net' selects 'net/fc/weight', not 'network/...').
A file that is not a Nebulae anchor (for example a pickle that would run code) is refused, never executed.

Paths: `ckpt_path`, `save_path` and `file` may be str or os.PathLike, relative, or start with '~'.
The two folders are made absolute when the TimeMachine is built (against the working directory of
that moment), so a later `os.chdir` changes nothing. A relative `file` lies inside `save_path`
(drop) or `ckpt_path` (to). `drop` refuses (ValueError, before anything is written) a `file` that is
absolute (also once '~' is expanded) or has a '..' part, and a craft scope that holds '/' or '\\' or
starts with '.'; `to` reads any path it is given (absolute or '~' as it is).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import nebulae
from nebulae import law
from nebulae.astro import statedict
from nebulae.backend import AnchorIO, Backend
from nebulae.cockpit import anchors, neutral
from nebulae.kit.rank import is_chief

__all__ = ["TimeMachine", "Landing", "AnchorMismatchError"]

FORMAT = 2  # 2: JAX anchors hold conv kernels (and their optimizer slots) spatial-first; 1 is read too
_log = logging.getLogger(__name__)
_busy: set = set()  # machines with a save in flight (held strongly: the exit hook must finish them)
_exit_hook = threading.Lock()
_hooked = [False]


class AnchorMismatchError(KeyError, ValueError):
    """`to(..., frozen=True)` met missing or unexpected keys, or shape mismatches (named in the message)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass
class Landing:
    """What `to` restored: the anchor's path, its step (-1 if unknown), engine and the key report."""

    path: str
    step: int
    engine: str
    report: statedict.LoadReport = field(default_factory=statedict.LoadReport)


class TimeMachine:
    """Save (`drop`) and restore (`to`) anchors of crafts; keep the newest `max_anchors` per scope (-1: all).

    Args:
        ckpt_path: where `to` looks for anchors (a folder, or an anchor or '.h5' file itself).
        save_path: the folder `drop` writes into (created if missing).
        max_anchors: how many default-named anchors of a scope to keep in save_path; -1 keeps all.
        asynchronous: False makes every `drop` wait until its anchor is on disk.

    Both paths may be str or os.PathLike, relative or starting with '~': they are made absolute here,
    against the working directory of this moment, so a later `os.chdir` does not move them.
    """

    def __init__(
        self,
        ckpt_path: str | os.PathLike,
        save_path: str | os.PathLike,
        max_anchors: int = -1,
        *,
        asynchronous: bool = True,
    ):
        if not isinstance(max_anchors, int) or isinstance(max_anchors, bool) or max_anchors == 0 or max_anchors < -1:
            raise ValueError(f"max_anchors must be a positive integer, or -1 to keep all; got {max_anchors!r}")
        self.ckpt_path = _absolute(ckpt_path, "ckpt_path")
        self.save_path = _absolute(save_path, "save_path")
        self.max_anchors = max_anchors
        self.asynchronous = bool(asynchronous)
        self._pending: tuple[Any, AnchorIO, str | None] | None = None
        self._lock = threading.RLock()
        os.makedirs(self.save_path, exist_ok=True)

    # ------------------------------------------------------------------ saving

    def drop(self, craft, file: str | os.PathLike = "", save_scope: str | None = None, tank=None) -> str:
        """Save everything `craft` holds (within `save_scope`) and the Tank position; return the anchor's path.

        Under a Multiverse only rank 0 writes (on JAX every host takes part in Orbax's collective save).

        The anchor may still be in flight when this returns; `wait()` (or the next drop/to) finishes it.
        """
        file = _file(file)
        scope = anchors.check_name(getattr(craft, "scope", None) or type(craft).__name__, "the craft's scope")
        if file:  # both before anything is written, swept or waited for
            anchors.check_file(file)
        with self._lock:
            self.wait()
            backend = _backend_of(craft)
            anchor = backend.anchor
            _check_unswapped(anchor, craft)
            anchors.sweep(self.save_path, anchor.is_complete)
            step = anchor.step_of(craft)
            meta = {
                "format": FORMAT,
                "engine": backend.ENGINE,
                "version": nebulae.__version__,
                "step": -1 if step is None else int(getattr(step, "updates", step)),
                "scope": scope,
            }
            if neutral.is_neutral(file):
                if tank is not None:
                    warnings.warn("a '.h5' file holds weights only: the Tank position is not saved", stacklevel=2)
                arrays = {k: v for k, v in craft.export_weights().items() if statedict.within(k, save_scope)}
                if not arrays:
                    raise ValueError(f"{type(craft).__name__} has no weights within scope {save_scope!r}")
                if not is_chief():  # one writer under a Multiverse
                    return _path(self.save_path, file)
                return neutral.write(_path(self.save_path, file), arrays, meta)
            name = _strip(file, anchor.SUFFIX) if file else None
            if name is None:
                if step is None:
                    found = anchors.listing(self.save_path, scope, anchor.SUFFIX, anchor.is_complete)
                    step = found[-1][0] + 1 if found else 1
                    meta["step"] = step
                name = anchors.name(scope, step)
            path = _path(self.save_path, name + anchor.SUFFIX)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            meta["tank"] = tank.state() if tank is not None else None
            in_root = os.path.dirname(path) == self.save_path
            rotated = scope if in_root and anchors.step_in(path, scope, anchor.SUFFIX) is not None else None
            if not (anchor.COLLECTIVE or is_chief()):  # under a Multiverse, rank 0 writes the anchor
                return path
            pending = anchor.save(craft, path, meta, save_scope, self.asynchronous)
            self._pending = (pending, anchor, rotated)
            _watch(self)
            if not self.asynchronous:
                self.wait()
            return path

    def wait(self) -> None:
        """Wait for the save in flight (if any), raise its error, then rotate old anchors."""
        with self._lock:
            pending, self._pending = self._pending, None
            _busy.discard(self)
            if pending is None:
                return
            handle, anchor, scope = pending
            handle.wait()
            if scope is not None and self.max_anchors > 0:
                anchors.rotate(self.save_path, scope, anchor.SUFFIX, self.max_anchors, anchor.is_complete, handle.path)

    # ------------------------------------------------------------------ restoring

    def to(
        self, craft, file: str | os.PathLike = "", ckpt_scope: str | None = None, frozen: bool = False, tank=None
    ) -> Landing:
        """Restore `craft` (within `ckpt_scope`) and the Tank position from an anchor: the newest one when no file.

        Missing/unexpected keys and shape mismatches are reported in a warning; `frozen=True` makes
        them an error and then nothing is loaded. Without `ckpt_scope` the RNG is restored too.
        """
        file = _file(file)
        for machine in [self, *_busy]:  # an anchor still in flight in this process must land first
            machine.wait()
        anchor = _backend_of(craft).anchor
        _check_unswapped(anchor, craft)
        folder = self.ckpt_path if os.path.isdir(self.ckpt_path) else os.path.dirname(self.ckpt_path)
        anchors.sweep(folder, anchor.is_complete)  # puts back an anchor a kill caught mid re-save
        if not file and neutral.is_neutral(self.ckpt_path):
            file = self.ckpt_path
        if neutral.is_neutral(file):
            return self._to_neutral(craft, _path(self.ckpt_path, file), ckpt_scope, frozen)
        candidates = self._resolve(craft, file, anchor)
        for i, path in enumerate(candidates):
            try:
                meta, state = anchor.read(path, craft)
                break
            except anchors.CorruptAnchorError as err:
                if i + 1 == len(candidates):
                    raise
                warnings.warn(f"TimeMachine.to: {err}; loading the previous one, {candidates[i + 1]!r}", stacklevel=2)
        if int(meta.get("format", 0)) > FORMAT:
            raise ValueError(f"{path!r} has anchor format {meta['format']}; this Nebulae reads up to {FORMAT}")
        given = {k: v for k, v in state.items() if statedict.within(k, ckpt_scope)}
        expected = {k: s for k, s in anchor.shapes(craft).items() if statedict.within(k, ckpt_scope)}
        report = statedict.compare(expected, given)
        notes = []
        if tank is not None and not meta.get("tank"):
            notes.append("the anchor holds no Tank position (dropped without tank=)")
        _judge(path, report, notes, frozen)
        if tank is not None and meta.get("tank"):
            tank.restore(meta["tank"])  # first: a Tank of another layout refuses before the craft changes
        bad = {k for k, *_ in report.mismatched}
        anchor.apply(
            craft, {k: v for k, v in given.items() if k in expected and k not in bad}, meta, ckpt_scope is None
        )
        return Landing(path, int(meta.get("step", -1)), str(meta.get("engine", "")), report)

    def _to_neutral(self, craft, path: str, scope: str | None, frozen: bool) -> Landing:
        expected = {k: v.shape for k, v in craft.export_weights().items() if statedict.within(k, scope)}
        arrays, meta = neutral.read(path, expected)
        given = {k: v for k, v in arrays.items() if statedict.within(k, scope)}
        report = statedict.compare(expected, given)
        _judge(path, report, [], frozen)
        bad = {k for k, *_ in report.mismatched}
        craft.import_weights({k: v for k, v in given.items() if k in expected and k not in bad}, strict=False)
        return Landing(path, int(meta.get("step", -1)), str(meta.get("engine", "")), report)

    def _resolve(self, craft, file: str, anchor: AnchorIO) -> list[str]:
        """The anchors to try, in order: `file` as given or with this engine's suffix; else the craft's scope's,
        newest first (a corrupt one falls back to the one before).

        A ckpt_path that is itself an anchor is read when no file is named.
        """
        if not file and os.path.lexists(self.ckpt_path) and anchor.is_complete(self.ckpt_path):
            return [self.ckpt_path]
        if file:
            literal = _path(self.ckpt_path, file)
            if os.path.lexists(literal):
                return [literal]
            candidate = _path(self.ckpt_path, _strip(file, anchor.SUFFIX) + anchor.SUFFIX)
            if os.path.lexists(candidate):
                return [candidate]
            raise FileNotFoundError(f"no anchor {file!r} in {self.ckpt_path!r}{self._available()}")
        scope = anchors.check_name(getattr(craft, "scope", None) or type(craft).__name__, "the craft's scope")
        found = anchors.listing(self.ckpt_path, scope, anchor.SUFFIX, anchor.is_complete)
        if not found:
            raise FileNotFoundError(
                f"no anchor of scope {scope!r} ({scope}-<step>{anchor.SUFFIX}) in {self.ckpt_path!r}{self._available()}"
            )
        return [p for _, p in reversed(found)]

    def _available(self) -> str:
        if not os.path.isdir(self.ckpt_path):
            return " (the folder does not exist)"
        entries = sorted(e for e in os.listdir(self.ckpt_path) if not e.startswith("."))
        return f"; it holds: {', '.join(entries[:20])}" if entries else " (the folder is empty)"

    def __repr__(self) -> str:
        return (
            f"TimeMachine(ckpt_path={self.ckpt_path!r}, save_path={self.save_path!r}, max_anchors={self.max_anchors})"
        )


def _absolute(path: str | os.PathLike, what: str) -> str:
    """`path` as an absolute, normalised str ('~' expanded, relative to the working directory now)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"TimeMachine: {what} must be a str or os.PathLike (e.g. './ckpt'), got {type(path).__name__}")
    path = os.fspath(path)
    if not isinstance(path, str) or not path:
        raise ValueError(f"TimeMachine: {what} must be a non-empty text path (e.g. './ckpt'), got {path!r}")
    return os.path.abspath(os.path.expanduser(path))


def _file(file: str | os.PathLike | None) -> str:
    """A `file=` argument as str, '~' expanded ('' for none)."""
    if file is None or file == "":
        return ""
    if not isinstance(file, (str, os.PathLike)) or not isinstance(os.fspath(file), str):
        raise TypeError(f"TimeMachine: file must be a str or os.PathLike (e.g. 'best' or 'net.h5'), got {file!r}")
    return os.path.expanduser(os.fspath(file))


def _path(folder: str, file: str) -> str:
    """`file` inside `folder` (absolute), or `file` itself when it is absolute."""
    return os.path.normpath(file if os.path.isabs(file) else os.path.join(folder, file))


def _strip(file: str, suffix: str) -> str:
    for ext in {".pth", suffix} - {""}:
        if file.endswith(ext):
            return file[: -len(ext)]
    return file


def _judge(path: str, report: statedict.LoadReport, notes: list[str], frozen: bool) -> None:
    if report.clean and not notes:
        return
    what = "; ".join(_describe(report) + notes)
    if frozen:
        raise AnchorMismatchError(f"TimeMachine.to({path!r}, frozen=True): {what}; nothing was loaded")
    warnings.warn(f"TimeMachine.to({path!r}): {what}", stacklevel=3)


def _describe(report: statedict.LoadReport, limit: int = 40) -> list[str]:
    """The report's parts, each list cut to `limit` names (with the count of the rest)."""

    def names(items: list[str]) -> str:
        more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
        return ", ".join(items[:limit]) + more

    parts = []
    if report.missing:
        parts.append(f"missing keys ({len(report.missing)}): {names(report.missing)}")
    if report.unexpected:
        parts.append(f"unexpected keys ({len(report.unexpected)}): {names(report.unexpected)}")
    if report.mismatched:
        clashes = [f"{k} (craft {want}, anchor {got})" for k, want, got in report.mismatched]
        parts.append(f"shape mismatches ({len(clashes)}): {names(clashes)}")
    return parts


def _backend_of(craft) -> Backend:
    """The engine package `craft` belongs to (by its class: both engines may be loaded), else the bound engine."""
    for cls in type(craft).__mro__:
        parts = cls.__module__.split(".")
        if parts[:2] == ["nebulae", "backends"] and len(parts) > 2:
            return sys.modules[".".join(parts[:3])]  # imported with the class's module
    return law.backend()


def _check_unswapped(anchor: AnchorIO, craft) -> None:
    """Raise RuntimeError when an EMA inside `craft` has its shadow swapped in (after `on()`)."""
    swapped = anchor.swapped_emas(craft)
    if swapped:
        raise RuntimeError(
            f"the EMA at {swapped[0] or type(craft).__name__!r} is switched on (its shadow weights are in the model): "
            "call off() before TimeMachine.drop/to, or the anchor would mix both sets of weights"
        )


def _watch(machine: TimeMachine) -> None:
    """Make sure `machine`'s save in flight finishes before the interpreter exits."""
    _busy.add(machine)
    with _exit_hook:
        if _hooked[0]:
            return
        import concurrent.futures.thread  # noqa: F401 (its exit hook must run after ours)

        # threading's exit hooks run before thread pools shut down and before atexit: Orbax still needs its pools
        register = getattr(threading, "_register_atexit", None)
        if register is not None:
            register(_settle_all)
        else:  # pragma: no cover
            import atexit

            atexit.register(_settle_all)
        _hooked[0] = True


def _settle_all() -> None:
    failed = False
    for machine in list(_busy):
        try:
            machine.wait()
        except BaseException:  # noqa: BLE001 (report and go on: the interpreter is exiting)
            _log.error("an anchor still being saved at exit failed", exc_info=True)  # seen with no logging set up
            failed = True
    if failed:  # the last anchor was not written: the run must not look successful
        _log.error("nebulae: an anchor still being saved at exit failed (above); exiting with status 1")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(1)
