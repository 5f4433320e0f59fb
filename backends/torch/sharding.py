"""Sharded parameters on torch (`Multiverse(shard='params')`): FSDP2 `fully_shard` in the place of DDP.

Every direct sub-craft that holds parameters (each element of a list or dict of sub-crafts) is sharded, then the
craft itself (its own parameters and those of deeper native modules): each parameter becomes a DTensor split on its
first dimension over the ranks, and its gradient and optimizer state follow it. A sub-craft's whole parameters exist
only while it runs (gathered before its forward and again before its backward, freed after); gradients are averaged
and split by a reduce-scatter. The craft stays the same object (FSDP2 changes its class in place), so the crafts and
steps built around it are unchanged, and optimizers built before `mv.sync` are pointed at the sharded parameters.
Buffers (BN statistics) stay whole on every rank, as under DDP.
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist
from torch import nn

__all__: list[str] = []


def is_sharded(value) -> bool:
    """Whether `value` is a DTensor (a sharded parameter, its gradient or its optimizer state)."""
    mod = sys.modules.get("torch.distributed.tensor")  # no DTensor exists before that module is imported
    return mod is not None and isinstance(value, mod.DTensor)


def local(value: torch.Tensor) -> torch.Tensor:
    """This rank's part of a DTensor; any other tensor itself."""
    return value.to_local() if is_sharded(value) else value


def full(value: torch.Tensor) -> torch.Tensor:
    """The whole tensor of a DTensor (a collective: every rank of its mesh must call it); any other tensor itself."""
    return value.full_tensor() if is_sharded(value) else value


def like(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`value`, the same on every rank, laid out as `target` (this rank's part when `target` is a DTensor)."""
    if not is_sharded(target):
        return value
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(value, target.device_mesh, target.placements, src_data_rank=None)


def _units(craft: nn.Module) -> list[nn.Module]:
    # the direct sub-modules that hold parameters; a list or dict of crafts contributes its elements
    out = []
    for child in craft.children():
        inner = list(child.children()) if isinstance(child, (nn.ModuleList, nn.ModuleDict)) else [child]
        out += [m for m in inner if next(m.parameters(), None) is not None]
    return out


def shard(craft: nn.Module, device: torch.device) -> nn.Module:
    """Shard `craft`'s parameters over the process group in place (rank 0's values on every rank first, as DDP)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FSDPModule, fully_shard

    from . import optim

    if isinstance(craft, FSDPModule):
        return craft
    with torch.no_grad():
        for t in (*craft.parameters(), *craft.buffers()):
            dist.broadcast(t.data, 0)
    before = dict(craft.named_parameters())
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    units = [*_units(craft), craft]
    for unit in units:
        fully_shard(unit, mesh=mesh)
        if device.type != "cuda":  # gloo has no averaging reduce-scatter: a sum, then a division
            unit.set_force_sum_reduction_for_comms(True)
    after = dict(craft.named_parameters())
    optim.repoint({id(p): after[name] for name, p in before.items() if after.get(name) is not p})
    return craft
