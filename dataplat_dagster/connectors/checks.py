"""The "test connector" machinery: a sequence of named, timed steps that stops at the first
failure and says, in words a user can act on, what failed and why.

Every connector type runs the same first steps (``resolve`` the host name, TCP ``connect``)
through the helpers here, then its own (``tls``, ``host_key``, ``authenticate``, the
``database`` / ``bucket`` / ``root`` exists, ``list``, ``read``, and with ``write`` a
sentinel ``write`` and ``delete``).
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Literal, TypeVar

from dataplat_dagster.connectors.filestore import FileInfo, FileStore
from dataplat_dagster.connectors.secrets import redact
from dataplat_dagster.errors import ConnectorError, DataplatError

T = TypeVar("T")
# How much of a file the ``read`` step reads.
CHECK_READ_BYTES = 1024
Outcome = Literal["passed", "failed", "skipped"]


class StepFailed(Exception):
    """A check step failed; the message is what the user is shown.

    ``step`` names a later step when one action covers several (a database login checks
    the password and then the database): the running step is recorded as passed, and
    ``step`` as failed.
    """

    def __init__(self, message: str, step: str | None = None):
        super().__init__(message)
        self.step = step


class _Stop(Exception):
    """Raised by ``Checker.run`` after a failed step, to end the sequence."""


@dataclass
class StepResult:
    step: str
    outcome: Outcome
    seconds: float
    message: str


@dataclass
class CheckReport:
    connector: str
    type: str
    steps: list[StepResult] = field(default_factory=list)
    write: bool = False

    @property
    def ok(self) -> bool:
        return all(step.outcome != "failed" for step in self.steps) and bool(self.steps)

    @property
    def failed_step(self) -> StepResult | None:
        return next((step for step in self.steps if step.outcome == "failed"), None)

    def to_json(self) -> dict:
        return {
            "connector": self.connector,
            "type": self.type,
            "ok": self.ok,
            "write": self.write,
            "failed_step": self.failed_step.step if self.failed_step else None,
            "steps": [asdict(step) for step in self.steps],
        }


class Checker:
    """Runs steps in order, timing each; the first failure stops the sequence.

    Usage::

        checker = Checker("files", "ftp", secrets=[password])
        with checker:
            checker.run("resolve", lambda: resolve_host(host, port))
            ...
        return checker.report
    """

    def __init__(self, connector: str, type_: str, *, secrets: Iterable[str | None] = (), write: bool = False):
        self.report = CheckReport(connector, type_, write=write)
        self._secrets = list(secrets)

    def __enter__(self) -> "Checker":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        return exc_type is _Stop

    def run(self, step: str, action: Callable[[], T], describe: Callable[[T], str] | None = None) -> T:
        started = time.perf_counter()
        try:
            value = action()
        except StepFailed as error:
            if error.step and error.step != step:
                self._record(step, "passed", started, "ok")
                step, started = error.step, time.perf_counter()
            self._record(step, "failed", started, str(error))
            raise _Stop from None
        except DataplatError as error:
            self._record(step, "failed", started, str(error))
            raise _Stop from None
        except Exception as error:  # a library error nobody classified yet: still say what it was
            self._record(step, "failed", started, f"{type(error).__name__}: {error}")
            raise _Stop from None
        message = describe(value) if describe else (value if isinstance(value, str) else "ok")
        self._record(step, "passed", started, message)
        return value

    def skip(self, step: str, reason: str) -> None:
        self.report.steps.append(StepResult(step, "skipped", 0.0, redact(reason, self._secrets)))

    def fail(self, step: str, message: str) -> None:
        """Record a failure found without running an action (e.g. a missing secret)."""
        self.report.steps.append(StepResult(step, "failed", 0.0, redact(message, self._secrets)))
        raise _Stop

    def _record(self, step: str, outcome: Outcome, started: float, message: str) -> None:
        seconds = round(time.perf_counter() - started, 4)
        # The report already names the connector: its errors need not say it again.
        message = message.removeprefix(f"Connector {self.report.connector!r}: ")
        self.report.steps.append(StepResult(step, outcome, seconds, redact(message, self._secrets)))


def resolve_host(host: str, port: int) -> str:
    """The step ``resolve``: the host name has an address."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise StepFailed(
            f"cannot resolve the host name {host!r} ({error.strerror}): check the spelling, "
            "or use the server's IP address"
        ) from None
    addresses = sorted({info[4][0] for info in infos})
    return f"{host} is {', '.join(addresses)}"


def tcp_connect(host: str, port: int, timeout_s: float) -> str:
    """The step ``connect``: something accepts TCP connections on host:port."""
    started = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except ConnectionRefusedError:
        raise StepFailed(
            f"connection to {host}:{port} refused: nothing listens on that port; "
            "check the port and that the server is running"
        ) from None
    except (TimeoutError, socket.timeout):
        waited = time.perf_counter() - started
        raise StepFailed(
            f"no answer from {host}:{port} after {waited:.1f} s: check the host, the port, "
            "and that no firewall drops the connection"
        ) from None
    except OSError as error:
        raise StepFailed(f"cannot connect to {host}:{port}: {error.strerror or error}") from None
    return f"{host}:{port} accepts connections"


def content_steps(checker: Checker, store: FileStore, first: FileInfo | None, write: bool, nothing_to_read: str) -> None:
    """The steps every file store shares, through the ``FileStore`` interface: ``read`` the
    first bytes of a file, and with ``write`` a sentinel ``write`` and ``delete``."""
    if first is None:
        checker.skip("read", nothing_to_read)
    else:
        checker.run("read", lambda: _read_head(store, first))
    if write:
        sentinel = f".dataplat-check-{uuid.uuid4().hex[:12]}"
        checker.run("write", lambda: _write_sentinel(store, sentinel))
        checker.run("delete", lambda: _delete_sentinel(store, sentinel))


def _read_head(store: FileStore, info: FileInfo) -> str:
    head = store.read_head(info.path, CHECK_READ_BYTES)
    return f"read the first {len(head):,} bytes of {info.path!r} ({info.size:,} bytes)"


def _write_sentinel(store: FileStore, name: str) -> str:
    content = f"dataplat connector check {name}: safe to delete\n".encode()
    with store.write(name) as stream:
        stream.write(content)
    written = store.stat(name).size
    if written != len(content):
        raise StepFailed(f"wrote {len(content)} bytes to {name!r} but the server reports {written}")
    return f"wrote {name!r} ({written} bytes) in {store.address}, committed only once complete"


def _delete_sentinel(store: FileStore, name: str) -> str:
    try:
        store.delete(name)
    except ConnectorError as error:
        raise StepFailed(f"{error}; remove {name!r} from {store.address} by hand") from None
    if store.exists(name):
        raise StepFailed(f"deleted {name!r} but it is still there: remove it from {store.address} by hand")
    return f"deleted {name!r}"
