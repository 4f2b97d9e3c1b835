"""What every command needs: the workspace, the project and the Dagster instance."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import click
from filelock import FileLock

from dataplat_dagster.workspace import Project, Workspace

# What the embedded instance's SQLite storage creates under DAGSTER_HOME on first use.
SQLITE_DATABASES = ("history/runs.db", "history/runs/index.db", "schedules/schedules.db")


@dataclass
class CliContext:
    workspace_dir: str | None
    project_name: str | None
    debug: bool

    @cached_property
    def workspace(self) -> Workspace:
        return Workspace.find(self.workspace_dir)

    @cached_property
    def project(self) -> Project:
        return self.workspace.project(self.project_name)

    def instance(self):
        """The workspace's instance: ``DAGSTER_HOME``, defaulting to the workspace folder."""
        return self._instance

    @cached_property
    def _instance(self):
        from dagster import DagsterInstance

        home = Path(os.environ.setdefault("DAGSTER_HOME", str(self.workspace.root)))
        if all((home / db).exists() for db in SQLITE_DATABASES):
            return DagsterInstance.get()
        # The first commands of a new workspace create the SQLite storages; two that do it
        # at once both stamp alembic's revision and one fails with an IntegrityError.
        (home / ".dataplat").mkdir(parents=True, exist_ok=True)
        with FileLock(home / ".dataplat" / "instance.lock", timeout=120):
            return DagsterInstance.get()


pass_context = click.make_pass_decorator(CliContext)
