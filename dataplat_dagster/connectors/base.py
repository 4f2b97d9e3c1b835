"""The base of every connector resource: its name, time-outs, retries and secret masking.

Connectors are Dagster ``ConfigurableResource``s; each project's code location has one per
catalog entry, under the connector's name. Secret fields receive ``EnvVar`` references, so
Dagster's UI and run config show the variable's name; ``repr`` masks them too.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Optional, TypeVar

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from dataplat_dagster.connectors.checks import CheckReport
from dataplat_dagster.connectors.filestore import FileStore
from dataplat_dagster.connectors.retry import with_retries
from dataplat_dagster.connectors.secrets import MASK, redact
from dataplat_dagster.errors import ConnectorError

T = TypeVar("T")

# Op and run tag that names the connector a step uses, so that a deployment can cap the
# load on one server with Dagster's tag concurrency limits (see the README).
CONNECTOR_TAG = "dataplat/connector"


def connector_tags(name: str) -> dict[str, str]:
    """The op tags of a step that works through connector ``name``."""
    return {CONNECTOR_TAG: name}


def connector_executor(connectors: dict):
    """The code location's default executor: Dagster's multiprocess executor, with a tag
    concurrency limit for each connector that sets ``max_concurrency``."""
    from dagster import multiprocess_executor

    limits = [
        {"key": CONNECTOR_TAG, "value": name, "limit": spec.max_concurrency}
        for name, spec in sorted(connectors.items())
        if spec.max_concurrency
    ]
    return multiprocess_executor.configured({"tag_concurrency_limits": limits}) if limits else multiprocess_executor


def env_reference(var: Optional[str]):
    """The value to give a secret field: Dagster's ``EnvVar`` of the variable, or None."""
    return EnvVar(var) if var else None


def project_path(project_dir: Path, path: Optional[str]) -> Optional[str]:
    """A file named in the catalog (key, known_hosts, SQLite file), as the catalog names it:
    a relative path stays relative (resolved against the project's folder where it is used,
    by ``ConnectorResource.local_file``), so the resource's config holds no host's path."""
    return path or None


class ConnectorResource(ConfigurableResource):
    """Settings shared by every connector type."""

    connector_name: str = Field(description="The connector's name in the project's catalog.")
    project: Optional[str] = Field(None, description="The project whose folder relative file paths start at.")
    timeout_s: float = Field(10.0, description="Seconds to wait for the server to connect or answer.")
    retries: int = Field(3, description="Attempts for an operation that fails with a transient network error.")
    backoff_s: float = Field(0.5, description="Wait before the first retry; doubled before each further one.")

    #: Names of the fields that hold secret values (resolved from environment variables).
    secret_fields: ClassVar[tuple[str, ...]] = ()
    #: The connector type, as in the catalog.
    connector_type: ClassVar[str] = ""

    @staticmethod
    def common_fields(name: str, spec, project_dir: Path) -> dict:
        """The fields every type's ``from_spec`` maps the same way."""
        from dataplat_dagster.workspace import Project

        project = Project(project_dir.name, Path(project_dir)).remember()
        return {"connector_name": name, "project": project.name, "timeout_s": spec.timeout_s,
                "retries": spec.retries, "backoff_s": spec.backoff_s}

    def local_file(self, path: Optional[str]) -> Optional[str]:
        """A file the catalog names, on this host: ``~`` expanded, a relative path from the
        project's folder in this process (the code server's, or a run's on another machine)."""
        if not path:
            return None
        expanded = Path(path).expanduser()
        if expanded.is_absolute() or not self.project:
            return str(expanded)
        from dataplat_dagster.workspace import Project

        return str((Project.loaded(self.project).dir / expanded).resolve())

    @abstractmethod
    def check(self, write: bool = False) -> CheckReport:
        """Test the connector step by step; see ``checks``."""

    def secret_values(self) -> list[str]:
        values = []
        for name in self.secret_fields:
            value = getattr(self, name, None)
            if isinstance(value, str) and not isinstance(value, EnvVar):
                values.append(value)
        return values

    def redact(self, text: str) -> str:
        return redact(text, self.secret_values())

    def fail(self, message: str, error: BaseException | None = None) -> ConnectorError:
        """A ``ConnectorError`` naming this connector, with the cause's text scrubbed of secrets."""
        detail = f": {error}" if error is not None else ""
        return ConnectorError(self.redact(f"Connector {self.connector_name!r}: {message}{detail}"))

    def retrying(self, action: Callable[[], T], what: str, before_retry: Callable[[], None] | None = None) -> T:
        return with_retries(action, attempts=self.retries, backoff_s=self.backoff_s, what=f"{self.connector_name}: {what}",
                            before_retry=before_retry, secrets=self.secret_values())

    def __repr_args__(self):
        for key, value in super().__repr_args__():
            yield key, (MASK if key in self.secret_fields and value is not None else value)


class FileStoreConnector(ConnectorResource):
    """A connector to a file store (FTP, SFTP, S3, GCS)."""

    @abstractmethod
    def open_store(self) -> FileStore:
        """A connected store; close it (or use it in a ``with`` block) when done."""
