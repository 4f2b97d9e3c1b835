"""Adding, checking and deleting catalog entries (connectors, datasources, exporters) from
the CLI: the same steps for every noun, with errors that name the flag or the entry."""

from __future__ import annotations

from collections.abc import Callable

import click
from pydantic import BaseModel, ValidationError

from dataplat_dagster.catalog import edit_catalog
from dataplat_dagster.catalog.registry import project_catalog
from dataplat_dagster.catalog.models import ProjectCatalog, find_entry
from dataplat_dagster.cli.output import confirm_delete
from dataplat_dagster.errors import CatalogError
from dataplat_dagster.workspace import Project


def validate_entry(catalog: ProjectCatalog, section: str, name: str, model: type[BaseModel], data: dict) -> BaseModel:
    """``data`` as a ``model``, checked alone and then within the catalog (``section``, e.g.
    "datasources", under ``name``); a problem is a usage error naming the flag."""
    try:
        spec = model.model_validate(data)
        current = catalog.model_dump()
        ProjectCatalog.model_validate({**current, section: {**current[section], name: spec.model_dump()}})
    except ValidationError as error:
        problems = []
        for problem in error.errors():
            field = [str(part) for part in problem["loc"] if str(part) not in (section, name)]
            message = problem["msg"].removeprefix("Value error, ")
            problems.append(f"--{field[0].replace('_', '-')}: {message}" if field else message)
        raise click.UsageError(f"{section[:-1]} {name!r} is not valid: " + "; ".join(problems)) from None
    return spec


def add_entry(project: Project, section: str, name: str, spec: BaseModel, if_taken: str) -> None:
    """Save ``spec`` under a new ``name``, checked again under the catalog's lock; ``if_taken``
    says what to do when the name exists."""
    with edit_catalog(project.catalog_path) as catalog:
        entries = getattr(catalog, section)
        if name in entries:
            raise CatalogError(f"{section[:-1].capitalize()} {name!r} already exists in project {project.name!r}: {if_taken}.")
        entries[name] = spec
    catalog_changed(project)


def delete_entry(
    project: Project,
    section: str,
    name: str,
    yes: bool,
    *,
    refuse_if_used: Callable[[ProjectCatalog, str], None] | None = None,
    question: str | None = None,
) -> None:
    """Delete entry ``name`` after confirmation; ``refuse_if_used`` raises while something
    depends on it, checked before asking and again under the lock."""
    kind = section[:-1]
    catalog = project_catalog(project)
    find_entry(getattr(catalog, section), kind, name, project.name)
    if refuse_if_used:
        refuse_if_used(catalog, name)
    confirm_delete(f"{kind} {name!r}", question or f"Delete {kind} {name!r}?", yes)
    with edit_catalog(project.catalog_path) as catalog:
        if refuse_if_used:
            refuse_if_used(project_catalog(project), name)  # a dependant may have appeared meanwhile
        getattr(catalog, section).pop(name, None)
    catalog_changed(project)
    click.echo(f"Deleted {kind} {name!r}.")


def catalog_changed(project: Project) -> None:
    """Ask a running webserver to reload the project's code location; warn if it could not."""
    from dataplat_dagster.cli.output import warn
    from dataplat_dagster.webserver import notify_catalog_changed

    problem = notify_catalog_changed(project.dir.parents[1], project.name)
    if problem:
        warn(problem)
