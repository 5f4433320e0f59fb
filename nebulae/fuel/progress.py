"""A small rich progress bar on stderr, drawn only when stderr is a terminal (quiet in CI and pipes)."""

from __future__ import annotations

import sys
import time
from types import TracebackType


class Bar:
    """A progress bar for `total` items: use as a context manager and call `advance(n)`.

    It draws on stderr with rich when `enabled` (default: stderr is a TTY), without a refresh
    thread (so forking worker processes meanwhile is safe), redrawing at most every `interval` s.
    """

    def __init__(self, total: int, description: str, enabled: bool | None = None, interval: float = 0.1):
        self.total, self.description, self.interval = total, description, interval
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.done = 0
        self._progress = self._task = None
        self._last = 0.0

    def __enter__(self) -> Bar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                auto_refresh=False,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total)
        return self

    def advance(self, n: int = 1) -> None:
        """Count `n` more items as done (redraws when enough time has passed)."""
        self.done += n
        if self._progress is not None:
            self._progress.update(self._task, advance=n)
            now = time.monotonic()
            if now - self._last >= self.interval or self.done >= self.total:
                self._last = now
                self._progress.refresh()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.refresh()
            self._progress.stop()
