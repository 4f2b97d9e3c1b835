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



# The password of a URL (``scheme://user:password@host``), which drivers may echo back.
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)


def error_text(error: BaseException, secrets: Iterable[str | None] = ()) -> str:
    """An error's message, fit for a log line: the driver's own words on one line (without
    SQLAlchemy's echo of the statement and its parameters), a URL's password and every
    secret value masked."""
    original = getattr(error, "orig", None) or error
    text = str(original).split("\n[SQL:")[0].split("\n[parameters:")[0].split("\n(Background")[0]
    text = " ".join(text.split())
    return redact(_URL_PASSWORD.sub(rf"\g<head>{MASK}@", text), secrets)
