"""The Nebulae demo as a script: the same as `nebulae demo` (the code is `nebulae/demo.py`, shipped in the wheel).

NEB_CORE=jax python examples/demo.py --quick      # flags: see --help
"""

# ruff: noqa: E402 (OMP_NUM_THREADS must be set before nebulae.demo's crafts import the engine)
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")  # why: see nebulae/demo.py

from nebulae.demo import main

if __name__ == "__main__":
    sys.exit(main())
