"""The SFTP connector against a real OpenSSH sshd (internal-sftp, a real unprivileged user)."""

import getpass
import logging
import uuid
from datetime import datetime, timedelta, timezone
from contextlib import ExitStack

import pytest
from pydantic import ValidationError
from dagster import EnvVar

from dataplat_dagster.connectors.models import SftpConnectorSpec
from dataplat_dagster.connectors.registry import open_connector
from dataplat_dagster.connectors.sftp import SftpConnector
from dataplat_dagster.errors import ConnectorError
from dataplat_dagster_tests.connectors.storetests import MB, failure, sha256_of, stream_up_and_down, write_killing_the_server, write_then_fail_halfway
from dataplat_dagster_tests.servers.ports import free_port
from dataplat_dagster_tests.servers.sftp import start_sftp

ALL_STEPS = ["resolve", "connect", "host_key", "authenticate", "root", "list", "read", "write", "delete"]


@pytest.fixture
def make_connector(monkeypatch, tmp_path):
    """Build a connector the way a project does: from its catalog spec, secrets in variables,
    resolved by Dagster; everything it opened is closed when the test ends."""
    with ExitStack() as stack:

        def make(server, *, password=None, passphrase=None, **spec) -> SftpConnector:
            fields = dict(host=server.host, port=server.port, username=server.username, known_hosts=str(server.known_hosts), retries=2, backoff_s=0.01)
            if "private_key" not in spec:
                monkeypatch.setenv("FILES_PASSWORD", server.password if password is None else password)
                fields["password_env"] = "FILES_PASSWORD"
            if passphrase is not None:
                monkeypatch.setenv("FILES_PASSPHRASE", passphrase)
                fields["passphrase_env"] = "FILES_PASSPHRASE"
            fields.update(spec)
            return stack.enter_context(open_connector("files", SftpConnectorSpec(**fields), tmp_path))

        yield make


@pytest.fixture
def folder(sftp_server, make_connector) -> str:
    """A fresh folder in the user's home for one test, made by the user (the home is theirs)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    with make_connector(sftp_server).open_store() as store:
        with store.write(f"{name}/made-the-folder") as stream:
            stream.write(b"")
        store.delete(f"{name}/made-the-folder")
    return name


def write_file(connector, path: str, content: bytes) -> None:
    with connector.open_store() as store, store.write(path) as stream:
        stream.write(content)


# -- the check ---------------------------------------------------------------------------


def test_check_passes_every_step_with_write(sftp_server, folder, make_connector):
    connector = make_connector(sftp_server, root=folder)
    write_file(connector, "in/data.csv", b"id,name\n1,a\n")
    report = connector.check(write=True)
    assert report.ok, report.to_json()
    assert [(step.step, step.outcome) for step in report.steps] == [(step, "passed") for step in ALL_STEPS]
    messages = {step.step: step.message for step in report.steps}
    assert "the server is SSH-2.0-OpenSSH" in messages["connect"]
    assert messages["host_key"] == (
        f"the server's key ssh-ed25519 {sftp_server.host_key_fingerprint} matches "
        f"[{sftp_server.host}]:{sftp_server.port} in {sftp_server.known_hosts}"
    )
    assert messages["authenticate"] == f"logged in as {sftp_server.username!r} with a password"
    assert messages["root"] == f"the root folder {str(sftp_server.home / folder)!r} exists"
    assert messages["list"] == "the root folder holds 0 files and 1 folder"
    assert messages["read"] == "read the first 12 bytes of 'in/data.csv' (12 bytes)"
    assert sorted(path.name for path in (sftp_server.home / folder).iterdir()) == ["in"]  # the sentinel is gone


def test_check_passes_over_a_folder_it_may_not_list_on_its_way_to_a_file(sftp_server, folder, make_connector):
    # Walked in name order: the root-only folder comes first, the readable file after it.
    locked = sftp_server.home / folder / "a-locked"
    locked.mkdir()
    (locked / "secret.txt").write_text("root only\n")
    locked.chmod(0o700)
    connector = make_connector(sftp_server, root=folder)
    write_file(connector, "b/data.txt", b"readable\n")
    report = connector.check()
    assert report.ok, report.to_json()
    steps = {step.step: step.message for step in report.steps}
    assert steps["list"] == "the root folder holds 0 files and 2 folders; permission denied listing 'a-locked'"
    assert "b/data.txt" in steps["read"]


def test_wrong_port_fails_at_connect(sftp_server, make_connector):
    step, message = failure(make_connector(sftp_server, port=free_port()).check())
    assert step == "connect"
    assert "refused" in message and "check the port" in message


def test_wrong_password_fails_at_authenticate_and_never_shows_a_secret(sftp_server, make_connector):
    connector = make_connector(sftp_server, password="not-the-password-42")
    report = connector.check()
    step, message = failure(report)
    assert step == "authenticate"
    assert f"it refused the password for {sftp_server.username!r}" in message and "password_env" in message
    assert "not-the-password-42" not in str(report.to_json())
    assert "not-the-password-42" not in repr(connector) and "password='***'" in repr(connector)


def test_an_unknown_host_key_is_refused_with_its_fingerprint(sftp_server, tmp_path, make_connector):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    report = make_connector(sftp_server, known_hosts=str(empty)).check()
    step, message = failure(report)
    assert step == "host_key"
    assert "host key is not known" in message and f"ssh-ed25519 {sftp_server.host_key_fingerprint}" in message
    assert f"host_key_fingerprint: {sftp_server.host_key_fingerprint}" in message
    assert f"ssh-keyscan -p {sftp_server.port} {sftp_server.host} >> {empty}" in message
    assert [s.step for s in report.steps] == ["resolve", "connect", "host_key"]  # no password was sent


def test_a_changed_host_key_is_refused_with_both_fingerprints(sftp_server, make_connector):
    known = sftp_server.wrong_known_hosts
    step, message = failure(make_connector(sftp_server, known_hosts=str(known)).check())
    assert step == "host_key"
    assert "host key has CHANGED" in message and f"offered ssh-ed25519 {sftp_server.host_key_fingerprint}" in message
    assert message.count("SHA256:") == 3  # the known key's, the offered one's, and the one to pin
    assert f"ssh-keygen -R '[{sftp_server.host}]:{sftp_server.port}' -f {known}" in message


def test_a_pinned_fingerprint_replaces_known_hosts(sftp_server, tmp_path, make_connector):
    nowhere = str(tmp_path / "no_known_hosts")
    report = make_connector(sftp_server, known_hosts=nowhere, host_key_fingerprint=sftp_server.host_key_fingerprint).check()
    assert report.ok, report.to_json()
    assert report.steps[2].message.endswith("matches the pinned host_key_fingerprint")
    wrong = "SHA256:" + "A" * 43
    step, message = failure(make_connector(sftp_server, host_key_fingerprint=wrong).check())
    assert step == "host_key"
    assert f"does not match the pinned host_key_fingerprint {wrong}" in message and sftp_server.host_key_fingerprint in message


def test_insecure_opt_out_connects_and_warns(sftp_server, caplog, make_connector):
    connector = make_connector(sftp_server, known_hosts=str(sftp_server.wrong_known_hosts), insecure_accept_any_host_key=True)
    with caplog.at_level(logging.WARNING, logger="dataplat.connectors"):
        report = connector.check()
    assert report.ok, report.to_json()
    assert report.steps[2].message.startswith("not verified (insecure_accept_any_host_key is set)")
    assert "is NOT verified" in caplog.text and sftp_server.host_key_fingerprint in caplog.text


def test_private_keys_log_in_and_their_problems_are_named(sftp_server, make_connector):
    key = str(sftp_server.private_key)
    report = make_connector(sftp_server, private_key=key).check()
    assert report.ok and report.steps[3].message == f"logged in as {sftp_server.username!r} with the key {key}"

    encrypted = str(sftp_server.encrypted_private_key)
    connector = make_connector(sftp_server, private_key=encrypted, passphrase=sftp_server.key_passphrase)
    assert connector.check().ok
    assert sftp_server.key_passphrase not in repr(connector) and "passphrase='***'" in repr(connector)

    step, message = failure(make_connector(sftp_server, private_key=encrypted).check())
    assert (step, message) == ("authenticate", f"the private key {encrypted} is encrypted: give its passphrase (passphrase_env)")
    step, message = failure(make_connector(sftp_server, private_key=encrypted, passphrase="wrong-phrase").check())
    assert step == "authenticate" and "the passphrase is wrong" in message and "wrong-phrase" not in message
    step, message = failure(make_connector(sftp_server, private_key=key + ".pub").check())
    assert step == "authenticate" and "is no private key paramiko can read" in message


def test_missing_root_fails_at_root(sftp_server, make_connector):
    step, message = failure(make_connector(sftp_server, root="no/such/folder").check())
    assert step == "root"
    assert "the root folder 'no/such/folder' does not exist" in message


def test_a_locked_folder_says_permission_denied(sftp_server, make_connector):
    locked = sftp_server.locked_dir
    step, message = failure(make_connector(sftp_server, root=locked).check())
    assert step == "list"
    assert "permission denied listing the root folder" in message and f"/~/{locked}" in message
    with make_connector(sftp_server).open_store() as store:
        with pytest.raises(ConnectorError, match=f"permission denied listing the folder '{locked}'"):
            store.list()
        with pytest.raises(ConnectorError, match=f"permission denied reading '{locked}/secret.txt'"):
            store.open_read(f"{locked}/secret.txt")
        with pytest.raises(ConnectorError, match=f"permission denied writing '{locked}/new.txt'"):
            with store.write(f"{locked}/new.txt") as stream:
                stream.write(b"no")
        with pytest.raises(ConnectorError, match=f"permission denied reading the details of '{locked}/secret.txt'"):
            store.stat(f"{locked}/secret.txt")


# -- the store ---------------------------------------------------------------------------


def test_round_trip_write_list_stat_read_delete(sftp_server, folder, make_connector):
    connector = make_connector(sftp_server, root=folder)
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    with connector.open_store() as store:
        assert store.address == f"sftp://{sftp_server.host}:{sftp_server.port}/~/{folder}"
        files = {"in/2024-01.csv": b"a,b\n1,2\n", "in/2024/02.csv": b"a,b\n3,4\n5,6\n", "in/2023.csv": b"old\n", "top.txt": b"t"}
        for path, content in files.items():
            with store.write(path) as stream:
                stream.write(content)
        assert (sftp_server.home / folder / "in" / "2024" / "02.csv").read_bytes() == files["in/2024/02.csv"]

        assert [info.path for info in store.list()] == sorted(files)
        assert [info.path for info in store.list("in/2024")] == ["in/2024-01.csv", "in/2024/02.csv"]
        assert [info.path for info in store.list("in/2024/")] == ["in/2024/02.csv"]
        assert store.list("nothing/here/") == []

        info = store.stat("in/2024/02.csv")
        assert info.path == "in/2024/02.csv" and info.size == 12
        assert before <= info.modified <= datetime.now(timezone.utc) + timedelta(seconds=5)
        assert store.list("in/2024/") == [info]
        assert store.exists("top.txt") and not store.exists("in/nope.csv")
        with store.open_read("in/2024-01.csv") as stream:
            assert stream.read() == files["in/2024-01.csv"]

        with store.write("top.txt") as stream:  # replaces the file whole
            stream.write(b"new top")
        assert (sftp_server.home / folder / "top.txt").read_bytes() == b"new top"

        store.delete("in/2023.csv")
        assert not (sftp_server.home / folder / "in" / "2023.csv").exists()
        with pytest.raises(FileNotFoundError, match="'in/2023.csv' does not exist in sftp://"):
            store.stat("in/2023.csv")
        with pytest.raises(FileNotFoundError, match="'in/2023.csv' does not exist"):
            store.open_read("in/2023.csv")
        with pytest.raises(FileNotFoundError):
            store.delete("in/2023.csv")
        with pytest.raises(FileNotFoundError, match="is a folder, not a file"):
            store.stat("in")


def test_closing_a_download_early_leaves_the_session_usable(sftp_server, folder, make_connector):
    content = b"0123456789" * 1_000_000  # 10 MB
    connector = make_connector(sftp_server, root=folder)
    write_file(connector, "big.bin", content)
    with connector.open_store() as store:
        for _ in range(3):
            with store.open_read("big.bin") as stream:
                assert stream.read(10) == b"0123456789"
            assert store.stat("big.bin").size == len(content)
        with store.open_read("big.bin") as first, store.open_read("big.bin") as second:
            assert first.read(5) == second.read(5) == b"01234"  # one SSH session, two files at once
        with store.open_read("big.bin") as stream:
            assert stream.read() == content


def test_fifty_megabytes_stream_up_and_down_in_flat_memory(sftp_server, folder, make_connector):
    with make_connector(sftp_server, root=folder).open_store() as store:
        sent, received, _, upload_peak, download_peak = stream_up_and_down(store, "big/fifty.bin", 50)
        peak = max(upload_peak, download_peak)
        assert store.stat("big/fifty.bin").size == 50 * MB
    assert sha256_of(sftp_server.home / folder / "big" / "fifty.bin") == sent == received
    assert peak < 8 * MB, f"peak {peak / MB:.1f} MB"


def test_an_error_inside_the_write_block_keeps_the_old_file(sftp_server, folder, make_connector):
    with make_connector(sftp_server, root=folder).open_store() as store:
        with pytest.raises(RuntimeError, match="halfway"):
            write_then_fail_halfway(store, "report.csv")
        assert (sftp_server.home / folder / "report.csv").read_bytes() == b"old content\n"
        assert sorted(path.name for path in (sftp_server.home / folder).iterdir()) == ["report.csv"]  # no temporary left
        assert [info.path for info in store.list()] == ["report.csv"]  # the session goes on


def test_killing_the_server_during_a_write_leaves_no_file_at_the_final_name(tmp_path, make_connector):
    with start_sftp(tmp_path / "dying") as server:
        connector = make_connector(server, retries=1)
        with connector.open_store() as store, pytest.raises(ConnectorError, match="broke off|failed") as raised:
            write_killing_the_server(store, server, "out/cut.bin")
        assert server.password not in str(raised.value)
        assert not (server.home / "out" / "cut.bin").exists()
        left = [path.name for path in (server.home / "out").iterdir()]
        assert len(left) <= 1 and all(name.startswith(".cut.bin.dataplat-") for name in left)  # at most the temporary


def test_a_dropped_connection_is_retried_over_a_new_one(sftp_server, folder, caplog, make_connector):
    connector = make_connector(sftp_server, root=folder)
    write_file(connector, "a.txt", b"abc")
    with connector.open_store() as store:
        store._transport.close()  # the network drops the SSH connection
        with caplog.at_level(logging.WARNING, logger="dataplat.connectors"):
            assert store.stat("a.txt").size == 3
    assert "files: reading the details of 'a.txt' failed (ConnectionResetError" in caplog.text and "retrying" in caplog.text


def test_from_spec_maps_the_catalog_fields(tmp_path):
    spec = SftpConnectorSpec(
        host="sftp.example.com", password_env="SFTP_PW", private_key="keys/id_ed25519", passphrase_env="KEY_PW",
        known_hosts="keys/known_hosts", root="/data",
    )
    connector = SftpConnector.from_spec("files", spec, tmp_path)
    assert (connector.port, connector.username, connector.root) == (22, getpass.getuser(), "/data")
    # The config keeps the paths as the catalog wrote them (no host's folder in it); they
    # resolve against the project's folder where the files are read.
    assert (connector.private_key, connector.known_hosts, connector.project) == ("keys/id_ed25519", "keys/known_hosts", tmp_path.name)
    assert connector.local_file(connector.private_key) == str(tmp_path / "keys" / "id_ed25519")
    assert connector.known_hosts_file == str(tmp_path / "keys" / "known_hosts")
    assert isinstance(connector.password, EnvVar) and connector.password.env_var_name == "SFTP_PW"
    assert isinstance(connector.passphrase, EnvVar) and connector.passphrase.env_var_name == "KEY_PW"
    with pytest.raises(ValidationError, match="an sftp connector needs a host"):
        SftpConnectorSpec()
