"""Normalisation crafts on torch. `mmnt` is the running-average decay (seed convention): torch momentum = 1 - mmnt.

All norms use eps 1e-5. Inputs are (N, C, *spatial) as in torch; `dim` (1, 2, 3) names the
spatial rank a norm is meant for, like torch's BatchNorm1d/2d/3d.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

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


def _affine(shape, resilient: bool) -> tuple[nn.Parameter | None, nn.Parameter | None]:
    """(weight of ones, bias of zeros) of `shape` when resilient, else (None, None)."""
    if not resilient:
        return None, None
    return parameter(np.ones(shape, np.float32)), parameter(np.zeros(shape, np.float32))


class BN(Craft):
    """Batch normalisation over (N, C, *spatial) with running statistics, as torch.nn.BatchNorm1d/2d/3d.

    Train mode normalises with the batch statistics (more than one value per channel needed) and
    folds them into `running_mean` / `running_var` (decay `mmnt`), counting the updates in
    `num_batches_tracked` (int64 scalar, exported like torch's); eval mode uses the running
    statistics. `gear(..., stats=False)` keeps batch statistics but leaves the running ones alone.

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
        self.weight = parameter(torch.ones(out_chs).numpy()) if resilient else None
        self.bias = parameter(torch.zeros(out_chs).numpy()) if resilient else None
        self.register_buffer("running_mean", torch.zeros(out_chs))
        self.register_buffer("running_var", torch.ones(out_chs))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        self._synced = False  # set by Multiverse.sync(sync_bn=True): statistics over the world's batch

    def run(self, x):
        _check_channels(x, self.out_chs, "BN")
        training, update = gearbox.gear_of(self, self.training)
        synced = self._synced and training and dist.is_initialized()
        if training and not synced:  # synced: the statistics span every rank's batch
            _check_batch_values(x, "BN")
        if update:
            self.num_batches_tracked.add_(1)
        if synced:
            return _world_batch_norm(self, x, update)
        mean, var = (self.running_mean, self.running_var) if update or not training else (None, None)
        return F.batch_norm(x, mean, var, self.weight, self.bias, training, 1.0 - self.mmnt, EPS)

    def weights(self):
        return self.weight


class _WorldSum(torch.autograd.Function):
    """Sum over all ranks, differentiable: the gradient of each rank's input is the sum of all ranks' gradients."""

    @staticmethod
    def forward(ctx, t):
        out = t.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def _world_batch_norm(bn: BN, x, update: bool):
    """Batch norm whose batch statistics (and their gradients) span every rank's batch; `update`: fold into the
    running statistics."""
    axes = [0, *range(2, x.dim())]
    xf = x.float()
    local = torch.stack([xf.sum(axes), (xf * xf).sum(axes)])
    count = torch.tensor([x.numel() / x.shape[1]], dtype=torch.float64, device=x.device)
    total = _WorldSum.apply(local)
    dist.all_reduce(count)
    n = float(count.item())
    mean = total[0] / n
    var = total[1] / n - mean * mean
    if update:
        with torch.no_grad():
            bn.running_mean.mul_(bn.mmnt).add_((1.0 - bn.mmnt) * mean.detach())
            bn.running_var.mul_(bn.mmnt).add_((1.0 - bn.mmnt) * var.detach() * (n / max(n - 1.0, 1.0)))
    shape = (1, -1) + (1,) * (x.dim() - 2)
    y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + EPS)
    if bn.weight is not None:
        y = y * bn.weight.view(shape) + bn.bias.view(shape)
    return y.to(x.dtype)


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
        return F.instance_norm(x, None, None, self.weight, self.bias, True, 0.0, EPS)

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
        return F.layer_norm(x, self.norm_shape, self.weight, self.bias, EPS)

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
        return F.group_norm(x, self.ngroup, self.weight, self.bias, EPS)

    def weights(self):
        return self.weight


class _Modulator(Craft):
    """The 2-layer MLP (in -> in//2 -> out, ReLU) that maps a condition to per-channel scales or shifts."""

    def __init__(self, in_chs: int, out_chs: int, scope: str = "MODULATOR"):
        super().__init__(scope)
        self.fc1 = Dense(in_chs, in_chs // 2)
        self.fc2 = Dense(in_chs // 2, out_chs)

    def run(self, z):
        return self.fc2(F.relu(self.fc1(z)))


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
        if not isinstance(weight, nn.Parameter):
            raise TypeError(f"SN: {type(craft).__name__} has no trainable parameter {pname!r} to normalise")
        if int(niters) < 1:
            raise ValueError(f"SN: niters must be at least 1, got {niters}")
        self.craft, self.niters, self.eps, self.pname = craft, int(niters), float(eps), pname
        self.mat_dim = _sn_matrix_dim(craft)
        if weight.ndim > 1:
            u, v = _sn_initial_uv(weight.detach().cpu().numpy(), self.mat_dim, self.eps)
            self.register_buffer("u", torch.from_numpy(u).to(weight.device))
            self.register_buffer("v", torch.from_numpy(v).to(weight.device))
        else:
            self.u = self.v = None

    def normalised(self) -> torch.Tensor:
        """The wrapped parameter divided by its spectral norm (advancing u, v in train mode)."""
        w = getattr(self.craft, self.pname)
        if w.ndim == 1:
            return F.normalize(w, dim=0, eps=self.eps)
        mat = (w if self.mat_dim == 0 else w.movedim(self.mat_dim, 0)).flatten(1)
        if self.is_training():
            with torch.no_grad():
                u, v = self.u, self.v
                for _ in range(self.niters):
                    u = F.normalize(torch.mv(mat, v), dim=0, eps=self.eps)
                    v = F.normalize(torch.mv(mat.T, u), dim=0, eps=self.eps)
                self.u.copy_(u)
                self.v.copy_(v)
        else:
            u, v = self.u.clone(), self.v.clone()
        return w / torch.vdot(u, torch.mv(mat, v))

    def run(self, *args, **kwargs):
        return torch.func.functional_call(self.craft, {self.pname: self.normalised()}, args, kwargs)

    def weights(self):
        return self.craft.weights()
