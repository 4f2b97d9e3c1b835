"""The embedded instance's SQLite storage: Dagster's own (``DagsterSqliteStorage``), except
that each run's event log database starts as a copy of an empty one.

Dagster's SQLite event log keeps one database per run (``history/runs/<run id>.db``) and
creates each with its 21 tables and indexes, one committed statement at a time: 0.45 s of
every run on this project's machines, measured, more than a small import's own work. The
copy takes 0.03 s. The empty database is made once per Dagster version by Dagster's own code
(``_initdb``: its schema, WAL mode and alembic revision), then copied; Dagster still checks
the copy's revision as it checks any run's database. Run, schedule and index storage are
Dagster's, unchanged, so the UI, the daemon and ``dagster`` commands read the same files.

``dataplat init`` writes this class into ``dagster.yaml`` (``storage: custom:``); an
instance configured with ``storage: sqlite:`` works as before, paying the 0.45 s.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from dagster import __version__ as dagster_version
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import (
    SqliteScheduleStorage,
)
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage


class EmptyCopySqliteEventLogStorage(SqliteEventLogStorage):
    def _initdb(self, engine, for_index_shard=False) -> None:
        path = engine.url.database
        if not for_index_shard and path and not os.path.exists(path):
            self._copy_empty_database(path)
        super()._initdb(engine, for_index_shard)

    def _copy_empty_database(self, path: str) -> None:
        # Hidden names: Dagster lists a run's database as "*.db" in this folder.
        empty = os.path.join(self._base_dir, f".empty-{dagster_version}.db")
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
        self._run_storage = SqliteRunStorage.from_local(os.path.join(base_dir, "history", ""))
        self._event_log_storage = EmptyCopySqliteEventLogStorage(os.path.join(base_dir, "history", "runs", ""))
        self._schedule_storage = SqliteScheduleStorage.from_local(os.path.join(base_dir, "schedules"))
        self._inst_data = inst_data
        DagsterStorage.__init__(self)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> DataplatSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
