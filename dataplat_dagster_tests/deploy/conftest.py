"""`deployment`: the deployed shape of deploy/ running on loopback, for this folder's tests.

The compose file's three Dagster services (code server, webserver, daemon) run as local
processes with the commands and environments compose.py reads from deploy/docker-compose.yaml;
the real PostgreSQL and moto (S3) fixtures stand in for the `postgres` and `minio` services.
Each service gets its own folder, laid out like its container: the paths the compose file
and the Dockerfile name (WORKDIR, working_dir, DAGSTER_HOME, mounted files) are the same
paths under that folder, holding copies of the same files (deploy/dagster.yaml, a
deploy/workspace.yaml pointing at the code server's real port, projects/demo with the
shop.db the image builds). So the processes share only PostgreSQL and the bucket, as on
separate machines. `start_deployment` is the same outside pytest.

The fixture is module-scoped: a test module that asks for it gets one deployment (a new
database and bucket) for all its tests.
"""

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import pytest
import yaml

from dataplat_dagster_tests.deploy.compose import (
    INSTANCE_FILE, REPO_ROOT, WORKSPACE_FILE, command_for, compose_services, environment_for, image_workdir,
    workspace_for,
)
from dataplat_dagster_tests.servers.ports import HOST, free_port, port_open

START_TIMEOUT = 90.0

# Variables of the test process that must not leak into the services: each service's
# environment is the compose file's, with loopback addresses in place of the services'.
_OWN_PREFIXES = ("DAGSTER_", "DATAPLAT_", "AWS_")


@dataclass
class Service:
    """One running compose service: its process, its folder (its container's "/"), its log."""

    name: str
    root: Path
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the service's process group, then SIGKILL whatever of it is left."""
        if self.popen is None:
            return
        group = self.popen.pid  # the session leader: its pid is the group's id
        _signal_group(group, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        # Children may outlive the leader (the code server's subprocess): kill them too.
        _signal_group(group, signal.SIGKILL)
        self.popen.wait()


def _signal_group(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        pass


@dataclass
class Deployment:
    """How to reach the running deployment.

    `env` is what a client on another machine needs to open the same instance: DAGSTER_HOME
    (a folder holding deploy/dagster.yaml), PostgreSQL, the bucket and its credentials, and
    DATAPLAT_DAGSTER_URL. `bucket` holds the projects' storage (`storage_root`) and the
    compute logs.
    """

    webserver_url: str
    code_server_port: int
    dagster_home: Path
    env: dict[str, str]
    bucket: str
    storage_root: str
    database: str
    s3_endpoint_url: str
    services: dict[str, Service] = field(repr=False)

    @property
    def graphql_url(self) -> str:
        return f"{self.webserver_url}/graphql"

    @property
    def log_paths(self) -> dict[str, Path]:
        return {name: service.log_path for name, service in self.services.items()}

    def logs(self, lines: int = 60) -> str:
        """The tail of every service's log, for a failure message."""
        return "\n".join(
            f"--- {name} ({service.log_path}) ---\n{service.log_tail(lines)}" for name, service in self.services.items()
        )

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
        """POST a query to the webserver; its `data`, or AssertionError with the errors and logs."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(self.graphql_url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
        if answer.get("errors"):
            raise AssertionError(f"GraphQL errors: {answer['errors']}\n{self.logs()}")
        return answer["data"]

    def client_env(self) -> dict[str, str]:
        """This process's environment without its own Dagster/AWS variables, plus `env`."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
        return {**base, **self.env}

    @contextmanager
    def instance(self):
        """The deployment's DagsterInstance, opened here as a client would (same dagster.yaml + env)."""
        from dagster import DagsterInstance

        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.client_env())
        try:
            with DagsterInstance.from_config(str(self.dagster_home)) as instance:
                yield instance
        finally:
            os.environ.clear()
            os.environ.update(saved)


def _copy_project(source: Path, target: Path) -> None:
    """A project folder as the image has it: its code and catalog, not local state."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("storage", "external", "__pycache__", "*.pyc", ".*.lock"))


def _service_root(base: Path, name: str) -> Path:
    root = base / name
    root.mkdir(parents=True)
    return root


def _local(root: Path, container_path: str) -> Path:
    """Where a path of the service's container lies in its folder."""
    return root / container_path.lstrip("/")


def _create_database(postgres_server) -> str:
    name = f"dagster_deploy_{secrets.token_hex(4)}"
    conn = psycopg2.connect(
        host=postgres_server.host, port=postgres_server.port, user=postgres_server.username,
        password=postgres_server.password, dbname=postgres_server.database, connect_timeout=5,
    )
    conn.autocommit = True
    with closing(conn), conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    return name


def _wait(what: str, ready, services: list[Service], deployment_logs, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for service in services:
            if not service.alive():
                raise AssertionError(f"{service.name} exited ({service.popen.returncode}) while waiting for {what}\n{deployment_logs()}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout:.0f} s\n{deployment_logs()}")
        time.sleep(0.1)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _code_server_answers(port: int) -> bool:
    """Whether the code server has finished loading (or failed to load) its code location."""
    from dagster._grpc.client import DagsterGrpcClient

    if not port_open(HOST, port):
        return False
    try:
        DagsterGrpcClient(port=port, host=HOST).list_repositories()
        return True
    except Exception:  # still starting up
        return False


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, postgres_server, s3_server) -> Iterator[Deployment]:
    with start_deployment(tmp_path_factory.mktemp("deployment"), postgres_server, s3_server) as running:
        yield running


@contextmanager
def start_deployment(base: Path, postgres_server, s3_server) -> Iterator[Deployment]:
    """The deployment in the empty folder ``base``, on a new database of ``postgres_server``
    and a new bucket of ``s3_server``; stopped on exit. The fixture's body, also usable
    outside pytest (bench/deployment_load.py)."""
    compose = compose_services()

    database = _create_database(postgres_server)
    bucket = f"dataplat-deploy-{secrets.token_hex(4)}"
    s3_server.client().create_bucket(Bucket=bucket)
    storage_root = f"s3://{bucket}/projects"

    def service_env(name: str, root: Path) -> dict[str, str]:
        spec = compose[name]
        values = {
            "DAGSTER_HOME": str(_local(root, spec.environment["DAGSTER_HOME"])),
            "DAGSTER_POSTGRES_HOST": postgres_server.host,
            "DAGSTER_POSTGRES_PORT": str(postgres_server.port),
            "DAGSTER_POSTGRES_USER": postgres_server.username,
            "DAGSTER_POSTGRES_PASSWORD": postgres_server.password,
            "DAGSTER_POSTGRES_DB": database,
            "AWS_ACCESS_KEY_ID": s3_server.access_key,
            "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
            "AWS_ENDPOINT_URL": s3_server.endpoint_url,
            "AWS_DEFAULT_REGION": s3_server.region,
            "DATAPLAT_STORAGE_ROOT": storage_root,
            "DATAPLAT_COMPUTE_LOGS_BUCKET": bucket,
        }
        own = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
        # Never the cloud's metadata address for credentials (see the suite's conftest).
        own["AWS_EC2_METADATA_DISABLED"] = "true"
        return {**own, **environment_for(spec, **values)}

    code_server_port, webserver_port = free_port(), free_port()

    def lay_out(name: str) -> tuple[Path, Path, dict[str, str]]:
        """The service's folder: its mounted files, DAGSTER_HOME, working directory; its env."""
        spec = compose[name]
        root = _service_root(base, name)
        env = service_env(name, root)
        Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
        for mount in spec.mounts:
            target = _local(root, mount.target)
            target.parent.mkdir(parents=True, exist_ok=True)
            if mount.source == WORKSPACE_FILE:
                target.write_text(yaml.safe_dump(workspace_for(HOST, code_server_port), sort_keys=False))
            else:
                shutil.copy(mount.source, target)
        cwd = _local(root, spec.working_dir or image_workdir())
        cwd.mkdir(parents=True, exist_ok=True)
        return root, cwd, env

    services: dict[str, Service] = {}
    root, cwd, env = lay_out("code_server")
    _copy_project(REPO_ROOT / "projects" / "demo", cwd / "projects" / "demo")
    # The image makes the demo's "external database" and image set at build time (the Dockerfile's RUN).
    for script in ("make_shop_db.py", "make_shapes.py"):
        subprocess.run([sys.executable, f"projects/demo/{script}"], cwd=cwd, env=env, check=True,
                       capture_output=True, stdin=subprocess.DEVNULL)
    services["code_server"] = Service("code_server", root, command_for("code_server", host=HOST, port=code_server_port),
                                      cwd, env, base / "code_server.log")
    root, cwd, env = lay_out("webserver")
    services["webserver"] = Service("webserver", root, command_for("webserver", host=HOST, port=webserver_port),
                                    cwd, env, base / "webserver.log")
    root, cwd, env = lay_out("daemon")
    services["daemon"] = Service("daemon", root, command_for("daemon"), cwd, env, base / "daemon.log")

    # A client's DAGSTER_HOME: the same dagster.yaml, nothing else.
    client_home = base / "client_home"
    client_home.mkdir()
    shutil.copy(INSTANCE_FILE, client_home / "dagster.yaml")
    client_env = {k: v for k, v in services["daemon"].env.items() if k.startswith(_OWN_PREFIXES)}
    client_env |= {"DAGSTER_HOME": str(client_home), "DATAPLAT_DAGSTER_URL": f"http://{HOST}:{webserver_port}"}

    deployment = Deployment(
        webserver_url=f"http://{HOST}:{webserver_port}", code_server_port=code_server_port,
        dagster_home=client_home, env=client_env, bucket=bucket, storage_root=storage_root,
        database=database, s3_endpoint_url=s3_server.endpoint_url, services=services,
    )
    try:
        # The code server first, so that the webserver and the daemon find it loaded.
        services["code_server"].start()
        _wait("the code server to load its code location", lambda: _code_server_answers(code_server_port),
              [services["code_server"]], deployment.logs)
        services["webserver"].start()
        services["daemon"].start()
        _wait("the webserver's /server_info", lambda: _http_ok(f"{deployment.webserver_url}/server_info"),
              list(services.values()), deployment.logs)
        yield deployment
    finally:
        for service in reversed(list(services.values())):
            service.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that used the deployment shows the tail of each service's log."""
    outcome = yield
    report = outcome.get_result()
    deployment = getattr(item, "funcargs", {}).get("deployment")
    if report.failed and isinstance(deployment, Deployment):
        report.sections.append(("deployment logs", deployment.logs()))
