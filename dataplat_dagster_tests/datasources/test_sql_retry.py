"""A snapshot rides out a database that is down for a moment: PostgreSQL stopped while the
snapshot connects, started again on the same port and data directory 2 s later."""

import logging
import signal
import threading
import time
from decimal import Decimal

from dataplat_dagster_tests.datasources.snapshots import SnapshotProject
from dataplat_dagster_tests.datasources.sources import pg_connection
from dataplat_dagster_tests.servers.postgres import OS_USER, start_postgres
from dataplat_dagster_tests.servers.process import ServerProcess


def stop_for(server, seconds: float) -> threading.Thread:
    """Stop ``server`` now and start it again after ``seconds``, in the background, with the
    same command line (port, data directory). Join the thread before using the server."""
    argv, log_path = server._process.popen.args, server._process.log_path
    server._process.stop()

    def start_again():
        time.sleep(seconds)
        server._process = ServerProcess("postgres", argv, log_path, user=OS_USER, stop_signal=signal.SIGINT)

    thread = threading.Thread(target=start_again)
    thread.start()
    return thread


def test_a_snapshot_connects_again_after_postgresql_restarts(tmp_path, monkeypatch, caplog):
    # Its own server: this test stops it.
    with start_postgres(tmp_path / "postgres") as server:
        with pg_connection(server) as db, db.cursor() as cursor:
            cursor.execute("CREATE TABLE orders (id int, total numeric(8,2))")
            cursor.execute("INSERT INTO orders SELECT i, i * 0.5 FROM generate_series(1, 1000) i")
        monkeypatch.setenv("RETRY_PG_PASSWORD", server.password)
        connector = {"type": "sql", "dialect": "postgresql", "host": server.host, "port": server.port, "username": server.username,
                     "password_env": "RETRY_PG_PASSWORD", "database": server.database, "retries": 6, "backoff_s": 0.5}
        project = SnapshotProject(tmp_path, {"pg": connector}, {"orders": {"connector": "pg", "table": "orders"}}, {"orders_snap": "orders"})

        restarting = stop_for(server, 2.0)
        try:
            with caplog.at_level(logging.WARNING, logger="dataplat.connectors"):
                result = project.snapshot("orders_snap")
        finally:
            restarting.join()
        password = server.password

    assert result.success
    table = project.table("orders_snap")
    assert table.num_rows == 1000 and table.column("total").to_pylist()[:2] == [Decimal("0.50"), Decimal("1.00")]
    retries = [record.getMessage() for record in caplog.records if "retrying" in record.getMessage()]
    assert retries, caplog.text
    assert retries[0].startswith("pg: connect (ADBC) failed (OperationalError: ")
    assert "Connection refused" in retries[0] and "attempt 2 of 6" in retries[0]
    assert password not in caplog.text
