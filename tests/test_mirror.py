"""backends/torch and backends/jax mirror each other: same files, same public names, same signatures."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.once

MODULES = sorted(p.stem for p in (ROOT / "backends" / "torch").glob("*.py"))


def test_same_files():
    jax_modules = sorted(p.stem for p in (ROOT / "backends" / "jax").glob("*.py"))
    assert jax_modules == MODULES


@pytest.mark.parametrize("name", [m for m in MODULES if m != "__init__"])
def test_same_public_names_and_signatures(name):
    torch_mod = importlib.import_module(f"nebulae.backends.torch.{name}")
    jax_mod = importlib.import_module(f"nebulae.backends.jax.{name}")
    t_all, j_all = getattr(torch_mod, "__all__", None), getattr(jax_mod, "__all__", None)
    assert t_all is not None and j_all is not None, f"{name}: both modules need __all__"
    assert sorted(t_all) == sorted(j_all), f"{name}: public names differ"
    for public in t_all:
        t_obj, j_obj = getattr(torch_mod, public), getattr(jax_mod, public)
        assert (t_obj.__doc__ or "").strip(), f"{name}.{public} needs a docstring"
        methods = ("__init__", "run", "__call__") if inspect.isclass(t_obj) else (None,)
        for method in methods:
            t_fn = t_obj if method is None else t_obj.__dict__.get(method)
            j_fn = j_obj if method is None else j_obj.__dict__.get(method)
            if t_fn is None and j_fn is None or not callable(t_fn) or not callable(j_fn):
                continue
            assert inspect.signature(t_fn) == inspect.signature(j_fn), f"{name}.{public}.{method} signature differs"


def test_dock_namespaces_match():
    from nebulae.backends.jax import dock as jdock
    from nebulae.backends.torch import dock as tdock

    assert sorted(tdock.__all__) == sorted(jdock.__all__)
    assert len(set(tdock.__all__)) == len(tdock.__all__), "a name is exported twice"


def test_no_engine_imports_outside_backends():
    offenders = []
    for path in (ROOT / "nebulae").rglob("*.py"):
        for line in Path(path).read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(
                (
                    "import torch",
                    "import jax",
                    "import flax",
                    "from torch",
                    "from jax",
                    "from flax",
                    "import optax",
                    "import orbax",
                )
            ):
                offenders.append(f"{path.relative_to(ROOT)}: {stripped}")
    assert not offenders, offenders
