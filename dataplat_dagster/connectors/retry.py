"""Bounded retries with exponential backoff, for the transient failures of a network.

Only errors that a second attempt can cure are retried (a reset connection, a time-out, a
server's "try again", a database that refuses connections while it restarts); a wrong
password or a missing file fails at once. The loop itself is tenacity's.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable
from typing import TypeVar

from dataplat_dagster.connectors.secrets import error_text

T = TypeVar("T")
log = logging.getLogger("dataplat.connectors")

_TRANSIENT_NAMES = {
    # botocore, urllib3, requests, google-api-core: matched by name so that the check does
    # not import every client library.
    "EndpointConnectionError",
    "ConnectionClosedError",
    "ReadTimeoutError",
    "ConnectTimeoutError",
    "ReadTimeout",  # requests' own time-outs (google-cloud-storage's transport)
    "ConnectTimeout",
    "ProtocolError",
    "ServiceUnavailable",
    "TooManyRequests",
    "InternalServerError",
    "BadGateway",
    "GatewayTimeout",
    "RetryError",
}

# PostgreSQL SQLSTATEs worth a second attempt: class 08 (connection exception), the
# server shutting down or starting up (57P01-57P03), too many connections (53300).
_PG_TRANSIENT_STATES = ("08", "57P01", "57P02", "57P03", "53300")
# libpq reports a failure to connect without a SQLSTATE (psycopg2 and ADBC alike), so its
# own words are matched, as SQLAlchemy's disconnect detection does.
_LIBPQ_TRANSIENT_MESSAGES = (
    "connection refused",
    "could not connect to server",
    "server closed the connection unexpectedly",
    "could not receive data from server",
    "could not send data to server",
    "connection reset",
    "timeout expired",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "terminating connection due to administrator command",
    "too many connections",
    "sorry, too many clients already",
    "ssl syscall error",
)
# MySQL/MariaDB client and server error numbers: cannot connect (2002 socket, 2003 TCP),
# server gone away or connection lost (2006, 2013, 2055), too many connections (1040),
# shutdown in progress (1053), connection killed (1927), disconnected for inactivity (4031).
_MYSQL_TRANSIENT_CODES = {2002, 2003, 2006, 2013, 2055, 1040, 1053, 1927, 4031}
_SQLITE_BUSY = 5  # another connection holds the lock; it is released when it commits


def is_transient(error: BaseException) -> bool:
    import ftplib

    if getattr(error, "connection_invalidated", False):  # SQLAlchemy saw the connection drop
        return True
    error = getattr(error, "orig", None) or error  # the driver's error that SQLAlchemy wraps
    if isinstance(error, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, TimeoutError, socket.timeout)):
        return True
    if isinstance(error, (ftplib.error_temp, EOFError)):
        return True
    if type(error).__name__ in _TRANSIENT_NAMES:
        return True
    if type(error).__name__ == "ConnectionError" and type(error).__module__.startswith("requests"):
        return True
    return _is_transient_sql(error)


def _is_transient_sql(driver_error: BaseException) -> bool:
    """Whether a database driver's error is one that a new connection may cure, by each
    driver's own codes."""
    driver = type(driver_error).__module__.split(".")[0]
    if driver in ("psycopg2", "psycopg", "adbc_driver_manager", "adbc_driver_postgresql"):
        state = getattr(driver_error, "pgcode", None) or getattr(driver_error, "sqlstate", None)
        if state:
            return state.startswith(_PG_TRANSIENT_STATES)
        message = str(driver_error).lower()
        return any(words in message for words in _LIBPQ_TRANSIENT_MESSAGES)
    if driver in ("pymysql", "MySQLdb", "mysql", "mariadb"):
        code = driver_error.args[0] if driver_error.args else None
        return code in _MYSQL_TRANSIENT_CODES
    if driver == "sqlite3":
        return getattr(driver_error, "sqlite_errorcode", None) == _SQLITE_BUSY
    return False


def with_retries(
    action: Callable[[], T],
    *,
    attempts: int,
    backoff_s: float,
    what: str,
    before_retry: Callable[[], None] | None = None,
    secrets: Iterable[str] = (),
) -> T:
    """Run ``action`` up to ``attempts`` times, sleeping backoff, 2x backoff, ... between
    transient failures; ``before_retry`` reconnects. The last error is raised as it is.
    The warnings name the error without ``secrets`` or a URL's password in it."""
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

    secrets = list(secrets)
    attempts = max(1, attempts)

    def warn(state) -> None:
        error = state.outcome.exception()
        log.warning(
            "%s failed (%s: %s); retrying in %.1f s (attempt %d of %d)",
            what, type(error).__name__, error_text(error, secrets), state.next_action.sleep, state.attempt_number + 1, attempts,
        )

    def reconnect(state) -> None:
        if state.attempt_number == 1 or before_retry is None:
            return
        try:
            before_retry()
        except Exception as reconnect_error:  # the next attempt reports it
            log.warning("reconnecting failed: %s", error_text(reconnect_error, secrets))

    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=backoff_s),
        retry=retry_if_exception(is_transient),
        before=reconnect,
        before_sleep=warn,
        reraise=True,
    )
    return retrying(action)
