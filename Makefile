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

.PHONY: install demo test test-newest lint clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(TORCH_SPEC)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[$(EXTRAS)]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m nebulae demo --core pytorch
	$(PY) -m nebulae demo --core jax

# The engine binds once per process, so the suite runs once per engine. Tests marked `once`
# (engine-neutral, or comparing both engines in one process) run in the first pass only.
test: $(STAMP)
	NEB_CORE=pytorch $(PY) -m pytest -q tests
	NEB_CORE=jax $(PY) -m pytest -q -m "not once" tests
	$(MAKE) --no-print-directory test-newest

# The JAX pass again on Python 3.12 with the newest JAX/Flax/optax/Orbax that pip resolves (no constraints file),
# without torch (its 3.12 wheel is the multi-GB CUDA build): test modules that import torch are skipped there.
PYTHON312 ?= $(lastword $(shell command -v python3.12) $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12))
VENV312 ?= .venv312
STAMP312 := $(VENV312)/.nebulae-installed

$(STAMP312): pyproject.toml Makefile
	@test -x "$(PYTHON312)" || { echo "test-newest needs Python 3.12: install it (pyenv install 3.12)" \
		"or name it: make test-newest PYTHON312=/path/to/python3.12" >&2; exit 1; }
	test -x $(VENV312)/bin/python || $(PYTHON312) -m venv $(VENV312)
	$(VENV312)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade --upgrade-strategy eager \
		-e '.[jax,dev]'
	$(VENV312)/bin/python -m pip list --disable-pip-version-check 2>/dev/null | grep -iE '^(jax|jaxlib|flax|optax|orbax-checkpoint|numpy) '
	touch $(STAMP312)

test-newest: $(STAMP312)
	NEB_CORE=jax $(VENV312)/bin/python -m pytest -q -m "not once" tests

lint: $(STAMP)
	$(PY) -m ruff check nebulae backends tests benchmarks examples
	$(PY) -m ruff format --check nebulae backends tests benchmarks examples

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
