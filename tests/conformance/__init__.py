"""Conformance suite: real training scripts (pytorch/examples, the Flax NNX MNIST tutorial) ported once to Nebulae.

Each script has a plain original (`*_plain.py`: torch or Flax NNX + optax, as its authors wrote it, on small
local data) and a Nebulae port (`*_port.py`, dock crafts only) that runs unchanged on both engines. The tests
(`test_*.py`) start one fresh interpreter per engine (the engine binds once per process), feed every run the
same initial weights and batches, and compare per-step losses and final weights.
"""
