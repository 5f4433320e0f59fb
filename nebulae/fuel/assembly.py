"""Turning a batch position into a batch: fetch each sample, prepare it, collate them (in any process).

An `Assembler` holds everything a worker needs (the source, the plan, the user's functions) and
`assembler.batch(position)` is the whole job of one batch, so a worker receives a position and
sends back one collated batch. The default fetch reads every spec'd column cast to its dtype; the
default collate stacks each leaf into a C-contiguous NumPy array. A source that can `gather` a whole
batch at once (in-memory arrays) does so when none of fetch_fn, prep_fn and collate_fn is given:
the same arrays, without a dict per sample.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from nebulae.fuel.csvspec import parse_dtype
from nebulae.fuel.sampling import Plan, sample_rngs


def takes_rng(fn: Callable) -> bool:
    """Whether to call `prep_fn(item, rng)`: it needs two positional arguments, or its second is named `rng`.

    `prep(item, rng)`, `prep(item, rng=None)` and `prep(*args)` receive the generator;
    `prep(item)` and `prep(item, size=224)` do not.
    """
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    return len(required) >= 2 or (len(positional) >= 2 and positional[1].name == "rng")


class DefaultFetch:
    """fetch_fn(data, idx) reading every column of `specs` and casting it to its dtype ('str' stays str)."""

    def __init__(self, specs: Mapping[str, str]):
        self.casts = [(name, _base(dtype)) for name, dtype in specs.items()]

    def __call__(self, data, idx: int) -> dict:
        row = data.row(idx) if hasattr(data, "row") else None  # a map-style dataset: one call per sample
        item = {}
        for name, base in self.casts:
            value = data[name][idx] if row is None else row[name]
            if row is not None and base != "str":
                item[name] = np.array(value, dtype=base)  # a copy: prep_fn must not write into the user's data
            elif base == "str":
                item[name] = value if isinstance(value, str) else str(value)
            elif isinstance(value, np.ndarray):
                fresh = value.flags.owndata and value.dtype == base  # e.g. a decoded image
                item[name] = value if fresh else value.astype(base)  # never hand out a view of a cached blob
            else:
                item[name] = np.asarray(value, dtype=base)
        return item


def _base(dtype: str) -> str:
    """The NumPy dtype a column is cast to: the base of a fuel dtype, or a NumPy dtype of in-memory data."""
    try:
        return parse_dtype(dtype).base
    except ValueError:
        return np.dtype(dtype).str  # e.g. '<u8' or '<c8' from an in-memory array (not a fuel dtype)


def default_collate(items: Sequence, where: str = "batch"):
    """Stack a list of samples leaf by leaf: dicts and tuples/lists recurse, everything else becomes one array."""
    first = items[0]
    if isinstance(first, Mapping):
        return {key: default_collate([it[key] for it in items], f"{where}[{key!r}]") for key in first}
    if isinstance(first, (tuple, list)) and not isinstance(first, str):
        return type(first)(default_collate(list(leaf), f"{where}[{i}]") for i, leaf in enumerate(zip(*items)))
    if isinstance(first, str):
        return np.array(items)
    shapes = {np.shape(it) for it in items}
    if len(shapes) > 1:
        raise ValueError(
            f"cannot stack {where}: samples have different shapes {sorted(shapes)[:4]}; "
            "resize them in prep_fn or pass a collate_fn that pads"
        )
    return np.ascontiguousarray(np.stack(items))


class Assembler:
    """One batch from one stream position: indices from the plan, then fetch -> prep -> collate."""

    def __init__(
        self,
        source,
        plan: Plan,
        fetch_fn: Callable | None,
        prep_fn: Callable | None,
        collate_fn: Callable | None,
        specs: Mapping[str, str],
    ):
        self.source, self.plan = source, plan
        self.fetch_fn = fetch_fn if fetch_fn is not None else DefaultFetch(specs)
        self.prep_fn, self.collate_fn = prep_fn, collate_fn or default_collate
        self.prep_rng = prep_fn is not None and takes_rng(prep_fn)
        self.gather = fetch_fn is None and prep_fn is None and collate_fn is None and hasattr(source, "gather")

    def batch(self, position: int):
        """The collated batch at stream `position` (epoch = position // MPE, mile = position % MPE)."""
        epoch, _, indices = self.plan.indices(position)
        if self.gather:
            return self.source.gather(indices, self.fetch_fn.casts)
        fetch, prep, source = self.fetch_fn, self.prep_fn, self.source
        items = [fetch(source, index) for index in indices.tolist()]
        if prep is not None and self.prep_rng:
            items = [prep(item, rng) for item, rng in zip(items, sample_rngs(self.plan.seed, epoch, indices))]
        elif prep is not None:
            items = [prep(item) for item in items]
        return self.collate_fn(items)
