"""The end-to-end demo (nebulae/demo.py) in its quick mode, on this pass's engine.

The demo writes real PNG files and CSVs, packs them, trains a CNN for one epoch, drops anchors and a
neutral .h5, and has the other engine load the .h5 in a fresh process and predict the held-out set.
The full demo (20 epochs, >= 97 % held-out accuracy) is not run here: see `make demo`.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys

import h5py
import numpy as np

from tests.conftest import HAVE_TORCH, ROOT

OTHER = {"pytorch": "jax", "jax": "pytorch"}


def run_demo(engine: str, out, *args: str) -> subprocess.CompletedProcess:
    """`python -m nebulae demo --core <engine> --quick` in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if k not in ("NEB_CORE", "OMP_NUM_THREADS")}
    env.update(PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "nebulae", "demo", "--core", engine, "--quick", "--out", str(out), *args]
    return subprocess.run(cmd, cwd=out.parent, env=env, capture_output=True, text=True, timeout=300)


def test_quick_demo_trains_exports_and_agrees_across_engines(engine, tmp_path):
    out = tmp_path / "demo"
    r = run_demo(engine, out, "--batch-size", "96")
    assert r.returncode == 0, r.stdout + r.stderr
    text = r.stdout

    # data arrived as files: 1,797 PNGs listed in a CSV, split 80/20 per class
    with open(out / "raw" / "digits.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["image", "label"] and len(rows) == 1798
    assert len(list((out / "raw" / "images").glob("*.png"))) == 1797
    with open(out / "raw" / "heldout.csv") as f:
        held = list(csv.reader(f))[1:]
    counts = np.bincount([int(label) for _, label in held], minlength=10)
    assert counts.sum() == 359 and counts.min() >= 35 and counts.max() <= 37
    # packed by fuel.Generator: 16x16 grey PNGs
    with h5py.File(out / "data" / "train.hdf5") as f:
        assert f.attrs["height"] == 16 and f.attrs["width"] == 16 and f.attrs["channel"] == 1
    assert f"{1797 - 359} training / 359 held-out images, {(1797 - 359) // 96} batches of 96" in text

    # this engine's accuracy, then the other engine's prediction from the .h5
    line = re.search(rf"^\[{engine}\] held-out accuracy ([\d.]+) % with EMA weights", text, re.M)
    assert line, text
    accuracy = float(line.group(1))
    assert 20 < accuracy <= 100  # one epoch: well above chance (10 %), no target
    other = OTHER[engine]
    mine = out / engine  # this engine's logs, anchors, weights and predictions
    if HAVE_TORCH or other != "pytorch":
        assert re.search(rf"^\[{other}\] loaded digits.h5 \(written by {engine}\)", text, re.M), text
        agree = r"agrees on ([\d.]+) % of the held-out predictions \(max \|logit difference\| ([\d.e+-]+)"
        cross = re.search(agree, text)
        assert cross, text
        assert float(cross.group(1)) == 100.0 and float(cross.group(2)) < 1e-3
        ours, theirs = np.load(mine / f"logits_{engine}.npy"), np.load(mine / f"logits_{other}.npy")
        assert ours.shape == theirs.shape == (359, 10)
        np.testing.assert_allclose(ours, theirs, atol=1e-3)
    else:  # the JAX-only pass (Python 3.12, newest JAX) has no torch to compare with
        assert "cross-engine check skipped: pytorch is not installed" in text, text

    # anchors, neutral weights, dashboard logs; the summary names where they are
    with h5py.File(mine / "ckpt" / "digits.h5") as f:
        assert f.attrs["engine"] == engine and "conv1" in f and "fc" in f
    anchors = [p for p in os.listdir(mine / "ckpt") if p.startswith("TRAIN-")]
    assert anchors == [f"TRAIN-{(1797 - 359) // 96}" + (".pth" if engine == "pytorch" else "")]
    logs = mine / "aerolog"
    for name in ("Loss_TRAIN_mile.png", "Acc_TRAIN_mile.png", "Acc_epoch.png", "metrics.csv"):
        assert (logs / name).stat().st_size > 0, name
    with open(logs / "metrics.csv") as f:
        dev = [r for r in csv.DictReader(f) if (r["stage"], r["metric"], r["mile"]) == ("DEV", "Acc", "")]
    assert [r["epoch"] for r in dev] == ["0"]  # one epoch: its mean (empty mile)
    assert abs(float(dev[0]["value"]) * 100 - accuracy) <= 0.005  # the printed accuracy has 2 decimals
    assert re.search(r"logs, plots: .* \((\d+) PNG curves, (\d+) CSV logs", text)
    assert f"=== Nebulae demo on {engine}: done in" in text
    for what in ("raw data:", "packed data:", "logs, plots:", "checkpoints:", "weights:"):
        assert what in text


def test_demo_without_scikit_learn_names_the_extra(tmp_path):
    code = "import sys\nsys.modules['sklearn'] = None\nfrom nebulae.__main__ import main\n"
    code += "sys.exit(main(['demo', '--quick']))"
    env = {k: v for k, v in os.environ.items() if k != "NEB_CORE"}
    env.update(PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip() == (
        "nebulae demo needs scikit-learn (the digits it trains on): pip install 'nebulae[demo]'"
    )
