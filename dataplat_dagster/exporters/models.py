"""Pydantic model of an ``exporters:`` entry in a project's catalog, and the naming rules.

An exporter names its connector, a mode and a target: ``table`` (optionally
schema-qualified, in ``database``) for a SQL connector, or ``path`` and ``format`` for an
FTP, SFTP, S3 or GCS connector. Which fits the connector is checked by the catalog.

Table, schema and database names are identifiers, always quoted when sent to a database:
letters (any script), digits, spaces, ``_``, ``-`` and ``$`` work exactly as written, SQL
keywords included; quotes, backticks, semicolons, backslashes, dots inside a part and
control characters are refused, so a name can never be read as SQL.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataplat_dagster.errors import DataplatError

ExportMode = Literal["overwrite", "timestamped"]
FileFormat = Literal["csv", "parquet"]
OnDependents = Literal["refuse", "drop"]

# UTC, sortable as text, lower case (safe unquoted in PostgreSQL too): orders_20261201_063000.
TIMESTAMP_FORMAT = "%Y%m%d_%H%M%S"
TIMESTAMP_PATTERN = r"\d{8}_\d{6}"
TIMESTAMP_LENGTH = len("_20261201_063000")
# A timestamped export whose name is taken (another export published in the same second)
# takes the next second's; this many taken names in a row means something else is wrong.
CLAIM_ATTEMPTS = 30
# PostgreSQL truncates identifiers at 63 bytes; MySQL allows 64. The stricter one rules.
MAX_IDENTIFIER_BYTES = 63
_IDENTIFIER = re.compile(r"^[\w $-]+$")


def check_identifier(name: str, what: str, reserve: int = 0) -> str:
    """``name`` if it is a safe identifier; else a ValueError saying what to change."""
    if not name or not name.strip():
        raise ValueError(f"the {what} name is empty")
    if name != name.strip():
        raise ValueError(f"the {what} name {name!r} starts or ends with a space: remove it")
    _refuse_characters(name, what)
    limit = MAX_IDENTIFIER_BYTES - reserve
    if len(name.encode()) > limit:
        extra = f" (the timestamp suffix takes {reserve})" if reserve else ""
        raise ValueError(f"the {what} name {name!r} is longer than {limit} bytes{extra}: shorten it")
    return name


def _refuse_characters(name: str, what: str, allowed: str = "") -> None:
    bad = sorted({c for c in name if c not in allowed and not _IDENTIFIER.match(c)})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise ValueError(
            f"the {what} name {name!r} contains {shown}: use letters, digits, spaces, '_', '-' or '$' "
            "(quotes, semicolons, backslashes and dots are refused so that a name is never read as SQL)"
        )


def timestamp_suffix(moment: datetime | None = None) -> str:
    return (moment or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT)


def claim_timestamped(name_for: Callable[[str], str], claim: Callable[[str], bool]) -> str:
    """Publish a timestamped export under the name of the current second, ``name_for(stamp)``.

    ``claim(name)`` publishes under ``name`` and returns True, or returns False, changing
    nothing, when the name is taken. A taken name means another export published in the
    same second: this one waits for the next second and takes its name, so both succeed
    and their names still sort by the time they were published. Never a replace.
    """
    tried = []
    for _ in range(CLAIM_ATTEMPTS):
        tried.append(name_for(timestamp_suffix()))
        if claim(tried[-1]):
            return tried[-1]
        time.sleep(1.0 - time.time() % 1.0)
    raise DataplatError(
        f"{len(tried)} timestamped names in a row were taken ({tried[0]} to {tried[-1]}): a timestamped export never "
        "overwrites. Check that this machine's clock advances and that nothing else writes names of this pattern"
    )


class ExporterSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connector: str = Field(description="The connector to write through.")
    mode: ExportMode = Field(description="overwrite: replace the target atomically; timestamped: a new <table>_<UTC timestamp> each time.")
    description: str | None = None
    database: str | None = Field(None, description="SQL: the database, if not the connector's default.")
    table: str | None = Field(None, description="SQL: the table, optionally schema-qualified (sales.predictions).")
    path: str | None = Field(None, description="File stores: the file's path from the store's root.")
    format: FileFormat | None = Field(None, description="File stores: csv or parquet (default: from the path's suffix, else parquet).")
    retention: int | None = Field(None, ge=1, description="Timestamped: keep the newest N tables or files it created, drop older ones.")
    on_dependents: OnDependents = Field(
        "refuse", description="Overwrite on PostgreSQL, of a table that views depend on: refuse (name the views, write nothing) "
        "or drop (drop those views with the old table, CASCADE).")
    datasets: list[str] = Field(default_factory=list, description="Datasets exported through it from the list (its upstreams in the lineage).")

    @model_validator(mode="after")
    def _one_target(self) -> "ExporterSpec":
        if bool(self.table) == bool(self.path):
            raise ValueError("give exactly one of table (SQL) or path (file stores)")
        if self.path and self.database:
            raise ValueError("database applies to SQL exporters, not to a path")
        if self.table and self.format:
            raise ValueError("format applies to files (a path), not to a table")
        if self.retention and self.mode != "timestamped":
            raise ValueError("retention applies to mode timestamped: an overwrite exporter keeps one target")
        if self.on_dependents == "drop" and not (self.table and self.mode == "overwrite"):
            raise ValueError("on_dependents applies to mode overwrite of a table: it says what becomes of the views on the table it replaces")
        reserve = TIMESTAMP_LENGTH if self.mode == "timestamped" else 0
        if self.table:
            _refuse_characters(self.table, "table", allowed=".")  # before the dots are read as schema.table
            *schema, table = self.table.split(".")
            if len(schema) > 1:
                raise ValueError(f"the table {self.table!r} has more than one dot: give table or schema.table")
            for part in schema:
                check_identifier(part, "schema")
            check_identifier(table, "table", reserve)
        if self.database:
            check_identifier(self.database, "database")
        return self

    @field_validator("path")
    @classmethod
    def _file_path(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip("/") or value.endswith("/")):
            raise ValueError(f"the path {value!r} names a folder: give a file's path, e.g. out/predictions.parquet")
        return value

    @property
    def kind(self) -> str:
        return "table" if self.table else "path"

    @property
    def file_format(self) -> FileFormat:
        if self.format:
            return self.format
        return "csv" if (self.path or "").lower().endswith((".csv", ".csv.gz")) else "parquet"

    def target(self) -> str:
        if self.table:
            return f"{self.database}.{self.table}" if self.database else self.table
        return self.path or ""


@dataclass(frozen=True)
class Written:
    """What an export wrote: the table (or file) name, its full identifier, the rows."""

    name: str
    identifier: str  # database.schema.table for tables, a URI for files
    rows: int
    dropped: list[str] = field(default_factory=list)  # removed by retention
    dropped_views: list[str] = field(default_factory=list)  # removed with the old table (on_dependents: drop)
