"""ver2num: a version string as a number that orders versions correctly."""

from __future__ import annotations

import re

__all__ = ["ver2num"]

_RELEASE = re.compile(r"\s*v?(\d+(?:\.\d+)*)")


def ver2num(version: str, vbits: int = 2) -> int:
    """The release part of `version` as an integer with `vbits` decimal digits for each of three parts
    (major, minor, patch; missing ones are 0), so versions with different part counts order right:
    '2.1' -> 20100 > '1.7.0' -> 10700. Suffixes ('a0', '.dev1', '+cu128') are ignored."""
    match = _RELEASE.match(str(version))
    if match is None:
        raise ValueError(f"ver2num: {version!r} does not start with a version number like '1.2.3'")
    if isinstance(vbits, bool) or not isinstance(vbits, int) or vbits < 1:
        raise ValueError(f"ver2num: vbits must be a positive integer, got {vbits!r}")
    parts = [int(p) for p in match.group(1).split(".")[:3]]
    parts += [0] * (3 - len(parts))
    limit = 10**vbits
    if any(p >= limit for p in parts):
        raise ValueError(f"ver2num: {version!r} has a part >= {limit}; use a larger vbits")
    number = 0
    for p in parts:
        number = number * limit + p
    return number
