"""Which samples make up each batch: per-epoch order, rank sharding, batch positions and per-sample seeds.

A Tank's batches form one endless stream of positions p = epoch * MPE + mile. The batch at p is a
pure function of (seed, epoch, mile, rank, world, batch size, dataset length): the epoch's order is
`numpy.random.default_rng` of (seed, epoch) permuting all N samples (the identity when not
shuffling). Rank sharding cuts that order into global chunks of `world * batch_size`; rank r takes
the r-th of `world` near-equal pieces of each chunk (exactly `batch_size` samples in a full chunk),
so every sample of the epoch goes to one rank only. What is left out of an epoch:
- `in_same_size=True`: the last N mod (world * batch_size) samples of the epoch's order (a different
  set each epoch when shuffling), so every batch of every rank is full;
- `in_same_size=False`: nothing, unless fewer than `world` samples remain after the full chunks; those
  are left out so that all ranks run the same number of miles. The last batch of each rank then holds
  floor or ceil of (remainder / world) samples.
"""

from __future__ import annotations

import numpy as np
from numpy.random.bit_generator import ISeedSequence

# Tags that keep the shuffle stream and the per-sample streams apart (SeedSequence pads with zeros).
_ORDER, _SAMPLE = 1, 2


class Plan:
    """The batch layout of a Tank: `mpe` batches per epoch and `indices(position)` for any position."""

    def __init__(
        self,
        length: int,
        batch_size: int,
        shuffle: bool = True,
        in_same_size: bool = True,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
    ):
        if not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if not isinstance(world, int | np.integer) or world < 1:
            raise ValueError(f"world (the number of ranks) must be a positive integer, got {world!r}")
        if not isinstance(rank, int | np.integer) or not 0 <= rank < world:
            raise ValueError(f"rank must be an integer in [0, {world}) for world {world}, got {rank!r}")
        self.length, self.batch_size, self.shuffle = int(length), int(batch_size), bool(shuffle)
        self.in_same_size, self.seed, self.rank, self.world = bool(in_same_size), int(seed), int(rank), int(world)
        chunk = self.world * self.batch_size
        full, rest = divmod(self.length, chunk)
        self.mpe = full + (1 if not self.in_same_size and rest >= self.world else 0)
        if self.mpe == 0:
            need = f"{chunk} (batch_size {self.batch_size} x world {self.world})" if in_same_size else str(world)
            raise ValueError(f"{self.length} samples are too few for one batch per rank: at least {need} are needed")
        self._cached: tuple[int, np.ndarray] | None = None

    def order(self, epoch: int) -> np.ndarray:
        """All sample indices of `epoch` in serving order (before rank sharding)."""
        if self._cached is not None and self._cached[0] == epoch:
            return self._cached[1]
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch, 0, _ORDER]).permutation(self.length)
        else:
            order = np.arange(self.length)
        self._cached = (epoch, order)
        return order

    def indices(self, position: int) -> tuple[int, int, np.ndarray]:
        """(epoch, mile, sample indices of this rank's batch) at stream `position`."""
        epoch, mile = divmod(int(position), self.mpe)
        chunk = self.world * self.batch_size
        piece = self.order(epoch)[mile * chunk : (mile + 1) * chunk]
        if len(piece) == chunk:
            return epoch, mile, piece[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
        return epoch, mile, np.array_split(piece, self.world)[self.rank]


def sample_rngs(seed: int, epoch: int, indices: np.ndarray) -> list[np.random.Generator]:
    """One fresh augmentation Generator (PCG64) per sample index of `epoch`: the same wherever it is drawn.

    Sample i's 256 seed bits are a splitmix64 hash of i under a key drawn from SeedSequence((seed,
    epoch)): distinct samples get distinct seeds, and it costs ~1 us per sample instead of the ~15 us of
    a SeedSequence each. (Their `spawn()` is unavailable; draw from them directly.)
    """
    key = np.random.SeedSequence([seed, epoch, 0, _SAMPLE]).generate_state(4, np.uint64)
    x = np.atleast_1d(np.asarray(indices, np.uint64)) * np.uint64(4)
    words = np.stack([_splitmix(key[j] + _splitmix(x + np.uint64(j))) for j in range(4)], axis=1)
    return [np.random.Generator(np.random.PCG64(_Words(w))) for w in words]


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The augmentation Generator of one sample (as `sample_rngs` makes it)."""
    return sample_rngs(seed, epoch, np.array([index]))[0]


def _splitmix(x: np.ndarray) -> np.ndarray:
    """splitmix64 on a uint64 array (a bijection with good avalanche; arrays wrap silently)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class _Words(ISeedSequence):
    """Hands PCG64 its four seed words directly (skipping SeedSequence's hashing)."""

    __slots__ = ("words",)

    def __init__(self, words: np.ndarray):
        self.words = words

    def generate_state(self, n_words: int, dtype=np.uint32) -> np.ndarray:
        return self.words[:n_words].astype(dtype, copy=False)
