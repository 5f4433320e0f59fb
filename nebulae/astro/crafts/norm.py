"""Normalisation: BN, IN, LN, GN, CBN, CIN and SN, as torch.nn computes them (eps 1e-5).

`mmnt` is the running-average decay (seed convention): torch momentum = 1 - mmnt. Inputs are (N, C, *spatial)
as in torch; `dim` (1, 2, 3) names the spatial rank a norm is meant for, like torch's BatchNorm1d/2d/3d. On JAX
the statistics are computed in float32 and the result is cast back to the input's dtype.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from nebulae.astro import gearbox
from nebulae.astro import init as _init

__all__ = ["BN", "IN", "LN", "GN", "CBN", "CIN", "SN"]

EPS = 1e-5
SN_INIT_ITERS = 15  # power iterations at construction, as torch's spectral_norm


class Kernels(Protocol):
    def batch_norm(
        self,
        x: Any,
        weight: Any,
        bias: Any,
        mean: Any,
        var: Any,
        count: Any,
        mmnt: float,
        eps: float,
        training: bool,
        update: bool,
        synced: bool,
    ) -> Any:
        """BN of NC* `x` with batch statistics when `training`, else with `mean` / `var`; `update` folds the batch
        statistics into `mean` / `var` (decay `mmnt`, unbiased variance) and adds 1 to `count`, in place; `synced`:
        statistics over every rank's batch (torch inside a process group; JAX's batch is already global)."""

    def instance_norm(self, x: Any, weight: Any, bias: Any, eps: float) -> Any:
        """Each sample and channel of NC* `x` standardised over its spatial axes, then the per-channel affine."""

    def layer_norm(self, x: Any, shape: tuple, weight: Any, bias: Any, eps: float) -> Any:
        """`x` standardised over its trailing dimensions `shape`, then the element-wise affine of that shape."""

    def group_norm(self, x: Any, ngroup: int, weight: Any, bias: Any, eps: float) -> Any:
        """Each sample's `ngroup` channel groups of NC* `x` standardised, then the per-channel affine."""

    def spectral_weight(
        self, weight: Any, u: Any, v: Any, mat_dim: int, niters: int, eps: float, training: bool
    ) -> Any:
        """`weight` / sigma, sigma = u . (W v), W the weight as a matrix (axis `mat_dim` first); in training u and v
        first advance `niters` power iterations (in place, no gradient); a 1-D weight is scaled to unit length."""

    def call_with(self, craft: Any, pname: str, weight: Any, args: tuple, kwargs: dict) -> Any:
        """`craft(*args, **kwargs)` with its parameter `pname` replaced by `weight` (differentiably)."""


def check_channels(x, chs: int, what: str) -> None:
    """Raise ValueError unless `x` is (N, chs, ...) with `chs` channels on axis 1."""
    if x.ndim < 2 or x.shape[1] != chs:
        raise ValueError(f"{what}: expected input (N, {chs}, ...) with {chs} channels on axis 1, got {tuple(x.shape)}")


def check_instance(x, chs: int, what: str) -> None:
    """As check_channels, and require more than one spatial element for instance statistics."""
    check_channels(x, chs, what)
    if x.ndim < 3 or math.prod(x.shape[2:]) < 2:
        raise ValueError(
            f"{what}: instance statistics need (N, C, *spatial) with more than one spatial element, "
            f"got {tuple(x.shape)}"
        )


def check_batch_values(x, what: str) -> None:
    """Raise ValueError when train-mode batch statistics would see one value per channel (torch's rule).

    A batch statistic over (N, C, *spatial) uses N x prod(spatial) values per channel; with one value
    the variance is 0 and the running variance would decay towards it, so both engines refuse it.
    """
    values = x.shape[0] * math.prod(x.shape[2:])
    if values == 1:
        raise ValueError(
            f"{what}: train mode needs more than one value per channel for batch statistics, got input "
            f"{tuple(x.shape)} (N x spatial = 1); give a batch with more than one value per channel "
            f"(N > 1 or a spatial size > 1), or run {what} in eval mode (gear(False), Nozzle or Prober) "
            "to normalise with its running statistics"
        )


def check_condition(in_chs: int, what: str) -> None:
    """Raise ValueError when a conditional norm's condition width `in_chs` is below 2."""
    if in_chs < 2:
        raise ValueError(f"{what}: in_chs must be at least 2 (the modulating MLP's hidden width is in_chs // 2)")


def sn_initial_uv(w: np.ndarray, dim: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Random unit u, v (from the initialiser stream) refined by 15 power iterations, as torch does at set-up."""
    mat = np.moveaxis(np.asarray(w, np.float64), dim, 0).reshape(w.shape[dim], -1)
    rng = _init.stream()
    u, v = rng.normal(size=mat.shape[0]), rng.normal(size=mat.shape[1])

    def unit(a):
        return a / max(float(np.linalg.norm(a)), eps)

    u, v = unit(u), unit(v)
    for _ in range(SN_INIT_ITERS):
        u = unit(mat @ v)
        v = unit(mat.T @ u)
    return u.astype(np.float32), v.astype(np.float32)


def _affine(craft, what: str, shape, resilient: bool, w_init, b_init) -> None:
    """Declare the affine `weight` (default ones) and `bias` (default zeros) of `shape`, or none."""
    if not resilient:
        if w_init is not None or b_init is not None:
            raise ValueError(f"{what}: w_init / b_init need resilient=True (a non-resilient norm has no affine)")
        craft.param("weight", None)
        craft.param("bias", None)
        return
    craft.param("weight", _init.make(_init.Ones() if w_init is None else w_init, shape))
    craft.param("bias", _init.make(_init.Zeros() if b_init is None else b_init, shape))


class _Norm:
    def weights(self):
        return self.weight


class BN(_Norm):
    """Batch normalisation over (N, C, *spatial) with running statistics, as torch.nn.BatchNorm1d/2d/3d.

    Train mode normalises with the batch statistics (more than one value per channel needed) and folds them
    into `running_mean` / `running_var` (decay `mmnt`), counting the updates in `num_batches_tracked`
    (exported like torch's; an int32 scalar on JAX, which keeps 64-bit integers off); eval mode uses the
    running statistics. `gear(..., stats=False)` keeps batch statistics but leaves the running ones alone.

    Args:
        out_chs: channels C (axis 1).
        dim: spatial rank the norm is meant for (1, 2, 3), like BatchNorm1d/2d/3d.
        mmnt: running-average decay (torch momentum = 1 - mmnt).
        resilient: learnable per-channel affine `weight` and `bias`.
        w_init: initialiser or (out_chs,) array of the affine weight; default ones (DCGAN: Normal(1, 0.02)).
        b_init: initialiser or (out_chs,) array of the affine bias; default zeros.
        scope: name for summaries and checkpoints.
    """

    def __init__(
        self,
        out_chs: int,
        dim: int = 2,
        mmnt: float = 0.9,
        resilient: bool = True,
        w_init=None,
        b_init=None,
        scope: str = "BN",
    ):
        super().__init__(scope)
        self.out_chs, self.dim, self.mmnt, self.resilient = out_chs, dim, float(mmnt), resilient
        _affine(self, "BN", (out_chs,), resilient, w_init, b_init)
        self.buffer("running_mean", np.zeros(out_chs, np.float32))
        self.buffer("running_var", np.ones(out_chs, np.float32))
        self.buffer("num_batches_tracked", np.zeros((), np.int64))
        self._synced = False  # set by Multiverse.sync(sync_bn=True) on torch: statistics over the world's batch

    def run(self, x):
        check_channels(x, self.out_chs, "BN")
        training, update = gearbox.gear_of(self, self.training)
        if training and not self._synced:  # synced: the statistics span every rank's batch
            check_batch_values(x, "BN")
        return self.ops.batch_norm(
            x, self.weight, self.bias, self.running_mean, self.running_var, self.num_batches_tracked,
            self.mmnt, EPS, training, update, self._synced,
        )  # fmt: skip


class IN(_Norm):
    """Instance normalisation over (N, C, *spatial): each sample's own statistics in train and eval mode.

    As torch.nn.InstanceNormNd's defaults, no running statistics are kept.

    Args:
        out_chs: channels C (axis 1).
        dim: spatial rank the norm is meant for (1, 2, 3), like InstanceNorm1d/2d/3d.
        mmnt: accepted for signature compatibility (instance norm keeps no running statistics).
        resilient: learnable per-channel affine `weight` and `bias`.
        w_init: initialiser or (out_chs,) array of the affine weight; default ones.
        b_init: initialiser or (out_chs,) array of the affine bias; default zeros.
        scope: name for summaries and checkpoints.
    """

    def __init__(
        self,
        out_chs: int,
        dim: int = 2,
        mmnt: float = 0.9,
        resilient: bool = True,
        w_init=None,
        b_init=None,
        scope: str = "IN",
    ):
        super().__init__(scope)
        self.out_chs, self.dim, self.mmnt, self.resilient = out_chs, dim, float(mmnt), resilient
        _affine(self, "IN", (out_chs,), resilient, w_init, b_init)

    def run(self, x):
        check_instance(x, self.out_chs, "IN")
        return self.ops.instance_norm(x, self.weight, self.bias, EPS)


class LN(_Norm):
    """Layer normalisation over the trailing dims `norm_shape`, given in tensor order ((C, H, W) for NCHW data).

    Same semantics as torch.nn.LayerNorm (the original's rotation of the shape tuple is not copied).

    Args:
        norm_shape: the trailing dimensions normalised together: an int or a tuple of positive sizes.
        resilient: learnable element-wise affine `weight` and `bias` of shape `norm_shape`.
        w_init: initialiser or array of shape `norm_shape` for the affine weight; default ones.
        b_init: initialiser or array of shape `norm_shape` for the affine bias; default zeros.
        scope: name for summaries and checkpoints.
    """

    def __init__(self, norm_shape: int | tuple, resilient: bool = True, w_init=None, b_init=None, scope: str = "LN"):
        super().__init__(scope)
        shape = (norm_shape,) if isinstance(norm_shape, int) else tuple(norm_shape)
        if not shape or any(int(s) < 1 for s in shape):
            raise ValueError(f"LN: norm_shape must be positive sizes, got {norm_shape}")
        self.norm_shape, self.resilient = tuple(int(s) for s in shape), resilient
        _affine(self, "LN", self.norm_shape, resilient, w_init, b_init)

    def run(self, x):
        if tuple(x.shape[x.ndim - len(self.norm_shape) :]) != self.norm_shape:
            raise ValueError(f"LN: input {tuple(x.shape)} does not end with norm_shape {self.norm_shape}")
        return self.ops.layer_norm(x, self.norm_shape, self.weight, self.bias, EPS)


class GN(_Norm):
    """Group normalisation: channels of (N, C, *spatial) split into `ngroup` groups, each normalised per sample,
    as torch.nn.GroupNorm.

    Args:
        out_chs: channels C (axis 1); must divide into `ngroup` groups.
        ngroup: the number of channel groups.
        resilient: learnable per-channel affine `weight` and `bias`.
        w_init: initialiser or (out_chs,) array of the affine weight; default ones.
        b_init: initialiser or (out_chs,) array of the affine bias; default zeros.
        scope: name for summaries and checkpoints.
    """

    def __init__(self, out_chs: int, ngroup: int, resilient: bool = True, w_init=None, b_init=None, scope: str = "GN"):
        super().__init__(scope)
        if ngroup < 1 or out_chs % ngroup:
            raise ValueError(f"GN: out_chs {out_chs} must divide into ngroup {ngroup} groups")
        self.out_chs, self.ngroup, self.resilient = out_chs, ngroup, resilient
        _affine(self, "GN", (out_chs,), resilient, w_init, b_init)

    def run(self, x):
        check_channels(x, self.out_chs, "GN")
        return self.ops.group_norm(x, self.ngroup, self.weight, self.bias, EPS)


class _Conditional:
    """A non-affine norm of x modulated by gamma(z) * x_hat + beta(z), gamma and beta 2-layer MLPs of z
    (in_chs -> in_chs // 2 -> out_chs, ReLU), each a {'fc1', 'fc2'} pair of Dense crafts."""

    def _modulators(self, what: str, in_chs: int, out_chs: int) -> None:
        check_condition(in_chs, what)
        self.in_chs, self.out_chs = in_chs, out_chs
        dense = self.dock.Dense
        self.gamma = {"fc1": dense(in_chs, in_chs // 2), "fc2": dense(in_chs // 2, out_chs)}
        self.beta = {"fc1": dense(in_chs, in_chs // 2), "fc2": dense(in_chs // 2, out_chs)}

    def _modulate(self, y, z):
        """gamma(z) * y + beta(z), the per-sample, per-channel (N, C) factors broadcast over the spatial axes."""
        shape = (z.shape[0], self.out_chs) + (1,) * (y.ndim - 2)
        gamma = self.gamma["fc2"](self.ops.activate("relu", self.gamma["fc1"](z)))
        beta = self.beta["fc2"](self.ops.activate("relu", self.beta["fc1"](z)))
        return gamma.reshape(shape) * y + beta.reshape(shape)


class CBN(_Conditional):
    """Conditional batch norm: non-affine BN of x (running statistics), then gamma(z) * x_hat + beta(z).

    gamma and beta are 2-layer MLPs (in_chs -> in_chs // 2 -> out_chs, ReLU) of the condition z (N, in_chs);
    call `(x, z)` with x (N, out_chs, *spatial).

    Args:
        in_chs: the width of the condition z (at least 2).
        out_chs: channels C of x (axis 1).
        dim: spatial rank the norm is meant for (1, 2, 3).
        mmnt: running-average decay of the BN statistics (torch momentum = 1 - mmnt).
        scope: name for summaries and checkpoints.
    """

    def __init__(self, in_chs: int, out_chs: int, dim: int = 2, mmnt: float = 0.9, scope: str = "CBN"):
        super().__init__(scope)
        self._modulators("CBN", in_chs, out_chs)
        self.norm = self.dock.BN(out_chs, dim, mmnt, resilient=False)

    def run(self, x, z):
        check_channels(x, self.out_chs, "CBN")
        if self.norm.is_training():
            check_batch_values(x, "CBN")
        return self._modulate(self.norm(x), z)


class CIN(_Conditional):
    """Conditional instance norm: non-affine IN of x, then gamma(z) * x_hat + beta(z) (MLPs as in CBN).

    Args:
        in_chs: the width of the condition z (at least 2).
        out_chs: channels C of x (axis 1).
        dim: spatial rank the norm is meant for (1, 2, 3).
        mmnt: accepted for signature compatibility (instance norm keeps no running statistics).
        scope: name for summaries and checkpoints.
    """

    def __init__(self, in_chs: int, out_chs: int, dim: int = 2, mmnt: float = 0.9, scope: str = "CIN"):
        super().__init__(scope)
        self._modulators("CIN", in_chs, out_chs)
        self.norm = self.dock.IN(out_chs, dim, mmnt, resilient=False)

    def run(self, x, z):
        return self._modulate(self.norm(x), z)


class SN:
    """Spectral normalisation of the wrapped craft's parameter `pname`: the craft runs with weight / sigma.

    torch.nn.utils.parametrizations.spectral_norm semantics: sigma = u . (W v) from persistent power-iteration
    vectors `u`, `v` (exported buffers), advanced `niters` times per call in train mode only; W is the weight as
    a matrix (outputs x rest; axis 1 of a TransConv). A 1-D weight is simply normalised to unit length. Calls
    are delegated: `SN(conv)(x)` runs `conv` on x.

    Args:
        craft: the craft whose parameter is normalised.
        niters: power iterations per train-mode call (at least 1).
        eps: the floor of the norms in the power iteration.
        pname: the name of the craft's trainable parameter to normalise.
        scope: name for summaries and checkpoints.
    """

    def __init__(self, craft, niters: int = 1, eps: float = 1e-12, pname: str = "weight", scope: str = "SN"):
        super().__init__(scope)
        weight = getattr(craft, pname, None)
        if weight is None or not any(weight is v for v in craft.vars()):
            raise TypeError(f"SN: {type(craft).__name__} has no trainable parameter {pname!r} to normalise")
        if int(niters) < 1:
            raise ValueError(f"SN: niters must be at least 1, got {niters}")
        self.craft, self.niters, self.eps, self.pname = craft, int(niters), float(eps), pname
        self.mat_dim = 1 if type(craft).__name__ == "TransConv" else 0  # the axis that indexes outputs, as torch
        w = craft.export_weights()[pname]
        if w.ndim > 1:
            u, v = sn_initial_uv(w, self.mat_dim, self.eps)
            self.buffer("u", u)
            self.buffer("v", v)
        else:
            self.u = self.v = None

    def normalised(self):
        """The wrapped parameter divided by its spectral norm (advancing u, v in train mode)."""
        weight = getattr(self.craft, self.pname)
        return self.ops.spectral_weight(weight, self.u, self.v, self.mat_dim, self.niters, self.eps, self.is_training())

    def run(self, *args, **kwargs):
        return self.ops.call_with(self.craft, self.pname, self.normalised(), args, kwargs)

    def weights(self):
        return self.craft.weights()
