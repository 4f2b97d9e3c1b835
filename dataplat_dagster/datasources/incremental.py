"""Incremental snapshots: fetch only the rows from the last stored cursor on, and add them.

A datasource with ``incremental_by: COLUMN`` keeps the largest value of that column seen so
far, as a SQL literal of the source's dialect, in the manifest of the dataset version it
belongs to (published with the data, in one step) and in the materialization's metadata
(``dataplat/cursor``). The next refresh reads ``WHERE COLUMN >= <that literal>``: rows that
share the boundary value but were committed after the last refresh are not lost. The
boundary rows read again are not added twice: with a ``merge_key`` the refresh upserts
(``upsert``: per key, the fetched row with the largest cursor replaces the stored one), and
without one, a fetched boundary row identical to a stored one is dropped
(``BoundaryRows``). The column must grow with every change (an ``updated_at`` set on each
write, an increasing id): a row edited without moving it is not fetched again. Rows deleted
at the source stay in the dataset; a soft-delete column (a ``deleted_at`` the source sets
instead of deleting, which moves the cursor) comes through as any other column.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dataplat_dagster.errors import InputError

CURSOR_KEY = "dataplat/cursor"


@dataclass(frozen=True)
class Cursor:
    column: str
    literal: str  # the last value as a SQL literal of the source's dialect
    value: str  # the same value, for people

    def to_json(self) -> dict:
        return {"column": self.column, "literal": self.literal, "value": self.value}

    @classmethod
    def from_json(cls, data, column: str) -> "Cursor | None":
        """The cursor recorded for ``column``; None if it was recorded for another column."""
        if not isinstance(data, dict) or data.get("column") != column or not data.get("literal"):
            return None
        return cls(data["column"], data["literal"], data.get("value", data["literal"]))

    @classmethod
    def from_metadata(cls, metadata: dict, column: str) -> "Cursor | None":
        entry = metadata.get(CURSOR_KEY)
        return cls.from_json(getattr(entry, "data", None) or getattr(entry, "value", None), column)


def where_from(connector, cursor: Cursor) -> str:
    return f"{connector.quote(cursor.column)} >= {cursor.literal}"


def sql_literal(connector, value: Any) -> str:
    """``value`` as a literal of the connector's dialect, escaped by SQLAlchemy's compiler."""
    from sqlalchemy import literal

    try:
        return str(literal(value).compile(dialect=connector.engine().dialect, compile_kwargs={"literal_binds": True}))
    except Exception as error:
        raise InputError(f"the cursor value {value!r} ({type(value).__name__}) cannot be written as SQL: {error}") from None


class CursorTracker:
    """Passes batches through and keeps the largest non-null value of the cursor column."""

    def __init__(self, column: str, start: Any = None) -> None:
        self.column = column
        self.largest = start

    def check(self, schema, target: str, merge_key: list[str] | None = None) -> None:
        for setting, column in [("incremental_by", self.column), *(("merge_key", key) for key in merge_key or ())]:
            if column not in schema.names:
                raise InputError(
                    f"{setting} names the column {column!r}, which {target} does not have "
                    f"(its columns: {', '.join(schema.names)}). Fix {setting} in the datasource."
                )

    def follow(self, batches) -> Iterator:
        import pyarrow.compute as pc

        for batch in batches:
            largest = pc.max(batch.column(self.column)).as_py() if batch.num_rows else None
            if largest is not None and (self.largest is None or largest > self.largest):
                self.largest = largest
            yield batch

    def cursor(self, connector) -> Cursor | None:
        if self.largest is None:
            return None
        return Cursor(self.column, sql_literal(connector, self.largest), str(self.largest))


class BoundaryRows:
    """Drops fetched rows that are already stored: those at the stored cursor value (the
    only ones a refresh from ``>=`` reads again), identical to a stored row, once each."""

    def __init__(self, stored, column: str) -> None:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        values = pq.read_table(stored, columns=[column]).column(column)
        self.column, self.boundary = column, pc.max(values)
        at_boundary = pq.read_table(stored, filters=[(column, "==", self.boundary.as_py())]) if self.boundary.is_valid else None
        self.stored = Counter(_row_tuples(at_boundary)) if at_boundary is not None else Counter()
        self.dropped = 0

    def new_rows(self, batches) -> Iterator:
        import pyarrow as pa
        import pyarrow.compute as pc

        for batch in batches:
            if not self.stored or not batch.num_rows:
                yield batch
                continue
            at_boundary = pc.fill_null(pc.equal(batch.column(self.column), self.boundary), False).to_pylist()
            keep = []
            for index, row in enumerate(_row_tuples(batch)):
                if at_boundary[index] and self.stored[row] > 0:
                    self.stored[row] -= 1
                    self.dropped += 1
                    keep.append(False)
                else:
                    keep.append(True)
            yield batch.filter(pa.array(keep))


def _row_tuples(table) -> list[tuple]:
    columns = [column.to_pylist() for column in table.columns]
    return list(zip(*columns))


@dataclass(frozen=True)
class Upserted:
    batches: Any  # the merged rows, a RecordBatchReader
    inserted: int  # keys that were not stored
    updated: int  # stored keys whose row was replaced
    connection: Any  # the DuckDB connection the batches stream from, open while they are read


def upsert(stored, fetched, keys: list[str], cursor_column: str) -> Upserted:
    """The stored rows whose key was not fetched, then, per fetched key, the fetched row with
    the largest cursor value (the newest). Both are Parquet files; DuckDB joins them out of core."""
    import duckdb

    def quoted(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    db = duckdb.connect()
    db.sql("SET memory_limit = '256MB'")  # spill to disk rather than grow with the dataset
    db.read_parquet(str(stored)).create_view("stored")
    db.read_parquet(str(fetched)).create_view("fetched")
    same_key = " AND ".join(f"s.{quoted(k)} IS NOT DISTINCT FROM f.{quoted(k)}" for k in keys)
    key_list = ", ".join(quoted(k) for k in keys)
    fetched_keys = db.sql(f"SELECT count(*) FROM (SELECT DISTINCT {key_list} FROM fetched)").fetchall()[0][0]
    updated = db.sql(
        f"SELECT count(*) FROM (SELECT DISTINCT {key_list} FROM fetched) f WHERE EXISTS (SELECT 1 FROM stored s WHERE {same_key})"
    ).fetchall()[0][0]
    merged = db.sql(
        f"SELECT * FROM stored s WHERE NOT EXISTS (SELECT 1 FROM fetched f WHERE {same_key}) "
        f"UNION ALL SELECT * EXCLUDE (dataplat_rank) FROM ("
        f"SELECT *, row_number() OVER (PARTITION BY {key_list} ORDER BY {quoted(cursor_column)} DESC NULLS LAST) AS dataplat_rank "
        "FROM fetched) WHERE dataplat_rank = 1"
    ).to_arrow_reader()
    return Upserted(merged, fetched_keys - updated, updated, db)
