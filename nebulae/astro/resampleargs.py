"""Engine-neutral interpolation constants, mode tables and argument checks shared by both engines' resampling."""

from nebulae.astro.padargs import BORDER, CONSTANT, REFLECT

NEAREST = 0
LINEAR = 1
CUBIC = 2
AREA = 3
INTERP_NAMES = {"nearest": NEAREST, "linear": LINEAR, "cubic": CUBIC, "area": AREA}
ZOOM_MODES = {  # interpolation -> {input rank: F.interpolate mode}
    NEAREST: {3: "nearest", 4: "nearest", 5: "nearest"},
    LINEAR: {3: "linear", 4: "bilinear", 5: "trilinear"},
    CUBIC: {4: "bicubic"},
    AREA: {3: "area", 4: "area", 5: "area"},
}
SAMPLE_MODES = {NEAREST: "nearest", LINEAR: "bilinear", CUBIC: "bicubic"}
SAMPLE_PADS = {CONSTANT: "zeros", BORDER: "border", REFLECT: "reflection"}
SAMPLE_PAD_NAMES = {
    "constant": CONSTANT, "zeros": CONSTANT, "border": BORDER, "replicate": BORDER, "reflect": REFLECT,
    "reflection": REFLECT,
}  # fmt: skip


def interp_code(interp, allowed: tuple, what: str) -> int:
    """NEAREST/LINEAR/CUBIC/AREA or their names -> the constant, checked against what `what` supports."""
    code = INTERP_NAMES.get(interp.lower()) if isinstance(interp, str) else interp
    if code not in allowed:
        names = ", ".join(n for n, c in INTERP_NAMES.items() if c in allowed)
        raise ValueError(f"{what} interp must be one of {names} (or their constants), got {interp!r}")
    return code


def sample_pad_code(pad_mode) -> int:
    """CONSTANT (zeros) / BORDER / REFLECT or their names -> the constant."""
    code = SAMPLE_PAD_NAMES.get(pad_mode.lower()) if isinstance(pad_mode, str) else pad_mode
    if code not in SAMPLE_PADS:
        raise ValueError(f"pad_mode must be CONSTANT (zeros), BORDER or REFLECT, got {pad_mode!r}")
    return code


def zoom_target(size, scale) -> tuple:
    """Check Zoom's size / scale (exactly one given); (size tuple or int or None, scale tuple or float or None)."""
    size = None if size is None or size == () else size
    scale = None if scale is None or scale == () else scale
    if (size is None) == (scale is None):
        raise ValueError(f"Zoom needs exactly one of size and scale, got size={size!r}, scale={scale!r}")
    if size is not None:
        size = int(size) if isinstance(size, int) else tuple(int(s) for s in size)
        if min((size,) if isinstance(size, int) else size) < 1:
            raise ValueError(f"Zoom size must be positive, got {size}")
    else:
        scale = float(scale) if isinstance(scale, (int, float)) else tuple(float(s) for s in scale)
        if min((scale,) if isinstance(scale, float) else scale) <= 0:
            raise ValueError(f"Zoom scale must be positive, got {scale}")
    return size, scale


def scale_factor(scale) -> int:
    """A SubPix / SurPix factor: an int or a square (r, r) tuple."""
    if isinstance(scale, int):
        r = scale
    else:
        scale = tuple(int(s) for s in scale)
        if len(set(scale)) != 1:
            raise ValueError(f"pixel shuffling needs a square factor (r, r), got {scale}")
        r = scale[0]
    if r < 1:
        raise ValueError(f"pixel shuffling factor must be >= 1, got {scale}")
    return r
