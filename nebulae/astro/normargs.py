"""Engine-neutral checks and NumPy set-up maths shared by both engines' normalisation crafts."""

import math

import numpy as np

from nebulae.astro import init as _init

SN_INIT_ITERS = 15  # power iterations at construction, as torch's spectral_norm


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


def modulate(y, gamma, beta):
    """gamma * y + beta with per-sample, per-channel (N, C) gamma and beta broadcast over spatial axes."""
    shape = gamma.shape + (1,) * (y.ndim - 2)
    return gamma.reshape(shape) * y + beta.reshape(shape)


def sn_matrix_dim(craft) -> int:
    """The weight axis that indexes outputs: 1 for transposed convolutions (as torch), else 0."""
    return 1 if type(craft).__name__ == "TransConv" else 0


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
