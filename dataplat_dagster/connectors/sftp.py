"""The SFTP connector (paramiko), with the server's host key verified by default.

The host key must match ``known_hosts`` (default ``~/.ssh/known_hosts``) or the pinned
``host_key_fingerprint``; an unknown or changed key is refused with its fingerprint and
the way to trust it. ``insecure_accept_any_host_key`` skips the check, with a warning.

Transfers stream: downloads prefetch a bounded number of read requests ahead, uploads
pipeline their writes, and an upload goes to a hidden temporary name beside the target,
renamed over it (atomically, with OpenSSH's posix-rename) once every byte is written.
"""

import getpass
import io
import logging
import os
import posixpath
import socket
import stat as stat_mode
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, ClassVar, Optional

import paramiko
from pydantic import Field

from dataplat_dagster.connectors.base import FileStoreConnector, env_reference, project_path
from dataplat_dagster.connectors.checks import CheckReport, Checker, content_steps, resolve_host, tcp_connect
from dataplat_dagster.connectors.filestore import CHUNK_SIZE, FileInfo, clean_path
from dataplat_dagster.connectors.folderstore import Entry, FolderStore
from dataplat_dagster.errors import ConnectorError

log = logging.getLogger("dataplat.connectors")

# Throughput (measured against OpenSSH on loopback, see the tests' benchmark): a channel
# window of 4 MiB keeps the server sending while Python decrypts, and packets of up to
# 64 KiB carry a whole 32 KiB SFTP read reply each instead of splitting it in two. The
# window also bounds what a slow reader can have buffered, so memory stays flat.
WINDOW_SIZE = 4 * 1024 * 1024
MAX_PACKET_SIZE = 64 * 1024
# A download keeps read requests in flight for up to READ_AHEAD bytes past what it has
# read (more would only wait in the server: the window caps what it may send). Closing
# a download early waits for their replies, so the read-ahead starts small (reading a
# file's head stays cheap) and doubles with each batch of requests.
FIRST_READ_AHEAD = 256 * 1024
READ_AHEAD = 4 * 1024 * 1024
# What one SFTP read or write request carries (paramiko's, which every server accepts).
REQUEST_SIZE = paramiko.SFTPFile.MAX_REQUEST_SIZE
KEY_CLASSES = (paramiko.Ed25519Key, paramiko.RSAKey, paramiko.ECDSAKey)
# What a dropped connection raises from paramiko (it does not always say "connection").
_FAILURES = (paramiko.SSHException, EOFError, OSError)


class SftpConnector(FileStoreConnector):
    """An SFTP server; paths start from ``root`` ("." is the login folder)."""

    connector_type: ClassVar[str] = "sftp"
    secret_fields: ClassVar[tuple[str, ...]] = ("password", "passphrase")

    host: str = Field(description="Server host name or IP address.")
    port: int = Field(22, description="SSH port.")
    username: str = Field(description="User to log in as.")
    password: Optional[str] = Field(None, description="From the environment variable named in the catalog.")
    private_key: Optional[str] = Field(None, description="Private key file (OpenSSH or PEM).")
    passphrase: Optional[str] = Field(None, description="The private key's passphrase, from the environment variable named in the catalog.")
    known_hosts: Optional[str] = Field(None, description="known_hosts file to verify the host key against (default ~/.ssh/known_hosts).")
    host_key_fingerprint: Optional[str] = Field(None, description="Pinned host key fingerprint, SHA256:...")
    insecure_accept_any_host_key: bool = Field(False, description="Skip host key verification (unsafe).")
    root: str = Field(".", description="Folder on the server that paths start from.")

    @classmethod
    def from_spec(cls, name: str, spec, project_dir: Path) -> "SftpConnector":
        return cls(
            **cls.common_fields(name, spec, project_dir),
            host=spec.host,
            port=spec.port or 22,
            # Like ssh, log in as the local user when the catalog names none.
            username=spec.username or getpass.getuser(),
            password=env_reference(spec.password_env),
            private_key=project_path(project_dir, spec.private_key),
            passphrase=env_reference(spec.passphrase_env),
            known_hosts=project_path(project_dir, spec.known_hosts),
            host_key_fingerprint=spec.host_key_fingerprint,
            insecure_accept_any_host_key=spec.insecure_accept_any_host_key,
            root=spec.root,
        )

    @property
    def known_hosts_file(self) -> str:
        return self.local_file(self.known_hosts) or os.path.expanduser("~/.ssh/known_hosts")

    @property
    def known_hosts_name(self) -> str:
        """How known_hosts names this server: ``host``, or ``[host]:port`` off port 22."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    def open_store(self) -> "SftpStore":
        store = SftpStore(self)
        store.ensure_connected()
        return store

    def check(self, write: bool = False) -> CheckReport:
        checker = Checker(self.connector_name, self.connector_type, secrets=self.secret_values(), write=write)
        store = SftpStore(self)
        with store, checker:
            checker.run("resolve", lambda: resolve_host(self.host, self.port))
            checker.run("connect", lambda: f"{tcp_connect(self.host, self.port, self.timeout_s)}; {store.handshake()}")
            checker.run("host_key", store.verify_host_key)
            checker.run("authenticate", store.authenticate)
            checker.run("root", store.enter_root)
            first = checker.run("list", store.survey, lambda found: found[0])[1]
            content_steps(checker, store, first, write, "the root folder holds no file to read")
        return checker.report



class SftpStore(FolderStore):
    """An SFTP session; it reconnects when the connection drops."""

    _FAILURES = _FAILURES
    _REFUSALS = (FileNotFoundError, PermissionError)
    _ROOT_NAME = "."

    def __init__(self, connector: SftpConnector):
        self.connector = connector
        root = connector.root
        where = root if root.startswith("/") else "/~" + ("" if root in (".", "") else "/" + root)
        self.address = f"sftp://{connector.host}:{connector.port}{where}"
        self._transport: Optional[paramiko.Transport] = None
        self._sftp: Optional[paramiko.SFTPClient] = None
        self._root: Optional[str] = None  # absolute, once checked
        self._folders: set[str] = set()  # made or seen by this session: no mkdir for them again

    # -- the session, step by step (the check runs each as its own step) ------------------

    def handshake(self) -> str:
        """TCP, then SSH's key exchange; the host key is verified next, before any secret is sent."""
        self._drop()
        c = self.connector
        sock = socket.create_connection((c.host, c.port), timeout=c.timeout_s)
        transport = paramiko.Transport(sock, default_window_size=WINDOW_SIZE, default_max_packet_size=MAX_PACKET_SIZE)
        self._transport = transport
        transport.banner_timeout = transport.handshake_timeout = transport.auth_timeout = c.timeout_s
        if not (c.insecure_accept_any_host_key or c.host_key_fingerprint):
            self._prefer_known_key_types(transport)
        try:
            transport.start_client(timeout=c.timeout_s)
        except (paramiko.SSHException, EOFError) as error:
            raise c.fail(f"the SSH handshake with {c.host}:{c.port} failed ({error or type(error).__name__}): check that an SSH server listens on this port") from None
        return f"the server is {transport.remote_version}"

    def _prefer_known_key_types(self, transport: paramiko.Transport) -> None:
        """Ask first for the host key types known_hosts holds for this server, as ssh does,
        so that a server with several host keys shows the one there is to compare with."""
        try:
            known = self._known_keys()
        except ConnectorError:
            return  # a broken known_hosts file: verify_host_key says so, at its own step
        if not known:
            return
        options = transport.get_security_options()
        preferred = [algorithm for algorithm in options.key_types if _key_type(algorithm) in known]
        options.key_types = preferred + [algorithm for algorithm in options.key_types if algorithm not in preferred]

    def _known_keys(self) -> dict[str, paramiko.PKey]:
        """The keys known_hosts holds for this server, by type (none when the file is missing)."""
        try:
            entries = paramiko.HostKeys(self.connector.known_hosts_file).lookup(self.connector.known_hosts_name)
        except FileNotFoundError:
            return {}
        except OSError as error:
            raise self.connector.fail(f"cannot read the known_hosts file {self.connector.known_hosts_file} ({error.strerror or error})") from None
        except paramiko.hostkeys.InvalidHostKey as error:
            raise self.connector.fail(f"the known_hosts file {self.connector.known_hosts_file} has a broken line ({error.line!r}): fix or remove it") from None
        return dict(entries) if entries else {}

    def verify_host_key(self) -> str:
        c = self.connector
        key = self._transport.get_remote_server_key()
        offered = f"{key.get_name()} {key.fingerprint}"
        if c.insecure_accept_any_host_key:
            log.warning(
                "%s: the host key of %s:%s is NOT verified (insecure_accept_any_host_key); the server offered %s",
                c.connector_name, c.host, c.port, offered,
            )
            return f"not verified (insecure_accept_any_host_key is set): the server offered {offered}"
        if c.host_key_fingerprint:
            if key.fingerprint == c.host_key_fingerprint.rstrip("="):
                return f"the server's key {offered} matches the pinned host_key_fingerprint"
            raise c.fail(
                f"the server's host key {offered} does not match the pinned host_key_fingerprint {c.host_key_fingerprint}: "
                "someone may be intercepting the connection, or the server's key was replaced. "
                f"Only if its administrator confirms the new key, set host_key_fingerprint: {key.fingerprint}"
            )
        return self._match_known_hosts(key, offered)

    def _match_known_hosts(self, key: paramiko.PKey, offered: str) -> str:
        c = self.connector
        known, file, name = self._known_keys(), c.known_hosts_file, c.known_hosts_name
        same_type = known.get(key.get_name())
        if same_type is not None and same_type.asbytes() == key.asbytes():
            return f"the server's key {offered} matches {name} in {file}"
        if known:
            held = ", ".join(f"{k.get_name()} {k.fingerprint}" for k in known.values())
            raise c.fail(
                f"the server's host key has CHANGED: {file} holds {held} for {name}, but the server offered {offered}. "
                "Someone may be intercepting the connection, or the server was reinstalled. Only if its administrator "
                f"confirms the new key, remove the old one (ssh-keygen -R '{name}' -f {file}) and trust the new one "
                f"(ssh-keyscan -p {c.port} {c.host} >> {file}), or set host_key_fingerprint: {key.fingerprint}"
            )
        raise c.fail(
            f"the server's host key is not known: it offered {offered}, and {file} holds no key for {name}. "
            "Compare the fingerprint with the one the server's administrator gives you (ssh-keygen -lf on the "
            f"server's host key), then trust it: set host_key_fingerprint: {key.fingerprint}, or add the key to "
            f"{file} (ssh-keyscan -p {c.port} {c.host} >> {file})"
        )

    def authenticate(self) -> str:
        c, transport = self.connector, self._transport
        if not (c.private_key or c.password):
            raise c.fail("no way to log in: give a password (password_env) or a private key (private_key)")
        refusals, advice = [], ["the username"]
        if c.private_key:
            key = self._load_key()
            try:
                transport.auth_publickey(c.username, key)
            except paramiko.AuthenticationException:
                refusals.append(f"the key {c.private_key} ({key.get_name()} {key.fingerprint}) is not authorized for {c.username!r}")
                advice.append("that the key's public half is in the user's authorized_keys on the server")
            if transport.is_authenticated():
                return f"logged in as {c.username!r} with the key {c.private_key}"
        if c.password:
            try:
                transport.auth_password(c.username, c.password)
            except paramiko.BadAuthenticationType as error:
                refusals.append(f"the server takes no password (it allows {', '.join(error.allowed_types)})")
            except paramiko.AuthenticationException:
                refusals.append(f"it refused the password for {c.username!r}")
                advice.append("the password (the environment variable the catalog names in password_env)")
            if transport.is_authenticated():
                return f"logged in as {c.username!r} with a password"
        raise c.fail(f"the server refused the login: {'; '.join(refusals)}. Check {', and '.join(advice)}")

    def _load_key(self) -> paramiko.PKey:
        c, path = self.connector, self.connector.local_file(self.connector.private_key)
        for key_class in KEY_CLASSES:
            try:
                return key_class.from_private_key_file(path, password=c.passphrase)
            except paramiko.PasswordRequiredException:
                raise c.fail(f"the private key {path} is encrypted: give its passphrase (passphrase_env)") from None
            except paramiko.SSHException:
                continue  # another key type, or the wrong passphrase: the next class tells
            except OSError as error:
                raise c.fail(f"cannot read the private key file {path} ({error.strerror or error}): check private_key") from None
        if c.passphrase:
            raise c.fail(f"cannot open the private key {path}: the passphrase is wrong (check passphrase_env), or it is no Ed25519, RSA or ECDSA key")
        raise c.fail(f"{path} is no private key paramiko can read: give an Ed25519, RSA or ECDSA key in OpenSSH or PEM format")

    def enter_root(self) -> str:
        c = self.connector
        self._open_sftp()
        try:
            root = self._sftp.normalize(c.root)
            attributes = self._sftp.stat(root)
        except FileNotFoundError:
            raise c.fail(f"the root folder {c.root!r} does not exist on {c.host}: create it, or fix root in the catalog") from None
        except PermissionError:
            raise c.fail(f"permission denied reaching the root folder {c.root!r}: give {c.username!r} access to it, or change root") from None
        if not stat_mode.S_ISDIR(attributes.st_mode):
            raise c.fail(f"the root {c.root!r} is a file, not a folder: set root to the folder that holds the files")
        self._root, self._folders = root, {""}
        return f"the root folder {root!r} exists"

    def _open_sftp(self) -> None:
        """The SFTP subsystem, on a channel of the (authenticated) SSH connection."""
        self._sftp = paramiko.SFTPClient.from_transport(self._transport, window_size=WINDOW_SIZE, max_packet_size=MAX_PACKET_SIZE)
        self._sftp.get_channel().settimeout(self.connector.timeout_s)

    def _open(self) -> None:
        self.handshake()
        self.verify_host_key()
        self.authenticate()
        self.enter_root()

    def _session(self) -> paramiko.SFTPClient:
        if self._root is None:
            self._connect()
        return self._sftp

    def _drop(self) -> None:
        """Close the session; the server may be gone already, which is no error here."""
        if self._sftp is not None:
            with suppress(*_FAILURES):
                self._sftp.close()
        if self._transport is not None:
            with suppress(*_FAILURES):
                self._transport.close()
        self._transport, self._sftp, self._root = None, None, None

    def close(self) -> None:
        self._drop()

    # -- what the server's refusals mean ------------------------------------------------------

    def _refusal(self, sftp: paramiko.SFTPClient, error: OSError, what: str, path: Optional[str]) -> Exception:
        if isinstance(error, PermissionError):
            return self._denied(what, error)
        if path is None:
            return self.connector.fail(f"{what} failed in {self.address} (the server said {error.strerror or error!s})")
        return self.not_found(path)

    def _denies(self, error: OSError) -> bool:
        return isinstance(error, PermissionError)

    def _denied(self, what: str, error: OSError) -> ConnectorError:
        return self.connector.fail(f"permission denied {what} in {self.address} (the server said {error.strerror or error!s})")

    def _name_a_lost_connection(self, error: BaseException) -> None:
        if self._lost():
            # The connection is gone, whatever paramiko called it: worth a new one.
            raise ConnectionResetError(f"the SSH connection broke off ({error or type(error).__name__})") from error

    def _lost(self) -> bool:
        return self._transport is None or not self._transport.is_active()

    # -- listing and stat ---------------------------------------------------------------------

    def _entries(self, sftp: paramiko.SFTPClient, folder: str) -> "list[Entry]":
        listing = sorted(sftp.listdir_attr(self._full(folder)), key=lambda entry: entry.filename)
        return [_entry(attributes.filename, attributes) for attributes in listing]

    def _follow(self, sftp: paramiko.SFTPClient, path: str) -> Optional[Entry]:
        try:
            return _entry(posixpath.basename(path), sftp.stat(self._full(path)))
        except FileNotFoundError:
            return None

    def stat(self, path: str) -> FileInfo:
        rel = clean_path(path)
        attributes = self._run(f"reading the details of {rel!r}", rel, lambda sftp: sftp.stat(self._full(rel)))
        if stat_mode.S_ISDIR(attributes.st_mode or 0):
            raise self.not_a_file(rel)
        return FileInfo(rel, attributes.st_size or 0, _modified(attributes))

    # -- transfers ----------------------------------------------------------------------------

    def open_read(self, path: str) -> BinaryIO:
        rel = clean_path(path)
        what = f"reading {rel!r}"

        def start(sftp: paramiko.SFTPClient) -> tuple[paramiko.SFTPFile, int]:
            remote = sftp.open(self._full(rel), "rb")
            return remote, remote.stat().st_size

        remote, size = self._run(what, rel, start)
        download = _Download(remote, size, lambda error: self.connector.fail(f"{what} from {self.address} failed", error))
        return io.BufferedReader(download, CHUNK_SIZE)

    def _open_upload(self, what: str, path: str, temporary: str) -> "_Upload":
        def start(sftp: paramiko.SFTPClient) -> paramiko.SFTPFile:
            self._make_parents(sftp, path)
            remote = sftp.open(self._full(temporary), "wb")
            remote.set_pipelined(True)  # no round trip per write; errors come at the latest on close
            return remote

        remote = self._run(what, None, start)
        # Its close flushes, and waits for the server's answer to every write.
        return _Upload(remote, lambda error: self.connector.fail(f"{what} to {self.address} failed", error))

    def _make_folder(self, sftp: paramiko.SFTPClient, folder: str) -> None:
        try:
            sftp.mkdir(self._full(folder))
        except OSError:
            # It exists (servers say only "Failure"), or may not be made: the open says which.
            pass

    def _replace(self, sftp: paramiko.SFTPClient, temporary: str, final: str) -> None:
        try:
            sftp.posix_rename(self._full(temporary), self._full(final))
        except OSError as error:
            if "unsupported" not in str(error).lower():
                raise
            # Without OpenSSH's extension, SFTP renames only onto a free name: not atomic, but the only way.
            with suppress(FileNotFoundError):
                sftp.remove(self._full(final))
            sftp.rename(self._full(temporary), self._full(final))

    def _remove(self, sftp: paramiko.SFTPClient, path: str) -> None:
        sftp.remove(self._full(path))


class _Download(io.RawIOBase):
    """A remote file being read, as a raw binary file for ``io.BufferedReader``.

    Reads are pipelined through paramiko's prefetch buffers, but the read requests are
    issued from here, a batch whenever less than half the read-ahead is in flight.
    paramiko's own ``prefetch()`` issues them from a thread of its own and takes "every
    request issued so far is answered" for "done": when the reader outpaces that thread,
    as it often does at the start, the rest of the file is read one synchronous request
    at a time, ten times slower (about one download in three on loopback).

    Each call reads one request's worth: paramiko's ``read(n)`` gathers a larger ``n``
    by concatenating bytes, which copies quadratically.
    """

    def __init__(self, remote: paramiko.SFTPFile, size: int, fail: Callable[[BaseException], ConnectorError]):
        super().__init__()
        self._remote, self._size, self._fail = remote, size, fail
        self._position = self._requested_to = 0
        self._ahead = FIRST_READ_AHEAD

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            self._request_ahead()
            data = self._remote.read(min(len(buffer), REQUEST_SIZE))
        except _FAILURES as error:
            raise self._fail(error) from error
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def _request_ahead(self) -> None:
        in_flight = self._requested_to - self._position
        if self._requested_to >= self._size or in_flight >= self._ahead // 2:
            return
        end = min(self._position + self._ahead, self._size)
        chunks = [(offset, min(REQUEST_SIZE, end - offset)) for offset in range(self._requested_to, end, REQUEST_SIZE)]
        remote = self._remote
        remote._prefetching, remote._prefetch_done = True, False
        remote._prefetch_thread(chunks, None)  # despite its name, it only sends the requests
        self._requested_to = end
        self._ahead = min(2 * self._ahead, READ_AHEAD)

    def close(self) -> None:
        if not self.closed:
            super().close()
            # Waits for the replies to the requests in flight: at most READ_AHEAD bytes.
            with suppress(*_FAILURES):
                self._remote.close()


class _Upload(io.RawIOBase):
    """A remote file being written (pipelined), as a raw binary file for ``io.BufferedWriter``."""

    def __init__(self, remote: paramiko.SFTPFile, fail: Callable[[BaseException], ConnectorError]):
        super().__init__()
        self._remote, self._fail = remote, fail
        self._cut = False

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if not self._cut:
            try:
                self._remote.write(data)
            except _FAILURES as error:
                raise self._fail(error) from error
        return len(data)

    def abort(self) -> None:
        """Send nothing more: the upload is being cut, and closing must not flush it."""
        self._cut = True

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        if self._cut:
            with suppress(*_FAILURES):
                self._remote.close()
            return
        try:
            self._remote.close()  # waits for the replies to the pipelined writes
        except _FAILURES as error:
            raise self._fail(error) from error


def _entry(name: str, attributes: paramiko.SFTPAttributes) -> Entry:
    mode = attributes.st_mode or 0
    kind = "folder" if stat_mode.S_ISDIR(mode) else "file" if stat_mode.S_ISREG(mode) else "link" if stat_mode.S_ISLNK(mode) else "other"
    return Entry(name, kind, attributes.st_size or 0, _modified(attributes))


def _modified(attributes: paramiko.SFTPAttributes) -> Optional[datetime]:
    return datetime.fromtimestamp(attributes.st_mtime, timezone.utc) if attributes.st_mtime is not None else None


def _key_type(algorithm: str) -> str:
    """The key type a host key algorithm uses: RSA keys sign as rsa-sha2-256/512."""
    return "ssh-rsa" if algorithm.startswith("rsa-sha2-") else algorithm

