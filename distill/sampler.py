"""The deterministic data order: the items of step ``s`` are a function of ``(seed, s)``
only, so a resumed run sees exactly the batches it would have seen, and every rank of a
distributed run takes its own slice of the same global batch."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np


@functools.lru_cache(maxsize=8)
def _epoch_permutation(seed: int, epoch: int, items: int) -> np.ndarray:
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, 0xDA7A])).permutation(items)


def global_batch_indices(step: int, batch_size: int, *, seed: int, items: int | None = None) -> list[int]:
    """Dataset indices of the global batch of ``step`` (0-based).

    With ``items=None`` every step gets fresh items (``step * batch_size + j``); otherwise
    the ``items`` distinct items are visited in a new seeded permutation every epoch.
    """
    start = step * batch_size
    if items is None:
        return list(range(start, start + batch_size))
    out = []
    for pos in range(start, start + batch_size):
        epoch, offset = divmod(pos, items)
        out.append(int(_epoch_permutation(seed, epoch, items)[offset]))
    return out


class StepBatches:
    """Batch sampler: this rank's slice of each global batch, from ``start`` to ``stop``."""

    def __init__(
        self, *, start: int, stop: int, batch_size: int, seed: int, items: int | None, rank: int, world: int
    ) -> None:
        self.start, self.stop = start, stop
        self.batch_size, self.seed, self.items = batch_size, seed, items
        self.rank, self.world = rank, world
        self.per_rank = batch_size // world

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            idx = global_batch_indices(step, self.batch_size, seed=self.seed, items=self.items)
            yield idx[self.rank * self.per_rank : (self.rank + 1) * self.per_rank]
