"""Nebulae's cross-backend benchmarks: nebulae on each engine against hand-written baselines.

Each benchmark module runs every contender in its own fresh interpreter (see `benchmarks.common`)
and prints a table plus a CSV. Run them from the repository root, e.g.
``PYTHONPATH=. python benchmarks/train_step.py``.
"""
