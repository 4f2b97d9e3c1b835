"""The duplicate rows of a table being written.

A row is counted by the hash of all its values, as ``profile_parquet`` counts
``DISTINCT hash(a, b, ...)``. The hashes are kept in ``BUCKETS`` buckets by their top bits,
and once they take more than ``MEMORY_BYTES`` they are appended to one file per bucket in
the profile's spill folder; counting then sorts one bucket at a time, so memory stays
bounded however many rows the table has.

Most tables have a key whose values only grow in file order (an id, a timestamp), and a
table with such a column has no duplicate rows: a batch in which an integer or time column
without missing values strictly increases is not hashed at all. If no column turns out to
grow through the whole table, the rows of those batches are counted by DuckDB over the
written file instead.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from dataplat_dagster.profile import stats
from dataplat_dagster.profile.buffers import fixed_width_values
from dataplat_dagster.profile.hashes import fold_row_hashes, unique_sorted
from dataplat_dagster.profile.spill import SpillFolder

BUCKETS = 64
MEMORY_BYTES = 64 << 20
SORT_THREADS = min(4, os.cpu_count() or 1)
_BUCKET_BITS = 6  # log2(BUCKETS)
_BUCKET_EDGES = np.arange(1, BUCKETS, dtype=np.uint64) << np.uint64(64 - _BUCKET_BITS)
KEY_KINDS = ("integer", *stats.TIME_KINDS)


@dataclass(frozen=True)
class DuplicatesPart:
    increasing: dict[int, tuple]  # column index: (first, last) value, for the columns that strictly increase
    row_hashes: list[np.ndarray] | None  # by bucket; None where the batch was not hashed


class Duplicates:
    """The distinct rows of a table: by its growing key columns, else by its row hashes."""

    def __init__(self, columns: list[stats.Column], folder: SpillFolder) -> None:
        self._keys = [c.index for c in columns if c.kind in KEY_KINDS]
        self._last: dict[int, object] | None = None  # each column still growing: its last value
        self._hashes = RowHashes(folder)
        self._skipped = False

    def part(self, batch: pa.RecordBatch, column_hashes: list[np.ndarray]) -> DuplicatesPart:
        """One batch's part (any thread): read against the columns still growing when it
        is read, which only ever shrink."""
        last = self._last
        candidates = self._keys if last is None else list(last)
        increasing = {i: ends for i in candidates if (ends := _increasing(batch.column(i))) is not None}
        if increasing or not batch.num_rows:
            return DuplicatesPart(increasing, None)
        return DuplicatesPart({}, RowHashes.part(fold_row_hashes(column_hashes)))

    def add(self, part: DuplicatesPart, rows: int) -> None:
        if not rows:
            return
        if self._last is None:
            self._last = {i: last for i, (_, last) in part.increasing.items()}
        else:
            self._last = {i: part.increasing[i][1] for i, last in self._last.items()
                          if i in part.increasing and part.increasing[i][0] > last}
        if part.row_hashes is None:
            self._skipped = True
        else:
            self._hashes.add(part.row_hashes)

    def distinct_rows(self, rows: int) -> int | None:
        """The distinct rows, or None where they must be counted over the written file."""
        if self._last:
            return rows
        return None if self._skipped else self._hashes.distinct()


def _increasing(array: pa.Array) -> tuple | None:
    """(first, last) value of a column that strictly increases without missing values."""
    if array.null_count or not len(array):
        return None
    values = fixed_width_values(array)
    if len(values) > 1 and not np.all(values[1:] > values[:-1]):
        return None
    return values[0].item(), values[-1].item()


class RowHashes:
    """The distinct hashes among all those added, counted in bounded memory."""

    def __init__(self, folder: SpillFolder) -> None:
        self._buffers: list[list[np.ndarray]] = [[] for _ in range(BUCKETS)]
        self._buffered = 0
        self._folder = folder
        self._spilled = False

    @staticmethod
    def part(hashes: np.ndarray) -> list[np.ndarray]:
        """One batch's distinct hashes, split by bucket (for ``add``; any thread)."""
        hashes = unique_sorted(hashes)
        return np.split(hashes, np.searchsorted(hashes, _BUCKET_EDGES))

    def add(self, part: list[np.ndarray]) -> None:
        for bucket, hashes in zip(self._buffers, part):
            if len(hashes):
                bucket.append(hashes)
                self._buffered += hashes.nbytes
        if self._buffered > MEMORY_BYTES:
            self._spill()

    def distinct(self) -> int:
        """How many distinct hashes were added. Buckets are sorted on several threads:
        numpy's sort releases the GIL."""
        with ThreadPoolExecutor(max_workers=SORT_THREADS) as pool:
            total = sum(pool.map(self._distinct_in, range(BUCKETS)))
        self._buffers = [[] for _ in range(BUCKETS)]
        return total

    def _distinct_in(self, bucket: int) -> int:
        parts = self._buffers[bucket]
        if self._spilled and (spilled := self._folder.file(f"rows.{bucket}")).exists():
            parts = [np.fromfile(spilled, np.uint64), *parts]
        return len(unique_sorted(np.concatenate(parts))) if parts else 0

    def _spill(self) -> None:
        for bucket, parts in enumerate(self._buffers):
            if parts:
                with open(self._folder.file(f"rows.{bucket}"), "ab") as file:
                    for part in parts:
                        part.tofile(file)
        self._buffers = [[] for _ in range(BUCKETS)]
        self._buffered = 0
        self._spilled = True
