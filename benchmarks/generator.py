"""Generator packing throughput (images/s): N photo-like 64x64 JPEG files + a CSV -> one HDF5 file.

Data: N (default 4,000) smooth 64x64 RGB images (cubic-upsampled 4x4 noise, as in
shared/reference/env.md §4), written as JPEG quality 90 into a temporary folder with a CSV of
(image, label); the files are in the page cache when timed (freshly written).

Timed: one whole `Generator(...).generate(dst, encode='JPEG', height=64, width=64)` call - CSV
reading and validation (casts, file existence), the worker pool's start, decode + re-encode of
every image, the HDF5 write and the atomic rename - for ``all cores`` (workers=None, the default)
and ``1 process`` (workers=0), interleaved over R repetitions. Reported: median images/s
(min-max) per contender, CPU time per image (this process + its workers) and CPU/wall (how many
cores were actually used: on a shared machine, less than the core count); target >= 5,000
images/s with all cores of a 2-core machine.

Usage (repository root): ``PYTHONPATH=. python benchmarks/generator.py [--quick] [--n N] [--reps R] [--out DIR]``
(writes DIR/generator.csv, default ./bench_out/generator.csv).
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script (python benchmarks/x.py): import it as a module of `benchmarks`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import benchmarks  # noqa: F401 (the parent package of the relative imports below)

    __package__ = "benchmarks"

import cv2
import numpy as np
import simplejpeg

from nebulae.fuel.generator import Generator
from nebulae.fuel.layout import Reservoir

from . import common, memory

TARGET = 5000.0
SUITE = "generator"
CONTENDERS = {"all cores": None, "1 process": 0}
CSV_HEADERS = ("kind", "contender", "workers", "cores", "n", "median", "min", "max", "per_rep")
CSV_HEADERS += ("cpu_us_per_image", "cpu_per_wall", "mib_out", "note")


def make_data(folder: Path, n: int, size: int = 64) -> Path:
    """Write n smooth size x size JPEGs (quality 90) and list.csv (image, label) into `folder`."""
    rng = np.random.default_rng(0)
    with open(folder / "list.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "label"])
        for i in range(n):
            coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
            image = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
            (folder / f"{i:06d}.jpg").write_bytes(simplejpeg.encode_jpeg(image, quality=90))
            writer.writerow([f"{i:06d}.jpg", i % 1000])
    return folder / "list.csv"


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished children (the pool's workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def one_rep(folder: Path, csv_path: Path, workers: int | None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its workers) for one generate() call."""
    dst = folder / "out" / "fuel.hdf5"
    gen = Generator(file_dir=folder, file_list=csv_path, dtype=["vuint8", "int64"])
    cpu, start = cpu_seconds(), time.perf_counter()
    gen.generate(dst, height=64, width=64, channel=3, encode="JPEG", workers=workers)
    return time.perf_counter() - start, cpu_seconds() - cpu


def worker_main(folder: Path, workers: int | None) -> None:
    """Worker process (one contender): answer ``rep`` with one timed generate() call, ``finish`` with peak memory."""

    def rep() -> dict:
        wall, cpu = one_rep(folder, folder / "list.csv", workers)
        return {"seconds": wall, "cpu_seconds": cpu}

    common.serve({"rep": rep, "finish": memory.peak_memory})


def collect(quick: bool = False, gpu: bool = False, engines=("pytorch", "jax")) -> list[dict]:
    """Run the suite for benchmarks.run, each contender in its own worker process; unified result rows.

    Default: 4,000 images, 5 interleaved repetitions after one warm-up each; quick: 500 images, 1.
    """
    n, reps = (500, 1) if quick else (4000, 5)
    cores = memory.cores()
    out, wl = [], f"{n} jpeg64"
    with tempfile.TemporaryDirectory(prefix="neb-genbench-") as tmp:
        make_data(Path(tmp), n)
        pool = []
        try:
            for name, workers in CONTENDERS.items():
                args = ["--dir", tmp] + ([] if workers is None else ["--workers", str(workers)])
                pool.append(common.Worker(name, f"{common.PACKAGE}.generator", args))
            for w in pool:
                w.request("rep")  # warm-up: imports, page cache, the pool's first start
            results = common.interleave(pool, reps)
            finals = {w.name: w.request("finish") for w in pool}
        finally:
            for w in pool:
                w.close()
    for name, reps_ in results.items():
        rates = [n / r["seconds"] for r in reps_]
        cpu_wall = common.median_range([r["cpu_seconds"] / r["seconds"] for r in reps_])[0]
        workers = cores if CONTENDERS[name] is None else CONTENDERS[name]
        note = f"pool workers {workers}; CPU/wall {cpu_wall:.2f}"
        row = common.result(SUITE, wl, name, "images/s", rates, "images/s", note)
        if CONTENDERS[name] is None:  # an absolute target: the median rate itself
            target = f">= {TARGET:.0f}"
            row.update(target=target, met=common.verdict(row["median"], row["min"], row["max"], target))
        out.append(row)
        out += common.memory_rows(SUITE, wl, name, finals[name])
    return out


def main() -> int:
    """Run the benchmark, print the table and write the CSV; exit status 1 when the target is missed."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--dir", help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--quick", action="store_true", help="1,000 images, 2 repetitions (a few seconds)")
    p.add_argument("--n", type=int, default=None, help="number of images (default 4000; quick 1000)")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions per contender (default 5; quick 2)")
    p.add_argument("--out", default="bench_out", help="folder for generator.csv")
    args = p.parse_args()
    if args.worker:
        worker_main(Path(args.dir), args.workers)
        return 0
    n = args.n or (1000 if args.quick else 4000)
    reps = args.reps or (2 if args.quick else 5)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="neb-genbench-") as tmp:
        folder = Path(tmp)
        csv_path = make_data(folder, n)
        one_rep(folder, csv_path, None)  # warm-up: imports, page cache
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in CONTENDERS}
        for r in range(reps):
            for name in common.rotated(list(CONTENDERS), r):
                time.sleep(0.2)
                runs[name].append(one_rep(folder, csv_path, CONTENDERS[name]))
        dst = folder / "out" / "fuel.hdf5"
        res = Reservoir(dst)
        assert len(res) == n and res["image"][n - 1].shape == (64, 64, 3), "wrong output"
        mib = dst.stat().st_size / 2**20
    rows, csv_rows = [], []
    for name, pairs in runs.items():
        rates = [n / wall for wall, _ in pairs]
        med, lo, hi = common.median_range(rates)
        cpu_us = statistics.median(cpu / n * 1e6 for _, cpu in pairs)
        cpu_wall = statistics.median(cpu / wall for wall, cpu in pairs)
        workers = cores if CONTENDERS[name] is None else CONTENDERS[name]
        rows.append([name, workers, common.fmt_spread(med, lo, hi, 0), f"{cpu_us:.0f}", f"{cpu_wall:.2f}"])
        per_rep = " ".join(f"{x:.0f}" for x in rates)
        goal = f"target {TARGET:.0f} img/s" if CONTENDERS[name] is None else "single-process context"
        note = f"{goal}; load average {load:.2f} at start"
        row = ["generator", name, workers, cores, n, f"{med:.1f}", f"{lo:.1f}", f"{hi:.1f}", per_rep]
        csv_rows.append([*row, f"{cpu_us:.1f}", f"{cpu_wall:.2f}", f"{mib:.2f}", note])
    print(
        f"Generator: {n} 64x64 JPEG -> JPEG q95 64x64, {reps} reps, {cores} cores "
        f"(load average {load:.2f} before the run), output {mib:.1f} MiB"
    )
    headers = ("contender", "workers", "median images/s (min–max)", "CPU µs/image", "CPU/wall")
    print(common.format_table(headers, rows))
    path = common.write_csv(Path(args.out) / "generator.csv", CSV_HEADERS, csv_rows)
    best = statistics.median(n / wall for wall, _ in runs["all cores"])
    verdict = "meets" if best >= TARGET else "MISSES"
    print(f"all cores: {best:.0f} images/s {verdict} the target of {TARGET:.0f}; wrote {path}")
    return 0 if best >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
