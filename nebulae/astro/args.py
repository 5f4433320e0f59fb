"""Engine-neutral argument checks shared by both engines' crafts (shapes, spans, bounds)."""


def check_same_shape(x, y, what: str) -> None:
    """Raise ValueError unless prediction `x` and target `y` have the same shape."""
    if x.shape != y.shape:
        raise ValueError(f"{what}: prediction {tuple(x.shape)} and target {tuple(y.shape)} must have the same shape")


def check_images(x, y, what: str) -> None:
    """Raise ValueError unless `x` and `y` are (N, C, H, W) images of one shape."""
    if x.ndim != 4 or x.shape != y.shape:
        raise ValueError(
            f"{what}: expected two (N, C, H, W) images of one shape, got {tuple(x.shape)} and {tuple(y.shape)}"
        )


def check_batch(x, what: str, rgb: bool = False) -> None:
    """Raise ValueError unless `x` is an (N, C, H, W) batch ((N, 3, H, W) when `rgb`)."""
    if x.ndim != 4 or (rgb and x.shape[1] != 3):
        need = "(N, 3, H, W) RGB" if rgb else "(N, C, H, W)"
        raise ValueError(f"{what} needs an {need} batch, got shape {tuple(x.shape)}")


def check_span(lo: float, hi: float, what: str, low: float | None = None, high: float | None = None):
    """Check lo <= hi within [low, high] (either bound optional); (float lo, float hi)."""
    if lo > hi or (low is not None and lo < low) or (high is not None and hi > high):
        raise ValueError(f"{what}: need {low} <= lo <= hi <= {high}, got ({lo}, {hi})")
    return float(lo), float(hi)


def check_probability(p: float, what: str) -> float:
    """Check 0 <= p <= 1; float p."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{what} p must be in [0, 1], got {p}")
    return float(p)


def crop_size(size, padding: int, what: str) -> tuple[tuple[int, int], int]:
    """Normalise a crop `size` (an int or (h, w)) and its zero `padding`; ((h, w), padding)."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if len(size) != 2 or min(size) <= 0 or padding < 0:
        raise ValueError(f"{what} needs a positive size (int or (h, w)) and padding >= 0, got {size}, {padding}")
    return (int(size[0]), int(size[1])), int(padding)


def crop_room(x, size: tuple[int, int], padding: int, what: str) -> tuple[int, int]:
    """How far (rows, cols) a `size` crop can move inside the zero-padded (N, C, H, W) batch `x`."""
    check_batch(x, what)
    rows, cols = x.shape[2] + 2 * padding - size[0], x.shape[3] + 2 * padding - size[1]
    if rows < 0 or cols < 0:
        raise ValueError(f"{what}: a {size} crop does not fit a padded batch of shape {tuple(x.shape)}")
    return rows, cols


def clip_bounds(ranges) -> tuple:
    """(lo, hi) from `ranges`: a pair (either side may be None) or one number/array r meaning (-r, r)."""
    if isinstance(ranges, (tuple, list)):
        if len(ranges) != 2:
            raise ValueError(f"Clip ranges must be (lo, hi) or one number r meaning (-r, r), got {ranges!r}")
        lo, hi = ranges
    elif ranges is None:
        raise ValueError("Clip ranges must be (lo, hi) or one number r meaning (-r, r), got None")
    else:
        lo, hi = -ranges, ranges
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo > hi:
        raise ValueError(f"Clip needs lo <= hi, got lo={lo}, hi={hi}")
    return lo, hi


def check_attention_inputs(q, k, v, pad_mask, attn_mask, craft) -> None:
    """Raise ValueError unless q, k, v and the masks have the shapes MHAttn `craft` expects."""
    q_chs, k_chs, v_chs = craft.q_chs, craft.k_chs, craft.v_chs
    for name, t, chs in (("q", q, q_chs), ("k", k, k_chs), ("v", v, v_chs)):
        if t.ndim != 3 or t.shape[-1] != chs:
            raise ValueError(f"MHAttn: {name} must be (length, batch, {chs}) (sequence-first), got {tuple(t.shape)}")
    if k.shape[:2] != v.shape[:2] or q.shape[1] != k.shape[1]:
        raise ValueError(
            f"MHAttn: k and v must share (length, batch) and q the batch, got q {tuple(q.shape)}, "
            f"k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    (L, N), S, H = q.shape[:2], k.shape[0], craft.nheads
    if attn_mask is not None and tuple(attn_mask.shape) not in ((L, S), (N * H, L, S)):
        raise ValueError(f"MHAttn: attn_mask must be {(L, S)} or {(N * H, L, S)}, got {tuple(attn_mask.shape)}")
    if pad_mask is not None and tuple(pad_mask.shape) != (N, S):
        raise ValueError(f"MHAttn: pad_mask must be (batch, key length) {(N, S)}, got {tuple(pad_mask.shape)}")


def check_float_input(floating: bool, dtype, craft: str) -> None:
    """Raise TypeError unless a parametric float craft's input is floating-point (`floating`, judged by the engine)."""
    if not floating:
        raise TypeError(
            f"{craft} needs a floating-point input, got dtype {str(dtype).removeprefix('torch.')}: cast to float "
            "first, e.g. x.astype('float32') / 255, or End()/Whiten() in the Comburant"
        )
