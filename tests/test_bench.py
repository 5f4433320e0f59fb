"""The benchmark suite (`python -m nebulae bench`, code in benchmarks/) in its --quick mode, on this pass's engine.

Real worker processes, real timings (tiny sizes, so the figures mean nothing; only that every suite
still runs and reports). The engine-specific suites run with this pass's engine (nebulae + its
hand-written baselines); the engine-neutral data suites (loader, generator) run in the first pass only.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

ENGINE_SUITES = "train_step,dock_overhead,checkpoint,warm_start"
# (suite, workload, contender, metric, ratio_to) rows every quick run must have, per engine
EXPECTED = {
    "pytorch": [
        *(("train_step", w, "nebulae-torch", "steps/s", "torch-eager") for w in ("mlp", "cnn", "resnet")),
        *(("train_step", w, "torch-eager", "steps/s", "") for w in ("mlp", "cnn", "resnet")),
        ("dock_overhead", "cnn-forward-b16", "dock-torch", "forwards/s", "torch-nn"),
        ("checkpoint", "torch 16 MB", "drop", "loop blocked", "torch.save"),
        ("checkpoint", "torch 16 MB", "torch.save", "loop blocked", ""),
        ("loader", "512 jpeg64 b128 w2", "tank", "cold images/s", "dataloader"),
        ("loader", "512 jpeg64 b128 w2", "dataloader", "cold images/s", ""),
        ("generator", "500 jpeg64", "all cores", "images/s", ""),
    ],
    "jax": [
        *(("train_step", w, "nebulae-jax", "steps/s", "jax-functional") for w in ("mlp", "cnn", "resnet")),
        *(("train_step", w, "nebulae-jax", "steps/s", "jax-nnxjit") for w in ("mlp", "cnn")),
        *(("train_step", w, "jax-functional", "steps/s", "") for w in ("mlp", "cnn", "resnet")),
        ("dock_overhead", "cnn-forward-b16", "dock-jax", "forwards/s", "jax-lax"),
        ("checkpoint", "jax 16 MB", "drop", "loop blocked", "sync drop"),
        ("checkpoint", "jax 16 MB", "sync drop", "loop blocked", ""),
        ("warm_start", "resnet (quick)", "nebulae-jax cold process", "first step", ""),
        ("warm_start", "resnet (quick)", "nebulae-jax warm process", "first step", "nebulae-jax cold process"),
    ],
}


def bench_command() -> list[str]:
    """The command the README documents."""
    return [sys.executable, "-m", "nebulae", "bench"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NEB_CORE", "XLA_FLAGS")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_quick_bench_runs_every_suite_and_reports(engine, tmp_path):
    out = tmp_path / "bench"
    args = ["--quick", "--engines", engine, "--out", str(out)]
    if engine == "jax":  # the data suites are engine-neutral: the first pass covers them
        args += ["--only", ENGINE_SUITES]
    r = subprocess.run(bench_command() + args, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr[-6000:]

    with open(out / "bench.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames[:4] == ["suite", "workload", "contender", "metric"]
    assert not [row for row in rows if row["met"] == "FAILED"]
    by_key = {(r["suite"], r["workload"], r["contender"], r["metric"], r["ratio_to"]): r for r in rows}
    for key in EXPECTED[engine]:
        row = by_key.get(key)
        assert row is not None, f"no row {key} in bench.csv"
        assert 0 < float(row["min"]) <= float(row["median"]) <= float(row["max"]), row
        if key[-1]:
            assert float(row["ratio_median"]) > 0 and row["target"] and row["met"] == "no verdict (quick)", row
    # the other engine's contenders did not run
    other = "nebulae-jax" if engine == "pytorch" else "nebulae-torch"
    assert not [row for row in rows if row["contender"] == other]

    # memory and first step (compile) per train-step contender, and the engines' thread counts
    for contender in {k[2] for k in EXPECTED[engine] if k[0] == "train_step"}:
        for metric in ("first step", "peak RSS", "CPU threads"):
            row = by_key[("train_step", "resnet", contender, metric, "")]
            assert float(row["median"]) > 0, row
    info = json.loads((out / "bench.json").read_text())
    assert info["cores"] >= 1 and info["versions"]["numpy"] and info["total_seconds"] > 0
    assert set(info["suite_seconds"]) == set(args[-1].split(",") if engine == "jax" else info["suites"])

    png = (out / "bench.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "| suite | workload |" in (out / "bench.md").read_text()
    # the terminal table (plain text: stdout is a pipe here)
    assert "ratio (min–max)" in r.stdout and "train_step" in r.stdout
    assert "target missed" not in r.stdout and "smoke run" in r.stdout  # a smoke run judges no target


@pytest.mark.once
def test_bench_rejects_unknown_suites_and_engines(capsys):
    from benchmarks import run

    for bad, word in ((["--only", "train,loader"], "train"), (["--engines", "tensorflow"], "tensorflow")):
        with pytest.raises(SystemExit) as exc:
            run.main(bad)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert word in err and "choose from" in err


@pytest.mark.once
def test_noise_straddling_a_target_is_not_a_verdict():
    from benchmarks import common

    assert common.verdict(1.0, 0.96, 1.2, ">= 0.95") == "yes"
    assert common.verdict(0.8, 0.6, 0.9, ">= 0.95") == "no"
    assert common.verdict(0.9, 0.6, 1.1, ">= 0.95") == common.NOISE
    assert common.verdict(1.45, 1.31, 1.60, "<= 1.1") == "no"


@pytest.mark.once
def test_bench_without_an_engine_names_the_extra():
    code = "import sys\nsys.modules['flax'] = None\nfrom nebulae.__main__ import main\n"
    code += "sys.exit(main(['bench', '--quick', '--engines', 'jax', '--only', 'checkpoint']))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "pip install 'nebulae[bench]'" in r.stderr and "flax" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
