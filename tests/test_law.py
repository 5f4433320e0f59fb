"""Binding the engine: Law.CORE, NEB_CORE, late switches, unknown names, missing engines, light import."""

from __future__ import annotations

import pytest

from tests.conftest import run_python

pytestmark = pytest.mark.once


def test_import_nebulae_is_light():
    r = run_python(
        "import nebulae, nebulae.astro.dock, nebulae.fuel, nebulae.aerolog, nebulae.cockpit, nebulae.kit, sys\n"
        "bad = {'torch', 'jax', 'flax'} & set(sys.modules)\n"
        "assert not bad, bad\nprint('light')"
    )
    assert r.returncode == 0, r.stderr
    assert "light" in r.stdout


@pytest.mark.parametrize("name, bound", [("jax", "jax"), ("JAX", "jax"), ("torch", "pytorch"), ("PyTorch", "pytorch")])
def test_set_before_use_binds_that_engine(name, bound):
    r = run_python(
        "import sys, nebulae\n"
        f"nebulae.Law.CORE = {name!r}\n"
        "from nebulae.astro import dock\n"
        "c = dock.Dense(2, 3)\n"
        "print(nebulae.Law.CORE, nebulae.Law.BOUND, type(c).__module__)"
    )
    assert r.returncode == 0, r.stderr
    core, bound_name, module = r.stdout.split()
    assert core == bound_name == bound
    assert module.startswith(f"nebulae.backends.{'torch' if bound == 'pytorch' else 'jax'}.")


def test_env_var_gives_default_and_default_is_pytorch():
    r = run_python(
        "import nebulae\nfrom nebulae.astro import dock\ndock.Craft\nprint(nebulae.Law.BOUND)", {"NEB_CORE": "jax"}
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "jax"
    r = run_python("import nebulae\nfrom nebulae.astro import dock\ndock.Craft\nprint(nebulae.Law.BOUND)")
    assert r.stdout.strip() == "pytorch"


def test_order_of_import_and_setting_does_not_matter_before_first_use():
    r = run_python(
        "from nebulae.astro import dock\nimport nebulae as neb\nneb.Law.CORE = 'jax'\n"
        "import sys\nassert 'torch' not in sys.modules\nprint(type(dock.Relu()).__module__)"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("nebulae.backends.jax")


def test_switch_after_binding_is_refused_with_where_it_was_bound():
    r = run_python(
        "import nebulae\nnebulae.Law.CORE = 'pytorch'\nfrom nebulae.astro import dock\nnet = dock.Dense(2, 2)\n"
        "nebulae.Law.CORE = 'pytorch'  # same engine: fine\n"
        "nebulae.Law.CORE = 'jax'\n"
    )
    assert r.returncode != 0
    assert "RuntimeError" in r.stderr and "already bound to 'pytorch'" in r.stderr
    assert "<string>:4" in r.stderr  # where it was bound: the line that built the first craft


def test_unknown_engine_lists_valid_names():
    r = run_python("import nebulae\nnebulae.Law.CORE = 'tensorflow'")
    assert r.returncode != 0
    assert "ValueError" in r.stderr and "'tensorflow'" in r.stderr
    for valid in ("'pytorch'", "'torch'", "'jax'"):
        assert valid in r.stderr
    r = run_python("from nebulae.astro import dock\ndock.Craft", {"NEB_CORE": "mxnet"})
    assert r.returncode != 0 and "NEB_CORE" in r.stderr and "'mxnet'" in r.stderr


@pytest.mark.parametrize(
    "engine, hidden, extra",
    [
        ("jax", "flax", "pip install 'nebulae[jax]'"),
        ("pytorch", "torch", "--index-url https://download.pytorch.org/whl/cpu"),
    ],
)
def test_missing_engine_names_the_extra(engine, hidden, extra):
    # The package is made unimportable the way an absent install is: sys.modules[name] = None.
    r = run_python(
        f"import sys\nsys.modules[{hidden!r}] = None\nimport nebulae\nnebulae.Law.CORE = {engine!r}\n"
        "from nebulae.astro import dock\ndock.Craft"
    )
    assert r.returncode != 0
    assert "ImportError" in r.stderr
    assert extra in r.stderr and "pip install 'nebulae[torch]'" not in r.stderr


def test_unknown_dock_name_is_an_attribute_error_naming_it():
    r = run_python(
        "from nebulae.astro import dock\ntry:\n    dock.Warpdrive\nexcept AttributeError as e:\n    print(e)"
    )
    assert r.returncode == 0, r.stderr
    assert "'Warpdrive'" in r.stdout


_PRECISION = {
    "pytorch": "import torch\n"
    "print(torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision,"
    " torch.backends.mkldnn.matmul.fp32_precision)\n",
    "jax": "import jax\nprint(jax.config.jax_default_matmul_precision)\n",
}
_QUERY = {  # torch's legacy query raises when its backends disagree; inductor and user code call it
    "pytorch": "import torch\nprint(torch.get_float32_matmul_precision())\n",
    "jax": "print('-')\n",
}
_FULL = {"pytorch": "ieee none ieee", "jax": "highest"}  # cuDNN conv 'none': not TF32 (allow_tf32 False)
_TF32 = {"pytorch": "tf32 tf32 tf32", "jax": "high"}


@pytest.mark.parametrize("engine", ["pytorch", "jax"])
def test_float32_is_full_by_default_and_tf32_on_request_on_both_engines(engine):
    bind = "import nebulae\nfrom nebulae.astro import dock\ndock.Craft\n"
    r = run_python(bind + _PRECISION[engine], {"NEB_CORE": engine})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[-2] == _FULL[engine]  # XLA's GPU default would be TF32-class; torch's cuDNN TF32
    r = run_python(bind + _PRECISION[engine], {"NEB_CORE": engine, "NEB_FLOAT32": "TF32"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[-2] == _TF32[engine]
    late = (
        bind + "nebulae.Law.FLOAT32 = 'tf32'\n" + _PRECISION[engine] + _QUERY[engine] + "nebulae.Law.FLOAT32 = 'full'\n"
    )
    r = run_python(late + _PRECISION[engine] + _QUERY[engine] + "print(nebulae.Law.FLOAT32)", {"NEB_CORE": engine})
    assert r.returncode == 0, r.stderr
    query = {"pytorch": ["high", "highest"], "jax": ["-", "-"]}[engine]
    assert r.stdout.split("\n")[-6:-1] == [_TF32[engine], query[0], _FULL[engine], query[1], "full"]


def test_a_bad_float32_mode_is_named_with_the_choices():
    r = run_python("import nebulae\nnebulae.Law.FLOAT32 = 'tf16'")
    assert r.returncode != 0 and "Law.FLOAT32 must be 'full' or 'tf32', got 'tf16'" in r.stderr
    r = run_python("from nebulae.astro import dock\ndock.Craft", {"NEB_FLOAT32": "fast"})
    assert r.returncode != 0 and "NEB_FLOAT32 (environment variable) must be 'full' or 'tf32', got 'fast'" in r.stderr
