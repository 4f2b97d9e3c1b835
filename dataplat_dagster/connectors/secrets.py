"""Secrets are names of environment variables; their values stay out of every output.

A connector's YAML holds ``password_env: WAREHOUSE_PASSWORD``; its resource receives
``EnvVar("WAREHOUSE_PASSWORD")``, which Dagster shows (in the UI, in run config) as the
variable's name. Whatever the connectors print or raise goes through ``redact`` first, in
case a driver echoes a secret back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MASK = "***"


def check_env_name(name: str) -> str:
    if not ENV_NAME_PATTERN.match(name or ""):
        raise ValueError(
            f"{name!r} is not an environment variable name: give the variable's name "
            "(letters, digits, underscores, e.g. WAREHOUSE_PASSWORD), not its value"
        )
    return name


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret value (of 3+ characters) replaced by ``***``."""
    for secret in sorted((s for s in secrets if s and len(s) >= 3), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text

