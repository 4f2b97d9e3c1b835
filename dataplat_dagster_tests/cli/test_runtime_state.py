"""Run-time state: the registry under the storage root, bookkeeping inside the run (a CLI
killed mid-run), concurrent imports of one name, and the migration of older catalogs."""

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from dagster import DagsterRunStatus

from dataplat_dagster_tests.conftest import DATAPLAT

PEOPLE = "id,name\n1,ann\n2,bob\n3,cid\n"
RAGGED = "a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def registry_names(ws) -> list[str]:
    folder = ws.project_dir / "storage" / "_registry" / "datasets"
    return sorted(p.stem for p in folder.glob("*.json")) if folder.exists() else []


def wait_for_runs(ws, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    with ws.instance() as instance:
        while time.monotonic() < deadline:
            runs = instance.get_runs()
            if runs and all(run.is_finished for run in runs):
                return
            time.sleep(0.3)
    raise AssertionError("runs still in flight")


def start_and_kill_after_submit(ws, *args: str) -> str:
    """Start the CLI, and kill -9 it as soon as it says the run was submitted; returns the run id."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAPLAT_", "DAGSTER_HOME"))}
    proc = subprocess.Popen([DATAPLAT, *args], cwd=ws.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, stdin=subprocess.DEVNULL)
    for line in proc.stdout:
        if " in run " in line:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return line.split(" in run ")[1].split()[0]
    raise AssertionError(f"the CLI never reported its run: exit {proc.wait()}")


def test_imported_datasets_live_in_the_registry_not_in_the_catalog_file(cli_workspace, tmp_path):
    ws = cli_workspace
    catalog_before = (ws.project_dir / "dataplat.yaml").read_text()
    ws.run("dataset", "import", str(write(tmp_path / "people.csv", PEOPLE)), "--name", "people")
    assert (ws.project_dir / "dataplat.yaml").read_text() == catalog_before  # declarations only
    assert registry_names(ws) == ["people"]
    entry = json.loads((ws.project_dir / "storage/_registry/datasets/people.json").read_text())
    assert entry["origin"] == "file_upload"
    assert ws.datasets()["people"]["status"] == "ready" and ws.datasets()["people"]["rows"] == 3
    ws.run("dataset", "rename", "people", "persons")
    assert registry_names(ws) == ["persons"]
    entry = json.loads((ws.project_dir / "storage/_registry/datasets/persons.json").read_text())
    assert entry["renamed_from"] == ["people"]
    # The run config and tags name no path of this host: the upload is relative to the dataset.
    with ws.instance() as instance:
        run = instance.get_runs(limit=1)[0]
    config = next(iter(run.run_config["ops"].values()))["config"]
    assert config["upload"].startswith("raw/") and config["upload"].endswith("/people.csv")
    assert not any(str(ws.root) in value for value in run.tags.values())
    assert str(ws.root) not in json.dumps(run.run_config)
    ws.run("dataset", "delete", "persons", "--yes")
    assert registry_names(ws) == [] and ws.datasets() == {}


def test_a_replace_takes_effect_when_the_cli_is_killed_after_submitting(cli_workspace, tmp_path):
    ws = cli_workspace
    ws.run("dataset", "import", str(write(tmp_path / "people.csv", PEOPLE)), "--name", "people")
    bigger = write(tmp_path / "people2.csv", PEOPLE + "4,dan\n5,eve\n")
    run_id = start_and_kill_after_submit(ws, "dataset", "import", str(bigger), "--name", "people", "--replace")
    wait_for_runs(ws)
    with ws.instance() as instance:
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.SUCCESS
    info = ws.datasets()["people"]
    assert (info["status"], info["rows"], info["run_id"]) == ("ready", 5, run_id)
    # The old raw copy went, the new one is the only one left.
    raws = sorted(p.name for p in (ws.project_dir / "storage/datasets/people/raw").glob("*/*"))
    assert raws == ["people2.csv"]


def test_a_failing_new_import_is_unregistered_when_the_cli_is_killed(cli_workspace, tmp_path):
    ws = cli_workspace
    run_id = start_and_kill_after_submit(ws, "dataset", "import", str(write(tmp_path / "ragged.csv", RAGGED)), "--name", "ragged")
    wait_for_runs(ws)
    with ws.instance() as instance:
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE
    assert "ragged" not in ws.datasets()
    assert registry_names(ws) == []
    assert not (ws.project_dir / "storage/datasets/ragged").exists()


def test_a_failed_replace_keeps_the_old_version_and_drops_the_new_copy(cli_workspace, tmp_path):
    ws = cli_workspace
    ws.run("dataset", "import", str(write(tmp_path / "people.csv", PEOPLE)), "--name", "people")
    result = ws.run("dataset", "import", str(write(tmp_path / "people.csv", RAGGED)), "--name", "people", "--replace", check=False)
    assert result.code == 1 and "line 4 has 4 fields" in result.stderr and "previous version" in result.stderr
    info = ws.datasets()["people"]
    assert (info["status"], info["rows"]) == ("failed", 3)  # the last run failed; the data is the old version
    raws = list((ws.project_dir / "storage/datasets/people/raw").glob("*/*"))
    assert len(raws) == 1  # the previous version's raw file alone


def test_concurrent_imports_of_one_name_register_it_once(cli_workspace, tmp_path):
    ws = cli_workspace
    files = [write(tmp_path / f"p{i}.csv", PEOPLE) for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda f: ws.run("dataset", "import", str(f), "--name", "same", check=False), files))
    codes = sorted(r.code for r in results)
    assert codes == [0, 1, 1, 1], [r.stderr for r in results]
    for refused in (r for r in results if r.code):
        assert "already exists" in refused.stderr or "just created by another import" in refused.stderr
    assert registry_names(ws) == ["same"]
    assert ws.datasets()["same"]["status"] == "ready"
    assert len(list((ws.project_dir / "storage/datasets/same/raw").glob("*/*"))) == 1  # the losers left nothing


def test_migrate_moves_run_time_entries_out_of_the_catalog_file(cli_workspace, tmp_path):
    ws = cli_workspace
    raw = ws.project_dir / "storage/datasets/old/raw/abc123/old.csv"
    raw.parent.mkdir(parents=True)
    raw.write_text(PEOPLE)
    (ws.project_dir / "declared.csv").write_text(PEOPLE)
    catalog = yaml.safe_load((ws.project_dir / "dataplat.yaml").read_text())
    catalog["datasets"] = {
        "old": {"origin": "file_upload", "source": {"path": "storage/datasets/old/raw/abc123/old.csv", "options": {"sep": ","}}},
        "scored": {"origin": "pipeline_output", "description": "Written by a pipeline."},
        "declared": {"origin": "file_upload", "source": {"path": "declared.csv"}},
    }
    (ws.project_dir / "dataplat.yaml").write_text("# my notes\n" + yaml.safe_dump(catalog, sort_keys=False))
    before = ws.datasets()
    assert sorted(before) == ["declared", "old", "scored"]  # an old project works before migrating

    result = ws.run("project", "migrate")
    assert "Moved 2 dataset(s)" in result.stdout and "old" in result.stdout and "scored" in result.stdout
    saved = (ws.project_dir / "dataplat.yaml").read_text()
    assert saved.startswith("# my notes\n")
    assert list(yaml.safe_load(saved)["datasets"]) == ["declared"]
    assert registry_names(ws) == ["old", "scored"]
    assert sorted(ws.datasets()) == ["declared", "old", "scored"]
    assert "Nothing to migrate" in ws.run("project", "migrate").stdout

    # The migrated upload still materializes from its raw copy, also after a rename.
    ws.run("dataset", "rename", "old", "renamed")
    env = dict(os.environ, DAGSTER_HOME=str(ws.root))
    dagster = str(Path(sys.executable).parent / "dagster")
    done = subprocess.run(
        [dagster, "asset", "materialize", "-f", str(ws.project_dir / "definitions.py"), "-d", str(ws.project_dir),
         "--select", "shop/datasets/renamed"], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (ws.datasets()["renamed"]["status"], ws.datasets()["renamed"]["rows"]) == ("ready", 3)
