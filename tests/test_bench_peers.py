"""The Keras 3 peers of the train-step suite (`benchmarks.peers`, ``nebulae bench --peers keras``), on this engine.

The Keras contenders of this pass run on the Keras backend of the same engine (``keras-torch-*`` in the
pytorch pass, ``keras-jax-*`` in the jax pass), each in its own process with ``KERAS_BACKEND`` set.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

BACKEND = {"pytorch": "torch", "jax": "jax"}
WORKLOADS = ("mlp", "cnn", "cnn-s2", "resnet")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NEB_CORE", "XLA_FLAGS", "KERAS_BACKEND")}
    env["PYTHONPATH"] = str(ROOT)
    return env


KERAS_COUNTS = """
import json, sys
import keras
from benchmarks import peers, train_step
counts = {}
for size in ("quick", "cpu"):
    for name in sys.argv[1:]:
        model = peers.keras_model(train_step.workload_config(name, size))
        counts[f"{size}/{name}"] = peers.trainable_params(model)
keras.mixed_precision.set_global_policy("mixed_bfloat16")  # what build_keras sets for precision bf16
model = peers.keras_model(train_step.workload_config("resnet50", "gpu"))
counts["gpu/resnet50 bf16"] = peers.trainable_params(model)
counts["bf16 dtypes"] = sorted({model.layers[-1].compute_dtype, model.layers[-1].variable_dtype})
print(json.dumps(counts))
"""


def _keras_counts(backend: str) -> dict[str, int]:
    env = dict(_env(), KERAS_BACKEND=backend)
    r = subprocess.run(
        [sys.executable, "-c", KERAS_COUNTS, *WORKLOADS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_keras_models_have_the_parameter_counts_of_nebulae(engine):
    from benchmarks import train_step

    counts = _keras_counts(BACKEND[engine])
    for size in ("quick", "cpu"):
        for name in WORKLOADS:
            _, _, info = train_step.build_nebulae(train_step.workload_config(name, size))
            assert counts[f"{size}/{name}"] == info()["nparams"] > 0, (size, name)
    assert counts["cpu/mlp"] == 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10
    assert counts["cpu/resnet"] == 11_181_642  # torchvision's resnet18 with a 10-class head
    from nebulae.astro import hangar

    nebulae50 = hangar.nparams(hangar.ResNet(50, nclass=10, in_shape=(3, 224, 224)))
    assert counts["gpu/resnet50 bf16"] == nebulae50 == 23_528_522  # torchvision's resnet50, 10 classes
    assert counts["bf16 dtypes"] == ["bfloat16", "float32"]  # mixed: bf16 compute, float32 variables


@pytest.mark.once
def test_a_parameter_count_mismatch_fails_the_peer_row():
    from benchmarks import peers, train_step

    result = {"rates": [2.0, 2.1], "cpu_wall": [1.0, 1.0], "first_steps": [0.5], "memory": {"peak_rss_mb": 9.0}}
    result.update(first_step=0.5, peak_rss_mb=9.0, threads=2, thread_info={"torch_threads": 2})
    results = {
        "mlp": {"nebulae-torch": dict(result, nparams=100), "keras-torch-tob": dict(result, nparams=100)},
        "cnn": {"nebulae-torch": dict(result, nparams=100), "keras-torch-fit": dict(result, nparams=99)},
    }
    errors = peers.check_params(results)
    assert errors == ["keras-torch-fit: 99 trainable parameters, nebulae-torch 100: not the same cnn model"]
    steps = [r for r in train_step.rows(results) if r["metric"] == "steps/s"]
    rows = {(r["workload"], r["contender"], r["ratio_to"]): r for r in steps}
    assert rows[("cnn", "keras-torch-fit", "")]["met"] == "FAILED"
    assert "99 trainable parameters, nebulae-torch 100" in rows[("cnn", "keras-torch-fit", "")]["note"]
    assert ("cnn", "nebulae-torch", "keras-torch-fit") not in rows
    ratio = rows[("mlp", "nebulae-torch", "keras-torch-tob")]
    assert ratio["target"] == "" and ratio["met"] == "" and float(ratio["ratio_median"]) == 1.0
    assert "100 trainable params, as nebulae-torch" in rows[("mlp", "keras-torch-tob", "")]["note"]


def test_quick_bench_with_keras_peers(engine, tmp_path):
    out = tmp_path / "bench"
    args = ["--quick", "--only", "train_step", "--engines", engine, "--peers", "keras", "--out", str(out)]
    command = [sys.executable, "-m", "nebulae", "bench", *args]
    r = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stdout + r.stderr[-6000:]
    with open(out / "bench.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert not [row for row in rows if row["met"] == "FAILED"]
    by_key = {(r["workload"], r["contender"], r["metric"], r["ratio_to"]): r for r in rows}
    nebulae, backend = f"nebulae-{BACKEND[engine]}", BACKEND[engine]
    for workload in ("mlp", "cnn", "resnet"):
        for mode in ("tob", "fit"):
            peer = f"keras-{backend}-{mode}"
            row = by_key.get((workload, peer, "steps/s", ""))
            assert row is not None, f"no {peer} row for {workload}"
            assert 0 < float(row["min"]) <= float(row["median"]) <= float(row["max"]), row
            assert "trainable params, as " + nebulae in row["note"], row
            ratio = by_key.get((workload, nebulae, "steps/s", peer))
            assert ratio is not None, f"no {nebulae} / {peer} ratio for {workload}"
            assert float(ratio["ratio_median"]) > 0 and ratio["target"] == "", ratio
            assert float(by_key[(workload, peer, "first step", "")]["median"]) > 0
    other = "torch" if backend == "jax" else "jax"
    assert not [row for row in rows if row["contender"].startswith(f"keras-{other}")]
    assert f"keras-{backend}-fit" in (out / "bench.md").read_text()


@pytest.mark.once
def test_missing_keras_is_one_line_and_the_rest_runs(tmp_path):
    out = tmp_path / "bench"
    code = "import sys\nsys.modules['keras'] = None\nfrom benchmarks import run\n"
    code += "sys.exit(run.main(['--quick', '--only', 'train_step', '--engines', 'pytorch', '--peers', 'keras', "
    code += f"'--out', {str(out)!r}]))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stdout + r.stderr[-6000:]
    message = "--peers keras needs keras: pip install 'nebulae[bench]'"
    assert [line for line in r.stderr.splitlines() if "keras" in line] == [message], r.stderr
    with open(out / "bench.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    contenders = {row["contender"] for row in rows}
    assert {"nebulae-torch", "torch-eager"} <= contenders and not [c for c in contenders if c.startswith("keras")]
