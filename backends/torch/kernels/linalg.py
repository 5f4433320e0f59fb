"""Linear-algebra and spectral kernels on torch: torch.linalg / torch.fft, in the canonical signs of the specs."""

import torch
import torch.nn.functional as F


def qr(m, reduced):
    q, r = torch.linalg.qr(m, mode="reduced" if reduced else "complete")
    diag = torch.diagonal(r, dim1=-2, dim2=-1)
    sign = torch.where(diag < 0, -1.0, 1.0).to(m.dtype)
    sign = F.pad(sign, (0, r.shape[-2] - diag.shape[-1]), value=1.0)
    return q * sign.unsqueeze(-2), r * sign.unsqueeze(-1)


def eigh(m, vectors):
    if not vectors:
        return torch.linalg.eigvalsh(m)
    values, vecs = torch.linalg.eigh(m)
    top = torch.gather(vecs, -2, vecs.abs().argmax(dim=-2, keepdim=True))
    return values, vecs * torch.where(top < 0, -1.0, 1.0).to(vecs.dtype)


def max_eigen(m, niters, start, eps):
    n = m.shape[-1]
    x = torch.remainder(torch.arange(1, n + 1, dtype=m.dtype, device=m.device) * start, 1.0) + 1.0
    x = (x / torch.linalg.vector_norm(x)).expand(m.shape[:-1])
    for _ in range(niters):
        x = torch.matmul(m, x.unsqueeze(-1)).squeeze(-1)
        x = x / (torch.linalg.vector_norm(x, dim=-1, keepdim=True) + eps)
    return torch.sum(x * torch.matmul(m, x.unsqueeze(-1)).squeeze(-1), dim=-1), x


def fftn(m, axes, ortho):
    return torch.fft.fftn(m, dim=axes, norm="ortho" if ortho else "backward")


def ifftn(ft, axes, ortho):
    return torch.fft.ifftn(ft, dim=axes, norm="ortho" if ortho else "backward")


def polar(ft, eps):
    real, imag = ft.real, ft.imag
    return torch.sqrt(real * real + imag * imag + eps), torch.atan2(imag, real + eps)
