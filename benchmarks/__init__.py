"""Nebulae's cross-backend benchmarks: nebulae on each engine against hand-written baselines.

`benchmarks.run` runs every suite in one go (``python -m nebulae bench`` from a source checkout, or
``PYTHONPATH=. python -m benchmarks.run [--quick | --gpu]``) and writes one bench.csv, bench.json,
bench.png and bench.md. Each suite module (train_step, dock_overhead, checkpoint, loader,
generator) also runs alone, e.g. ``PYTHONPATH=. python benchmarks/train_step.py``, runs every
contender in its own fresh interpreter (see `benchmarks.common`) and prints its own table and CSV.
"""
