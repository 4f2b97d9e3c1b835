"""`dataplat connector ...` end to end, and the test_connectors job run by Dagster, with a
grep of everything printed and stored for the password."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

from dataplat_dagster.catalog import load_catalog
from dataplat_dagster_tests.servers.ports import free_port

PASSWORD_VAR = "SHOP_WAREHOUSE_PASSWORD"


def create_pg_connector(ws, server, name="warehouse", port=None):
    ws.run(
        "connector", "create", "sql", name, "--dialect", "postgresql", "--host", server.host,
        "--port", str(port or server.port), "--username", server.username, "--password-env", PASSWORD_VAR,
        "--database", server.database, "--description", "the analytics warehouse",
    )


def run_check_job(ws, env, config: str, job: str = "test_connectors"):
    """Launch a job of the project the way CI does: `dagster job execute`."""
    config_file = ws.root / "check.yaml"
    config_file.write_text(config)
    definitions = ws.project_dir / "definitions.py"
    return subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "job", "execute", "-f", str(definitions), "-d", str(ws.project_dir),
         "-j", job, "-c", str(config_file)],
        cwd=ws.root, env={**os.environ, "DAGSTER_HOME": str(ws.root), **env}, capture_output=True, text=True, timeout=240,
    )


def test_create_show_test_and_nothing_anywhere_holds_the_password(cli_workspace, postgres_server):
    ws, secret = cli_workspace, postgres_server.password
    env = {PASSWORD_VAR: secret}
    outputs = []
    create_pg_connector(ws, postgres_server)
    create_pg_connector(ws, postgres_server, name="broken", port=free_port())

    catalog = yaml.safe_load((ws.project_dir / "dataplat.yaml").read_text())
    assert catalog["connectors"]["warehouse"]["password_env"] == PASSWORD_VAR
    assert catalog["connectors"]["warehouse"]["type"] == "sql"

    shown = ws.run("connector", "show", "warehouse", env=env)
    assert f"*** (from ${PASSWORD_VAR}, set)" in shown.stdout
    shown_json = ws.run("connector", "show", "warehouse", "--json", env=env).json()
    assert shown_json["secrets"] == {"password": {"env": PASSWORD_VAR, "set": True, "value": "***"}}
    assert shown_json["address"] == f"postgresql://{postgres_server.username}@{postgres_server.host}:{postgres_server.port}/{postgres_server.database}"
    listed = ws.run("connector", "list", "--json").json()
    assert [(c["name"], c["type"], c["used_by"]) for c in listed] == [("broken", "sql", []), ("warehouse", "sql", [])]

    passed = ws.run("connector", "test", "warehouse", "--write", env=env)
    assert "PASS  write" in passed.stdout and "Connector 'warehouse' passed (with write)." in passed.stdout
    report = ws.run("connector", "test", "warehouse", "--json", env=env).json()
    assert report["ok"] is True and report["failed_step"] is None
    assert [s["step"] for s in report["steps"]] == ["resolve", "connect", "authenticate", "list", "read"]

    wrong = ws.run("connector", "test", "warehouse", "--json", env={PASSWORD_VAR: secret + "-wrong"}, check=False)
    assert wrong.code == 1 and wrong.json()["failed_step"] == "authenticate"
    assert "password authentication failed" in wrong.stderr and "Traceback" not in wrong.stderr

    both = ws.run("connector", "test", "--all", "--json", env=env, check=False)
    assert both.code == 1
    assert {c["connector"]: c["failed_step"] for c in both.json()["connectors"]} == {"broken": "connect", "warehouse": None}

    unset = ws.run("connector", "test", "warehouse", check=False)
    assert unset.code == 1 and f"{PASSWORD_VAR}, which is not set" in unset.stderr

    job = run_check_job(ws, env, "connector: warehouse\nwrite: true\n")
    assert job.returncode == 0, job.stdout + job.stderr
    failed_job = run_check_job(ws, env, "connector: broken\n")
    assert failed_job.returncode != 0
    assert "broken: connect failed" in failed_job.stdout + failed_job.stderr

    with ws.instance() as instance:
        runs = instance.get_runs()
        assert sorted(run.status.value for run in runs) == ["FAILURE", "SUCCESS"]
        records = [r for run in runs for r in instance.all_logs(run.run_id)]
        assert any("warehouse: write passed" in (r.user_message or "") for r in records)

    outputs += [passed.stdout, passed.stderr, wrong.stdout, wrong.stderr, both.stdout, job.stdout, job.stderr, failed_job.stdout, failed_job.stderr, shown.stdout]
    for text in outputs:
        assert secret not in text
    for path in ws.root.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"the password is in {path}"


def test_plain_secrets_and_misplaced_flags_are_refused(cli_workspace):
    plain = cli_workspace.run("connector", "create", "ftp", "files", "--host", "h", "--password", "hunter2", check=False)
    assert plain.code == 2 and "--password-env VAR" in plain.stderr
    misplaced = cli_workspace.run("connector", "create", "s3", "bucket", "--bucket", "data", "--tls", check=False)
    assert misplaced.code == 2 and "--tls does not apply to a s3 connector" in misplaced.stderr
    no_host = cli_workspace.run("connector", "create", "sql", "db", "--dialect", "postgresql", check=False)
    assert no_host.code == 2 and "needs a host" in no_host.stderr
    bad_var = cli_workspace.run("connector", "create", "sql", "db", "--dialect", "mysql", "--host", "h", "--password-env", "p@ss word", check=False)
    assert bad_var.code == 2 and "--password-env" in bad_var.stderr and "not an environment variable name" in bad_var.stderr
    assert load_catalog(cli_workspace.project_dir / "dataplat.yaml").connectors == {}


def test_edit_unset_and_delete(cli_workspace):
    ws = cli_workspace
    ws.run("connector", "create", "sftp", "files", "--host", "files.example.com", "--username", "etl", "--private-key", "keys/id_ed25519")
    ws.run("connector", "edit", "files", "--port", "2222", "--root", "/upload", "--unset", "private-key")
    spec = load_catalog(ws.project_dir / "dataplat.yaml").connectors["files"]
    assert (spec.port, spec.root, spec.private_key, spec.username) == (2222, "/upload", None, "etl")
    assert "sftp://etl@files.example.com:2222/upload" in ws.run("connector", "show", "files").stdout

    refused = ws.run("connector", "edit", "files", "--bucket", "x", check=False)
    assert refused.code == 2 and "--bucket does not apply to a sftp connector" in refused.stderr
    duplicate = ws.run("connector", "create", "sftp", "files", "--host", "h", check=False)
    assert duplicate.code == 1 and "already exists" in duplicate.stderr

    unconfirmed = ws.run("connector", "delete", "files", check=False)
    assert unconfirmed.code == 1 and "--yes" in unconfirmed.stderr
    ws.run("connector", "delete", "files", "--yes")
    assert load_catalog(ws.project_dir / "dataplat.yaml").connectors == {}
    missing = ws.run("connector", "delete", "files", "--yes", check=False)
    assert missing.code == 1 and "has no connector 'files'" in missing.stderr


def test_a_connector_in_use_cannot_be_deleted(cli_workspace):
    ws = cli_workspace
    sqlite3.connect(ws.project_dir / "shop.db").execute("CREATE TABLE orders (id INTEGER)")
    ws.run("connector", "create", "sql", "shop_db", "--dialect", "sqlite", "--database", "shop.db")
    ws.run("datasource", "create", "orders", "--connector", "shop_db", "--table", "orders")
    refused = ws.run("connector", "delete", "shop_db", "--yes", check=False)
    assert refused.code == 1 and "Connector 'shop_db' is used by datasource 'orders'" in refused.stderr
    assert ws.run("connector", "list", "--json").json()[0]["used_by"] == ["datasource 'orders'"]
    ws.run("datasource", "delete", "orders", "--yes")
    ws.run("connector", "delete", "shop_db", "--yes")
    assert load_catalog(ws.project_dir / "dataplat.yaml").connectors == {}


USERS_JOB = """
import time

from dagster import Definitions, job, op

from dataplat_dagster import project_definitions
from dataplat_dagster.connectors.base import connector_tags


def reader(index):
    @op(name=f"read_{index}", required_resource_keys={"warehouse"}, tags=connector_tags("warehouse"))
    def read(context):
        context.resources.warehouse.read_arrow("SELECT * FROM t").read_all()
        time.sleep(2)  # long enough that two unlimited steps would overlap

    return read


@job
def nightly():
    for index in range(3):
        reader(index)()


defs = Definitions.merge(project_definitions(__file__), Definitions(jobs=[nightly]))
"""


def test_max_concurrency_caps_the_steps_that_use_a_connector(cli_workspace):
    """A user's job whose three ops use one connector with --max-concurrency 1: Dagster's
    tag concurrency limit lets only one run at a time."""
    ws = cli_workspace
    sqlite3.connect(ws.project_dir / "warehouse.db").execute("CREATE TABLE t (a INTEGER)")
    ws.run("connector", "create", "sql", "warehouse", "--dialect", "sqlite", "--database", "warehouse.db", "--max-concurrency", "1")
    (ws.project_dir / "definitions.py").write_text(USERS_JOB)
    job = run_check_job(ws, {}, "{}", job="nightly")
    assert job.returncode == 0, job.stdout + job.stderr
    with ws.instance() as instance:
        [run] = instance.get_runs()
        windows = {}
        for record in instance.all_logs(run.run_id):
            event = record.dagster_event
            if event and event.event_type_value in ("STEP_START", "STEP_SUCCESS"):
                windows.setdefault(event.step_key, []).append(record.timestamp)
    assert sorted(windows) == ["read_0", "read_1", "read_2"]
    spans = sorted(windows.values())
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end, f"two steps on one connector ran at once: {windows}"
