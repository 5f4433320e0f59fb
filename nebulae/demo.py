"""The Nebulae demo: real images, from files on disk to a model that runs on both engines.

    nebulae demo --core pytorch      # or --core jax (python -m nebulae demo ...); `make demo` runs both

Needs scikit-learn for the digits (`pip install 'nebulae[demo]'`) and the engine it runs on.

1. Data arrives as files: the 1,797 handwritten digits shipped with scikit-learn (real 8x8 scans,
   grey levels 0-16) are written as PNG files plus `digits.csv` (image,label), then split into a
   stratified train / held-out pair of CSVs (80/20, fixed seed).
2. fuel: `Generator` packs each CSV into an HDF5 file, upscaling the 8x8 scans to 16x16 (bilinear):
   the CNN gets two pooling stages, and the augmentation's shifts and rotations move strokes by
   fractions of an original pixel instead of whole ones. `Tank` serves shuffled batches, each sample
   augmented by a `Comburant` (pad 1 + random 16x16 crop: shifts of up to 1 pixel; rotations of up
   to 8 degrees) with draws that depend only on (seed, epoch, sample).
3. astro: a small CNN written once with `dock` crafts (Conv-BN-Relu-MaxPool twice, Dense), trained
   with Adam (cosine schedule, warm-up) and an `EMA` of the weights.
4. aerolog + cockpit: a `DashBoard` shows the training live and writes curves (PNG) and CSV logs;
   a `TimeMachine` drops an anchor every epoch and finally the EMA weights as a neutral `.h5`.
5. The held-out set is scored with the EMA weights under `Nozzle`; then the OTHER engine loads the
   `.h5` in a fresh process and predicts the same held-out set: argmax agreement and the largest
   logit difference are reported.

Everything goes under `--out` (default ./demo_out): raw/ and data/ (shared by both engines), and
<engine>/ with aerolog/ (logs, plots), ckpt/ (anchors, digits.h5) and the held-out logits.
Flags: --epochs (20), --batch-size (64), --lr (1e-2), --out; --quick trains one epoch (for tests).
"""

# ruff: noqa: E402 (OMP_NUM_THREADS must be set before the crafts below import the engine)
from __future__ import annotations

import os

# Small convolutions on a few cores run fastest on one intra-op thread, which also leaves a core to the
# Tank's prefetch thread: torch's default (one thread per core) made this demo 5-20x slower on a busy
# 2-core machine. The engine is imported when the first craft class below is defined, so this comes
# first; OMP_NUM_THREADS set in the environment wins. `nebulae demo` sets the same before importing us.
if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import csv
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import nebulae
from nebulae import fuel
from nebulae.aerolog import DashBoard
from nebulae.astro import dock, init
from nebulae.cockpit import TimeMachine
from nebulae.fuel import HWC2CHW, Comburant, Crop, End, Pad, Rotate, Whiten

# the folder `nebulae` was imported from (site-packages, or a source checkout): the cross-check's path
ROOT = Path(nebulae.__file__).resolve().parent.parent
ENGINES = {"pytorch": "jax", "jax": "pytorch"}
MODULES = {"pytorch": "torch", "jax": "jax"}  # the package each engine needs
SIDE = 16  # the packed image size (the scans are 8x8)
SPEC = {"image": "vuint8", "label": "int64"}
TARGET = 0.97  # held-out accuracy the full demo must reach
AGREE = 1e-3  # largest logit difference allowed between the engines (float32 rounding gives ~1e-5)


# --------------------------------------------------------------------------- data: files -> CSV -> HDF5


def write_raw(folder: Path, held_out: float = 0.2, seed: int = 0) -> tuple[Path, Path, int]:
    """Write the scikit-learn digits as 8x8 grey PNGs plus digits.csv, and a stratified train/held-out split
    as train.csv and heldout.csv; return (train.csv, heldout.csv, held-out count)."""
    import cv2
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)  # 16 grey levels -> 0..255
    labels = digits.target.astype(np.int64)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (image, label) in enumerate(zip(images, labels)):
        name = f"images/digit_{i:04d}.png"
        cv2.imwrite(str(folder / name), image)
        rows.append((name, int(label)))
    rng = np.random.default_rng(seed)
    test = np.zeros(len(rows), bool)
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        test[members[: round(held_out * len(members))]] = True
    paths = []
    for name, keep in (("digits.csv", None), ("train.csv", False), ("heldout.csv", True)):
        path = folder / name
        with open(path, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["image", "label"])
            out.writerows(r for r, t in zip(rows, test) if keep is None or t == keep)
        paths.append(path)
    return paths[1], paths[2], int(test.sum())


def pack(raw: Path, train_csv: Path, heldout_csv: Path, folder: Path) -> tuple[str, str]:
    """Pack both CSVs into HDF5 files of 16x16 grey PNGs with `fuel.Generator`; return their paths."""
    fg = fuel.Generator(file_dir=str(raw), file_list=str(train_csv), dtype=["vuint8", "int64"])
    train = fg.generate(folder / "train.hdf5", height=SIDE, width=SIDE, channel=1, encode="PNG")[0]
    fg.modify(file_list=str(heldout_csv))
    heldout = fg.generate(folder / "heldout.hdf5", height=SIDE, width=SIDE, channel=1, encode="PNG")[0]
    return train, heldout


def augmenter(train: bool) -> Comburant:
    """Shifts (pad 1 + random 16x16 crop) and rotations for training; whitening only for evaluation."""
    tail = (End(), HWC2CHW(), Whiten(0.3, 0.4))  # roughly the digits' grey-level mean and spread
    if not train:
        return Comburant(*tail)
    return Comburant(Pad(1), Rotate(8), Crop(SIDE, scale=None), *tail)


class Prep:
    """A Tank prep_fn: runs a Comburant on the image with the per-sample generator the Tank hands over."""

    def __init__(self, train: bool):
        self.aug = augmenter(train)

    def __call__(self, item: dict, rng: np.random.Generator) -> dict:
        item["image"] = self.aug(item["image"], rng=rng)
        return item


# --------------------------------------------------------------------------- model and steps (both engines)


class DigitNet(dock.Craft):
    """Two Conv-BN-Relu-MaxPool blocks (16x16 -> 8x8 -> 4x4) and a Dense classifier."""

    def __init__(self, nclass: int = 10, scope: str = "DIGITS"):
        super().__init__(scope)
        self.conv1 = dock.Conv(1, 16, (3, 3), padding=1, b_init=dock.Void())
        self.bn1 = dock.BN(16, 2)
        self.conv2 = dock.Conv(16, 32, (3, 3), padding=1, b_init=dock.Void())
        self.bn2 = dock.BN(32, 2)
        self.act = dock.Relu()
        self.pool = dock.MaxPool((2, 2))
        self.flat = dock.Reshape()
        self.fc = dock.Dense(32 * 4 * 4, nclass)

    def run(self, x):
        x = self.pool(self.act(self.bn1(self.conv1(x))))
        x = self.pool(self.act(self.bn2(self.conv2(x))))
        return self.fc(self.flat(x, (-1, 32 * 4 * 4)))


class Train(dock.Craft):
    """One training step: cross-entropy, Adam with a cosine schedule and warm-up, then the EMA."""

    def __init__(self, net: DigitNet, steps: int, warmup: int, lr: float, scope: str = "TRAIN"):
        super().__init__(scope)
        self.net, self.loss, self.acc = net, dock.SftmXE(), dock.AccCls()
        self.optz = dock.Adam(net, lr=lr, wd=1e-4, lr_decay=dock.CosLR(steps), warmup=warmup)
        self.ema = dock.EMA(net, decay=0.95)

    def run(self, x, z):
        with dock.Rudder() as rd:
            self.net.gear(rd)
            y = self.net(x)
            loss = self.loss(y, z)
            self.optz(loss)
            self.ema.update()
        return loss, self.acc(y, z)


class Dev(dock.Craft):
    """Evaluation: the logits of the net."""

    def __init__(self, net: DigitNet, scope: str = "DEV"):
        super().__init__(scope)
        self.net = net

    def run(self, x):
        return self.net(x)


def predict(dev: Dev, tank: fuel.Tank) -> tuple[np.ndarray, np.ndarray]:
    """(logits, labels) of every sample the Tank serves in one epoch, under Nozzle."""
    logits, labels = [], []
    with dock.Nozzle():
        for _ in range(tank.MPE):
            batch = tank.next()
            logits.append(dock.shell(dev(dock.coat(batch["image"]))))
            labels.append(batch["label"])
    return np.concatenate(logits), np.concatenate(labels)


def heldout_tank(path: str, count: int) -> fuel.Tank:
    """The held-out set in its stored order, as one batch."""
    return fuel.Tank(path, SPEC, batch_size=count, shuffle=False, in_same_size=False, prep_fn=Prep(False))


# --------------------------------------------------------------------------- the dashboard


def dashboard(log_path: Path):
    """The live DashBoard (aerolog) writing curves (PNG) and CSV logs under `log_path`."""
    return DashBoard(
        log_path=str(log_path), window=5, divisor=6, span=60, format={"Loss": (".4f", "raw"), "Acc": (".2f", "percent")}
    )


# --------------------------------------------------------------------------- training, export, cross-check


def train_mode(args: argparse.Namespace) -> int:
    """The whole demo on this engine; returns the exit status (1 if the full run missed the target)."""
    engine, start = nebulae.Law.CORE, time.perf_counter()
    out = Path(args.out).resolve()
    mine = out / engine  # this engine's logs, anchors and weights; raw/ and data/ are shared
    print(f"[{engine}] writing the scikit-learn digits as PNG files + CSVs under {out / 'raw'}, packing them")
    train_csv, heldout_csv, n_heldout = write_raw(out / "raw")
    train_h5, heldout_h5 = pack(out / "raw", train_csv, heldout_csv, out / "data")

    init.seed(0)
    tank = fuel.Tank(train_h5, SPEC, batch_size=args.batch_size, prep_fn=Prep(True), seed=0, to_device=True)
    held = heldout_tank(heldout_h5, n_heldout)
    print(f"[{engine}] {len(tank)} training / {len(held)} held-out images, {tank.MPE} batches of {args.batch_size}")
    net = DigitNet()
    train, dev = Train(net, steps=args.epochs * tank.MPE, warmup=tank.MPE, lr=args.lr), Dev(net)
    board = dashboard(mine / "aerolog")
    tm = TimeMachine(ckpt_path=str(mine / "ckpt"), save_path=str(mine / "ckpt"), max_anchors=2)
    interval = 1 if sys.stdout.isatty() else tank.MPE  # live on a terminal, one line per epoch in a log file
    tick = time.perf_counter()
    for epoch in range(args.epochs):
        for mile in range(tank.MPE):
            batch = tank.next()
            loss, acc = train(batch["image"], batch["label"])  # device scalars: the board reads them when it shows
            now = time.perf_counter()
            board.gauge({"Loss": loss, "Acc": acc}, mile, epoch, tank.MPE, "TRAIN", interval, duration=now - tick)
            tick = now
        train.ema.on()
        logits, labels = predict(dev, held)
        train.ema.off()
        board.gauge({"Acc": float(np.mean(logits.argmax(1) == labels))}, 0, epoch, 1, "DEV")
        tm.drop(train, tank=tank)  # an anchor of the whole state, every epoch (the newest 2 are kept)
        tick = time.perf_counter()
    logs = board.log(gauge=True, tachograph=True, record=mine / "aerolog" / "runs.csv")
    tank.close()
    trained = time.perf_counter()

    raw_logits, labels = predict(dev, held)
    train.ema.on()
    logits, _ = predict(dev, held)
    h5 = tm.drop(net, file="digits.h5")  # the EMA weights, by parameter path
    train.ema.off()
    tm.wait()
    held.close()
    np.save(mine / f"logits_{engine}.npy", logits)
    accuracy, raw_accuracy = _accuracy(logits, labels), _accuracy(raw_logits, labels)
    compiled = f" ({train.compile_seconds:.1f} s of it compiling the step)" if train.compile_seconds else ""
    print(
        f"[{engine}] held-out accuracy {100 * accuracy:.2f} % with EMA weights ({100 * raw_accuracy:.2f} % without); "
        f"{args.epochs} epoch{'s' * (args.epochs != 1)} in {trained - start:.1f} s" + compiled
    )
    cross = cross_check(ENGINES[engine], h5, heldout_h5, n_heldout, mine, logits, labels)
    summary(engine, out, accuracy, cross, time.perf_counter() - start, h5, logs)
    failed = False
    if not args.quick and accuracy < TARGET:
        print(f"[{engine}] FAILED: held-out accuracy {100 * accuracy:.2f} % < {100 * TARGET:.0f} %")
        failed = True
    if cross is not None and (cross["agreement"] < 1 or cross["max_diff"] > AGREE):
        print(f"[{engine}] FAILED: {cross['engine']} predicts differently from the same weights")
        failed = True
    return int(failed)


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(logits.argmax(1) == labels))


def cross_check(
    other: str, h5: str, heldout_h5: str, count: int, folder: Path, logits: np.ndarray, labels: np.ndarray
) -> dict | None:
    """Have `other` load the .h5 in a fresh process and predict the held-out set; compare with `logits`."""
    if importlib.util.find_spec(MODULES[other]) is None:
        print(f"cross-engine check skipped: {other} is not installed")
        return None
    dst = folder / f"logits_{other}.npy"
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, NEB_CORE=other, PYTHONPATH=path)
    cmd = [sys.executable, "-m", "nebulae.demo", "--predict", h5, "--data", heldout_h5]
    cmd += ["--count", str(count), "--logits", str(dst)]
    tick = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the {other} prediction failed:\n{done.stdout}{done.stderr}")
    print(done.stdout, end="")
    theirs = np.load(dst)
    return {
        "engine": other,
        "accuracy": _accuracy(theirs, labels),
        "agreement": float(np.mean(theirs.argmax(1) == logits.argmax(1))),
        "max_diff": float(np.max(np.abs(theirs - logits))),
        "seconds": time.perf_counter() - tick,
    }


def predict_mode(args: argparse.Namespace) -> int:
    """The cross-engine half: load a neutral .h5 into DigitNet on this engine and save its held-out logits."""
    engine = nebulae.Law.CORE
    net = DigitNet()
    folder = os.path.dirname(os.path.abspath(args.predict))
    landing = TimeMachine(ckpt_path=folder, save_path=folder).to(net, file=args.predict, frozen=True)
    held = heldout_tank(args.data, args.count)
    logits, labels = predict(Dev(net), held)
    held.close()
    np.save(args.logits, logits)
    print(
        f"[{engine}] loaded {os.path.basename(args.predict)} (written by {landing.engine}) in a new process: "
        f"held-out accuracy {100 * _accuracy(logits, labels):.2f} %"
    )
    return 0


def summary(
    engine: str, out: Path, accuracy: float, cross: dict | None, total: float, h5: str, logs: list[Path]
) -> None:
    """The closing report: what was done and where everything went."""
    mine = out / engine
    print(f"\n=== Nebulae demo on {engine}: done in {total:.1f} s ===")
    print(f"held-out accuracy ({engine}, EMA weights): {100 * accuracy:.2f} %")
    if cross is not None:
        print(
            f"cross-engine: {cross['engine']} loaded the .h5 in a new process ({cross['seconds']:.1f} s) and agrees "
            f"on {100 * cross['agreement']:.2f} % of the held-out predictions (max |logit difference| "
            f"{cross['max_diff']:.2e}; {cross['engine']} accuracy {100 * cross['accuracy']:.2f} %)"
        )
    print(f"raw data:     {out / 'raw'} (1,797 PNG files; digits.csv, train.csv, heldout.csv)")
    print(f"packed data:  {out / 'data'} (train.hdf5, heldout.hdf5)")
    pngs, csvs = (sum(Path(p).suffix == ext for p in logs) for ext in (".png", ".csv"))
    print(f"logs, plots:  {mine / 'aerolog'} ({pngs} PNG curves, {csvs} CSV logs; runs.csv keeps every run)")
    print(f"checkpoints:  {mine / 'ckpt'} (TimeMachine anchors, the newest 2 epochs)")
    print(f"weights:      {h5} (neutral HDF5: loads on either engine)")
    print(f"predictions:  {mine} (held-out logits of both engines, .npy)")


def main(argv: list[str] | None = None) -> int:
    """Run the demo on the bound engine (`Law.CORE`); returns the exit status.

    Args:
        argv: the command-line flags (default `sys.argv[1:]`); see `--help`.
    """
    parser = argparse.ArgumentParser(
        prog="nebulae demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 20; 1 with --quick)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2, help="peak learning rate (default 1e-2)")
    parser.add_argument("--out", default="demo_out", help="working folder (default ./demo_out)")
    parser.add_argument("--quick", action="store_true", help="a one-epoch run for tests; no accuracy requirement")
    parser.add_argument("--predict", help=argparse.SUPPRESS)  # the cross-engine check: a .h5 to load
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--logits", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.predict:
        return predict_mode(args)
    if args.epochs is None:
        args.epochs = 1 if args.quick else 20
    return train_mode(args)


if __name__ == "__main__":
    sys.exit(main())
