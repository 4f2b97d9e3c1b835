"""Rename and delete under the conditions that break them: a command killed half-way (the
next one finishes it) and a run in flight on the dataset (refused with its id)."""

import os
import subprocess
import time

import pytest

from dataplat_dagster.catalog.registry import project_catalog
from dataplat_dagster.datasets import manage
from dataplat_dagster.datasets.storage import DatasetStore
from dataplat_dagster.workspace import Project
from dataplat_dagster_tests.conftest import DATAPLAT


class Crash(BaseException):
    """A process killed at this point: nothing after it runs, no handler cleans up."""


def _crash(*_args, **_kwargs):
    raise Crash()


def _imported(cli_workspace, name="tiny"):
    path = cli_workspace.root / "tiny.csv"
    path.write_text("id,name\n1,ada\n2,grace\n")
    cli_workspace.run("dataset", "import", str(path), "--name", name)
    return Project("shop", cli_workspace.project_dir)


@pytest.mark.parametrize("crash_at", ["move", "remove_old_entry", "carry_materialization"])
def test_a_rename_killed_half_way_is_finished_by_the_next_command(cli_workspace, monkeypatch, crash_at):
    project = _imported(cli_workspace)
    target = {
        "move": (DatasetStore, "move_to"),
        "remove_old_entry": (manage.Registry, "remove_dataset"),
        "carry_materialization": (manage, "_carry_materialization"),
    }[crash_at]
    with monkeypatch.context() as patched, cli_workspace.instance() as instance:
        patched.setattr(*target, _crash)
        with pytest.raises(Crash):
            manage.rename_dataset(instance, project, "tiny", "renamed")

    listed = cli_workspace.run("dataset", "list", "--json")
    assert "finished the rename of dataset 'tiny' to 'renamed'" in listed.stderr
    datasets = {item["name"]: item for item in listed.json()}
    assert list(datasets) == ["renamed"]
    assert (datasets["renamed"]["status"], datasets["renamed"]["rows"]) == ("ready", 2)
    assert project_catalog(project).datasets["renamed"].renamed_from == ["tiny"]
    assert cli_workspace.run("dataset", "list").stderr == ""  # nothing left to finish
    shown = cli_workspace.run("dataset", "show", "renamed", "--sample", "2").stdout
    assert "grace" in shown


@pytest.mark.parametrize("crash_at", ["remove_files", "wipe_events"])
def test_a_delete_killed_half_way_is_finished_by_the_next_command(cli_workspace, monkeypatch, crash_at):
    project = _imported(cli_workspace)
    folder = DatasetStore(manage.project_root(project.dir, project_catalog(project)), "tiny").folder
    with monkeypatch.context() as patched, cli_workspace.instance() as instance:
        if crash_at == "remove_files":
            patched.setattr(DatasetStore, "delete", _crash)
        else:
            patched.setattr(type(instance), "wipe_assets", _crash)
        with pytest.raises(Crash):
            manage.delete_dataset(instance, project, "tiny")
    # The entry went first: no command shows a dataset whose files are gone.
    assert "tiny" not in project_catalog(project).datasets
    listed = cli_workspace.run("dataset", "list", "--json")
    assert "finished the deletion of dataset 'tiny'" in listed.stderr
    assert listed.json() == []
    assert not folder.exists()


def test_rename_and_delete_are_refused_while_a_run_is_in_flight(cli_workspace):
    from dagster import DagsterRunStatus

    _imported(cli_workspace)
    with cli_workspace.instance() as instance:
        # A run of the dataset that another process is executing.
        queued = _queued_run(instance, "tiny")
    for args in (["dataset", "rename", "tiny", "other"], ["dataset", "delete", "tiny", "--yes"]):
        refused = cli_workspace.run(*args, check=False)
        assert refused.code != 0
        assert f"Dataset 'tiny' has 1 run in flight ({queued})" in refused.stderr and "--wait" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert set(cli_workspace.datasets()) == {"tiny"}

    waiting = subprocess.Popen([DATAPLAT, "dataset", "rename", "tiny", "other", "--wait"], cwd=cli_workspace.root,
                               env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    time.sleep(8)
    assert waiting.poll() is None  # waits for the run
    with cli_workspace.instance() as instance:
        instance.report_run_canceled(instance.get_run_by_id(queued))
        assert instance.get_run_by_id(queued).status == DagsterRunStatus.CANCELED
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert f"Waiting for {queued} to finish before the rename" in err
    assert set(cli_workspace.datasets()) == {"other"}


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith(("DATAPLAT_", "DAGSTER_HOME"))}


def _queued_run(instance, dataset: str) -> str:
    from dagster import DagsterRun, DagsterRunStatus

    from dagster._core.utils import make_new_run_id

    run = DagsterRun(job_name="import_file", run_id=make_new_run_id(), status=DagsterRunStatus.STARTED,
                     tags={"dataplat/dataset": dataset})
    return instance.add_run(run).run_id
