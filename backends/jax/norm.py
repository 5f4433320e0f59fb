"""Normalisation crafts on JAX. `mmnt` is the running-average decay (seed convention), as on torch.

All norms use eps 1e-5. Inputs are (N, C, *spatial) as in torch; `dim` (1, 2, 3) names the
spatial rank a norm is meant for, like torch's BatchNorm1d/2d/3d. Statistics are computed in
float32 and the result is cast back to the input's dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nebulae.astro import gearbox
from nebulae.astro.normargs import check_batch_values as _check_batch_values
from nebulae.astro.normargs import check_channels as _check_channels
from nebulae.astro.normargs import check_condition as _check_condition
from nebulae.astro.normargs import check_instance as _check_instance
from nebulae.astro.normargs import modulate as _modulate
from nebulae.astro.normargs import sn_initial_uv as _sn_initial_uv
from nebulae.astro.normargs import sn_matrix_dim as _sn_matrix_dim

from .craft import Craft
from .legacy import Dense, parameter

__all__ = ["BN", "IN", "LN", "GN", "CBN", "CIN", "SN"]

EPS = 1e-5


def _affine(shape, resilient: bool) -> tuple[nnx.Param | None, nnx.Param | None]:
    """(weight of ones, bias of zeros) of `shape` when resilient, else (None, None)."""
    if not resilient:
        return None, None
    return parameter(np.ones(shape, np.float32)), parameter(np.zeros(shape, np.float32))


def _channel_shape(x) -> tuple:
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _standardise(xf, axes):
    """(x - mean) / sqrt(var + eps) over `axes` with the biased variance, as torch computes it."""
    mean = xf.mean(axes, keepdims=True)
    var = jnp.mean(jnp.square(xf - mean), axes, keepdims=True)
    return (xf - mean) * jax.lax.rsqrt(var + EPS)


def _scale_shift(y, weight, bias, shape):
    if weight is None:
        return y
    return y * weight.get_value().reshape(shape) + bias.get_value().reshape(shape)


class BN(Craft):
    """Batch normalisation over (N, C, *spatial) with running statistics, as torch.nn.BatchNorm1d/2d/3d.

    Train mode normalises with the batch statistics (more than one value per channel needed) and
    folds them into `running_mean` / `running_var` (decay `mmnt`), counting the updates in
    `num_batches_tracked` (an int32 scalar here: JAX keeps 64-bit integers off; exported under
    torch's name); eval mode uses the running statistics. `gear(..., stats=False)` keeps batch
    statistics but leaves the running ones alone.

    Args:
        out_chs: channels C (axis 1).
        dim: spatial rank the norm is meant for (1, 2, 3), like BatchNorm1d/2d/3d.
        mmnt: running-average decay (torch momentum = 1 - mmnt).
        resilient: learnable per-channel affine `weight` and `bias`.
        scope: name for summaries and checkpoints.
    """

    def __init__(self, out_chs: int, dim: int = 2, mmnt: float = 0.9, resilient: bool = True, scope: str = "BN"):
        super().__init__(scope)
        self.out_chs, self.dim, self.mmnt = out_chs, dim, float(mmnt)
        self.weight = parameter(np.ones(out_chs, np.float32)) if resilient else None
        self.bias = parameter(np.zeros(out_chs, np.float32)) if resilient else None
        self.running_mean = nnx.BatchStat(jnp.zeros(out_chs, jnp.float32))
        self.running_var = nnx.BatchStat(jnp.ones(out_chs, jnp.float32))
        self.num_batches_tracked = nnx.BatchStat(jnp.zeros((), jnp.int32))

    def run(self, x):
        _check_channels(x, self.out_chs, "BN")
        axes = (0, *range(2, x.ndim))
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        xf = x.astype(jnp.float32)
        training, update = gearbox.gear_of(self, self.training)
        if training:
            _check_batch_values(x, "BN")
            mean = xf.mean(axes)
            var = jnp.mean(jnp.square(xf - mean.reshape(shape)), axes)
        else:
            mean, var = self.running_mean.get_value(), self.running_var.get_value()
        if update:
            n = x.size // x.shape[1]
            m = self.mmnt
            self.running_mean.set_value(m * self.running_mean.get_value() + (1 - m) * mean)
            self.running_var.set_value(m * self.running_var.get_value() + (1 - m) * var * (n / max(n - 1, 1)))
            self.num_batches_tracked.set_value(self.num_batches_tracked.get_value() + 1)
        y = (xf - mean.reshape(shape)) * jnp.reciprocal(jnp.sqrt(var + EPS)).reshape(shape)
        if self.weight is not None:
            y = y * self.weight.get_value().reshape(shape) + self.bias.get_value().reshape(shape)
        return y.astype(x.dtype)

    def weights(self):
        return self.weight


class IN(Craft):
    """Instance normalisation over (N, C, *spatial): each sample's own statistics in train and eval mode.

    As torch.nn.InstanceNormNd's defaults, no running statistics are kept (`mmnt` is accepted for
    signature compatibility); `resilient` = learnable affine.
    """

    def __init__(self, out_chs: int, dim: int = 2, mmnt: float = 0.9, resilient: bool = True, scope: str = "IN"):
        super().__init__(scope)
        self.out_chs, self.dim, self.mmnt = out_chs, dim, float(mmnt)
        self.weight, self.bias = _affine(out_chs, resilient)

    def run(self, x):
        _check_instance(x, self.out_chs, "IN")
        y = _standardise(x.astype(jnp.float32), tuple(range(2, x.ndim)))
        return _scale_shift(y, self.weight, self.bias, _channel_shape(x)).astype(x.dtype)

    def weights(self):
        return self.weight


class LN(Craft):
    """Layer normalisation over the trailing dims `norm_shape`, given in tensor order ((C, H, W) for NCHW data).

    Same semantics as torch.nn.LayerNorm (the original's rotation of the shape tuple is not copied);
    `resilient` = learnable element-wise affine of shape `norm_shape`.
    """

    def __init__(self, norm_shape, resilient: bool = True, scope: str = "LN"):
        super().__init__(scope)
        shape = (norm_shape,) if isinstance(norm_shape, int) else tuple(norm_shape)
        if not shape or any(int(s) < 1 for s in shape):
            raise ValueError(f"LN: norm_shape must be positive sizes, got {norm_shape}")
        self.norm_shape = tuple(int(s) for s in shape)
        self.weight, self.bias = _affine(self.norm_shape, resilient)

    def run(self, x):
        if tuple(x.shape[x.ndim - len(self.norm_shape) :]) != self.norm_shape:
            raise ValueError(f"LN: input {tuple(x.shape)} does not end with norm_shape {self.norm_shape}")
        y = _standardise(x.astype(jnp.float32), tuple(range(x.ndim - len(self.norm_shape), x.ndim)))
        return _scale_shift(y, self.weight, self.bias, self.norm_shape).astype(x.dtype)

    def weights(self):
        return self.weight


class GN(Craft):
    """Group normalisation: channels of (N, C, *spatial) split into `ngroup` groups, each normalised per sample."""

    def __init__(self, out_chs: int, ngroup: int, resilient: bool = True, scope: str = "GN"):
        super().__init__(scope)
        if ngroup < 1 or out_chs % ngroup:
            raise ValueError(f"GN: out_chs {out_chs} must divide into ngroup {ngroup} groups")
        self.out_chs, self.ngroup = out_chs, ngroup
        self.weight, self.bias = _affine(out_chs, resilient)

    def run(self, x):
        _check_channels(x, self.out_chs, "GN")
        grouped = x.astype(jnp.float32).reshape((x.shape[0], self.ngroup, -1))
        y = _standardise(grouped, (2,)).reshape(x.shape)
        return _scale_shift(y, self.weight, self.bias, _channel_shape(x)).astype(x.dtype)

    def weights(self):
        return self.weight


class _Modulator(Craft):
    """The 2-layer MLP (in -> in//2 -> out, ReLU) that maps a condition to per-channel scales or shifts."""

    def __init__(self, in_chs: int, out_chs: int, scope: str = "MODULATOR"):
        super().__init__(scope)
        self.fc1 = Dense(in_chs, in_chs // 2)
        self.fc2 = Dense(in_chs // 2, out_chs)

    def run(self, z):
        return self.fc2(jax.nn.relu(self.fc1(z)))


class CBN(Craft):
    """Conditional batch norm: non-affine BN of x (running statistics), then gamma(z) * x_hat + beta(z).

    gamma and beta are 2-layer MLPs (in_chs -> in_chs // 2 -> out_chs, ReLU) of the condition z
    (N, in_chs); call `(x, z)` with x (N, out_chs, *spatial).
    """

    def __init__(self, in_chs: int, out_chs: int, dim: int = 2, mmnt: float = 0.9, scope: str = "CBN"):
        super().__init__(scope)
        _check_condition(in_chs, "CBN")
        self.in_chs, self.out_chs = in_chs, out_chs
        self.gamma = _Modulator(in_chs, out_chs, "GAMMA")
        self.beta = _Modulator(in_chs, out_chs, "BETA")
        self.norm = BN(out_chs, dim, mmnt, resilient=False)

    def run(self, x, z):
        _check_channels(x, self.out_chs, "CBN")
        if self.norm.is_training():
            _check_batch_values(x, "CBN")
        return _modulate(self.norm(x), self.gamma(z), self.beta(z))


class CIN(Craft):
    """Conditional instance norm: non-affine IN of x, then gamma(z) * x_hat + beta(z) (MLPs as in CBN).

    `mmnt` is accepted for signature compatibility (instance norm keeps no running statistics).
    """

    def __init__(self, in_chs: int, out_chs: int, dim: int = 2, mmnt: float = 0.9, scope: str = "CIN"):
        super().__init__(scope)
        _check_condition(in_chs, "CIN")
        self.in_chs, self.out_chs = in_chs, out_chs
        self.gamma = _Modulator(in_chs, out_chs, "GAMMA")
        self.beta = _Modulator(in_chs, out_chs, "BETA")
        self.norm = IN(out_chs, dim, mmnt, resilient=False)

    def run(self, x, z):
        return _modulate(self.norm(x), self.gamma(z), self.beta(z))


def _unit(a, eps: float):
    """a / max(||a||, eps), as torch.nn.functional.normalize."""
    return a / jnp.maximum(jnp.linalg.norm(a), eps)


class SN(Craft):
    """Spectral normalisation of the wrapped craft's parameter `pname`: the craft runs with weight / sigma.

    torch.nn.utils.parametrizations.spectral_norm semantics: sigma = u . (W v) from persistent
    power-iteration vectors `u`, `v` (exported buffers), advanced `niters` times per call in train
    mode only; W is the weight as a matrix (outputs x rest; axis 1 of a TransConv). A 1-D weight
    is simply normalised to unit length. Calls are delegated: `SN(conv)(x)` runs `conv` on x.
    """

    def __init__(self, craft, niters: int = 1, eps: float = 1e-12, pname: str = "weight", scope: str = "SN"):
        super().__init__(scope)
        weight = getattr(craft, pname, None)
        if not isinstance(weight, nnx.Param):
            raise TypeError(f"SN: {type(craft).__name__} has no trainable parameter {pname!r} to normalise")
        if int(niters) < 1:
            raise ValueError(f"SN: niters must be at least 1, got {niters}")
        self.craft, self.niters, self.eps, self.pname = craft, int(niters), float(eps), pname
        self.mat_dim = _sn_matrix_dim(craft)
        w = np.asarray(jax.device_get(weight.get_value()))
        if w.ndim > 1:
            u, v = _sn_initial_uv(w, self.mat_dim, self.eps)
            self.u, self.v = nnx.BatchStat(jnp.asarray(u)), nnx.BatchStat(jnp.asarray(v))
        else:
            self.u = self.v = None

    def normalised(self) -> jax.Array:
        """The wrapped parameter divided by its spectral norm (advancing u, v in train mode)."""
        w = getattr(self.craft, self.pname).get_value()
        if w.ndim == 1:
            return _unit(w, self.eps)
        mat = jnp.moveaxis(w, self.mat_dim, 0).reshape(w.shape[self.mat_dim], -1)
        u, v = self.u.get_value(), self.v.get_value()
        if self.is_training():
            fixed = jax.lax.stop_gradient(mat)
            for _ in range(self.niters):
                u = _unit(fixed @ v, self.eps)
                v = _unit(fixed.T @ u, self.eps)
            self.u.set_value(u)
            self.v.set_value(v)
        return w / jnp.dot(u, mat @ v)

    def run(self, *args, **kwargs):
        variable = getattr(self.craft, self.pname)
        original = variable.get_value()
        variable.set_value(self.normalised())
        try:
            return self.craft(*args, **kwargs)
        finally:
            variable.set_value(original)

    def weights(self):
        return self.craft.weights()
