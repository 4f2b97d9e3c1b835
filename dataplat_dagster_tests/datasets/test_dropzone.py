"""Importing from the Dagster UI: the ``import_file`` job run by Dagster (``dagster job
execute``, as the launchpad would launch it) and the drop-zone sensor, on a workspace made
by the real CLI; what they leave is read back with ``dataplat dataset list`` and ``show``."""

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from dagster import AssetKey, DagsterRunStatus, DefaultSensorStatus, build_sensor_context
from upath import UPath

from dataplat_dagster import project_definitions
from dataplat_dagster.catalog.models import DatasetSpec
from dataplat_dagster.catalog.registry import Registry
from dataplat_dagster.datasets import dropzone, importing
from dataplat_dagster.datasets.dropzone import dropzone_path, list_dropzone, sanitized_name
from dataplat_dagster.errors import DataplatError
from dataplat_dagster.runs import failure_reason

from dataplat_dagster_tests.cli.test_dataset_cli import EU_SALES  # the same sample file
from dataplat_dagster_tests.conftest import stored

DAGSTER = str(Path(sys.executable).parent / "dagster")
US_PEOPLE = "id,name,score\n1,Ann,3.5\n2,Bob,4.0\n3,Cid,\n"
KEY = ["shop", "datasets"]


def drop(ws, path: str, text: str) -> Path:
    """Put a file into the project's drop zone (storage/dropzone/ of the default root)."""
    file = ws.project_dir / "storage" / "dropzone" / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text)
    return file


def execute(ws, job: str = "import_file", env: dict | None = None, **config) -> subprocess.CompletedProcess:
    """Launch a job of the project the way CI does: `dagster job execute -c config.yaml`; the
    config of import_file is its own (`path: ...`), as the launchpad shows it."""
    config_file = ws.root / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [DAGSTER, "job", "execute", "-f", str(ws.project_dir / "definitions.py"), "-d", str(ws.project_dir), "-j", job,
         "-c", str(config_file)],
        cwd=ws.root, env={**os.environ, "DAGSTER_HOME": str(ws.root), **(env or {})}, capture_output=True, text=True,
        timeout=240, stdin=subprocess.DEVNULL,
    )


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def failed(result: subprocess.CompletedProcess, *phrases: str) -> str:
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-4000:]
    for phrase in phrases:
        assert phrase in out, out[-4000:]
    return out


def last_run(ws):
    with ws.instance() as instance:
        run = instance.get_runs(limit=1)[0]
        return run, failure_reason(instance, run.run_id) if run.status == DagsterRunStatus.FAILURE else None


def latest_metadata(ws, name: str) -> dict:
    with ws.instance() as instance:
        event = instance.get_latest_materialization_event(AssetKey([*KEY, name]))
        return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def raw_files(ws, name: str) -> list[str]:
    return sorted(p.name for p in (ws.project_dir / "storage" / "datasets" / name / "raw").glob("*/*"))


def stored_datasets(ws) -> list[str]:
    folder = ws.project_dir / "storage" / "datasets"
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.exists() else []


def run_in_process(ws, **config):
    """The job run in this process on the workspace's instance; its run and failure reason."""
    defs = project_definitions(ws.project_dir)
    with ws.instance() as instance:
        result = defs.resolve_job_def("import_file").execute_in_process(
            run_config=config, instance=instance, raise_on_error=False)
        reason = None if result.success else failure_reason(instance, result.run_id)
    return result, reason


# -- the job ------------------------------------------------------------------------------


def test_a_file_in_the_drop_zone_is_imported_as_dataplat_dataset_import_does(cli_workspace):
    ws = cli_workspace
    source = drop(ws, "sales/2024.csv", EU_SALES)
    ok(execute(ws, path="sales/2024.csv", name="sales"))

    info = ws.datasets()["sales"]
    assert (info["status"], info["origin"], info["rows"], info["columns"], info["datasource"]) == ("ready", "file_upload", 4, 5, None)
    run, _ = last_run(ws)
    assert info["run_id"] == run.run_id and run.job_name == "import_file"
    assert run.tags["dataplat/action"] == "import" == run.tags[importing.TAG_ACTION] and run.tags["dataplat/project"] == "shop"
    shown = ws.run("dataset", "show", "sales", "--json").json()
    assert shown["summary"]["rows"] == 4 and shown["summary"]["missing_cells"] == 1
    assert ws.run("dataset", "show", "sales", "--sample", "2", "--json").json()["rows"][0][3] == "Paris"
    table = pq.read_table(stored(ws.project_dir / "storage/datasets/sales", "data.parquet"))
    assert table.column("amount").to_pylist() == [1234.56, 99.5, 1000000.0, None]
    assert str(table.column("order_date")[0]) == "2024-12-31"
    assert raw_files(ws, "sales") == ["2024.csv"]
    staged = next((ws.project_dir / "storage/datasets/sales/raw").glob("*/2024.csv"))
    assert staged.read_bytes() == source.read_bytes() and source.exists()  # copied; the dropped file stays
    assert Registry(UPath(ws.project_dir / "storage")).dataset("sales").origin == "file_upload"

    # The same metadata as the CLI's import of the same file, upload and options included.
    ws.run("dataset", "import", str(source), "--name", "sales_cli")
    ours, theirs = latest_metadata(ws, "sales"), latest_metadata(ws, "sales_cli")
    assert sorted(ours) == sorted(theirs)
    assert ours["dataplat/upload"] == f"raw/{staged.parent.name}/2024.csv" and ours["dataplat/csv_options"] == "{}"
    assert ours["source_file"] == "2024.csv" and ours["dialect"] == theirs["dialect"]
    assert (ours["dagster/row_count"], ours["columns_count"]) == (4, 5)
    assert (stored(ws.project_dir / "storage/datasets/sales", "report.html")).is_file()

    # The dataset's own asset takes it from there: a refresh parses the upload the job recorded.
    ok(execute(ws, job="refresh_datasets"))
    assert latest_metadata(ws, "sales")["dataplat/upload"] == ours["dataplat/upload"]
    assert ws.datasets()["sales"]["status"] == "ready" and raw_files(ws, "sales") == ["2024.csv"]


def test_replace_needs_replace_a_failed_replace_keeps_the_previous_version(cli_workspace):
    ws = cli_workspace
    drop(ws, "people.csv", US_PEOPLE)
    ok(execute(ws, path="people.csv"))  # no name: the file's stem
    assert ws.datasets()["people"]["rows"] == 3
    first_upload = latest_metadata(ws, "people")["dataplat/upload"]

    drop(ws, "eu.csv", EU_SALES)
    _, reason = run_in_process(ws, path="eu.csv", name="people")
    assert "A dataset named 'people' already exists" in reason and "replace: true" in reason

    drop(ws, "broken.csv", "id,name,score\n1,Ann,3.5\n2,Bob\n")
    out = failed(execute(ws, path="broken.csv", name="people", replace=True), "broken.csv: line 3")
    assert "the previous version of the dataset is unchanged" in out
    info = ws.datasets()["people"]
    assert info["status"] == "failed" and "line 3" in info["error"] and info["rows"] == 3
    assert info["run_id"] == last_run(ws)[0].run_id
    assert pq.read_table(stored(ws.project_dir / "storage/datasets/people", "data.parquet")).column("name").to_pylist() == ["Ann", "Bob", "Cid"]
    assert raw_files(ws, "people") == ["people.csv"] and latest_metadata(ws, "people")["dataplat/upload"] == first_upload

    ok(execute(ws, path="eu.csv", name="people", replace=True, sep=";", profile=False))
    info = ws.datasets()["people"]
    assert (info["status"], info["rows"], info["columns"]) == ("ready", 4, 5)
    assert raw_files(ws, "people") == ["eu.csv"]  # the replaced upload is gone, the failed one never stayed
    metadata = latest_metadata(ws, "people")
    assert json.loads(metadata["dataplat/csv_options"]) == {"sep": ";"} and "report" not in metadata
    assert not (stored(ws.project_dir / "storage/datasets/people", "report.html")).exists()  # no profile: none of the old one

    # Only a file upload can be replaced by a file.
    Registry(UPath(ws.project_dir / "storage")).add_dataset("scores", DatasetSpec(origin="pipeline_output"))
    _, reason = run_in_process(ws, path="eu.csv", name="scores", replace=True)
    assert "comes from a pipeline output, not a file upload" in reason
    assert raw_files(ws, "scores") == []


def test_a_broken_file_fails_with_the_importers_message_and_registers_nothing(cli_workspace):
    ws = cli_workspace
    drop(ws, "in/empty.csv", "")
    failed(execute(ws, path="in/empty.csv", name="empty"), "in/empty.csv is empty")
    assert last_run(ws)[1].startswith("in/empty.csv is empty")  # named as given, not by a path of this host

    drop(ws, "ragged.csv", "a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n11,12,13\n")
    out = failed(execute(ws, path="ragged.csv", name="ragged"), "ragged.csv: line 4", "nothing was registered")
    assert "/raw/" not in last_run(ws)[1]

    assert ws.datasets() == {}
    assert stored_datasets(ws) == []
    assert Registry(UPath(ws.project_dir / "storage")).datasets() == {}
    assert (ws.project_dir / "storage/dropzone/ragged.csv").exists()


def test_paths_out_of_the_drop_zone_are_refused(cli_workspace, tmp_path):
    ws = cli_workspace
    drop(ws, "ok.csv", US_PEOPLE)
    outside = ws.project_dir / "storage" / "x.csv"
    outside.write_text(US_PEOPLE)
    failed(execute(ws, path="../x.csv", name="x"), "is not inside the drop zone")
    for path in (str(outside), "sub/../../x.csv", "file:///etc/passwd"):
        _, reason = run_in_process(ws, path=path, name="x")
        assert "is not inside the drop zone" in reason, path
    (ws.project_dir / "storage" / "dropzone" / "link.csv").symlink_to(outside)
    _, reason = run_in_process(ws, path="link.csv", name="x")
    assert "leads out of the drop zone" in reason
    _, reason = run_in_process(ws, path="nope.csv", name="x")
    assert "There is no file 'nope.csv' in the drop zone of project 'shop' (storage/dropzone/)" in reason
    assert ws.datasets() == {} and stored_datasets(ws) == []


def test_dropzone_paths_and_names():
    assert dropzone_path("sales/2024.csv") == "sales/2024.csv"
    assert dropzone_path("./sales//2024.csv") == "sales/2024.csv"
    for path in ("../x.csv", "/etc/passwd", "a/../../x.csv", "C:\\x.csv", "s3://b/x.csv", "~/x.csv", "", ".", "a/.."):
        with pytest.raises(DataplatError):
            dropzone_path(path)
    assert sanitized_name("sales/2024.csv") == "ds_2024"
    assert sanitized_name("Umsätze Q1 (final).CSV") == "umsatze_q1_final"
    assert sanitized_name("exports/orders-2024.csv.gz") == "orders_2024"
    assert sanitized_name("archive.zip") == "archive"
    assert sanitized_name("x" * 80 + ".csv") == "x" * 63


def test_a_file_on_an_sftp_or_s3_connector(cli_workspace, sftp_server, s3_server):
    ws = cli_workspace
    (sftp_server.home / "out").mkdir(exist_ok=True)
    (sftp_server.home / "out" / "weights.tsv").write_text("sku\tweight\nA\t1.5\nB\t2.25\n")
    s3_server.reset()
    s3_server.client().put_object(Bucket=s3_server.bucket, Key="exports/sales.csv", Body=EU_SALES.encode())
    ws.run("connector", "create", "sftp", "files", "--host", sftp_server.host, "--port", str(sftp_server.port),
           "--username", sftp_server.username, "--password-env", "SHOP_SFTP_PASSWORD", "--known-hosts", str(sftp_server.known_hosts))
    ws.run("connector", "create", "s3", "lake", "--bucket", s3_server.bucket, "--endpoint-url", s3_server.endpoint_url,
           "--region", s3_server.region, "--access-key-env", "SHOP_S3_KEY", "--secret-key-env", "SHOP_S3_SECRET")
    env = {"SHOP_SFTP_PASSWORD": sftp_server.password, "SHOP_S3_KEY": s3_server.access_key, "SHOP_S3_SECRET": s3_server.secret_key}

    ok(execute(ws, env=env, connector="files", path="out/weights.tsv", name="weights"))
    ok(execute(ws, env=env, connector="lake", path="exports/sales.csv"))
    listed = ws.datasets()
    assert (listed["weights"]["status"], listed["weights"]["rows"], listed["weights"]["columns"]) == ("ready", 2, 2)
    assert (listed["sales"]["status"], listed["sales"]["rows"], listed["sales"]["columns"]) == ("ready", 4, 5)
    assert raw_files(ws, "weights") == ["weights.tsv"] and raw_files(ws, "sales") == ["sales.csv"]
    assert pq.read_table(stored(ws.project_dir / "storage/datasets/weights", "data.parquet")).column("weight").to_pylist() == [1.5, 2.25]

    for name, value in env.items():
        os.environ[name] = value
    try:
        _, reason = run_in_process(ws, connector="lake", path="exports/missing.csv", name="missing")
        assert "'exports/missing.csv' does not exist" in reason
        _, reason = run_in_process(ws, connector="nope", path="x.csv", name="x")
        assert "Project 'shop' has no connector 'nope'" in reason
    finally:
        for name in env:
            os.environ.pop(name, None)
    sqlite = ws.run("connector", "create", "sql", "db", "--dialect", "sqlite", "--database", "shop.db")
    assert sqlite.code == 0
    _, reason = run_in_process(ws, connector="db", path="x.csv", name="x")
    assert "is a sql connector: files are read from ftp, sftp, s3 and gcs connectors" in reason
    assert set(ws.datasets()) == {"weights", "sales"}


# -- the sensor ---------------------------------------------------------------------------


def local_version(file: Path) -> str:
    """A local file's version as the sensor should compute it: size@mtime (UTC)."""
    stat = file.stat()
    return f"{stat.st_size}@{datetime.fromtimestamp(stat.st_mtime, timezone.utc).isoformat()}"


def test_the_sensor_imports_a_file_once_it_stops_changing(cli_workspace):
    ws = cli_workspace
    defs = project_definitions(ws.project_dir)
    sensor = defs.resolve_sensor_def("dropzone_shop")
    assert (sensor.job_name, sensor.default_status, sensor.minimum_interval_seconds) == ("import_file", DefaultSensorStatus.STOPPED, 30)

    with ws.instance() as instance:
        def tick(cursor):
            return sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor, definitions=defs))

        data = tick(None)
        assert data.run_requests == [] and data.skip_message == "No files in the drop zone (storage/dropzone/)."

        people = drop(ws, "team/people.csv", US_PEOPLE)
        drop(ws, "team/.people.csv.swp", "x")  # hidden files are left alone
        version = local_version(people)
        data = tick(data.cursor)
        assert data.run_requests == []
        assert data.skip_message == f"team/people.csv is new or changed ({version}): imported once it stays the same until the next look."
        assert json.loads(data.cursor) == {"seen": {"team/people.csv": version}, "imported": {}}

        # Unchanged on the next look: one run, keyed by the file's path and version.
        data = tick(data.cursor)
        assert data.skip_message is None and len(data.run_requests) == 1
        request = data.run_requests[0]
        assert request.run_key == f"team/people.csv:{version}"
        assert request.run_config == {"path": "team/people.csv", "name": "people", "replace": False}
        assert request.tags == {"dataplat/dataset": "people", "dataplat/dropzone_file": "team/people.csv",
                                "dataplat/source_version": version, "dagster/sensor_name": "dropzone_shop"}
        assert json.loads(data.cursor) == {"seen": {}, "imported": {"team/people.csv": version}}
        imported_cursor = data.cursor

        data = tick(imported_cursor)
        assert data.run_requests == [] and data.skip_message == "Nothing new in the drop zone (storage/dropzone/): 1 file imported already."

        # A file that grew between two looks waits for a look at which it did not.
        orders = drop(ws, "orders.csv", "id,total\n1,2.5\n")
        data = tick(imported_cursor)
        assert data.run_requests == []
        with orders.open("a") as file:
            file.write("2,7.25\n3,1\n")
        data = tick(data.cursor)
        assert data.run_requests == [] and f"orders.csv is new or changed ({local_version(orders)})" in data.skip_message
        data = tick(data.cursor)
        assert [r.run_key for r in data.run_requests] == [f"orders.csv:{local_version(orders)}"]

    # The requested run, executed as the daemon would: the dataset is ready.
    ok(execute(ws, **request.run_config))
    info = ws.datasets()["people"]
    assert (info["status"], info["rows"], info["origin"]) == ("ready", 3, "file_upload")


def test_the_sensor_replaces_a_taken_name_only_when_configured(cli_workspace):
    ws = cli_workspace
    ok(execute(ws, path=drop(ws, "people.csv", US_PEOPLE).name))
    assert ws.datasets()["people"]["rows"] == 3
    people = drop(ws, "people.csv", EU_SALES)  # a new version of the file
    version = local_version(people)

    defs = project_definitions(ws.project_dir)
    sensor = defs.resolve_sensor_def("dropzone_shop")
    with ws.instance() as instance:
        def tick(cursor):
            return sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor, definitions=defs))

        seen = tick(None).cursor
        data = tick(seen)
        assert data.run_requests == []
        assert data.skip_message == (
            "people.csv: dataset 'people' already exists; rename the file, or set `dropzone: {replace: true}` in "
            "dataplat.yaml to import dropped files as new versions of their datasets."
        )
        assert json.loads(data.cursor)["seen"] == {"people.csv": version}  # looked at again at the next tick

        catalog = ws.project_dir / "dataplat.yaml"
        catalog.write_text(catalog.read_text() + "dropzone: {replace: true, interval_s: 5}\n")
        data = tick(data.cursor)  # the setting is read at each tick
        assert [r.run_key for r in data.run_requests] == [f"people.csv:{version}"]
        request = data.run_requests[0]
        assert request.run_config == {"path": "people.csv", "name": "people", "replace": True}

    assert project_definitions(ws.project_dir).resolve_sensor_def("dropzone_shop").minimum_interval_seconds == 5
    ok(execute(ws, **request.run_config))
    info = ws.datasets()["people"]
    assert (info["status"], info["rows"], info["columns"]) == ("ready", 4, 5)
    assert raw_files(ws, "people") == ["people.csv"]
    assert latest_metadata(ws, "people")["dialect"]["sep"] == ";"


def test_the_dropzone_is_listed_with_etags_on_s3(s3_server):
    s3_server.reset()
    client = s3_server.client()
    for key, body in (("proj/dropzone/a.csv", b"x,y\n1,2\n"), ("proj/dropzone/sub/b.csv", b"x\n1\n"), ("proj/dropzone/.c.csv", b"x\n")):
        client.put_object(Bucket=s3_server.bucket, Key=key, Body=body)
    root = UPath(f"s3://{s3_server.bucket}/proj", endpoint_url=s3_server.endpoint_url, key=s3_server.access_key,
                 secret=s3_server.secret_key, use_listings_cache=False)
    files = list_dropzone(dropzone.dropzone_folder(root))
    assert [f.path for f in files] == ["a.csv", "sub/b.csv"]
    head = client.head_object(Bucket=s3_server.bucket, Key="proj/dropzone/a.csv")
    modified = head["LastModified"].astimezone(timezone.utc).isoformat()
    assert files[0].version == f"8@{modified}#{head['ETag'].strip(chr(34))}"
    assert list_dropzone(dropzone.dropzone_folder(root / "elsewhere")) == []


def test_a_zip_of_images_in_the_drop_zone_is_imported_as_an_image_folder(cli_workspace):
    import io
    import zipfile

    from PIL import Image

    ws = cli_workspace
    archive = ws.project_dir / "storage" / "dropzone" / "pets.zip"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w") as out:
        for name, colour in {"cats/a.png": (255, 0, 0), "cats/b.png": (0, 255, 0), "dogs/c.png": (0, 0, 255)}.items():
            image = io.BytesIO()
            Image.new("RGB", (10, 10), colour).save(image, "PNG")
            out.writestr(name, image.getvalue())
    ok(execute(ws, path="pets.zip"))

    listed = ws.run("image-folder", "list", "--json").json()
    assert [(i["name"], i["status"], i["images"], i["labels"]) for i in listed] == [("pets", "ready", 3, 2)]
    assert stored_datasets(ws) == []  # not a dataset
    run, _ = last_run(ws)
    assert listed[0]["run_id"] == run.run_id and run.job_name == "import_file"
    assert not any((ws.project_dir / "storage/image_folders/pets/raw").glob("*/*"))  # the staged copy is gone
    assert archive.exists()  # the dropped file stays
