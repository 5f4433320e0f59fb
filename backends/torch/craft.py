"""Craft on torch: the model base class, a `torch.nn.Module` whose forward is the user's `run`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from nebulae.astro.crafts.craft import CraftBase

from . import kernels, sharding
from . import step as _step

__all__ = ["Craft"]


def _compiled():
    from . import compiled  # imports torch._dynamo: only when a craft is compiled

    return compiled


class Craft(CraftBase, nn.Module):
    __doc__ = CraftBase.__doc__

    _mixp: torch.dtype | None = None
    _compile_options: dict | None = None  # set by compile(**options): Python-level calls run compiled
    ops = kernels.OPS  # the layer kernels front crafts call (backends/torch/kernels)
    dock = None  # the torch dock namespace, set when it is built
    hangar = None  # the hangar models bound to this Craft, set when they are bound

    def __init__(self, scope: str = "CRAFT"):
        super().__init__()
        self.scope = scope

    def declare(self, kind: str, name: str, array: np.ndarray | None, layout: str | None = None) -> None:
        tensor = None if array is None else torch.tensor(np.asarray(array))  # a copy; 0-d stays 0-d
        if kind == "param":
            setattr(self, name, None if tensor is None else nn.Parameter(tensor))
        else:
            self.register_buffer(name, tensor, persistent=kind == "buffer")

    def sub_crafts(self) -> list[tuple[str, Any]]:
        """(name, sub-craft) pairs in registration order; lists and dicts of crafts as Python lists and dicts."""
        out = []
        for name, child in self.named_children():
            if isinstance(child, nn.ModuleList):
                child = list(child)
            elif isinstance(child, nn.ModuleDict):
                child = dict(child)
            out.append((name, child))
        return out

    def _apply(self, fn, recurse=True):  # nn.Module's .to()/.cuda()/.half() path, once per module
        out = super()._apply(fn, recurse)
        self.moved()
        return out

    def forward(self, *args, **kwargs):
        return self.run(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        if _step.current() is None:  # called from Python: a step (see backends/torch/step.py)
            if self._compile_options is not None:
                return _compiled().top_call(self, args, kwargs)
            return _step.top_call(self, self._forward, args, kwargs)
        return self._forward(args, kwargs)

    def _forward(self, args: tuple, kwargs: dict):
        if self._mixp is not None:
            with torch.autocast(self._device_type(), dtype=self._mixp):
                return super().__call__(*args, **kwargs)
        return super().__call__(*args, **kwargs)

    def set_mixp(self, dtype: str) -> None:
        self._mixp = getattr(torch, dtype)

    def set_compiled(self, options: dict) -> None:
        torch.compile(lambda: None, **options)  # refuses a bad value now (an unknown mode, a backend's name)
        self._compile_options = options
        _compiled().forget(self.__dict__)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        if self._compile_options is not None:  # a copy or an unpickled craft compiles afresh
            _compiled().forget(state)
        return state

    def _device_type(self) -> str:
        for p in self.parameters():
            return p.device.type
        return "cpu"

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, nn.Module) for v in value):
            value = nn.ModuleList(value)
        elif isinstance(value, dict) and value and all(isinstance(v, nn.Module) for v in value.values()):
            value = nn.ModuleDict(value)
        if getattr(type(value), "_nebulae_world", False):  # a Multiverse World: state under the craft's own paths
            super().__setattr__(name, value.module)
            object.__setattr__(self, name, value)
            return
        super().__setattr__(name, value)

    def all_crafts(self) -> list:
        return [m for m in self.modules() if isinstance(m, Craft)]

    def set_training(self, crafts: list, flag: bool) -> None:
        self.train(flag)

    def override(self, ctx, crafts: list, flag: bool, stats: bool) -> None:
        super().override(ctx, crafts, flag, stats)
        for m in self.modules():  # native torch modules: their flag is set now and restored when ctx exits
            if not isinstance(m, Craft) and m.training != flag:
                ctx.remember(m)
                m.training = flag

    @property
    def traces(self) -> int:
        """Dynamo compilations of this craft's step after `compile()` (1 for a fixed input signature); 0 eager."""
        return 0 if self._compile_options is None else _compiled().stats(self)[0]

    @property
    def compile_seconds(self) -> float:
        """Seconds spent tracing and compiling this craft's step after `compile()`; 0.0 eager."""
        return 0.0 if self._compile_options is None else _compiled().stats(self)[1]

    def vars(self) -> list[torch.Tensor]:
        """All parameters, as a list."""
        return list(self.parameters())

    def named_weights(self) -> dict[str, torch.Tensor]:
        """Parameters and buffers (BN statistics) by path, joined with '/'."""
        return {
            k.replace(".", "/"): v for k, v in self.state_dict(keep_vars=True).items() if not k.endswith("_extra_state")
        }

    def export_weights(self) -> dict[str, np.ndarray]:
        """Parameters and buffers (BN statistics) as {path: NumPy array}, paths joined with '/'. A sharded craft's
        (Multiverse(shard='params')) arrays are whole: every rank must call it (it gathers them)."""
        return {k: sharding.full(v.detach()).cpu().numpy().copy() for k, v in self.named_weights().items()}

    def weight_shape(self, weight: torch.Tensor) -> tuple[int, ...]:
        return tuple(weight.shape)

    @torch.no_grad()
    def load_weights(self, chosen: dict[str, np.ndarray], own: dict[str, torch.Tensor]) -> None:
        for key, array in chosen.items():
            own[key].copy_(sharding.like(torch.as_tensor(array, dtype=own[key].dtype), own[key]))
