"""Bounded retries with exponential backoff, for the transient failures of a network.

Only errors that a second attempt can cure are retried (a reset connection, a time-out, a
server's "try again"); a wrong password or a missing file fails at once.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from typing import TypeVar

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


def is_transient(error: BaseException) -> bool:
    import ftplib

    if isinstance(error, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, TimeoutError, socket.timeout)):
        return True
    if isinstance(error, (ftplib.error_temp, EOFError)):
        return True
    if type(error).__name__ in _TRANSIENT_NAMES:
        return True
    if type(error).__name__ == "ConnectionError" and type(error).__module__.startswith("requests"):
        return True
    return False


def with_retries(
    action: Callable[[], T],
    *,
    attempts: int,
    backoff_s: float,
    what: str,
    before_retry: Callable[[], None] | None = None,
) -> T:
    """Run ``action`` up to ``attempts`` times, sleeping backoff, 2x backoff, ... between
    transient failures; ``before_retry`` reconnects. The last error is raised as it is."""
    for attempt in range(1, max(1, attempts) + 1):
        try:
            return action()
        except Exception as error:
            if attempt >= attempts or not is_transient(error):
                raise
            delay = backoff_s * 2 ** (attempt - 1)
            log.warning("%s failed (%s: %s); retrying in %.1f s (attempt %d of %d)", what, type(error).__name__, error, delay, attempt + 1, attempts)
            time.sleep(delay)
            if before_retry is not None:
                try:
                    before_retry()
                except Exception as reconnect_error:  # the next attempt reports it
                    log.warning("reconnecting failed: %s", reconnect_error)
    raise AssertionError("unreachable")
