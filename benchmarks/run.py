"""The whole benchmark suite in one run: ``python -m nebulae bench`` (or ``python -m benchmarks.run``).

Suites (each a module of this package with ``collect(quick, gpu, engines) -> rows``; every contender
runs in its own worker process, repetitions interleaved, medians with min–max and paired ratios):
- ``train_step``: steps/s of an MLP, the CNN of env.md §3 and a hangar ResNet-18 (and ResNet-50 with
  ``--gpu``), nebulae-torch vs eager torch, nebulae-JAX vs a functional ``jax.jit`` Flax NNX loop and
  ``@nnx.jit``; ``--precision bf16|both`` adds mixed-bf16 rows (workload ``<name> bf16``);
- ``dock_overhead``: the dock wrapper's cost on a CNN forward;
- ``checkpoint``: how long ``TimeMachine.drop`` blocks the loop vs a synchronous save;
- ``loader``: Tank images/s vs a torch DataLoader with PIL over the same JPEG files;
- ``generator``: Generator packing images/s.
Sizes: ``--quick`` (a smoke run: tiny sizes, 1-2 repetitions, about 2.5 minutes for both engines on 2
cores; it checks that every suite runs, its ratios are noise, so it gives no verdicts on the targets),
the default CPU set (a few minutes on 2 cores; train_step adds rounds of fresh processes, up to
``--until-separated`` rounds per workload, while a targeted ratio's confidence interval straddles its
target), ``--gpu`` (bigger train-step sizes on the first GPU).
``--engines`` restricts the engine-specific suites to nebulae-torch + torch baselines (``pytorch``) or
nebulae-JAX + JAX baselines (``jax``); the data suites are engine-neutral and always run.

Writes into ``--out`` (default bench_out/): ``bench.csv`` (one row per measurement, columns
`benchmarks.common.RESULT_FIELDS`), ``bench.json`` (machine, versions, thread counts, command,
per-suite wall time, and every ratio row under ``ratios``), ``bench.png`` (the ratios and their targets)
and ``bench.md`` (a Markdown table of the ratios for the README). Verdicts rest on the distribution-free
95 % confidence interval of the median paired ratio (`benchmarks.common.median_ci`; with 8 or fewer
repetitions it is their min–max): ``yes``/``no`` when the interval lies wholly on the target's side /
wholly off it, ``within noise`` when it straddles the target. Exit status 1 if a suite or contender failed,
2 if a package the selected suites need is missing, 0 otherwise (missed targets are reported, not failures).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import shlex
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script (python benchmarks/x.py): import it as a module of `benchmarks`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import benchmarks  # noqa: F401 (the parent package of the relative imports below)

    __package__ = "benchmarks"

from . import common, machine, peers, report

SUITES = ("train_step", "dock_overhead", "checkpoint", "loader", "generator", "warm_start")
ENGINES = ("pytorch", "jax")


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line of ``bench``."""
    p = argparse.ArgumentParser(
        prog="python -m nebulae bench",
        description=__doc__.split("\n\n")[0],
        epilog="Installed with the package (nebulae.benchmarks); needs both engines: pip install 'nebulae[bench]'.",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, 1-2 reps, no verdicts (minutes)")
    size.add_argument("--gpu", action="store_true", help="GPU train-step sizes (ResNet-18/50 224x224 b64) on a GPU")
    p.add_argument("--only", default="", help=f"comma-separated suites to run (default all: {','.join(SUITES)})")
    p.add_argument("--engines", default=",".join(ENGINES), help="comma-separated engines: pytorch,jax (default both)")
    p.add_argument(
        "--peers", choices=("keras",), action="append", default=[], help="train_step: add Keras 3 contenders"
    )
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "both"),
        default="fp32",
        help="train_step: float32, mixed bf16 (float32 weights) or both (default fp32)",
    )
    p.add_argument(
        "--workloads",
        default="",
        help="train_step: comma-separated workloads (default mlp,cnn,resnet; --gpu adds resnet50)",
    )
    p.add_argument(
        "--until-separated",
        type=int,
        default=None,
        metavar="N",
        help="train_step: up to N rounds per workload while a targeted ratio's 95%% CI straddles its target "
        "(default 4 on a CPU; --quick and --gpu: 0, one round)",
    )
    p.add_argument("--reps", type=int, default=None, help="train_step: repetitions per round (default 7; quick 2)")
    p.add_argument("--steps", type=int, default=None, help="train_step: steps per repetition (default per workload)")
    p.add_argument("--out", default="bench_out", help="output folder (default bench_out/)")
    args = p.parse_args(argv)
    args.suites = [s.strip() for s in args.only.split(",") if s.strip()] or list(SUITES)
    args.engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    for what, given, valid in (("suite", args.suites, SUITES), ("engine", args.engines, ENGINES)):
        unknown = sorted(set(given) - set(valid))
        if unknown or not given:
            p.error(f"unknown or no {what}(s) {unknown}; choose from {', '.join(valid)}")
    return args


# the import names each selected suite needs: the engines' own packages and the baselines' (torch's DataLoader)
NEEDS = {"pytorch": ("torch",), "jax": ("jax", "flax", "optax")}
ENGINE_SUITES = ("train_step", "dock_overhead", "checkpoint", "warm_start")


def missing_packages(args: argparse.Namespace) -> list[str]:
    """The packages the selected suites and engines need that are not installed."""
    needed: list[str] = []
    if set(args.suites) & set(ENGINE_SUITES):
        needed += [m for e in args.engines for m in NEEDS[e]]
    if "loader" in args.suites:
        needed.append("torch")
    return [m for m in dict.fromkeys(needed) if importlib.util.find_spec(m) is None]


def run_suite(name: str, args: argparse.Namespace) -> list[dict]:
    """One suite's rows; a suite that raises gives one FAILED row (the others still run)."""
    module = importlib.import_module(f".{name}", __package__)
    try:
        extra = {}
        if name == "train_step":
            workloads = tuple(w.strip() for w in args.workloads.split(",") if w.strip()) or None
            extra = {"peers": args.peers, "precision": args.precision, "workloads": workloads}
            extra.update(until_separated=args.until_separated, reps=args.reps, steps=args.steps)
        return module.collect(quick=args.quick, gpu=args.gpu, engines=args.engines, **extra)
    except Exception:
        error = traceback.format_exc()
        print(f"[{name}] FAILED\n{error}", file=sys.stderr, flush=True)
        return [common.failed(name, "", "", "", error)]


def thread_counts(rows: list[dict]) -> dict[str, float]:
    """The CPU thread counts the train-step workers reported, per contender."""
    return {r["contender"]: r["median"] for r in rows if r["metric"] == "CPU threads"}


RATIO_KEYS = ("suite", "workload", "precision", "contender", "metric", "ratio_to", "ratio_median", "ratio_min")
RATIO_KEYS += ("ratio_max", "ratio_ci_low", "ratio_ci_high", "ratio_n", "target", "met")


def ratio_summary(rows: list[dict]) -> list[dict]:
    """The ratio rows for bench.json: median, min–max and the median's confidence interval, target, verdict."""
    return [{k: r[k] for k in RATIO_KEYS} for r in report.ratio_rows(rows)]


def main(argv: list[str] | None = None) -> int:
    """Run the selected suites, print the table and write bench.csv/.json/.png/.md; 1 if anything failed."""
    args = parse(argv)
    out = Path(args.out)
    if argv is None:  # python -m benchmarks.run ...
        command = f"python -m {__package__}.run " + shlex.join(sys.argv[1:])
    else:  # called by python -m nebulae bench ...
        command = "python -m nebulae bench " + shlex.join(argv)
    missing = missing_packages(args)
    if missing:
        torch = "torch first from its CPU or CUDA index (pip install torch==2.13.0 --index-url "
        torch += "https://download.pytorch.org/whl/cpu, or .../whl/cu128), then " if "torch" in missing else ""
        print(f"nebulae bench needs {', '.join(missing)}: install {torch}pip install 'nebulae[bench]'", file=sys.stderr)
        return 2
    skipped = peers.missing(list(dict.fromkeys(args.peers)) if "train_step" in args.suites else [])
    for peer in skipped:  # its contenders are left out; the rest runs
        print(peers.MISSING.format(peer=peer, package=peers.PACKAGES[peer]), file=sys.stderr)
    args.peers = [p for p in dict.fromkeys(args.peers) if p not in skipped]
    info = machine.describe()
    size = "quick" if args.quick else "gpu" if args.gpu else "cpu"
    if args.gpu and not info["gpus"]:
        print("bench --gpu: no NVIDIA GPU is visible here (NVML lists none); run without --gpu", file=sys.stderr)
        return 2
    print(f"nebulae bench ({size}; engines {','.join(args.engines)}) on {machine.summary(info)}", flush=True)
    rows, seconds = [], {}
    start = time.perf_counter()
    for name in args.suites:
        t0 = time.perf_counter()
        print(f"[{name}] running...", flush=True)
        rows += run_suite(name, args)
        seconds[name] = round(time.perf_counter() - t0, 1)
        print(f"[{name}] done in {seconds[name]:.1f} s", flush=True)
    total = time.perf_counter() - start
    if args.quick:  # tiny sizes and 1-2 repetitions: the ratios say the suites run, not how fast
        for r in rows:
            if r["target"] and r["met"] != "FAILED":
                r["met"] = common.NO_VERDICT
    info.update(
        command=command,
        size=size,
        engines=list(args.engines),
        suites=args.suites,
        suite_seconds=seconds,
        total_seconds=round(total, 1),
        load_average_after=os.getloadavg()[0],
        cpu_threads=thread_counts(rows),
        ratios=ratio_summary(rows),
    )
    smoke = "; smoke run: ratios of tiny sizes, no verdicts" if args.quick else ""
    title = f"nebulae bench ({size}{smoke}) — {machine.summary(info)}; {total:.0f} s"
    print()
    report.print_table(rows, title)
    csv_path = report.write_csv(rows, out / "bench.csv")
    (out / "bench.json").write_text(json.dumps(info, indent=2) + "\n")
    png = report.chart(rows, out / "bench.png", title)
    (out / "bench.md").write_text(report.markdown(rows, machine.summary(info), command))
    missed = [r for r in rows if r["met"] == "no"]
    failures = [r for r in rows if r["met"] == "FAILED"]
    print(f"\nwrote {csv_path}, {out / 'bench.json'}, {png or '(no ratios: no chart)'}, {out / 'bench.md'}")
    for r in missed:
        print(
            f"target missed: {r['suite']} {r['workload']} {r['contender']} / {r['ratio_to'] or r['metric']}: "
            f"{float(r['ratio_median'] if r['ratio_to'] else r['median']):.3f} (target {r['target']})"
        )
    for r in failures:
        print(f"FAILED: {r['suite']} {r['workload']} {r['contender']}: {r['note']}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
