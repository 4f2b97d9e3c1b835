"""Parse a flat file into a stored, profiled dataset: the body of a dataset asset.

Detect the dialect, stream the file into Parquet, profile it, render the plots and the HTML
report, then publish every file to the dataset's storage folder. Until the last step nothing
under the dataset's final names changes, so a failure leaves the previous version intact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dagster import MetadataValue

from dataplat_dagster.datasets import storage
from dataplat_dagster.datasets.detect import detect_dialect
from dataplat_dagster.datasets.dialect import CsvOverrides, Dialect
from dataplat_dagster.datasets.ingest import ingest_csv
from dataplat_dagster.datasets.storage import DatasetStore


PROFILE_FILES = (storage.PROFILE_FILE, storage.REPORT_FILE, *storage.IMAGE_FILES.values())


@dataclass(frozen=True)
class Materialized:
    dialect: Dialect
    rows: int
    columns: int
    metadata: dict


def materialize_file_dataset(
    store: DatasetStore,
    source: Path,
    overrides: CsvOverrides,
    *,
    profile: bool = True,
    log=None,
    dialect: Dialect | None = None,
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
        result = ingest_csv(source, dialect, data_file)
        # The whole file can overrule the sample (a column demoted to text, say): keep what was read.
        dialect = result.dialect or dialect
        if log:
            log.info(f"Parsed {result.rows:,} rows × {result.columns} columns into Parquet.")
            for note in result.notes:
                log.warning(note)
        staged = {storage.DIALECT_FILE: _write_json(tmp / storage.DIALECT_FILE, dialect.to_json())}
        metadata: dict = {}
        if profile:
            metadata = _profile(store, data_file, dialect, tmp, staged)
        size = data_file.stat().st_size
        # Side files first, the Parquet last: the data file's appearance marks the new version.
        for name, path in staged.items():
            store.publish(path, name)
        store.publish(data_file, storage.DATA_FILE)
    if not profile:
        # A profile of an earlier version would describe other data.
        for name in PROFILE_FILES:
            store.remove(name)
    metadata.update(_base_metadata(store, dialect, result, size, source))
    return Materialized(dialect, result.rows, result.columns, metadata)


def _profile(store: DatasetStore, data_file: Path, dialect: Dialect, tmp: Path, staged: dict) -> dict:
    from dataplat_dagster.datasets.metadata import profile_metadata
    from dataplat_dagster.datasets.plots import correlation_heatmap_png, distribution_grid_png
    from dataplat_dagster.datasets.profile import profile_parquet
    from dataplat_dagster.datasets.report import html_report

    profile = profile_parquet(data_file)
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
    report.write_text(html_report(store.name, profile, images, dialect.describe()), encoding="utf-8")
    staged[storage.REPORT_FILE] = report
    metadata = profile_metadata(profile, images)
    metadata["report"] = MetadataValue.url(store.uri(storage.REPORT_FILE))
    return metadata


def _base_metadata(store: DatasetStore, dialect: Dialect, result, size: int, source: Path) -> dict:
    return {
        "dagster/row_count": MetadataValue.int(result.rows),
        "dagster/uri": MetadataValue.text(store.uri(storage.DATA_FILE)),
        "size_bytes": MetadataValue.int(size),
        "columns_count": MetadataValue.int(result.columns),
        "dialect": MetadataValue.json(dialect.to_json()),
        "dialect_summary": MetadataValue.text(dialect.describe()),
        "source_file": MetadataValue.text(source.name),
    }


def _write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    return path
