"""Dagster Components of dataplat, so ``dg list components`` and ``defs.yaml`` know our types.

A ``defs.yaml`` of a ``dg`` project can declare a whole dataplat project:

    type: dataplat_dagster.DataplatProject
    attributes:
      project_dir: ../../projects/sales   # folder holding dataplat.yaml (default: this folder)
"""

from pathlib import Path

import dagster as dg
from pydantic import Field

from dataplat_dagster.definitions import project_definitions


class DataplatProject(dg.Component, dg.Resolvable, dg.Model):
    """A dataplat project: the datasets declared in its catalog (``dataplat.yaml``), one
    asset each under ``[project, "datasets", name]``, with the jobs that refresh them, and
    its connectors, one resource each under its name, with the job that tests them."""

    project_dir: str = Field(".", description="Folder holding dataplat.yaml, relative to this defs.yaml.")

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return project_definitions(Path(context.path) / self.project_dir)
