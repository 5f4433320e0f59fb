"""Engine backends, installed as `nebulae.backends`: `torch/` and `jax/` mirror each other file for file."""
