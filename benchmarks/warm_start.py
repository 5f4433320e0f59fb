"""Warm starts on JAX: the first-step time of a fresh process, with an empty and with a filled persistent cache.

Each run is a new interpreter (``python -m benchmarks.warm_start --worker``) that builds the suite's nebulae
ResNet-18 step (`train_step.build_nebulae`), times building it and its first step, and counts the compilation
cache's hits and misses through `jax.monitoring`. Every round uses a fresh cache folder: run 1 starts cold and
fills it, run 2 is the identical second process. Target: run 2's first step <= 30 % of run 1's.

    PYTHONPATH=. python -m benchmarks.warm_start --rounds 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile

if __package__ in (None, ""):  # run as a script: import it as a module of `benchmarks`
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"  # noqa: A001

from . import common, train_step

SUITE = "warm_start"
TARGET = "<= 0.30"  # second process's first step / first process's
WORKLOAD = "resnet"


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def worker_main(workload: str, size: str) -> None:
    """Build `workload`, time the first step, print one JSON line with the figures and the cache counts."""
    import jax

    counts = {"hits": 0, "misses": 0}

    def listen(event: str, **_):
        if event == "/jax/compilation_cache/cache_hits":
            counts["hits"] += 1
        elif event == "/jax/compilation_cache/cache_misses":
            counts["misses"] += 1

    jax.monitoring.register_event_listener(listen)
    cfg = train_step.workload_config(workload, size)
    build, (step, sync, _) = common.time_block(lambda: train_step.build_nebulae(cfg))
    first, _ = common.time_block(lambda: sync(step()))
    second, _ = common.time_block(lambda: sync(step()))
    print(common.TAG + json.dumps({"build": build, "first_step": first, "second_step": second, **counts}), flush=True)


def one_process(workload: str, size: str, cache: str) -> dict:
    """Run one fresh worker against the cache folder `cache`; return its figures."""
    import subprocess

    env = common.child_env({"NEB_CORE": "jax", "NEB_JAX_CACHE": "1", "NEB_JAX_CACHE_DIR": cache})
    cmd = [sys.executable, "-m", f"{common.PACKAGE}.warm_start", "--worker", workload, size]
    out = subprocess.run(cmd, env=env, cwd=common.REPO, capture_output=True, text=True, timeout=900)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith(common.TAG)]
    if out.returncode or not lines:
        raise common.WorkerError(f"warm-start worker failed (rc={out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len(common.TAG) :])


def collect(
    quick: bool = False, gpu: bool = False, engines=("pytorch", "jax"), rounds: int | None = None
) -> list[dict]:
    """Rounds of (cold, warm) processes, each round on a fresh cache folder; the suite's result rows."""
    if "jax" not in engines:
        return []
    size = "quick" if quick else "gpu" if gpu else "cpu"
    rounds = rounds or (1 if quick else 3)
    runs = {"cold process": [], "warm process": []}
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="neb-jax-cache-") as cache:
            for name in runs:
                runs[name].append(one_process(WORKLOAD, size, cache))
    ratios = [w["first_step"] / c["first_step"] for c, w in zip(runs["cold process"], runs["warm process"])]
    rows = []
    for name, got in runs.items():
        note = "cache hits/misses " + ", ".join(f"{r['hits']}/{r['misses']}" for r in got)
        note += "; build s " + ", ".join(f"{r['build']:.2f}" for r in got)
        row = common.result(
            SUITE,
            f"{WORKLOAD} ({size})",
            f"nebulae-jax {name}",
            "first step",
            [r["first_step"] for r in got],
            "s",
            note,
        )
        rows.append(row)
    rows[-1] = common.with_ratio(rows[-1], "nebulae-jax cold process", ratios, TARGET)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", nargs=2, metavar=("WORKLOAD", "SIZE"), help=argparse.SUPPRESS)
    p.add_argument("--quick", action="store_true", help="tiny ResNet-18, one round")
    p.add_argument("--rounds", type=int, default=None, help="cold/warm pairs (default 3)")
    args = p.parse_args(argv)
    if args.worker:
        worker_main(*args.worker)
        return 0
    rows = collect(quick=args.quick, rounds=args.rounds)
    headers = ("contender", "median", "min", "max", "ratio_median", "ratio_min", "ratio_max", "met", "note")
    print(common.format_table(headers, [[_fmt(r[h]) for h in headers] for r in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
