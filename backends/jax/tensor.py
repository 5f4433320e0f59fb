"""coat and shell on JAX: NumPy (or Python) data onto the engine's device, and back."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from nebulae.astro import checks, transfer

__all__ = ["coat", "shell"]

_device = None  # None: JAX's default device
_sharding = None  # set by Multiverse: batch-sharded placement


def set_device(device) -> None:
    global _device
    _device = device


def device():
    return _device


def _refuse_in_step(datum, what: str) -> None:
    from . import step

    if step.tracing() or isinstance(datum, jax.core.Tracer):
        raise RuntimeError(checks.host_transfer_in_step(what))


def coat(datum, as_const: bool = True):
    """Put a number, NumPy array or array on the engine's device (`as_const` is accepted for symmetry)."""
    return transfer.coat_tree(datum, _coat_leaf)


def _coat_leaf(datum):
    _refuse_in_step(datum, "coat")
    if not isinstance(datum, jax.Array):
        datum = transfer.host_array(datum)
    if _sharding is not None:
        return _shard(datum)
    return jax.device_put(datum, _device) if _device is not None else jnp.asarray(datum)


def _shard(datum):
    """Under a Multiverse: this process's batch, split on its first axis over the mesh (scalars replicated)."""
    mesh = _sharding.mesh
    if np.ndim(datum) == 0:
        return jax.device_put(datum, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
    local = sum(1 for d in mesh.devices.flat if d.process_index == jax.process_index())
    if datum.shape[0] % local:
        raise ValueError(
            f"coat: a batch of shape {tuple(datum.shape)} cannot be split over the {local} devices of this "
            "Multiverse: its first axis must be a multiple of the device count"
        )
    if isinstance(datum, jax.Array) and datum.sharding == _sharding:
        return datum
    if jax.process_count() == 1:
        return jax.device_put(datum, _sharding)
    return jax.make_array_from_process_local_data(_sharding, np.asarray(datum))


def shell(datum, as_np: bool = True):
    """Bring an array back from the device: a NumPy array, or a Python scalar for one element."""
    return transfer.shell_tree(datum, lambda leaf: _shell_leaf(leaf, as_np))


def _shell_leaf(datum, as_np: bool):
    _refuse_in_step(datum, "shell")
    if not as_np or not isinstance(datum, (jax.Array, np.ndarray, np.generic)):
        return datum
    return transfer.host_value(np.asarray(jax.device_get(datum)))


def devices() -> list[str]:
    return [str(d) for d in jax.devices()]


def synchronize() -> None:
    jax.block_until_ready(jax.live_arrays())


def set_float32(mode: str) -> None:
    # XLA's default on GPUs is TF32-class for float32 dots and convolutions; 'highest' is float32 throughout
    jax.config.update("jax_default_matmul_precision", "high" if mode == "tf32" else "highest")
