"""Incremental snapshots: fetch only the rows past the last stored cursor, and append them.

A datasource with ``incremental_by: COLUMN`` keeps, in each snapshot's metadata
(``dataplat/cursor``), the largest value of that column seen so far, as a SQL literal of
the source's dialect. The next refresh reads ``WHERE COLUMN > <that literal>``, and the
dataset's new version is the previous Parquet followed by the new rows. Rows whose cursor
value equals the last one are not fetched again: the column must grow with every change
(an ``updated_at`` set on each write, an increasing id).
"""

from __future__ import annotations

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
    def from_metadata(cls, metadata: dict, column: str) -> "Cursor | None":
        entry = metadata.get(CURSOR_KEY)
        data = getattr(entry, "data", None) or getattr(entry, "value", None)
        if not isinstance(data, dict) or data.get("column") != column or not data.get("literal"):
            return None
        return cls(data["column"], data["literal"], data.get("value", data["literal"]))


def where_after(connector, cursor: Cursor) -> str:
    return f"{connector.quote(cursor.column)} > {cursor.literal}"


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

    def check(self, schema, target: str) -> None:
        if self.column not in schema.names:
            raise InputError(
                f"incremental_by names the column {self.column!r}, which {target} does not have "
                f"(its columns: {', '.join(schema.names)}). Fix incremental_by in the datasource."
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
