"""Transient network errors are retried with backoff, a bounded number of times; others not."""

import ftplib
import logging

import pytest

from dataplat_dagster.connectors.retry import is_transient, with_retries


class Flaky:
    def __init__(self, failures):
        self.failures = list(failures)
        self.calls = 0
        self.reconnects = 0

    def __call__(self):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"

    def reconnect(self):
        self.reconnects += 1


def test_transient_errors_are_retried_and_reconnect_in_between(caplog):
    flaky = Flaky([ConnectionResetError("reset by peer"), TimeoutError("timed out")])
    with caplog.at_level(logging.WARNING, logger="dataplat.connectors"):
        assert with_retries(flaky, attempts=3, backoff_s=0.01, what="files: list", before_retry=flaky.reconnect) == "done"
    assert (flaky.calls, flaky.reconnects) == (3, 2)
    assert [r.getMessage().split(";")[0] for r in caplog.records] == [
        "files: list failed (ConnectionResetError: reset by peer)",
        "files: list failed (TimeoutError: timed out)",
    ]


def test_retries_are_bounded_and_the_last_error_is_raised():
    flaky = Flaky([ConnectionResetError("1"), ConnectionResetError("2"), ConnectionResetError("3")])
    with pytest.raises(ConnectionResetError, match="3"):
        with_retries(flaky, attempts=3, backoff_s=0, what="x")
    assert flaky.calls == 3


def test_permanent_errors_fail_at_once():
    flaky = Flaky([ftplib.error_perm("530 Login incorrect.")])
    with pytest.raises(ftplib.error_perm):
        with_retries(flaky, attempts=5, backoff_s=0, what="x")
    assert flaky.calls == 1
    assert is_transient(ftplib.error_temp("421 Too many users"))
    assert not is_transient(FileNotFoundError("x")) and not is_transient(PermissionError("x"))
