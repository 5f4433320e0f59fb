"""Craft on torch: the model base class, a `torch.nn.Module` whose forward is the user's `run`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from nebulae.astro import gearbox, precision, statedict
from nebulae.astro.crafts import tree

from . import kernels
from . import step as _step

__all__ = ["Craft"]


class Craft(nn.Module):
    """Base class of every model, layer and step: implement `run(*args, **kwargs)`; calling the craft runs it.

    `scope` names checkpoint files and summaries. Lists, tuples and dicts of crafts assigned as
    attributes are registered automatically (no ModuleList needed).
    """

    _mixp: torch.dtype | None = None
    ops = kernels.OPS  # the layer kernels front crafts call (backends/torch/kernels)
    dock = None  # the torch dock namespace, set when it is built
    hangar = None  # the hangar models bound to this Craft, set when they are bound

    def __init__(self, scope: str = "CRAFT"):
        super().__init__()
        self.scope = scope

    def param(self, name: str, array: np.ndarray | None) -> None:
        """Declare a trainable parameter from an initialised NumPy array (None: no parameter)."""
        setattr(self, name, None if array is None else nn.Parameter(torch.from_numpy(np.ascontiguousarray(array))))

    def buffer(self, name: str, array: np.ndarray) -> None:
        """Declare a non-trainable state array that is exported and checkpointed (BN statistics)."""
        self.register_buffer(name, torch.from_numpy(np.ascontiguousarray(array)))

    def fixed(self, name: str, array: np.ndarray) -> None:
        """Declare a constant array that moves with the craft but is neither trained nor exported."""
        self.register_buffer(name, torch.from_numpy(np.ascontiguousarray(array)), persistent=False)

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

    def __repr__(self) -> str:
        return tree.render(self)

    def run(self, *args, **kwargs):
        """The forward computation; subclasses define it."""
        raise TypeError(f"{type(self).__name__} must define run(...)")

    def forward(self, *args, **kwargs):
        return self.run(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        if _step.current() is None:  # called from Python: a step (see backends/torch/step.py)
            return _step.top_call(self, self._forward, args, kwargs)
        return self._forward(args, kwargs)

    def _forward(self, args: tuple, kwargs: dict):
        if self._mixp is not None:
            with torch.autocast(self._device_type(), dtype=self._mixp):
                return super().__call__(*args, **kwargs)
        return super().__call__(*args, **kwargs)

    def mixp(self, dtype: str = "bfloat16") -> Craft:
        """Compute in bf16/fp16 (autocast on the craft's device type) while weights stay float32.

        For float16 also give the optimizer `mixp=True` (dynamic loss scaling).
        """
        self._mixp = getattr(torch, precision.compute_dtype(dtype))
        return self

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

    def gear(self, gr, stats: bool = True) -> Craft:
        """Set train (True) / eval (False) mode, take a Rudder/Prober/Nozzle's mode, or place on an Engine.

        Inside a mode context the setting lasts until the context exits; outside, it persists.
        `stats=False` keeps train mode (batch statistics, active dropout) but leaves the running
        statistics of this craft's BN layers (dock crafts) untouched: for a GAN step that only needs
        the generator's output.
        """
        stats = gearbox.as_stats(stats, gr)
        if hasattr(gr, "place"):
            gr.place(self)
            return self
        flag = gearbox.as_training(gr)
        ctx = gearbox.active()
        if ctx is None:
            self.train(flag)
            gearbox.set_stats_default((m for m in self.modules() if isinstance(m, Craft)), stats)
            return self
        ctx.override((id(m) for m in self.modules() if isinstance(m, Craft)), flag, stats)
        for m in self.modules():
            if not isinstance(m, Craft) and m.training != flag:
                ctx.remember(m)
                m.training = flag
        return self

    def is_training(self) -> bool:
        """Whether this craft runs in train mode now (context, in-context gear, then its own flag)."""
        return gearbox.training_of(self, self.training)

    @property
    def traces(self) -> int:
        """Compilations of this craft's step: always 0 on torch, which runs eagerly (mirrors the JAX craft)."""
        return _step.trace_count(self)

    @property
    def compile_seconds(self) -> float:
        """Seconds spent compiling this craft's step: 0.0 on torch (eager)."""
        return _step.compile_seconds(self)

    def vars(self) -> list[torch.Tensor]:
        """All parameters, as a list."""
        return list(self.parameters())

    def weights(self):
        """The main weight tensor of a parametric layer."""
        raise TypeError(f"{type(self).__name__} has no single weight tensor; use vars() or export_weights()")

    def export_weights(self) -> dict[str, np.ndarray]:
        """Parameters and buffers (BN statistics) as {path: NumPy array}, paths joined with '/'."""
        return {
            k.replace(".", "/"): v.detach().cpu().numpy().copy()
            for k, v in self.state_dict().items()
            if not k.endswith("_extra_state")
        }

    def import_weights(self, arrays: dict[str, np.ndarray], strict: bool = True) -> statedict.LoadReport:
        """Load {path: array} into this craft's parameters and buffers; strict raises on any mismatch."""
        own = {
            k.replace(".", "/"): v for k, v in self.state_dict(keep_vars=True).items() if not k.endswith("_extra_state")
        }
        report = statedict.compare({k: tuple(v.shape) for k, v in own.items()}, arrays)
        if strict and not report.clean:
            raise KeyError(f"{type(self).__name__}.import_weights: {report}")
        bad = {k for k, *_ in report.mismatched}
        with torch.no_grad():
            for key, target in own.items():
                if key in arrays and key not in bad:
                    target.copy_(torch.as_tensor(np.asarray(arrays[key]), dtype=target.dtype))
        return report
