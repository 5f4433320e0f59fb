"""Normalisation kernels on torch: torch.nn.functional's norms, a world-wide batch norm for synced BN."""

import torch
import torch.distributed as dist
import torch.nn.functional as F


def batch_norm(x, weight, bias, mean, var, count, mmnt, eps, training, update, synced):
    if update:
        count.add_(1)
    if synced and training and dist.is_initialized():
        return _world_batch_norm(x, weight, bias, mean, var, mmnt, eps, update)
    if training and not update:
        mean = var = None
    return F.batch_norm(x, mean, var, weight, bias, training, 1.0 - mmnt, eps)


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


def _world_batch_norm(x, weight, bias, running_mean, running_var, mmnt, eps, update):
    """Batch norm whose batch statistics (and their gradients) span every rank's batch."""
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
            running_mean.mul_(mmnt).add_((1.0 - mmnt) * mean.detach())
            running_var.mul_(mmnt).add_((1.0 - mmnt) * var.detach() * (n / max(n - 1.0, 1.0)))
    shape = (1, -1) + (1,) * (x.dim() - 2)
    y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + eps)
    if weight is not None:
        y = y * weight.view(shape)
    if bias is not None:
        y = y + bias.view(shape)
    return y.to(x.dtype)


def instance_norm(x, weight, bias, eps):
    return F.instance_norm(x, None, None, weight, bias, True, 0.0, eps)


def layer_norm(x, shape, weight, bias, eps):
    return F.layer_norm(x, shape, weight, bias, eps)


def group_norm(x, ngroup, weight, bias, eps):
    return F.group_norm(x, ngroup, weight, bias, eps)


def spectral_weight(weight, u, v, mat_dim, niters, eps, training):
    if weight.ndim == 1:
        return F.normalize(weight, dim=0, eps=eps)
    mat = (weight if mat_dim == 0 else weight.movedim(mat_dim, 0)).flatten(1)
    if training:
        with torch.no_grad():
            uu, vv = u, v
            for _ in range(niters):
                uu = F.normalize(torch.mv(mat, vv), dim=0, eps=eps)
                vv = F.normalize(torch.mv(mat.T, uu), dim=0, eps=eps)
            u.copy_(uu)
            v.copy_(vv)
    else:  # copies: the buffers advance in place on a later train call, after this graph saved them
        uu, vv = u.clone(), v.clone()
    return weight / torch.vdot(uu, torch.mv(mat, vv))


def call_with(craft, pname, weight, args, kwargs):
    return torch.func.functional_call(craft, {pname: weight}, args, kwargs)
