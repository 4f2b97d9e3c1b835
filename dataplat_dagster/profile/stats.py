"""Profile a Parquet file: per-column statistics, histograms, top values, correlations.

DuckDB reads the file out of core in two passes: aggregate queries for the statistics
of every column, then for the histograms (which need the min/max of the first pass), the
top values of low-cardinality columns and the Pearson pairs; text columns with many values
get their exact top values from one GROUP BY each (one column read each, in the same
statement), and the contingency counts of Cramér's V come from one GROUP BY GROUPING SETS. Each pass runs one query per
``COLUMNS_PER_QUERY`` columns, so a narrow file is read twice in all and a wide one costs
time in proportion to its columns. DuckDB gets a small memory limit and spills its hash
tables to a private temp folder, so memory stays about flat as files grow. The result is a
plain, JSON-serialisable dict (see ``profile_parquet``).

A file being written is profiled in one pass instead (``accumulate.py``); both compute the
same per-column statistics, from which ``Plan`` makes the column profiles, chooses the
columns to correlate and plans the histograms, and ``profile_dict`` assembles the result.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dataplat_dagster.errors import InputError

QUANTILES = {"5%": 0.05, "25%": 0.25, "50%": 0.5, "75%": 0.75, "95%": 0.95}
# Quantiles come from a uniform reservoir sample of this many values per column: exact up
# to that many rows, within about 1% of rank beyond, and five times faster than a t-digest
# (approx_quantile), which was the costliest part of the first scan.
QUANTILE_SAMPLE = 10_000
HISTOGRAM_BINS = 20
TOP_VALUES = 10
# Text columns with at most this many values get all their counts in the second scan.
FULL_COUNT_MAX_DISTINCT = 1000
# Pairwise correlations grow with the square of the columns: only this many columns are
# paired, chosen by the rules below, which the profile states with the counts.
MAX_PEARSON_COLUMNS = 30
MAX_CRAMERS_V_COLUMNS = 10
MAX_CRAMERS_V_DISTINCT = 50
PEARSON_RULE = f"the first {MAX_PEARSON_COLUMNS} numeric columns that vary, in table order"
CRAMERS_V_RULE = (
    f"the first {MAX_CRAMERS_V_COLUMNS} text or boolean columns with 2 to {MAX_CRAMERS_V_DISTINCT} "
    "values that repeat, in table order"
)
# Every distinct count and histogram holds a hash table of a few MiB in DuckDB, whatever the
# rows: one query over all 300 columns of a one-row file ran out of even the fallback limit.
# Queries over this many columns each keep memory bounded, and as each reads only its own
# columns, the time grows in proportion to the columns.
COLUMNS_PER_QUERY = 32
# Below this many rows an exact COUNT(DISTINCT) is cheap; above it HyperLogLog is used.
EXACT_DISTINCT_MAX_ROWS = 1_000_000
MAX_SAMPLE_TEXT = 200
# DuckDB's own memory: small, so that the big hash tables (the distinct rows above all)
# spill to disk and the profile's memory stays about flat as files grow. Aggregates that
# cannot spill are retried once with the larger limit.
MEMORY_LIMIT = "256MB"
FALLBACK_MEMORY_LIMIT = "2GB"

NUMBER_KINDS = ("integer", "float", "decimal")
TIME_KINDS = ("date", "timestamp")
CATEGORY_KINDS = ("text", "boolean")
DAY_US = 86_400_000_000
EPOCH = dt.datetime(1970, 1, 1)


@dataclass(frozen=True)
class Column:
    index: int
    name: str
    kind: str
    arrow_type: pa.DataType

    @property
    def sql(self) -> str:
        return quote_identifier(self.name)

    @property
    def value_sql(self) -> str:
        """The column as the type its statistics are computed on."""
        if self.kind == "decimal":
            return f"{self.sql}::DOUBLE"
        if self.kind in TIME_KINDS:
            return f"epoch_us({self.sql})"
        if self.kind == "text" and not _is_string(self.arrow_type):
            return f"{self.sql}::VARCHAR"
        return self.sql


def profile_parquet(path: str | os.PathLike, *, sample_rows: int = 20) -> dict:
    """Profile the Parquet file at ``path``.

    Returns ``{"summary", "columns", "correlations", "sample"}``; percentages are 0-100,
    dates and timestamps ISO strings, NaN and infinities None. Float statistics skip
    NaN and infinities (counted in ``non_finite``). ``distinct`` is exact up to
    ``EXACT_DISTINCT_MAX_ROWS`` rows and a HyperLogLog estimate above. Correlations pair
    a limited number of columns: ``correlations["selection"]`` says, per method, the rule,
    the limit and how many columns qualified and were paired.
    """
    path = os.fspath(path)
    schema, num_rows = _read_schema(path)
    columns = table_columns(schema)
    exact_distinct = num_rows <= EXACT_DISTINCT_MAX_ROWS
    try:
        scan = _scan(path, columns, exact_distinct, MEMORY_LIMIT)
    except duckdb.OutOfMemoryException:
        scan = _scan(path, columns, exact_distinct, FALLBACK_MEMORY_LIMIT)
    return profile_dict(scan, path, sample_rows)


def table_columns(schema: pa.Schema) -> list[Column]:
    return [Column(i, f.name, arrow_kind(f.type), f.type) for i, f in enumerate(schema)]


def profile_dict(scan: Scan, path: str | os.PathLike, sample_rows: int) -> dict:
    """The profile of a scanned file, as ``profile_parquet`` returns it."""
    return {
        "summary": _summary(scan.stats["rows"], scan.stats["duplicates"], scan.profiles),
        "columns": scan.profiles,
        "correlations": {
            "pearson": _pearson(scan.pearson.chosen, scan.stats),
            "cramers_v": _cramers_v_matrix(scan.contingency),
            "selection": {"pearson": scan.pearson.describe(), "cramers_v": scan.cramers_v.describe()},
        },
        "sample": read_sample(path, sample_rows),
    }


@dataclass(frozen=True)
class _Selection:
    """The columns a pairwise measure uses, out of those that qualified for it."""

    eligible: list[Column]
    limit: int
    rule: str

    @property
    def chosen(self) -> list[Column]:
        return self.eligible[: self.limit]

    def describe(self) -> dict:
        return {
            "rule": self.rule,
            "max_columns": self.limit,
            "eligible": len(self.eligible),
            "columns": len(self.chosen),
            "left_out": len(self.eligible) - len(self.chosen),
        }


@dataclass(frozen=True)
class Scan:
    stats: dict
    profiles: list[dict]
    pearson: _Selection
    cramers_v: _Selection
    contingency: dict


@dataclass(frozen=True)
class Plan:
    """What the per-column statistics decide: the column profiles so far, the columns each
    pairwise measure uses, and the histogram bins. ``stats`` holds the statistics keyed as
    ``_column_exprs`` names them (plus ``"rows"`` and ``"duplicates"``)."""

    columns: list[Column]
    stats: dict
    profiles: list[dict]
    pearson: _Selection
    cramers_v: _Selection
    bins: dict[int, _Bins]

    @staticmethod
    def of(columns: list[Column], stats: dict, exact_distinct: bool) -> Plan:
        profiles = [_column_profile(c, stats, exact_distinct) for c in columns]
        pearson = _Selection(_pearson_columns(columns, profiles), MAX_PEARSON_COLUMNS, PEARSON_RULE)
        cramers_v = _Selection(_cramers_v_columns(columns, profiles, stats), MAX_CRAMERS_V_COLUMNS, CRAMERS_V_RULE)
        bins = {c.index: b for c in columns if (b := _Bins.plan(c, _raw_range(c, stats))) is not None}
        return Plan(columns, stats, profiles, pearson, cramers_v, bins)

    def counts_all_values(self, column: Column) -> bool:
        """Whether a text column is few-valued enough for all its counts in one aggregate."""
        return self.profiles[column.index]["distinct"] <= FULL_COUNT_MAX_DISTINCT

    def fill(self, result: dict) -> None:
        """Put the histogram bin counts (``(i, "histogram")``: ``[{"key": bin, "value":
        count}]``), the text columns' value counts (``(i, "top")``, the same shape) and the
        Pearson coefficients (``("corr", i, j)``) of ``result`` in place."""
        self.stats.update({key: value for key, value in result.items() if isinstance(key, tuple) and key[0] == "corr"})
        for index, bins in self.bins.items():
            self.profiles[index]["histogram"] = bins.histogram(self.columns[index], result[(index, "histogram")])
        for column in self.columns:
            if column.kind == "text":
                self.profiles[column.index]["top_values"] = _top_values(result[(column.index, "top")], str)

    def scan(self, contingency: dict) -> Scan:
        return Scan(self.stats, self.profiles, self.pearson, self.cramers_v, contingency)


def _scan(path: str, columns: list[Column], exact_distinct: bool, memory_limit: str) -> Scan:
    """Both passes over the file."""
    with connect(memory_limit) as con:
        plan = Plan.of(columns, _first_pass(con, path, columns, exact_distinct), exact_distinct)
        plan.fill(_second_pass(con, path, plan))
        contingency = contingency_cells(con, path, plan.cramers_v.chosen)
    return plan.scan(contingency)


def _batches(columns: list[Column]) -> list[list[Column]]:
    """The columns in query-sized groups; one empty group for a file without columns, so
    that its table-wide aggregates still run."""
    return [columns[k : k + COLUMNS_PER_QUERY] for k in range(0, len(columns), COLUMNS_PER_QUERY)] or [[]]


def arrow_kind(arrow_type: pa.DataType) -> str:
    """The profile kind of an Arrow type; anything unrecognised is profiled as text."""
    if pa.types.is_dictionary(arrow_type):
        return arrow_kind(arrow_type.value_type)
    checks = [
        (pa.types.is_integer, "integer"),
        (pa.types.is_floating, "float"),
        (pa.types.is_decimal, "decimal"),
        (pa.types.is_boolean, "boolean"),
        (pa.types.is_date, "date"),
        (pa.types.is_timestamp, "timestamp"),
    ]
    return next((kind for check, kind in checks if check(arrow_type)), "text")


def quote_identifier(name: str) -> str:
    """A SQL identifier for any column name (quotes inside the name are doubled)."""
    return '"' + name.replace('"', '""') + '"'


def _is_string(arrow_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(arrow_type):
        return _is_string(arrow_type.value_type)
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def _read_schema(path: str) -> tuple[pa.Schema, int]:
    try:
        metadata = pq.read_metadata(path)
    except (OSError, pa.ArrowException) as error:
        raise InputError(
            f"Cannot read {path!r} as Parquet ({error}). Check that the path points to a "
            "complete Parquet file, not a folder, a partial upload or another format."
        ) from error
    return metadata.schema.to_arrow_schema(), metadata.num_rows


@contextmanager
def connect(memory_limit: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh in-memory DuckDB connection that may spill to a private temp folder."""
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with tempfile.TemporaryDirectory(prefix="dataplat-profile-") as spill:
        con = duckdb.connect(":memory:")
        try:
            con.execute(f"SET threads = {threads or 1}")
            con.execute(f"SET memory_limit = '{memory_limit}'")
            con.execute(f"SET temp_directory = '{spill}'")
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET enable_progress_bar = false")
            # Each query binds the file again: a wide footer is parsed once, not per query.
            con.execute("SET parquet_metadata_cache = true")
            yield con
        finally:
            con.close()


def _aggregate(con, path: str, exprs: dict[Any, str]) -> dict:
    """Run one ungrouped aggregate query over the file; ``exprs`` maps keys to SQL."""
    if not exprs:
        return {}
    select = ",\n  ".join(exprs.values())
    row = con.execute(f"SELECT\n  {select}\nFROM read_parquet(?)", [path]).fetchone()
    return dict(zip(exprs, row))


def _first_pass(con, path: str, columns: list[Column], exact_distinct: bool) -> dict:
    batches = _batches(columns)
    # The table-wide aggregates ride along with the first query.
    table_exprs: dict[Any, str] = {"rows": "count(*)"}
    # Distinct 64-bit row hashes: a collision would merge two different rows, so this is a
    # lower bound on the distinct rows (and the duplicate count an upper bound), off only
    # with negligible probability.
    if len(batches) == 1 and columns:
        table_exprs["distinct_rows"] = _distinct_rows_sql(columns)
    stats: dict = {}
    for k, batch in enumerate(batches):
        exprs = dict(table_exprs) if k == 0 else {}
        for column in batch:
            exprs.update(_column_exprs(column, exact_distinct))
        stats.update(_aggregate(con, path, exprs))
    if len(batches) > 1:
        stats["distinct_rows"] = _distinct_rows_by_parts(con, path, batches)
    stats["duplicates"] = stats["rows"] - stats.get("distinct_rows", stats["rows"])
    return stats


def distinct_rows(con, path: str, columns: list[Column]) -> int:
    """The distinct rows of the file (as ``_first_pass`` counts them), in a pass of its own."""
    batches = _batches(columns)
    if len(batches) > 1:
        return _distinct_rows_by_parts(con, path, batches)
    return _aggregate(con, path, {"distinct_rows": _distinct_rows_sql(columns)})["distinct_rows"]


def _distinct_rows_sql(columns: list[Column]) -> str:
    return f"count(DISTINCT {_row_hash(columns)})"


def _row_hash(columns: list[Column]) -> str:
    return "hash(" + ", ".join(c.sql for c in columns) + ")"


def _distinct_rows_by_parts(con, path: str, batches: list[list[Column]]) -> int:
    """The distinct rows of a wide table. A scan of all its columns at once holds a page of
    every column per thread (gigabytes at 2,000 columns), so the row hash is built one
    batch of columns at a time, each batch's hash folded into the running one by position
    (DuckDB keeps the file's row order in both scans)."""
    con.execute(f"CREATE TEMP TABLE row_hash AS SELECT {_row_hash(batches[0])} AS h FROM read_parquet(?)", [path])
    for batch in batches[1:]:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE row_hash AS SELECT hash(row_hash.h, part.h) AS h FROM row_hash "
            f"POSITIONAL JOIN (SELECT {_row_hash(batch)} AS h FROM read_parquet(?)) AS part",
            [path],
        )
    distinct = con.execute("SELECT count(DISTINCT h) FROM row_hash").fetchone()[0]
    con.execute("DROP TABLE row_hash")
    return distinct


def _column_exprs(column: Column, exact_distinct: bool) -> dict[Any, str]:
    i, q, v = column.index, column.sql, column.value_sql
    distinct = f"count(DISTINCT {q})" if exact_distinct else f"approx_count_distinct({q})"
    exprs = {(i, "count"): f"count({q})", (i, "distinct"): distinct}
    if column.kind == "float":
        exprs[(i, "non_finite")] = f"count({q}) FILTER (WHERE NOT isfinite({q}))"
        v = f"(CASE WHEN isfinite({q}) THEN {q} END)"
    if column.kind in NUMBER_KINDS or column.kind in TIME_KINDS:
        exprs[(i, "min")] = f"min({v})"
        exprs[(i, "max")] = f"max({v})"
    if column.kind in NUMBER_KINDS:
        quantiles = ", ".join(str(fraction) for fraction in QUANTILES.values())
        exprs[(i, "mean")] = f"avg({v})"
        exprs[(i, "std")] = f"stddev_samp({v})"
        exprs[(i, "quantiles")] = f"reservoir_quantile({v}, [{quantiles}], {QUANTILE_SAMPLE})"
    elif column.kind == "boolean":
        exprs[(i, "top")] = f"map_entries(histogram({q}))"
    elif column.kind == "text" and _is_string(column.arrow_type):
        # In characters, as Python and GX's value-length checks count them.
        exprs[(i, "min_length")] = f"min(length({q}))"
        exprs[(i, "max_length")] = f"max(length({q}))"
    return exprs


def _column_profile(column: Column, stats: dict, exact_distinct: bool) -> dict:
    i, rows = column.index, stats["rows"]
    count = stats[(i, "count")]
    profile = {
        "name": column.name,
        "type": column.kind,
        "arrow_type": str(column.arrow_type),
        "missing": rows - count,
        "missing_pct": _pct(rows - count, rows),
        "distinct": min(stats[(i, "distinct")], count),
        "distinct_is_approximate": not exact_distinct,
    }
    if column.kind in NUMBER_KINDS:
        profile.update(_number_stats(column, stats))
    elif column.kind in TIME_KINDS:
        profile["min"] = _iso(column, stats[(i, "min")])
        profile["max"] = _iso(column, stats[(i, "max")])
        profile["histogram"] = None
    elif column.kind == "boolean":
        profile["top_values"] = _top_values(stats[(i, "top")], _text)
    else:
        profile["top_values"] = []
        if (i, "min_length") in stats:
            profile["min_length"], profile["max_length"] = stats[(i, "min_length")], stats[(i, "max_length")]
    return profile


def _number_stats(column: Column, stats: dict) -> dict:
    i = column.index
    quantiles = stats[(i, "quantiles")] or [None] * len(QUANTILES)
    low, high = _finite(stats[(i, "min")]), _finite(stats[(i, "max")])
    numbers = {
        "min": low,
        "max": high,
        "mean": _finite(stats[(i, "mean")]),
        "std": _finite(stats[(i, "std")]),
        "quantiles": {label: _clamp(q, low, high) for label, q in zip(QUANTILES, quantiles)},
        "histogram": None,
    }
    if column.kind == "float":
        numbers["non_finite"] = stats[(i, "non_finite")]
    return numbers


def _second_pass(con, path: str, plan: Plan) -> dict:
    """The histogram bin counts, the text columns' value counts and the Pearson
    coefficients, keyed for ``Plan.fill``."""
    # The pairs ride along with the first query.
    pair_exprs = {
        ("corr", a.index, b.index): f"corr({a.value_sql}::DOUBLE, {b.value_sql}::DOUBLE)"
        for a, b in itertools.combinations(plan.pearson.chosen, 2)
    }
    result: dict = {}
    for k, batch in enumerate(_batches(plan.columns)):
        exprs = dict(pair_exprs) if k == 0 else {}
        for column in batch:
            if column.index in plan.bins:
                exprs[(column.index, "histogram")] = plan.bins[column.index].sql(column)
            if column.kind == "text" and plan.counts_all_values(column):
                exprs[(column.index, "top")] = f"map_entries(histogram({column.value_sql}))"
        result.update(_aggregate(con, path, exprs))
    many_valued = [c for c in plan.columns if c.kind == "text" and (c.index, "top") not in result]
    for batch in _batches(many_valued):
        result.update(top_counts(con, path, batch))
    return result


def contingency_cells(con, path: str, columns: list[Column]) -> dict[tuple[str, str], list[tuple]]:
    """The (a, b, count) cells of every pair of ``columns``, in one scan. Grouping sets
    spill to disk like any GROUP BY; one ``histogram`` of pairs per pair did not, and 45
    pairs of 100,000 rows exhausted the memory limit."""
    pairs = list(itertools.combinations(range(len(columns)), 2))
    if not pairs:
        return {}
    names = ", ".join(c.value_sql for c in columns)
    sets = ", ".join(f"({columns[i].value_sql}, {columns[j].value_sql})" for i, j in pairs)
    query = f"SELECT grouping({names}), {names}, count(*) FROM read_parquet(?) GROUP BY GROUPING SETS ({sets})"
    # grouping() sets one bit per column left out of the set, the first column's highest.
    every = (1 << len(columns)) - 1
    pair_of = {every ^ (1 << (len(columns) - 1 - i)) ^ (1 << (len(columns) - 1 - j)): (i, j) for i, j in pairs}
    cells: dict[tuple[str, str], list[tuple]] = {(columns[i].name, columns[j].name): [] for i, j in pairs}
    for row in con.execute(query, [path]).fetchall():
        i, j = pair_of[row[0]]
        a, b = row[1 + i], row[1 + j]
        if a is not None and b is not None:  # a missing value is in no category
            cells[(columns[i].name, columns[j].name)].append((a, b, row[-1]))
    return cells


def top_counts(con, path: str, columns: list[Column]) -> dict:
    """The exact top values of many-valued text columns: a GROUP BY per column, all in one
    statement. approx_top_k was no cheaper, and on flat distributions it missed the true
    top values (125 shown where the top count was 146, on 100k values over 10M rows); a
    GROUP BY spills to disk like the rest, so even 10M distinct values stay bounded."""
    queries, params = [], []
    for column in columns:
        queries.append(
            f"(SELECT {column.index} AS i, v, n FROM (SELECT {column.value_sql} AS v, count(*) AS n "
            f"FROM read_parquet(?) WHERE v IS NOT NULL GROUP BY v ORDER BY n DESC, v LIMIT {TOP_VALUES}))"
        )
        params.append(path)
    counts: dict[Any, list] = {(c.index, "top"): [] for c in columns}
    if queries:
        for i, value, count in con.execute(" UNION ALL ".join(queries), params).fetchall():
            counts[(i, "top")].append({"key": value, "value": count})
    return counts


def _raw_range(column: Column, stats: dict) -> tuple[float, float] | None:
    """The finite (min, max) in the units the histogram is binned in (µs for times)."""
    if column.kind not in NUMBER_KINDS and column.kind not in TIME_KINDS:
        return None
    low, high = _finite(stats[(column.index, "min")]), _finite(stats[(column.index, "max")])
    if low is None or high is None:
        return None
    return float(low), float(high)


@dataclass(frozen=True)
class _Bins:
    """Equal-width bins; integers and dates get whole-unit widths."""

    low: float
    width: float
    count: int

    @staticmethod
    def plan(column: Column, value_range: tuple | None) -> _Bins | None:
        if value_range is None:
            return None
        low, high = value_range
        unit = {"integer": 1, "date": DAY_US}.get(column.kind)
        if unit is None:
            width = (high - low) / HISTOGRAM_BINS
            return _Bins(low, width, HISTOGRAM_BINS) if width > 0 else _Bins(low, 0.0, 1)
        units = (high - low) // unit + 1
        width = unit * math.ceil(units / HISTOGRAM_BINS)
        return _Bins(low, width, math.ceil((high - low + unit) / width))

    def sql(self, column: Column) -> str:
        value = f"{column.value_sql}::DOUBLE"
        where = f"isfinite({value})" if column.kind == "float" else f"{value} IS NOT NULL"
        if self.width == 0:
            bin_sql = "0"
        else:
            offset = f"floor(({value} - {self.low!r}) / {self.width!r})"
            bin_sql = f"least(greatest({offset}, 0), {self.count - 1})::INTEGER"
        return f"map_entries(histogram({bin_sql}) FILTER (WHERE {where}))"

    def counts(self, values: np.ndarray, *, all_finite: bool = False) -> np.ndarray:
        """The bin counts of ``values`` (DOUBLE, NaN where missing), with the arithmetic of
        ``sql`` (IEEE doubles, so each value falls in the same bin); ``all_finite`` skips
        the filter where no value can be missing, NaN or infinite."""
        if self.width == 0:
            return np.array([len(values) if all_finite else np.count_nonzero(np.isfinite(values))])
        bins = np.subtract(values, self.low)
        np.divide(bins, self.width, out=bins)
        # floor() then the clamp of ``sql``, in the other order: once clamped to [0, count - 1]
        # a bin is non-negative, and the cast's truncation is its floor.
        np.clip(bins, 0, self.count - 1, out=bins)
        if not all_finite:
            bins = bins[np.isfinite(values)]
        return np.bincount(bins.astype(np.intp), minlength=self.count)

    def histogram(self, column: Column, entries: list[dict]) -> dict:
        counts = [0] * self.count
        for entry in entries or []:
            counts[entry["key"]] = entry["value"]
        edges = [self.low + k * self.width for k in range(self.count + 1)]
        if column.kind in TIME_KINDS:
            return {"edges": [_iso(column, edge) for edge in edges], "counts": counts}
        return {"edges": [float(edge) for edge in edges], "counts": counts}


def _pearson_columns(columns: list[Column], profiles: list[dict]) -> list[Column]:
    """Numeric columns that vary: a constant or empty one correlates with nothing."""
    return [c for c in columns if c.kind in NUMBER_KINDS and profiles[c.index]["std"]]


def _cramers_v_columns(columns: list[Column], profiles: list[dict], stats: dict) -> list[Column]:
    def is_category(column: Column) -> bool:
        # A column whose every value is unique is a key: its association is trivially 1.
        distinct = profiles[column.index]["distinct"]
        non_null = stats[(column.index, "count")]
        return 2 <= distinct <= MAX_CRAMERS_V_DISTINCT and distinct < non_null

    return [c for c in columns if c.kind in CATEGORY_KINDS and is_category(c)]


def _pearson(chosen: list[Column], stats: dict) -> dict | None:
    if len(chosen) < 2:
        return None
    # Every chosen column varies, so each correlates fully with itself.
    matrix = [[1.0 if i == j else None for j in range(len(chosen))] for i in range(len(chosen))]
    for (i, a), (j, b) in itertools.combinations(enumerate(chosen), 2):
        matrix[i][j] = matrix[j][i] = _finite(stats[("corr", a.index, b.index)])
    return {"columns": [c.name for c in chosen], "matrix": matrix}


def _cramers_v_matrix(contingency: dict) -> dict | None:
    names = list(dict.fromkeys(name for pair in contingency for name in pair))
    if len(names) < 2:
        return None
    position = {name: i for i, name in enumerate(names)}
    matrix = [[1.0 if i == j else None for j in range(len(names))] for i in range(len(names))]
    for (a, b), cells in contingency.items():
        value = cramers_v(cells)
        matrix[position[a]][position[b]] = matrix[position[b]][position[a]] = value
    return {"columns": names, "matrix": matrix}


def cramers_v(cells: list[tuple[Any, Any, int]]) -> float | None:
    """Cramér's V (without bias correction) of a contingency table given as (a, b, count)."""
    # DuckDB returns the cells in any order: summed in one order, the last digits are the
    # same every time.
    cells = sorted(cells, key=lambda cell: (repr(cell[0]), repr(cell[1])))
    rows: dict = {}
    cols: dict = {}
    for a, b, count in cells:
        rows[a] = rows.get(a, 0) + count
        cols[b] = cols.get(b, 0) + count
    total = sum(rows.values())
    if total == 0 or min(len(rows), len(cols)) < 2:
        return None
    observed = {(a, b): count for a, b, count in cells}
    chi2 = 0.0
    for (a, row_total), (b, col_total) in itertools.product(rows.items(), cols.items()):
        expected = row_total * col_total / total
        chi2 += (observed.get((a, b), 0) - expected) ** 2 / expected
    return _finite(math.sqrt(chi2 / (total * (min(len(rows), len(cols)) - 1))))


def _top_values(entries: list[dict] | None, as_text) -> list[dict]:
    pairs = [(as_text(e["key"]), e["value"]) for e in entries or []]
    pairs.sort(key=lambda pair: (-pair[1], pair[0]))
    return [{"value": value, "count": count} for value, count in pairs[:TOP_VALUES]]


def _summary(rows: int, duplicates: int, profiles: list[dict]) -> dict:
    missing = sum(p["missing"] for p in profiles)
    kinds: dict[str, int] = {}
    for profile in profiles:
        kinds[profile["type"]] = kinds.get(profile["type"], 0) + 1
    return {
        "rows": rows,
        "columns": len(profiles),
        "missing_cells": missing,
        "missing_pct": _pct(missing, rows * len(profiles)),
        "duplicate_rows": duplicates,
        "column_types": kinds,
    }


def read_sample(path: str | os.PathLike, sample_rows: int) -> dict:
    """The first ``sample_rows`` rows, JSON-able: ``{"columns": [...], "rows": [[...], ...]}``."""
    rows: list[list] = []
    with pq.ParquetFile(path) as parquet:
        names = parquet.schema_arrow.names
        batch = next(parquet.iter_batches(batch_size=sample_rows), None) if sample_rows > 0 else None
        if batch is not None:
            rows = [[to_jsonable(row[name]) for name in names] for row in batch.to_pylist()]
    return {"columns": names, "rows": rows}


def to_jsonable(value: Any) -> Any:
    """A JSON-serialisable form of one cell; long text is cut to ``MAX_SAMPLE_TEXT``."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_SAMPLE_TEXT else value[:MAX_SAMPLE_TEXT] + "…"
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return to_jsonable(value.hex())
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return str(value)
    return to_jsonable(str(value))


def _finite(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _clamp(value: Any, low: Any, high: Any) -> Any:
    """A sketch quantile kept inside the exact [min, max] (t-digest can overshoot)."""
    value = _finite(value)
    if value is None or low is None or high is None:
        return value
    return min(max(value, low), high)


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _iso(column: Column, epoch_us: float | None) -> str | None:
    """ISO text for microseconds since the epoch (UTC for zoned timestamps)."""
    if epoch_us is None:
        return None
    try:
        moment = EPOCH + dt.timedelta(microseconds=round(epoch_us))
    except OverflowError:
        return None
    if column.kind == "date":
        return moment.date().isoformat()
    if column.arrow_type.tz is not None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.isoformat()
