"""``dataplat datasource ...``: create, list, show, delete and test datasources.

A datasource is an entry under ``datasources:`` in the project's catalog: a connector and
what to read through it (a table or a query, or a file's path).
"""

from __future__ import annotations

import click

from dataplat_dagster.catalog.registry import project_catalog
from dataplat_dagster.catalog.models import ProjectCatalog, find_entry
from dataplat_dagster.cli.context import CliContext, pass_context
from dataplat_dagster.cli.csv_flags import csv_flags, csv_options
from dataplat_dagster.cli.catalog_entries import add_entry, delete_entry, validate_entry
from dataplat_dagster.cli.output import human_count, print_json, print_table
from dataplat_dagster.datasources.models import DatasourceSpec
from dataplat_dagster.errors import CatalogError


@click.group()
def datasource() -> None:
    """Datasources: a table, a query or a file, read through a connector."""


@datasource.command("create")
@click.argument("name")
@click.option("--connector", required=True, help="The connector to read through.")
@click.option("--database", help="SQL: the database, if not the connector's default.")
@click.option("--table", help="SQL: the table, optionally schema-qualified (sales.orders).")
@click.option("--query", help='SQL: a query, e.g. "SELECT id, total FROM orders WHERE total > 0".')
@click.option("--path", help="FTP/SFTP/S3/GCS: the file's path from the store's root (CSV, TSV, .csv.gz, zip of one CSV, Parquet).")
@csv_flags
@click.option("--schedule", help="Cron schedule of its snapshot datasets, e.g. '0 6 * * *'.")
@click.option("--drift-policy", type=click.Choice(["warn", "fail"]), default="warn", show_default=True, help="What a changed column schema between snapshots does.")
@click.option("--quality-policy", type=click.Choice(["warn", "fail"]),
              help="What a new snapshot failing an error-severity check of its dataset does: warn (the default: published, "
              "the check failed) or fail (refused; the previous version stays current).")
@click.option("--incremental-by", metavar="COLUMN", help="SQL: a cursor column; a refresh fetches only rows past the last one.")
@click.option("--merge-key", metavar="COL[,COL...]", help="With --incremental-by: the columns that identify a row; a refresh upserts, the newest row of each key wins.")
@click.option("--watch", is_flag=True, help="Files: switch on the sensor that takes a snapshot when the file changes.")
@click.option("--watch-interval", type=click.IntRange(min=5), metavar="SECONDS", help="Files: seconds between two looks at the file (default 60).")
@click.option("--description", help="What the datasource is.")
@click.option("--dry-run", is_flag=True, help="Test it and print the result; save nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the test result as JSON (with --dry-run).")
@pass_context
def datasource_create(ctx: CliContext, name: str, connector: str, database, table, query, path, sep, decimal, thousands, encoding,
                      no_header, quotechar, date_format, schedule, drift_policy, quality_policy, incremental_by, merge_key, watch: bool, watch_interval,
                      description, dry_run: bool, as_json: bool) -> None:
    """Create datasource NAME; --dry-run tests it without saving."""
    from dataplat_dagster.workspace import check_name

    check_name("datasource", name)
    values = {
        "connector": connector, "database": database, "table": table, "query": query, "path": path,
        "schedule": schedule, "drift_policy": drift_policy, "quality_policy": quality_policy, "incremental_by": incremental_by, "merge_key": merge_key,
        "description": description,
        "watch": watch or None, "watch_interval_s": watch_interval,
        "options": csv_options(sep, decimal, thousands, encoding, no_header, quotechar, date_format).model_dump(exclude_none=True),
    }
    catalog = project_catalog(ctx.project)
    spec = validate_entry(catalog, "datasources", name, DatasourceSpec, {key: value for key, value in values.items() if value not in (None, {})})
    if dry_run:
        _probe_and_print(ctx, _with(catalog, name, spec), name, as_json)
        return
    add_entry(ctx.project, "datasources", name, spec, "delete it first, or choose another name")
    click.echo(f"Created datasource {name!r}: {spec.kind} {spec.target()} through connector {connector!r}.")
    click.echo(f"Test it with: dataplat datasource test {name}")


@datasource.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the datasources as JSON.")
@pass_context
def datasource_list(ctx: CliContext, as_json: bool) -> None:
    """List the project's datasources."""
    catalog = project_catalog(ctx.project)
    entries = [_summary(catalog, name, spec) for name, spec in sorted(catalog.datasources.items())]
    if as_json:
        print_json(entries)
        return
    if not entries:
        click.echo(f"Project {ctx.project.name!r} has no datasources yet: create one with `dataplat datasource create NAME --connector C ...`.")
        return
    print_table(["name", "connector", "kind", "reads", "schedule", "used by"],
                [[e["name"], e["connector"], e["kind"], e["target"], e["schedule"], ", ".join(e["used_by"]) or "-"] for e in entries])


@datasource.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the datasource as JSON.")
@pass_context
def datasource_show(ctx: CliContext, name: str, as_json: bool) -> None:
    """Show datasource NAME's settings."""
    catalog = project_catalog(ctx.project)
    entry = _summary(catalog, name, _find(catalog, ctx, name))
    if as_json:
        print_json(entry)
        return
    click.echo(f"Datasource {name!r}: {entry['kind']} {entry['target']} through connector {entry['connector']!r}")
    for key, value in entry["settings"].items():
        click.echo(f"  {key.ljust(14)}  {value}")
    click.echo(f"  {'used by'.ljust(14)}  {', '.join(entry['used_by']) or '-'}")
    for kind, definition in entry["automation"].items():
        if definition:
            click.echo(f"  {kind.ljust(14)}  {definition}")


@datasource.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def datasource_delete(ctx: CliContext, name: str, yes: bool) -> None:
    """Delete datasource NAME, unless a dataset is a snapshot of it (the source is never touched)."""
    delete_entry(ctx.project, "datasources", name, yes, refuse_if_used=_refuse_if_used)


@datasource.command("test")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def datasource_test(ctx: CliContext, name: str, as_json: bool) -> None:
    """Read datasource NAME's schema, row estimate and first rows, without importing."""
    catalog = project_catalog(ctx.project)
    _find(catalog, ctx, name)
    _probe_and_print(ctx, catalog, name, as_json)


def _probe_and_print(ctx: CliContext, catalog: ProjectCatalog, name: str, as_json: bool) -> None:
    from dataplat_dagster.datasources.probe import probe_datasource

    probe = probe_datasource(ctx.project.dir, catalog, name)
    if as_json:
        print_json(probe.to_json())
        return
    click.echo(f"Datasource {name!r}: {probe.kind} {probe.target} through connector {probe.connector!r}, read in {probe.seconds:.2f} s")
    if probe.file:
        click.echo(f"  file: {human_count(probe.file['size'])} bytes, modified {probe.file['modified'] or '-'}")
    if probe.dialect:
        from dataplat_dagster.ingest.dialect import Dialect

        click.echo(f"  dialect: {Dialect.from_json(probe.dialect).describe()}")
    estimate = "unknown" if probe.row_estimate is None else ("" if probe.row_estimate_exact else "about ") + human_count(probe.row_estimate)
    click.echo(f"  rows: {estimate}")
    click.echo(f"  columns ({len(probe.columns)}): " + ", ".join(f"{c['name']} {c['type']}" for c in probe.columns))
    if probe.sample:
        click.echo("  first rows:")
        names = [column["name"] for column in probe.columns]
        print_table(names, [[row.get(column) for column in names] for row in probe.sample])


def _with(catalog: ProjectCatalog, name: str, spec: DatasourceSpec) -> ProjectCatalog:
    """The catalog as it would be with ``spec`` saved, for --dry-run."""
    return catalog.model_copy(update={"datasources": {**catalog.datasources, name: spec}})


def _find(catalog, ctx: CliContext, name: str):
    return find_entry(catalog.datasources, "datasource", name, ctx.project.name)


def _refuse_if_used(catalog: ProjectCatalog, name: str) -> None:
    dependants = catalog.datasource_dependants(name)
    if dependants:
        raise CatalogError(f"Datasource {name!r} is used by {', '.join(dependants)}: delete those first.")


def _summary(catalog: ProjectCatalog, name: str, spec: DatasourceSpec) -> dict:
    from dataplat_dagster.datasources.models import schedule_name, sensor_name, snapshot_job_name

    settings = spec.model_dump(mode="json", exclude_defaults=True)
    used_by = catalog.datasource_dependants(name)
    job = snapshot_job_name(name) if used_by else None
    automation = {
        "job": job,
        "schedule": schedule_name(name) if job and spec.schedule else None,
        "sensor": sensor_name(name) if job and spec.kind == "path" else None,
    }
    return {
        "name": name, "connector": spec.connector, "kind": spec.kind, "target": spec.target(),
        "schedule": spec.schedule, "drift_policy": spec.drift_policy, "quality_policy": spec.quality_policy, "settings": settings,
        "used_by": used_by, "automation": automation,
    }
