"""``test datasource``: the column schema, a row-count estimate, the first rows and, for
files, the detected dialect, read through the connector without importing anything.

SQL reads ``LIMIT n`` rows of the table or query and asks the database for its own
estimate of the row count (PostgreSQL's statistics or planner, MySQL's table status). Files
are read in part: the first MiB of a CSV (or of a ``.csv.gz``) is parsed with the same
detection and the same Arrow reader as an import, so the types shown are the ones a
snapshot gets; a zip or a Parquet file is fetched whole, since its index is at its end.
"""

from __future__ import annotations

import tempfile
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dataplat_dagster.catalog.models import ProjectCatalog, find_entry
from dataplat_dagster.connectors.registry import open_connector
from dataplat_dagster.datasources.reading import PARQUET_MAGIC, select_statement
from dataplat_dagster.errors import DataplatError, InputError

SAMPLE_ROWS = 10
HEAD_BYTES = 1024 * 1024
_ZIP_MAGIC = b"PK\x03\x04"
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class Probe:
    datasource: str
    connector: str
    kind: str  # table, query or path
    target: str
    columns: list[dict] = field(default_factory=list)  # [{"name": ..., "type": ...}]
    row_estimate: int | None = None
    row_estimate_exact: bool = False
    sample: list[dict] = field(default_factory=list)
    dialect: dict | None = None
    file: dict | None = None
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


def probe_datasource(project_dir: Path, catalog: ProjectCatalog, name: str, sample_rows: int = SAMPLE_ROWS) -> Probe:
    """Probe the catalog's datasource ``name``; errors say what the database or parser said."""
    spec = find_entry(catalog.datasources, "datasource", name, project_dir.name)
    connector_spec = catalog.connectors[spec.connector]
    started = time.perf_counter()
    probe = Probe(name, spec.connector, spec.kind, spec.target())
    with open_connector(spec.connector, connector_spec, project_dir) as connector:
        if connector_spec.type == "sql":
            _probe_sql(connector, spec, probe, sample_rows)
        else:
            _probe_file(connector, spec, probe, sample_rows)
    probe.seconds = round(time.perf_counter() - started, 3)
    return probe


# -- SQL ----------------------------------------------------------------------------------


def _probe_sql(connector, spec, probe: Probe, sample_rows: int) -> None:
    select = select_statement(connector, spec)
    table = connector.read_arrow(f"SELECT * FROM ({select}) AS dataplat_probe LIMIT {int(sample_rows)}", database=spec.database).read_all()
    probe.columns = [{"name": f.name, "type": str(f.type)} for f in table.schema]
    probe.sample = [_jsonable_row(row) for row in table.to_pylist()]
    probe.row_estimate, probe.row_estimate_exact = _sql_row_estimate(connector, spec, select)


def _sql_row_estimate(connector, spec, select: str) -> tuple[int | None, bool]:
    """The database's cheap estimate where it has one; an exact count on SQLite."""
    from sqlalchemy import text

    with connector.connect(spec.database) as connection:
        if connector.backend == "postgresql":
            if spec.table:
                estimate = connection.execute(
                    text("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(:name)"), {"name": connector.quote(*spec.table.split("."))}
                ).scalar()
                if estimate is not None and estimate >= 0:
                    return int(estimate), False
            plan = connection.execute(text(f"EXPLAIN (FORMAT JSON) {select}")).scalar()
            return int(plan[0]["Plan"]["Plan Rows"]), False
        if connector.backend == "mysql" and spec.table:
            schema, _, table = spec.table.rpartition(".")
            estimate = connection.execute(
                text("SELECT table_rows FROM information_schema.tables WHERE table_schema = COALESCE(:schema, DATABASE()) AND table_name = :table"),
                {"schema": schema or None, "table": table},
            ).scalar()
            return (int(estimate), False) if estimate is not None else (None, False)
        if connector.backend == "sqlite":
            return int(connection.execute(text(f"SELECT count(*) FROM ({select})")).scalar()), True
    return None, False


# -- files --------------------------------------------------------------------------------


def _probe_file(connector, spec, probe: Probe, sample_rows: int) -> None:
    with connector.open_store() as store, tempfile.TemporaryDirectory(prefix="dataplat-probe-") as tmp:
        try:
            info = store.stat(spec.path)
        except FileNotFoundError as error:
            raise InputError(str(error)) from None
        probe.file = info.to_json()
        head = store.read_head(spec.path, HEAD_BYTES)
        local = Path(tmp) / Path(spec.path).name
        if head.startswith(PARQUET_MAGIC):
            store.download(spec.path, local)
            _probe_parquet(local, probe, sample_rows)
            return
        if head.startswith(_ZIP_MAGIC):
            store.download(spec.path, local)
            complete, scale = True, 1.0
        elif head.startswith(_GZIP_MAGIC):
            local = local.with_suffix(".part.csv")
            text, consumed = _gunzip_head(head, spec.path)
            complete = len(head) >= info.size and consumed >= len(head)
            local.write_bytes(text if complete else _cut_at_last_line(text))
            scale = info.size / max(consumed, 1)
        else:
            complete = len(head) >= info.size
            local = local.with_suffix(".part.csv")
            local.write_bytes(head if complete else _cut_at_last_line(head))
            scale = info.size / max(local.stat().st_size, 1)
        _probe_csv(local, spec, probe, sample_rows, complete, scale, Path(tmp))


def _probe_csv(local: Path, spec, probe: Probe, sample_rows: int, complete: bool, scale: float, tmp: Path) -> None:
    import pyarrow.parquet as pq

    from dataplat_dagster.ingest.detect import detect_dialect
    from dataplat_dagster.ingest.dialect import CsvOverrides
    from dataplat_dagster.ingest.stream import ingest_csv

    try:
        dialect = detect_dialect(local, CsvOverrides(**spec.options.model_dump()))
        result = ingest_csv(local, dialect, tmp / "sample.parquet")
    except DataplatError as error:
        raise InputError(f"{spec.path!r} does not parse as a table: {_without_temp_name(str(error), local, spec.path)}") from None
    probe.dialect = (result.dialect or dialect).to_json()
    probe.columns = [{"name": f.name, "type": str(f.type)} for f in result.schema]
    table = pq.read_table(tmp / "sample.parquet").slice(0, sample_rows)
    probe.sample = [_jsonable_row(row) for row in table.to_pylist()]
    probe.row_estimate = result.rows if complete else int(result.rows * scale)
    probe.row_estimate_exact = complete


def _probe_parquet(local: Path, probe: Probe, sample_rows: int) -> None:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(local)
    except Exception as error:
        raise InputError(f"{probe.target!r} is not a readable Parquet file: {error}") from None
    with parquet:
        probe.columns = [{"name": f.name, "type": str(f.type)} for f in parquet.schema_arrow]
        batch = next(parquet.iter_batches(batch_size=sample_rows), None) if sample_rows else None
        probe.sample = [_jsonable_row(row) for row in batch.to_pylist()] if batch is not None else []
        probe.row_estimate, probe.row_estimate_exact = parquet.metadata.num_rows, True


def _gunzip_head(head: bytes, path: str) -> tuple[bytes, int]:
    """Decompress what the head holds; returns the text and how many compressed bytes it took."""
    decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        text = decompressor.decompress(head)
    except zlib.error as error:
        raise InputError(f"{path!r} looks gzip-compressed but is broken ({error}).") from None
    consumed = len(head) - len(decompressor.unused_data)
    return text, consumed


def _cut_at_last_line(data: bytes) -> bytes:
    """A partial read ends mid-row: keep whole lines only."""
    end = data.rfind(b"\n")
    return data[: end + 1] if end >= 0 else data


def _without_temp_name(message: str, local: Path, path: str) -> str:
    return message.replace(str(local), path)


def _jsonable_row(row: dict) -> dict:
    from dataplat_dagster.profile.stats import to_jsonable

    return {key: to_jsonable(value) for key, value in row.items()}

