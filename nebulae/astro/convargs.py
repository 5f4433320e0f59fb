"""Engine-neutral size checks shared by both engines' convolution and pooling crafts."""


def transposed_sizes(size, kernel, stride, pairs, dilation, out_size) -> tuple:
    """The output size of a transposed convolution, checked against `out_size` (None: the nominal size)."""
    targets = []
    for i, (n, k, s, d, (a, b)) in enumerate(zip(size, kernel, stride, dilation, pairs)):
        nominal = (n - 1) * s + d * (k - 1) + 1 - a - b
        m = nominal if out_size is None else out_size[i]
        if not nominal <= m < nominal + max(s, d) or m <= 0:
            raise ValueError(
                f"TransConv: out_size {out_size} cannot be reached from input size {tuple(size)} in dimension {i}:"
                f" with kernel {k}, stride {s}, dilation {d} and padding {(a, b)} it must be in"
                f" [{nominal}, {nominal + max(s, d) - 1}]"
            )
        targets.append(m)
    return tuple(targets)


def check_window(craft: str, size, kernel, pairs, dilation=None) -> None:
    """Raise ValueError unless the (dilated) kernel fits the padded input in every spatial dimension.

    `size` is the input's spatial size, `pairs` the (before, after) padding per dimension; shape-only, so
    it runs at trace time on JAX.
    """
    steps = dilation or (1,) * len(kernel)
    if all(n + a + b >= d * (k - 1) + 1 for n, k, d, (a, b) in zip(size, kernel, steps, pairs)):
        return
    size, kernel = tuple(int(n) for n in size), tuple(int(k) for k in kernel)
    pairs = tuple((int(a), int(b)) for a, b in pairs)
    padded = tuple(n + a + b for n, (a, b) in zip(size, pairs))
    if dilation is None:
        what, fix = f"kernel {kernel}", "a smaller kernel"
    else:
        spans = tuple(int(d) * (k - 1) + 1 for k, d in zip(kernel, dilation))
        what = f"kernel {kernel} with dilation {tuple(int(d) for d in dilation)} (span {spans})"
        fix = "a smaller kernel or dilation"
    raise ValueError(
        f"{craft}: {what} is larger than the padded input (input {size}, padding {pairs}, padded size {padded}); "
        f"use {fix}, more padding, or a larger input"
    )
