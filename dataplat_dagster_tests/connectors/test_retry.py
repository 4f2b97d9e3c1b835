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


def test_retry_warnings_mask_secrets_urls_and_sqlalchemy_parameters(caplog):
    import psycopg2
    from sqlalchemy.exc import OperationalError

    echoed = ConnectionResetError("reset while talking to postgresql://etl:hunter2-pw@db.internal/shop (key hunter2-pw)")
    driver_error = psycopg2.OperationalError("server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally")
    wrapped = OperationalError("SELECT * FROM t WHERE token = %(token)s", {"token": "tok-abc-123"}, driver_error)
    flaky = Flaky([echoed, wrapped])
    with caplog.at_level(logging.WARNING, logger="dataplat.connectors"):
        assert with_retries(flaky, attempts=3, backoff_s=0, what="warehouse: connect", secrets=["hunter2-pw"]) == "done"
    assert [r.getMessage().split(";")[0] for r in caplog.records] == [
        "warehouse: connect failed (ConnectionResetError: reset while talking to postgresql://etl:***@db.internal/shop (key ***))",
        "warehouse: connect failed (OperationalError: server closed the connection unexpectedly This probably means the server terminated abnormally)",
    ]
    assert "hunter2-pw" not in caplog.text and "tok-abc-123" not in caplog.text


def sqlalchemy_error(url: str, **connect_args) -> Exception:
    from sqlalchemy import create_engine

    engine = create_engine(url, connect_args=connect_args)
    try:
        engine.connect().close()
    except Exception as error:
        return error
    finally:
        engine.dispose()
    raise AssertionError(f"connecting to {url} succeeded")


def test_postgresql_refused_is_transient_a_wrong_password_is_not(postgres_server):
    from dataplat_dagster.connectors.adbc import AdbcSession
    from dataplat_dagster_tests.servers.ports import free_port

    s = postgres_server
    closed_port = free_port()
    refused = sqlalchemy_error(f"postgresql+psycopg2://{s.username}:{s.password}@{s.host}:{closed_port}/{s.database}")
    wrong_password = sqlalchemy_error(f"postgresql+psycopg2://{s.username}:wrong@{s.host}:{s.port}/{s.database}")
    missing_database = sqlalchemy_error(f"postgresql+psycopg2://{s.username}:{s.password}@{s.host}:{s.port}/no_such_db")
    with pytest.raises(Exception) as adbc_refused:
        AdbcSession(f"postgresql://{s.username}:{s.password}@{s.host}:{closed_port}/{s.database}")
    assert "Connection refused" in str(refused) and is_transient(refused)
    assert is_transient(adbc_refused.value)
    assert "password authentication failed" in str(wrong_password) and not is_transient(wrong_password)
    assert "does not exist" in str(missing_database) and not is_transient(missing_database)


def test_postgresql_a_session_the_server_ends_is_transient_a_syntax_error_is_not(postgres_server):
    from contextlib import closing

    import psycopg2

    s = postgres_server
    login = {"host": s.host, "port": s.port, "user": s.username, "password": s.password, "dbname": s.database}
    with closing(psycopg2.connect(**login)) as victim, closing(psycopg2.connect(**login)) as killer:
        victim.autocommit = killer.autocommit = True
        with victim.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
            with pytest.raises(psycopg2.Error) as syntax:
                cursor.execute("SELEC 1")
        with killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg2.Error) as terminated, victim.cursor() as cursor:
            cursor.execute("SELECT 1")
    assert syntax.value.pgcode == "42601" and not is_transient(syntax.value)
    assert "server closed the connection unexpectedly" in str(terminated.value) and is_transient(terminated.value)


def test_postgresql_too_many_connections_is_transient(postgres_server):
    from contextlib import closing

    import psycopg2

    s = postgres_server
    with closing(psycopg2.connect(host=s.host, port=s.port, user=s.username, password=s.password, dbname=s.database)) as db:
        db.autocommit = True
        with db.cursor() as cursor:
            cursor.execute("DROP DATABASE IF EXISTS retry_full")
            cursor.execute("CREATE DATABASE retry_full CONNECTION LIMIT 0")
    full = sqlalchemy_error(f"postgresql+psycopg2://{s.username}:{s.password}@{s.host}:{s.port}/retry_full")
    assert "too many connections" in str(full) and is_transient(full)


def test_mariadb_refused_is_transient_a_wrong_password_is_not(mariadb_server):
    from dataplat_dagster_tests.servers.ports import free_port

    s = mariadb_server
    refused = sqlalchemy_error(f"mysql+pymysql://{s.username}:{s.password}@{s.host}:{free_port()}/{s.database}")
    wrong_password = sqlalchemy_error(f"mysql+pymysql://{s.username}:wrong@{s.host}:{s.port}/{s.database}")
    assert refused.orig.args[0] == 2003 and is_transient(refused)
    assert wrong_password.orig.args[0] == 1045 and not is_transient(wrong_password)


def test_a_locked_sqlite_database_is_transient_a_missing_table_is_not(tmp_path):
    import sqlite3

    database = tmp_path / "shop.db"
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(database, timeout=0)
    with pytest.raises(sqlite3.OperationalError) as locked:
        other.execute("SELECT * FROM t")
    with pytest.raises(sqlite3.OperationalError) as missing:
        holder.execute("SELECT * FROM no_such_table")
    holder.close()
    other.close()
    assert "database is locked" in str(locked.value) and is_transient(locked.value)
    assert not is_transient(missing.value)
