"""Reading an exporter's target back: the overwrite table or file, or the newest timestamped one."""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath

from dataplat_dagster.errors import DataplatError
from dataplat_dagster.exporters.models import ExporterSpec


def newest_target(connector, spec: ExporterSpec) -> str:
    """The table or path the last export wrote."""
    if spec.mode == "overwrite":
        return spec.table.rpartition(".")[2] if spec.table else spec.path.lstrip("/")
    if spec.table:
        from dataplat_dagster.exporters.sql_target import created_tables

        created = created_tables(connector, spec)
    else:
        from dataplat_dagster.exporters.file_target import created_files

        with connector.open_store() as store:
            created = created_files(store, spec)
    if not created:
        raise DataplatError(f"nothing was exported to {spec.target()} yet")
    return created[-1]


def read_target(connector, spec: ExporterSpec):
    name = newest_target(connector, spec)
    if spec.table:
        from dataplat_dagster.exporters.sql_target import split_table

        schema, _ = split_table(spec)
        return connector.read_arrow(f"SELECT * FROM {connector.quote(schema, name)}", database=spec.database).read_all()
    with tempfile.TemporaryDirectory(prefix="dataplat-export-read-") as tmp, connector.open_store() as store:
        local = store.download(name, Path(tmp) / PurePosixPath(name).name)
        if spec.file_format == "csv":
            import pyarrow.csv as pa_csv

            return pa_csv.read_csv(local)
        import pyarrow.parquet as pq

        return pq.read_table(local)


def written_targets(connector, spec: ExporterSpec) -> list[dict]:
    """What the exporter has written, newest first, with row counts: its overwrite target (if
    it exists) or every timestamped table or file of its pattern."""
    if spec.mode == "overwrite":
        names = [newest_target(connector, spec)] if _exists(connector, spec) else []
    elif spec.table:
        from dataplat_dagster.exporters.sql_target import created_tables

        names = created_tables(connector, spec)[::-1]
    else:
        from dataplat_dagster.exporters.file_target import created_files

        with connector.open_store() as store:
            names = created_files(store, spec)[::-1]
    return [{"name": name, "rows": _rows(connector, spec, name)} for name in names]


def _exists(connector, spec: ExporterSpec) -> bool:
    if spec.table:
        from sqlalchemy import inspect

        from dataplat_dagster.exporters.sql_target import split_table

        schema, table = split_table(spec)
        with connector.connect(spec.database) as connection:
            return inspect(connection).has_table(table, schema=schema)
    with connector.open_store() as store:
        return store.exists(spec.path.lstrip("/"))


def _rows(connector, spec: ExporterSpec, name: str) -> int | None:
    if spec.table:
        from sqlalchemy import text

        from dataplat_dagster.exporters.sql_target import split_table

        schema, _ = split_table(spec)
        with connector.connect(spec.database) as connection:
            return int(connection.execute(text(f"SELECT count(*) FROM {connector.quote(schema, name)}")).scalar())
    if spec.file_format != "parquet":
        return None  # counting a CSV's rows means reading it all
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="dataplat-export-read-") as tmp, connector.open_store() as store:
        local = store.download(name, Path(tmp) / PurePosixPath(name).name)
        return pq.ParquetFile(local).metadata.num_rows
