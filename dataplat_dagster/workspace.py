"""Workspaces and projects on disk.

A workspace is a folder with ``workspace.yaml`` (one Dagster code location per project),
``dagster.yaml`` (the instance; ``DAGSTER_HOME`` defaults to this folder) and
``projects/<name>/``. A project folder holds its catalog (``dataplat.yaml``) and the
``definitions.py`` that Dagster loads as the project's code location.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from dataplat_dagster.errors import WorkspaceError

WORKSPACE_FILE = "workspace.yaml"
INSTANCE_FILE = "dagster.yaml"
PROJECTS_DIR = "projects"
CATALOG_FILE = "dataplat.yaml"
DEFINITIONS_FILE = "definitions.py"

# Project and dataset names become Dagster asset key parts, group names and folder names:
# keep them to what all three accept everywhere.
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
NAME_RULE = "a letter followed by up to 62 letters, digits or underscores"

WORKSPACE_YAML = """\
# One Dagster code location per dataplat project; `dataplat project create` adds them.
load_from:
"""

INSTANCE_YAML = """\
# The Dagster instance of this workspace. DAGSTER_HOME points at this folder
# (the dataplat CLI sets it when it is unset). SQLite storage, nothing to install:
# Dagster's own, whose runs' event logs start as a copy of an empty database
# (dataplat_dagster/instance_storage.py); `storage: sqlite:` works too, slower.
storage:
  custom:
    module: dataplat_dagster.instance_storage
    class: DataplatSqliteStorage
    config:
      base_dir:
        env: DAGSTER_HOME
nux:
  enabled: false
telemetry:
  enabled: false
"""

DEFINITIONS_PY = '''\
"""Code location of the dataplat project {name!r}, built from dataplat.yaml beside this file."""

from dataplat_dagster import project_definitions

defs = project_definitions(__file__)
'''

CATALOG_YAML = """\
# Catalog of the dataplat project {name!r}: its datasets (and, later, connectors,
# datasources, exporters). Edited by the `dataplat` CLI; safe to edit by hand and commit.
# storage_root: a folder relative to this project, or any fsspec URL (s3://bucket/prefix).
storage_root: storage
datasets: {{}}
"""


# The code locations this process has loaded, by project name (see ``Project.loaded``).
_LOADED_PROJECTS: dict[str, "Project"] = {}


def check_name(kind: str, name: str) -> str:
    if not NAME_PATTERN.match(name or ""):
        raise WorkspaceError(
            f"{name!r} is not a valid {kind} name: use {NAME_RULE} (for example 'sales_2024')."
        )
    return name


@dataclass(frozen=True)
class Project:
    name: str
    dir: Path

    @classmethod
    def loaded(cls, name: str) -> Project:
        """The project whose code location this process loaded. Resources and run config
        name a project, never its folder: each process (the code server, a run on another
        machine) finds the folder where it loaded the code location from."""
        try:
            return _LOADED_PROJECTS[name]
        except KeyError:
            raise WorkspaceError(
                f"Project {name!r} is not loaded in this process: load its code location "
                "(project_definitions) before using its resources."
            ) from None

    def remember(self) -> Project:
        _LOADED_PROJECTS[self.name] = self
        return self

    @property
    def catalog_path(self) -> Path:
        return self.dir / CATALOG_FILE

    @property
    def definitions_file(self) -> Path:
        return self.dir / DEFINITIONS_FILE


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def workspace_file(self) -> Path:
        return self.root / WORKSPACE_FILE

    @classmethod
    def find(cls, explicit: str | os.PathLike | None = None) -> Workspace:
        """``--workspace DIR``, else ``DATAPLAT_WORKSPACE``, else the nearest parent holding workspace.yaml."""
        given = explicit or os.environ.get("DATAPLAT_WORKSPACE")
        if given:
            root = Path(given).resolve()
            if not (root / WORKSPACE_FILE).is_file():
                raise WorkspaceError(
                    f"{root} is not a dataplat workspace: it has no {WORKSPACE_FILE}. "
                    f"Create one with `dataplat init {given}`."
                )
            return cls(root)
        for folder in (Path.cwd(), *Path.cwd().parents):
            if (folder / WORKSPACE_FILE).is_file():
                return cls(folder)
        raise WorkspaceError(
            f"No {WORKSPACE_FILE} in {Path.cwd()} or any parent folder. Run the command inside a "
            "workspace, pass --workspace DIR (or set DATAPLAT_WORKSPACE), or create one with `dataplat init DIR`."
        )

    @classmethod
    def init(cls, root: str | os.PathLike) -> Workspace:
        root = Path(root).resolve()
        if (root / WORKSPACE_FILE).exists():
            raise WorkspaceError(f"{root} already holds a {WORKSPACE_FILE}; nothing was changed.")
        (root / PROJECTS_DIR).mkdir(parents=True, exist_ok=True)
        if not (root / INSTANCE_FILE).exists():
            (root / INSTANCE_FILE).write_text(INSTANCE_YAML)
        (root / WORKSPACE_FILE).write_text(WORKSPACE_YAML)
        return cls(root)

    def project_names(self) -> list[str]:
        return self._project_names()

    def project(self, name: str | None = None) -> Project:
        """``--project NAME``, else ``DATAPLAT_PROJECT``, else the only project."""
        names = self.project_names()
        name = name or os.environ.get("DATAPLAT_PROJECT")
        if name is None:
            if len(names) != 1:
                listed = ", ".join(names) if names else "none yet"
                raise WorkspaceError(
                    f"Which project? This workspace has {len(names)} projects ({listed}). Pass "
                    "--project NAME or set DATAPLAT_PROJECT; create one with `dataplat project create NAME`."
                )
            name = names[0]
        if name not in names:
            raise WorkspaceError(
                f"No project {name!r} in {self.workspace_file} (projects: {', '.join(names) or 'none'}). "
                f"Create it with `dataplat project create {name}`."
            )
        return Project(name, self.root / PROJECTS_DIR / name)

    def create_project(self, name: str) -> Project:
        from dataplat_dagster.catalog.yaml_file import edited_yaml

        check_name("project", name)
        # Under workspace.yaml's lock: two projects created at once both get their location.
        with edited_yaml(self.workspace_file) as data:
            if name in self._project_names(data):
                raise WorkspaceError(f"Project {name!r} already exists in {self.workspace_file}.")
            project = Project(name, self.root / PROJECTS_DIR / name)
            project.dir.mkdir(parents=True, exist_ok=True)
            if not project.catalog_path.exists():
                project.catalog_path.write_text(CATALOG_YAML.format(name=name))
            if not project.definitions_file.exists():
                project.definitions_file.write_text(DEFINITIONS_PY.format(name=name))
            data["load_from"] = [*(data.get("load_from") or []), {
                "python_file": {
                    "relative_path": f"{PROJECTS_DIR}/{name}/{DEFINITIONS_FILE}",
                    "location_name": name,
                    "working_directory": f"{PROJECTS_DIR}/{name}",
                }
            }]
        return project

    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME") or self.root)

    def _load(self) -> dict:
        try:
            data = yaml.safe_load(self.workspace_file.read_text()) or {}
        except yaml.YAMLError as error:
            raise WorkspaceError(f"{self.workspace_file} is not valid YAML: {error}") from None
        if not isinstance(data, dict):
            raise WorkspaceError(f"{self.workspace_file} must be a mapping with a 'load_from' list.")
        return data

    def _locations(self, data: dict | None = None) -> list[dict]:
        """The code locations that are dataplat projects (other hand-written entries are kept as they are)."""
        found = []
        for item in (self._load() if data is None else data).get("load_from") or []:
            target = (item or {}).get("python_file") if isinstance(item, dict) else None
            if isinstance(target, dict) and str(target.get("relative_path", "")).startswith(f"{PROJECTS_DIR}/"):
                found.append(target)
        return found

    def _project_names(self, data: dict | None = None) -> list[str]:
        return [entry["location_name"] for entry in self._locations(data)]
