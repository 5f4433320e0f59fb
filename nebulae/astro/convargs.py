"""Engine-neutral size checks shared by both engines' convolution crafts."""


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
