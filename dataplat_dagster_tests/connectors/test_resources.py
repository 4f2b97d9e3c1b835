"""Connectors in a code location: one resource per connector under its name, secrets as
EnvVar references, and the test_connectors job run by Dagster."""

import sqlite3

import pytest
from dagster import EnvVar, instance_for_test

from dataplat_dagster import project_definitions
from dataplat_dagster.catalog import edit_catalog
from dataplat_dagster.catalog.models import ProjectCatalog
from dataplat_dagster.connectors.base import CONNECTOR_TAG
from dataplat_dagster.connectors.check_job import CHECK_JOB
from dataplat_dagster.errors import CatalogError
from dataplat_dagster.workspace import Workspace

CONNECTORS = {
    "warehouse": {"type": "sql", "dialect": "postgresql", "host": "db.internal", "username": "etl", "password_env": "WH_PASSWORD", "database": "dw"},
    "local": {"type": "sql", "dialect": "sqlite", "database": "local.db"},
    "drop": {"type": "ftp", "host": "ftp.internal", "username": "u", "password_env": "FTP_PASSWORD", "tls": True},
    "files": {"type": "sftp", "host": "sftp.internal", "username": "u", "private_key": "keys/id", "passphrase_env": "KEY_PASS"},
    "lake": {"type": "s3", "bucket": "lake", "region": "eu-west-1", "access_key_env": "AWS_KEY", "secret_key_env": "AWS_SECRET"},
    "media": {"type": "gcs", "bucket": "media", "gcp_project": "p", "credentials_env": "GCS_JSON"},
}


def make_project(tmp_path, connectors):
    project = Workspace.init(tmp_path / "ws").create_project("lab")
    with edit_catalog(project.catalog_path) as catalog:
        catalog.connectors.update(ProjectCatalog.model_validate({"connectors": connectors}).connectors)
    return project


def test_every_connector_is_a_resource_under_its_name_with_secrets_as_env_vars(tmp_path):
    project = make_project(tmp_path, CONNECTORS)
    defs = project_definitions(project.definitions_file)
    resources = defs.resources
    assert {name: type(resources[name]).__name__ for name in CONNECTORS} == {
        "warehouse": "SqlConnector", "local": "SqlConnector", "drop": "FtpConnector",
        "files": "SftpConnector", "lake": "S3Connector", "media": "GcsConnector",
    }
    assert resources["warehouse"].password == EnvVar("WH_PASSWORD")
    assert resources["lake"].secret_key == EnvVar("AWS_SECRET")
    # The config holds the path as the catalog wrote it; each process resolves it in its project.
    assert resources["local"].database == "local.db"
    assert resources["local"].sqlalchemy_url().database == str(project.dir / "local.db")
    assert resources["files"].private_key == "keys/id"
    assert resources["files"].local_file("keys/id") == str(project.dir / "keys" / "id")
    check_job = defs.resolve_job_def(CHECK_JOB)
    assert {node.name: node.definition.tags[CONNECTOR_TAG] for node in check_job.graph.node_dict.values()} == {
        f"test_{name}": name for name in CONNECTORS
    }


def test_a_connector_cannot_take_a_reserved_resource_key(tmp_path):
    with pytest.raises(Exception, match="taken by a resource of every project"):
        make_project(tmp_path, {"io_manager": CONNECTORS["local"]})


def test_the_check_job_reports_each_connector_as_metadata_and_fails_when_one_fails(tmp_path):
    project = make_project(tmp_path, {"local": CONNECTORS["local"], "gone": {"type": "sql", "dialect": "sqlite", "database": "gone.db"}})
    sqlite3.connect(project.dir / "local.db").execute("CREATE TABLE t (a INTEGER)")
    job = project_definitions(project.definitions_file).resolve_job_def(CHECK_JOB)
    with instance_for_test() as instance:
        ok = job.execute_in_process(run_config={"connector": "local", "write": True}, instance=instance)
        assert ok.success
        [output] = [e for e in ok.all_node_events if e.event_type_value == "STEP_OUTPUT" and e.step_key == "test_local"]
        report = output.event_specific_data.metadata["report"].value
        assert report["ok"] is True
        assert [s["step"] for s in report["steps"]] == ["database", "list", "read", "write", "delete"]

        failed = job.execute_in_process(run_config={"connector": ""}, instance=instance, raise_on_error=False)
        assert not failed.success
        failure = next(e for e in failed.all_node_events if e.event_type_value == "STEP_FAILURE")
        assert failure.step_key == "test_gone"
        assert "database failed" in failure.event_specific_data.error.message
        assert "gone.db' does not exist" in failure.event_specific_data.error.message
        assert {r.status.value for r in instance.get_runs()} == {"SUCCESS", "FAILURE"}


def test_connector_classes_mask_secrets_in_repr(monkeypatch, tmp_path):
    from dataplat_dagster.connectors.registry import open_connector

    monkeypatch.setenv("WH_PASSWORD", "very-secret-value")
    spec = ProjectCatalog.model_validate({"connectors": {"warehouse": CONNECTORS["warehouse"]}}).connectors["warehouse"]
    with open_connector("warehouse", spec, tmp_path) as connector:
        assert connector.password == "very-secret-value"
        assert "very-secret-value" not in repr(connector) and "password='***'" in repr(connector)
        assert "very-secret-value" not in connector.describe()
        error = connector.fail("login refused", RuntimeError("server said very-secret-value is wrong"))
        assert "very-secret-value" not in str(error) and "***" in str(error)


def test_missing_catalog_connector_fields_name_the_connector(tmp_path):
    project = Workspace.init(tmp_path / "ws").create_project("lab")
    project.catalog_path.write_text("connectors:\n  lake:\n    type: s3\n    bucket: lake\n    secret_key: Xy7-value\n")
    with pytest.raises(CatalogError) as raised:
        project_definitions(project.definitions_file)
    assert "connector 'lake'" in str(raised.value)
    assert "put it in an environment variable" in str(raised.value) and "Xy7-value" not in str(raised.value)

