"""The package installs as a wheel that carries `backends/` as `nebulae.backends`."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.once


def test_wheel_carries_backends_and_imports_outside_the_checkout(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("nebulae-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "nebulae/backends/__init__.py",
        "nebulae/backends/torch/craft.py",
        "nebulae/backends/jax/step/compile.py",
        "nebulae/law.py",
        "nebulae/astro/dock.py",
    ):
        assert needed in names, needed
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site), "NEB_CORE": "jax"}
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import nebulae, nebulae.backends.torch\nfrom nebulae.astro import dock\n"
            "print(dock.Dense.__module__, nebulae.__file__)",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    module, path = r.stdout.split()
    assert module == "nebulae.backends.jax.dock" and path.startswith(str(site))
