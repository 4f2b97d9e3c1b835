"""A `dataplat` CLI client of a running deployment (conftest.py's `Deployment`), on "another machine".

The client has its own folder: a copy of the repository's workspace (workspace.yaml and
projects/demo, without local state) as its working directory, and the deployment's
DAGSTER_HOME (a folder holding only deploy/dagster.yaml). It runs the virtual environment's
`dataplat` binary as a subprocess with the deployment's client environment (PostgreSQL, the
bucket, DATAPLAT_STORAGE_ROOT, DATAPLAT_DAGSTER_URL), so its runs go through the webserver
and the queue. Also here: what a test or the bench checks the deployment with (GraphQL
launches and run states, the bucket's objects, PostgreSQL's runs table).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import boto3
import psycopg2

from dataplat_dagster_tests.deploy.compose import REPO_ROOT

DATAPLAT = str(Path(sys.executable).with_name("dataplat"))
PROJECT = "demo"
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""

RUN_STATUS = """
query($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status }
    ... on Error { message }
  }
}
"""


@dataclass
class CliResult:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str
    wall_s: float

    def json(self):
        return json.loads(self.stdout)


class DeploymentClient:
    def __init__(self, deployment, root: Path):
        self.deployment = deployment
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / "workspace.yaml", root / "workspace.yaml")
        source = REPO_ROOT / "projects" / PROJECT
        shutil.copytree(source, self.project_dir,
                        ignore=shutil.ignore_patterns("storage", "external", "__pycache__", "*.pyc", ".*.lock"))
        self.env = deployment.client_env()

    @property
    def project_dir(self) -> Path:
        return self.root / "projects" / PROJECT

    @property
    def code_server_project_dir(self) -> Path:
        return self.deployment.services["code_server"].cwd / "projects" / PROJECT

    @property
    def shop_db(self) -> Path:
        """The demo's SQLite "external database", in the code server's copy of the project."""
        return self.code_server_project_dir / "external" / "shop.db"

    # --- the CLI ------------------------------------------------------------------------

    def start(self, *args: str) -> subprocess.Popen:
        """``dataplat ARGS`` started in the client's folder, not waited for."""
        return subprocess.Popen([DATAPLAT, *args], cwd=self.root, env=self.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run(self, *args: str, check: bool = True, timeout: float = 180) -> CliResult:
        started = time.monotonic()
        proc = subprocess.run([DATAPLAT, *args], cwd=self.root, env=self.env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        result = CliResult(args, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"dataplat {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}\n{self.deployment.logs()}"
            )
        return result

    def datasets(self) -> dict[str, dict]:
        return {item["name"]: item for item in self.run("dataset", "list", "--json").json()}

    # --- GraphQL ------------------------------------------------------------------------

    def launch_job(self, job: str, run_config: dict | None = None) -> str:
        params = {"selector": {"repositoryLocationName": PROJECT, "repositoryName": "__repository__", "jobName": job},
                  "runConfigData": run_config or {}}
        answer = self.deployment.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
        assert answer["__typename"] == "LaunchRunSuccess", answer
        return answer["run"]["runId"]

    def run_status(self, run_id: str) -> str:
        answer = self.deployment.graphql(RUN_STATUS, {"runId": run_id})["runOrError"]
        assert answer["__typename"] == "Run", answer
        return answer["status"]

    def wait_for_run(self, run_id: str, timeout: float = 120) -> str:
        """The run's final status through GraphQL's runOrError."""
        deadline = time.monotonic() + timeout
        while (status := self.run_status(run_id)) not in FINISHED:
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} still {status} after {timeout:.0f} s\n{self.deployment.logs()}")
            time.sleep(0.5)
        return status

    # --- the bucket and PostgreSQL --------------------------------------------------------

    def s3(self):
        env = self.deployment.env
        return boto3.client("s3", endpoint_url=self.deployment.s3_endpoint_url, region_name=env["AWS_DEFAULT_REGION"],
                            aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])

    def project_prefix(self) -> str:
        """The demo's storage root as a key prefix of the bucket (``projects/demo/``)."""
        root = self.deployment.storage_root.removeprefix(f"s3://{self.deployment.bucket}/")
        return f"{root}/{PROJECT}/"

    def bucket_keys(self, prefix: str = "") -> set[str]:
        """The keys under ``prefix`` of the demo's storage root, relative to it."""
        base = self.project_prefix() + prefix
        keys = set()
        for page in self.s3().get_paginator("list_objects_v2").paginate(Bucket=self.deployment.bucket, Prefix=base):
            keys |= {item["Key"][len(self.project_prefix()):] for item in page.get("Contents", [])}
        return keys

    def runs_table(self) -> list[dict]:
        """PostgreSQL's ``runs`` rows (run id, job, status, tags), read directly."""
        env = self.deployment.env
        conn = psycopg2.connect(host=env["DAGSTER_POSTGRES_HOST"], port=env["DAGSTER_POSTGRES_PORT"],
                                user=env["DAGSTER_POSTGRES_USER"], password=env["DAGSTER_POSTGRES_PASSWORD"],
                                dbname=env["DAGSTER_POSTGRES_DB"], connect_timeout=5)
        with closing(conn), conn.cursor() as cur:
            cur.execute("SELECT run_id, pipeline_name, status, start_time, end_time FROM runs ORDER BY create_timestamp")
            columns = [c.name for c in cur.description]
            rows = [dict(zip(columns, row)) for row in cur.fetchall()]
            cur.execute("SELECT run_id, key, value FROM run_tags")
            for run_id, key, value in cur.fetchall():
                for row in rows:
                    if row["run_id"] == run_id:
                        row.setdefault("tags", {})[key] = value
        return rows
