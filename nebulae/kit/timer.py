"""Timer: wall-clock timing of a block or a function, with the bound engine's device work included."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from nebulae import law

__all__ = ["Timer", "synchronize"]


def synchronize() -> None:
    """Wait for the bound engine's queued device work; nothing to do before an engine is bound."""
    bound = law.bound_backend()
    if bound is not None:
        bound.tensor.synchronize()


class Timer:
    """Time a block (`with Timer() as t: ...; t.elapsed`) or a function (`@Timer` or `@Timer(sync=False)`).

    Before each clock reading the bound engine's device is synchronised (`sync=True`), so queued GPU
    work is counted; on CPU-only installs, or before any engine is bound, this costs nothing. A timed
    function returns its own result; its last duration is `fn.elapsed` and the running total `fn.total`.
    """

    def __init__(self, func: Callable | None = None, *, sync: bool = True):
        self.sync = sync
        self.elapsed = 0.0  # seconds of the last timed block or call
        self.total = 0.0  # seconds over all of them
        self.calls = 0
        self._start = 0.0
        self._func = None
        if func is not None:
            self._wrap(func)

    def _clock(self) -> float:
        if self.sync:
            synchronize()
        return time.perf_counter()

    def __enter__(self) -> Timer:
        self._start = self._clock()
        return self

    def __exit__(self, *exc) -> bool:
        self.elapsed = self._clock() - self._start
        self.total += self.elapsed
        self.calls += 1
        return False

    def _wrap(self, func: Callable) -> None:
        if not callable(func):
            raise TypeError(f"Timer wraps a callable, got {type(func).__name__}")
        self._func = func
        functools.update_wrapper(self, func)

    def __call__(self, *args, **kwargs) -> Any:
        if self._func is None:  # @Timer(sync=...) form: this call receives the function
            if len(args) != 1 or kwargs or not callable(args[0]):
                raise TypeError("Timer(...) used as a decorator expects one function")
            self._wrap(args[0])
            return self
        with self:
            return self._func(*args, **kwargs)

    def __get__(self, obj, objtype=None):
        """Bind as a method when a Timer decorates a function defined in a class."""
        if obj is None:
            return self
        return functools.partial(self.__call__, obj)
