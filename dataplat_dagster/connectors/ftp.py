"""The FTP connector: plain FTP or explicit FTPS (AUTH TLS, data channel protected too).

Files are listed with MLSD and stated with MLST where the server offers them (RFC 3659),
else with NLST, SIZE and MDTM. Downloads and uploads stream through the data connection
(no temporary copy here); an upload goes to a hidden temporary name beside the target and
is renamed over it once the server has confirmed every byte.

One store is one control connection, so it runs one transfer at a time: finish (close) a
download or an upload before the next operation.
"""

import ftplib
import io
import posixpath
import re
import ssl
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO, ClassVar, Optional

from pydantic import Field

from dataplat_dagster.connectors.base import FileStoreConnector, env_reference, project_path
from dataplat_dagster.connectors.checks import CheckReport, Checker, content_steps, resolve_host, tcp_connect
from dataplat_dagster.connectors.filestore import CHUNK_SIZE, FileInfo, clean_path
from dataplat_dagster.connectors.folderstore import Entry, FolderStore
from dataplat_dagster.errors import ConnectorError

# How servers word their refusals; a 550 says neither, so these decide which it was.
_DENIED = re.compile(r"permission|privilege|denied|not allowed|access is|forbidden", re.IGNORECASE)
_MISSING = re.compile(r"no such|not found|does not exist|doesn't exist|cannot find|can't find", re.IGNORECASE)
# Network and protocol failures that end an operation; ConnectorError carries them to the user.
_FAILURES = (OSError, EOFError, ftplib.Error)


class FtpConnector(FileStoreConnector):
    """An FTP or FTPS server; paths start from ``root``."""

    connector_type: ClassVar[str] = "ftp"
    secret_fields: ClassVar[tuple[str, ...]] = ("password",)

    host: str = Field(description="Server host name or IP address.")
    port: int = Field(21, description="Control connection port.")
    username: str = Field("anonymous", description="User to log in as.")
    password: Optional[str] = Field(None, description="From the environment variable named in the catalog.")
    tls: bool = Field(False, description="Explicit FTPS (AUTH TLS), with the data channel protected too.")
    ca_file: Optional[str] = Field(None, description="CA bundle that signed the server's certificate.")
    passive: bool = Field(True, description="Passive mode; active mode needs the server to reach back to this machine.")
    root: str = Field("/", description="Folder on the server that paths start from.")

    @classmethod
    def from_spec(cls, name: str, spec, project_dir: Path) -> "FtpConnector":
        return cls(
            **cls.common_fields(name, spec, project_dir),
            host=spec.host,
            port=spec.port or 21,
            username=spec.username or "anonymous",
            password=env_reference(spec.password_env),
            tls=spec.tls,
            ca_file=project_path(project_dir, spec.ca_file),
            passive=spec.passive,
            root=spec.root,
        )

    def open_store(self) -> "FtpStore":
        store = FtpStore(self)
        store.ensure_connected()
        return store

    def check(self, write: bool = False) -> CheckReport:
        checker = Checker(self.connector_name, self.connector_type, secrets=self.secret_values(), write=write)
        store = FtpStore(self)
        with store, checker:
            checker.run("resolve", lambda: resolve_host(self.host, self.port))
            checker.run("connect", lambda: f"{tcp_connect(self.host, self.port, self.timeout_s)}; {store.greet()}")
            if self.tls:
                checker.run("tls", store.secure)
            checker.run("authenticate", store.login)
            checker.run("root", store.enter_root)
            first = checker.run("list", store.survey, lambda found: found[0])[1]
            content_steps(checker, store, first, write, "the root folder holds no file to read")
        return checker.report



class FtpStore(FolderStore):
    """A logged-in FTP session; it reconnects when the connection drops."""

    _FAILURES = _FAILURES
    # A 550 says neither "missing" nor "denied": ``_refusal`` reads the reply to tell.
    _REFUSALS = (ftplib.error_perm,)
    _ROOT_NAME = "/"

    def __init__(self, connector: FtpConnector):
        self.connector = connector
        scheme = "ftps" if connector.tls else "ftp"
        self.address = f"{scheme}://{connector.host}:{connector.port}/{connector.root.lstrip('/')}"
        self._ftp: Optional[ftplib.FTP] = None
        self._root: Optional[str] = None  # absolute, once the session is in it
        self._mlst = False
        self._folders: set[str] = set()  # made or seen by this session: no MKD for them again
        self._transfer: Optional[str] = None  # what the open data connection is for

    # -- the session, step by step (the check runs each as its own step) ------------------

    def greet(self) -> str:
        """Open the control connection and read the server's greeting."""
        self._drop()
        c = self.connector
        ftp = _ReusingFtpTls(timeout=c.timeout_s) if c.tls else ftplib.FTP(timeout=c.timeout_s)
        self._ftp = ftp
        try:
            welcome = ftp.connect(c.host, c.port)
        except ftplib.error_proto as error:
            raise c.fail(f"{c.host}:{c.port} does not answer like an FTP server (it said {str(error)[:80]!r}): check the port") from None
        return f"the server says {welcome.splitlines()[-1]!r}"

    def secure(self) -> str:
        """AUTH TLS on the control connection, verifying the server's certificate."""
        c = self.connector
        # Verifying, unlike the context FTP_TLS makes itself.
        self._ftp.context = self._tls_context()
        try:
            self._ftp.auth()
        except ssl.SSLCertVerificationError as error:
            raise c.fail(_certificate_advice(c, error)) from None
        except ssl.SSLError as error:
            raise c.fail(f"the TLS handshake with {c.host}:{c.port} failed ({error.reason or error}): check that the server speaks explicit FTPS on this port") from None
        except ftplib.error_perm as error:
            raise c.fail(f"the server does not offer TLS (it answered AUTH TLS with {error}): ask for FTPS, or set tls: false if plain FTP is acceptable") from None
        sock = self._ftp.sock
        trusted = f"the CA in {c.ca_file}" if c.ca_file else "the system's CAs"
        return f"{sock.version()} ({sock.cipher()[0]}); the certificate for {c.host} is signed by {trusted}"

    def login(self) -> str:
        c, ftp = self.connector, self._ftp
        try:
            ftp.login(c.username, c.password or "")
        except ftplib.error_perm as error:
            raise c.fail(
                f"the server refused the login of user {c.username!r} ({error}): check the username and "
                "the password (the environment variable the catalog names in password_env)"
            ) from None
        protected = ""
        if c.tls:
            try:
                ftp.prot_p()
            except ftplib.error_perm as error:
                raise c.fail(f"the server refused to protect the data channel (PROT P: {error})") from None
            protected = "; file transfers are encrypted"
        ftp.set_pasv(c.passive)
        self._mlst = "MLST" in _features(ftp)
        return f"logged in as {c.username!r}{protected}; {'passive' if c.passive else 'active'} mode"

    def enter_root(self) -> str:
        c = self.connector
        try:
            self._ftp.cwd(c.root)
            self._root = self._ftp.pwd()
        except ftplib.error_perm as error:
            if _DENIED.search(str(error)):
                raise c.fail(f"permission denied entering the root folder {c.root!r} ({error}): give {c.username!r} access to it, or change root") from None
            raise c.fail(f"the root folder {c.root!r} does not exist on {c.host} ({error}): create it, or fix root in the catalog") from None
        self._folders = {""}
        return f"the root folder {self._root!r} exists"

    def _open(self) -> None:
        self.greet()
        if self.connector.tls:
            self.secure()
        self.login()
        self.enter_root()

    def _session(self) -> ftplib.FTP:
        if self._transfer:
            raise self.connector.fail(f"this FTP session is still {self._transfer}: close that file before the next operation")
        if self._root is None:
            self._connect()
        return self._ftp

    def _tls_context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=self.connector.local_file(self.connector.ca_file))
        except (OSError, ssl.SSLError) as error:
            raise self.connector.fail(f"cannot read ca_file {self.connector.ca_file!r} ({error}): give a PEM file of the CA's certificate") from None

    def _drop(self) -> None:
        """Forget the connection without a word to the server: it may be gone."""
        if self._ftp is not None:
            self._ftp.close()
        self._ftp, self._root, self._transfer = None, None, None

    def close(self) -> None:
        if self._ftp is not None and self._root is not None and not self._transfer:
            with suppress(*_FAILURES):
                self._ftp.quit()
        self._drop()

    # -- refusals ------------------------------------------------------------------------------

    def _refusal(self, ftp: ftplib.FTP, error: ftplib.error_perm, what: str, path: Optional[str]) -> Exception:
        reply = str(error)
        if _DENIED.search(reply):
            return self.connector.fail(f"permission denied {what} in {self.address} (the server said {reply!r})")
        if path is not None and (_MISSING.search(reply) or (reply.startswith("550") and not self._exists_quietly(ftp, path))):
            return self.not_found(path)
        return self.connector.fail(f"the server refused {what} in {self.address} (it said {reply!r})")

    def _denies(self, error: ftplib.error_perm) -> bool:
        return bool(_DENIED.search(str(error)))

    def _exists_quietly(self, ftp: ftplib.FTP, path: str) -> bool:
        try:
            self._stat_file(ftp, path)
        except (FileNotFoundError, ftplib.error_perm):
            return False
        return True

    # -- listing and stat ---------------------------------------------------------------------

    def _entries(self, ftp: ftplib.FTP, folder: str) -> "list[Entry]":
        full = self._full(folder)
        if self._mlst:
            listing = ftp.mlsd(full, facts=["type", "size", "modify"])
            return [_mlsd_entry(name, facts) for name, facts in listing if facts.get("type", "").lower() in ("file", "dir")]
        names = [posixpath.basename(name) for name in ftp.nlst(full)]
        ftp.voidcmd("TYPE I")  # NLST switched to ASCII, where some servers refuse SIZE
        return [self._probe_entry(ftp, folder, name) for name in names if name not in (".", "..")]

    def _probe_entry(self, ftp: ftplib.FTP, folder: str, name: str) -> Entry:
        """Without MLSD a listing has bare names: what SIZE answers for is a file, the rest folders."""
        path = posixpath.join(folder, name)
        try:
            size = ftp.size(self._full(path))
        except ftplib.error_perm:
            return Entry(name, "folder", 0, None)
        return Entry(name, "file", size or 0, _mdtm(ftp, self._full(path)))

    def stat(self, path: str) -> FileInfo:
        rel = clean_path(path)
        return self._run(f"reading the details of {rel!r}", rel, lambda ftp: self._stat_file(ftp, rel))

    def _stat_file(self, ftp: ftplib.FTP, path: str) -> FileInfo:
        full = self._full(path)
        if self._mlst:
            facts = _parse_facts(ftp.sendcmd(f"MLST {full}").splitlines()[1])
            if facts.get("type", "file").lower() != "file":
                raise self.not_a_file(path)
            return FileInfo(path, int(facts.get("size", 0)), _ftp_time(facts.get("modify")))
        ftp.voidcmd("TYPE I")
        size = ftp.size(full)
        return FileInfo(path, size or 0, _mdtm(ftp, full))

    # -- transfers ----------------------------------------------------------------------------

    def open_read(self, path: str) -> BinaryIO:
        rel = clean_path(path)
        what = f"reading {rel!r}"

        def start(ftp: ftplib.FTP):
            ftp.voidcmd("TYPE I")
            return ftp.transfercmd(f"RETR {self._full(rel)}")

        sock = self._run(what, rel, start)
        self._transfer = what
        raw = _DataConnection(sock, "r", lambda error: self.connector.fail(f"{what} from {self.address} broke off", error), self._end_download)
        return io.BufferedReader(raw, CHUNK_SIZE)

    def _end_download(self, complete: bool) -> None:
        self._transfer = None
        if not complete:
            self._abort()
            return
        try:
            self._ftp.voidresp()
        except _FAILURES as error:
            self._drop()
            raise self.connector.fail(f"the download from {self.address} did not end cleanly", error) from error

    def _abort(self) -> None:
        """After a download closed before its end: ABOR, then NOOP, and read replies up to
        NOOP's 200, so that no late reply (426, 226, 225) is taken for the next command's.
        ABOR goes in band: ftplib's out-of-band send cannot pass through TLS."""
        ftp = self._ftp
        try:
            ftp.putcmd("ABOR")
            ftp.putcmd("NOOP")
            for _ in range(4):  # RETR's end, ABOR's reply(ies), then NOOP's
                if ftp.getmultiline().startswith("200"):
                    return
        except _FAILURES:
            pass
        self._drop()  # out of step with the server: the next operation reconnects

    def _open_upload(self, what: str, path: str, temporary: str) -> "_DataConnection":
        def start(ftp: ftplib.FTP):
            self._make_parents(ftp, path)
            ftp.voidcmd("TYPE I")
            return ftp.transfercmd(f"STOR {self._full(temporary)}")

        sock = self._run(what, None, start)
        self._transfer = what
        return _DataConnection(sock, "w", lambda error: self.connector.fail(f"{what} to {self.address} broke off", error))

    def _make_folder(self, ftp: ftplib.FTP, folder: str) -> None:
        # Refused when it exists, or when the user may not: STOR then says which.
        with suppress(ftplib.error_perm):
            ftp.mkd(self._full(folder))

    def _confirm_upload(self, what: str) -> None:
        self._transfer = None
        try:
            self._ftp.voidresp()
        except ftplib.error_perm as error:
            raise self._refusal(self._ftp, error, what, None) from None
        except _FAILURES as error:
            raise self.connector.fail(f"{what} to {self.address}: the server did not confirm the upload", error) from error

    def _replace(self, ftp: ftplib.FTP, temporary: str, final: str) -> None:
        try:
            ftp.rename(self._full(temporary), self._full(final))
        except ftplib.error_perm:
            # Some servers (IIS) rename only onto a free name: make it free, then rename.
            # Not atomic, but the only way there.
            if not self._exists_quietly(ftp, final):
                raise
            ftp.delete(self._full(final))
            ftp.rename(self._full(temporary), self._full(final))

    def _upload_cut(self, closed: bool) -> None:
        self._transfer = None
        if not closed and self._ftp is not None:
            try:
                self._ftp.getmultiline()  # the server's word on the cut STOR
            except _FAILURES:
                self._drop()

    def _remove(self, ftp: ftplib.FTP, path: str) -> None:
        ftp.delete(self._full(path))


class _DataConnection(io.RawIOBase):
    """An FTP data connection as a raw binary file, for ``io.BufferedReader``/``Writer``.

    ``fail(error)`` turns a socket error into the ConnectorError raised; ``finish(complete)``
    is told, when a download is closed, whether it was read to its end.
    """

    def __init__(self, sock, mode: str, fail: Callable[[BaseException], ConnectorError], finish: Optional[Callable[[bool], None]] = None):
        super().__init__()
        self._sock = sock
        self._mode = mode
        self._fail = fail
        self._finish = finish
        self._at_end = False
        self._cut = False

    def readable(self) -> bool:
        return self._mode == "r"

    def writable(self) -> bool:
        return self._mode == "w"

    def readinto(self, buffer) -> int:
        try:
            count = self._sock.recv_into(buffer)
        except OSError as error:
            raise self._fail(error) from error
        self._at_end = count == 0
        return count

    def write(self, data) -> int:
        try:
            self._sock.sendall(data)
        except OSError as error:
            raise self._fail(error) from error
        return len(data)

    def abort(self) -> None:
        """Close without the TLS goodbye: the transfer is being cut."""
        self._cut = True
        self._sock.close()

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        complete = not self._cut and (self._mode == "w" or self._at_end)
        if complete and isinstance(self._sock, ssl.SSLSocket):
            with suppress(OSError):  # TLS close_notify, as ftplib sends after a transfer
                self._sock.unwrap()
        self._sock.close()
        if self._finish is not None:
            self._finish(complete)


class _ReusingFtpTls(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session, which
    vsftpd (require_ssl_reuse) and FileZilla Server insist on and ftplib does not do."""

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size


def _certificate_advice(connector: FtpConnector, error: ssl.SSLCertVerificationError) -> str:
    reason = error.verify_message or str(error)
    if error.verify_code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
        return f"the server's TLS certificate is not for {connector.host!r} ({reason}): connect by a name the certificate lists"
    if connector.ca_file:
        return f"the server's TLS certificate is not signed by the CA in {connector.ca_file} ({reason}): give the CA that did sign it as ca_file"
    return f"the server's TLS certificate is not trusted ({reason}): if a private CA signed it, give that CA's certificate as ca_file"


def _features(ftp: ftplib.FTP) -> set[str]:
    """The commands FEAT lists (RFC 2389); none when the server does not know FEAT."""
    try:
        reply = ftp.sendcmd("FEAT")
    except ftplib.error_perm:
        return set()
    return {line.split()[0].upper() for line in reply.splitlines()[1:-1] if line.strip()}


def _mlsd_entry(name: str, facts: dict) -> Entry:
    kind = "folder" if facts["type"].lower() == "dir" else "file"
    return Entry(name, kind, int(facts.get("size") or 0), _ftp_time(facts.get("modify")))


def _parse_facts(line: str) -> dict[str, str]:
    """``type=file;size=12;modify=20240101120000; /path`` (an MLST reply's middle line)."""
    facts, _, _ = line.strip().partition(" ")
    pairs = (fact.partition("=") for fact in facts.split(";") if fact)
    return {key.lower(): value for key, _, value in pairs}


def _mdtm(ftp: ftplib.FTP, full: str) -> Optional[datetime]:
    try:
        return _ftp_time(ftp.sendcmd(f"MDTM {full}")[4:].strip())
    except ftplib.error_perm:
        return None


def _ftp_time(value: Optional[str]) -> Optional[datetime]:
    """An MLSD ``modify`` fact or an MDTM reply: YYYYMMDDHHMMSS[.fff], in UTC (RFC 3659)."""
    if not value:
        return None
    digits, _, fraction = value.partition(".")
    try:
        stamp = datetime.strptime(digits[:14], "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    if fraction.isdigit():
        stamp += timedelta(microseconds=int(fraction[:6].ljust(6, "0")))
    return stamp

