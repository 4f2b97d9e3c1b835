"""Workspaces and projects: init, create, list, and how the CLI finds them."""

import pytest
import yaml

from dataplat_dagster.errors import WorkspaceError
from dataplat_dagster.workspace import Workspace


def test_init_and_create_project_writes_code_location(tmp_path):
    workspace = Workspace.init(tmp_path / "ws")
    assert (workspace.root / "dagster.yaml").read_text().count("nux") == 1
    project = workspace.create_project("sales")
    locations = yaml.safe_load(workspace.workspace_file.read_text())["load_from"]
    assert locations == [{"python_file": {"relative_path": "projects/sales/definitions.py",
                                          "location_name": "sales", "working_directory": "projects/sales"}}]
    assert project.catalog_path.is_file() and project.definitions_file.is_file()
    assert workspace.project_names() == ["sales"]
    with pytest.raises(WorkspaceError, match="already exists"):
        workspace.create_project("sales")
    with pytest.raises(WorkspaceError, match="not a valid project name"):
        workspace.create_project("bad name")


def test_hand_written_locations_are_kept(tmp_path):
    workspace = Workspace.init(tmp_path)
    data = {"load_from": [{"python_module": {"module_name": "my_pipelines", "location_name": "mine"}}]}
    workspace.workspace_file.write_text(yaml.safe_dump(data))
    workspace.create_project("demo")
    entries = yaml.safe_load(workspace.workspace_file.read_text())["load_from"]
    assert entries[0] == data["load_from"][0] and entries[1]["python_file"]["location_name"] == "demo"
    assert workspace.project_names() == ["demo"]


def test_find_workspace_from_flag_env_or_parent(tmp_path, monkeypatch):
    workspace = Workspace.init(tmp_path / "ws")
    nested = workspace.root / "projects" / "deep" / "er"
    nested.mkdir(parents=True)
    monkeypatch.delenv("DATAPLAT_WORKSPACE", raising=False)
    monkeypatch.chdir(nested)
    assert Workspace.find().root == workspace.root
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WorkspaceError, match="dataplat init"):
        Workspace.find()
    monkeypatch.setenv("DATAPLAT_WORKSPACE", str(workspace.root))
    assert Workspace.find().root == workspace.root
    with pytest.raises(WorkspaceError, match="not a dataplat workspace"):
        Workspace.find(tmp_path)


def test_project_from_flag_env_or_the_only_one(tmp_path, monkeypatch):
    workspace = Workspace.init(tmp_path)
    monkeypatch.delenv("DATAPLAT_PROJECT", raising=False)
    with pytest.raises(WorkspaceError, match="0 projects"):
        workspace.project()
    workspace.create_project("a")
    assert workspace.project().name == "a"
    workspace.create_project("b")
    with pytest.raises(WorkspaceError, match=r"2 projects \(a, b\)"):
        workspace.project()
    monkeypatch.setenv("DATAPLAT_PROJECT", "b")
    assert workspace.project().name == "b"
    assert workspace.project("a").name == "a"
    with pytest.raises(WorkspaceError, match="No project 'c'"):
        workspace.project("c")
