"""Four processes edit one project at once (connectors created and deleted in dataplat.yaml,
a dataset renamed 50 times, 50 imports): the final catalog holds exactly what they made."""

import os
import subprocess
import sys
from pathlib import Path

from dataplat_dagster.catalog import load_catalog

ROUNDS = 50


def test_four_processes_editing_one_project(cli_workspace):
    root = cli_workspace.root
    (root / "tiny.csv").write_text("id,name\n1,ada\n2,grace\n")
    cli_workspace.run("dataset", "import", str(root / "tiny.csv"), "--name", "moving_0", "--no-profile")
    catalog_file = cli_workspace.project_dir / "dataplat.yaml"
    doomed = "".join(f"  doomed_{i}: {{type: sql, dialect: sqlite, database: x.db}}\n" for i in range(ROUNDS))
    catalog_file.write_text("# kept through 100 edits\n" + catalog_file.read_text() + "connectors:\n" + doomed)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAPLAT_", "DAGSTER_HOME"))}
    workers = {
        role: subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("edit_worker.py")), role, str(root), str(ROUNDS)],
            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        )
        for role in ("create", "delete", "rename", "import")
    }
    for role, worker in workers.items():
        out, err = worker.communicate(timeout=900)
        assert worker.returncode == 0, f"{role} worker exited {worker.returncode}:\n{out[-2000:]}\n{err[-3000:]}"

    assert catalog_file.read_text().startswith("# kept through 100 edits\n")
    catalog = load_catalog(catalog_file)  # parses
    assert sorted(catalog.connectors) == sorted(f"made_{i}" for i in range(ROUNDS))
    datasets = cli_workspace.datasets()
    expected = {f"imported_{i}" for i in range(ROUNDS)} | {f"moving_{ROUNDS}"}
    assert set(datasets) == expected
    assert {item["status"] for item in datasets.values()} == {"ready"}
    assert all(item["rows"] == 2 for item in datasets.values())
    from dataplat_dagster.catalog.registry import project_catalog
    from dataplat_dagster.workspace import Project

    moved = project_catalog(Project("shop", cli_workspace.project_dir)).datasets[f"moving_{ROUNDS}"]
    assert moved.renamed_from == [f"moving_{i}" for i in range(ROUNDS)]
    # Nothing half-done is left for a later command to finish.
    assert not list((cli_workspace.project_dir / "storage" / "_registry").glob("pending/*"))
