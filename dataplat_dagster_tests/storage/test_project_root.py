"""project_root, write_exclusive and DatasetStore on a local folder, moto's S3 and the GCS emulator."""

import json
import os
import signal
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from dataplat_dagster.catalog.models import ProjectCatalog
from dataplat_dagster.catalog.store import load_catalog
from dataplat_dagster.datasets.storage import DATA_FILE, DatasetStore, is_local, project_root, stored_path, write_exclusive
from dataplat_dagster.errors import CatalogError, DataplatError
from dataplat_dagster_tests.storage.conftest import gcs_bucket, gcs_names, s3_keys

KEYS = {"LAKE_KEY": "access", "LAKE_SECRET": "secret"}


def s3_catalog(server, root: str | None = None, **connector) -> ProjectCatalog:
    spec = {"type": "s3", "bucket": server.bucket, "endpoint_url": server.endpoint_url, "region": server.region,
            "access_key_env": "LAKE_KEY", "secret_key_env": "LAKE_SECRET", **connector}
    return ProjectCatalog(storage_root=root or f"s3://{server.bucket}/shop", storage_connector="lake", connectors={"lake": spec})


def gcs_catalog(server, root: str | None = None) -> ProjectCatalog:
    spec = {"type": "gcs", "bucket": server.bucket, "gcp_project": server.project, "endpoint_url": server.endpoint_url}
    return ProjectCatalog(storage_root=root or f"gs://{server.bucket}/shop", storage_connector="media", connectors={"media": spec})


@pytest.fixture
def keys(s3, monkeypatch):
    monkeypatch.setenv("LAKE_KEY", s3.access_key)
    monkeypatch.setenv("LAKE_SECRET", s3.secret_key)
    return s3


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch):
    for var in ("DATAPLAT_STORAGE_ROOT", "STORAGE_EMULATOR_HOST", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)


# -- project_root ------------------------------------------------------------------------


def test_a_local_root_is_the_folder_under_the_project(tmp_path):
    assert project_root(tmp_path, ProjectCatalog()) == project_root(tmp_path, ProjectCatalog(storage_root="storage"))
    root = project_root(tmp_path, ProjectCatalog())
    assert is_local(root) and Path(root) == tmp_path / "storage"


def test_s3_root_through_the_storage_connector(keys, tmp_path):
    root = project_root(tmp_path, s3_catalog(keys))

    assert str(root) == f"s3://{keys.bucket}/shop"
    (root / "datasets" / "a" / "x.txt").write_bytes(b"hello")
    assert s3_keys(keys) == ["shop/datasets/a/x.txt"]
    assert (root / "datasets" / "a" / "x.txt").read_bytes() == b"hello"
    # The keys are options of the filesystem, never part of what is printed.
    for shown in (str(root), repr(root), str(root / "datasets")):
        assert keys.secret_key not in shown and keys.access_key not in shown


def test_s3_keys_are_read_from_their_variables_at_call_time(keys, monkeypatch, tmp_path):
    catalog = s3_catalog(keys)
    monkeypatch.setenv("LAKE_SECRET", "not-the-secret")
    with pytest.raises(OSError):
        (project_root(tmp_path, catalog) / "x").write_bytes(b"refused")
    monkeypatch.setenv("LAKE_SECRET", keys.secret_key)
    (project_root(tmp_path, catalog) / "x").write_bytes(b"accepted")
    assert s3_keys(keys) == ["shop/x"]


def test_an_unset_key_variable_is_named(s3, monkeypatch, tmp_path):
    monkeypatch.delenv("LAKE_KEY", raising=False)
    with pytest.raises(DataplatError) as raised:
        project_root(tmp_path, s3_catalog(s3))
    assert str(raised.value) == (
        "storage_connector 'lake' reads the access key id from $LAKE_KEY, which is not set: set it in the "
        "environment of every process that uses the project (the CLI, the code server, the runs)."
    )


def test_s3_without_a_connector_takes_the_default_chain(s3, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3.region)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint_url)

    root = project_root(tmp_path, ProjectCatalog(storage_root=f"s3://{s3.bucket}/chain"))

    assert root.storage_options == {"use_listings_cache": False, "endpoint_url": s3.endpoint_url}
    (root / "x").write_bytes(b"1")
    assert s3_keys(s3) == ["chain/x"]


def test_gcs_root_through_the_storage_connector(gcs, tmp_path):
    root = project_root(tmp_path, gcs_catalog(gcs))

    assert str(root) == f"gs://{gcs.bucket}/shop"
    (root / "datasets" / "a" / "x.txt").write_bytes(b"hello")
    assert gcs_names(gcs) == ["shop/datasets/a/x.txt"]
    assert (root / "datasets" / "a" / "x.txt").read_bytes() == b"hello"


def test_gcs_key_from_its_variable_stays_out_of_what_is_printed(gcs, monkeypatch, tmp_path):
    # A key of the right shape is enough to build the path: nothing here signs in.
    key = {"type": "authorized_user", "client_id": "id", "client_secret": "very-secret-value", "refresh_token": "rt"}
    monkeypatch.setenv("MEDIA_KEY", json.dumps(key))
    catalog = ProjectCatalog(storage_root=f"gs://{gcs.bucket}/shop", storage_connector="media",
                             connectors={"media": {"type": "gcs", "bucket": gcs.bucket, "credentials_env": "MEDIA_KEY"}})

    root = project_root(tmp_path, catalog)

    assert root.storage_options["token"] == key
    assert "very-secret-value" not in str(root) + repr(root)


def test_gcs_without_a_connector_reaches_the_emulator_of_storage_emulator_host(gcs, monkeypatch, tmp_path):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.endpoint_url)

    root = project_root(tmp_path, ProjectCatalog(storage_root=f"gs://{gcs.bucket}/chain"))

    assert root.storage_options == {"use_listings_cache": False, "endpoint_url": gcs.endpoint_url, "token": "anon"}
    (root / "x").write_bytes(b"1")
    assert gcs_names(gcs) == ["chain/x"]


def test_gcs_without_a_connector_or_emulator_asks_for_application_default_credentials(tmp_path):
    root = project_root(tmp_path, ProjectCatalog(storage_root="gs://bucket/shop"))
    assert root.storage_options == {"use_listings_cache": False, "token": "google_default"}


def test_a_missing_filesystem_names_the_extra_to_install(monkeypatch, tmp_path):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name in ("s3fs", "gcsfs") else find_spec(name, *args))
    with pytest.raises(DataplatError) as raised:
        project_root(tmp_path, ProjectCatalog(storage_root="s3://lake/shop"))
    assert str(raised.value) == "storage_root s3://lake/shop needs s3fs: pip install 'dataplat-dagster[s3]'"
    monkeypatch.setenv("DATAPLAT_STORAGE_ROOT", "gs://lake")
    with pytest.raises(DataplatError) as raised:
        project_root(tmp_path / "shop", ProjectCatalog())
    assert str(raised.value) == "storage_root (from $DATAPLAT_STORAGE_ROOT) gs://lake/shop needs gcsfs: pip install 'dataplat-dagster[gcs]'"


def test_the_filesystem_stand_in_copies_and_hides_its_options(keys, tmp_path):
    import copy

    root = project_root(tmp_path, s3_catalog(keys))
    assert keys.secret_key not in repr(root.fs)
    assert copy.deepcopy(root.fs).current() is root.fs.current()


def test_dataplat_storage_root_overrides_every_project(keys, monkeypatch, tmp_path):
    project_dir = tmp_path / "projects" / "shop"
    monkeypatch.setenv("DATAPLAT_STORAGE_ROOT", f"s3://{keys.bucket}/deploy/")

    root = project_root(project_dir, s3_catalog(keys, root="storage"))

    assert str(root) == f"s3://{keys.bucket}/deploy/shop"
    (root / "x").write_bytes(b"1")  # through the storage connector's keys
    assert s3_keys(keys) == ["deploy/shop/x"]


def test_dataplat_storage_root_as_a_local_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("DATAPLAT_STORAGE_ROOT", str(tmp_path / "lake"))
    root = project_root(tmp_path / "projects" / "shop", ProjectCatalog(storage_root="s3://bucket/shop"))
    assert is_local(root) and Path(root) == tmp_path / "lake" / "shop"


def test_dataplat_storage_root_must_not_be_relative(monkeypatch, tmp_path):
    monkeypatch.setenv("DATAPLAT_STORAGE_ROOT", "lake")
    with pytest.raises(DataplatError) as raised:
        project_root(tmp_path, ProjectCatalog())
    assert str(raised.value) == (
        "$DATAPLAT_STORAGE_ROOT is 'lake', a relative path: give an absolute folder or a URL "
        "(s3://bucket/prefix, gs://bucket/prefix), the same for every process of the deployment."
    )


def test_dataplat_storage_root_on_another_store_than_the_connector(keys, monkeypatch, tmp_path):
    monkeypatch.setenv("DATAPLAT_STORAGE_ROOT", "gs://lake")
    with pytest.raises(CatalogError) as raised:
        project_root(tmp_path / "shop", s3_catalog(keys))
    assert str(raised.value) == (
        "storage_connector 'lake' is an s3 connector, but $DATAPLAT_STORAGE_ROOT 'gs://lake/shop' is on gs://: give a gcs connector."
    )


def in_a_forked_child(action, timeout: float = 60) -> int:
    """Run ``action`` in a forked child, as the CLI executes its runs; its exit code."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            action()
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"the forked child did not finish in {timeout} s")


@pytest.mark.parametrize("backend", ["s3", "gcs"])
def test_a_root_made_before_a_fork_works_in_the_child(backend, request, tmp_path):
    server = request.getfixturevalue("keys" if backend == "s3" else "gcs")
    root = project_root(tmp_path, s3_catalog(server) if backend == "s3" else gcs_catalog(server))
    (root / "parent").write_bytes(b"1")
    assert root.exists()  # the root's filesystem, which joined paths share, is the parent's

    assert in_a_forked_child(lambda: (root / "child").write_bytes(b"2")) == 0
    assert (root / "child").read_bytes() == b"2"


def test_stored_path_keeps_the_roots_filesystem(keys, tmp_path):
    root = project_root(tmp_path, s3_catalog(keys))
    (root / "datasets" / "a" / "raw" / "x.csv").write_bytes(b"a,b\n")

    stored = stored_path(root, f"s3://{keys.bucket}/shop/datasets/a/raw/x.csv")

    assert stored.read_bytes() == b"a,b\n"
    assert stored_path(root, "s3://elsewhere/x.csv").storage_options == {}


# -- the catalog's checks of storage_connector -----------------------------------------


def catalog_error(**fields) -> str:
    with pytest.raises(ValidationError) as raised:
        ProjectCatalog(**fields)
    (problem,) = raised.value.errors()
    return problem["msg"].removeprefix("Value error, ")


S3_SPEC = {"type": "s3", "bucket": "lake"}
GCS_SPEC = {"type": "gcs", "bucket": "lake"}
SQL_SPEC = {"type": "sql", "dialect": "sqlite", "database": "shop.db"}


def test_storage_connector_must_exist():
    assert catalog_error(storage_root="s3://lake/shop", storage_connector="lake", connectors={"db": SQL_SPEC}) == (
        "storage_connector names the connector 'lake', which does not exist (connectors: db)"
    )
    assert catalog_error(storage_root="s3://lake/shop", storage_connector="lake") == (
        "storage_connector names the connector 'lake', which does not exist (connectors: none yet)"
    )


def test_storage_connector_must_be_s3_or_gcs():
    assert catalog_error(storage_root="s3://lake/shop", storage_connector="db", connectors={"db": SQL_SPEC}) == (
        "storage_connector 'db' is a sql connector: give an s3 or gcs connector, or unset storage_connector"
    )


def test_storage_connector_must_match_the_scheme():
    assert catalog_error(storage_root="gs://lake/shop", storage_connector="lake", connectors={"lake": S3_SPEC}) == (
        "storage_connector 'lake' is an s3 connector, but storage_root 'gs://lake/shop' is on gs://: give a gcs connector"
    )
    assert catalog_error(storage_root="s3://lake/shop", storage_connector="media", connectors={"media": GCS_SPEC}) == (
        "storage_connector 'media' is a gcs connector, but storage_root 's3://lake/shop' is on s3://: give an s3 connector"
    )
    assert catalog_error(storage_root="memory://lake", storage_connector="lake", connectors={"lake": S3_SPEC}) == (
        "storage_connector 'lake' is set, but storage_root 'memory://lake' is on memory://: a storage connector only reaches s3:// and gs:// storage"
    )


def test_storage_connector_fits_matching_and_local_roots():
    ProjectCatalog(storage_root="s3://lake/shop", storage_connector="lake", connectors={"lake": S3_SPEC})
    ProjectCatalog(storage_root="gs://lake/shop", storage_connector="media", connectors={"media": GCS_SPEC})
    # A local root ignores it: a deployment's DATAPLAT_STORAGE_ROOT may still use it.
    ProjectCatalog(storage_root="storage", storage_connector="lake", connectors={"lake": S3_SPEC})


def test_the_storage_connector_is_a_dependant_of_the_catalog(tmp_path):
    catalog = ProjectCatalog(storage_root="s3://lake/shop", storage_connector="lake", connectors={"lake": S3_SPEC})
    assert catalog.connector_dependants("lake") == ["the project's storage (storage_connector)"]


def test_the_catalog_file_names_the_problem(tmp_path):
    path = tmp_path / "dataplat.yaml"
    path.write_text("storage_root: s3://lake/shop\nstorage_connector: lake\n")
    with pytest.raises(CatalogError) as raised:
        load_catalog(path)
    assert str(raised.value) == (
        f"{path} is not a valid catalog:\n"
        "  top level: storage_connector names the connector 'lake', which does not exist (connectors: none yet)"
    )


# -- write_exclusive ---------------------------------------------------------------------


def assert_exclusive(path) -> None:
    assert write_exclusive(path, b"first") is True
    assert write_exclusive(path, b"second") is False
    assert path.read_bytes() == b"first"


def test_write_exclusive_on_a_local_folder(tmp_path):
    assert_exclusive(project_root(tmp_path, ProjectCatalog()) / "_registry" / "datasets" / "a.json")


def test_write_exclusive_on_s3(keys, tmp_path):
    path = project_root(tmp_path, s3_catalog(keys)) / "_registry" / "datasets" / "a.json"
    assert_exclusive(path)
    assert keys.client().get_object(Bucket=keys.bucket, Key="shop/_registry/datasets/a.json")["Body"].read() == b"first"


def test_write_exclusive_on_gcs(gcs, tmp_path):
    path = project_root(tmp_path, gcs_catalog(gcs)) / "_registry" / "datasets" / "a.json"
    assert_exclusive(path)
    assert gcs_bucket(gcs).blob("shop/_registry/datasets/a.json").download_as_bytes() == b"first"


def test_write_exclusive_on_s3_is_refused_by_the_store_itself(keys, monkeypatch, tmp_path):
    """Two writers that both found the name free: moto answers the second PUT 412."""
    path = project_root(tmp_path, s3_catalog(keys)) / "_registry" / "datasets" / "a.json"
    monkeypatch.setattr(path.fs.current(), "exists", lambda *args, **kwargs: False)
    assert_exclusive(path)


def test_write_exclusive_on_gcs_asks_for_generation_zero(gcs, monkeypatch, tmp_path):
    """gcp-storage-emulator ignores preconditions (it overwrites), so only the request can be
    checked here: the upload carries ifGenerationMatch=0, which GCS answers 412 if the
    object exists."""
    path = project_root(tmp_path, gcs_catalog(gcs)) / "_registry" / "datasets" / "a.json"
    fs = path.fs.current()  # the filesystem instance this process uses
    calls, call = [], fs._call

    async def recorded(*args, **kwargs):
        calls.append((kwargs.get("method", args[0] if args else None), kwargs.get("ifGenerationMatch")))
        return await call(*args, **kwargs)

    monkeypatch.setattr(fs, "_call", recorded)
    assert write_exclusive(path, b"first") is True
    assert ("POST", "0") in calls


@pytest.mark.parametrize("backend", ["s3", "gcs"])
def test_an_empty_marker_is_exclusive_too(backend, request, tmp_path):
    server = request.getfixturevalue("keys" if backend == "s3" else "gcs")
    root = project_root(tmp_path, s3_catalog(server) if backend == "s3" else gcs_catalog(server))
    marker = root / "_registry" / "exports" / "out" / "a"
    assert write_exclusive(marker, b"") is True
    assert write_exclusive(marker, b"") is False
    assert marker.exists() and marker.read_bytes() == b""


# -- DatasetStore on object stores -------------------------------------------------------


def exercise_store(root, names) -> None:
    """publish, read, local_file, move_to and delete, as the dataset commands use them."""
    store = DatasetStore(root, "orders")
    with store.staging() as tmp:
        assert not str(tmp).startswith(str(root))
        (tmp / DATA_FILE).write_bytes(b"parquet bytes")
        (tmp / "profile.json").write_text('{"rows": 2}')
        store.publish(tmp / "profile.json", "profile.json")
        store.publish(tmp / DATA_FILE, DATA_FILE)
        store.publish(tmp / "profile.json", "raw/abc/orders.csv")
    assert names("shop/datasets/") == ["shop/datasets/orders/data.parquet", "shop/datasets/orders/profile.json", "shop/datasets/orders/raw/abc/orders.csv"]
    assert store.exists() and store.size() == len(b"parquet bytes")
    assert store.read_json("profile.json") == {"rows": 2}
    with store.local_file(DATA_FILE) as local:
        assert Path(local).read_bytes() == b"parquet bytes"

    moved = store.move_to("sales")
    assert names("shop/datasets/") == ["shop/datasets/sales/data.parquet", "shop/datasets/sales/profile.json", "shop/datasets/sales/raw/abc/orders.csv"]
    assert not store.exists() and moved.read_bytes(DATA_FILE) == b"parquet bytes"

    moved.remove("profile.json")
    moved.delete()
    assert names("shop/") == []
    moved.delete()  # nothing left: no error


def test_dataset_store_on_s3(keys, tmp_path):
    exercise_store(project_root(tmp_path, s3_catalog(keys)), lambda prefix: s3_keys(keys, prefix))


def test_dataset_store_on_gcs(gcs, tmp_path):
    exercise_store(project_root(tmp_path, gcs_catalog(gcs)), lambda prefix: gcs_names(gcs, prefix))
