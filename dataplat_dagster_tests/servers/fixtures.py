"""Session-scoped pytest fixtures for the real servers, imported by the tests' conftest.

Each server starts the first time a test asks for it, in that pytest(-xdist) worker,
in a directory from `tmp_path_factory`, and stops when the session ends. They are
shared by every test in the worker: a test that needs to kill() a server should start
its own with the `start_<name>` factory instead.
"""

from collections.abc import Iterator

import pytest

from dataplat_dagster_tests.servers.ftp import FtpServer, start_ftp
from dataplat_dagster_tests.servers.gcs import GcsServer, start_gcs
from dataplat_dagster_tests.servers.mariadb import MariaDBServer, start_mariadb
from dataplat_dagster_tests.servers.postgres import PostgresServer, start_postgres
from dataplat_dagster_tests.servers.s3 import S3Server, start_s3
from dataplat_dagster_tests.servers.sftp import SftpServer, start_sftp

__all__ = [
    "postgres_server", "mariadb_server", "ftp_server", "ftps_server", "sftp_server", "s3_server", "gcs_server",
]


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory) -> Iterator[PostgresServer]:
    with start_postgres(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory) -> Iterator[MariaDBServer]:
    with start_mariadb(tmp_path_factory.mktemp("mariadb")) as server:
        yield server


@pytest.fixture(scope="session")
def ftp_server(tmp_path_factory) -> Iterator[FtpServer]:
    with start_ftp(tmp_path_factory.mktemp("ftp")) as server:
        yield server


@pytest.fixture(scope="session")
def ftps_server(tmp_path_factory) -> Iterator[FtpServer]:
    with start_ftp(tmp_path_factory.mktemp("ftps"), tls=True) as server:
        yield server


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory) -> Iterator[SftpServer]:
    with start_sftp(tmp_path_factory.mktemp("sftp")) as server:
        yield server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    with start_s3(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory) -> Iterator[GcsServer]:
    with start_gcs(tmp_path_factory.mktemp("gcs")) as server:
        yield server
