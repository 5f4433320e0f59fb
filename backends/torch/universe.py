"""Data parallelism on torch: one process per world, a torch.distributed group, DDP-wrapped (or FSDP2-sharded) crafts.

`cockpit.Multiverse` starts the processes (or finds torchrun's) and calls these functions in each
of them. gloo on CPU, NCCL for CUDA tensors (the group is made with both when NCCL is built in).
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from nebulae.cockpit.multiverse import not_a_craft

from . import sharding, tensor

SPAWNS = True  # one process per world


def join(world: int, timeout: float) -> None:  # the process group named by RANK, WORLD_SIZE, MASTER_ADDR/PORT
    if dist.is_initialized() or world <= 1:
        return
    backend = "cpu:gloo,cuda:nccl" if dist.is_nccl_available() else "gloo"
    dist.init_process_group(
        backend,
        init_method="env://",
        rank=int(os.environ["RANK"]),
        world_size=world,
        timeout=datetime.timedelta(seconds=timeout),
    )


def leave(clean: bool = True) -> None:  # the barrier: no rank tears the group down while another talks to it
    if dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", 0))


def size() -> int:
    return dist.get_world_size() if dist.is_initialized() else int(os.environ.get("WORLD_SIZE", 1))


def share(world: int) -> int:  # a process per device
    return 1


class World(DistributedDataParallel):
    """DDP around a craft: calls go through DDP (gradients averaged across ranks in backward); every other
    attribute, and the names of parameters and state, are the wrapped craft's own."""

    _nebulae_world = True  # a Craft holding a World registers the wrapped craft (clean state paths)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["module"], name)

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        return self.module.named_parameters(prefix, recurse, remove_duplicate)

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        return self.module.named_buffers(prefix, recurse, remove_duplicate)

    def state_dict(self, *args, **kwargs):
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.module.load_state_dict(state_dict, strict, assign)

    def __repr__(self) -> str:
        return f"World({self.module!r})"


def sync(craft, sync_bn: bool, world: int, shard: str | None = None):
    # a DDP wrapper (rank 0's weights broadcast to all ranks; gradients averaged in backward); `sync_bn`:
    # batch-norm statistics over the whole world's batch (an all-reduce per BN layer). shard='params': the
    # craft itself, its parameters split over the ranks by FSDP2 (see sharding.py; sync_bn works the same).
    # Outside a process group the craft comes back unchanged.
    if not isinstance(craft, nn.Module):
        raise not_a_craft(craft)
    if not dist.is_initialized() or dist.get_world_size() == 1 or isinstance(craft, World):
        return craft
    if shard is not None and shard != "params":
        raise ValueError(f"Multiverse: shard must be None or 'params', got {shard!r}")
    if sync_bn:
        from nebulae.astro.crafts.norm import BN

        for m in craft.modules():
            if isinstance(m, BN):
                m._synced = True
    device = next((p.device for p in craft.parameters()), tensor.device())
    if shard == "params":
        return sharding.shard(craft, device)
    if device.type == "cuda":
        return World(craft, device_ids=[device], output_device=device)
    return World(craft)


def unwrap(craft):
    return craft.module if isinstance(craft, World) else craft


def reduce(value, aggregate: bool):  # detached; every rank gets it
    if not dist.is_initialized():
        return value
    t = value.detach().clone() if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    if not t.is_floating_point() and not aggregate:
        t = t.float()
    if t.device.type != "cuda" and dist.get_backend() == "nccl":
        raise RuntimeError("Multiverse.reduce: a CPU tensor cannot be reduced over an NCCL-only group")
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t if aggregate else t / dist.get_world_size()


def peer_fault(exc: BaseException) -> str | None:  # "lost" / "timeout": the peers failed this rank
    # gloo / NCCL report a dead or stalled peer as a RuntimeError (DistError) from the collective
    text = str(exc)
    if not isinstance(exc, RuntimeError) or not (isinstance(exc, dist.DistError) or "gloo" in text or "NCCL" in text):
        return None
    return "timeout" if "timed out" in text.lower() or "timeout" in text.lower() else "lost"


def blame(exc: BaseException, account: str) -> str | None:  # the launcher (or torchrun's agent) blames the ranks
    return None
