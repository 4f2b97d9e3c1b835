"""The running statistics of one column for ``ProfileAccumulator``, one class per kind.

``summarize`` reads the column of one batch without changing the state (it runs on the
thread that produced the batch), ``add`` folds that part in (on one thread, in file order)
and ``stats`` gives the entries ``profile.stats`` computes with DuckDB, keyed and typed as
DuckDB returns them: ``(index, "count")``, ``(index, "min")`` and so on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataplat_dagster.profile import hll, stats
from dataplat_dagster.profile.buffers import fixed_width_values, int64_array, valid_mask
from dataplat_dagster.profile.hashes import unique_sorted, value_hashes
from dataplat_dagster.profile.pairs import PairInput

DAY_US = stats.DAY_US
# A text column is counted value by value until its counts hold this many values or bytes;
# its top values are then counted by a GROUP BY over the written file instead.
TEXT_COUNT_MAX_VALUES = 1 << 20
TEXT_COUNT_MAX_BYTES = 64 << 20


# --- Distinct values -------------------------------------------------------------------


@dataclass(frozen=True)
class DistinctPart:
    hashes: np.ndarray | None = None  # sorted, distinct
    sketch: np.ndarray | None = None


class Distinct:
    """The hashes of a column's distinct values: each batch's set while the table may still
    count them exactly (up to ``EXACT_DISTINCT_MAX_ROWS`` rows, so at most that many
    hashes), merged only when counted; a HyperLogLog sketch beyond. The sketch is changed in
    place and only grows, so a batch may read its smallest register from any thread."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] | None = []
        self.sketch: np.ndarray | None = None

    def part(self, hashes: np.ndarray, exact: bool, *, distinct: bool = False) -> DistinctPart:
        """One batch's part from the hashes of its non-null values (``distinct``: already
        sorted and distinct), as a set or a sketch."""
        if exact:
            return DistinctPart(hashes=hashes if distinct else unique_sorted(hashes))
        sketch = self.sketch
        return DistinctPart(sketch=hll.registers(hashes, floor=int(sketch.min()) if sketch is not None else 0))

    def add(self, part: DistinctPart) -> None:
        if part.sketch is not None:
            self.to_sketch()
            np.maximum(self.sketch, part.sketch, out=self.sketch)
        elif self.sketch is not None:
            np.maximum(self.sketch, hll.registers(part.hashes), out=self.sketch)
        else:
            self.parts.append(part.hashes)

    def to_sketch(self) -> None:
        if self.sketch is None:
            # A sketch of a multiset is that of its set: the parts need no merging first.
            self.sketch = hll.registers(np.concatenate([np.empty(0, np.uint64), *self.parts]))
            self.parts = None

    def count(self, exact: bool) -> int:
        if exact and self.parts is not None:
            return len(unique_sorted(np.concatenate([np.empty(0, np.uint64), *self.parts])))
        self.to_sketch()
        return hll.estimate(self.sketch)


# --- The states ------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    count: int
    distinct: DistinctPart


class ColumnState:
    def __init__(self, column: stats.Column) -> None:
        self.column = column
        self.count = 0
        self.distinct = Distinct()

    def summarize(self, array: pa.Array, hashes: np.ndarray, doubles: pa.Array | None, exact: bool,
                  priorities: np.ndarray | None) -> Part:
        raise NotImplementedError

    def add(self, part: Part) -> None:
        self.count += part.count
        self.distinct.add(part.distinct)

    def stats(self, exact: bool) -> dict:
        i = self.column.index
        return {(i, "count"): self.count, (i, "distinct"): self.distinct.count(exact)}


@dataclass(frozen=True)
class NumberPart(Part):
    non_finite: int
    low: float | int | None
    high: float | int | None
    moments: Moments
    total: int | None
    sample: Sample
    pair_input: PairInput | None  # for the batch's pairs; dropped once they are computed


class NumberState(ColumnState):
    """Integers, floats and decimals (as DuckDB's DOUBLE); floats' statistics skip NaN and
    infinities, which ``non_finite`` counts."""

    def __init__(self, column: stats.Column) -> None:
        super().__init__(column)
        self.non_finite = 0
        self.low = self.high = None
        self.moments = Moments()
        self.total = 0
        self.sample = Sample.of(np.empty(0), np.empty(0))

    def summarize(self, array, hashes, doubles, exact, priorities) -> NumberPart:
        valid = _valid(array)
        full = fixed_width_values(doubles if self.column.kind == "decimal" else array)
        finite = np.isfinite(full) if self.column.kind == "float" else None
        if finite is not None and finite.all():
            finite = None
        usable = _both(valid, finite)
        values = full if usable is None else full[usable]
        count = len(array) - array.null_count
        moments, centred = Moments.of(values)
        # Where every row has a finite value, the deviations serve the pairs as they are.
        if usable is None:
            pair_input = PairInput(full, None, None, (moments.shift, moments.offset, centred))
        else:
            pair_input = PairInput(full.astype(np.float64, copy=False), valid, finite)
        return NumberPart(
            count=count,
            distinct=self.distinct.part(_present(hashes, valid), exact),
            non_finite=count - len(values),
            low=values.min().item() if len(values) else None,
            high=values.max().item() if len(values) else None,
            moments=moments,
            total=_exact_sum(values) if self.column.kind == "integer" else None,
            sample=Sample.of(_present(priorities, usable), values, below=self.sample.threshold),
            pair_input=pair_input,
        )

    def add(self, part: NumberPart) -> None:
        super().add(part)
        self.non_finite += part.non_finite
        self.low, self.high = _lower(self.low, part.low), _higher(self.high, part.high)
        self.moments.merge(part.moments)
        if part.total is not None:
            self.total += part.total
        self.sample = self.sample.merge(part.sample)

    def stats(self, exact: bool) -> dict:
        i, n = self.column.index, self.moments.n
        mean = (self.total / n if self.column.kind == "integer" else self.moments.mean) if n else None
        result = super().stats(exact) | {
            (i, "min"): self.low,
            (i, "max"): self.high,
            (i, "mean"): mean,
            (i, "std"): math.sqrt(self.moments.m2 / (n - 1)) if n >= 2 else None,
            (i, "quantiles"): self.sample.quantiles(),
        }
        if self.column.kind == "float":
            result[(i, "non_finite")] = self.non_finite
        return result


@dataclass(frozen=True)
class TimePart(Part):
    low: int | None
    high: int | None


class TimeState(ColumnState):
    """Dates and timestamps, in microseconds since the epoch (DuckDB's ``epoch_us``)."""

    def __init__(self, column: stats.Column) -> None:
        super().__init__(column)
        self.low = self.high = None

    def summarize(self, array, hashes, doubles, exact, priorities) -> TimePart:
        valid = _valid(array)
        # Days (of a date) or microseconds: the extremes are scaled, not every value.
        values = _present(fixed_width_values(array), valid)
        unit = DAY_US if pa.types.is_date32(array.type) else 1
        return TimePart(
            count=len(values),
            distinct=self.distinct.part(_present(hashes, valid), exact),
            low=int(values.min()) * unit if len(values) else None,
            high=int(values.max()) * unit if len(values) else None,
        )

    def add(self, part: TimePart) -> None:
        super().add(part)
        self.low, self.high = _lower(self.low, part.low), _higher(self.high, part.high)

    def stats(self, exact: bool) -> dict:
        i = self.column.index
        return super().stats(exact) | {(i, "min"): self.low, (i, "max"): self.high}


@dataclass(frozen=True)
class BooleanPart(Part):
    trues: int


class BooleanState(ColumnState):
    # DuckDB's hashes of false and true, in this (ascending) order.
    HASHES = value_hashes(pa.Array.from_buffers(pa.bool_(), 2, [None, pa.py_buffer(b"\x02")]))

    def __init__(self, column: stats.Column) -> None:
        super().__init__(column)
        self.trues = 0

    def summarize(self, array, hashes, doubles, exact, priorities) -> BooleanPart:
        count = len(array) - array.null_count
        trues = pc.sum(array).as_py() or 0
        # The distinct values are those of the two that occur: no need to hash every row.
        present = self.HASHES[[count > trues, trues > 0]]
        return BooleanPart(count, self.distinct.part(present, exact, distinct=True), trues)

    def add(self, part: BooleanPart) -> None:
        super().add(part)
        self.trues += part.trues

    def stats(self, exact: bool) -> dict:
        counts = {True: self.trues, False: self.count - self.trues}
        entries = [{"key": key, "value": count} for key, count in counts.items() if count]
        return super().stats(exact) | {(self.column.index, "top"): entries}


@dataclass(frozen=True)
class TextCounts:
    """One batch's value counts: its distinct hashes (sorted) and their counts; where each
    is in the counts known when the batch was read (``known``), and the text of the others."""

    known: np.ndarray
    hashes: np.ndarray
    counts: np.ndarray
    at: np.ndarray
    found: np.ndarray
    new_values: pa.Array


@dataclass(frozen=True)
class TextPart(Part):
    counts: TextCounts | None
    min_length: int | None
    max_length: int | None


class TextState(ColumnState):
    """Text: lengths in characters, and every value's count while they fit in memory.

    The counts are kept by value hash; a batch carries the text of only the values that
    were not known yet (``hashes`` is replaced, never changed in place, so a batch reads it
    from any thread), and a known value's length was measured when it was new."""

    def __init__(self, column: stats.Column) -> None:
        super().__init__(column)
        self.min_length = self.max_length = None
        self.counted = True
        self.hashes = np.empty(0, np.uint64)
        self.counts = np.empty(0, np.int64)
        self.values = pa.nulls(0, column.arrow_type)  # not pa.array: see buffers.py

    def summarize(self, array, hashes, doubles, exact, priorities) -> TextPart:
        valid = _valid(array)
        present = _present(hashes, valid)
        # A batch summarized while another gives the counts up is counted for nothing.
        if self.counted:
            known = self.hashes
            distinct, counts = _run_lengths(np.sort(present))
            at, found = _locate(distinct, known)
            first = _first_positions(present, distinct[~found])
            new_values = array.take(int64_array(first if valid is None else np.flatnonzero(valid)[first]))
            counted, measured = TextCounts(known, distinct, counts, at, found, new_values), new_values
        else:
            distinct, counted, measured = unique_sorted(present), None, array
        lengths = pc.min_max(pc.utf8_length(measured)).as_py()
        return TextPart(len(present), self.distinct.part(distinct, exact, distinct=True), counted,
                        lengths["min"], lengths["max"])

    def add(self, part: TextPart) -> None:
        super().add(part)
        self.min_length = _lower(self.min_length, part.min_length)
        self.max_length = _higher(self.max_length, part.max_length)
        if self.counted and part.counts is not None:
            self._merge_counts(part.counts)

    def stats(self, exact: bool) -> dict:
        i = self.column.index
        return super().stats(exact) | {(i, "min_length"): self.min_length, (i, "max_length"): self.max_length}

    def top_entries(self) -> list[dict]:
        """The ``TOP_VALUES`` most frequent values, ties by value (``profile_parquet``'s
        order), as ``[{"key": value, "value": count}]``."""
        top = stats.TOP_VALUES
        chosen = np.arange(len(self.counts))
        if len(self.counts) > top:  # every value as frequent as the tenth, for its ties
            chosen = np.flatnonzero(self.counts >= np.partition(self.counts, -top)[-top])
        table = pa.table({"value": self.values.take(int64_array(chosen)), "count": int64_array(self.counts[chosen])})
        table = table.sort_by([("count", "descending"), ("value", "ascending")]).slice(0, top)
        return [{"key": value, "value": count} for value, count in zip(*table.to_pydict().values())]

    def _merge_counts(self, batch: TextCounts) -> None:
        # Where no other batch added values since this one was read, it has already
        # found its values among the known ones.
        at, found = (batch.at, batch.found) if batch.known is self.hashes else _locate(batch.hashes, self.hashes)
        self.counts[at[found]] += batch.counts[found]
        if not found.all():
            new = batch.hashes[~found]
            merged = np.concatenate([self.hashes, new])
            order = np.argsort(merged, kind="stable")
            unknown = batch.hashes[~batch.found]  # a superset of ``new``, in the order of new_values
            new_values = batch.new_values.take(int64_array(np.searchsorted(unknown, new)))
            self.counts = np.concatenate([self.counts, batch.counts[~found]])[order]
            self.values = pa.concat_arrays([self.values, new_values]).take(int64_array(order))
            self.hashes = merged[order]
        if len(self.hashes) > TEXT_COUNT_MAX_VALUES or self.values.nbytes > TEXT_COUNT_MAX_BYTES:
            self._give_up_counting()

    def _give_up_counting(self) -> None:
        self.counted = False
        self.hashes, self.counts, self.values = np.empty(0, np.uint64), np.empty(0, np.int64), None


# --- Moments and samples ---------------------------------------------------------------


@dataclass
class Moments:
    """Count, mean and sum of squared deviations; merged with Chan's formulas. The mean is
    kept as an offset from ``shift`` (a value of the column): batch means of large values
    (1e9 + 0.3) then differ by exact offsets, not by the rounding of each."""

    n: int = 0
    shift: float = 0.0
    offset: float = 0.0
    m2: float = 0.0

    @property
    def mean(self) -> float:
        return self.shift + self.offset

    @staticmethod
    def of(values: np.ndarray) -> tuple[Moments, np.ndarray]:
        """The moments of ``values``, and their deviations from their mean (as float64)."""
        if not len(values):
            return Moments(), np.empty(0)
        x = values.astype(np.float64, copy=False)
        # Deviations from the first value: exactly zero for a constant column, whose mean
        # is then exactly its value and its deviation exactly zero (as with DuckDB's).
        shift = float(x[0])
        deviations = x - shift
        offset = float(deviations.mean())
        deviations -= offset
        return Moments(len(x), shift, offset, float(np.einsum("i,i->", deviations, deviations))), deviations

    def merge(self, other: Moments) -> None:
        if not other.n:
            return
        if not self.n:
            self.shift = other.shift
        n = self.n + other.n
        delta = (other.shift - self.shift) + other.offset - self.offset
        self.m2 += other.m2 + delta * delta * self.n * other.n / n
        self.offset += delta * other.n / n
        self.n = n


@dataclass
class Sample:
    """A uniform sample of at most ``QUANTILE_SAMPLE`` values: those with the smallest
    random priorities. Below that many values it holds them all, and its quantiles are
    exact, as ``reservoir_quantile``'s are."""

    priorities: np.ndarray
    values: np.ndarray = field(repr=False)

    @property
    def threshold(self) -> float:
        """No value of a priority at or above this can enter the sample any more (it only
        goes down, so a batch may read it from any thread)."""
        return float(self.priorities.max()) if len(self.priorities) >= stats.QUANTILE_SAMPLE else 1.0

    @staticmethod
    def of(priorities: np.ndarray, values: np.ndarray, below: float = 1.0) -> Sample:
        if below < 1.0:
            keep = np.flatnonzero(priorities < below)
            priorities, values = priorities[keep], values[keep]
        size = stats.QUANTILE_SAMPLE
        if len(values) <= size:
            return Sample(priorities, values)
        keep = np.argpartition(priorities, size - 1)[:size]
        return Sample(priorities[keep], values[keep])

    def merge(self, other: Sample) -> Sample:
        if not len(self.values) or not len(other.values):
            return other if len(other.values) else self
        priorities = np.concatenate([self.priorities, other.priorities])
        return Sample.of(priorities, np.concatenate([self.values, other.values]))

    def quantiles(self) -> list | None:
        """The values at DuckDB's ranks: ``floor((n - 1) * q)`` of the sorted sample."""
        if not len(self.values):
            return None
        ordered = np.sort(self.values)
        return [ordered[int((len(ordered) - 1) * q)].item() for q in stats.QUANTILES.values()]


# --- Arrow to numpy --------------------------------------------------------------------


def _valid(array: pa.Array) -> np.ndarray | None:
    """Where the array has a value; None when it has one everywhere."""
    return None if array.null_count == 0 else valid_mask(array)


def _both(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None or b is None:
        return b if a is None else a
    return a & b


def _present(values: np.ndarray | None, where: np.ndarray | None) -> np.ndarray | None:
    return values if where is None or values is None else values[where]


def _exact_sum(values: np.ndarray) -> int:
    """The sum of integers without overflow: high and low 32 bits are summed apart."""
    values = values.astype(np.int64, copy=False)
    return int(np.sum(values >> 32)) * (1 << 32) + int(np.sum(values & 0xFFFFFFFF))


def _run_lengths(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of a sorted array and how often each occurs."""
    if not len(ordered):
        return ordered, np.empty(0, np.int64)
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    return ordered[starts], np.diff(np.append(starts, len(ordered)))


def _locate(values: np.ndarray, sorted_set: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``values`` is, or would go, in ``sorted_set``, and whether it is there."""
    at = np.searchsorted(sorted_set, values)
    if not len(sorted_set):
        return at, np.zeros(len(values), bool)
    return at, sorted_set[np.minimum(at, len(sorted_set) - 1)] == values


def _first_positions(hashes: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """For each of the sorted ``wanted`` hashes, the first position where ``hashes`` has it."""
    if not len(wanted):
        return np.empty(0, np.intp)
    at = np.minimum(np.searchsorted(wanted, hashes), len(wanted) - 1)
    rows = np.flatnonzero(wanted[at] == hashes)
    first = np.full(len(wanted), len(hashes), np.intp)
    np.minimum.at(first, at[rows], rows)
    return first


def _lower(a, b):
    return b if a is None else a if b is None else min(a, b)


def _higher(a, b):
    return b if a is None else a if b is None else max(a, b)
