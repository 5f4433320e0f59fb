"""Linear-algebra and spectral crafts on torch: QR, Eigen, MaxEigen, FFT, IFFT (torch.linalg / torch.fft).

Decompositions are returned in one canonical form on both engines (LAPACK backends differ in signs):
QR has diag(R) >= 0; each eigenvector has its largest-magnitude component positive. Batched
(..., n, n) inputs work throughout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nebulae.astro.tables import GOLDEN

from .craft import Craft

__all__ = ["QR", "Eigen", "MaxEigen", "FFT", "IFFT"]


class QR(Craft):
    """QR decomposition m = Q R, returned as (Q, R) with diag(R) >= 0; `reduced` gives the thin (economic) form.

    In the complete form of a tall m (M > N) the trailing M - N columns of Q are any orthonormal basis of
    the complement and may differ between engines and devices.
    """

    def __init__(self, scope: str = "QR"):
        super().__init__(scope)

    def run(self, m, reduced: bool = False):
        q, r = torch.linalg.qr(m, mode="reduced" if reduced else "complete")
        diag = torch.diagonal(r, dim1=-2, dim2=-1)
        sign = torch.where(diag < 0, -1.0, 1.0).to(m.dtype)
        sign = F.pad(sign, (0, r.shape[-2] - diag.shape[-1]), value=1.0)
        return q * sign.unsqueeze(-2), r * sign.unsqueeze(-1)


def _canonical_vectors(vectors):
    """Flip each eigenvector (column) so that its largest-magnitude component is positive."""
    top = torch.gather(vectors, -2, vectors.abs().argmax(dim=-2, keepdim=True))
    return vectors * torch.where(top < 0, -1.0, 1.0).to(vectors.dtype)


class Eigen(Craft):
    """Eigen-decomposition of a SYMMETRIC matrix: (ascending eigenvalues, eigenvectors as columns), or values only.

    Only the lower triangle is read (symmetry is not checked). General (non-symmetric) matrices are not
    offered: their eigenpairs are complex and JAX computes them on the CPU only.
    """

    def __init__(self, scope: str = "EIGEN"):
        super().__init__(scope)

    def run(self, m, in_pair: bool = True):
        if not in_pair:
            return torch.linalg.eigvalsh(m)
        values, vectors = torch.linalg.eigh(m)
        return values, _canonical_vectors(vectors)


class MaxEigen(Craft):
    """Dominant eigenpair of a SYMMETRIC matrix by `niters` power iterations: value, or (value, vector).

    The value is the Rayleigh quotient of the last unit-norm iterate, which is the vector returned. The
    start vector is deterministic (1 + frac(i * 0.618...), normalised) and made on the input's device.
    Symmetry is not checked.
    """

    def __init__(self, niters: int = 3, scope: str = "MAXEIGEN"):
        super().__init__(scope)
        if niters < 1:
            raise ValueError(f"MaxEigen needs niters >= 1, got {niters}")
        self.niters = int(niters)

    def run(self, m, in_pair: bool = True):
        n = m.shape[-1]
        x = torch.remainder(torch.arange(1, n + 1, dtype=m.dtype, device=m.device) * GOLDEN, 1.0) + 1.0
        x = (x / torch.linalg.vector_norm(x)).expand(m.shape[:-1])
        for _ in range(self.niters):
            x = torch.matmul(m, x.unsqueeze(-1)).squeeze(-1)
            x = x / (torch.linalg.vector_norm(x, dim=-1, keepdim=True) + 1e-10)
        value = torch.sum(x * torch.matmul(m, x.unsqueeze(-1)).squeeze(-1), dim=-1)
        return (value, x) if in_pair else value


class FFT(Craft):
    """Discrete Fourier transform of the last `dim` dims: call (m, normal=False, in_pair=True) -> (ft, amp, phase).

    `ft` is complex; amplitude = sqrt(|ft|^2 + eps) and phase = atan2(imag, real + eps), so both stay
    differentiable at ft = 0; `normal` uses the orthonormal scaling; `in_pair=False` returns ft alone.
    """

    def __init__(self, dim: int, eps: float = 1e-10, scope: str = "FFT"):
        super().__init__(scope)
        if dim < 1:
            raise ValueError(f"FFT needs dim >= 1 (how many trailing dims to transform), got {dim}")
        self.dim, self.eps = int(dim), float(eps)
        self.axes = tuple(range(-self.dim, 0))

    def run(self, m, normal: bool = False, in_pair: bool = True):
        ft = torch.fft.fftn(m, dim=self.axes, norm="ortho" if normal else "backward")
        if not in_pair:
            return ft
        real, imag = ft.real, ft.imag
        amplitude = torch.sqrt(real * real + imag * imag + self.eps)
        phase = torch.atan2(imag, real + self.eps)
        return ft, amplitude, phase


class IFFT(Craft):
    """Inverse of FFT over the last `dim` dims: call (ft, normal=False) -> the REAL part of the inverse transform.

    `normal` must match the FFT's; the imaginary part (zero up to rounding for the spectrum of a real
    signal) is dropped.
    """

    def __init__(self, dim: int, scope: str = "IFFT"):
        super().__init__(scope)
        if dim < 1:
            raise ValueError(f"IFFT needs dim >= 1 (how many trailing dims to transform), got {dim}")
        self.dim = int(dim)
        self.axes = tuple(range(-self.dim, 0))

    def run(self, ft, normal: bool = False):
        return torch.fft.ifftn(ft, dim=self.axes, norm="ortho" if normal else "backward").real
