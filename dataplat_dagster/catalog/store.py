"""Reading and writing a project's catalog file, atomically and under a lock."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from pydantic import ValidationError

from dataplat_dagster.catalog.models import ProjectCatalog
from dataplat_dagster.connectors.models import CONNECTOR_TYPES
from dataplat_dagster.errors import CatalogError


def load_catalog(path: Path) -> ProjectCatalog:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise CatalogError(f"{path} does not exist: every project folder needs its catalog file.") from None
    except yaml.YAMLError as error:
        raise CatalogError(f"{path} is not valid YAML: {error}") from None
    try:
        return ProjectCatalog.model_validate(data)
    except ValidationError as error:
        raise CatalogError(describe_validation_error(path, error)) from None


def describe_validation_error(path: Path, error: ValidationError) -> str:
    """One line per problem, naming the file, the object and the field."""
    lines = [f"{path} is not a valid catalog:"]
    for problem in error.errors():
        loc = [str(part) for part in problem["loc"]]
        if len(loc) >= 2 and loc[0] in ("datasets", "connectors", "datasources", "exporters"):
            # A connector's location holds its type (pydantic's union tag): not a field.
            fields = loc[3:] if loc[0] == "connectors" and loc[2:3] and loc[2] in CONNECTOR_TYPES else loc[2:]
            where = f"{loc[0][:-1]} {loc[1]!r}" + (f", field {'.'.join(fields)}" if fields else "")
        else:
            where = f"field {'.'.join(loc)}" if loc else "top level"
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def save_catalog(path: Path, catalog: ProjectCatalog) -> None:
    data = catalog.model_dump(mode="json", exclude_defaults=False, exclude_none=True)
    header = _leading_comments(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    os.replace(tmp, path)


@contextmanager
def edit_catalog(path: Path) -> Iterator[ProjectCatalog]:
    """Load, let the caller change, and save the catalog, holding a lock so that two CLI
    calls never lose each other's edits. Nothing is saved if the body raises."""
    lock_path = path.with_name(f".{path.name}.lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        catalog = load_catalog(path)
        yield catalog
        ProjectCatalog.model_validate(catalog.model_dump())
        save_catalog(path, catalog)


def _leading_comments(path: Path) -> str:
    """Keep the comment block at the top of the file when rewriting it."""
    if not path.exists():
        return ""
    lines = []
    for line in path.read_text().splitlines(keepends=True):
        if not line.startswith("#"):
            break
        lines.append(line)
    return "".join(lines)
