"""A throwaway MariaDB server on 127.0.0.1 with password logins over TCP.

`mariadbd` runs as root (`--user=root`) straight from a fresh `mariadb-install-db`
data directory; root logs in over the unix socket only (unix_socket auth) to create
the TCP users. `--skip-name-resolve` keeps logins from waiting on DNS, which this
machine does not have. Durability is relaxed and the redo log kept small: the data
is thrown away after the session.
"""

import secrets
import shutil
import subprocess
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

from dataplat_dagster_tests.servers.ports import HOST, free_port
from dataplat_dagster_tests.servers.process import ServerHandle, ServerProcess

INNODB_OPTIONS = ["--innodb-log-file-size=8M", "--innodb-buffer-pool-size=64M"]


@dataclass
class MariaDBServer(ServerHandle):
    """How to reach the server.

    `username` has every privilege on `database`; `noperm_username` can log in but
    has no privilege on it, so using it fails with "access denied".
    """

    host: str
    port: int
    username: str
    password: str
    database: str
    noperm_username: str
    noperm_password: str
    _datadir: Path = field(repr=False)
    _process: ServerProcess = field(repr=False)

    def _cleanup(self) -> None:
        shutil.rmtree(self._datadir, ignore_errors=True)


def start_mariadb(workdir: Path, timeout: float = 60.0) -> MariaDBServer:
    """Create a data directory in `workdir`, start mariadbd on a free port, add the users.

    stop() removes the data directory (about 25 MB) and keeps the log.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    datadir, tmpdir = workdir / "data", workdir / "tmp"
    tmpdir.mkdir(exist_ok=True)
    install_log = workdir / "install-db.log"
    with open(install_log, "wb") as log:
        result = subprocess.run(
            ["mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={datadir}",
             "--auth-root-authentication-method=socket", "--skip-test-db",
             *INNODB_OPTIONS],
            stdout=log, stderr=subprocess.STDOUT,
        )
    if result.returncode != 0:
        raise RuntimeError(f"mariadb-install-db failed ({result.returncode}):\n{install_log.read_text()[-3000:]}")

    port = free_port()
    socket_path = workdir / "mysqld.sock"
    process = ServerProcess(
        "mariadb",
        ["/usr/sbin/mariadbd", "--no-defaults", "--user=root", f"--datadir={datadir}", f"--tmpdir={tmpdir}",
         "--bind-address=127.0.0.1", f"--port={port}", f"--socket={socket_path}",
         f"--pid-file={workdir / 'mariadbd.pid'}", "--skip-name-resolve", "--skip-log-bin",
         "--innodb-flush-log-at-trx-commit=0", "--skip-innodb-doublewrite", *INNODB_OPTIONS],
        workdir / "mariadbd.log",
    )

    def root_connection():
        return pymysql.connect(unix_socket=str(socket_path), user="root", connect_timeout=2, autocommit=True)

    def ready() -> bool:
        try:
            root_connection().close()
            return True
        except pymysql.err.OperationalError:
            return False

    server = MariaDBServer(
        host=HOST, port=port,
        username="dataplat", password=secrets.token_hex(8), database="dataplat_test",
        noperm_username="dataplat_noperm", noperm_password=secrets.token_hex(8),
        _datadir=datadir, _process=process,
    )
    with process.starting(on_failure=server._cleanup):
        process.wait_ready(ready, timeout)
        with closing(root_connection()) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {server.database}")
            # With parameters pymysql %-formats the statement, hence '%%' for the host '%'.
            cur.execute(f"CREATE USER '{server.username}'@'%%' IDENTIFIED BY %s", (server.password,))
            cur.execute(f"GRANT ALL PRIVILEGES ON {server.database}.* TO '{server.username}'@'%'")
            cur.execute(f"CREATE USER '{server.noperm_username}'@'%%' IDENTIFIED BY %s", (server.noperm_password,))
    return server
