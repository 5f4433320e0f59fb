"""Engine-neutral argument checks shared by both engines' pooling crafts."""

from nebulae.astro import padding as _pad


def pool_setup(name: str, kernel: tuple, stride, padding):
    """Check the arguments; (ndim, global?, kernel, stride, [(before, after)] per dimension in natural order)."""
    ndim = len(kernel)
    if ndim not in (1, 2, 3):
        raise ValueError(f"{name} supports 1-, 2- and 3-D kernels, got kernel {kernel}")
    if kernel[-1] < 0:
        return ndim, True, None, None, None
    kernel = tuple(int(k) for k in kernel)
    if min(kernel) < 1:
        raise ValueError(f"{name} kernel sizes must be >= 1 (or kernel[-1] < 0 for global pooling), got {kernel}")
    stride = _pad.spatial(stride, ndim, "stride")
    pairs = _pad.conv_pairs(padding, ndim)
    if any(p < 0 for pair in pairs for p in pair):
        raise ValueError(f"{name} padding must be >= 0, got {padding}")
    return ndim, False, kernel, stride, pairs
