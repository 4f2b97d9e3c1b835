"""The embedded instance's SQLite storage: Dagster's own (``DagsterSqliteStorage``), except
that each run's event log database starts as a copy of an empty one, and that databases
already at the schema's head revision are opened without asking alembic again.

Dagster's SQLite event log keeps one database per run (``history/runs/<run id>.db``) and
creates each with its 21 tables and indexes, one committed statement at a time: 0.45 s of
every run on this project's machines, measured, more than a small import's own work. The
copy takes 0.03 s. The empty database is made once per Dagster version by Dagster's own code
(``_initdb``: its schema, WAL mode and alembic revision), then copied. Run, schedule and index
storage are Dagster's, unchanged, so the UI, the daemon and ``dagster`` commands read the same
files.

Dagster checks a database's alembic revision each time it opens the run or schedule storage,
and each run's event log: each check loads every migration script (0.03-0.04 s, three or
four per command). The empty database carries the head revision of this Dagster version (its
own ``_initdb`` stamped it), so a database whose ``alembic_version`` reads the same is
opened as Dagster opens a stamped one; any other (new, older, unreadable) goes through
Dagster's own ``from_local``, which creates, stamps or reports it.

``dataplat init`` writes this class into ``dagster.yaml`` (``storage: custom:``); an
instance configured with ``storage: sqlite:`` works as before, paying the 0.45 s.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from contextlib import closing

from dagster import __version__ as dagster_version
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import (
    SqliteScheduleStorage,
)
from dagster._core.storage.sqlite import create_db_conn_string
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage


class EmptyCopySqliteEventLogStorage(SqliteEventLogStorage):
    def _initdb(self, engine, for_index_shard=False) -> None:
        path = engine.url.database
        if not for_index_shard and path and not os.path.exists(path):
            self._copy_empty_database(path)
        if not (path and _at_head(path, self._base_dir)):
            super()._initdb(engine, for_index_shard)

    def _copy_empty_database(self, path: str) -> None:
        empty = _empty_database(self._base_dir)
        if not os.path.exists(empty):
            scratch = self._scratch()
            super()._initdb(_engine(scratch))
            os.replace(scratch, empty)  # two processes making it at once: each result whole
        scratch = self._scratch()
        shutil.copyfile(empty, scratch)
        try:
            os.link(scratch, path)  # never over a database another process made meanwhile
        except FileExistsError:
            pass
        finally:
            os.unlink(scratch)

    def _scratch(self) -> str:
        handle, scratch = tempfile.mkstemp(dir=self._base_dir, prefix=".", suffix=".tmp")
        os.close(handle)
        os.unlink(scratch)
        return scratch


def _empty_database(event_log_dir: str) -> str:
    # A hidden name: Dagster lists a run's database as "*.db" in this folder.
    return os.path.join(event_log_dir, f".empty-{dagster_version}.db")


def _revision(path: str) -> str | None:
    """The alembic revision a SQLite database is stamped with; None if it has none."""
    if not os.path.exists(path):
        return None
    try:
        with closing(sqlite3.connect(path)) as database:
            row = database.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def _at_head(path: str, event_log_dir: str) -> bool:
    """The database at ``path`` is stamped with this Dagster version's head revision (the
    empty database's, once it exists)."""
    head = _revision(_empty_database(event_log_dir))
    return head is not None and _revision(path) == head


def _engine(path: str):
    from dagster._core.storage.sql import create_engine
    from sqlalchemy.pool import NullPool

    return create_engine(f"sqlite:///{path}", poolclass=NullPool)


class DataplatSqliteStorage(DagsterSqliteStorage):
    """``storage: custom:`` with ``base_dir`` as ``storage: sqlite:`` takes it."""

    def __init__(self, base_dir: str, inst_data=None):
        # DagsterSqliteStorage's own, with the event log class changed: calling it would open
        # (and check) a second event log storage for nothing.
        self.base_dir = base_dir
        history, runs, schedules = (os.path.join(base_dir, *parts) for parts in (("history", ""), ("history", "runs", ""),
                                                                                    ("schedules",)))
        self._run_storage = _opened(SqliteRunStorage, history, "runs", runs)
        self._event_log_storage = EmptyCopySqliteEventLogStorage(runs)
        self._schedule_storage = _opened(SqliteScheduleStorage, schedules, "schedules", runs)
        self._inst_data = inst_data
        DagsterStorage.__init__(self)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> DataplatSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)


def _opened(storage_class, base_dir: str, name: str, event_log_dir: str):
    """A run or schedule storage: as ``from_local`` returns it for a database at the head
    revision, without its check; through ``from_local`` otherwise."""
    if _at_head(os.path.join(base_dir, f"{name}.db"), event_log_dir):
        return storage_class(create_db_conn_string(base_dir, name))
    return storage_class.from_local(base_dir)
