"""Engine-neutral argument checks shared by both engines' reduction crafts."""


def check_axis(name: str, axis, reduce: bool, single: bool = False):
    """Validate a reduction's axis/reduce pair; lists become tuples."""
    if axis is None:
        if not reduce:
            raise ValueError(f"{name}: reduce=False keeps the reduced axes, so it needs an axis (got axis=None)")
        return None
    if isinstance(axis, list):
        axis = tuple(axis)
    if single and not isinstance(axis, int):
        raise ValueError(f"{name} takes one int axis (indices along one dim), got axis={axis!r}")
    return axis


def tensordot_axes(axes):
    """tensordot's axes: an int n (last n of x with first n of y) or a pair (x axes, y axes) of ints or sequences."""
    if isinstance(axes, int):
        return axes
    if len(axes) == 2:
        a, b = axes
        a = (a,) if isinstance(a, int) else tuple(a)
        b = (b,) if isinstance(b, int) else tuple(b)
        if len(a) == len(b):
            return a, b
    raise ValueError(f"Dot axes must be an int or a pair (x axes, y axes) of equal length, got {axes!r}")
