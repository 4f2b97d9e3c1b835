"""File exporters against real FTP, SFTP, S3 (moto) and GCS (emulator) servers: both modes
in Parquet and CSV, atomic overwrites and timestamped exports under a failing stream,
retention that spares files of other names, a refused output type, and `dataplat dataset
export` through the CLI. Every file is read back with a separate client: the server's own
folder for FTP and SFTP, boto3 for S3, google-cloud-storage for GCS."""

from __future__ import annotations

import io
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, asset, materialize

from dataplat_dagster.definitions import project_definitions
from dataplat_dagster_tests.datasources.snapshots import SnapshotProject

ASSET = "preds"
STAMPED = re.compile(r"preds_(\d{8}_\d{6})\.(parquet|csv)")


@dataclass
class Store:
    """A connector (as a catalog entry) and a separate client on the same files."""

    kind: str
    connector: dict
    base_uri: str  # what the exporter's URIs start with
    read: Callable[[str], bytes]  # a path under the connector's root -> its bytes
    put: Callable[[str, bytes], None]
    names: Callable[[str], list[str]]  # the files under a folder of the root, sorted


def _folder_store(kind: str, local_root: Path, connector: dict, base_uri: str, owner: Path | None = None) -> Store:
    """FTP and SFTP: the server's folder on this machine is the separate client."""

    def put(path: str, data: bytes) -> None:
        target = local_root / path
        for folder in reversed([p for p in target.parents if p != local_root and local_root in p.parents]):
            if not folder.exists():
                folder.mkdir()
                if owner is not None:  # the SFTP user must be able to write there too
                    shutil.chown(folder, owner.stat().st_uid, owner.stat().st_gid)
        target.write_bytes(data)

    def names(folder: str) -> list[str]:
        base = local_root / folder
        if not base.exists():
            return []
        return sorted(str(p.relative_to(local_root)) for p in base.rglob("*") if p.is_file())

    return Store(kind, connector, base_uri, lambda path: (local_root / path).read_bytes(), put, names)


@pytest.fixture(params=["ftp", "sftp", "s3", "gcs"])
def store(request, monkeypatch) -> Store:
    """Each test gets a fresh folder (root or prefix) of its own on the store."""
    sub = f"exp_{uuid.uuid4().hex[:10]}"
    if request.param == "ftp":
        server = request.getfixturevalue("ftp_server")
        monkeypatch.setenv("EXP_FTP_PASSWORD", server.password)
        (server.root / sub).mkdir()
        connector = {"type": "ftp", "host": server.host, "port": server.port, "username": server.username,
                     "password_env": "EXP_FTP_PASSWORD", "root": f"/{sub}"}
        return _folder_store("ftp", server.root / sub, connector, f"ftp://{server.username}@{server.host}:{server.port}/{sub}")
    if request.param == "sftp":
        server = request.getfixturevalue("sftp_server")
        monkeypatch.setenv("EXP_SFTP_PASSWORD", server.password)
        root = server.home / sub
        root.mkdir()
        shutil.chown(root, server.home.stat().st_uid, server.home.stat().st_gid)
        connector = {"type": "sftp", "host": server.host, "port": server.port, "username": server.username,
                     "password_env": "EXP_SFTP_PASSWORD", "known_hosts": str(server.known_hosts), "root": sub}
        return _folder_store("sftp", root, connector, f"sftp://{server.username}@{server.host}:{server.port}/~/{sub}", owner=server.home)
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        monkeypatch.setenv("EXP_S3_KEY", server.access_key)
        monkeypatch.setenv("EXP_S3_SECRET", server.secret_key)
        client = server.client()
        connector = {"type": "s3", "bucket": server.bucket, "endpoint_url": server.endpoint_url, "region": server.region,
                     "access_key_env": "EXP_S3_KEY", "secret_key_env": "EXP_S3_SECRET", "prefix": f"{sub}/"}

        def s3_names(folder: str) -> list[str]:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=server.bucket, Prefix=f"{sub}/{folder}")
            return sorted(obj["Key"][len(sub) + 1:] for page in pages for obj in page.get("Contents", []))

        def s3_uploads() -> list[str]:
            return [u["Key"] for u in client.list_multipart_uploads(Bucket=server.bucket, Prefix=f"{sub}/").get("Uploads", [])]

        found = Store(
            "s3", connector, f"s3://{server.bucket}/{sub}",
            lambda path: client.get_object(Bucket=server.bucket, Key=f"{sub}/{path}")["Body"].read(),
            lambda path, data: client.put_object(Bucket=server.bucket, Key=f"{sub}/{path}", Body=data),
            s3_names,
        )
        found.uploads = s3_uploads  # multipart uploads left open: none, ever
        return found
    server = request.getfixturevalue("gcs_server")
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    bucket = storage.Client(project=server.project, credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": server.endpoint_url}).bucket(server.bucket)
    connector = {"type": "gcs", "bucket": server.bucket, "gcp_project": server.project, "endpoint_url": server.endpoint_url,
                 "prefix": f"{sub}/"}
    return Store(
        "gcs", connector, f"gs://{server.bucket}/{sub}",
        lambda path: bucket.blob(f"{sub}/{path}").download_as_bytes(),
        lambda path, data: bucket.blob(f"{sub}/{path}").upload_from_string(data),
        lambda folder: sorted(b.name[len(sub) + 1:] for b in bucket.list_blobs(prefix=f"{sub}/{folder}")),
    )


class ExportProject:
    """A project with the store's connector ("files"); exporters are added per test."""

    def __init__(self, tmp_path: Path, store: Store):
        self.project = SnapshotProject(tmp_path, {"files": store.connector}, {})
        self.project.catalog["exporters"] = {}
        self.instance = DagsterInstance.ephemeral()

    def exporter(self, name: str, **spec) -> None:
        self.project.catalog["exporters"][name] = {"connector": "files", **spec}
        self.project._save()

    def export(self, exporter: str, value):
        """Materialize an asset returning ``value`` (called, if callable) through ``exporter``."""

        @asset(key=["shop", "pipeline", ASSET], io_manager_key=exporter)
        def preds():
            return value() if callable(value) else value

        defs = project_definitions(self.project.dir)
        return materialize([preds], resources=defs.resources, instance=self.instance, raise_on_error=False)

    @staticmethod
    def metadata(result) -> dict:
        (event,) = result.asset_materializations_for_node(AssetKey(["shop", "pipeline", ASSET]).to_python_identifier())
        return {key: value.value for key, value in event.metadata.items()}


def failure_text(result) -> str:
    """The failed step's message with the messages of the errors that caused it."""
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            if data.user_failure_data:
                return data.user_failure_data.description
            parts, error = [], data.error
            while error is not None:
                parts.append(error.message)
                error = error.cause
            return "\n".join(parts)
    return ""


def frame(start: int, n: int) -> pd.DataFrame:
    ids = range(start, start + n)
    return pd.DataFrame({
        "id": pd.Series(list(ids), dtype="int64"),
        "score": pd.Series([i / 4 for i in ids], dtype="float64"),
        "label": pd.Series([f"é{i}" for i in ids], dtype="object"),
        "flag": pd.Series([i % 2 == 0 for i in ids], dtype="bool"),
        "at": pd.Series(pd.date_range("2024-01-01", periods=n, freq="h"), dtype="datetime64[ns]"),
    })


def parquet_frame(data: bytes) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(data)).to_pandas()


def failing_stream(batches: int = 2, rows: int = 500):
    schema = pa.schema([("id", pa.int64())])

    def gen():
        for index in range(batches):
            yield pa.RecordBatch.from_pydict({"id": list(range(index * rows, (index + 1) * rows))}, schema=schema)
        raise RuntimeError("the producer broke mid-stream")

    return pa.RecordBatchReader.from_batches(schema, gen())


def stamped_names(store: Store, suffix: str = "parquet") -> list[str]:
    return [name for name in store.names("out/") if STAMPED.fullmatch(name.removeprefix("out/")) and name.endswith(suffix)]


# -- overwrite --------------------------------------------------------------------------


def test_overwrite_parquet_twice_leaves_exactly_the_second_content(store, tmp_path):
    project = ExportProject(tmp_path, store)
    project.exporter("preds_out", mode="overwrite", path="out/preds.parquet")

    first = project.export("preds_out", frame(0, 50))
    assert first.success, failure_text(first)
    pd.testing.assert_frame_equal(parquet_frame(store.read("out/preds.parquet")), frame(0, 50))

    second = project.export("preds_out", frame(1000, 7))
    assert second.success, failure_text(second)
    back = parquet_frame(store.read("out/preds.parquet"))
    pd.testing.assert_frame_equal(back, frame(1000, 7))  # values and dtypes, nothing of the first left
    assert [str(t) for t in back.dtypes] == ["int64", "float64", "object", "bool", "datetime64[ns]"]
    assert store.names("out/") == ["out/preds.parquet"]  # no temporary file left beside it

    meta = project.metadata(second)
    assert meta["dagster/row_count"] == 7 and meta["export_mode"] == "overwrite" and meta["exporter"] == "preds_out"
    assert meta["exported_to"] == "out/preds.parquet"
    assert meta["dagster/uri"] == f"{store.base_uri}/out/preds.parquet"
    assert "dropped_by_retention" not in meta


def test_csv_format_writes_a_header_and_the_rows(store, tmp_path):
    project = ExportProject(tmp_path, store)
    project.exporter("preds_csv", mode="overwrite", path="out/preds.txt", format="csv")
    table = pa.table({"id": pa.array([1, 2, 3, 4], pa.int64()), "city": ["Köln", "a,b", None, ""], "amount": [1.5, None, -2.25, 0.0]})
    result = project.export("preds_csv", table)
    assert result.success, failure_text(result)

    data = store.read("out/preds.txt")
    assert data.decode().splitlines() == ['"id","city","amount"', '1,"Köln",1.5', '2,"a,b",', "3,,-2.25", '4,"",0']
    # A null is an empty field, an empty string a quoted one: a reader can tell them apart.
    options = pa_csv.ConvertOptions(strings_can_be_null=True, quoted_strings_can_be_null=False)
    back = pa_csv.read_csv(io.BytesIO(data), convert_options=options)
    assert back.column_names == ["id", "city", "amount"]
    assert back.to_pylist() == table.to_pylist()
    assert back.schema == table.schema
    meta = project.metadata(result)
    assert meta["dagster/row_count"] == 4 and meta["exported_to"] == "out/preds.txt"


# -- timestamped ------------------------------------------------------------------------


def test_timestamped_twice_writes_two_files_with_their_rows(store, tmp_path):
    project = ExportProject(tmp_path, store)
    project.exporter("preds_ts", mode="timestamped", path="out/preds.parquet")

    before = datetime.now(timezone.utc).replace(microsecond=0)
    first = project.export("preds_ts", frame(0, 4))
    assert first.success, failure_text(first)
    time.sleep(1.1)  # names have a resolution of one second
    second = project.export("preds_ts", frame(100, 9))
    assert second.success, failure_text(second)
    after = datetime.now(timezone.utc)

    names = store.names("out/")
    assert len(names) == 2 and all(STAMPED.fullmatch(name.removeprefix("out/")) for name in names), names
    older, newer = names
    pd.testing.assert_frame_equal(parquet_frame(store.read(older)), frame(0, 4))
    pd.testing.assert_frame_equal(parquet_frame(store.read(newer)), frame(100, 9))
    for name in names:  # UTC, at the time of the export
        stamp = datetime.strptime(STAMPED.fullmatch(name.removeprefix("out/")).group(1), "%Y%m%d_%H%M%S").replace(tzinfo=timezone.utc)
        assert before <= stamp <= after

    for result, name, rows in ((first, older, 4), (second, newer, 9)):
        meta = project.metadata(result)
        assert meta["exported_to"] == name
        assert meta["dagster/uri"] == f"{store.base_uri}/{name}"
        assert meta["dagster/row_count"] == rows
        assert meta["export_mode"] == "timestamped"


def test_two_timestamped_exports_in_the_same_second_both_succeed_and_sort_by_time(store, tmp_path, monkeypatch):
    import dataplat_dagster.exporters.models as models

    stamps = ["20260102_030405", "20260102_030405", "20260102_030406"]  # both start in the same second
    monkeypatch.setattr(models, "timestamp_suffix", lambda moment=None: stamps.pop(0))
    project = ExportProject(tmp_path, store)
    project.exporter("preds_ts", mode="timestamped", path="out/preds.parquet")
    results = [project.export("preds_ts", frame(start, n)) for start, n in ((0, 4), (100, 9))]
    assert all(result.success for result in results), [failure_text(result) for result in results]

    names = [project.metadata(result)["exported_to"] for result in results]
    assert stamps == []  # the second found its second's name taken and took the next one
    assert names == ["out/preds_20260102_030405.parquet", "out/preds_20260102_030406.parquet"]
    assert store.names("out/") == names
    pd.testing.assert_frame_equal(parquet_frame(store.read(names[0])), frame(0, 4))  # never replaced
    pd.testing.assert_frame_equal(parquet_frame(store.read(names[1])), frame(100, 9))


def test_retention_keeps_the_newest_and_spares_other_names(store, tmp_path):
    project = ExportProject(tmp_path, store)
    project.exporter("preds_ts", mode="timestamped", path="out/preds.parquet", retention=2)
    results = []
    for index in range(3):
        if index:
            time.sleep(1.1)
        results.append(project.export("preds_ts", frame(index * 10, index + 1)))
        assert results[-1].success, failure_text(results[-1])
        if index == 0:  # files the exporter did not write, of names beside its pattern
            store.put("out/preds_backup.parquet", b"not mine")
            store.put("out/preds.parquet", b"nor this")
            store.put("out/other_20200101_000000.parquet", b"another stem")
    created = [project.metadata(result)["exported_to"] for result in results]

    assert stamped_names(store) == created[1:]
    assert sorted(store.names("out/")) == sorted(
        [*created[1:], "out/preds_backup.parquet", "out/preds.parquet", "out/other_20200101_000000.parquet"])
    assert store.read("out/preds_backup.parquet") == b"not mine"
    assert store.read("out/preds.parquet") == b"nor this"
    pd.testing.assert_frame_equal(parquet_frame(store.read(created[2])), frame(20, 3))
    pd.testing.assert_frame_equal(parquet_frame(store.read(created[1])), frame(10, 2))
    assert "dropped_by_retention" not in project.metadata(results[1])
    assert project.metadata(results[2])["dropped_by_retention"] == [created[0]]


# -- atomicity and refusals -------------------------------------------------------------


def test_a_stream_failing_midway_leaves_the_old_file_or_no_new_one(store, tmp_path):
    project = ExportProject(tmp_path, store)
    project.exporter("preds_out", mode="overwrite", path="out/preds.parquet")
    project.exporter("preds_ts", mode="timestamped", path="out/preds.parquet")
    assert project.export("preds_out", frame(0, 20)).success
    old = store.read("out/preds.parquet")

    broken = project.export("preds_out", failing_stream)
    assert not broken.success
    assert "the producer broke mid-stream" in failure_text(broken)
    assert store.read("out/preds.parquet") == old  # byte for byte
    assert store.names("out/") == ["out/preds.parquet"]  # no temporary or partial file

    broken_ts = project.export("preds_ts", failing_stream)
    assert not broken_ts.success
    assert "the producer broke mid-stream" in failure_text(broken_ts)
    assert store.names("out/") == ["out/preds.parquet"]
    if hasattr(store, "uploads"):
        assert store.uploads() == []


def test_an_output_of_another_type_is_refused_naming_the_accepted_types(store, tmp_path):
    project = ExportProject(tmp_path, store)
    project.exporter("preds_out", mode="overwrite", path="out/preds.parquet")
    result = project.export("preds_out", {"id": [1, 2]})
    assert not result.success
    message = failure_text(result)
    assert "cannot write a dict" in message
    assert "pyarrow.Table" in message and "RecordBatchReader" in message and "pandas.DataFrame" in message
    assert store.names("out/") == []


# -- `dataplat dataset export` ----------------------------------------------------------


SALES_CSV = "order_id,city,amount\n1,Paris,10.5\n2,Lyon,7.25\n3,Nice,\n4,Lille,99.0\n"


def test_dataset_export_through_the_cli_to_s3(cli_workspace, s3_server, tmp_path):
    ws, s3 = cli_workspace, s3_server
    env = {"EXP_S3_KEY": s3.access_key, "EXP_S3_SECRET": s3.secret_key}
    prefix = f"cli_{uuid.uuid4().hex[:10]}/"
    source = tmp_path / "sales.csv"
    source.write_text(SALES_CSV)
    ws.run("dataset", "import", str(source), "--name", "sales")
    ws.run("connector", "create", "s3", "lake", "--bucket", s3.bucket, "--prefix", prefix, "--region", s3.region,
           "--endpoint-url", s3.endpoint_url, "--access-key-env", "EXP_S3_KEY", "--secret-key-env", "EXP_S3_SECRET")
    created = ws.run("exporter", "create", "sales_out", "--connector", "lake", "--mode", "timestamped",
                     "--path", "exports/sales.parquet", "--retention", "3")
    assert "Created exporter 'sales_out'" in created.stdout
    assert ws.run("exporter", "show", "sales_out", "--json", env=env).json()["written"] == []

    started = datetime.now(timezone.utc) - timedelta(seconds=1)
    exported = ws.run("dataset", "export", "sales", "--exporter", "sales_out", "--json", env=env).json()
    name = exported["exported_to"]
    assert re.fullmatch(r"exports/sales_\d{8}_\d{6}\.parquet", name), name
    assert datetime.strptime(name[len("exports/sales_"):-len(".parquet")], "%Y%m%d_%H%M%S").replace(tzinfo=timezone.utc) >= started.replace(microsecond=0)
    assert exported["rows"] == 4 and exported["mode"] == "timestamped"
    assert exported["dataset"] == "sales" and exported["exporter"] == "sales_out"
    assert exported["identifier"] == f"s3://{s3.bucket}/{prefix}{name}"
    assert exported["dropped_by_retention"] == []

    body = s3.client().get_object(Bucket=s3.bucket, Key=prefix + name)["Body"].read()
    table = pq.read_table(io.BytesIO(body))
    assert table.column_names == ["order_id", "city", "amount"]
    assert table.to_pylist() == [{"order_id": 1, "city": "Paris", "amount": 10.5}, {"order_id": 2, "city": "Lyon", "amount": 7.25},
                                 {"order_id": 3, "city": "Nice", "amount": None}, {"order_id": 4, "city": "Lille", "amount": 99.0}]
    ws.run("dataset", "download", "sales", "--format", "parquet", "--output", str(tmp_path / "stored.parquet"))
    stored = pq.read_table(tmp_path / "stored.parquet")
    assert table.equals(stored)

    with ws.instance() as instance:
        run = instance.get_run_by_id(exported["run_id"])
        assert run.status == DagsterRunStatus.SUCCESS and run.job_name == "export_dataset"
        assert run.tags["dataplat/exporter"] == "sales_out"

    shown = ws.run("exporter", "show", "sales_out", "--json", env=env).json()
    assert shown["written"] == [{"name": name, "rows": 4}]
    assert shown["datasets"] == ["sales"]

    graph = project_definitions(ws.project_dir).resolve_asset_graph()
    export_key = AssetKey(["shop", "exports", "sales_out"])
    assert graph.get(export_key).parent_keys == {AssetKey(["shop", "datasets", "sales"])}
    assert not graph.get(export_key).is_materializable
