"""GPU checks (run by benchmarks/gpu_check.sh on a CUDA machine; every test skips without a GPU).

- torch-vs-JAX parity of a conv + dense training step (the train-step suite's CNN, nebulae's seed-style
  Train craft, Adam) on the GPU in float32: each engine in its own process from the same initial weights.
- The float32 matmul precision JAX uses by default on the GPU: a float32 matmul at 'default' and at
  'highest' precision against a float64 NumPy reference (TF32-class error at 'default' would show as
  about 1e-3 relative; 'highest' must be float32-exact to about 1e-6); and the same default-precision
  matmul once nebulae's JAX engine is loaded, with ``NEB_FLOAT32`` unset and set to ``tf32`` (nebulae's
  ``Law.FLOAT32`` decision: 'full' float32 unless asked for TF32).
Measured figures are printed and, when ``NEB_GPU_REPORT`` names a file, added to it as JSON.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT

STEP = """
import json, sys
from nebulae.astro import init
from benchmarks import train_step

init.seed(0)
cfg = dict(train_step.workload_config("cnn", "quick"), gpu=True)
step, sync, info = train_step.build_nebulae(cfg)
losses = [float(sync(step())) for _ in range(4)]
if sys.argv[1] == "pytorch":
    import torch
    on_gpu = torch.cuda.memory_allocated() > 0
    flags = {}
    for name in ("cudnn.conv", "cuda.matmul"):  # the fp32_precision API (the legacy allow_tf32 may raise)
        try:
            flags[name] = str(eval("torch.backends." + name + ".fp32_precision"))
        except Exception as e:
            flags[name] = repr(e)[:100]
else:
    import jax
    on_gpu = jax.devices()[0].platform == "gpu"
    flags = {"jax_default_matmul_precision": jax.config.jax_default_matmul_precision}
print("@@" + json.dumps({"losses": losses, "on_gpu": on_gpu, "flags": flags}))
"""


MATMUL = """
import json, os
import numpy as np
rng = np.random.default_rng(0)
a, b = (rng.standard_normal((1024, 1024)).astype(np.float32) for _ in range(2))
ref = a.astype(np.float64) @ b.astype(np.float64)
from nebulae.astro import dock  # loads the engine: Law.FLOAT32 applied
from nebulae.law import Law
import jax, jax.numpy as jnp
out = np.asarray(jnp.matmul(dock.coat(a), dock.coat(b)), dtype=np.float64)
print("@@" + json.dumps({"float32": getattr(Law, "FLOAT32", None), "device": str(jax.devices()[0]),
                         "max_rel_error": float(np.abs(out - ref).max() / np.abs(ref).max())}))
"""


def _torch_cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    code = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120).returncode == 0


def _jax_gpu() -> bool:
    if importlib.util.find_spec("jax") is None:
        return False
    code = "import jax, sys; sys.exit(0 if any(d.platform == 'gpu' for d in jax.devices()) else 1)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120).returncode == 0


HAVE_GPU = os.path.exists("/dev/nvidia0") or os.path.exists("/dev/nvidiactl")
REQUIRED = os.environ.get("NEB_GPU_REQUIRED") == "1"  # benchmarks/gpu_check.sh on a GPU: a skip is a failure
needs_gpu = pytest.mark.skipif(not HAVE_GPU and not REQUIRED, reason="no NVIDIA GPU on this machine")


def _skip_unless(ok: bool, reason: str) -> None:
    """Skip (or, under NEB_GPU_REQUIRED=1, fail) the test when `ok` is false."""
    if not ok:
        (pytest.fail if REQUIRED else pytest.skip)(reason)


def _report(key: str, value) -> None:
    """Print `value` and merge it under `key` into the JSON file NEB_GPU_REPORT names (if any)."""
    print(f"{key}: {json.dumps(value)}")
    path = os.environ.get("NEB_GPU_REPORT")
    if path:
        p = Path(path)
        data = json.loads(p.read_text()) if p.exists() else {}
        data[key] = value
        p.write_text(json.dumps(data, indent=2) + "\n")


def _run_step(engine: str, code: str = STEP, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NEB_CORE", "XLA_FLAGS", "NEB_FLOAT32")}
    env.update(NEB_CORE=engine, PYTHONPATH=str(ROOT), XLA_PYTHON_CLIENT_PREALLOCATE="false", **extra)
    r = subprocess.run(
        [sys.executable, "-c", code, engine], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads([line for line in r.stdout.splitlines() if line.startswith("@@")][-1][2:])


@needs_gpu
@pytest.mark.once
def test_conv_dense_train_step_matches_across_engines_on_the_gpu():
    _skip_unless(_torch_cuda() and _jax_gpu(), "needs CUDA builds of both torch and jax (and a GPU)")
    torch_run, jax_run = _run_step("pytorch"), _run_step("jax")
    assert torch_run["on_gpu"] and jax_run["on_gpu"], (torch_run, jax_run)
    a, b = np.array(torch_run["losses"]), np.array(jax_run["losses"])
    rel = np.abs(a - b) / np.abs(a)
    _report(
        "conv_dense_step_parity",
        {"torch": a.tolist(), "jax": b.tolist(), "max_rel_diff": float(rel.max())}
        | {"torch_flags": torch_run["flags"], "jax_flags": jax_run["flags"]},
    )
    assert np.isfinite(a).all() and np.isfinite(b).all()
    assert a[-1] < a[0] and b[-1] < b[0], "the loss must fall over four Adam steps of one batch"
    # same weights and batch: the first loss differs only by float32 (or TF32) rounding, and after three
    # updates the paths may drift a little more
    np.testing.assert_allclose(b[0], a[0], rtol=2e-3)
    np.testing.assert_allclose(b, a, rtol=2e-2)


@needs_gpu
@pytest.mark.once
def test_jax_float32_matmul_precision_on_the_gpu():
    _skip_unless(_jax_gpu(), "needs a CUDA build of jax (and a GPU)")
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((1024, 1024)).astype(np.float32) for _ in range(2))
    ref = a.astype(np.float64) @ b.astype(np.float64)
    scale = np.abs(ref).max()
    gpu = next(d for d in jax.devices() if d.platform == "gpu")
    x, y = jax.device_put(a, gpu), jax.device_put(b, gpu)
    errors = {}
    for name, precision in (("default", None), ("high", jax.lax.Precision.HIGH), ("highest", "highest")):
        out = np.asarray(jnp.matmul(x, y, precision=precision), dtype=np.float64)
        errors[name] = float(np.abs(out - ref).max() / scale)
    _report(
        "jax_matmul_precision",
        {
            "device": gpu.device_kind,
            "max_rel_error": errors,
            "jax_default_matmul_precision": str(jax.config.jax_default_matmul_precision),
        },
    )
    assert errors["highest"] < 1e-5, errors  # float32 accumulation over 1024 terms
    assert errors["default"] < 1e-2, errors  # at worst TF32/bf16x3-class: about 1e-3


@needs_gpu
@pytest.mark.once
def test_nebulae_jax_float32_matmuls_follow_law_float32_on_the_gpu():
    _skip_unless(_jax_gpu(), "needs a CUDA build of jax (and a GPU)")
    full, tf32 = _run_step("jax", MATMUL), _run_step("jax", MATMUL, NEB_FLOAT32="tf32")
    _report("nebulae_jax_matmul", {"default": full, "NEB_FLOAT32=tf32": tf32})
    assert "cuda" in full["device"].lower() or "gpu" in full["device"].lower(), full
    if full["float32"] is None:
        pytest.skip(f"this nebulae has no Law.FLOAT32; XLA's default gave {full['max_rel_error']:.2e}")
    assert full["float32"] == "full" and tf32["float32"] == "tf32", (full, tf32)
    assert full["max_rel_error"] < 1e-5, full  # float32 throughout by default
    assert tf32["max_rel_error"] < 1e-2, tf32  # TF32-class products when asked
