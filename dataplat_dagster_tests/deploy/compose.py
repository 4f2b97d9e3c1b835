"""deploy/docker-compose.yaml as the tests use it: each service's command and environment.

There is no Docker engine here, so the deployment tests start the processes the compose file
declares, on loopback, from the same files. Everything they run comes from this module, so
"each compose service's command is one the suite ran" holds by construction:

- `compose_services()` parses the compose file: per service its command (a list, exactly as
  written), environment (anchors and merge keys resolved, `${VAR...}` left as written),
  working directory and mounted files.
- `command_for(service, **substitutions)` is the argv to run here: the program from this
  virtual environment, option values replaced (`host="127.0.0.1"`, `port=4123`, or any other
  option of the command by its long or short name, `-` written `_`).
- `environment_for(service, **values)` is the service's environment with the given values in
  place of the compose ones; a `${VAR:?...}` that is not replaced is an error, so a secret the
  compose file expects from outside is never silently missing.
- `workspace_for(host, port)` is deploy/workspace.yaml with its gRPC server moved to host:port.
"""

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"
COMPOSE_FILE = DEPLOY_DIR / "docker-compose.yaml"
WORKSPACE_FILE = DEPLOY_DIR / "workspace.yaml"
INSTANCE_FILE = DEPLOY_DIR / "dagster.yaml"
DOCKERFILE = DEPLOY_DIR / "Dockerfile"

# The services built from this repository's image (the others are stock images: PostgreSQL,
# the S3 store), which the tests replace by their own servers.
DAGSTER_SERVICES = ("code_server", "webserver", "daemon")

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


@dataclass(frozen=True)
class Mount:
    """A bind mount `./SOURCE:TARGET[:ro]`: SOURCE relative to deploy/, TARGET in the container."""

    source: Path
    target: str


@dataclass(frozen=True)
class ComposeService:
    name: str
    command: list[str]
    environment: dict[str, str]
    working_dir: str | None = None
    mounts: list[Mount] = field(default_factory=list)


def compose_services(path: Path = COMPOSE_FILE) -> dict[str, ComposeService]:
    """Every service of the compose file, by name."""
    document = yaml.safe_load(path.read_text())
    services = {}
    for name, spec in document["services"].items():
        command = spec.get("command", [])
        if isinstance(command, str):
            raise ValueError(f"{path}: service {name!r} has a shell-string command; write it as a YAML list")
        services[name] = ComposeService(
            name=name,
            command=[str(arg) for arg in command],
            environment=_environment(spec.get("environment") or {}),
            working_dir=spec.get("working_dir"),
            mounts=[m for volume in spec.get("volumes") or [] if (m := _bind_mount(path.parent, volume))],
        )
    return services


def _environment(environment) -> dict[str, str]:
    if isinstance(environment, list):  # the `- KEY=VALUE` form
        environment = dict(item.split("=", 1) for item in environment)
    return {str(key): "" if value is None else str(value) for key, value in environment.items()}


def _bind_mount(base: Path, volume) -> Mount | None:
    if not isinstance(volume, str) or not volume.startswith((".", "/")):
        return None  # a named volume (database files), not a file from this repository
    source, target = volume.split(":")[:2]
    return Mount(source=(base / source).resolve(), target=target)


def command_for(service: str | ComposeService, **substitutions) -> list[str]:
    """The service's command as an argv to run here.

    The program becomes the one in this virtual environment (`dagster` → .venv/bin/dagster).
    Each keyword names an option of the command (`host` or `h`, `port` or `p`,
    `working_directory` or `d`, ...) and gives its new value; an option the command does not
    have is an error, so a substitution never silently does nothing.
    """
    spec = service if isinstance(service, ComposeService) else compose_services()[service]
    argv = list(spec.command)
    if not argv:
        raise ValueError(f"service {spec.name!r} has no command")
    program = Path(sys.executable).with_name(argv[0])
    if not program.exists():
        raise FileNotFoundError(f"service {spec.name!r} runs {argv[0]!r}, which this environment lacks ({program})")
    argv[0] = str(program)
    for option, value in substitutions.items():
        names = {f"--{option.replace('_', '-')}"} if len(option) > 1 else {f"-{option}"}
        names |= _ALIASES.get(option, set())
        positions = [i for i, arg in enumerate(argv[:-1]) if arg in names]
        if not positions:
            raise KeyError(f"service {spec.name!r}: its command has no option {sorted(names)} to substitute ({spec.command})")
        for i in positions:
            argv[i + 1] = str(value)
    return argv


# Short and long spellings of the options the deployed commands use (dagster code-server
# start, dagster-webserver, dagster-daemon run).
_ALIASES = {
    "host": {"-h"}, "h": {"--host"},
    "port": {"-p"}, "p": {"--port"},
    "python_file": {"-f"}, "f": {"--python-file"},
    "working_directory": {"-d"}, "d": {"--working-directory"},
    "workspace": {"-w"}, "w": {"--workspace"},
}


def environment_for(service: str | ComposeService, **values: str) -> dict[str, str]:
    """The service's environment, with `values` (by variable name) in place of the compose ones.

    The remaining values may use `${VAR:-default}` (the default is taken); `${VAR}` and
    `${VAR:?message}` are values the compose file expects from the operator (secrets): each
    must be given in `values`, else this raises with the variable's name.
    """
    spec = service if isinstance(service, ComposeService) else compose_services()[service]
    unknown = sorted(set(values) - set(spec.environment))
    if unknown:
        raise KeyError(f"service {spec.name!r} sets no {unknown} (its variables: {sorted(spec.environment)})")
    resolved = {}
    for name, value in spec.environment.items():
        if name in values:
            resolved[name] = str(values[name])
        else:
            resolved[name] = _INTERPOLATION.sub(lambda m, name=name: _interpolate(spec.name, name, m), value)
    return resolved


def _interpolate(service: str, variable: str, match: re.Match) -> str:
    operator, default = match.group(2), match.group(3)
    if operator in (":-", "-"):
        return default
    raise KeyError(f"service {service!r}: {variable} comes from ${{{match.group(1)}}} in the compose file; give its value")


def image_workdir(path: Path = DOCKERFILE) -> str:
    """The image's WORKDIR: the working directory of a service whose compose entry sets none."""
    workdirs = re.findall(r"^WORKDIR\s+(\S+)", path.read_text(), flags=re.MULTILINE)
    if not workdirs:
        raise ValueError(f"{path} sets no WORKDIR")
    return workdirs[-1]


def workspace_for(host: str, port: int, path: Path = WORKSPACE_FILE) -> dict:
    """deploy/workspace.yaml with every gRPC server at host:port (as a dict to dump as YAML)."""
    workspace = yaml.safe_load(path.read_text())
    servers = [entry["grpc_server"] for entry in workspace["load_from"] if "grpc_server" in entry]
    if not servers:
        raise ValueError(f"{path} lists no grpc_server")
    for server in servers:
        server["host"], server["port"] = host, int(port)
    return workspace
