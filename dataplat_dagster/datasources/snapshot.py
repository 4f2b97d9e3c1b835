"""A snapshot of a datasource into a dataset: the body of a snapshot dataset's asset.

Read the datasource through its connector (SQL as Arrow batches; a file downloaded, then
parsed as an upload is), compare the new schema with the stored version's (the
``schema_drift`` check), and publish the new version, or refuse it under
``drift_policy: fail``, leaving the previous version current. An incremental datasource
fetches only the rows from its cursor on and adds them to the stored version (upserted by
its ``merge_key``, if it has one); the cursor is read from, and written into, the manifest
of the version it belongs to (see ``incremental``).
"""

from __future__ import annotations

import contextlib
import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dagster import AssetExecutionContext, Config, Failure, MaterializeResult, MetadataValue
from pydantic import Field

from dataplat_dagster.datasets import storage
from dataplat_dagster.datasets.storage import DatasetStore
from dataplat_dagster.datasources.drift import SchemaDrift, compare_schemas, drift_check_result
from dataplat_dagster.datasources.incremental import CURSOR_KEY, BoundaryRows, Cursor, CursorTracker, upsert, where_from
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


class _QualityRefused(Exception):
    """Under ``quality_policy: fail``, the new version failed an error check."""


class Snapshot:
    """One snapshot of datasource ``datasource`` into the dataset stored in ``store``."""

    def __init__(self, context: AssetExecutionContext, store: DatasetStore, datasource: str, spec: DatasourceSpec, connector,
                 config: SnapshotConfig, versions_kept: int = storage.DEFAULT_VERSIONS_KEPT, checks: dict | None = None):
        from dataplat_dagster.datasets.materialize import stored_schema

        self.context, self.store, self.datasource, self.spec = context, store, datasource, spec
        self.connector, self.config = connector, config
        # Resolved once: the schema, the cursor and the rows added to are those of one version.
        self.current = store.current()
        self.previous = stored_schema(self.current)
        self.drift: SchemaDrift | None = None
        self.publishing = {"run_id": context.run_id, "versions_kept": versions_kept}
        # The dataset's checks under quality_policy: fail, evaluated on the staged version.
        self.checks = checks or {}
        if any(check.severity == "error" for check in self.checks.values()):
            self.publishing["gate"] = self._gate

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
        except _QualityRefused as refused:
            raise Failure(
                description=f"The new version of datasource {self.datasource!r} was refused: it failed its error check(s) "
                f"({refused}). Its quality_policy is 'fail', so the previous version stays current. Fix the source, "
                "or set quality_policy: warn in the datasource to publish such a version with the checks failed.",
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

    def _gate(self, parquet: Path) -> None:
        """Called with the new version's staged Parquet before anything is published."""
        from dataplat_dagster.quality.gate import staged_refusal

        reason = staged_refusal(parquet, self.checks)
        if reason:
            raise _QualityRefused(reason)

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
                        accept=self._accept, subtitle=f"Parquet file {self.spec.path}", **self.publishing,
                    )
                else:
                    overrides = CsvOverrides(**self.spec.options.model_dump())
                    done = materialize_file_dataset(
                        self.store, fetched.local, overrides, profile=self.config.profile, log=self.context.log,
                        accept=self._accept, source_label=self.spec.path, **self.publishing,
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
            refreshed = self._refresh_from(cursor, tracker)
            if refreshed is not None:
                return refreshed
        source = read_sql(self.connector, self.spec)
        # Closed whatever happens: an open result would hold the source's locks for as long as the process lives.
        with contextlib.closing(source):
            reader = source
            if tracker:
                tracker.check(source.schema, f"datasource {self.datasource!r}", self.spec.merge_key)
                reader = _reader(source.schema, tracker.follow(source))
            done = materialize_arrow_dataset(
                self.store, reader, profile=self.config.profile, log=self.context.log, accept=self._accept, subtitle=self._subtitle(),
                state=lambda: _cursor_state(tracker.cursor(self.connector) if tracker else None), **self.publishing,
            )
        extra = {"refresh": MetadataValue.text("full")}
        if tracker and (new_cursor := tracker.cursor(self.connector)):
            extra[CURSOR_KEY] = MetadataValue.json(new_cursor.to_json())
        return done, extra

    def _stored_cursor(self) -> Cursor | None:
        """The cursor the current version's data reaches, from its manifest; a version
        stored before manifests existed has it in its materialization's metadata."""
        if self.config.full_refresh or self.current is None:
            return None
        if self.current.id != storage.INITIAL_VERSION:
            return Cursor.from_json(self.current.state.get("cursor"), self.spec.incremental_by)
        event = self.context.instance.get_latest_materialization_event(self.context.asset_key)
        metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
        return Cursor.from_metadata(metadata, self.spec.incremental_by)

    def _refresh_from(self, cursor: Cursor, tracker: CursorTracker):
        """The stored version with the rows from ``cursor`` on added (upserted, with a merge
        key); None when the source's schema has changed, so that the whole table is read
        again (and the drift reported)."""
        import pyarrow as pa

        reader = read_sql(self.connector, self.spec, where=where_from(self.connector, cursor))
        fetched_nothing = all(pa.types.is_null(f.type) for f in reader.schema)  # an empty result, typeless
        if not fetched_nothing and compare_schemas(self.previous, reader.schema).drifted:
            reader.close()
            self.context.log.warning("The source's columns changed since the last snapshot: reading every row again.")
            return None
        if not fetched_nothing:
            try:
                tracker.check(reader.schema, f"datasource {self.datasource!r}", self.spec.merge_key)
            except Exception:
                reader.close()
                raise
        self.context.log.info(f"Incremental refresh: rows where {cursor.column} >= {cursor.value}.")
        fetched = [] if fetched_nothing else tracker.follow(_cast(reader, self.previous))
        # Closed whatever happens: an open result would hold the source's locks for as long as the process lives.
        with contextlib.closing(reader), self.current.local_file(storage.DATA_FILE) as stored:
            # The version's manifest gets the cursor its data reaches, known once the rows are written.
            state = lambda: _cursor_state(tracker.cursor(self.connector) or cursor)  # noqa: E731
            if self.spec.merge_key:
                done, extra = self._upsert(Path(stored), fetched, state)
            else:
                done, extra = self._append(Path(stored), fetched, cursor, state)
        new_cursor = tracker.cursor(self.connector) or cursor
        return done, {"refresh": MetadataValue.text("incremental"), **extra, CURSOR_KEY: MetadataValue.json(new_cursor.to_json())}

    def _append(self, stored: Path, fetched, cursor: Cursor, state):
        """The stored rows, then the fetched ones but those already stored at the boundary."""
        from dataplat_dagster.datasets.materialize import materialize_arrow_dataset

        boundary = BoundaryRows(stored, cursor.column)
        counted = _Counter(boundary.new_rows(fetched))
        done = materialize_arrow_dataset(
            self.store, _reader(self.previous, itertools.chain(parquet_batches(stored), counted)), profile=self.config.profile,
            log=self.context.log, accept=self._accept, subtitle=self._subtitle(), state=state,
            **self.publishing,
        )
        self.context.log.info(f"Appended {counted.rows:,} new rows ({boundary.dropped:,} at the cursor value were stored already).")
        return done, {"appended_rows": MetadataValue.int(counted.rows)}

    def _upsert(self, stored: Path, fetched, state):
        """Per merge key, the newest fetched row replaces the stored one; new keys are added."""
        from dataplat_dagster.datasets.materialize import materialize_arrow_dataset, write_parquet

        with tempfile.TemporaryDirectory(prefix="dataplat-upsert-") as tmp:
            fetched_file = Path(tmp) / "fetched.parquet"
            write_parquet(_reader(self.previous, fetched), fetched_file)
            merged = upsert(stored, fetched_file, self.spec.merge_key, self.spec.incremental_by)
            done = materialize_arrow_dataset(
                self.store, _reader(self.previous, _cast(merged.batches, self.previous)), profile=self.config.profile,
                log=self.context.log, accept=self._accept, subtitle=self._subtitle(), state=state,
                **self.publishing,
            )
            merged.connection.close()
        keys = ", ".join(self.spec.merge_key)
        self.context.log.info(f"Upserted by {keys}: {merged.inserted:,} new rows, {merged.updated:,} replaced.")
        return done, {"inserted_rows": MetadataValue.int(merged.inserted), "updated_rows": MetadataValue.int(merged.updated)}

    def _subtitle(self) -> str:
        return f"Snapshot of datasource {self.datasource} ({self.spec.kind} {self.spec.target()})"


class _Counter:
    def __init__(self, batches) -> None:
        self.batches, self.rows = batches, 0

    def __iter__(self):
        for batch in self.batches:
            self.rows += batch.num_rows
            yield batch


def _cursor_state(cursor: Cursor | None) -> dict:
    """What a version's manifest records of an incremental refresh: the cursor its data reaches."""
    return {"cursor": cursor.to_json()} if cursor else {}


def _reader(schema, batches):
    import pyarrow as pa

    return pa.RecordBatchReader.from_batches(schema, batches)


def _cast(reader, schema) -> Iterator:
    """The new rows in the stored version's exact types (the same names and type names;
    nullability and field metadata may differ between drivers' readers)."""
    for batch in reader:
        yield batch.cast(schema) if batch.schema != schema else batch
