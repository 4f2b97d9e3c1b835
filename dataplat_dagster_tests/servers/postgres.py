"""A throwaway PostgreSQL 15 cluster on 127.0.0.1 with password (scram-sha-256) logins.

initdb refuses to run as root, so initdb and the server run as the `postgres` user;
the cluster lives in a /tmp directory that user can reach (see `reachable_dir`). The
server is started directly as our child process (not daemonised by pg_ctl) so that
kill() and the exit status are ours to see. Durability is switched off (fsync,
synchronous_commit, full_page_writes): the cluster is thrown away after the session.
"""

import secrets
import shutil
import signal
import subprocess
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

from dataplat_dagster_tests.servers.ports import HOST, free_port
from dataplat_dagster_tests.servers.process import ServerHandle, ServerProcess, reachable_dir

PG_BIN = Path("/usr/lib/postgresql/15/bin")
OS_USER = "postgres"

# Local (socket) logins are only for the setup below; the socket directory belongs to
# `postgres` with mode 700. Every TCP login needs its password (the superuser has none,
# so it cannot log in over TCP at all).
PG_HBA = """\
local all postgres trust
host all all 127.0.0.1/32 scram-sha-256
"""


@dataclass
class PostgresServer(ServerHandle):
    """How to reach the cluster.

    `username` owns `database`, the schema `private` and its table `private.secrets`;
    `noperm_username` can log in to `database` but has no privilege on `private`, so
    reading `private.secrets` as that role fails with "permission denied".
    """

    host: str
    port: int
    username: str
    password: str
    database: str
    noperm_username: str
    noperm_password: str
    psql: str
    _runtime_dir: Path = field(repr=False)
    _process: ServerProcess = field(repr=False)

    def _cleanup(self) -> None:
        _remove_sysv_segment(self._runtime_dir / "data" / "postmaster.pid")
        shutil.rmtree(self._runtime_dir, ignore_errors=True)


def start_postgres(workdir: Path, timeout: float = 60.0) -> PostgresServer:
    """initdb a cluster, start it on a free port, create the test roles and database.

    Logs (initdb's and the server's) go to `workdir`; the data directory and the
    socket live in a /tmp directory that stop() removes.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    runtime = reachable_dir("postgres")
    data, sockets = runtime / "data", runtime / "sockets"
    sockets.mkdir()
    shutil.chown(runtime, OS_USER, OS_USER)
    shutil.chown(sockets, OS_USER, OS_USER)
    sockets.chmod(0o700)

    initdb_log = workdir / "initdb.log"
    with open(initdb_log, "wb") as log:
        result = subprocess.run(
            [PG_BIN / "initdb", "-D", data, "-U", OS_USER, "-E", "UTF8", "--locale=C.UTF-8", "--auth=trust"],
            stdout=log, stderr=subprocess.STDOUT, user=OS_USER, group=OS_USER, extra_groups=[],
        )
    if result.returncode != 0:
        shutil.rmtree(runtime, ignore_errors=True)
        raise RuntimeError(f"initdb failed ({result.returncode}):\n{initdb_log.read_text()[-3000:]}")
    # initdb's trust-everything pg_hba.conf is replaced before the server starts.
    (data / "pg_hba.conf").write_text(PG_HBA)

    port = free_port()
    process = ServerProcess(
        "postgres",
        [PG_BIN / "postgres", "-D", data, "-p", str(port), "-k", sockets,
         "-c", "listen_addresses=127.0.0.1",
         "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
         # Dynamic shared memory in files under the data directory rather than in
         # /dev/shm, where a killed server would leave its segments behind.
         "-c", "dynamic_shared_memory_type=mmap"],
        workdir / "postgres.log", user=OS_USER, stop_signal=signal.SIGINT,
    )

    def superuser_connection(dbname: str = "postgres"):
        conn = psycopg2.connect(host=str(sockets), port=port, user=OS_USER, dbname=dbname, connect_timeout=2)
        conn.autocommit = True
        return conn

    def ready() -> bool:
        try:
            superuser_connection().close()
            return True
        except psycopg2.OperationalError:
            return False

    server = PostgresServer(
        host=HOST, port=port,
        username="dataplat", password=secrets.token_hex(8), database="dataplat_test",
        noperm_username="dataplat_noperm", noperm_password=secrets.token_hex(8),
        psql=str(PG_BIN / "psql"), _runtime_dir=runtime, _process=process,
    )
    with process.starting(on_failure=server._cleanup):
        process.wait_ready(ready, timeout)
        with closing(superuser_connection()) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE ROLE {server.username} LOGIN CREATEDB PASSWORD %s", (server.password,))
            cur.execute(f"CREATE ROLE {server.noperm_username} LOGIN PASSWORD %s", (server.noperm_password,))
            cur.execute(f"CREATE DATABASE {server.database} OWNER {server.username}")
        with closing(superuser_connection(server.database)) as conn, conn.cursor() as cur:
            cur.execute(f"SET ROLE {server.username}")
            cur.execute("CREATE SCHEMA private")
            cur.execute("CREATE TABLE private.secrets (id integer PRIMARY KEY, secret text NOT NULL)")
            cur.execute("INSERT INTO private.secrets VALUES (1, 'only the owner reads this')")
    return server


def _remove_sysv_segment(pid_file: Path) -> None:
    """Remove the small System V segment a killed postmaster leaves behind.

    Line 7 of postmaster.pid holds its key and id; after a clean shutdown the file is
    gone and there is nothing to do.
    """
    try:
        lines = pid_file.read_text().splitlines()
        shmid = lines[6].split()[1]
    except (OSError, IndexError):
        return
    subprocess.run(["ipcrm", "-m", shmid], capture_output=True)
