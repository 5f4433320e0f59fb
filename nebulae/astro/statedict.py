"""Engine-neutral checks for path-keyed weight dictionaries ('net/conv1/weight' -> array)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class LoadReport:
    """What an import found: keys the craft has that were not given, keys given that it lacks, shape clashes."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when every key matched with the right shape."""
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"missing keys: {', '.join(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected keys: {', '.join(self.unexpected)}")
        for key, want, got in self.mismatched:
            parts.append(f"shape mismatch at {key}: craft has {want}, given {got}")
        return "; ".join(parts) if parts else "all keys matched"


OPTIONAL = ("num_batches_tracked",)  # absent from files written before BN kept it: left as it is, as torch does


def compare(expected: dict[str, tuple], given: dict[str, np.ndarray]) -> LoadReport:
    """Compare a craft's {path: shape} with given {path: array}; a missing BN counter is not a mismatch."""
    report = LoadReport()
    for key, shape in expected.items():
        if key not in given:
            if key.rsplit("/", 1)[-1] not in OPTIONAL:
                report.missing.append(key)
        elif tuple(np.shape(given[key])) != tuple(shape):
            report.mismatched.append((key, tuple(shape), tuple(np.shape(given[key]))))
    report.unexpected = [k for k in given if k not in expected]
    return report


def within(path: str, scope: str | None) -> bool:
    """Whether `path` lies inside the parameter-path prefix `scope` (a '/' boundary, not a raw prefix)."""
    if not scope:
        return True
    scope = scope.strip("/")
    return path == scope or path.startswith(scope + "/")


def strip(path: str, scope: str | None) -> str:
    """Remove a leading scope from a path (inverse of joining scope + '/' + path)."""
    if not scope:
        return path
    scope = scope.strip("/")
    return path[len(scope) + 1 :] if path.startswith(scope + "/") else path
