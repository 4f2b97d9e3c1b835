"""The files of deploy/ are valid and agree with each other, without starting anything:
the instance files against Dagster's own config schemas, the compose file against the
instance, the Dockerfile and the workspace, and the compose helpers the deployment tests use."""

import importlib
import json
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.instance.config import dagster_instance_config
from dagster._core.workspace.config_schema import WORKSPACE_CONFIG_SCHEMA
from dagster._serdes.config_class import ConfigurableClassData

from dataplat_dagster_tests.deploy.compose import (
    DAGSTER_SERVICES, DEPLOY_DIR, DOCKERFILE, INSTANCE_FILE, REPO_ROOT, WORKSPACE_FILE, ComposeService,
    command_for, compose_services, environment_for, workspace_for,
)

INSTANCE_FILES = [INSTANCE_FILE, DEPLOY_DIR / "dagster.docker.yaml"]
SECRET_VARIABLE = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIALS", re.IGNORECASE)


def _env_vars(config) -> set[str]:
    """Every variable an instance file reads with {env: NAME}."""
    if isinstance(config, dict):
        if set(config) == {"env"}:
            return {config["env"]}
        return set().union(*(_env_vars(value) for value in config.values())) if config else set()
    if isinstance(config, list):
        return set().union(*(_env_vars(value) for value in config)) if config else set()
    return set()


@pytest.fixture
def instance_env(monkeypatch):
    """Placeholder values for every variable the instance files read."""
    for path in INSTANCE_FILES:
        for name in _env_vars(yaml.safe_load(path.read_text())):
            monkeypatch.setenv(name, "5432" if name.endswith("_PORT") else f"placeholder-{name.lower()}")


@pytest.mark.parametrize("path", INSTANCE_FILES, ids=lambda p: p.name)
def test_instance_file_is_valid_for_dagster(path, tmp_path, instance_env):
    (tmp_path / "dagster.yaml").write_text(path.read_text())
    config, _ = dagster_instance_config(str(tmp_path))  # the instance schema; raises when invalid
    assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert config["telemetry"] == {"enabled": False} and config["nux"] == {"enabled": False}
    assert config["run_monitoring"]["enabled"] is True
    # Each pluggable part's own config against its class's schema.
    for part in ("run_coordinator", "run_launcher", "compute_logs"):
        # ConfigurableClassData resolves the public `dagster.core.*` names as the instance does.
        data = ConfigurableClassData(config[part]["module"], config[part]["class"], "{}")
        module_name, class_name = data.module_name, data.class_name
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            if module_name == "dagster_docker":
                pytest.skip("dagster-docker is not installed here; the image installs it (deploy/Dockerfile)")
            raise
        schema = resolve_to_config_type(getattr(module, class_name).config_type())
        result = process_config(schema, config[part].get("config") or {})
        assert result.success, f"{path.name} {part}: {[e.message for e in result.errors]}"


def test_instance_queues_runs_with_a_limit_per_connector():
    coordinator = yaml.safe_load(INSTANCE_FILE.read_text())["run_coordinator"]
    assert coordinator["class"] == "QueuedRunCoordinator"
    assert {"key": "dataplat/connector", "value": {"applyLimitPerUniqueValue": True}, "limit": 2} in (
        coordinator["config"]["tag_concurrency_limits"])
    for path in INSTANCE_FILES[1:]:  # the variants differ only in their launcher
        variant = yaml.safe_load(path.read_text())
        base = yaml.safe_load(INSTANCE_FILE.read_text())
        assert {k: v for k, v in variant.items() if k != "run_launcher"} == {k: v for k, v in base.items() if k != "run_launcher"}


def test_instance_reads_its_secrets_from_the_environment():
    password = yaml.safe_load(INSTANCE_FILE.read_text())["storage"]["postgres"]["postgres_db"]["password"]
    assert password == {"env": "DAGSTER_POSTGRES_PASSWORD"}


def test_compose_gives_every_dagster_service_what_the_instance_reads():
    compose = compose_services()
    needed = _env_vars(yaml.safe_load(INSTANCE_FILE.read_text()))
    docker_launcher = yaml.safe_load((DEPLOY_DIR / "dagster.docker.yaml").read_text())["run_launcher"]["config"]
    for name in DAGSTER_SERVICES:
        service = compose[name]
        assert needed <= set(service.environment), f"{name} lacks {sorted(needed - set(service.environment))}"
        # The docker launcher passes on variables by name: each must be set where it launches.
        assert set(docker_launcher["env_vars"]) <= set(service.environment), name
        home = service.environment["DAGSTER_HOME"]
        assert any(m.source == INSTANCE_FILE and m.target == f"{home}/dagster.yaml" for m in service.mounts), name
    # The docker launcher's run containers join the compose network by its name.
    networks = yaml.safe_load((DEPLOY_DIR / "docker-compose.yaml").read_text())["networks"]
    assert docker_launcher["network"] in {spec.get("name", key) for key, spec in networks.items()}


def test_compose_takes_every_secret_from_outside():
    for name, service in compose_services().items():
        for variable, value in service.environment.items():
            if SECRET_VARIABLE.search(variable) or variable.startswith(("AWS_ACCESS_KEY", "MINIO_ROOT")):
                assert re.fullmatch(r"\$\{[A-Z_]+(:\?[^}]*)?\}", value), f"{name}: {variable} is written in the compose file"


def test_compose_commands_are_lists_and_the_webserver_loads_the_deploy_workspace():
    compose = compose_services()
    for name in DAGSTER_SERVICES:
        assert compose[name].command and all(isinstance(arg, str) for arg in compose[name].command)
    for name in ("webserver", "daemon"):
        service = compose[name]
        argv = service.command
        workspace = argv[argv.index("-w") + 1]
        assert any(m.source == WORKSPACE_FILE and m.target == f"{service.working_dir}/{workspace}" for m in service.mounts)
    document = yaml.safe_load((DEPLOY_DIR / "docker-compose.yaml").read_text())
    assert all(isinstance(spec.get("command", []), list) for spec in document["services"].values())


def test_compose_shell_string_command_is_refused(tmp_path):
    path = tmp_path / "docker-compose.yaml"
    path.write_text(yaml.safe_dump({"services": {"web": {"command": "dagster-webserver -p 3000"}}}))
    with pytest.raises(ValueError, match="shell-string command"):
        compose_services(path)


def test_dockerfile_runs_the_compose_code_server_with_the_project_extras():
    text = DOCKERFILE.read_text()
    (cmd,) = re.findall(r"^CMD\s+(\[.*\])\s*$", text, flags=re.MULTILINE)
    assert json.loads(cmd) == compose_services()["code_server"].command
    assert re.search(r"^FROM python:3\.11-slim\s*$", text, flags=re.MULTILINE)
    assert re.search(r"^EXPOSE 4000\s*$", text, flags=re.MULTILINE)
    # The extras come from a build argument: its default is what the image installs.
    assert re.search(r'pip install "\.\[\$\{EXTRAS\}\]"', text)
    extras = set(re.search(r"^ARG EXTRAS=([a-z0-9,-]+)\s*$", text, flags=re.MULTILINE).group(1).split(","))
    assert "embeddings-tabular" in extras  # the demo declares tabular embeddings
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"].get("optional-dependencies", {})
    assert extras <= set(declared), f"the Dockerfile installs extras {sorted(extras - set(declared))} that pyproject.toml lacks"


def test_workspace_for_moves_the_code_server_and_stays_valid():
    original = yaml.safe_load(WORKSPACE_FILE.read_text())
    assert original["load_from"] == [{"grpc_server": {"host": "code_server", "port": 4000, "location_name": "demo"}}]
    moved = workspace_for("127.0.0.1", 45678)
    assert moved["load_from"] == [{"grpc_server": {"host": "127.0.0.1", "port": 45678, "location_name": "demo"}}]
    assert process_config(resolve_to_config_type(WORKSPACE_CONFIG_SCHEMA), moved).success
    assert yaml.safe_load(WORKSPACE_FILE.read_text()) == original  # the file itself is untouched


def test_command_for_substitutes_options_and_uses_this_environment():
    compose = compose_services()
    argv = command_for("code_server", host="127.0.0.1", port=4123)
    assert argv[0] == str(Path(sys.executable).with_name("dagster"))
    assert argv[1:] == ["code-server", "start", "-h", "127.0.0.1", "-p", "4123",
                        *compose["code_server"].command[7:]]
    assert command_for("webserver", h="127.0.0.1", p=3001)[2:6] == ["127.0.0.1", "-p", "3001", "-w"]
    assert command_for("daemon", workspace="/elsewhere/workspace.yaml")[-1] == "/elsewhere/workspace.yaml"
    with pytest.raises(KeyError, match="no option"):
        command_for("daemon", port=1)
    with pytest.raises(FileNotFoundError):
        command_for(ComposeService("x", ["no-such-program", "-p", "1"], {}), port=2)


def test_environment_for_requires_the_secrets_compose_expects():
    with pytest.raises(KeyError, match="DAGSTER_POSTGRES_PASSWORD"):
        environment_for("daemon")
    with pytest.raises(KeyError, match="sets no"):
        environment_for("daemon", NOT_A_COMPOSE_VARIABLE="x")
    env = environment_for("daemon", DAGSTER_POSTGRES_PASSWORD="pw", AWS_ACCESS_KEY_ID="id", AWS_SECRET_ACCESS_KEY="key")
    assert env["DAGSTER_POSTGRES_PASSWORD"] == "pw" and env["DAGSTER_POSTGRES_HOST"] == "postgres"
    service = ComposeService("x", [], {"A": "${A:-fallback}", "B": "${B:?needed}"})
    assert environment_for(service, B="b") == {"A": "fallback", "B": "b"}
