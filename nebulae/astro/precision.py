"""Mixed-precision names shared by both engines."""

from __future__ import annotations

_NAMES = {"bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16", "fp16": "float16", "half": "float16"}


def compute_dtype(name: str) -> str:
    """Canonical compute dtype name for `craft.mixp(name)`: 'bfloat16' or 'float16'."""
    key = str(name).lower().replace("torch.", "").replace("jnp.", "")
    if key not in _NAMES:
        raise ValueError(f"mixp takes 'bfloat16' (bf16) or 'float16' (fp16), got {name!r}")
    return _NAMES[key]
