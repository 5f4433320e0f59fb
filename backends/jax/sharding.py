"""Sharded state on JAX: the rule of `Multiverse(shard='params')` (FSDP / ZeRO-3 over the 'data' axis).

Every floating-point state array with at least one dimension — parameters, BN running statistics, optimizer
slots (Adam's moments have their parameter's shape), EMA shadows — is split on its largest dimension that
divides by the world count (the first such dimension on a tie); an array with no such dimension, a scalar,
an integer counter and a PRNG key stay whole on every device. The split is of the stored array (a conv kernel
is stored HWIO on JAX: backends/jax/layout.py). The batch is split on the same mesh axis, so inside a step XLA
gathers each split weight where it is used and reduce-scatters its gradient: the step itself is unchanged.
BN statistics are split too: they are float arrays like the rest, and the step computes them over the
global batch either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def split_dim(shape: tuple[int, ...], dtype, world: int) -> int | None:
    """The dimension a state array of `shape` and `dtype` is split on over `world` devices, or None (whole).

    Args:
        shape: the stored array's shape.
        dtype: its dtype; only floating-point arrays are split.
        world: how many devices share the array.
    """
    if world < 2 or not shape or dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        return None
    best = None
    for dim, size in enumerate(shape):
        if size % world == 0 and (best is None or size > shape[best]):
            best = dim
    return best


def placement(mesh: Mesh, axis: str, value) -> NamedSharding:
    """Where `value` (an array or a tracer) lives when the state is split over `mesh`'s `axis`.

    Args:
        mesh: the Multiverse's device mesh.
        axis: the mesh axis the state is split over (the batch's axis, 'data').
        value: the state array; only its shape and dtype are read.
    """
    dim = split_dim(tuple(np.shape(value)), getattr(value, "dtype", None), mesh.shape[axis])
    if dim is None:
        return NamedSharding(mesh, PartitionSpec())
    return NamedSharding(mesh, PartitionSpec(*([None] * dim), axis))


@dataclass(frozen=True)
class WorldBytes:
    """The state one device holds: `total` bytes, of which `whole` in arrays kept whole (not split);
    `largest_whole` is the largest such array's size in bytes, `arrays` the number of state arrays."""

    total: int
    whole: int
    largest_whole: int
    arrays: int


def world_bytes(crafts: nnx.Module | Iterable[nnx.Module], device=None) -> WorldBytes:
    """The bytes of every state array of `crafts` (each Variable once) that `device` holds (default: the first
    device of the first array).

    Args:
        crafts: a craft, or several (their shared Variables are counted once).
        device: the device whose shards are counted.
    """
    crafts = [crafts] if isinstance(crafts, nnx.Module) else list(crafts)
    seen: set[int] = set()
    total = whole = largest = count = 0
    for craft in crafts:
        for _, var in nnx.iter_graph(craft):
            if not isinstance(var, nnx.Variable) or id(var) in seen:
                continue
            seen.add(id(var))
            value = var.get_raw_value()
            if not isinstance(value, jax.Array):
                continue
            if jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
                value = jax.random.key_data(value)
            if device is None:
                device = value.addressable_shards[0].device
            held = sum(s.data.nbytes for s in value.addressable_shards if s.device == device)
            total += held
            count += 1
            if held == value.nbytes:
                whole += held
                largest = max(largest, held)
    return WorldBytes(total, whole, largest, count)
