"""Read a datasource through its connector as a stream of Arrow record batches.

SQL datasources go through ``SqlConnector.read_arrow`` (ADBC's binary COPY on PostgreSQL,
a server-side cursor elsewhere), so rows arrive batch by batch. A file is downloaded once
to a local folder (its bytes, not a table in memory), then read the way an uploaded file
is: Parquet batch by batch, a CSV through the import's dialect detection and reader.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dataplat_dagster.connectors.filestore import FileInfo
from dataplat_dagster.errors import InputError

PARQUET_MAGIC = b"PAR1"
BATCH_ROWS = 64 * 1024


def select_statement(connector, spec) -> str:
    """The SELECT a datasource stands for: its query, or every column of its table."""
    if spec.query:
        return spec.query.strip().rstrip(";")
    return f"SELECT * FROM {connector.quote(*spec.table.split('.'))}"


def read_sql(connector, spec, where: str | None = None):
    """The datasource's rows (optionally only those matching ``where``) as a RecordBatchReader."""
    select = select_statement(connector, spec)
    if where:
        select = f"SELECT * FROM ({select}) AS dataplat_source WHERE {where}"
    return connector.read_arrow(select, database=spec.database)


@dataclass(frozen=True)
class FetchedFile:
    local: Path
    info: FileInfo  # as the store described the file just before it was downloaded

    @property
    def is_parquet(self) -> bool:
        with self.local.open("rb") as file:
            return file.read(4) == PARQUET_MAGIC


def fetch_file(connector, spec, folder: Path) -> FetchedFile:
    """Download the datasource's file into ``folder``, under its own name."""
    with connector.open_store() as store:
        try:
            info = store.stat(spec.path)
        except FileNotFoundError as error:
            raise InputError(str(error)) from None
        local = store.download(spec.path, folder / Path(spec.path).name)
    return FetchedFile(Path(local), info)


def parquet_batches(path: Path, batch_rows: int = BATCH_ROWS):
    """A Parquet file as a RecordBatchReader, one batch at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:
        raise InputError(f"{path.name} is not a readable Parquet file: {error}") from None

    def batches() -> Iterator:
        with parquet:
            yield from parquet.iter_batches(batch_size=batch_rows)

    return pa.RecordBatchReader.from_batches(parquet.schema_arrow, batches())


@contextmanager
def open_datasource(connector, spec) -> Iterator:
    """The datasource's rows as a RecordBatchReader, valid inside the ``with`` block."""
    if spec.kind != "path":
        yield read_sql(connector, spec)
        return
    with tempfile.TemporaryDirectory(prefix="dataplat-datasource-") as tmp:
        fetched = fetch_file(connector, spec, Path(tmp))
        if fetched.is_parquet:
            yield parquet_batches(fetched.local)
            return
        from dataplat_dagster.ingest.detect import detect_dialect
        from dataplat_dagster.ingest.dialect import CsvOverrides
        from dataplat_dagster.ingest.stream import ingest_csv

        parsed = Path(tmp) / "parsed.parquet"
        dialect = detect_dialect(fetched.local, CsvOverrides(**spec.options.model_dump()))
        ingest_csv(fetched.local, dialect, parsed)
        yield parquet_batches(parsed)
