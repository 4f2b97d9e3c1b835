"""`dataplat init`, `project create|list`, and the repo's own demo code location."""

import json
import subprocess
import sys
from pathlib import Path

import yaml

from dataplat_dagster_tests.conftest import DATAPLAT

REPO = Path(__file__).resolve().parents[2]


def test_init_create_and_list_projects(cli_workspace):
    cli_workspace.run("project", "create", "marketing")
    listed = cli_workspace.run("project", "list", "--json").json()
    assert [p["name"] for p in listed] == ["shop", "marketing"]
    assert listed[1]["path"] == str(cli_workspace.root / "projects" / "marketing")
    locations = yaml.safe_load((cli_workspace.root / "workspace.yaml").read_text())["load_from"]
    assert [entry["python_file"]["location_name"] for entry in locations] == ["shop", "marketing"]

    which = cli_workspace.run("dataset", "list", check=False)
    assert which.code == 1 and "Which project?" in which.stderr and "--project" in which.stderr
    assert cli_workspace.run("--project", "marketing", "dataset", "list", "--json").json() == []


def test_init_refuses_an_existing_workspace_without_a_traceback(cli_workspace):
    again = subprocess.run([DATAPLAT, "init", str(cli_workspace.root)], capture_output=True, text=True)
    assert again.returncode == 1 and "already holds a workspace.yaml" in again.stderr
    assert "Traceback" not in again.stderr


def test_outside_a_workspace_the_cli_says_how_to_make_one(tmp_path):
    result = subprocess.run([DATAPLAT, "dataset", "list"], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 1 and "dataplat init" in result.stderr and "Traceback" not in result.stderr


def test_the_demo_code_location_loads_with_its_main_job():
    dagster = str(Path(sys.executable).parent / "dagster")
    result = subprocess.run(
        [dagster, "definitions", "validate", "-f", "projects/demo/definitions.py", "-d", "projects/demo"],
        cwd=REPO, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    code = (
        "import json, sys; sys.path.insert(0, 'projects/demo'); import definitions as d; "
        "print(json.dumps(sorted(j.name for j in d.defs.resolve_all_job_defs())))"
    )
    jobs = json.loads(subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout)
    assert "main" in jobs and "refresh_datasets" in jobs
