"""The FTP connector against real pyftpdlib servers (plain FTP and explicit FTPS)."""

import logging
import socket
import uuid
from datetime import datetime, timedelta, timezone
from contextlib import ExitStack

import pytest
from pydantic import ValidationError
from dagster import EnvVar

from dataplat_dagster.connectors.ftp import FtpConnector
from dataplat_dagster.connectors.models import FtpConnectorSpec
from dataplat_dagster.connectors.registry import open_connector
from dataplat_dagster.errors import ConnectorError
from dataplat_dagster_tests.connectors.storetests import MB, failure, sha256_of, stream_up_and_down, write_killing_the_server, write_then_fail_halfway
from dataplat_dagster_tests.servers.ftp import start_ftp
from dataplat_dagster_tests.servers.ports import free_port

ALL_STEPS = ["resolve", "connect", "authenticate", "root", "list", "read", "write", "delete"]


@pytest.fixture
def make_connector(monkeypatch, tmp_path):
    """Build a connector the way a project does: from its catalog spec, the password in a
    variable, resolved by Dagster; everything it opened is closed when the test ends."""
    with ExitStack() as stack:

        def make(server, *, password=None, **spec) -> FtpConnector:
            monkeypatch.setenv("DROP_PASSWORD", server.password if password is None else password)
            fields = dict(host=server.host, port=server.port, username=server.username, password_env="DROP_PASSWORD", retries=2, backoff_s=0.01)
            if server.tls:
                fields.update(tls=True, ca_file=str(server.cafile))
            fields.update(spec)
            return stack.enter_context(open_connector("drop", FtpConnectorSpec(**fields), tmp_path))

        yield make


@pytest.fixture
def folder(ftp_server) -> str:
    """A fresh folder of the shared server for one test, so tests never see each other's files."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    (ftp_server.root / name).mkdir()
    return name


# -- the check ---------------------------------------------------------------------------


def test_check_passes_every_step_with_write(ftp_server, folder, make_connector):
    (ftp_server.root / folder / "in.csv").write_text("id,name\n1,a\n")
    report = make_connector(ftp_server, root=f"/{folder}").check(write=True)
    assert report.ok, report.to_json()
    assert [(step.step, step.outcome) for step in report.steps] == [(step, "passed") for step in ALL_STEPS]
    messages = {step.step: step.message for step in report.steps}
    assert "220 pyftpdlib" in messages["connect"]
    assert messages["authenticate"] == f"logged in as {ftp_server.username!r}; passive mode"
    assert messages["list"] == "the root folder holds 1 file and 0 folders"
    assert messages["read"] == "read the first 12 bytes of 'in.csv' (12 bytes)"
    assert ".dataplat-check-" in messages["write"]
    assert sorted(path.name for path in (ftp_server.root / folder).iterdir()) == ["in.csv"]  # the sentinel is gone


def test_check_skips_read_in_an_empty_root(ftp_server, folder, make_connector):
    report = make_connector(ftp_server, root=folder).check()
    assert report.ok and not report.write
    assert [(step.step, step.outcome) for step in report.steps][-2:] == [("list", "passed"), ("read", "skipped")]
    assert report.steps[-1].message == "the root folder holds no file to read"


def test_wrong_port_fails_at_connect(ftp_server, make_connector):
    step, message = failure(make_connector(ftp_server, port=free_port()).check())
    assert step == "connect"
    assert "refused" in message and "check the port" in message


def test_wrong_password_fails_at_authenticate_and_never_shows_a_password(ftp_server, make_connector):
    connector = make_connector(ftp_server, password="not-the-password-42")
    report = connector.check()
    step, message = failure(report)
    assert step == "authenticate"
    assert f"refused the login of user {ftp_server.username!r}" in message and "530" in message
    assert "password_env" in message
    assert "not-the-password-42" not in str(report.to_json())
    assert "not-the-password-42" not in repr(connector) and "password='***'" in repr(connector)


def test_missing_root_fails_at_root(ftp_server, make_connector):
    step, message = failure(make_connector(ftp_server, root="/no/such/folder").check())
    assert step == "root"
    assert "the root folder '/no/such/folder' does not exist" in message


def test_read_only_user_fails_at_write_with_permission_denied(ftp_server, folder, make_connector):
    (ftp_server.root / folder / "in.csv").write_text("x\n")
    connector = make_connector(
        ftp_server, root=folder,
        username=ftp_server.readonly_username, password=ftp_server.readonly_password,
    )
    report = connector.check(write=True)
    step, message = failure(report)
    assert [s.step for s in report.steps if s.outcome == "passed"] == ["resolve", "connect", "authenticate", "root", "list", "read"]
    assert step == "write"
    assert "permission denied writing '.dataplat-check-" in message and "550" in message
    assert ftp_server.readonly_password not in message
    with connector.open_store() as store, pytest.raises(ConnectorError, match="permission denied writing 'out.csv'"):
        with store.write("out.csv") as stream:
            stream.write(b"refused")
    assert sorted(path.name for path in (ftp_server.root / folder).iterdir()) == ["in.csv"]


def test_ftps_with_the_ca_file_passes_tls_and_round_trips(ftps_server, make_connector):
    name = f"t-{uuid.uuid4().hex[:8]}"
    connector = make_connector(ftps_server)
    report = connector.check(write=True)
    assert report.ok, report.to_json()
    assert [step.step for step in report.steps] == ["resolve", "connect", "tls", *ALL_STEPS[2:]]
    tls = report.steps[2].message
    assert tls.startswith("TLSv1.") and f"signed by the CA in {ftps_server.cafile}" in tls
    assert "file transfers are encrypted" in report.steps[3].message
    with connector.open_store() as store:
        assert store.address == f"ftps://{ftps_server.host}:{ftps_server.port}/"
        with store.write(f"{name}/secret.bin") as stream:
            stream.write(b"over TLS" * 1000)
        with store.open_read(f"{name}/secret.bin") as stream:
            assert stream.read() == b"over TLS" * 1000
        store.delete(f"{name}/secret.bin")
    assert not (ftps_server.root / name / "secret.bin").exists()


def test_ftps_without_the_ca_file_fails_at_tls(ftps_server, make_connector):
    report = make_connector(ftps_server, ca_file=None).check()
    step, message = failure(report)
    assert step == "tls"
    assert "certificate is not trusted (self-signed certificate)" in message and "ca_file" in message


# -- the store ---------------------------------------------------------------------------


def test_round_trip_write_list_stat_read_delete(ftp_server, folder, make_connector):
    connector = make_connector(ftp_server, root=f"/{folder}")
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    with connector.open_store() as store:
        assert store.address == f"ftp://{ftp_server.host}:{ftp_server.port}/{folder}"
        files = {"in/2024-01.csv": b"a,b\n1,2\n", "in/2024/02.csv": b"a,b\n3,4\n5,6\n", "in/2023.csv": b"old\n", "top.txt": b"t"}
        for path, content in files.items():
            with store.write(path) as stream:
                stream.write(content)
        assert (ftp_server.root / folder / "in" / "2024" / "02.csv").read_bytes() == files["in/2024/02.csv"]

        assert [info.path for info in store.list()] == sorted(files)
        assert [info.path for info in store.list("in/2024")] == ["in/2024-01.csv", "in/2024/02.csv"]
        assert [info.path for info in store.list("in/2024/")] == ["in/2024/02.csv"]
        assert [info.path for info in store.list("./in//2023")] == ["in/2023.csv"]
        assert store.list("nothing/here/") == []

        info = store.stat("in/2024/02.csv")
        assert info.path == "in/2024/02.csv" and info.size == 12
        assert info.modified.tzinfo is not None and before <= info.modified <= datetime.now(timezone.utc) + timedelta(seconds=5)
        assert store.list("in/2024/") == [info]
        assert store.exists("top.txt") and not store.exists("in/nope.csv")
        with store.open_read("in/2024-01.csv") as stream:
            assert stream.read() == files["in/2024-01.csv"]

        with store.write("top.txt") as stream:  # replaces the file whole
            stream.write(b"new top")
        assert (ftp_server.root / folder / "top.txt").read_bytes() == b"new top"

        store.delete("in/2023.csv")
        assert not store.exists("in/2023.csv")
        with pytest.raises(FileNotFoundError, match="'in/2023.csv' does not exist in ftp://"):
            store.stat("in/2023.csv")
        with pytest.raises(FileNotFoundError, match="'in/2023.csv' does not exist"):
            store.open_read("in/2023.csv")
        with pytest.raises(FileNotFoundError):
            store.delete("in/2023.csv")
        with pytest.raises(FileNotFoundError, match="is a folder, not a file"):
            store.stat("in")
        with pytest.raises(ConnectorError, match="climbs out"):
            store.stat("../outside.txt")


def test_listing_and_stat_without_mlsd_fall_back_to_nlst_size_and_mdtm(ftp_server, folder, make_connector):
    (ftp_server.root / folder / "sub").mkdir()
    (ftp_server.root / folder / "sub" / "a.txt").write_bytes(b"12345")
    (ftp_server.root / folder / "b.txt").write_bytes(b"1")
    with make_connector(ftp_server, root=folder).open_store() as store:
        with_mlsd = store.list()
        store._mlst = False  # as on a server without RFC 3659 (vsftpd's MLSD-less builds, old IIS)
        without = store.list()
        assert [(info.path, info.size) for info in without] == [("b.txt", 1), ("sub/a.txt", 5)]
        assert [info.modified for info in without] == [info.modified.replace(microsecond=0) for info in with_mlsd]
        assert store.stat("sub/a.txt") == without[1]
        with pytest.raises(FileNotFoundError):
            store.stat("sub/missing.txt")


def test_active_mode_round_trip(ftp_server, folder, make_connector):
    with make_connector(ftp_server, root=folder, passive=False).open_store() as store:
        with store.write("active.bin") as stream:
            stream.write(b"A" * 100_000)
        with store.open_read("active.bin") as stream:
            assert stream.read() == b"A" * 100_000


def test_closing_a_download_early_leaves_the_session_usable(ftp_server, folder, make_connector):
    content = b"0123456789" * 500_000  # 5 MB: far more than the socket buffers hold
    (ftp_server.root / folder / "big.bin").write_bytes(content)
    with make_connector(ftp_server, root=folder).open_store() as store:
        session = store._ftp
        for _ in range(3):
            with store.open_read("big.bin") as stream:
                assert stream.read(10) == b"0123456789"
            assert store.stat("big.bin").size == len(content)
        assert store._ftp is session  # aborted in band, not by reconnecting
        with pytest.raises(ConnectorError, match="still reading 'big.bin'"):
            stream = store.open_read("big.bin")
            store.list()
        stream.close()
        with store.open_read("big.bin") as stream:
            assert stream.read() == content


def test_fifty_megabytes_stream_up_and_down_in_flat_memory(ftp_server, folder, make_connector):
    with make_connector(ftp_server, root=folder).open_store() as store:
        sent, received, _, upload_peak, download_peak = stream_up_and_down(store, "big/fifty.bin", 50)
        peak = max(upload_peak, download_peak)
        assert store.stat("big/fifty.bin").size == 50 * MB
    assert sha256_of(ftp_server.root / folder / "big" / "fifty.bin") == sent == received
    assert peak < 8 * MB, f"peak {peak / MB:.1f} MB"


def test_an_error_inside_the_write_block_keeps_the_old_file(ftp_server, folder, make_connector):
    with make_connector(ftp_server, root=folder).open_store() as store:
        with pytest.raises(RuntimeError, match="halfway"):
            write_then_fail_halfway(store, "report.csv")
        assert (ftp_server.root / folder / "report.csv").read_bytes() == b"old content\n"
        assert sorted(path.name for path in (ftp_server.root / folder).iterdir()) == ["report.csv"]  # no temporary left
        assert [info.path for info in store.list()] == ["report.csv"]  # the session goes on


def test_killing_the_server_during_a_write_leaves_no_file_at_the_final_name(tmp_path, make_connector):
    with start_ftp(tmp_path / "dying") as server:
        connector = make_connector(server, retries=1)
        with connector.open_store() as store, pytest.raises(ConnectorError, match="broke off|failed|did not confirm") as raised:
            write_killing_the_server(store, server, "out/cut.bin")
        assert server.password not in str(raised.value)
        assert not (server.root / "out" / "cut.bin").exists()
        left = [path.name for path in (server.root / "out").iterdir()]
        assert len(left) <= 1 and all(name.startswith(".cut.bin.dataplat-") for name in left)  # at most the temporary
    with start_ftp(tmp_path / "dying") as server:  # the same folder, served again
        with make_connector(server).open_store() as store:
            assert store.list("out/") == []  # listings skip a temporary file left behind


def test_a_dropped_connection_is_retried_over_a_new_one(ftp_server, folder, caplog, make_connector):
    (ftp_server.root / folder / "a.txt").write_bytes(b"abc")
    with make_connector(ftp_server, root=folder).open_store() as store:
        store._ftp.sock.shutdown(socket.SHUT_RDWR)  # the network drops the control connection
        with caplog.at_level(logging.WARNING, logger="dataplat.connectors"):
            assert store.stat("a.txt").size == 3
    assert "drop: reading the details of 'a.txt' failed" in caplog.text and "retrying" in caplog.text


def test_from_spec_maps_the_catalog_fields(tmp_path):
    spec = FtpConnectorSpec(host="ftp.example.com", password_env="FTP_PW", tls=True, ca_file="certs/ca.pem", passive=False, root="/drop", timeout_s=3)
    connector = FtpConnector.from_spec("drop", spec, tmp_path)
    assert (connector.port, connector.username, connector.root, connector.timeout_s, connector.passive) == (21, "anonymous", "/drop", 3, False)
    assert connector.ca_file == "certs/ca.pem"  # as the catalog wrote it; resolved where it is read
    assert connector.local_file(connector.ca_file) == str(tmp_path / "certs" / "ca.pem")
    assert isinstance(connector.password, EnvVar) and connector.password.env_var_name == "FTP_PW"
    with pytest.raises(ValidationError, match="an ftp connector needs a host"):
        FtpConnectorSpec()
