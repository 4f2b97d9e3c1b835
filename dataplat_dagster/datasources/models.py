"""Pydantic model of a ``datasources:`` entry in a project's catalog.

A datasource names its connector and what to read: ``table`` (optionally schema-qualified,
in ``database``) or ``query`` for a SQL connector, ``path`` (from the store's root) for an
FTP, SFTP, S3 or GCS connector. Which of these fits the connector is checked by the
catalog, which knows the connector's type.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataplat_dagster.catalog.csv_options import CsvOptions

DriftPolicy = Literal["warn", "fail"]
QualityPolicy = Literal["warn", "fail"]


class DatasourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connector: str = Field(description="The connector to read through.")
    description: str | None = None
    database: str | None = Field(None, description="SQL: the database, if not the connector's default.")
    table: str | None = Field(None, description="SQL: the table, optionally schema-qualified (sales.orders).")
    query: str | None = Field(None, description="SQL: a SELECT query, instead of a table.")
    path: str | None = Field(None, description="File stores: the file's path from the store's root.")
    options: CsvOptions = Field(default_factory=CsvOptions, description="CSV dialect overrides for files.")
    schedule: str | None = Field(None, description="Cron schedule of the snapshot datasets, e.g. '0 6 * * *'.")
    drift_policy: DriftPolicy = Field("warn", description="Schema drift between snapshots: warn, or fail the snapshot.")
    quality_policy: QualityPolicy = Field(
        "warn", description="An error-severity check failing on a new snapshot or refresh: warn (it is published and "
        "the check fails), or fail (it is refused and the previous version stays current).")
    incremental_by: str | None = Field(None, description="SQL: a cursor column; refreshes fetch only rows past the last one.")
    merge_key: list[str] | None = Field(
        None, description="With incremental_by: the columns that identify a row; a refresh upserts, the newest row of each key wins.",
    )
    watch: bool = Field(False, description="Files: start with the sensor that snapshots the file when it changes switched on.")
    watch_interval_s: int = Field(60, ge=5, description="Files: seconds between two looks at the file (the sensor's minimum interval).")

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        from dagster._utils.schedules import is_valid_cron_string

        if value is not None and not is_valid_cron_string(value):
            raise ValueError(f"{value!r} is not a cron schedule: give five fields, e.g. '0 6 * * *' (every day at 06:00)")
        return value

    @field_validator("merge_key", mode="before")
    @classmethod
    def _key_columns(cls, value):
        """``id`` or ``order_id,line`` as in the CLI flag, or a YAML list."""
        if isinstance(value, str):
            value = value.split(",")
        if value is None:
            return None
        columns = [str(column).strip() for column in value]
        if not columns or not all(columns) or len(set(columns)) != len(columns):
            raise ValueError(f"merge_key {value!r} must name one or more distinct columns, e.g. id or order_id,line")
        return columns

    @model_validator(mode="after")
    def _one_thing_to_read(self) -> "DatasourceSpec":
        given = [name for name in ("table", "query", "path") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("give exactly one of table (SQL), query (SQL) or path (file stores)" + (f", not {' and '.join(given)}" if given else ""))
        if self.path and (self.database or self.incremental_by):
            raise ValueError("database and incremental_by apply to SQL datasources, not to a path")
        if self.merge_key and not self.incremental_by:
            raise ValueError("merge_key applies to incremental refreshes: set incremental_by (the column that grows with every change) too")
        if self.watch and not self.path:
            raise ValueError("watch applies to files (a path); a table or query is refreshed by its schedule")
        return self

    @property
    def kind(self) -> str:
        """``table``, ``query`` or ``path``."""
        return "table" if self.table else "query" if self.query else "path"

    def target(self) -> str:
        """What it reads, for lists and messages."""
        if self.table:
            return f"{self.database}.{self.table}" if self.database else self.table
        if self.query:
            return " ".join(self.query.split())
        return self.path or ""


# The names of a datasource's snapshot job, schedule and sensor (``automation``), known
# without Dagster to the commands that only show them.
def snapshot_job_name(datasource: str) -> str:
    return f"snapshot_{datasource}"


def schedule_name(datasource: str) -> str:
    return f"{snapshot_job_name(datasource)}_schedule"


def sensor_name(datasource: str) -> str:
    return f"watch_{datasource}"
