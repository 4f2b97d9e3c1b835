"""deploy/helm/values.yaml uses only keys of the `dagster/dagster` chart and holds no secret.

Offline: the chart's key structure is the committed chart_values.yaml (a trimmed copy of the
chart's default values; its header says where it comes from). Helm ignores unknown keys
silently, so a misspelled key would quietly fall back to the chart's default: this test is
the only thing that notices.
"""

import difflib
import re
from pathlib import Path

import yaml

from dataplat_dagster_tests.deploy.compose import DEPLOY_DIR, INSTANCE_FILE, compose_services, image_workdir

VALUES_FILE = DEPLOY_DIR / "helm" / "values.yaml"
CHART_FILE = Path(__file__).with_name("chart_values.yaml")

# Key names that hold a secret when their value is a literal. Names of Kubernetes Secrets
# (`postgresqlSecretName`, the `name` of an `envSecrets` entry) are not secrets.
SECRET_NAME = re.compile(r"pass(word|wd)?\b|password|secret|token|credential|private.?key|access.?key", re.IGNORECASE)
SECRET_VALUE = re.compile(r"AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----")


def _dotted(path: tuple) -> str:
    return ".".join(str(part) for part in path) or "(top)"


def unknown_keys(values, chart, path: tuple = ()) -> list[str]:
    """Where `values` uses a key the chart does not have (or a mapping where it has a scalar).

    In the chart, `{}`, `[]` and `~` are free-form (passed through to Kubernetes or Dagster);
    the entries of a list are checked against the chart's first (example) entry.
    """
    if chart is None or chart == {} or chart == []:
        return []
    if isinstance(values, dict):
        if not isinstance(chart, dict):
            return [f"{_dotted(path)}: a mapping, where the chart has {chart!r}"]
        problems = []
        for key, value in values.items():
            if key not in chart:
                close = difflib.get_close_matches(str(key), [str(k) for k in chart], n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"{_dotted(path + (key,))}: not a key of the chart{hint}")
            else:
                problems += unknown_keys(value, chart[key], path + (key,))
        return problems
    if isinstance(values, list):
        if not isinstance(chart, list):
            return [f"{_dotted(path)}: a list, where the chart has {chart!r}"]
        problems = []
        for index, entry in enumerate(values):
            problems += unknown_keys(entry, chart[0], path + (f"[{index}]",))
        return problems
    if isinstance(chart, (dict, list)):
        return [f"{_dotted(path)}: {values!r}, where the chart has a {type(chart).__name__}"]
    return []


def literal_secrets(values, path: tuple = ()) -> list[str]:
    """Where `values` writes a secret itself instead of naming a Kubernetes Secret."""
    problems = []
    if isinstance(values, dict):
        # An environment variable entry: {name: AWS_SECRET_ACCESS_KEY, value: "..."}.
        name, value = values.get("name"), values.get("value")
        if isinstance(name, str) and SECRET_NAME.search(name) and value not in (None, ""):
            problems.append(f"{_dotted(path)}: environment variable {name} has a literal value; use envSecrets")
        for key, item in values.items():
            here = path + (key,)
            if (isinstance(item, (str, int, float)) and not isinstance(item, bool) and item != ""
                    and SECRET_NAME.search(str(key))
                    and not str(key).endswith(("SecretName", "secretName"))):
                problems.append(f"{_dotted(here)}: a literal secret value; reference a Kubernetes Secret instead")
            problems += literal_secrets(item, here)
    elif isinstance(values, list):
        for index, item in enumerate(values):
            problems += literal_secrets(item, path + (f"[{index}]",))
    elif isinstance(values, str) and SECRET_VALUE.search(values):
        problems.append(f"{_dotted(path)}: looks like a key or credential")
    return problems


def _values() -> dict:
    return yaml.safe_load(VALUES_FILE.read_text())


def _chart() -> dict:
    return yaml.safe_load(CHART_FILE.read_text())


def test_values_use_only_keys_of_the_chart():
    assert unknown_keys(_values(), _chart()) == []


def test_fixture_names_its_source():
    header = CHART_FILE.read_text().split("\n\n", 1)[0]
    assert "dagster-io/dagster" in header and "helm/dagster/values.yaml" in header
    assert re.search(r"commit\s*\n?#?\s*[0-9a-f]{40}", header)


def test_walker_rejects_misspelled_and_misplaced_keys():
    chart = {
        "dagsterDaemon": {"runCoordinator": {"enabled": True, "config": {"queuedRunCoordinator": {"maxConcurrentRuns": None}}},
                          "resources": {}},
        "deployments": [{"name": "x", "port": 3030, "envSecrets": [{"name": "secret"}]}],
        "telemetry": {"enabled": True},
    }
    assert unknown_keys({"telemetry": {"enabled": False}}, chart) == []
    # Free-form subtrees take anything.
    assert unknown_keys({"dagsterDaemon": {"resources": {"limits": {"memory": "1Gi"}}}}, chart) == []

    assert unknown_keys({"telemetri": {"enabled": False}}, chart) == [
        "telemetri: not a key of the chart (did you mean 'telemetry'?)"]
    assert unknown_keys({"dagsterDaemon": {"runCoordinator": {"config": {"queuedRunCoordinator": {"maxConcurentRuns": 4}}}}},
                        chart) == ["dagsterDaemon.runCoordinator.config.queuedRunCoordinator.maxConcurentRuns: "
                                   "not a key of the chart (did you mean 'maxConcurrentRuns'?)"]
    assert unknown_keys({"deployments": [{"name": "a", "prot": 4000}]}, chart) == [
        "deployments.[0].prot: not a key of the chart (did you mean 'port'?)"]
    assert unknown_keys({"deployments": [{"envSecrets": [{"nmae": "aws"}]}]}, chart) == [
        "deployments.[0].envSecrets.[0].nmae: not a key of the chart (did you mean 'name'?)"]
    assert unknown_keys({"telemetry": False}, chart) == ["telemetry: False, where the chart has a dict"]
    assert unknown_keys({"deployments": {"name": "a"}}, chart)[0].startswith("deployments: a mapping, where the chart has")


def test_no_literal_secret_in_the_values():
    assert literal_secrets(_values()) == []
    values = _values()
    assert values["generatePostgresqlPasswordSecret"] is False
    assert "postgresqlPassword" not in values["postgresql"]
    assert values["global"]["postgresqlSecretName"]


def test_secret_check_catches_literals():
    assert literal_secrets({"postgresql": {"postgresqlPassword": "hunter2"}}) == [
        "postgresql.postgresqlPassword: a literal secret value; reference a Kubernetes Secret instead"]
    assert literal_secrets({"env": [{"name": "AWS_SECRET_ACCESS_KEY", "value": "abc"}]}) == [
        "env.[0]: environment variable AWS_SECRET_ACCESS_KEY has a literal value; use envSecrets"]
    assert literal_secrets({"env": [{"name": "NOTE", "value": "AKIAABCDEFGHIJKLMNOP"}]}) == [
        "env.[0].value: looks like a key or credential"]
    # Naming a Secret, or leaving the value empty, is fine.
    assert literal_secrets({"global": {"postgresqlSecretName": "pg"}, "envSecrets": [{"name": "aws"}],
                            "postgresql": {"postgresqlPassword": ""}}) == []


def test_credentials_come_from_secrets_wherever_aws_is_reached():
    values = _values()
    aws = {"name": "dataplat-aws"}
    assert aws in values["dagsterWebserver"]["envSecrets"]
    assert aws in values["dagsterDaemon"]["envSecrets"]
    assert aws in values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert aws in deployment["envSecrets"]


def test_values_agree_with_the_compose_deployment():
    values = _values()
    instance = yaml.safe_load(INSTANCE_FILE.read_text())
    queued = values["dagsterDaemon"]["runCoordinator"]
    assert queued["type"] == instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert (queued["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
            == instance["run_coordinator"]["config"]["tag_concurrency_limits"])
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["computeLogManager"]["type"] == instance["compute_logs"]["class"] == "S3ComputeLogManager"
    assert values["postgresql"]["postgresqlScheme"] == instance["storage"]["postgres"]["postgres_db"]["scheme"]

    # The same code location as the compose code server: file, working directory, name, port.
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    command = compose_services()["code_server"].command
    args = deployment["codeServerArgs"]

    def option(argv, *names):
        return next(argv[i + 1] for i, arg in enumerate(argv) if arg in names)

    # The chart sets no working directory: the paths are the compose ones under the image's WORKDIR.
    assert option(args, "-f") == f"{image_workdir()}/{option(command, '-f')}"
    assert option(args, "-d") == f"{image_workdir()}/{option(command, '-d')}"
    assert option(args, "--location-name") == option(command, "--location-name") == deployment["name"]
    assert str(deployment["port"]) == option(command, "-p", "--port")
