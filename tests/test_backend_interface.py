"""The engine-facing interface (nebulae/backend.py) is what both engine packages supply, and the front reaches
the engine only through it: attributes of the bound backend, never a backend module imported by name."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import typing

import pytest

from nebulae import backend as interface
from tests.conftest import ROOT

pytestmark = pytest.mark.once

ENGINES = ("torch", "jax")
PARTS = {  # Backend attribute -> the Protocol it implements
    "tensor": interface.TensorIO,
    "anchor": interface.AnchorIO,
    "universe": interface.Universe,
    "summary": interface.Summary,
    "kernels": interface.KernelsIO,
}


def members(protocol: type) -> tuple[dict[str, inspect.Signature], set[str]]:
    """(methods with their signatures minus self, declared attributes) of a Protocol."""
    methods = {}
    for name, fn in vars(protocol).items():
        if inspect.isfunction(fn) and not name.startswith("_"):
            sig = inspect.signature(fn)
            methods[name] = sig.replace(parameters=list(sig.parameters.values())[1:])
    return methods, set(vars(protocol).get("__annotations__", {}))


def package(engine: str):
    return __import__(f"nebulae.backends.{engine}", fromlist=["dock"])


def same_parameters(got: inspect.Signature, want: inspect.Signature) -> bool:
    shape = [(p.name, p.kind, p.default) for p in want.parameters.values()]
    return [(p.name, p.kind, p.default) for p in got.parameters.values()] == shape


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("part", [None, *PARTS])
def test_each_engine_supplies_every_member_with_the_declared_parameters(engine, part):
    owner = package(engine) if part is None else getattr(package(engine), part)
    methods, attributes = members(interface.Backend if part is None else PARTS[part])
    for name in sorted(attributes):
        assert hasattr(owner, name), f"{engine}: {part or 'backend'}.{name} is missing"
    for name, want in methods.items():
        fn = getattr(owner, name, None)
        assert callable(fn), f"{engine}: {part or 'backend'}.{name} is missing"
        got = inspect.signature(fn)
        assert same_parameters(got, want), f"{engine}: {part or 'backend'}.{name}{got} vs declared {want}"


@pytest.mark.parametrize("engine", ENGINES)
def test_the_declared_attributes_have_their_declared_types(engine):
    backend = package(engine)
    assert (engine, backend.ENGINE) in (("torch", "pytorch"), ("jax", "jax"))
    hints = {**typing.get_type_hints(interface.AnchorIO), **typing.get_type_hints(interface.Universe)}
    for part, name in (("anchor", "SUFFIX"), ("anchor", "COLLECTIVE"), ("universe", "SPAWNS")):
        assert isinstance(getattr(getattr(backend, part), name), hints[name]), f"{engine}: {part}.{name}"
    assert backend.dock.Craft.ops is backend.kernels.OPS
    assert backend.dock.Craft.hangar is backend.hangar


def test_the_pending_anchor_of_both_engines_has_path_and_wait(tmp_path):
    import numpy as np

    from nebulae.astro import init

    for engine in ENGINES:
        backend = package(engine)
        init.seed(0)
        craft = backend.dock.Dense(2, 2)
        path = str(tmp_path / f"{engine}-1{backend.anchor.SUFFIX}")
        pending = backend.anchor.save(craft, path, {"format": 1}, None, True)
        pending.wait()
        pending.wait()  # a second wait does nothing
        assert pending.path == path and backend.anchor.is_complete(path)
        meta, state = backend.anchor.read(path, craft)
        np.testing.assert_array_equal(np.asarray(state["weight"]), craft.export_weights()["weight"])


def test_binding_an_engine_loads_the_anchors_and_the_summary_only_when_used():
    """Orbax (JAX anchors) costs seconds at import: binding the engine must not pay for it."""
    code = (
        "import sys, nebulae\n"
        "from nebulae import law\n"
        "b = law.backend()\n"
        "lazy = ('anchor', 'summary')\n"
        "print(sorted(n for n in lazy if f'{b.__name__}.{n}' in sys.modules))\n"
        "b.anchor, b.universe, b.summary\n"
        "print(sorted(n for n in lazy if f'{b.__name__}.{n}' in sys.modules))\n"
    )
    for engine in ("pytorch", "jax"):
        env = {**os.environ, "NEB_CORE": engine}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
        assert out.returncode == 0, out.stderr[-2000:]
        before, after = out.stdout.split("\n")[:2]
        assert before == "[]", f"{engine}: {before} loaded at binding"
        assert after == "['anchor', 'summary']"


# an import_module / __import__ call whose argument names a backend module, or is built from a backend package
_STRING_IMPORT = re.compile(r"(import_module|__import__)\s*\((?P<arg>[^)]*)")


def test_no_front_module_imports_a_backend_module_by_string():
    offenders = []
    for path in sorted((ROOT / "nebulae").rglob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for match in _STRING_IMPORT.finditer(line):
                arg = match.group("arg")
                if "backend" in arg or "bound" in arg or "engine" in arg or "anchor" in arg:
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "the front reaches engine modules as attributes of law.backend(): " + "; ".join(offenders)
