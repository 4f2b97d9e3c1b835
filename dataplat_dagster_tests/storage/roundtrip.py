"""The dataset commands end to end on a project whose storage_root is on an object store."""

from collections.abc import Callable

import pyarrow.csv as pacsv
import yaml

PEOPLE = "id,name,score\n1,Ann,3.5\n2,Bob,4.0\n3,Cid,\n"
PROFILED = ("data.parquet", "profile.json", "report.html", "manifest.json")


def use_storage(ws, storage_root: str, connector: str) -> None:
    """Point the project's catalog at the object store, as a user edits dataplat.yaml."""
    path = ws.project_dir / "dataplat.yaml"
    catalog = yaml.safe_load(path.read_text())
    catalog.update(storage_root=storage_root, storage_connector=connector)
    path.write_text(yaml.safe_dump(catalog, sort_keys=False))


def dataset_objects(names: Callable[[str], list[str]], dataset: str) -> list[str]:
    """The dataset's object names under the project's prefix ``shop/``, from its folder."""
    return [name.removeprefix(f"shop/datasets/{dataset}/") for name in names(f"shop/datasets/{dataset}/")]


def current_version_files(stored: list[str]) -> set[str]:
    """The files of the one version stored (``versions/<id>/...``), beside the pointer ``current.json``."""
    versions = {name.split("/")[1] for name in stored if name.startswith("versions/")}
    assert len(versions) == 1 and "current.json" in stored, stored
    prefix = f"versions/{versions.pop()}/"
    return {name.removeprefix(prefix) for name in stored if name.startswith(prefix)}


def assert_round_trip(ws, tmp_path, names: Callable[[str], list[str]], env: dict[str, str]) -> None:
    """import, list, show, download, rename, delete; ``names(prefix)`` lists the bucket."""
    source = tmp_path / "people.csv"
    source.write_text(PEOPLE)

    imported = ws.run("dataset", "import", str(source), "--name", "people", env=env)
    assert "ready: 3 rows × 3 columns" in imported.stdout

    listed = {item["name"]: item for item in ws.run("dataset", "list", "--json", env=env).json()}
    assert (listed["people"]["status"], listed["people"]["rows"], listed["people"]["columns"]) == ("ready", 3, 3)
    shown = ws.run("dataset", "show", "people", "--json", env=env).json()
    assert shown["summary"]["rows"] == 3 and [c["name"] for c in shown["columns"]] == ["id", "name", "score"]

    stored = dataset_objects(names, "people")
    assert set(PROFILED) <= current_version_files(stored), stored
    raw = [name for name in stored if name.startswith("raw/")]
    assert len(raw) == 1 and raw[0].endswith("/people.csv"), stored
    assert names("shop/_registry/datasets/") == ["shop/_registry/datasets/people.json"]

    out = tmp_path / "out" / "people.csv"
    ws.run("dataset", "download", "people", "--format", "csv", "--output", str(out), env=env)
    assert pacsv.read_csv(out).to_pylist() == pacsv.read_csv(source).to_pylist()

    ws.run("dataset", "rename", "people", "customers", env=env)
    listed = {item["name"]: item for item in ws.run("dataset", "list", "--json", env=env).json()}
    assert list(listed) == ["customers"] and listed["customers"]["status"] == "ready"
    assert dataset_objects(names, "people") == []
    assert set(PROFILED) <= current_version_files(dataset_objects(names, "customers"))
    assert names("shop/_registry/datasets/") == ["shop/_registry/datasets/customers.json"]

    ws.run("dataset", "delete", "customers", "--yes", env=env)
    assert ws.run("dataset", "list", "--json", env=env).json() == []
    assert names("shop/datasets/") == [] and names("shop/_registry/datasets/") == []

    # Everything went to the bucket: the project's local storage folder never appeared.
    assert not (ws.project_dir / "storage").exists()
