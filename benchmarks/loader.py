"""Loader throughput (images/s, CPU): fuel.Tank over one packed HDF5 against a torch DataLoader over JPEG files.

Data: N (default 4,000) smooth 64x64 RGB JPEGs (cubic-upsampled 8x8 noise plus +-8 noise, quality 90,
as in shared/reference/env.md §4), written once as individual files and, byte for byte the same,
packed into one HDF5 with `nebulae.fuel.layout.Writer`. Every contender flips each image left-right
with probability 1/2 and normalises it to float32 ((x - mean) / std per channel) sample by sample,
shuffles, and serves batches of 128 with the ragged last batch dropped (31 batches per epoch for 4,000).

Contenders, each in its own interpreter, at the same worker count k:
- ``dataloader``: torch ``DataLoader(num_workers=k, persistent_workers=k > 0)`` over a Dataset that
  opens each file with PIL (``Image.open -> convert('RGB') -> np.asarray``), default collate.
- ``tank``: ``fuel.depot.Tank(workers=k)`` (forked batch workers) over the HDF5, flip + normalise in
  a ``prep_fn(item, rng)``.
- ``tank-grain``: the same Tank with ``pool='grain'`` (Grain ``mp_prefetch`` workers); only k > 0.

Measured per repetition, with a fresh loader each time (modules already imported): ``cold`` = building
the loader and serving its first epoch, worker start included; ``steady`` = the next ``--steady``
epochs with the same workers. Repetitions are interleaved across contenders (benchmarks.common).
Target: Tank >= 1.5x the DataLoader at the same worker count.

    PYTHONPATH=. python benchmarks/loader.py [--quick] [--workers 0,2] [--n 4000] [--reps R]
        [--steady E] [--contenders dataloader,tank,tank-grain] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script (python benchmarks/x.py): import it as a module of `benchmarks`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import benchmarks  # noqa: F401 (the parent package of the relative imports below)

    __package__ = "benchmarks"

import numpy as np

from . import common, memory

CONTENDERS = ("dataloader", "tank", "tank-grain")
SUITE, TARGET = "loader", ">= 1.5"
NOTES = {"cold": "first epoch, loader build and worker start included", "steady": "later epochs, same workers"}
BATCH = 128
MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
INV_STD = 1 / (np.array([0.229, 0.224, 0.225], np.float32) * 255)
MEAN_ROW, INV_STD_ROW = np.tile(MEAN, 64), np.tile(INV_STD, 64)  # per-channel values along one 64x3 row
HEADERS = ("workers", "contender", "cold img/s (min–max)", "steady img/s (min–max)", "cold ×DL", "steady ×DL")
CSV_HEADERS = ("workers", "contender", "images", "cold_median", "cold_min", "cold_max", "steady_median")
CSV_HEADERS += ("steady_min", "steady_max", "cold_ratio_vs_dataloader", "steady_ratio_vs_dataloader", "note")


# --------------------------------------------------------------------------- data


def smooth_image(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A photo-like RGB image: cubic-upsampled 8x8 noise plus +-8 noise."""
    import cv2

    base = cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(base.astype(np.int16) + rng.integers(-8, 9, base.shape), 0, 255).astype(np.uint8)


def make_data(root: Path, n: int) -> dict[str, str]:
    """Write n JPEG files + labels.csv under root/images and the same bytes packed in root/images.hdf5."""
    import simplejpeg

    from nebulae.fuel.layout import ColumnSpec, Writer

    rng = np.random.default_rng(0)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    writer = Writer(
        root / "images.hdf5",
        [ColumnSpec("image", "uint8", "image"), ColumnSpec("label", "int64", "scalar")],
        encode="jpeg",
        height=64,
        width=64,
        channel=3,
    )
    with open(root / "labels.csv", "w", newline="") as f:
        table = csv.writer(f)
        table.writerow(["image", "label"])
        for i in range(n):
            data = simplejpeg.encode_jpeg(smooth_image(rng), quality=90)
            name = f"img_{i:05d}.jpg"
            (images / name).write_bytes(data)
            table.writerow([name, i % 10])
            writer.append({"image": data, "label": i % 10})
    writer.close()
    return {"files": str(images), "csv": str(root / "labels.csv"), "hdf5": str(root / "images.hdf5")}


# --------------------------------------------------------------------------- contenders (worker side)


def flip_normalise(image: np.ndarray, flip: bool) -> np.ndarray:
    """HWC uint8 (64 wide, RGB) -> float32 (x - mean) / std per channel, mirrored left-right when `flip`.

    Both contenders use this function. Normalising a (64, 192) view against one tiled row keeps
    NumPy's inner loops 192 long (broadcasting against a length-3 axis is ~3x slower).
    """
    out = (image[:, ::-1] if flip else image).astype(np.float32)
    rows = out.reshape(out.shape[0], -1)
    rows -= MEAN_ROW
    rows *= INV_STD_ROW
    return out


def tank_prep(item: dict, rng: np.random.Generator) -> dict:
    """The Tank's prep_fn: flip with probability 1/2 (drawn from the sample's generator), normalise."""
    item["image"] = flip_normalise(item["image"], rng.random() < 0.5)
    return item


def build_dataloader(data: dict, workers: int):
    """A torch DataLoader over the JPEG files with PIL, flip + normalise per sample; returns an epoch iterator."""
    import random

    import torch
    from PIL import Image

    names, labels = [], []
    with open(data["csv"], newline="") as f:
        for row in list(csv.reader(f))[1:]:
            names.append(os.path.join(data["files"], row[0]))
            labels.append(int(row[1]))

    class Files(torch.utils.data.Dataset):
        def __len__(self):
            return len(names)

        def __getitem__(self, i):
            with Image.open(names[i]) as im:
                image = np.asarray(im.convert("RGB"))
            return flip_normalise(image, random.random() < 0.5), np.int64(labels[i])

    loader = torch.utils.data.DataLoader(
        Files(), batch_size=BATCH, shuffle=True, drop_last=True, num_workers=workers, persistent_workers=workers > 0
    )
    return loader, len(loader), lambda: None


def build_tank(data: dict, workers: int, pool: str):
    """A Tank over the HDF5 with the same flip + normalise; returns (epoch iterable, MPE, close)."""
    from nebulae.fuel.depot import Tank

    tank = Tank(
        data["hdf5"],
        {"image": "vuint8", "label": "int64"},
        batch_size=BATCH,
        prep_fn=tank_prep,
        workers=workers,
        pool=pool,
    )

    class Epoch:
        def __iter__(self):
            return (tank.next() for _ in range(tank.MPE))

    return Epoch(), tank.MPE, tank.close


def _check(batch) -> None:
    image = batch["image"] if isinstance(batch, dict) else batch[0]
    assert tuple(image.shape) == (BATCH, 64, 64, 3), image.shape
    assert str(image.dtype).endswith("float32"), image.dtype


def worker_main(contender: str, workers: int, files: str, csv_path: str, hdf5: str) -> None:
    """Serve ``rep`` requests: build a fresh loader, time its first epoch and `steady` more."""
    if contender == "dataloader":
        import torch  # noqa: F401 (imported before timing, like nebulae.fuel below)
    else:
        import nebulae.fuel.depot  # noqa: F401
    data = {"files": files, "csv": csv_path, "hdf5": hdf5}

    def rep(steady: int) -> dict:
        start = time.perf_counter()
        if contender == "dataloader":
            loader, mpe, close = build_dataloader(data, workers)
        else:
            loader, mpe, close = build_tank(data, workers, "grain" if contender == "tank-grain" else "fork")
        for batch in loader:
            _check(batch)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(steady):
            for batch in loader:
                _check(batch)
        warm = time.perf_counter() - start
        close()
        del loader
        return {"cold_s": cold, "steady_s": warm, "images": mpe * BATCH}

    common.serve({"rep": rep, "finish": memory.peak_memory})


# --------------------------------------------------------------------------- driver


def bench_workers(k: int, contenders: list[str], data: dict, args, finals: dict | None = None) -> dict[str, list[dict]]:
    """Interleaved repetitions of every contender at worker count k (peak memory per contender into `finals`)."""
    live = [c for c in contenders if not (c == "tank-grain" and k == 0)]
    pool = []
    try:
        for c in live:
            pool.append(
                common.Worker(c, f"{common.PACKAGE}.loader", ["--contender", c, "--workers", str(k), *_data_args(data)])
            )
        results = common.interleave(pool, args.reps, steady=args.steady)
        if finals is not None:
            finals.update({w.name: w.request("finish") for w in pool})
        return results
    finally:
        for w in pool:
            w.close()


def _data_args(data: dict) -> list[str]:
    return ["--files", data["files"], "--csv", data["csv"], "--hdf5", data["hdf5"]]


def summarise(k: int, results: dict[str, list[dict]], steady: int) -> list[dict]:
    """Median (min–max) images/s per contender and ratios to the DataLoader."""
    rows = []
    for name, reps in results.items():
        cold = [r["images"] / r["cold_s"] for r in reps]
        warm = [r["images"] * steady / r["steady_s"] for r in reps] if steady else []
        rows.append({"workers": k, "contender": name, "images": reps[0]["images"], "cold": cold, "steady": warm})
    base = next((r for r in rows if r["contender"] == "dataloader"), None)
    for r in rows:
        for kind in ("cold", "steady"):
            ok = base is not None and r[kind] and base[kind]
            r[f"{kind}_ratio"] = common.median_range(r[kind])[0] / common.median_range(base[kind])[0] if ok else None
    return rows


def collect(quick: bool = False, gpu: bool = False, engines=("pytorch", "jax")) -> list[dict]:
    """Run the suite for benchmarks.run (engine-neutral: Tank vs a torch DataLoader); unified result rows.

    Default: 4,000 images, 0 and 2 workers, all contenders, 3 repetitions, 1 steady epoch; quick:
    512 images, 2 workers, DataLoader and Tank, 1 repetition, 1 steady epoch.
    """
    n, counts, contenders = (512, [2], ["dataloader", "tank"]) if quick else (4000, [0, 2], list(CONTENDERS))
    args = argparse.Namespace(reps=1 if quick else 3, steady=1)
    root = Path(tempfile.mkdtemp(prefix="neb-loader-"))
    out = []
    try:
        data = make_data(root, n)
        for k in counts:
            finals: dict = {}
            results = bench_workers(k, contenders, data, args, finals)
            wl = f"{n} jpeg64 b{BATCH} w{k}"
            for name, reps in results.items():
                for kind, count in (("cold", 1), ("steady", args.steady)):
                    rates = [r["images"] * count / r[f"{kind}_s"] for r in reps]
                    row = common.result(SUITE, wl, name, f"{kind} images/s", rates, "images/s", NOTES[kind])
                    if name != "dataloader" and "dataloader" in results:
                        base = [r["images"] * count / r[f"{kind}_s"] for r in results["dataloader"]]
                        target = TARGET if kind == "cold" and name == "tank" else ""
                        row = common.with_ratio(row, "dataloader", [a / b for a, b in zip(rates, base)], target)
                    out.append(row)
                out += common.memory_rows(SUITE, wl, name, finals[name])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--contender", help=argparse.SUPPRESS)
    parser.add_argument("--files", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--hdf5", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="1,000 images, 1 repetition, 1 steady epoch")
    parser.add_argument("--workers", default="0,2", help="comma-separated worker counts (default 0,2)")
    parser.add_argument("--n", type=int, default=None, help="number of images (default 4000; 1000 with --quick)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per contender (default 3; 1 with --quick)")
    parser.add_argument("--steady", type=int, default=None, help="steady epochs after the first (default 2)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help="subset of " + ",".join(CONTENDERS))
    parser.add_argument("--out", default="bench_out", help="output folder for loader.csv (default bench_out)")
    args = parser.parse_args()
    if args.worker:
        worker_main(args.contender, int(args.workers), args.files, args.csv, args.hdf5)
        return 0
    args.n = args.n or (1000 if args.quick else 4000)
    args.reps = args.reps or (1 if args.quick else 3)
    args.steady = args.steady if args.steady is not None else (1 if args.quick else 2)
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = set(contenders) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders {sorted(unknown)}; valid: {', '.join(CONTENDERS)}")
    counts = [int(k) for k in args.workers.split(",")]

    root = Path(tempfile.mkdtemp(prefix="neb-loader-"))
    try:
        start = time.perf_counter()
        data = make_data(root, args.n)
        print(f"data: {args.n} JPEG files + one HDF5 in {time.perf_counter() - start:.1f} s ({root})", flush=True)
        rows = []
        for k in counts:
            rows += summarise(k, bench_workers(k, contenders, data, args), args.steady)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    table, out_rows = [], []
    for r in rows:
        cold, warm = common.median_range(r["cold"]), common.median_range(r["steady"])
        ratio = [f"{r[k]:.2f}" if r[k] is not None else "" for k in ("cold_ratio", "steady_ratio")]
        table.append([r["workers"], r["contender"], common.fmt_spread(*cold, 0), common.fmt_spread(*warm, 0), *ratio])
        note = "target >= 1.5" if r["contender"] == "tank" else ""
        out_rows.append(
            [r["workers"], r["contender"], r["images"], *(f"{v:.1f}" for v in (*cold, *warm)), *ratio, note]
        )
    print(
        f"\nbatch {BATCH}, {args.n} images, {args.reps} repetitions, {args.steady} steady epochs, cpus {os.cpu_count()}"
    )
    print(common.format_table(HEADERS, table))
    path = common.write_csv(Path(args.out) / "loader.csv", CSV_HEADERS, out_rows)
    print(f"\nwrote {path}")
    tank_rows = [r for r in rows if r["contender"] == "tank" and r["cold_ratio"] is not None]
    return 0 if all(r["cold_ratio"] >= 1.5 for r in tank_rows) else 1


if __name__ == "__main__":
    sys.exit(main())
