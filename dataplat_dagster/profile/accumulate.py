"""The profile of a table computed while it is written, in one pass over its batches.

``profile_parquet`` reads a Parquet file back with DuckDB, in several passes. A table that
is being written (a CSV parsed into Parquet) goes through memory once anyway:
``ProfileAccumulator`` looks at each batch on its way to the file and keeps, per column,
what the profile needs (counts, extremes, moments, a uniform sample for the quantiles,
the hashes of the distinct values, the counts of each text value), the co-moments of every
pair of numeric columns and the hash of every row (none where a key column shows there
are no duplicates, ``rows.py``). Afterwards only what needs the final extremes or the final
choice of columns is read back, from those columns of the file just written: the
histograms, the contingency tables of Cramér's V, and the top values of a text column with
too many values to count in memory. Keeping the histograms' values instead (8 bytes a
value, to a temp file) cost as much CPU as reading them back, on the benchmark's machine.

The results are those of ``profile_parquet`` (a test compares them): values are hashed by
DuckDB's ``hash()``, as its ``count(DISTINCT)`` and ``approx_count_distinct`` do, and the
row hash is folded from the column hashes as DuckDB folds ``hash(a, b, ...)``; quantiles
are read from a uniform sample of ``QUANTILE_SAMPLE`` values at the ranks
``reservoir_quantile`` reads; histograms use the same bins and the same arithmetic. Sums of
floating-point numbers are added in another order, so means, deviations and correlations
may differ in their last digits.

``summarize`` reads one batch and may run on any thread (the CSV reader calls it on the
thread that parsed the batch); ``add`` folds its result in, on one thread, in file order.
Wide tables (more than ``COLUMNS_PER_QUERY`` columns: the sets of distinct hashes would
take 8 bytes per value and column) and column types other than numbers, booleans, dates,
microsecond timestamps and text are left to ``profile_parquet`` (``for_schema`` returns
None).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from dataplat_dagster.profile import stats
from dataplat_dagster.profile.buffers import fixed_width_values, floats_with_nan
from dataplat_dagster.profile.columns import BooleanState, ColumnState, NumberState, TextState, TimeState
from dataplat_dagster.profile.hashes import value_hashes
from dataplat_dagster.profile.pairs import PairMoments
from dataplat_dagster.profile.rows import Duplicates, DuplicatesPart
from dataplat_dagster.profile.spill import SpillFolder

# Histogram columns are read back in batches of this many rows, and binned one column per
# thread (numpy's arithmetic releases the GIL).
READ_BACK_ROWS = 1 << 18
BINNING_THREADS = min(4, os.cpu_count() or 1)


class ProfileAccumulator:
    """The profile of one table, fed batch by batch (see the module's docstring)."""

    def __init__(self, schema: pa.Schema) -> None:
        self.columns = stats.table_columns(schema)
        self.rows = 0
        self._spill = SpillFolder()
        self._states = [_state(column) for column in self.columns]
        self._numbers = [c.index for c in self.columns if c.kind in stats.NUMBER_KINDS]
        self._pairs = PairMoments(len(self._numbers))
        self._duplicates = Duplicates(self.columns, self._spill)
        # Batches are hashed on the threads that read them: one DuckDB thread each.
        self._database = duckdb.connect(":memory:", config={"threads": 1})
        self._cursors = threading.local()
        self._cursor_lock = threading.Lock()
        self._hash_query = _hash_query(self.columns)

    @staticmethod
    def for_schema(schema: pa.Schema) -> ProfileAccumulator | None:
        """An accumulator for tables of ``schema``, or None where ``profile_parquet`` must do."""
        if not 0 < len(schema) <= stats.COLUMNS_PER_QUERY or not all(_supported(f.type) for f in schema):
            return None
        return ProfileAccumulator(schema)

    @property
    def exact_distinct(self) -> bool:
        return self.rows <= stats.EXACT_DISTINCT_MAX_ROWS

    def summarize(self, batch: pa.RecordBatch, seed: Sequence[int]) -> BatchSummary:
        """What ``add`` needs of ``batch``; ``seed`` (the batch's place in the file) draws
        the batch's share of the quantile sample, so that a file always gets the same one."""
        hashes, doubles = self._hash(batch)
        # A table whose rows so far and this batch's already pass the limit will not have
        # exact distinct counts: the batch's values go straight into the sketches.
        exact = self.rows + batch.num_rows <= stats.EXACT_DISTINCT_MAX_ROWS
        priorities = np.random.default_rng(list(seed)).random(batch.num_rows) if self._numbers else None
        parts = [
            state.summarize(batch.column(i), hashes[i], doubles.get(i), exact, priorities)
            for i, state in enumerate(self._states)
        ]
        pairs = PairMoments.of([parts[i].pair_input for i in self._numbers])
        for i in self._numbers:  # the batch's values are not kept until the summary is added
            parts[i] = dataclasses.replace(parts[i], pair_input=None)
        return BatchSummary(batch.num_rows, self._duplicates.part(batch, hashes), parts, pairs)

    def add(self, summary: BatchSummary) -> None:
        self.rows += summary.rows
        for state, part in zip(self._states, summary.parts):
            state.add(part)
        if not self.exact_distinct:
            for state in self._states:
                state.distinct.to_sketch()
        self._pairs.merge(summary.pairs)
        self._duplicates.add(summary.duplicates, summary.rows)

    def finish(self, path: str | os.PathLike, *, sample_rows: int = 20) -> dict:
        """The profile of the table, written to the Parquet file at ``path``: what
        ``profile_parquet(path, sample_rows=sample_rows)`` returns."""
        path = os.fspath(path)
        try:
            distinct_rows = self._duplicates.distinct_rows(self.rows)
            plan = stats.Plan.of(self.columns, self._stats(), self.exact_distinct)
        finally:
            self.close()
        result = {**self._pairs.correlations(self._numbers), **self._text_counts()}
        try:
            contingency = _read_back(path, plan, result, stats.MEMORY_LIMIT, count_rows=distinct_rows is None)
        except duckdb.OutOfMemoryException:
            contingency = _read_back(path, plan, result, stats.FALLBACK_MEMORY_LIMIT, count_rows=distinct_rows is None)
        plan.stats["duplicates"] = self.rows - result.pop("distinct_rows", distinct_rows)
        plan.fill(result)
        return stats.profile_dict(plan.scan(contingency), path, sample_rows)

    def close(self) -> None:
        """Free the hashing connection and the spilled row hashes (also when the table is
        not profiled after all)."""
        self._database.close()
        self._spill.remove()

    def _hash(self, batch: pa.RecordBatch) -> tuple[list[np.ndarray], dict[int, pa.Array]]:
        """DuckDB's ``hash()`` of every column, and the decimal columns as DuckDB's DOUBLE
        (the values the histograms read back). Fixed-width columns are hashed in numpy;
        text and decimals by a query on a connection of this thread."""
        hashes = [value_hashes(batch.column(c.index)) for c in self.columns]
        if not self._hash_query:
            return hashes, {}
        cursor = getattr(self._cursors, "cursor", None)
        if cursor is None:
            with self._cursor_lock:  # a connection is not to be used by two threads at once
                cursor = self._cursors.cursor = self._database.cursor()
        table = cursor.from_arrow(batch).select(self._hash_query).to_arrow_table()
        for name, column in zip(table.column_names, table.columns):
            if name.startswith("h"):
                hashes[int(name[1:])] = fixed_width_values(column.combine_chunks())
        doubles = {int(name[1:]): column.combine_chunks() for name, column in zip(table.column_names, table.columns)
                   if name.startswith("x")}
        return hashes, doubles

    def _stats(self) -> dict:
        result = {"rows": self.rows}
        for state in self._states:
            result.update(state.stats(self.exact_distinct))
        return result

    def _text_counts(self) -> dict:
        return {
            (state.column.index, "top"): state.top_entries()
            for state in self._states if isinstance(state, TextState) and state.counted
        }


@dataclass(frozen=True)
class BatchSummary:
    rows: int
    duplicates: DuplicatesPart
    parts: list
    pairs: PairMoments


def _state(column: stats.Column) -> ColumnState:
    if column.kind in stats.NUMBER_KINDS:
        return NumberState(column)
    if column.kind in stats.TIME_KINDS:
        return TimeState(column)
    if column.kind == "boolean":
        return BooleanState(column)
    return TextState(column)


def _supported(arrow_type: pa.DataType) -> bool:
    """The types whose statistics are computed here as DuckDB computes them."""
    return (
        pa.types.is_signed_integer(arrow_type)
        or arrow_type in (pa.uint8(), pa.uint16(), pa.uint32(), pa.float32(), pa.float64(), pa.bool_(), pa.date32())
        or pa.types.is_decimal128(arrow_type)
        or (pa.types.is_timestamp(arrow_type) and arrow_type.unit == "us")
        or pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
    )


def _hash_query(columns: list[stats.Column]) -> str:
    """What DuckDB computes of each batch: the hashes that numpy does not, and the DOUBLE
    of each decimal."""
    exprs = [f"hash({c.sql}) AS h{c.index}" for c in columns if c.kind in ("text", "decimal")]
    exprs += [f"{c.value_sql} AS x{c.index}" for c in columns if c.kind == "decimal"]
    return ", ".join(exprs)


def _read_back(path: str, plan: stats.Plan, result: dict, memory_limit: str, *, count_rows: bool) -> dict:
    """What needs the whole table's statistics, read back from the written file: the
    histograms, the top values of text columns that were not counted, the distinct rows
    (with ``count_rows``) and the contingency cells of Cramér's V (returned)."""
    uncounted = [c for c in plan.columns if c.kind == "text" and (c.index, "top") not in result]
    if not plan.bins and not uncounted and not count_rows and len(plan.cramers_v.chosen) < 2:
        return {}
    with stats.connect(memory_limit) as con:
        result.update(_histograms(con, path, plan))
        if uncounted:
            result.update(stats.top_counts(con, path, uncounted))
        if count_rows:
            result["distinct_rows"] = stats.distinct_rows(con, path, plan.columns)
        return stats.contingency_cells(con, path, plan.cramers_v.chosen)


def _histograms(con, path: str, plan: stats.Plan) -> dict:
    """The bin counts of every histogram, from the values DuckDB reads back as DOUBLE (as
    ``profile_parquet``'s histograms do), binned with the same arithmetic in numpy, a
    column per thread."""
    if not plan.bins:
        return {}
    indices = list(plan.bins)
    counts = {i: np.zeros(plan.bins[i].count, np.int64) for i in indices}
    select = ", ".join(f"{plan.columns[i].value_sql}::DOUBLE AS v{i}" for i in indices)
    relation = con.sql(f"SELECT {select} FROM read_parquet(?)", params=[path])

    def count(batch: pa.RecordBatch, index: int) -> np.ndarray:
        column = batch.column(f"v{index}")
        values = floats_with_nan(column)
        complete = column.null_count == 0 and plan.columns[index].kind != "float"
        return plan.bins[index].counts(values, all_finite=complete)

    with ThreadPoolExecutor(max_workers=BINNING_THREADS) as pool:
        for batch in _arrow_reader(relation):
            for index, found in zip(indices, pool.map(count, itertools.repeat(batch), indices)):
                counts[index] += found
    return {(i, "histogram"): [{"key": k, "value": int(n)} for k, n in enumerate(c) if n] for i, c in counts.items()}


def _arrow_reader(relation) -> pa.RecordBatchReader:
    # DuckDB 2 renamed fetch_record_batch to to_arrow_reader.
    reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_record_batch
    return reader(READ_BACK_ROWS)
