"""Schema drift between snapshots under both policies, and incremental refreshes that
append only the rows past the stored cursor."""

import datetime
import json
import sqlite3

import pyarrow.parquet as pq
import pytest

from dataplat_dagster_tests.datasources.snapshots import SnapshotProject, failure_message
from dataplat_dagster_tests.datasources.sources import pg_connection
from dataplat_dagster_tests.datasources.test_snapshots import pg  # noqa: F401  (fixture)


def sqlite_project(tmp_path, policy: str) -> tuple[SnapshotProject, sqlite3.Connection]:
    db = sqlite3.connect(tmp_path / "src.db", isolation_level=None)
    db.execute("CREATE TABLE items (id INTEGER, name TEXT, price REAL, dropped TEXT)")
    db.executemany("INSERT INTO items VALUES (?, ?, ?, ?)", [(i, f"item {i}", i * 1.5, "x") for i in range(1, 21)])
    project = SnapshotProject(
        tmp_path, {"lite": {"type": "sql", "dialect": "sqlite", "database": str(tmp_path / "src.db")}},
        {"items": {"connector": "lite", "table": "items", "drift_policy": policy}}, {"items_snap": "items"},
    )
    return project, db


def change_schema(db: sqlite3.Connection) -> None:
    """Add a column, drop one, and retype price (REAL to TEXT) in one go."""
    db.execute("CREATE TABLE items2 (id INTEGER, name TEXT, price TEXT, added INTEGER)")
    db.execute("INSERT INTO items2 SELECT id, name, 'EUR ' || price, id * 10 FROM items")
    db.execute("DROP TABLE items")
    db.execute("ALTER TABLE items2 RENAME TO items")


EXPECTED = {
    "added": [{"name": "added", "type": "int64"}],
    "removed": [{"name": "dropped", "type": "string"}],
    "retyped": [{"name": "price", "before": "double", "after": "string"}],
}


def drift_metadata(project: SnapshotProject, dataset: str) -> dict:
    from dagster import AssetCheckKey

    record = project.instance.event_log_storage.get_asset_check_execution_history(AssetCheckKey(project.key(dataset), "schema_drift"), limit=1)[0]
    evaluation = record.event.dagster_event.event_specific_data
    return {key: value.value for key, value in evaluation.metadata.items()}


def test_drift_under_warn_is_reported_and_the_snapshot_taken(tmp_path):
    project, db = sqlite_project(tmp_path, "warn")
    assert project.snapshot("items_snap").success
    assert project.snapshot("items_snap").success
    assert project.drift("items_snap")["passed"]  # unchanged schema

    change_schema(db)
    result = project.snapshot("items_snap")
    assert result.success
    check = project.drift("items_snap")
    assert (check["passed"], check["severity"]) == (False, "WARN")
    assert check["description"] == (
        "Schema changed since the previous snapshot: added added (int64); removed dropped (string); retyped price (double → string).")
    metadata = drift_metadata(project, "items_snap")
    assert {key: metadata[key] for key in EXPECTED} == EXPECTED
    assert project.table("items_snap").column_names == ["id", "name", "price", "added"]
    assert project.table("items_snap").column("price")[0].as_py() == "EUR 1.5"


def test_drift_under_fail_refuses_the_snapshot_and_keeps_the_previous_one(tmp_path):
    project, db = sqlite_project(tmp_path, "fail")
    assert project.snapshot("items_snap").success
    before = project.table("items_snap")

    change_schema(db)
    result = project.snapshot("items_snap")
    assert not result.success
    message = failure_message(result)
    assert message.startswith("The snapshot of datasource 'items' was refused: Schema changed since the previous snapshot: added added (int64)")
    assert "drift_policy is 'fail'" in message
    check = project.drift("items_snap")
    assert (check["passed"], check["severity"]) == (False, "ERROR") and "was refused" in check["description"]
    assert {key: drift_metadata(project, "items_snap")[key] for key in EXPECTED} == EXPECTED
    assert project.table("items_snap").equals(before) and project.materializations("items_snap") == 1

    # Switching the policy to warn accepts the new schema.
    project.set_datasource("items", drift_policy="warn")
    assert project.snapshot("items_snap").success
    assert project.table("items_snap").column_names == ["id", "name", "price", "added"]


# -- incremental --------------------------------------------------------------------------


def insert_events(server, first: int, last: int, day: int = 1) -> None:
    with pg_connection(server) as db, db.cursor() as cursor:
        cursor.execute(
            "INSERT INTO snap_events SELECT i, 'event ' || i, timestamp '2024-01-01' + i * interval '1 minute' + %s * interval '1 day' "
            "FROM generate_series(%s, %s) i", (day - 1, first, last))


@pytest.fixture
def events(pg, postgres_server):
    with pg_connection(postgres_server) as db, db.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS snap_events")
        cursor.execute("CREATE TABLE snap_events (id int, label text, updated_at timestamp)")
    insert_events(postgres_server, 1, 1000)
    return pg


def test_an_incremental_refresh_appends_only_rows_past_the_cursor(events, tmp_path, postgres_server):
    project = SnapshotProject(
        tmp_path, {"pg": events}, {"events": {"connector": "pg", "table": "snap_events", "incremental_by": "updated_at"}},
        {"events_snap": "events"},
    )
    assert project.snapshot("events_snap").success
    first = project.metadata("events_snap")
    assert (first["refresh"], first["dagster/row_count"]) == ("full", 1000)
    assert first["dataplat/cursor"] == {"column": "updated_at", "literal": "'2024-01-01 16:40:00'", "value": "2024-01-01 16:40:00"}

    # New rows, and an old row changed in place without moving its cursor: only the new rows come.
    insert_events(postgres_server, 1001, 1250)
    with pg_connection(postgres_server) as db, db.cursor() as cursor:
        cursor.execute("UPDATE snap_events SET label = 'edited' WHERE id = 1")
    assert project.snapshot("events_snap").success
    second = project.metadata("events_snap")
    assert (second["refresh"], second["appended_rows"], second["dagster/row_count"]) == ("incremental", 250, 1250)
    assert second["dataplat/cursor"]["value"] == "2024-01-01 20:50:00"
    table = project.table("events_snap")
    assert table.column("id").to_pylist() == list(range(1, 1251))
    assert table.column("label")[0].as_py() == "event 1"  # not re-read
    assert table.column("updated_at")[1249].as_py() == datetime.datetime(2024, 1, 1, 20, 50)

    # Nothing new: the same rows, the same cursor.
    assert project.snapshot("events_snap").success
    third = project.metadata("events_snap")
    assert (third["appended_rows"], third["dagster/row_count"], third["dataplat/cursor"]) == (0, 1250, second["dataplat/cursor"])

    # A full refresh reads every row again, edits included.
    assert project.snapshot("events_snap", full_refresh=True).success
    full = project.metadata("events_snap")
    assert (full["refresh"], full["dagster/row_count"]) == ("full", 1250)
    labels = dict(zip(*project.table("events_snap").select(["id", "label"]).to_pydict().values()))
    assert (labels[1], labels[2], len(labels)) == ("edited", "event 2", 1250)


def test_an_incremental_source_whose_columns_changed_is_read_whole(events, tmp_path, postgres_server):
    project = SnapshotProject(
        tmp_path, {"pg": events}, {"events": {"connector": "pg", "table": "snap_events", "incremental_by": "updated_at"}},
        {"events_snap": "events"},
    )
    assert project.snapshot("events_snap").success
    with pg_connection(postgres_server) as db, db.cursor() as cursor:
        cursor.execute("ALTER TABLE snap_events ADD COLUMN source text DEFAULT 'web'")
    insert_events(postgres_server, 1001, 1010, day=2)
    assert project.snapshot("events_snap").success
    meta = project.metadata("events_snap")
    assert (meta["refresh"], meta["dagster/row_count"]) == ("full", 1010)
    assert project.table("events_snap").column_names == ["id", "label", "updated_at", "source"]
    assert project.drift("events_snap")["description"].startswith("Schema changed since the previous snapshot: added source (string)")


def test_a_cursor_column_that_does_not_exist_is_named(events, tmp_path):
    project = SnapshotProject(
        tmp_path, {"pg": events}, {"events": {"connector": "pg", "table": "snap_events", "incremental_by": "changed_on"}},
        {"events_snap": "events"},
    )
    result = project.snapshot("events_snap")
    assert not result.success
    assert "incremental_by names the column 'changed_on', which datasource 'events' does not have (its columns: id, label, updated_at)" in failure_message(result)


def test_a_refresh_with_a_merge_key_keeps_one_row_per_key(events, tmp_path, postgres_server):
    project = SnapshotProject(
        tmp_path, {"pg": events},
        {"events": {"connector": "pg", "table": "snap_events", "incremental_by": "updated_at", "merge_key": "id"}},
        {"events_snap": "events"},
    )
    assert project.snapshot("events_snap").success
    with pg_connection(postgres_server) as db, db.cursor() as cursor:
        # An edit that moves the cursor, a key changed twice since (the newest wins), a new
        # row committed late with the boundary's cursor value (16:40, that of id 1000).
        cursor.execute("UPDATE snap_events SET label = 'edited', updated_at = timestamp '2024-01-02 09:00' WHERE id = 1")
        cursor.execute("INSERT INTO snap_events VALUES (2, 'second edit', timestamp '2024-01-02 10:00'), "
                       "(2, 'first edit', timestamp '2024-01-02 08:00'), (5000, 'late', timestamp '2024-01-01 16:40')")
    assert project.snapshot("events_snap").success
    meta = project.metadata("events_snap")
    # id 1, id 2 and the boundary row id 1000 (read again) replace their rows; 5000 is new.
    assert (meta["refresh"], meta["inserted_rows"], meta["updated_rows"], meta["dagster/row_count"]) == ("incremental", 1, 3, 1001)
    assert meta["dataplat/cursor"]["value"] == "2024-01-02 10:00:00"
    table = project.table("events_snap")
    ids = table.column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 1001 and set(ids) == {*range(1, 1001), 5000}
    labels = dict(zip(ids, table.column("label").to_pylist()))
    assert (labels[1], labels[2], labels[3], labels[5000]) == ("edited", "second edit", "event 3", "late")
    assert table.schema.field("updated_at").type == "timestamp[us]"


def test_a_row_at_the_cursor_boundary_is_not_lost_nor_appended_twice(events, tmp_path, postgres_server):
    project = SnapshotProject(
        tmp_path, {"pg": events}, {"events": {"connector": "pg", "table": "snap_events", "incremental_by": "updated_at"}},
        {"events_snap": "events"},
    )
    assert project.snapshot("events_snap").success
    with pg_connection(postgres_server) as db, db.cursor() as cursor:
        cursor.execute("INSERT INTO snap_events VALUES (5000, 'late', timestamp '2024-01-01 16:40')")
    assert project.snapshot("events_snap").success
    meta = project.metadata("events_snap")
    assert (meta["appended_rows"], meta["dagster/row_count"]) == (1, 1001)
    ids = project.table("events_snap").column("id").to_pylist()
    assert ids == [*range(1, 1001), 5000]


def test_a_crash_after_the_data_write_then_a_refresh_appends_nothing_twice(events, tmp_path, postgres_server, monkeypatch):
    from dataplat_dagster.datasets.storage import DatasetStore, DatasetVersion

    project = SnapshotProject(
        tmp_path, {"pg": events}, {"events": {"connector": "pg", "table": "snap_events", "incremental_by": "updated_at"}},
        {"events_snap": "events"},
    )
    assert project.snapshot("events_snap").success
    insert_events(postgres_server, 1001, 1250)

    # The run dies once the new version's files are written, before it is made current: as
    # after a kill, nothing cleans up (its folder stays), and no materialization is recorded.
    def crash(*_args, **_kwargs):
        raise KeyboardInterrupt("injected crash")

    with monkeypatch.context() as patched:
        patched.setattr(DatasetStore, "_point", crash)
        patched.setattr(DatasetVersion, "remove", lambda self: None)
        assert not project.snapshot("events_snap").success
    published = json.loads((project.folder("events_snap") / "current.json").read_text())
    folders = [p for p in (project.folder("events_snap") / "versions").iterdir() if p.name != published["current"]]
    assert len(folders) == 1 and published["versions"] == [published["current"]]  # the crashed run's, never published
    crashed = folders[0]
    assert pq.read_metadata(crashed / "data.parquet").num_rows == 1250 and (crashed / "manifest.json").is_file()
    assert project.table("events_snap").num_rows == 1000 and project.materializations("events_snap") == 1

    assert project.snapshot("events_snap").success
    meta = project.metadata("events_snap")
    assert (meta["appended_rows"], meta["dagster/row_count"]) == (250, 1250)
    ids = project.table("events_snap").column("id").to_pylist()
    assert ids == list(range(1, 1251))
