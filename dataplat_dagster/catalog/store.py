"""Reading and writing a project's catalog file: atomically, under a lock, keeping what people wrote."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from pydantic import ValidationError

from dataplat_dagster.catalog.models import ProjectCatalog
from dataplat_dagster.catalog.yaml_file import apply_changes, file_lock, plain, read_yaml, write_yaml
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


def _dump(catalog: ProjectCatalog) -> dict:
    return catalog.model_dump(mode="json", exclude_none=True)


@contextmanager
def edit_catalog(path: Path) -> Iterator[ProjectCatalog]:
    """Load, let the caller change, and save the catalog, holding the file's lock so that
    two CLI calls never lose each other's edits. Only what the caller changed is written:
    comments, key order and the defaults left unwritten stay as they were. Nothing is saved
    if the body raises."""
    with file_lock(path):
        if not path.exists():
            load_catalog(path)  # its message
        document = read_yaml(path)
        try:
            catalog = ProjectCatalog.model_validate(plain(document) or {})
        except ValidationError as error:
            raise CatalogError(describe_validation_error(path, error)) from None
        before = _dump(catalog)
        yield catalog
        after = _dump(ProjectCatalog.model_validate(catalog.model_dump()))
        if after != before:
            write_yaml(path, apply_changes(document if document is not None else {}, before, after))
