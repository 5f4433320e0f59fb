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


@pytest.mark.once
def test_median_ci_ranks_are_the_exact_binomial_ones():
    from math import comb

    from benchmarks import common

    def coverage(n: int, k: int) -> float:  # P(x_(k) <= median <= x_(n+1-k)) = 1 - 2 P(B <= k-1), B ~ bin(n, 1/2)
        return 1 - 2 * sum(comb(n, i) for i in range(k)) / 2**n

    # the textbook sign-test ranks at 95 %: min–max up to n = 8, then 2 (n 9-11), 3 (12-14), 6 (n = 20), 10 (n = 30)
    expected = {1: 1, 2: 1, 5: 1, 8: 1, 9: 2, 11: 2, 12: 3, 14: 3, 15: 4, 20: 6, 21: 6, 30: 10, 35: 12}
    for n, k in expected.items():
        got, cov = common.median_ci_rank(n)
        assert got == k and cov == pytest.approx(coverage(n, k)), (n, got, cov)
        assert cov >= 0.95 or k == 1
        assert k == 1 or coverage(n, k + 1) < 0.95 or k + 1 > (n + 1) // 2
    assert common.median_ci_rank(5)[1] == pytest.approx(0.9375)  # min–max of 5 covers only 93.75 %
    assert common.median_ci_rank(20, 0.99)[0] == 4
    values = [1.05, 0.90, 1.20, 0.97, 1.01, 0.99, 1.10, 0.93, 1.02, 1.04]  # n = 10: the 2nd and 9th values
    assert common.median_ci(values)[:2] == (0.93, 1.10)
    with pytest.raises(ValueError, match="at least one value"):
        common.median_ci_rank(0)


@pytest.mark.once
def test_ratio_verdicts_rest_on_the_confidence_interval_of_the_median():
    from benchmarks import common

    row = common.result("train_step", "mlp", "nebulae-torch", "steps/s", [10.0], "steps/s")
    # 20 ratios: two outliers below the target, the CI (6th..15th values) wholly above it: yes, though min–max straddles
    ratios = [0.80, 0.90] + [1.00 + 0.01 * i for i in range(18)]
    r = common.with_ratio(row, "torch-eager", ratios, ">= 0.95")
    assert r["ratio_min"] == 0.80 and r["met"] == "yes"
    assert (r["ratio_ci_low"], r["ratio_ci_high"], r["ratio_n"]) == (1.03, 1.12, 20)
    # a 3 % gap with a tight spread is separated; the same median with a wide spread is within noise
    tight = [0.92 + 0.001 * i for i in range(20)]
    assert common.with_ratio(row, "b", tight, ">= 0.95")["met"] == "no"
    wide = [0.80 + 0.015 * i for i in range(20)]  # CI 0.875-1.01
    assert common.with_ratio(row, "b", wide, ">= 0.95")["met"] == common.NOISE
    assert common.with_ratio(row, "b", wide, "<= 1.10")["met"] == "yes"
    # few ratios: the CI is their min–max
    few = common.with_ratio(row, "b", [0.96, 1.2, 0.94], ">= 0.95")
    assert (few["ratio_ci_low"], few["ratio_ci_high"], few["met"]) == (0.94, 1.2, common.NOISE)
    assert common.with_ratio(row, "b", [1.0, 1.1], "")["met"] == ""


@pytest.mark.once
def test_adaptive_rounds_look_only_at_targeted_ratios_that_straddle():
    from benchmarks import train_step

    def res(rates: list[float]) -> dict:
        return {"rates": rates}

    base = [10.0] * 9
    results = {
        "nebulae-torch": res([9.0, 9.6, 10.4, 9.2, 10.6, 9.8, 10.2, 9.4, 10.8]),  # straddles 0.95 vs torch-eager
        "torch-eager": res(base),
        "nebulae-jax": res([12.0] * 9),  # clearly above both JAX baselines
        "jax-functional": res(base),
        "jax-nnxjit": res(base),
        "keras-torch-tob": res([20.0] * 9),  # a peer: no target, never asks for more rounds
    }
    assert train_step.unseparated(results) == ["nebulae-torch / torch-eager"]
    results["torch-eager"] = {"error": "boom"}
    assert train_step.unseparated(results) == []
    assert train_step.label("resnet", "bf16") == "resnet bf16" and train_step.label("resnet") == "resnet"
    assert train_step.split_label("resnet50 bf16") == ("resnet50", "bf16")
    assert train_step.split_label("mlp") == ("mlp", "fp32")
    assert train_step.precisions_of("both") == ["fp32", "bf16"]
    with pytest.raises(ValueError, match="resnet50.*'cpu'"):
        train_step.workload_config("resnet50", "cpu")


def test_hand_written_resnets_have_the_parameter_counts_of_nebulae(engine):
    import math

    from benchmarks import resnet
    from nebulae.astro import hangar

    counts = {}
    for depth in (18, 50):
        if engine == "pytorch":
            model = resnet.torch_resnet(depth, 10)
            counts[depth] = sum(p.numel() for p in model.parameters())
        else:
            import jax
            from flax import nnx

            model = resnet.nnx_resnet(depth, 10)
            counts[depth] = sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
        assert counts[depth] == hangar.nparams(hangar.ResNet(depth, nclass=10, in_shape=(3, 32, 32))), depth
    assert counts == {18: 11_181_642, 50: 23_528_522}  # torchvision's resnet18 / resnet50 with a 10-class head


@pytest.mark.once
def test_gpu_check_script_dry_run_writes_fp32_and_bf16_rows(tmp_path):
    out = tmp_path / "gpu"
    env = dict(_env(), GPU_CHECK_DRY="1", GPU_CHECK_WORKLOADS="mlp", GPU_CHECK_ENGINES="pytorch", PYTHON=sys.executable)
    r = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    log = (out / "gpu_check.log").read_text()
    assert r.returncode == 0, log[-6000:]
    assert "every step ok" in log and "=== gpu-tests" in log and "jax" in log
    for run in ("pytorch-mlp-fp32", "pytorch-mlp-bf16"):
        assert (out / f"bench-{run}" / "bench.csv").exists(), run
    with open(out / "bench.csv", newline="") as f:
        rows = [row for row in csv.DictReader(f) if row["suite"] == "train_step"]
    ratios = {(row["workload"], row["precision"]) for row in rows if row["ratio_to"] == "torch-eager"}
    assert ratios == {("mlp", "fp32"), ("mlp bf16", "bf16")}, ratios
    assert not [row for row in rows if row["met"] == "FAILED"]
    info = json.loads((out / "bench.json").read_text())
    assert set(info["runs"]) == {"bench-pytorch-mlp-fp32", "bench-pytorch-mlp-bf16"}
    bf16 = info["runs"]["bench-pytorch-mlp-bf16"]
    assert "--precision bf16" in bf16["command"] and bf16["ratios"][0]["precision"] == "bf16"
    assert "mlp bf16" in (out / "bench.md").read_text()


@pytest.mark.once
def test_gpu_check_script_reports_a_failed_step_and_keeps_what_it_wrote(tmp_path):
    out = tmp_path / "gpu"
    env = dict(_env(), GPU_CHECK_DRY="1", GPU_CHECK_WORKLOADS="nosuch", GPU_CHECK_PRECISIONS="fp32")
    env.update(GPU_CHECK_ENGINES="pytorch", PYTHON=sys.executable)
    script = str(ROOT / "benchmarks" / "gpu_check.sh")
    r = subprocess.run(["bash", script, str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    log = (out / "gpu_check.log").read_text()
    assert r.returncode == 1, log[-6000:]
    assert "=== machine: ok" in log and "=== gpu-tests: ok" in log  # the GPU tests skip on a CPU
    assert "unknown workload 'nosuch'" in log and "not ok: bench-pytorch-nosuch-fp32 (exit 1)" in log
    assert (out / "gpu_tests.xml").exists() and (out / "bench-pytorch-nosuch-fp32" / "bench.csv").exists()
