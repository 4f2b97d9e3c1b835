"""Writing an Arrow stream to a file exporter's path on FTP, SFTP, S3 or GCS.

The file is written locally first (CSV with a header, or Parquet), then uploaded: every
store's upload is atomic (a temporary name and a rename on FTP/SFTP, a multipart or
resumable upload that commits at its end on S3/GCS), so in mode **overwrite** a reader
sees the old complete file or the new one. Mode **timestamped** writes
``<stem>_<YYYYMMDD_HHMMSS><suffix>`` (UTC) beside the configured path, never over a file
that exists (one written in the same second makes this one take the next second's name,
see ``claim_timestamped``), and with ``retention: N`` deletes the oldest files of that
exact pattern beyond N.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path, PurePosixPath

from dataplat_dagster.exporters.models import TIMESTAMP_PATTERN, ExporterSpec, Written, claim_timestamped


def write_file(connector, spec: ExporterSpec, reader, *, uri_prefix: str) -> Written:
    """``uri_prefix`` is the URI of the store's root (s3://bucket/prefix/), for the written file's URI."""
    path = spec.path.lstrip("/")
    with tempfile.TemporaryDirectory(prefix="dataplat-export-") as tmp:
        local = Path(tmp) / PurePosixPath(path).name
        rows = _write_local(reader, local, spec.file_format)
        with connector.open_store() as store:
            if spec.mode == "timestamped":
                path = claim_timestamped(lambda stamp: _stamped(path, stamp), lambda name: _upload_new(store, local, name))
            else:
                store.upload(local, path)
            dropped = _apply_retention(store, spec) if spec.retention else []
    return Written(path, uri_prefix + path, rows, dropped)


def _upload_new(store, local: Path, path: str) -> bool:
    """Upload to ``path`` unless a file is there. (The stores have no upload-if-absent, so two
    exports looking at the same name at the same instant could still both write it.)"""
    if store.exists(path):
        return False
    store.upload(local, path)
    return True


def created_files(store, spec: ExporterSpec) -> list[str]:
    """The timestamped files of this exporter's pattern, oldest first."""
    folder, pattern = _pattern(spec.path.lstrip("/"))
    return sorted(info.path for info in store.list(folder) if pattern.fullmatch(PurePosixPath(info.path).name))


def _stamped(path: str, stamp: str) -> str:
    pure = PurePosixPath(path)
    suffix = "".join(pure.suffixes)
    stem = pure.name[: len(pure.name) - len(suffix)] if suffix else pure.name
    return str(pure.with_name(f"{stem}_{stamp}{suffix}"))


def _pattern(path: str) -> tuple[str, re.Pattern]:
    pure = PurePosixPath(path)
    suffix = "".join(pure.suffixes)
    stem = pure.name[: len(pure.name) - len(suffix)] if suffix else pure.name
    folder = "" if str(pure.parent) == "." else str(pure.parent) + "/"
    return folder, re.compile(re.escape(stem) + "_" + TIMESTAMP_PATTERN + re.escape(suffix))


def _write_local(reader, local: Path, file_format: str) -> int:
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    rows = 0
    if file_format == "csv":
        with pa_csv.CSVWriter(str(local), reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
        return rows
    with pq.ParquetWriter(str(local), reader.schema, compression="snappy") as writer:
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def _apply_retention(store, spec: ExporterSpec) -> list[str]:
    created = created_files(store, spec)
    doomed = created[: max(0, len(created) - spec.retention)]
    for path in doomed:
        store.delete(path)
    return doomed
