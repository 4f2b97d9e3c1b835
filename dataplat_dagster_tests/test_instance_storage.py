"""The embedded instance's storage: a run's event log database starts as a copy of an empty
one, which must be the database Dagster itself would have made."""

import sqlite3

import pytest

from dagster import AssetKey, DagsterInstance, asset, materialize
from dagster import __version__ as dagster_version
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SqliteEventLogStorage,
)

from dataplat_dagster.instance_storage import EmptyCopySqliteEventLogStorage
from dataplat_dagster.workspace import INSTANCE_YAML


@asset
def numbers():
    return [1, 2, 3]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A DAGSTER_HOME with the workspace's dagster.yaml (``dataplat init`` writes it)."""
    (tmp_path / "dagster.yaml").write_text(INSTANCE_YAML)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    return tmp_path


def schema(path) -> tuple[list, list, str]:
    with sqlite3.connect(path) as db:
        objects = sorted(db.execute("SELECT type, name, sql FROM sqlite_master").fetchall())
        revision = db.execute("SELECT version_num FROM alembic_version").fetchall()
        (mode,) = db.execute("PRAGMA journal_mode").fetchone()
    return objects, revision, mode


def test_a_copied_run_database_is_the_one_dagster_makes(tmp_path):
    dagsters, ours = SqliteEventLogStorage(str(tmp_path / "dagster")), EmptyCopySqliteEventLogStorage(str(tmp_path / "ours"))
    for storage in (dagsters, ours):
        with storage.run_connection("r1"):
            pass
    assert schema(ours.path_for_shard("r1")) == schema(dagsters.path_for_shard("r1"))
    assert schema(ours.path_for_shard("r1"))[2] == "wal"
    # The empty database and the scratch copies are hidden from Dagster's list of runs.
    with ours.run_connection("r2"):
        pass
    assert sorted(ours.get_all_run_ids()) == ["r1", "r2"]
    assert sorted(p.name for p in (tmp_path / "ours").iterdir() if p.name.startswith(".")) == [f".empty-{dagster_version}.db"]


def test_an_instance_of_the_workspace_yaml_stores_and_reads_runs(home):
    with DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, EmptyCopySqliteEventLogStorage)
        results = [materialize([numbers], instance=instance) for _ in range(2)]
        assert all(result.success for result in results)
        for result in results:
            assert (home / "history" / "runs" / f"{result.run_id}.db").is_file()
            assert instance.get_run_by_id(result.run_id).is_success
        event = instance.get_latest_materialization_event(AssetKey("numbers"))
        assert event.run_id == results[-1].run_id
        assert len(instance.get_runs()) == 2


def test_databases_at_the_head_revision_skip_alembic_and_others_go_through_dagster(home, monkeypatch):
    """A database stamped with the empty database's revision opens without alembic's check;
    that revision is the one Dagster's check calls head, and a database stamped with any
    other still goes through Dagster's ``from_local``."""
    from dagster._core.storage.runs.sqlite import sqlite_run_storage
    from dagster._core.storage.sql import check_alembic_revision, get_alembic_config
    from sqlalchemy import create_engine

    from dataplat_dagster import instance_storage

    with DagsterInstance.get() as instance:
        assert materialize([numbers], instance=instance).success
    runs_db, event_logs = home / "history" / "runs.db", str(home / "history" / "runs")
    with create_engine(f"sqlite:///{runs_db}").connect() as connection:
        _, head = check_alembic_revision(get_alembic_config(sqlite_run_storage.__file__), connection)
    assert instance_storage._revision(instance_storage._empty_database(event_logs)) == head
    assert instance_storage._at_head(str(runs_db), event_logs)

    checked = []
    original = sqlite_run_storage.SqliteRunStorage.from_local.__func__
    monkeypatch.setattr(sqlite_run_storage.SqliteRunStorage, "from_local",
                        classmethod(lambda cls, base_dir, inst_data=None: checked.append(base_dir) or original(cls, base_dir, inst_data)))
    with DagsterInstance.get() as instance:
        assert len(instance.get_runs()) == 1
    assert checked == []

    with sqlite3.connect(runs_db) as db:
        db.execute("UPDATE alembic_version SET version_num = 'an-older-one'")
    assert not instance_storage._at_head(str(runs_db), event_logs)
    with DagsterInstance.get() as instance:
        assert len(instance.get_runs()) == 1
    assert checked == [str(home / "history") + "/"]
