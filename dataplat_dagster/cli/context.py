"""What every command needs: the workspace, the project and the Dagster instance."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

import click

from dataplat_dagster.workspace import Project, Workspace


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

        os.environ.setdefault("DAGSTER_HOME", str(self.workspace.root))
        return DagsterInstance.get()


pass_context = click.make_pass_decorator(CliContext)
