"""Checking a new catalog entry from CLI flags, with errors that name the flag."""

from __future__ import annotations

import click
from pydantic import BaseModel, ValidationError

from dataplat_dagster.catalog.models import ProjectCatalog


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
