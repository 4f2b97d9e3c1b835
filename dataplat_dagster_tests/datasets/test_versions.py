"""Dataset versions: each materialization publishes one whole version, the last
``versions_kept`` stay, and a rollback (a run) makes an earlier one current again."""

import json

import pyarrow.parquet as pq
import pytest

from dataplat_dagster.datasets.storage import DatasetStore
from dataplat_dagster_tests.conftest import stored


def _write(path, rows: int):
    path.write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(rows)))
    return str(path)


def test_versions_list_rollback_and_pruning(cli_workspace, tmp_path):
    ws = cli_workspace
    csv = tmp_path / "people.csv"
    ws.run("dataset", "import", _write(csv, 2), "--name", "people")
    ws.run("dataset", "import", _write(csv, 3), "--name", "people", "--replace")
    versions = ws.run("dataset", "versions", "people", "--json").json()
    assert [(v["rows"], v["current"]) for v in versions] == [(3, True), (2, False)]
    assert all(set(v) >= {"id", "created_at", "rows", "run_id", "current"} and v["run_id"] for v in versions)
    first = versions[1]["id"]

    rolled = ws.run("dataset", "rollback", "people", "--to", first, "--json").json()
    assert rolled["version"] == first and rolled["rows"] == 2
    assert ws.datasets()["people"]["rows"] == 2
    folder = ws.project_dir / "storage/datasets/people"
    assert pq.read_table(stored(folder, "data.parquet")).num_rows == 2
    assert json.loads(stored(folder, "profile.json").read_text())["summary"]["rows"] == 2
    with ws.instance() as instance:
        runs = instance.get_runs()
        assert runs[0].job_name == "rollback_dataset" and runs[0].tags["dataplat/dataset"] == "people"
    assert [v["current"] for v in ws.run("dataset", "versions", "people", "--json").json()] == [False, True]

    refused = ws.run("dataset", "rollback", "people", "--to", "20990101-000000-000000", check=False)
    assert refused.code != 0 and "has no version '20990101-000000-000000'" in refused.stderr and "Traceback" not in refused.stderr

    catalog = ws.project_dir / "dataplat.yaml"
    catalog.write_text(catalog.read_text() + "versions_kept: 2\n")
    ws.run("dataset", "import", _write(csv, 4), "--name", "people", "--replace")
    ws.run("dataset", "import", _write(csv, 5), "--name", "people", "--replace")
    versions = ws.run("dataset", "versions", "people", "--json").json()
    assert [v["rows"] for v in versions] == [5, 4]
    assert len(list((folder / "versions").iterdir())) == 2


def test_a_publish_that_dies_leaves_the_previous_version_whole(tmp_path, monkeypatch):
    from upath import UPath

    store = DatasetStore(UPath(tmp_path / "storage"), "people")
    first = _publish(store, tmp_path, "old")
    monkeypatch.setattr(DatasetStore, "_point", lambda *args: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        _publish(store, tmp_path, "new")
    assert store.current().id == first.id and _label(store.read_bytes("data.parquet")) == "old"
    assert [p.name for p in (store.folder / "versions").iterdir()] == [first.id]  # no half-written version


def _publish(store: DatasetStore, tmp_path, label: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    staged = tmp_path / "staged.parquet"
    pq.write_table(pa.table({"label": [label]}), staged)
    version = store.new_version()
    return store.publish_version(version, {"data.parquet": staged}, rows=1, run_id=None)


def _label(parquet: bytes) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.read_table(pa.BufferReader(parquet)).column("label")[0].as_py()
