"""The read-only commands read the project's state (manifests, the pointer, run marks, the
checks' recorded results), and say what the Dagster instance says: the instance's own answer
is the oracle here, computed in this process from the same workspace."""

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from dataplat_dagster.datasets import run_marks
from dataplat_dagster.datasets.status import _from_instance
from dataplat_dagster.datasets.storage import DatasetStore
from dataplat_dagster.quality.checks import instance_results
from dataplat_dagster.workspace import Workspace

ORDERS = "id,amount,status\n1,9.5,paid\n2,-1.0,paid\n3,4.25,open\n"
RAGGED = "a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n"

# The commands below must print without Dagster: this probe says what they imported.
PROBE = """
import sys
from dataplat_dagster.cli.main import cli
try:
    cli.main(args=sys.argv[1:], prog_name="dataplat", standalone_mode=False)
except SystemExit:
    pass
print("imported:", sorted(name for name in ("dagster", "sqlalchemy", "pandas") if name in sys.modules), file=sys.stderr)
"""


def probe(ws, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, *command], cwd=ws.root, capture_output=True, text=True,
                          env={"DAGSTER_HOME": str(ws.root), "PATH": "/usr/bin:/bin"}, timeout=120)


def instance_view(ws, names: list[str]) -> dict[str, dict]:
    """What the instance alone says of the datasets (the status before states were recorded)."""
    from dataplat_dagster.catalog.registry import project_catalog
    from dataplat_dagster.datasets.storage import project_root

    project = Workspace.find(str(ws.root)).project(None)
    catalog = project_catalog(project)
    root = project_root(project.dir, catalog)
    stores = {name: DatasetStore(root, name) for name in names}
    with ws.instance() as instance:
        return {name: info.to_json() for name, info in _from_instance(instance, project, catalog, stores, names).items()}


def store_of(ws, name: str) -> DatasetStore:
    from upath import UPath

    return DatasetStore(UPath(ws.project_dir / "storage"), name)


def assert_same(recorded: dict, oracle: dict) -> None:
    fields = ("status", "error", "rows", "columns", "size_bytes", "run_id", "origin", "asset_key", "created_at")
    assert {f: recorded[f] for f in fields} == {f: oracle[f] for f in fields}
    if oracle["materialized_at"] is None:
        assert recorded["materialized_at"] is None
    else:  # the pointer is written just before Dagster stores the materialization
        gap = datetime.fromisoformat(oracle["materialized_at"]) - datetime.fromisoformat(recorded["materialized_at"])
        assert abs(gap.total_seconds()) <= 2


def test_list_show_versions_and_check_list_read_the_recorded_state_without_dagster(cli_workspace, tmp_path):
    ws = cli_workspace
    (tmp_path / "orders.csv").write_text(ORDERS)
    ws.run("dataset", "import", str(tmp_path / "orders.csv"), "--name", "orders")
    ws.run("check", "add", "orders", "expect_column_values_to_be_between", "--column", "amount", "--arg", "min_value=0")
    ws.run("check", "add", "orders", "expect_column_values_to_not_be_null", "--column", "id")
    ws.run("check", "run", "orders", check=False)  # the range check fails (-1.0); it is a warn check

    for command in (["dataset", "list", "--json"], ["dataset", "show", "orders", "--json"],
                    ["dataset", "versions", "orders", "--json"], ["check", "list", "--json"]):
        result = probe(ws, *command)
        assert "imported: []" in result.stderr, (command, result.stderr)
        assert result.stdout.strip(), result.stderr

    listed = {item["name"]: item for item in json.loads(probe(ws, "dataset", "list", "--json").stdout)}
    assert_same(listed["orders"], instance_view(ws, ["orders"])["orders"])
    assert (listed["orders"]["rows"], listed["orders"]["columns"]) == (3, 3)
    assert listed["orders"]["checks"] == {"count": 2, "passed": 1, "failed": 1, "not_run": 0,
                                          "failed_checks": ["amount_be_between"]}
    assert "ready, 1 check failed" in probe(ws, "dataset", "list").stdout

    checks = {c["name"]: c["last_result"] for c in json.loads(probe(ws, "check", "list", "--json").stdout)}
    with ws.instance() as instance:
        oracle = instance_results(instance, ws.project_dir.name, "orders", list(checks))
    for name, result in checks.items():
        assert {k: v for k, v in result.items() if k != "timestamp"} == {k: v for k, v in oracle[name].items() if k != "timestamp"}
    assert checks["amount_be_between"]["metadata"]["unexpected_count"] == 1


def test_a_failed_replace_is_recorded_and_listed_as_the_instance_says(cli_workspace, tmp_path):
    ws = cli_workspace
    (tmp_path / "orders.csv").write_text(ORDERS)
    ws.run("dataset", "import", str(tmp_path / "orders.csv"), "--name", "orders")
    (tmp_path / "ragged.csv").write_text(RAGGED)
    failed = ws.run("dataset", "import", str(tmp_path / "ragged.csv"), "--name", "orders", "--replace", check=False)
    assert failed.code == 1

    mark = run_marks.read_mark(store_of(ws, "orders"))
    assert mark["state"] == "failed" and "line 4 has 4 fields" in mark["error"]
    listed = probe(ws, "dataset", "list", "--json")
    assert "imported: []" in listed.stderr, listed.stderr
    recorded = json.loads(listed.stdout)[0]
    assert (recorded["status"], recorded["rows"], recorded["run_id"]) == ("failed", 3, mark["run_id"])
    assert_same(recorded, instance_view(ws, ["orders"])["orders"])


def test_a_run_marked_started_is_asked_of_the_instance_once(cli_workspace, tmp_path):
    """A run that died without a word (its op never wrote ``failed``): the instance answers,
    and its answer is written back, so the next list needs no Dagster."""
    ws = cli_workspace
    (tmp_path / "orders.csv").write_text(ORDERS)
    ws.run("dataset", "import", str(tmp_path / "orders.csv"), "--name", "orders")
    (tmp_path / "ragged.csv").write_text(RAGGED)
    ws.run("dataset", "import", str(tmp_path / "ragged.csv"), "--name", "orders", "--replace", check=False)
    store = store_of(ws, "orders")
    mark = run_marks.read_mark(store)
    Path(store.path(run_marks.RUN_FILE)).write_text(json.dumps({**mark, "state": "started", "error": None}))

    first = probe(ws, "dataset", "list", "--json")
    assert "'dagster'" in first.stderr  # unsettled: the instance was asked
    assert json.loads(first.stdout)[0]["status"] == "failed"
    assert run_marks.read_mark(store) == mark  # written back as the instance said
    second = probe(ws, "dataset", "list", "--json")
    assert "imported: []" in second.stderr, second.stderr
    assert json.loads(second.stdout) == json.loads(first.stdout)


def test_a_rollback_and_a_later_import_settle_the_marks(cli_workspace, tmp_path):
    ws = cli_workspace
    (tmp_path / "orders.csv").write_text(ORDERS)
    ws.run("dataset", "import", str(tmp_path / "orders.csv"), "--name", "orders")
    (tmp_path / "more.csv").write_text(ORDERS + "4,1.0,open\n")
    ws.run("dataset", "import", str(tmp_path / "more.csv"), "--name", "orders", "--replace")
    versions = ws.run("dataset", "versions", "orders", "--json").json()
    rolled = ws.run("dataset", "rollback", "orders", "--to", versions[1]["id"], "--json").json()

    listed = probe(ws, "dataset", "list", "--json")
    assert "imported: []" in listed.stderr, listed.stderr
    recorded = json.loads(listed.stdout)[0]
    assert (recorded["status"], recorded["rows"], recorded["run_id"]) == ("ready", 3, rolled["run_id"])
    assert_same(recorded, instance_view(ws, ["orders"])["orders"])


def test_image_folder_list_and_show_read_the_recorded_state_as_the_instance_says(cli_workspace, tmp_path):
    """A folder imported, then a replace that fails: both times the list reads what the
    instance says, without Dagster."""
    from dataplat_dagster.catalog.registry import project_catalog
    from dataplat_dagster.datasets.storage import project_root
    from dataplat_dagster.images.status import _from_instance
    from dataplat_dagster.images.store import image_folder_store
    from dataplat_dagster_tests.images.test_archive import image_bytes, make_zip

    ws = cli_workspace
    source = make_zip(tmp_path / "shapes.zip", {"round/a.png": image_bytes(), "round/b.png": image_bytes(size=(4, 4)),
                                               "square/c.png": image_bytes(size=(5, 3))})
    ws.run("image-folder", "import", str(source), "--name", "shapes")

    def recorded_and_oracle() -> tuple[dict, dict]:
        listed = probe(ws, "image-folder", "list", "--json")
        assert "imported: []" in listed.stderr, listed.stderr
        project = Workspace.find(str(ws.root)).project(None)
        catalog = project_catalog(project)
        stores = {"shapes": image_folder_store(project_root(project.dir, catalog), "shapes")}
        with ws.instance() as instance:
            oracle = _from_instance(instance, project, catalog.image_folders, stores, ["shapes"])["shapes"].to_json()
        return json.loads(listed.stdout)[0], oracle

    recorded, oracle = recorded_and_oracle()
    fields = ("status", "error", "images", "labels", "size_bytes", "run_id", "asset_key", "created_at")
    assert {f: recorded[f] for f in fields} == {f: oracle[f] for f in fields}
    assert (recorded["status"], recorded["images"], recorded["labels"]) == ("ready", 3, 2)
    shown = probe(ws, "image-folder", "show", "shapes", "--json")
    assert "imported: []" in shown.stderr, shown.stderr
    assert json.loads(shown.stdout)["summary"]["images"] == 3

    mixed = make_zip(tmp_path / "mixed.zip", {"round/a.png": image_bytes(), "round/b.png": b"not an image"})
    failed = ws.run("image-folder", "import", str(mixed), "--name", "shapes", "--replace", check=False)
    assert failed.code == 1  # in the run: the zip itself is fine
    recorded, oracle = recorded_and_oracle()
    assert recorded["status"] == "failed" and recorded["images"] == 3
    assert "1 of its 2 files are not readable images" in recorded["error"]
    assert {f: recorded[f] for f in fields} == {f: oracle[f] for f in fields}
