"""Linear algebra and spectra: QR, Eigen, MaxEigen, FFT and IFFT, as torch.linalg / torch.fft compute them.

Decompositions are returned in one canonical form on both engines (LAPACK backends differ in signs):
QR has diag(R) >= 0; each eigenvector has its largest-magnitude component positive. Batched
(..., n, n) inputs work throughout.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["QR", "Eigen", "MaxEigen", "FFT", "IFFT"]

GOLDEN = 0.6180339887498949  # MaxEigen's start vector: 1 + frac(i * GOLDEN), no symmetry to stall on
POWER_EPS = 1e-10  # added to each iterate's norm, so a zero matrix gives a zero vector, not NaN


class Kernels(Protocol):
    def qr(self, m: Any, reduced: bool) -> tuple[Any, Any]:
        """(Q, R) of m = Q R with diag(R) >= 0, complete or (`reduced`) thin, batched over leading dims."""

    def eigh(self, m: Any, vectors: bool) -> Any:
        """Ascending eigenvalues of the symmetric m read from its lower triangle, and (`vectors`) the
        eigenvectors as columns, each with its largest-magnitude component positive: values or (values, vectors)."""

    def max_eigen(self, m: Any, niters: int, start: float, eps: float) -> tuple[Any, Any]:
        """(Rayleigh quotient, unit vector) after `niters` power iterations on the symmetric m from the
        normalised vector 1 + frac(i * start), i = 1..n, made on m's device; each iterate is divided by
        its norm + eps."""

    def fftn(self, m: Any, axes: tuple[int, ...], ortho: bool) -> Any:
        """The complex discrete Fourier transform over `axes` ('ortho' scaling when `ortho`, else 'backward')."""

    def ifftn(self, ft: Any, axes: tuple[int, ...], ortho: bool) -> Any:
        """The complex inverse discrete Fourier transform over `axes` (scaled as `fftn`)."""

    def polar(self, ft: Any, eps: float) -> tuple[Any, Any]:
        """(sqrt(|ft|^2 + eps), atan2(imag, real + eps)) of a complex array: amplitude and phase."""


def check_dims(craft: str, dim: int) -> int:
    """How many trailing dims a transform covers: an int >= 1."""
    if dim < 1:
        raise ValueError(f"{craft} needs dim >= 1 (how many trailing dims to transform), got {dim}")
    return int(dim)


class QR:
    """QR decomposition m = Q R, as torch.linalg.qr: call (m, reduced=False) -> (Q, R) with diag(R) >= 0.

    `reduced` gives the thin (economic) form. In the complete form of a tall m (M > N) the trailing
    M - N columns of Q are any orthonormal basis of the complement and may differ between engines and
    devices.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "QR"):
        super().__init__(scope)

    def run(self, m, reduced: bool = False):
        return self.ops.qr(m, bool(reduced))


class Eigen:
    """Eigen-decomposition of a SYMMETRIC matrix, as torch.linalg.eigh: call (m, in_pair=True).

    Returns (ascending eigenvalues, eigenvectors as columns), or the values only when `in_pair` is
    False. Only the lower triangle is read (symmetry is not checked). General (non-symmetric) matrices
    are not offered: their eigenpairs are complex and JAX computes them on the CPU only.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "EIGEN"):
        super().__init__(scope)

    def run(self, m, in_pair: bool = True):
        return self.ops.eigh(m, bool(in_pair))


class MaxEigen:
    """Dominant eigenpair of a SYMMETRIC matrix by power iteration: call (m, in_pair=True) -> (value, vector).

    The value is the Rayleigh quotient of the last unit-norm iterate, which is the vector returned
    (`in_pair=False`: the value alone). The start vector is deterministic (1 + frac(i * 0.618...),
    normalised) and made on the input's device. Symmetry is not checked.

    Args:
        niters: the number of power iterations (>= 1).
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, niters: int = 3, scope: str = "MAXEIGEN"):
        super().__init__(scope)
        if niters < 1:
            raise ValueError(f"MaxEigen needs niters >= 1, got {niters}")
        self.niters = int(niters)

    def run(self, m, in_pair: bool = True):
        value, vector = self.ops.max_eigen(m, self.niters, GOLDEN, POWER_EPS)
        return (value, vector) if in_pair else value


class FFT:
    """Discrete Fourier transform of the last `dim` dims, as torch.fft.fftn: call (m, normal=False, in_pair=True).

    Returns (ft, amplitude, phase): `ft` is complex; amplitude = sqrt(|ft|^2 + eps) and phase =
    atan2(imag, real + eps), so both stay differentiable at ft = 0; `normal` uses the orthonormal
    scaling; `in_pair=False` returns ft alone.

    Args:
        dim: how many trailing dims to transform (>= 1).
        eps: the small number that keeps amplitude and phase differentiable at ft = 0.
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, dim: int, eps: float = 1e-10, scope: str = "FFT"):
        super().__init__(scope)
        self.dim, self.eps = check_dims("FFT", dim), float(eps)
        self.axes = tuple(range(-self.dim, 0))

    def run(self, m, normal: bool = False, in_pair: bool = True):
        ft = self.ops.fftn(m, self.axes, bool(normal))
        if not in_pair:
            return ft
        return (ft, *self.ops.polar(ft, self.eps))


class IFFT:
    """Inverse of FFT over the last `dim` dims: call (ft, normal=False) -> the REAL part of the inverse transform.

    `normal` must match the FFT's; the imaginary part (zero up to rounding for the spectrum of a real
    signal) is dropped.

    Args:
        dim: how many trailing dims to transform (>= 1).
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, dim: int, scope: str = "IFFT"):
        super().__init__(scope)
        self.dim = check_dims("IFFT", dim)
        self.axes = tuple(range(-self.dim, 0))

    def run(self, ft, normal: bool = False):
        return self.ops.ifftn(ft, self.axes, bool(normal)).real
