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
    assert result.returncode == 1 and "dataplat init" in result.stderr and "Traceback" not in result.stdout + result.stderr


def validate_workspace(root: Path) -> subprocess.CompletedProcess:
    """Load every code location of workspace.yaml the way `dagster dev` does."""
    dagster = str(Path(sys.executable).parent / "dagster")
    return subprocess.run(
        [dagster, "definitions", "validate", "-w", "workspace.yaml"],
        cwd=root, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(root)},
    )


def test_a_created_workspace_loads_in_dagster(cli_workspace, tmp_path):
    cli_workspace.run("project", "create", "marketing")
    (tmp_path / "a.csv").write_text("id,name\n1,Ann\n")
    cli_workspace.run("--project", "shop", "dataset", "import", str(tmp_path / "a.csv"), "--name", "people")
    result = validate_workspace(cli_workspace.root)
    assert result.returncode == 0, result.stderr
    assert "Validation successful for code location shop" in result.stdout + result.stderr
    assert "Validation successful for code location marketing" in result.stdout + result.stderr


def test_the_demo_code_location_loads_with_its_main_job():
    result = validate_workspace(REPO)
    assert result.returncode == 0, result.stderr
    assert "Validation successful for code location demo" in result.stdout + result.stderr
    code = (
        "import json, sys; sys.path.insert(0, 'projects/demo'); import definitions as d; "
        "print(json.dumps(sorted(j.name for j in d.defs.resolve_all_job_defs())))"
    )
    jobs = json.loads(subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout)
    assert "main" in jobs and "refresh_datasets" in jobs
