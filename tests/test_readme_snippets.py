"""The README's step examples run as printed, on the bound engine."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parent.parent / "README.md"


def _block_after(marker: str) -> str:
    text = README.read_text()
    start = text.index(marker)
    match = re.compile(r"```python\n(.*?)```", re.S).search(text, start)
    return match.group(1)


def test_readme_gan_pattern_trains_each_player_and_moves_g_statistics_once(dock):
    from nebulae.astro import hangar, init

    init.seed(0)
    rng = np.random.default_rng(0)
    namespace = {
        "dock": dock,
        "hangar": hangar,
        "np": np,
        "B": 4,
        "batches": [rng.uniform(-1, 1, size=(4, 3, 64, 64)).astype(np.float32) for _ in range(2)],
    }
    exec(compile(_block_after("**GANs: one step craft per player.**"), "README.md", "exec"), namespace)
    d_step, g_step = namespace["d_step"], namespace["g_step"]
    assert d_step.optz.updates == 2 and g_step.optz.updates == 2
    counters = {k: int(v) for k, v in namespace["gan"].generator.export_weights().items() if "num_batches" in k}
    assert counters and set(counters.values()) == {2}, counters  # once per iteration, not twice
