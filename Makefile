# One command for the demo, one for the tests; both create .venv and install everything when missing.
# A GPU user changes TORCH_SPEC (e.g. TORCH_SPEC='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128')
# and adds the cuda12 extra to EXTRAS. torch is installed FIRST: an unpinned torch pulls GBs of CUDA wheels.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= jax,dev
PY := $(VENV)/bin/python
STAMP := $(VENV)/.nebulae-installed
export XLA_FLAGS ?= --xla_force_host_platform_device_count=2
export PYTHONDONTWRITEBYTECODE :=

.PHONY: install demo test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(TORCH_SPEC)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m nebulae demo --core pytorch
	$(PY) -m nebulae demo --core jax

# The engine binds once per process, so the suite runs once per engine. Tests marked `once`
# (engine-neutral, or comparing both engines in one process) run in the first pass only.
test: $(STAMP)
	NEB_CORE=pytorch $(PY) -m pytest -q tests
	NEB_CORE=jax $(PY) -m pytest -q -m "not once" tests

lint: $(STAMP)
	$(PY) -m ruff check nebulae backends tests benchmarks examples
	$(PY) -m ruff format --check nebulae backends tests benchmarks examples

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
