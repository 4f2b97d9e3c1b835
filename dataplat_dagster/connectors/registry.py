"""From a catalog entry to its resource: one resource class per connector type.

The type modules import their client libraries lazily, so building every connector of a
project when its code location loads costs no network and little import time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dataplat_dagster.connectors.base import ConnectorResource
from dataplat_dagster.connectors.models import SECRET_FIELDS


def resource_class(connector_type: str) -> type[ConnectorResource]:
    if connector_type == "sql":
        from dataplat_dagster.connectors.sql import SqlConnector

        return SqlConnector
    if connector_type == "ftp":
        from dataplat_dagster.connectors.ftp import FtpConnector

        return FtpConnector
    if connector_type == "sftp":
        from dataplat_dagster.connectors.sftp import SftpConnector

        return SftpConnector
    if connector_type == "s3":
        from dataplat_dagster.connectors.s3 import S3Connector

        return S3Connector
    if connector_type == "gcs":
        from dataplat_dagster.connectors.gcs import GcsConnector

        return GcsConnector
    raise ValueError(f"unknown connector type {connector_type!r}")


def build_connector(name: str, spec, project_dir: Path) -> ConnectorResource:
    """The resource for a catalog entry, secrets still as ``EnvVar`` references."""
    return resource_class(spec.type).from_spec(name, spec, project_dir)


def missing_environment(spec) -> list[str]:
    """The environment variables a connector names that are not set here."""
    return [var for field in SECRET_FIELDS if (var := getattr(spec, field, None)) and var not in os.environ]


@contextmanager
def open_connector(name: str, spec, project_dir: Path) -> Iterator[ConnectorResource]:
    """A ready-to-use resource outside a Dagster run (the CLI): secrets resolved, and its
    connections closed when the block ends."""
    from dataplat_dagster.errors import ConnectorError

    missing = missing_environment(spec)
    if missing:
        names = ", ".join(missing)
        raise ConnectorError(
            f"Connector {name!r} reads its secrets from {names}, which {'is' if len(missing) == 1 else 'are'} not set "
            f"in this environment: export {missing[0]}=... (in the shell, or in the environment of `dagster dev` and the code server)."
        )
    with build_connector(name, spec, project_dir).process_config_and_initialize_cm() as resource:
        yield resource
