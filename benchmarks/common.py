"""Shared machinery for the benchmarks: isolated worker processes, interleaved timing, statistics, output.

Process model: every contender runs in its OWN fresh interpreter (`Worker`), started with
``python -m <benchmark module> --worker`` (``benchmarks.X`` in a checkout, ``nebulae.benchmarks.X`` installed)
from `REPO`, with its own environment
(e.g. ``NEB_CORE``). The parent talks to it over stdin/stdout with one JSON object per line:
it sends ``{"cmd": name, ...}`` and the worker (`serve`) answers with one tagged JSON line.
Stray output of the worker (Python prints and native writes to fd 1) goes to its stderr, which
is kept in a temporary file and shown when the worker fails.

Because the workers stay alive between requests, repetitions can be interleaved across
contenders (`interleave`): repetition r asks every worker for one timed repetition, in an order
rotated by r, with a short pause in between so that the previous worker's spinning thread pools
park before the next one starts. Slow drifts of the machine (thermal state, other load) then hit
every contender alike instead of whichever happened to run last.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import queue
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

# `benchmarks` in a source checkout, `nebulae.benchmarks` when installed: workers run `python -m PACKAGE.<suite>`
PACKAGE = __package__
# the folder the top-level package was imported from (the checkout root, or site-packages): the workers' path
REPO = Path(sys.modules[PACKAGE.partition(".")[0]].__file__).resolve().parent.parent
TAG = "@@NEBULAE-BENCH@@ "


class WorkerError(RuntimeError):
    """A worker process failed, timed out or answered with an error."""


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a worker: ours, `REPO` first on PYTHONPATH, plus `extra`.

    JAX's persistent compilation cache is off unless the caller's environment or `extra` turns it on, so a
    "first step" figure is a cold compile on every run of the suite (the warm_start suite measures the cache).
    """
    env = dict(os.environ)
    env.setdefault("NEB_JAX_CACHE", "0")
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + path if path else "")
    env.update(extra or {})
    return env


class Worker:
    """One contender in its own interpreter: ``python -m module --worker *args``, driven by `request`."""

    def __init__(self, name: str, module: str, args: Sequence[str] = (), env: dict[str, str] | None = None):
        self.name = name
        self._stderr = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (lives as long as the worker)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--worker", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=REPO,
            env=child_env(env),
            text=True,
            bufsize=1,
        )
        self._replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            if line.startswith(TAG):
                self._replies.put(json.loads(line[len(TAG) :]))
        self._replies.put(None)  # end of output: the worker exited

    def stderr_tail(self, chars: int = 4000) -> str:
        """The last `chars` characters the worker wrote to stderr."""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-chars:]

    def request(self, cmd: str, timeout: float = 900.0, **kwargs) -> dict:
        """Send one command and wait for its answer; raise WorkerError on failure or timeout."""
        self.send(cmd, **kwargs)
        return self.receive(cmd, timeout)

    def send(self, cmd: str, **kwargs) -> None:
        """Send one command without waiting (`receive` collects the answer)."""
        try:
            self.proc.stdin.write(json.dumps({"cmd": cmd, **kwargs}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the worker died; its end of output reports it in `receive`

    def receive(self, cmd: str, timeout: float = 900.0) -> dict:
        """Wait for the answer to the command `cmd` sent last; raise WorkerError on failure or timeout."""
        try:
            reply = self._replies.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise WorkerError(f"{self.name}: no answer to {cmd!r} within {timeout:.0f} s") from None
        if reply is None:
            rc = self.proc.wait()
            raise WorkerError(f"{self.name}: worker exited (rc={rc}) during {cmd!r}\n{self.stderr_tail()}")
        if "error" in reply:
            raise WorkerError(f"{self.name}: {cmd!r} failed in the worker:\n{reply['error']}")
        return reply

    def close(self) -> None:
        """Ask the worker to exit, and make sure it does."""
        if self.proc.poll() is None:
            with contextlib.suppress(WorkerError):
                self.request("exit", timeout=30)
        self.kill()
        self._stderr.close()

    def kill(self) -> None:
        """Terminate this worker process (only this one) if it is still running."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def serve(handlers: dict[str, Callable[..., dict]]) -> None:
    """Worker side: answer JSON commands from stdin with `handlers[cmd](**args)` until ``exit``.

    The protocol uses a private copy of fd 1; fd 1 itself (and `sys.stdout`) is pointed at stderr.
    An exception in a handler is answered as ``{"error": traceback}`` and the worker keeps serving.
    """
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    sys.stdout.flush()
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        cmd = msg.pop("cmd")
        if cmd == "exit":
            proto.write(TAG + "{}\n")
            break
        try:
            reply = handlers[cmd](**msg)
        except Exception:
            reply = {"error": traceback.format_exc()}
        proto.write(TAG + json.dumps(reply) + "\n")
    proto.flush()


def time_block(fn: Callable[[], object]) -> tuple[float, object]:
    """Run `fn()` once; return (seconds, result)."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def timed_steps(step: Callable[[], object], sync: Callable[[object], object], n: int) -> tuple[float, float]:
    """(wall seconds, process CPU seconds, all threads) for `n` calls of `step()` then one `sync(last result)`."""
    cpu = time.process_time()
    start = time.perf_counter()
    out = None
    for _ in range(n):
        out = step()
    sync(out)
    return time.perf_counter() - start, time.process_time() - cpu


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size in MB of this process (or, with RUSAGE_CHILDREN, of its largest finished child)."""
    rss = resource.getrusage(who).ru_maxrss
    return rss / 1024 / 1024 if sys.platform == "darwin" else rss / 1024


def rotated(items: Sequence, k: int) -> list:
    """`items` rotated left by `k` (modulo its length)."""
    if not items:
        return []
    k %= len(items)
    return list(items[k:]) + list(items[:k])


def interleave(workers: Sequence[Worker], reps: int, pause: float = 0.2, **request) -> dict[str, list[dict]]:
    """Ask every worker for `reps` repetitions (command ``rep``), rotating the order each time.

    Returns {worker name: [reply of repetition 0, 1, ...]}; `request` is passed to each ``rep``.
    """
    out: dict[str, list[dict]] = {w.name: [] for w in workers}
    for r in range(reps):
        for w in rotated(workers, r):
            time.sleep(pause)
            out[w.name].append(w.request("rep", **request))
    return out


def median_range(values: Sequence[float]) -> tuple[float, float, float]:
    """(median, min, max) of `values`; NaNs when there are none."""
    if not values:
        nan = float("nan")
        return nan, nan, nan
    return statistics.median(values), min(values), max(values)


def fmt_spread(med: float, lo: float, hi: float, digits: int = 1) -> str:
    """'median (min–max)' with `digits` decimals."""
    return f"{med:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table with left-aligned columns sized to their content."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_csv(path: Path, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """Write `rows` under `headers` to `path` (parent folders created); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(headers)
        writer.writerows(rows)
    return path


# --------------------------------------------------------------------------- unified results (benchmarks.run)

RESULT_FIELDS = (
    "suite", "workload", "contender", "metric", "median", "min", "max", "unit",
    "ratio_to", "ratio_median", "ratio_min", "ratio_max", "ratio_ci_low", "ratio_ci_high", "ratio_n",
    "target", "met", "precision", "note",
)  # fmt: skip
CI_LEVEL = 0.95  # the nominal confidence of `median_ci`, on which the ratio verdicts rest


def result(
    suite: str,
    workload: str,
    contender: str,
    metric: str,
    values: Sequence[float],
    unit: str,
    note: str = "",
) -> dict:
    """One measurement row: median, min and max of `values` (one per repetition) of `metric` in `unit`."""
    med, lo, hi = median_range([float(v) for v in values])
    row = dict.fromkeys(RESULT_FIELDS, "")
    row.update(suite=suite, workload=workload, contender=contender, metric=metric, unit=unit, note=note)
    row.update(median=med, min=lo, max=hi)
    return row


def with_ratio(row: dict, baseline: str, ratios: Sequence[float], target: str = "") -> dict:
    """A copy of `row` compared with `baseline`: median, min–max and `median_ci` of the paired `ratios`.

    `target` is '>= x' or '<= x' or empty; `met` is its `verdict` on the median's confidence interval
    (``ratio_ci_low``–``ratio_ci_high``, at `CI_LEVEL`; with 5 or fewer ratios that is their min–max).
    """
    values = [float(r) for r in ratios]
    med, lo, hi = median_range(values)
    ci_low, ci_high = median_ci(values)[:2]
    out = dict(row, ratio_to=baseline, ratio_median=med, ratio_min=lo, ratio_max=hi, target=target)
    out.update(ratio_ci_low=ci_low, ratio_ci_high=ci_high, ratio_n=len(values))
    out["met"] = verdict(med, ci_low, ci_high, target)
    return out


def median_ci_rank(n: int, level: float = CI_LEVEL) -> tuple[int, float]:
    """(k, coverage): the distribution-free interval [x_(k), x_(n+1-k)] of the median of `n` values.

    The sign-test interval: the k-th smallest and k-th largest of `n` independent values cover their
    population median with probability ``1 - 2 P(B <= k-1)``, B ~ binomial(n, 1/2), whatever their
    distribution. k is the largest with that coverage >= `level`; at least 1 (min–max, which covers
    only ``1 - 2^(1-n)``: 93.75 % for n = 5, less for fewer values).

    Args:
        n: the number of values (>= 1).
        level: the wanted coverage, e.g. 0.95.
    """
    if n < 1:
        raise ValueError(f"median_ci_rank needs at least one value, got n={n}")
    k, below = 1, 0.5**n  # below: P(B <= k-1)
    while True:
        nxt = below + math.comb(n, k) / 2**n  # P(B <= k)
        if k + 1 > (n + 1) // 2 or 1 - 2 * nxt < level:
            return k, 1 - 2 * below
        k, below = k + 1, nxt


def median_ci(values: Sequence[float], level: float = CI_LEVEL) -> tuple[float, float, float]:
    """(low, high, coverage): the order-statistic confidence interval of the median of `values`.

    See `median_ci_rank`; NaNs when there are no values.

    Args:
        values: independent measurements (e.g. paired ratios, one per interleaved repetition).
        level: the wanted coverage (default `CI_LEVEL`).
    """
    if not values:
        nan = float("nan")
        return nan, nan, nan
    xs = sorted(float(v) for v in values)
    k, coverage = median_ci_rank(len(xs), level)
    return xs[k - 1], xs[len(xs) - k], coverage


NOISE = "within noise"  # the verdict when the median's confidence interval (or min–max) straddles the target
NO_VERDICT = "no verdict (quick)"  # every target's verdict in a --quick (smoke) run


def meets(value: float, target: str) -> str:
    """'yes' or 'no' for `value` against a target such as '>= 0.95' or '<= 1.10'; '' without a target."""
    if not target:
        return ""
    op, bound = target.split()
    ok = value >= float(bound) if op == ">=" else value <= float(bound)
    return "yes" if ok else "no"


def verdict(med: float, lo: float, hi: float, target: str) -> str:
    """'yes'/'no' when the whole interval `lo`–`hi` meets/misses `target`, `NOISE` when it straddles it; '' without.

    `with_ratio` passes the median's confidence interval (`median_ci`), an absolute row its min–max.
    """
    if not target:
        return ""
    ends = {meets(float(lo), target), meets(float(hi), target)}
    return ends.pop() if len(ends) == 1 else NOISE


def failed(suite: str, workload: str, contender: str, metric: str, error: str) -> dict:
    """A row for a contender that failed: no numbers, the error's last line in the note."""
    row = dict.fromkeys(RESULT_FIELDS, "")
    row.update(suite=suite, workload=workload, contender=contender, metric=metric, met="FAILED")
    row["note"] = "FAILED: " + last_error_line(error)
    return row


def last_error_line(text: str, width: int = 100) -> str:
    """The exception line of a traceback (else its last line), cut to `width` characters."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.split(":")[0].endswith(("Error", "Exception", "Interrupt"))]
    line = (errors or lines or ["?"])[-1]
    return line if len(line) <= width else line[: width - 1] + "…"


def memory_rows(suite: str, workload: str, contender: str, mem: dict) -> list[dict]:
    """Rows for a worker's `benchmarks.memory.peak_memory()` reply: peak RSS, children's RSS, device memory."""
    names = {
        "peak_rss_mb": "peak RSS",
        "peak_rss_children_mb": "peak RSS (child processes)",
        "peak_device_mb": "peak device memory",
    }
    return [result(suite, workload, contender, m, [mem[k]], "MB") for k, m in names.items() if mem.get(k)]
