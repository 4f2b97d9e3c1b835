"""Shared fixtures: a fresh workspace with one project, and the real `dataplat` CLI."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import DagsterInstance

from dataplat_dagster_tests.servers.fixtures import *  # noqa: F401,F403  (real servers on loopback)

DATAPLAT = str(Path(sys.executable).parent / "dataplat")

# Tests only ever reach servers on loopback. The default AWS and Google credential chains
# would ask the cloud's metadata address (169.254.169.254) when nothing else is set: never.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["NO_GCE_CHECK"] = "true"


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


@dataclass
class CliWorkspace:
    root: Path

    @property
    def project_dir(self) -> Path:
        return self.root / "projects" / "shop"

    def run(self, *args: str, check: bool = True, timeout: float = 180, env: dict[str, str] | None = None) -> CliResult:
        """Run ``dataplat ARGS`` in the workspace; ``env`` adds variables (e.g. secrets)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAPLAT_", "DAGSTER_HOME"))} | (env or {})
        proc = subprocess.run(
            [DATAPLAT, *args], cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        result = CliResult(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(f"dataplat {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return result

    @contextmanager
    def instance(self) -> Iterator[DagsterInstance]:
        """The workspace's Dagster instance, read directly (its dagster.yaml reads DAGSTER_HOME)."""
        previous = os.environ.get("DAGSTER_HOME")
        os.environ["DAGSTER_HOME"] = str(self.root)
        try:
            with DagsterInstance.from_config(str(self.root)) as instance:
                yield instance
        finally:
            if previous is None:
                os.environ.pop("DAGSTER_HOME", None)
            else:
                os.environ["DAGSTER_HOME"] = previous

    def datasets(self) -> dict[str, dict]:
        return {item["name"]: item for item in self.run("dataset", "list", "--json").json()}


@pytest.fixture
def cli_workspace(tmp_path: Path) -> CliWorkspace:
    workspace = CliWorkspace(tmp_path / "ws")
    subprocess.run([DATAPLAT, "init", str(workspace.root)], check=True, capture_output=True, stdin=subprocess.DEVNULL)
    workspace.run("project", "create", "shop")
    return workspace


def stored(dataset_folder: Path, file: str) -> Path:
    """``file`` of a dataset's current version, found as a reader finds it: through ``current.json``."""
    current = json.loads((dataset_folder / "current.json").read_text())["current"]
    return dataset_folder / "versions" / current / file
