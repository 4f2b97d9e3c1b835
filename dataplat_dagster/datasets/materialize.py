"""Turn a source into a stored, profiled dataset: the body of a dataset asset.

A source is a flat file (detect the dialect, stream it into Parquet) or a stream of Arrow
batches (a datasource's table or query, a Parquet file). Either way the Parquet file is
written to a local staging folder, then profiled (from statistics gathered while it was
written, ``profile/accumulate.py``, where its columns allow), the plots and the HTML
report rendered, and only then is the whole version published
(``DatasetStore.publish_version``: its own folder, then the pointer that makes it
current). Until that last step the current version does not change, so a failure, or an
``accept`` hook that refuses the new schema, leaves the previous version intact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pyarrow as pa
import pyarrow.parquet as pq
from dagster import MetadataValue

from dataplat_dagster.datasets import storage
from dataplat_dagster.ingest.detect import detect_dialect
from dataplat_dagster.ingest.dialect import CsvOverrides, Dialect
from dataplat_dagster.ingest.stream import COMPRESSION, BatchObserver, ingest_csv
from dataplat_dagster.datasets.storage import DatasetStore, DatasetVersion
from dataplat_dagster.datasets.versions import VERSION_METADATA

if TYPE_CHECKING:
    from dataplat_dagster.profile.accumulate import ProfileAccumulator

# Called with the new Parquet's schema before anything is published; raising refuses it.
Accept = Callable[[pa.Schema], None]
# Called with the staged Parquet file before anything is published; raising refuses it
# (a datasource's quality_policy: fail).
Gate = Callable[[Path], None]
# Called once the data is written, before it is published: what the version's manifest
# records for the next run (an incremental datasource's cursor), published with the data.
State = Callable[[], dict]


@dataclass(frozen=True)
class Materialized:
    dialect: Dialect | None  # None for a source that is not a flat file
    rows: int
    columns: int
    schema: pa.Schema
    metadata: dict


def materialize_file_dataset(
    store: DatasetStore,
    source: Path,
    overrides: CsvOverrides,
    *,
    profile: bool = True,
    log=None,
    dialect: Dialect | None = None,
    accept: Accept | None = None,
    source_label: str | None = None,
    run_id: str | None = None,
    state: State | None = None,
    versions_kept: int = storage.DEFAULT_VERSIONS_KEPT,
    gate: Gate | None = None,
) -> Materialized:
    """``dialect``, when given, is the one already detected for this very file (the CLI
    detects before it registers anything): the run reads with exactly what was printed."""
    dialect = dialect or detect_dialect(source, overrides)
    if log:
        log.info(f"Dialect of {source.name}: {dialect.describe()}")
        for note in dialect.notes:
            log.warning(note)
    with store.staging() as tmp:
        data_file = tmp / storage.DATA_FILE
        result = ingest_csv(source, dialect, data_file, observe=_profile_accumulator if profile else None)
        # The whole file can overrule the sample (a column demoted to text, say): keep what was read.
        dialect = result.dialect or dialect
        if log:
            log.info(f"Parsed {result.rows:,} rows × {result.columns} columns into Parquet.")
            for note in result.notes:
                log.warning(note)
        side_files = {storage.DIALECT_FILE: _write_json(tmp / storage.DIALECT_FILE, dialect.to_json())}
        version = store.new_version()
        metadata = _publish(store, version, tmp, result.schema, side_files, rows=result.rows, profile=profile, accept=accept,
                            subtitle=dialect.describe(), run_id=run_id, state=state, versions_kept=versions_kept,
                            gate=gate, accumulated=result.observer)
    metadata.update(
        {
            "dialect": MetadataValue.json(dialect.to_json()),
            "dialect_summary": MetadataValue.text(dialect.describe()),
            "source_file": MetadataValue.text(source_label or source.name),
        }
    )
    metadata.update(_base_metadata(version, result.rows, result.columns))
    return Materialized(dialect, result.rows, result.columns, result.schema, metadata)


def materialize_arrow_dataset(
    store: DatasetStore,
    batches: pa.RecordBatchReader,
    *,
    profile: bool = True,
    log=None,
    accept: Accept | None = None,
    subtitle: str = "",
    run_id: str | None = None,
    state: State | None = None,
    versions_kept: int = storage.DEFAULT_VERSIONS_KEPT,
    gate: Gate | None = None,
) -> Materialized:
    """Write ``batches`` (streamed, never all in memory) as the dataset's new version."""
    with store.staging() as tmp:
        accumulator = _profile_accumulator(batches.schema) if profile else None
        rows = write_parquet(batches, tmp / storage.DATA_FILE, observer=accumulator)
        schema = batches.schema
        if log:
            log.info(f"Wrote {rows:,} rows × {len(schema)} columns to Parquet.")
        version = store.new_version()
        metadata = _publish(store, version, tmp, schema, {}, rows=rows, profile=profile, accept=accept, subtitle=subtitle,
                            run_id=run_id, state=state, versions_kept=versions_kept, gate=gate,
                            accumulated=accumulator)
    metadata.update(_base_metadata(version, rows, len(schema)))
    return Materialized(None, rows, len(schema), schema, metadata)


# Row groups of 128k rows: memory stays at one group whatever the source's size, and the
# profile's DuckDB scans the groups on all cores (1M-row groups: one core, 1.5x slower).
ROW_GROUP_ROWS = 128 * 1024


def write_parquet(batches: pa.RecordBatchReader, path: Path, row_group_rows: int = ROW_GROUP_ROWS, *,
                  observer: BatchObserver | None = None) -> int:
    """Stream ``batches`` into a Parquet file, each shown to ``observer`` on its way; returns
    the row count."""
    rows = 0
    with pq.ParquetWriter(path, batches.schema, compression=COMPRESSION) as writer:
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        for index, batch in enumerate(batches):
            if observer:
                observer.add(observer.summarize(batch, (index,)))
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= row_group_rows:
                writer.write_table(pa.Table.from_batches(pending, batches.schema))
                rows, pending, pending_rows = rows + pending_rows, [], 0
        if pending or rows == 0:
            writer.write_table(pa.Table.from_batches(pending, batches.schema))
            rows += pending_rows
    return rows


def stored_schema(stored: DatasetStore | DatasetVersion | None) -> pa.Schema | None:
    """The schema of a version (the current one, for a store), read from the Parquet footer only."""
    if stored is None:
        return None
    path = stored.path(storage.DATA_FILE)
    if not path.exists():
        return None
    with path.open("rb") as file:
        return pq.read_schema(file)


def _publish(store: DatasetStore, version: DatasetVersion, tmp: Path, schema: pa.Schema, staged: dict, *, rows: int,
             profile: bool, accept, subtitle: str, run_id: str | None, state: State | None, versions_kept: int,
             gate: Gate | None = None, accumulated: ProfileAccumulator | None = None) -> dict:
    """Profile the staged Parquet (from the statistics ``accumulated`` while it was written,
    where there are), then publish the version whole; returns the profile's metadata."""
    if accept:
        accept(schema)
    data_file = tmp / storage.DATA_FILE
    if gate:
        gate(data_file)
    metadata: dict = {}
    if profile:
        metadata = _profile(version, data_file, subtitle, tmp, staged, accumulated)
    metadata["size_bytes"] = MetadataValue.int(data_file.stat().st_size)
    staged[storage.DATA_FILE] = data_file
    store.publish_version(version, staged, rows=rows, run_id=run_id, state=state() if state else None, versions_kept=versions_kept)
    metadata[VERSION_METADATA] = MetadataValue.text(version.id)
    return metadata


def _profile_accumulator(schema: pa.Schema) -> ProfileAccumulator | None:
    """What computes the profile while the data is written (None where the table is too
    wide or of types only ``profile_parquet`` handles). Imported here: DuckDB and numpy are
    not needed by an import without a profile."""
    from dataplat_dagster.profile.accumulate import ProfileAccumulator

    return ProfileAccumulator.for_schema(schema)


def _profile(version: DatasetVersion, data_file: Path, subtitle: str, tmp: Path, staged: dict,
             accumulated: ProfileAccumulator | None) -> dict:
    from dataplat_dagster.profile.metadata import profile_metadata
    from dataplat_dagster.profile.plots import correlation_heatmap_png, distribution_grid_png
    from dataplat_dagster.profile.stats import profile_parquet
    from dataplat_dagster.profile.report import html_report

    profile = accumulated.finish(data_file) if accumulated else profile_parquet(data_file)
    images = {}
    for key, render in (("distributions", distribution_grid_png), ("correlations", correlation_heatmap_png)):
        png = render(profile)
        if png:
            file = storage.IMAGE_FILES[key]
            images[key] = png
            (tmp / file).write_bytes(png)
            staged[file] = tmp / file
    staged[storage.PROFILE_FILE] = _write_json(tmp / storage.PROFILE_FILE, profile)
    report = tmp / storage.REPORT_FILE
    report.write_text(html_report(version.store.name, profile, images, subtitle), encoding="utf-8")
    staged[storage.REPORT_FILE] = report
    metadata = profile_metadata(profile, images)
    metadata["report"] = MetadataValue.url(version.uri(storage.REPORT_FILE))
    return metadata


def _base_metadata(version: DatasetVersion, rows: int, columns: int) -> dict:
    return {
        "dagster/row_count": MetadataValue.int(rows),
        "dagster/uri": MetadataValue.text(version.uri(storage.DATA_FILE)),
        "columns_count": MetadataValue.int(columns),
    }


def _write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    return path
