"""Augmentation kernels on torch: dm-pix's colour maths operation for operation, draws from torch's generator."""

import torch
import torch.nn.functional as F

from nebulae.astro import init as _init


def augment_stream():
    # the seed is drawn only to keep the initialiser stream in step with JAX's; torch's global RNG draws
    return _init.draw_seed(), None


def rand_flags(stream, x, p):
    return torch.rand(x.shape[0], device=x.device) < p


def rand_uniform(stream, x, lo, hi):
    return torch.rand(x.shape[0], device=x.device) * (hi - lo) + lo


def rand_offsets(stream, x, rows, cols):
    n = x.shape[0]
    top = torch.randint(0, rows + 1, (n,), device=x.device)
    left = torch.randint(0, cols + 1, (n,), device=x.device)
    return torch.stack([top, left], dim=1)


def flip_lr(x, flags):
    return torch.where(flags.reshape(-1, 1, 1, 1), x.flip(-1), x)


def crop_at(x, offsets, size, padding):
    p, (h, w) = padding, size
    padded = F.pad(x, (p, p, p, p)) if p else x
    offsets = offsets.to(device=x.device, dtype=torch.long)
    rows = offsets[:, 0:1] + torch.arange(h, device=x.device)  # (N, h)
    cols = offsets[:, 1:2] + torch.arange(w, device=x.device)  # (N, w)
    batch = torch.arange(x.shape[0], device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def _per_sample(values, x, ndim: int = 4):
    return values.to(x.dtype).reshape((-1,) + (1,) * (ndim - 1))


def brighten(x, shift):
    return torch.clamp(x + _per_sample(shift, x), 0.0, 1.0)


def contrast(x, factor):
    mean = x.mean(dim=(-2, -1), keepdim=True)
    return torch.clamp(_per_sample(factor, x) * (x - mean) + mean, 0.0, 1.0)


def _rgb_to_hsv(r, g, b):
    value = torch.maximum(torch.maximum(r, g), b)
    range_ = value - torch.minimum(torch.minimum(r, g), b)
    safe_value = torch.where(value > 0, value, torch.ones_like(value))
    safe_range = torch.where(range_ > 0, range_, torch.ones_like(range_))
    saturation = torch.where(value > 0, range_ / safe_value, torch.zeros_like(value))
    norm = 1.0 / (6.0 * safe_range)
    hue = torch.where(value == g, norm * (b - r) + 2.0 / 6.0, norm * (r - g) + 4.0 / 6.0)
    hue = torch.where(value == r, norm * (g - b), hue)
    hue = torch.where(range_ > 0, hue, torch.zeros_like(hue)) + (hue < 0).to(hue.dtype)
    return hue, saturation, value


def _hsv_to_rgb(hue, saturation, value):
    dh = torch.remainder(hue, 1.0) * 6.0
    dr = torch.clamp(torch.abs(dh - 3.0) - 1.0, 0.0, 1.0)
    dg = torch.clamp(2.0 - torch.abs(dh - 2.0), 0.0, 1.0)
    db = torch.clamp(2.0 - torch.abs(dh - 4.0), 0.0, 1.0)
    one_minus_s = 1.0 - saturation
    return torch.stack([value * (one_minus_s + saturation * d) for d in (dr, dg, db)], dim=1)


def saturate(x, factor):
    hue, saturation, value = _rgb_to_hsv(x[:, 0], x[:, 1], x[:, 2])
    return _hsv_to_rgb(hue, torch.clamp(saturation * _per_sample(factor, x, 3), 0.0, 1.0), value)


def shift_hue(x, shift):
    hue, saturation, value = _rgb_to_hsv(x[:, 0], x[:, 1], x[:, 2])
    return _hsv_to_rgb(hue + _per_sample(shift, x, 3), saturation, value)
