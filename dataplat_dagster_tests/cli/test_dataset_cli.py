"""End to end: the real `dataplat` CLI in a subprocess, on a temporary workspace."""

import time
import zipfile
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from dagster import AssetKey, DagsterRunStatus
from dataplat_dagster_tests.conftest import stored

EU_SALES = (
    "order_id;order_date;amount;city;zip\n"
    "1;31/12/2024;1.234,56;Paris;00123\n"
    "2;15/01/2025;99,50;Lyon;07000\n"
    "3;01/02/2025;1.000.000,00;Nice;06000\n"
    "4;28/02/2025;;Lille;59000\n"
)
US_PEOPLE = "id,name,score\n1,Ann,3.5\n2,Bob,4.0\n3,Cid,\n"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_import_detects_dialect_stores_typed_parquet_and_lists_ready(cli_workspace, tmp_path):
    source = write(tmp_path / "sales.csv", EU_SALES)
    result = cli_workspace.run("dataset", "import", str(source), "--name", "sales")
    assert "separator ';'" in result.stdout and "decimal ','" in result.stdout
    assert "ready: 4 rows × 5 columns" in result.stdout

    info = cli_workspace.datasets()["sales"]
    assert info["status"] == "ready"
    assert (info["origin"], info["rows"], info["columns"], info["datasource"]) == ("file_upload", 4, 5, None)
    assert info["size_bytes"] > 0 and info["created_at"]

    table = pq.read_table(stored(cli_workspace.project_dir / "storage/datasets/sales", "data.parquet"))
    assert table.column("amount").to_pylist() == [1234.56, 99.5, 1000000.0, None]
    assert table.column("zip").to_pylist() == ["00123", "07000", "06000", "59000"]
    assert str(table.column("order_date")[0]) == "2024-12-31"
    raw = list((cli_workspace.project_dir / "storage/datasets/sales/raw").glob("*/sales.csv"))
    assert len(raw) == 1 and raw[0].read_bytes() == source.read_bytes()

    with cli_workspace.instance() as instance:
        event = instance.get_latest_materialization_event(AssetKey(["shop", "datasets", "sales"]))
        assert event.asset_materialization.metadata["dagster/row_count"].value == 4


def test_show_prints_stored_profile(cli_workspace, tmp_path):
    cli_workspace.run("dataset", "import", str(write(tmp_path / "sales.csv", EU_SALES)), "--name", "sales")
    shown = cli_workspace.run("dataset", "show", "sales", "--json").json()
    assert shown["summary"]["rows"] == 4 and shown["summary"]["columns"] == 5
    assert shown["summary"]["missing_cells"] == 1
    amount = next(c for c in shown["columns"] if c["name"] == "amount")
    assert amount["type"] == "float" and amount["missing"] == 1 and amount["max"] == 1000000.0
    assert shown["report"].endswith("report.html")

    column = cli_workspace.run("dataset", "show", "sales", "--column", "city", "--json").json()
    assert column["distinct"] == 4 and {v["value"] for v in column["top_values"]} == {"Paris", "Lyon", "Nice", "Lille"}
    sample = cli_workspace.run("dataset", "show", "sales", "--sample", "2", "--json").json()
    assert sample["columns"][:3] == ["order_id", "order_date", "amount"]
    assert [row[3] for row in sample["rows"]] == ["Paris", "Lyon"]
    beyond = cli_workspace.run("dataset", "show", "sales", "--sample", "25", "--json").json()  # read from the Parquet
    assert beyond["rows"] == shown["sample"]["rows"] and beyond["rows"][0][1] == "2024-12-31"
    text = cli_workspace.run("dataset", "show", "sales").stdout
    assert "rows: 4" in text and "amount" in text

    missing = cli_workspace.run("dataset", "show", "sales", "--column", "nope", check=False)
    assert missing.code == 1 and "No column 'nope'" in missing.stderr and "Traceback" not in missing.stderr


def test_list_filters_by_origin_and_search(cli_workspace, tmp_path):
    cli_workspace.run("dataset", "import", str(write(tmp_path / "a.csv", US_PEOPLE)), "--name", "people_2024")
    cli_workspace.run("dataset", "import", str(write(tmp_path / "b.csv", EU_SALES)), "--name", "sales")
    listed = cli_workspace.run("dataset", "list", "--json").json()
    assert {d["name"] for d in listed} == {"people_2024", "sales"}
    assert set(listed[0]) >= {"name", "origin", "status", "rows", "columns", "size_bytes", "created_at", "datasource"}
    searched = cli_workspace.run("dataset", "list", "--search", "PEOPLE", "--json").json()
    assert [d["name"] for d in searched] == ["people_2024"]
    assert cli_workspace.run("dataset", "list", "--origin", "pipeline_output", "--json").json() == []
    by_origin = cli_workspace.run("dataset", "list", "--origin", "file_upload", "--origin", "datasource", "--json").json()
    assert len(by_origin) == 2
    table = cli_workspace.run("dataset", "list").stdout
    assert "people_2024" in table and "ready" in table and "file_upload" in table


def test_rename_download_delete(cli_workspace, tmp_path):
    source = write(tmp_path / "people.csv", US_PEOPLE)
    cli_workspace.run("dataset", "import", str(source), "--name", "people")
    cli_workspace.run("dataset", "rename", "people", "customers")
    datasets = cli_workspace.datasets()
    assert list(datasets) == ["customers"] and datasets["customers"]["status"] == "ready"
    assert datasets["customers"]["rows"] == 3
    assert cli_workspace.run("dataset", "show", "customers", "--json").json()["summary"]["rows"] == 3

    csv_out, parquet_out = tmp_path / "out" / "c.csv", tmp_path / "out" / "c.parquet"
    cli_workspace.run("dataset", "download", "customers", "--format", "csv", "--output", str(csv_out))
    cli_workspace.run("dataset", "download", "customers", "--format", "parquet", "--output", str(parquet_out))
    assert pacsv.read_csv(csv_out).column("name").to_pylist() == ["Ann", "Bob", "Cid"]
    assert pq.read_table(parquet_out).column("score").to_pylist() == [3.5, 4.0, None]

    refused = cli_workspace.run("dataset", "delete", "customers", check=False)
    assert refused.code == 1 and "--yes" in refused.stderr
    cli_workspace.run("dataset", "delete", "customers", "--yes")
    assert cli_workspace.datasets() == {}
    assert not (cli_workspace.project_dir / "storage/datasets/customers").exists()
    assert source.read_text() == US_PEOPLE  # nothing outside project storage is touched


def assert_refused(result, *phrases: str) -> None:
    assert result.code != 0, result.stdout
    assert "Traceback" not in result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


def test_bad_inputs_are_refused_clearly_and_register_nothing(cli_workspace, tmp_path):
    empty = write(tmp_path / "empty.csv", "")
    assert_refused(cli_workspace.run("dataset", "import", str(empty), "--name", "empty", check=False), "empty")
    binary = tmp_path / "blob.csv"
    binary.write_bytes(bytes(range(256)) * 20)
    assert_refused(cli_workspace.run("dataset", "import", str(binary), "--name", "blob", check=False), "error:")
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("a.csv", US_PEOPLE)
        archive.writestr("b.csv", US_PEOPLE)
    assert_refused(cli_workspace.run("dataset", "import", str(two), "--name", "two", check=False), "a.csv", "b.csv")
    ragged = write(tmp_path / "ragged.csv", "a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n11,12,13\n")
    result = cli_workspace.run("dataset", "import", str(ragged), "--name", "ragged", check=False)
    assert_refused(result, "ragged.csv: line 4")
    assert "/raw/" not in result.stderr  # named as the user gave it, not by its copy in storage
    bad_name = cli_workspace.run("dataset", "import", str(write(tmp_path / "ok.csv", US_PEOPLE)), "--name", "1 bad", check=False)
    assert_refused(bad_name, "not a valid dataset name")
    latin = write(tmp_path / "latin.csv", "name,city\nJosé,Besançon\n", encoding="cp1252")
    forced = cli_workspace.run("dataset", "import", str(latin), "--name", "latin", "--encoding", "utf-8", check=False)
    assert_refused(forced, "utf-8")

    assert cli_workspace.datasets() == {}
    storage = cli_workspace.project_dir / "storage" / "datasets"
    assert not storage.exists() or [p.name for p in storage.iterdir() if not p.name.startswith(".")] == []


def test_existing_name_needs_replace_and_failed_replace_keeps_previous_version(cli_workspace, tmp_path):
    cli_workspace.run("dataset", "import", str(write(tmp_path / "p.csv", US_PEOPLE)), "--name", "people")
    again = cli_workspace.run("dataset", "import", str(write(tmp_path / "q.csv", EU_SALES)), "--name", "people", check=False)
    assert_refused(again, "already exists", "--replace")

    broken = write(tmp_path / "broken.csv", "id,name,score\n1,Ann,3.5\n2,Bob\n")
    failed = cli_workspace.run("dataset", "import", str(broken), "--name", "people", "--replace", check=False)
    assert_refused(failed, f"{broken}: line 3", "previous version")
    info = cli_workspace.datasets()["people"]
    assert info["status"] == "failed" and "line 3" in info["error"]
    assert info["rows"] == 3  # the last good materialization is still what the dataset holds
    table = pq.read_table(stored(cli_workspace.project_dir / "storage/datasets/people", "data.parquet"))
    assert table.column("name").to_pylist() == ["Ann", "Bob", "Cid"]
    with cli_workspace.instance() as instance:
        assert instance.get_run_by_id(info["run_id"]).status == DagsterRunStatus.FAILURE

    cli_workspace.run("dataset", "import", str(write(tmp_path / "eu.csv", EU_SALES)), "--name", "people", "--replace")
    info = cli_workspace.datasets()["people"]
    assert (info["status"], info["rows"], info["columns"]) == ("ready", 4, 5)
    raws = list((cli_workspace.project_dir / "storage/datasets/people/raw").glob("*/*"))
    assert [p.name for p in raws] == ["eu.csv"]  # the replaced upload is gone, the failed one never stayed


def settled(cli_workspace, name: str, timeout: float = 120) -> dict:
    """The dataset's list entry once its run has left ``parsing`` (or when time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        info = cli_workspace.datasets()[name]
        if info["status"] != "parsing" or time.monotonic() > deadline:
            return info
        time.sleep(1)


def test_no_wait_returns_while_parsing_then_becomes_ready(cli_workspace, tmp_path):
    source = write(tmp_path / "p.csv", US_PEOPLE)
    submitted = cli_workspace.run("dataset", "import", str(source), "--name", "people", "--no-wait", "--json").json()
    assert submitted["status"] == "parsing" and submitted["run_id"]
    info = settled(cli_workspace, "people")
    assert info["status"] == "ready" and info["run_id"] == submitted["run_id"] and info["rows"] == 3


def test_no_wait_failure_is_listed_as_failed_with_the_reason(cli_workspace, tmp_path):
    broken = write(tmp_path / "broken.csv", "id,name,score\n1,Ann,3.5\n2,Bob\n")
    submitted = cli_workspace.run("dataset", "import", str(broken), "--name", "people", "--no-wait", "--json").json()
    info = settled(cli_workspace, "people")
    assert info["status"] == "failed" and info["run_id"] == submitted["run_id"]
    assert "line 3 has 2 fields" in info["error"]
    assert "failed: " in cli_workspace.run("dataset", "list").stdout
    cli_workspace.run("dataset", "delete", "people", "--yes")
    assert cli_workspace.datasets() == {}


def test_replacing_a_declared_source_never_touches_the_file_it_named(cli_workspace, tmp_path):
    declared = cli_workspace.project_dir / "data" / "raw" / "2024" / "people.csv"
    declared.parent.mkdir(parents=True)
    declared.write_text(US_PEOPLE)
    catalog = cli_workspace.project_dir / "dataplat.yaml"
    catalog.write_text(catalog.read_text().replace(
        "datasets: {}", "datasets:\n  people:\n    source:\n      path: data/raw/2024/people.csv\n"))
    cli_workspace.run("dataset", "import", str(write(tmp_path / "eu.csv", EU_SALES)), "--name", "people", "--replace")
    assert declared.read_text() == US_PEOPLE
    assert cli_workspace.datasets()["people"]["rows"] == 4
