"""``dataplat exporter ...``: create, list, show and delete exporters.

An exporter is an entry under ``exporters:`` in the project's catalog: a connector, a mode
(overwrite or timestamped) and a target (a table, or a file's path and format). Each is an
IO manager of the project's code location, under its own name.
"""

from __future__ import annotations

import click

from dataplat_dagster.catalog.registry import project_catalog
from dataplat_dagster.catalog.models import ProjectCatalog, find_entry
from dataplat_dagster.cli.context import CliContext, pass_context
from dataplat_dagster.cli.catalog_entries import add_entry, delete_entry, validate_entry
from dataplat_dagster.cli.output import human_count, print_json, print_table, warn
from dataplat_dagster.errors import DataplatError
from dataplat_dagster.exporters.models import ExporterSpec


@click.group()
def exporter() -> None:
    """Exporters: where datasets and pipeline outputs are written, through a connector."""


@exporter.command("create")
@click.argument("name")
@click.option("--connector", required=True, help="The connector to write through.")
@click.option("--mode", required=True, type=click.Choice(["overwrite", "timestamped"]),
              help="overwrite: replace the target atomically each time; timestamped: a new <table>_<YYYYMMDD_HHMMSS> (UTC) each time.")
@click.option("--database", help="SQL: the database, if not the connector's default.")
@click.option("--table", help="SQL: the table, optionally schema-qualified (sales.predictions).")
@click.option("--path", help="FTP/SFTP/S3/GCS: the file's path from the store's root.")
@click.option("--format", "file_format", type=click.Choice(["csv", "parquet"]), help="Files: csv or parquet (default: from the path's suffix, else parquet).")
@click.option("--retention", type=click.IntRange(min=1), metavar="N", help="Timestamped: keep the newest N, drop older ones it created.")
@click.option("--on-dependents", type=click.Choice(["refuse", "drop"]),
              help="Overwrite on PostgreSQL, of a table that views depend on: refuse (the default: name them, write nothing) or drop them with the old table.")
@click.option("--description", help="What the exporter is for.")
@pass_context
def exporter_create(ctx: CliContext, name: str, connector: str, mode: str, database, table, path, file_format, retention, on_dependents,
                    description) -> None:
    """Create exporter NAME."""
    from dataplat_dagster.workspace import check_name

    check_name("exporter", name)
    values = {"connector": connector, "mode": mode, "database": database, "table": table, "path": path,
              "format": file_format, "retention": retention, "on_dependents": on_dependents, "description": description}
    catalog = project_catalog(ctx.project)
    spec = validate_entry(catalog, "exporters", name, ExporterSpec, {k: v for k, v in values.items() if v is not None})
    add_entry(ctx.project, "exporters", name, spec, "delete it first, or choose another name")
    click.echo(f"Created exporter {name!r}: {spec.mode} {spec.kind} {spec.target()} through connector {connector!r}.")
    click.echo(f"Use it as io_manager_key={name!r}, or: dataplat dataset export DATASET --exporter {name}")


@exporter.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the exporters as JSON.")
@pass_context
def exporter_list(ctx: CliContext, as_json: bool) -> None:
    """List the project's exporters."""
    catalog = project_catalog(ctx.project)
    entries = [_summary(name, spec) for name, spec in sorted(catalog.exporters.items())]
    if as_json:
        print_json(entries)
        return
    if not entries:
        click.echo(f"Project {ctx.project.name!r} has no exporters yet: create one with `dataplat exporter create NAME --connector C --mode M ...`.")
        return
    print_table(["name", "connector", "mode", "writes", "retention", "datasets exported"],
                [[e["name"], e["connector"], e["mode"], e["target"], e["retention"] or "-", ", ".join(e["datasets"]) or "-"] for e in entries])


@exporter.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the exporter as JSON.")
@pass_context
def exporter_show(ctx: CliContext, name: str, as_json: bool) -> None:
    """Show exporter NAME: its settings and what it has written (tables or files, newest first, with row counts)."""
    catalog = project_catalog(ctx.project)
    spec = find_entry(catalog.exporters, "exporter", name, ctx.project.name)
    entry = _summary(name, spec)
    try:
        entry["written"] = _written(ctx, catalog, spec)
    except DataplatError as error:
        entry["written"], entry["written_error"] = None, str(error)
    if as_json:
        print_json(entry)
        return
    click.echo(f"Exporter {name!r}: {spec.mode} {spec.kind} {spec.target()} through connector {spec.connector!r}")
    for key, value in entry["settings"].items():
        click.echo(f"  {key.ljust(10)}  {value}")
    if entry["written"] is None:
        warn(f"cannot list what it wrote: {entry['written_error']}")
    elif not entry["written"]:
        click.echo("  written     nothing yet")
    else:
        click.echo("  written:")
        print_table(["name", "rows"], [[w["name"], human_count(w["rows"])] for w in entry["written"]])


@exporter.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def exporter_delete(ctx: CliContext, name: str, yes: bool) -> None:
    """Delete exporter NAME (what it wrote stays where it is)."""
    delete_entry(ctx.project, "exporters", name, yes, question=f"Delete exporter {name!r}? What it wrote stays.")


def _summary(name: str, spec: ExporterSpec) -> dict:
    return {
        "name": name, "connector": spec.connector, "mode": spec.mode, "kind": spec.kind, "target": spec.target(),
        "format": spec.file_format if spec.path else None, "retention": spec.retention, "datasets": spec.datasets,
        "settings": spec.model_dump(mode="json", exclude_defaults=True),
    }


def _written(ctx: CliContext, catalog: ProjectCatalog, spec: ExporterSpec) -> list[dict]:
    """The targets it wrote, newest first: their names and row counts, read from the target."""
    from dataplat_dagster.connectors.registry import open_connector
    from dataplat_dagster.exporters.reading import written_targets

    with open_connector(spec.connector, catalog.connectors[spec.connector], ctx.project.dir) as connector:
        return written_targets(connector, spec)
