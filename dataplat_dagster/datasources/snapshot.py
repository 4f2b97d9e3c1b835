"""A snapshot of a datasource into a dataset: the body of a snapshot dataset's asset.

Read the datasource through its connector (SQL as Arrow batches; a file downloaded, then
parsed as an upload is), compare the new schema with the stored version's (the
``schema_drift`` check), and publish the new version, or refuse it under
``drift_policy: fail``, leaving the previous version current. An incremental datasource
fetches only the rows past its cursor and appends them to the stored version.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dagster import AssetExecutionContext, Config, Failure, MaterializeResult, MetadataValue
from pydantic import Field

from dataplat_dagster.datasets import storage
from dataplat_dagster.datasets.storage import DatasetStore
from dataplat_dagster.datasources.drift import SchemaDrift, compare_schemas, drift_check_result
from dataplat_dagster.datasources.incremental import CURSOR_KEY, Cursor, CursorTracker, where_after
from dataplat_dagster.datasources.models import DatasourceSpec
from dataplat_dagster.datasources.reading import fetch_file, parquet_batches, read_sql
from dataplat_dagster.errors import DataplatError

SOURCE_VERSION_KEY = "dataplat/source_version"


class SnapshotConfig(Config):
    """Run config of a snapshot dataset's materialization."""

    profile: bool = Field(True, description="Compute statistics, plots and the HTML report.")
    full_refresh: bool = Field(False, description="Incremental datasources: read every row again, not only new ones.")


class _Refused(Exception):
    def __init__(self, drift: SchemaDrift) -> None:
        self.drift = drift


class Snapshot:
    """One snapshot of datasource ``datasource`` into the dataset stored in ``store``."""

    def __init__(self, context: AssetExecutionContext, store: DatasetStore, datasource: str, spec: DatasourceSpec, connector, config: SnapshotConfig):
        from dataplat_dagster.datasets.materialize import stored_schema

        self.context, self.store, self.datasource, self.spec = context, store, datasource, spec
        self.connector, self.config = connector, config
        self.previous = stored_schema(store)
        self.drift: SchemaDrift | None = None

    def run(self) -> Iterator:
        try:
            done, extra = self._snapshot_file() if self.spec.kind == "path" else self._snapshot_sql()
        except _Refused as refused:
            yield drift_check_result(refused.drift, "fail", refused=True)
            raise Failure(
                description=f"The snapshot of datasource {self.datasource!r} was refused: {refused.drift.describe()} "
                "Its drift_policy is 'fail', so the previous version stays current. Set drift_policy: warn "
                "in the datasource to accept the new schema.",
                allow_retries=False,
            ) from None
        except DataplatError as error:
            raise Failure(description=f"Datasource {self.datasource!r}: {error}", allow_retries=False) from None
        metadata = {
            **done.metadata,
            **extra,
            "dataplat/datasource": MetadataValue.text(self.datasource),
            "datasource_target": MetadataValue.text(self.spec.target()),
        }
        yield MaterializeResult(metadata=metadata, check_results=[drift_check_result(self.drift, self.spec.drift_policy)])

    def _accept(self, schema) -> None:
        """Called with the new version's schema before anything is published."""
        self.drift = compare_schemas(self.previous, schema)
        if not self.drift.drifted:
            return
        if self.spec.drift_policy == "fail":
            raise _Refused(self.drift)
        self.context.log.warning(self.drift.describe())

    # -- files --------------------------------------------------------------------------

    def _snapshot_file(self):
        from dataplat_dagster.ingest.dialect import CsvOverrides
        from dataplat_dagster.datasets.materialize import materialize_arrow_dataset, materialize_file_dataset

        with tempfile.TemporaryDirectory(prefix="dataplat-snapshot-") as tmp:
            fetched = fetch_file(self.connector, self.spec, Path(tmp))
            self.context.log.info(f"Downloaded {self.spec.path} ({fetched.info.size:,} bytes).")
            try:
                if fetched.is_parquet:
                    done = materialize_arrow_dataset(
                        self.store, parquet_batches(fetched.local), profile=self.config.profile, log=self.context.log,
                        accept=self._accept, subtitle=f"Parquet file {self.spec.path}",
                    )
                else:
                    overrides = CsvOverrides(**self.spec.options.model_dump())
                    done = materialize_file_dataset(
                        self.store, fetched.local, overrides, profile=self.config.profile, log=self.context.log,
                        accept=self._accept, source_label=self.spec.path,
                    )
            except DataplatError as error:
                # The user knows the file by its path in the store, not the download's.
                raise type(error)(str(error).replace(str(fetched.local), self.spec.path)) from None
        info = fetched.info
        return done, {
            SOURCE_VERSION_KEY: MetadataValue.text(info.version),
            "source_size_bytes": MetadataValue.int(info.size),
            "source_modified": MetadataValue.text(info.modified.isoformat() if info.modified else "unknown"),
        }

    # -- SQL ----------------------------------------------------------------------------

    def _snapshot_sql(self):
        from dataplat_dagster.datasets.materialize import materialize_arrow_dataset

        column = self.spec.incremental_by
        tracker = CursorTracker(column) if column else None
        cursor = self._stored_cursor() if column else None
        if cursor is not None:
            appended = self._append_past(cursor, tracker)
            if appended is not None:
                return appended
        reader = read_sql(self.connector, self.spec)
        if tracker:
            tracker.check(reader.schema, f"datasource {self.datasource!r}")
            reader = _reader(reader.schema, tracker.follow(reader))
        done = materialize_arrow_dataset(
            self.store, reader, profile=self.config.profile, log=self.context.log, accept=self._accept, subtitle=self._subtitle()
        )
        extra = {"refresh": MetadataValue.text("full")}
        if tracker and (new_cursor := tracker.cursor(self.connector)):
            extra[CURSOR_KEY] = MetadataValue.json(new_cursor.to_json())
        return done, extra

    def _stored_cursor(self) -> Cursor | None:
        if self.config.full_refresh or self.previous is None:
            return None
        event = self.context.instance.get_latest_materialization_event(self.context.asset_key)
        metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
        return Cursor.from_metadata(metadata, self.spec.incremental_by)

    def _append_past(self, cursor: Cursor, tracker: CursorTracker):
        """The stored version followed by the rows past ``cursor``; None when the source's
        schema has changed, so that the whole table is read again (and the drift reported)."""
        import pyarrow as pa

        from dataplat_dagster.datasets.materialize import materialize_arrow_dataset

        reader = read_sql(self.connector, self.spec, where=where_after(self.connector, cursor))
        fetched_nothing = all(pa.types.is_null(f.type) for f in reader.schema)  # an empty result, typeless
        if not fetched_nothing and compare_schemas(self.previous, reader.schema).drifted:
            reader.close()
            self.context.log.warning("The source's columns changed since the last snapshot: reading every row again.")
            return None
        self.context.log.info(f"Incremental refresh: rows where {cursor.column} > {cursor.value}.")
        new_rows = [] if fetched_nothing else tracker.follow(_cast(reader, self.previous))
        counted = _Counter(new_rows)
        with self.store.local_file(storage.DATA_FILE) as stored:
            combined = itertools.chain(parquet_batches(Path(stored)), counted)
            done = materialize_arrow_dataset(
                self.store, _reader(self.previous, combined), profile=self.config.profile, log=self.context.log,
                accept=self._accept, subtitle=self._subtitle(),
            )
        self.context.log.info(f"Appended {counted.rows:,} new rows.")
        new_cursor = tracker.cursor(self.connector) or cursor
        return done, {
            "refresh": MetadataValue.text("incremental"),
            "appended_rows": MetadataValue.int(counted.rows),
            CURSOR_KEY: MetadataValue.json(new_cursor.to_json()),
        }

    def _subtitle(self) -> str:
        return f"Snapshot of datasource {self.datasource} ({self.spec.kind} {self.spec.target()})"


class _Counter:
    def __init__(self, batches) -> None:
        self.batches, self.rows = batches, 0

    def __iter__(self):
        for batch in self.batches:
            self.rows += batch.num_rows
            yield batch


def _reader(schema, batches):
    import pyarrow as pa

    return pa.RecordBatchReader.from_batches(schema, batches)


def _cast(reader, schema) -> Iterator:
    """The new rows in the stored version's exact types (the same names and type names;
    nullability and field metadata may differ between drivers' readers)."""
    for batch in reader:
        yield batch.cast(schema) if batch.schema != schema else batch
