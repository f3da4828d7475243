"""A province's register in parts, as the workers of a Dask cluster read it: a part is a block of a
county's villages in a round (`plan_parts`, from the register's village counts), the unit a worker reads,
scores, compares or builds training rows from; and what a worker process keeps between parts (its engine)
and sets once (`prepare_worker`). Scoring (`serving.province`), monitoring (`serving.province_monitor`),
training (`training.province`) and the Parquet export (`store.province_export`) cut a round alike."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from store.database import make_engine

HOUSEHOLDS_PER_PART = 20_000
"""About this many households a task: a part's frames stay far below a worker's memory."""


@dataclass(frozen=True)
class Part:
    """A block of a county's villages, read (scored, compared, turned into training rows) in one task."""

    county_id: str
    villages: tuple[str, ...]
    households: int

    @property
    def name(self) -> str:
        return f"{self.county_id}-{self.villages[0]}-{self.villages[-1]}"


def plan_parts(
    village_sizes: Mapping[str, Mapping[str, int]], households_per_part: int = HOUSEHOLDS_PER_PART
) -> list[Part]:
    """The parts of a round: each county's villages in order, cut into blocks of at least one village and
    about `households_per_part` households (`village_sizes`: county -> village -> households). Pure."""
    if households_per_part < 1:
        raise ValueError(f"households_per_part must be at least 1, got {households_per_part}")
    parts = []
    for county_id, sizes in village_sizes.items():
        block: list[str] = []
        total = 0
        for village, size in sizes.items():
            if block and total + size > households_per_part:
                parts.append(Part(county_id, tuple(block), total))
                block, total = [], 0
            block.append(village)
            total += size
        if block:
            parts.append(Part(county_id, tuple(block), total))
    return parts


MMAP_THRESHOLD_BYTES = 32 * 2**20
"""Arrays below this size come from glibc's heap, not from a fresh `mmap` each (32 MB: the ceiling glibc's
own dynamic threshold grows to in a process started without allocator settings)."""
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES
"""Free memory at the top of the heap kept for the next part rather than handed back (glibc's dynamic
setting keeps twice the mmap threshold)."""
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (glibc malloc.h)


@cache
def prepare_worker() -> bool:
    """Make this worker process allocate as a process started plainly does; once per process (each part
    calls it first). Dask's nanny starts a worker with `MALLOC_TRIM_THRESHOLD_=65536` so that freed memory
    goes back to the system at once; setting it also fixes glibc's mmap threshold at 128 KB, so every array
    above that (most columns of a part's frames) is mapped afresh and its pages faulted in again, and the
    heap is shrunk and grown again between frames. Scoring a county so cost a third more CPU, with 3.8x
    the page faults (README, "A province on a Dask cluster"). Both thresholds are set back to where glibc's
    own adjustment takes them (`MMAP_THRESHOLD_BYTES`, `TRIM_THRESHOLD_BYTES`). False where the C library
    is not glibc (nothing changed)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        mapped = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        trimmed = libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mapped and trimmed)


@cache
def worker_engine(db_url: str) -> Any:
    """The register's engine of this worker process, made once (its connections pooled between parts)."""
    return make_engine(db_url)
