"""Engine-neutral padding-mode constants and Pad argument checks shared by both engines."""

CONSTANT = 10
REFLECT = 11
BORDER = 12
_MODES = {CONSTANT: "constant", REFLECT: "reflect", BORDER: "replicate"}
_NAMES = {"constant": "constant", "reflect": "reflect", "replicate": "replicate", "border": "replicate"}


def mode_name(mode) -> str:
    """CONSTANT/REFLECT/BORDER or 'constant'/'reflect'/'replicate' ('border') -> the F.pad mode name."""
    name = _MODES.get(mode) if isinstance(mode, int) else _NAMES.get(str(mode).lower())
    if name is None:
        raise ValueError(
            f"padding mode must be CONSTANT, REFLECT, BORDER or 'constant'/'reflect'/'replicate', got {mode!r}"
        )
    return name


def fpad_list(padding) -> tuple[int, ...] | int:
    """Check a Pad argument: an int (every spatial dimension) or an even-length list in F.pad order."""
    if isinstance(padding, int):
        return padding
    padding = tuple(int(p) for p in padding)
    if not padding or len(padding) % 2:
        raise ValueError(
            f"Pad needs an int or an even-length list in F.pad order (last dimension first), got {padding}"
        )
    return padding
