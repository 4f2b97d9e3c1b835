"""``dataplat dataset ...``: import, list, show, rename, download, delete."""

from __future__ import annotations

from pathlib import Path

import click

from dataplat_dagster.catalog import load_catalog
from dataplat_dagster.catalog.models import ORIGINS
from dataplat_dagster.cli.context import CliContext, pass_context
from dataplat_dagster.cli.csv_flags import csv_flags, csv_options
from dataplat_dagster.cli.output import confirm_delete, elapsed, human_count, human_size, plural, print_json, print_table, warn
from dataplat_dagster.cli.show import show_profile
from dataplat_dagster.errors import DataplatError

@click.group()
def dataset() -> None:
    """Datasets: tables stored as Parquet, one Dagster asset each."""


@dataset.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Name of the dataset (letters, digits, underscores).")
@csv_flags
@click.option("--replace", is_flag=True, help="Replace an existing dataset of this name with this file.")
@click.option("--no-wait", is_flag=True, help="Return as soon as the run is submitted.")
@click.option("--no-profile", is_flag=True, help="Skip statistics, plots and the report (faster).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def dataset_import(ctx: CliContext, path: Path, name: str, sep, decimal, thousands, encoding, no_header, quotechar,
                   date_format, replace: bool, no_wait: bool, no_profile: bool, as_json: bool) -> None:
    """Import the flat file PATH (CSV/TSV/TXT, .csv.gz, or a .zip of one table) as dataset NAME."""
    from dataplat_dagster import runs
    from dataplat_dagster.datasets.importing import finish_import, start_import

    options = csv_options(sep, decimal, thousands, encoding, no_header, quotechar, date_format)
    project, instance = ctx.project, ctx.instance()
    started = start_import(instance, project, name, path, options, replace=replace,
                           profile=not no_profile, wait=not no_wait)
    dialect = started.dialect
    if not as_json:
        click.echo(f"Detected dialect: {dialect.describe()}")
        for note in dialect.notes:
            click.echo(f"  note: {note}")
    if no_wait:
        _report(as_json, {"name": name, "run_id": started.run_id, "status": "parsing", "dialect": dialect.to_json()},
                f"Submitted run {started.run_id}; dataset {name!r} is parsing. Follow it with `dataplat dataset list`.")
        runs.start_detached(instance, started.run_id, ctx.workspace.root / "logs" / "dataplat")
        return
    if not as_json:
        click.echo(f"Parsing{'' if no_profile else ' and profiling'} in run {started.run_id} ...")
    try:
        with elapsed(f"  {name}:"):
            outcome = runs.execute(instance, started.run_id)
    finally:
        # Also after Ctrl-C: Dagster has marked the run failed, and the import is undone.
        finish_import(instance, started.run_id)
    if outcome.error is not None or outcome.status.value != "SUCCESS":
        # The run read the copy in storage; the user knows the file by the path they gave.
        reason = (outcome.error or outcome.status.value).replace(started.raw_copy, str(path))
        raise DataplatError(
            f"Import of {path.name} as {name!r} failed (run {outcome.run_id}): {reason}"
            + (" The previous version of the dataset is unchanged." if replace else " Nothing was registered.")
        )
    info = _find_info(ctx, name)
    _report(as_json, {**info.to_json(), "dialect": dialect.to_json()},
            f"Dataset {name!r} is ready: {plural(info.rows, 'row')} × {plural(info.columns, 'column')}, "
            f"{human_size(info.size_bytes)} as Parquet (run {outcome.run_id}).")


@dataset.command("list")
@click.option("--origin", "origins", multiple=True, type=click.Choice(ORIGINS), help="Only this origin (repeatable).")
@click.option("--search", help="Only datasets whose name contains TEXT (case-insensitive).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def dataset_list(ctx: CliContext, origins: tuple[str, ...], search: str | None, as_json: bool) -> None:
    """List the project's datasets with their origin, status and size."""
    from dataplat_dagster.datasets.status import dataset_infos

    project = ctx.project
    infos = dataset_infos(ctx.instance(), project, load_catalog(project.catalog_path))
    infos = [i for i in infos if (not origins or i.origin in origins) and (not search or search.lower() in i.name.lower())]
    if as_json:
        print_json([i.to_json() for i in infos])
        return
    if not infos:
        click.echo("No datasets match." if (origins or search) else "No datasets yet: `dataplat dataset import PATH --name NAME`.")
        return
    print_table(
        ["name", "origin", "status", "rows", "columns", "size", "created", "datasource"],
        [[i.name, i.origin, i.status + (f": {i.error}" if i.error else ""), human_count(i.rows), i.columns,
          human_size(i.size_bytes), i.created_at.replace("T", " ")[:16], i.datasource] for i in infos],
    )


@dataset.command("show")
@click.argument("name")
@click.option("--columns", "view", flag_value="columns", help="The per-column statistics.")
@click.option("--column", "column", metavar="COL", help="One column in detail.")
@click.option("--sample", "sample", type=click.IntRange(min=1), metavar="N", help="The first N rows.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def dataset_show(ctx: CliContext, name: str, view: str | None, column: str | None, sample: int | None, as_json: bool) -> None:
    """Show a dataset's profile (summary, columns, a column, or a sample), from stored results."""
    if sum(x is not None for x in (view, column, sample)) > 1:
        raise click.UsageError("Use one of --columns, --column COL and --sample N.")
    show_profile(ctx.project, _find_info(ctx, name), view or ("column" if column else "sample" if sample else None),
                 column=column, sample=sample, as_json=as_json)


@dataset.command("rename")
@click.argument("name")
@click.argument("new_name")
@pass_context
def dataset_rename(ctx: CliContext, name: str, new_name: str) -> None:
    """Rename dataset NAME to NEW_NAME, keeping its data (the asset key follows the name)."""
    from dataplat_dagster.datasets.manage import rename_dataset

    info = _find_info(ctx, name)
    if info.status == "parsing":
        raise DataplatError(f"Dataset {name!r} is parsing (run {info.run_id}); rename it once the run has finished.")
    rename_dataset(ctx.instance(), ctx.project, name, new_name)
    click.echo(f"Renamed dataset {name!r} to {new_name!r}.")


@dataset.command("download")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--output", required=True, type=click.Path(path_type=Path), help="File to write.")
@pass_context
def dataset_download(ctx: CliContext, name: str, fmt: str, output: Path) -> None:
    """Write dataset NAME to a local file as CSV or Parquet."""
    from dataplat_dagster.datasets.manage import download_dataset

    size = download_dataset(ctx.project, name, fmt, output)
    click.echo(f"Wrote {output} ({human_size(size)}).")


@dataset.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def dataset_delete(ctx: CliContext, name: str, yes: bool) -> None:
    """Delete dataset NAME: its stored files and catalog entry (sources are never touched)."""
    from dataplat_dagster.datasets.manage import delete_dataset

    info = _find_info(ctx, name)
    confirm_delete(f"{name!r}", f"Delete dataset {name!r} and its stored data?", yes)
    if info.status == "parsing":
        warn(f"run {info.run_id} is still parsing {name!r}; it will fail once the files are gone.")
    delete_dataset(ctx.instance(), ctx.project, name)
    click.echo(f"Deleted dataset {name!r}.")


def _find_info(ctx: CliContext, name: str):
    from dataplat_dagster.datasets.manage import dataset_store
    from dataplat_dagster.datasets.status import dataset_infos

    project = ctx.project
    dataset_store(project, name)  # raises a clear error for an unknown name
    return dataset_infos(ctx.instance(), project, load_catalog(project.catalog_path), [name])[0]


def _report(as_json: bool, data: dict, text: str) -> None:
    if as_json:
        print_json(data)
    else:
        click.echo(text)
