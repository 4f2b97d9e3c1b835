"""The GCS connector against gcp-storage-emulator (which has no authentication)."""

import hashlib
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from dataplat_dagster.connectors.gcs import GcsConnector
from dataplat_dagster.connectors.models import GcsConnectorSpec
from dataplat_dagster.errors import ConnectorError
from dataplat_dagster_tests.connectors.storetests import MB, chunks, stream_up_and_down
from dataplat_dagster_tests.servers.gcs import start_gcs
from dataplat_dagster_tests.servers.ports import free_port

ALL_STEPS = ["resolve", "connect", "authenticate", "bucket", "list", "read", "write", "delete"]


def bare_bucket(server) -> storage.Bucket:
    """The emulator's bucket through the bare client, for setting up and checking."""
    client = storage.Client(project=server.project, credentials=AnonymousCredentials(), client_options={"api_endpoint": server.endpoint_url})
    return client.bucket(server.bucket)


@pytest.fixture
def gcs(gcs_server):
    bucket = bare_bucket(gcs_server)
    for blob in bucket.list_blobs():
        blob.delete()
    return gcs_server


def make_connector(server, monkeypatch, tmp_path, *, credentials_json=None, **spec) -> GcsConnector:
    """A connector the way a project builds one: from its catalog spec."""
    fields = dict(bucket=server.bucket, prefix="raw", gcp_project=server.project, endpoint_url=server.endpoint_url, retries=2, backoff_s=0.01)
    if credentials_json is not None:
        monkeypatch.setenv("LAKE_GCS_KEY", credentials_json)
        fields["credentials_env"] = "LAKE_GCS_KEY"
    fields.update(spec)
    return GcsConnector.from_spec("lake", GcsConnectorSpec(**fields), tmp_path).process_config_and_initialize()


@pytest.fixture
def connector(gcs, monkeypatch, tmp_path) -> GcsConnector:
    return make_connector(gcs, monkeypatch, tmp_path)


def names(server) -> list[str]:
    return sorted(blob.name for blob in bare_bucket(server).list_blobs())


def service_account_key(token_uri: str) -> str:
    """A well-formed service-account key (a fresh RSA key) whose sign-in goes to ``token_uri``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return json.dumps({
        "type": "service_account", "project_id": "dataplat-test", "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": pem, "client_email": "loader@dataplat-test.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": token_uri,
    })


def outcomes(report) -> dict[str, str]:
    return {step.step: step.outcome for step in report.steps}


# -- check --------------------------------------------------------------------------------


def test_check_passes_every_step_and_leaves_nothing_behind(gcs, connector):
    bare_bucket(gcs).blob("raw/orders/2024.csv").upload_from_string(b"id,total\n1,9.5\n")

    report = connector.check(write=True)

    assert report.ok, report.to_json()
    assert [step.step for step in report.steps] == ALL_STEPS
    assert set(outcomes(report).values()) == {"passed"}
    messages = {step.step: step.message for step in report.steps}
    assert messages["authenticate"].startswith("no credentials: anonymous requests to http://127.0.0.1:")
    assert messages["bucket"].startswith(f"bucket '{gcs.bucket}' exists")
    assert "orders/2024.csv" in messages["list"]
    assert messages["read"] == "read the first 15 bytes of 'orders/2024.csv' (15 bytes)"
    assert ".dataplat-check-" in messages["write"]
    assert names(gcs) == ["raw/orders/2024.csv"]


def test_check_of_an_empty_prefix_skips_read(connector):
    report = connector.check()

    assert report.ok
    assert outcomes(report)["read"] == "skipped"
    assert report.steps[-1].message == "nothing to read: no object under gs://dataplat-test/raw"


def test_check_wrong_port_fails_connect(gcs, monkeypatch, tmp_path):
    report = make_connector(gcs, monkeypatch, tmp_path, endpoint_url=f"http://127.0.0.1:{free_port()}").check()

    assert outcomes(report) == {"resolve": "passed", "connect": "failed"}
    assert "refused" in report.failed_step.message


def test_check_missing_bucket_fails_bucket(gcs, monkeypatch, tmp_path):
    report = make_connector(gcs, monkeypatch, tmp_path, bucket="no-such-bucket").check()

    assert report.failed_step.step == "bucket"
    assert report.failed_step.message.startswith("bucket 'no-such-bucket' does not exist")


def test_check_with_a_variable_that_holds_no_key_fails_authenticate(gcs, monkeypatch, tmp_path):
    report = make_connector(gcs, monkeypatch, tmp_path, credentials_json="hunter2-not-json").check()

    assert report.failed_step.step == "authenticate"
    assert "the JSON key in $LAKE_GCS_KEY is not a JSON object" in report.failed_step.message
    assert "hunter2" not in str(report.to_json())


def test_check_with_a_missing_key_file_fails_authenticate(gcs, monkeypatch, tmp_path):
    report = make_connector(gcs, monkeypatch, tmp_path, credentials_file="keys/missing.json").check()

    assert report.failed_step.step == "authenticate"
    assert "the key file keys/missing.json is missing" in report.failed_step.message


def test_check_with_a_key_google_refuses_fails_authenticate_without_the_key(gcs, monkeypatch, tmp_path):
    # The emulator has no sign-in service: asking it for a token is refused like a revoked key.
    key = service_account_key(f"{gcs.endpoint_url}/token")
    connector = make_connector(gcs, monkeypatch, tmp_path, credentials_json=key)

    report = connector.check()

    failed = report.failed_step
    assert failed.step == "authenticate"
    assert failed.message.startswith("Google refused the JSON key in $LAKE_GCS_KEY")
    private_key = json.loads(key)["private_key"]
    text = str(report.to_json()) + repr(connector)
    assert private_key not in text and private_key.splitlines()[1] not in text
    assert "credentials_json='***'" in repr(connector)


def test_check_when_the_sign_in_service_is_down_fails_authenticate(gcs, monkeypatch, tmp_path):
    key = service_account_key(f"http://127.0.0.1:{free_port()}/token")

    report = make_connector(gcs, monkeypatch, tmp_path, credentials_json=key).check()

    assert report.failed_step.step == "authenticate"
    assert report.failed_step.message.startswith("cannot reach Google's sign-in service to check the JSON key in $LAKE_GCS_KEY")


# -- the store ----------------------------------------------------------------------------


def test_round_trip_under_the_prefix(gcs, connector, tmp_path):
    bucket = bare_bucket(gcs)
    bucket.blob("outside.csv").upload_from_string(b"not ours")
    bucket.blob("raw/folder/").upload_from_string(b"")  # a console's folder marker
    local = tmp_path / "a.txt"
    local.write_bytes(b"inbox")
    before = datetime.now(timezone.utc) - timedelta(seconds=5)

    with connector.open_store() as store:
        assert store.address == "gs://dataplat-test/raw"
        with store.write("in/2024/orders.csv") as target:
            target.write(b"id,total\n")
            target.write(b"1,9.5\n")
        with store.write("in/2024.csv") as target:
            target.write(b"x\n")
        uploaded = store.upload(local, "inbox/a.txt")
        assert (uploaded.path, uploaded.size) == ("inbox/a.txt", 5)

        assert names(gcs) == ["outside.csv", "raw/folder/", "raw/in/2024.csv", "raw/in/2024/orders.csv", "raw/inbox/a.txt"]
        assert [info.path for info in store.list()] == ["in/2024.csv", "in/2024/orders.csv", "inbox/a.txt"]
        assert [info.path for info in store.list("in")] == ["in/2024.csv", "in/2024/orders.csv", "inbox/a.txt"]
        assert [info.path for info in store.list("in/")] == ["in/2024.csv", "in/2024/orders.csv"]
        assert store.list("nothing/") == []

        info = store.stat("in/2024/orders.csv")
        assert (info.path, info.size) == ("in/2024/orders.csv", 15)
        assert info.etag == str(bucket.get_blob("raw/in/2024/orders.csv").generation)
        assert info.modified.tzinfo == timezone.utc and info.modified > before
        assert store.list("in/2024/") == [info]

        with store.open_read("./in//2024/orders.csv") as source:
            assert source.read(3) == b"id,"
            assert source.read() == b"total\n1,9.5\n"
        assert store.download("in/2024/orders.csv", tmp_path / "copy.csv") == tmp_path / "copy.csv"
        assert (tmp_path / "copy.csv").read_bytes() == b"id,total\n1,9.5\n"
        assert store.exists("in/2024.csv") and not store.exists("in/2023.csv")

        with store.write("in/2024.csv") as target:  # a rewrite is a new generation
            target.write(b"y\n")
        assert store.stat("in/2024.csv").etag != store.list("in/2024/")[0].etag
        store.delete("in/2024.csv")
        assert not store.exists("in/2024.csv")
        assert names(gcs) == ["outside.csv", "raw/folder/", "raw/in/2024/orders.csv", "raw/inbox/a.txt"]


def test_missing_files_and_bad_paths(connector, tmp_path):
    with connector.open_store() as store:
        with pytest.raises(FileNotFoundError, match="'gone.csv' does not exist in gs://dataplat-test/raw"):
            store.delete("gone.csv")
        with pytest.raises(FileNotFoundError):
            store.stat("gone.csv")
        with pytest.raises(FileNotFoundError):
            with store.open_read("gone.csv"):
                pass
        with pytest.raises(FileNotFoundError):
            store.download("gone.csv", tmp_path / "gone.csv")
        assert list(tmp_path.iterdir()) == []
        with pytest.raises(ConnectorError, match="climbs out"):
            store.stat("../outside.csv")


def test_default_credentials_go_through_dagster_gcps_resource(gcs, monkeypatch, tmp_path):
    # With neither a key nor an endpoint, the client is GCSResource's; the emulator's
    # variable (set by this test, never by the connector) is how that one reaches it.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.endpoint_url)
    connector = make_connector(gcs, monkeypatch, tmp_path, endpoint_url=None)
    bare_bucket(gcs).blob("raw/a.csv").upload_from_string(b"a\n")

    with connector.open_store() as store:
        assert [info.path for info in store.list()] == ["a.csv"]


def test_fifty_megabytes_stream_up_and_down_in_flat_memory(gcs, connector):
    with connector.open_store() as store:
        sent, received, size, upload_peak, download_peak = stream_up_and_down(store, "big/blob.bin", 50)
        info = store.stat("big/blob.bin")

    assert size == info.size == 50 * MB
    assert received == sent
    # One 8 MiB chunk is held while writing (the library's buffer copies it once), a few
    # 4 MiB ranges while reading.
    assert upload_peak < 20 * MB, upload_peak
    assert download_peak < 15 * MB, download_peak


def test_upload_and_download_of_local_files(connector, tmp_path):
    local = tmp_path / "local.bin"
    source, sent = chunks(20)
    with open(local, "wb") as handle:
        for chunk in source:
            handle.write(chunk)

    with connector.open_store() as store:
        info = store.upload(local, "files/local.bin")
        copy = store.download("files/local.bin", tmp_path / "copy.bin")

    assert info.size == 20 * MB
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == sent.hexdigest()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["copy.bin", "local.bin"]


def test_an_error_inside_the_write_block_leaves_the_old_object(gcs, connector):
    bucket = bare_bucket(gcs)
    bucket.blob("raw/report.csv").upload_from_string(b"old")
    generation = bucket.get_blob("raw/report.csv").generation

    with connector.open_store() as store:
        for name in ("report.csv", "new.csv"):
            with pytest.raises(RuntimeError, match="half-way"):
                with store.write(name) as target:
                    for chunk in chunks(12)[0]:  # beyond one chunk: the upload session began
                        target.write(chunk)
                    raise RuntimeError("half-way")
        with pytest.raises(KeyboardInterrupt):
            with store.write("small.csv") as target:  # below one chunk: nothing sent yet
                target.write(b"a,b\n")
                raise KeyboardInterrupt

        with store.open_read("report.csv") as source:
            assert source.read() == b"old"

    assert bucket.get_blob("raw/report.csv").generation == generation
    assert names(gcs) == ["raw/report.csv"]


def test_a_server_killed_mid_write_fails_the_write_and_never_shows_the_object(tmp_path, monkeypatch):
    with start_gcs(tmp_path / "dying") as server:
        bucket = bare_bucket(server)
        bucket.blob("raw/report.csv").upload_from_string(b"old")
        connector = make_connector(server, monkeypatch, tmp_path)
        with connector.open_store() as store:
            with pytest.raises(ConnectorError) as raised:
                with store.write("report.csv") as target:
                    for index, chunk in enumerate(chunks(30)[0]):
                        target.write(chunk)
                        if index == 20:
                            # Two chunks are up: the emulator still shows only the old object.
                            assert bucket.blob("raw/report.csv").download_as_bytes() == b"old"
                            assert [blob.name for blob in bucket.list_blobs()] == ["raw/report.csv"]
                            server.kill()
                            started = time.monotonic()
    assert "cannot write 'report.csv' in gs://dataplat-test/raw" in str(raised.value)
    assert time.monotonic() - started < 15
