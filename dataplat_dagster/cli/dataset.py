"""``dataplat dataset ...``: import, refresh, list, show, versions, rollback, rename, download, export, delete."""

from __future__ import annotations

from pathlib import Path

import click

from dataplat_dagster.catalog.registry import project_catalog
from dataplat_dagster.catalog.models import ORIGINS
from dataplat_dagster.cli.catalog_entries import catalog_changed
from dataplat_dagster.cli.context import CliContext, pass_context
from dataplat_dagster.cli.csv_flags import csv_flags, csv_options
from dataplat_dagster.cli.output import confirm_delete, human_count, human_size, plural, print_json, print_table, report, wait_for_run, warn
from dataplat_dagster.cli.show import show_profile
from dataplat_dagster.errors import DataplatError

@click.group()
def dataset() -> None:
    """Datasets: tables stored as Parquet, one Dagster asset each."""


@dataset.command("import")
@click.argument("path", type=click.Path(path_type=Path), required=False)
@click.option("--name", required=True, help="Name of the dataset (letters, digits, underscores).")
@click.option("--datasource", metavar="DS", help="Take a snapshot of datasource DS instead of importing a file.")
@csv_flags
@click.option("--replace", is_flag=True, help="Replace an existing dataset of this name (a new file, or a new snapshot).")
@click.option("--full-refresh", is_flag=True, help="Incremental datasources: read every row again.")
@click.option("--no-wait", is_flag=True, help="Return as soon as the run is submitted.")
@click.option("--no-profile", is_flag=True, help="Skip statistics, plots and the report (faster).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def dataset_import(ctx: CliContext, path: Path | None, name: str, datasource: str | None, sep, decimal, thousands, encoding,
                   no_header, quotechar, date_format, replace: bool, full_refresh: bool, no_wait: bool, no_profile: bool,
                   as_json: bool) -> None:
    """Import the flat file PATH (CSV/TSV/TXT, .csv.gz, or a .zip of one table) as dataset NAME,
    or, with --datasource DS, a snapshot of a datasource."""
    options = csv_options(sep, decimal, thousands, encoding, no_header, quotechar, date_format)
    if datasource:
        if path is not None:
            raise click.UsageError("Give either PATH or --datasource DS, not both.")
        if options.model_dump(exclude_none=True):
            raise click.UsageError(
                f"CSV options belong to the datasource: set them with `dataplat datasource create` (see `dataplat datasource show {datasource}`)."
            )
        _snapshot(ctx, name, datasource, replace=replace, full_refresh=full_refresh, no_wait=no_wait,
                  no_profile=no_profile, as_json=as_json)
        return
    if path is None:
        raise click.UsageError("Give the file to import (PATH), or --datasource DS for a snapshot of a datasource.")
    if full_refresh:
        raise click.UsageError("--full-refresh applies to snapshots of a datasource (--datasource DS).")
    from dataplat_dagster.datasets.upload import begin_upload

    _repair(ctx)
    # The file is copied into storage on a thread while Dagster is imported and its instance opened.
    upload = begin_upload(ctx.project, name, path, replace=replace)
    try:
        from dataplat_dagster.datasets.importing import start_import

        instance = ctx.instance()
    except BaseException:
        upload.discard()
        raise
    started = start_import(instance, ctx.workspace, ctx.project, name, upload, path, options, profile=not no_profile,
                           wait=not no_wait)
    dialect = started.dialect
    if not as_json:
        click.echo(f"Detected dialect: {dialect.describe()}")
        for note in dialect.notes:
            click.echo(f"  note: {note}")
    if started.warning:
        warn(started.warning)
    _run_import(ctx, name, started.run_id, extra={"dialect": dialect.to_json()}, no_wait=no_wait, no_profile=no_profile,
                as_json=as_json, what=path.name, replace=replace,
                # The run read the copy in storage; the user knows the file by the name they gave.
                rename=(Path(started.upload).name, str(path)))


@dataset.command("refresh")
@click.argument("name")
@click.option("--full-refresh", is_flag=True, help="Incremental datasources: read every row again.")
@click.option("--no-wait", is_flag=True, help="Return as soon as the run is submitted.")
@click.option("--no-profile", is_flag=True, help="Skip statistics, plots and the report (faster).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def dataset_refresh(ctx: CliContext, name: str, full_refresh: bool, no_wait: bool, no_profile: bool, as_json: bool) -> None:
    """Take a new snapshot of dataset NAME from its datasource."""
    spec = project_catalog(ctx.project).datasets.get(name)
    if spec is not None and not spec.datasource:
        raise DataplatError(
            f"Dataset {name!r} is a {spec.origin.replace('_', ' ')}, not a snapshot of a datasource; "
            f"import a new file with `dataplat dataset import PATH --name {name} --replace`."
        )
    _find_info(ctx, name)  # a clear error for an unknown name
    _snapshot(ctx, name, spec.datasource, replace=True, full_refresh=full_refresh, no_wait=no_wait,
              no_profile=no_profile, as_json=as_json)


def _snapshot(ctx: CliContext, name: str, datasource: str, *, replace: bool, full_refresh: bool, no_wait: bool,
              no_profile: bool, as_json: bool) -> None:
    from dataplat_dagster.datasets.importing import start_snapshot

    run_id, warning = start_snapshot(ctx.instance(), ctx.workspace, ctx.project, name, datasource, replace=replace,
                                     profile=not no_profile, wait=not no_wait, full_refresh=full_refresh)
    if warning:
        warn(warning)
    _run_import(ctx, name, run_id, extra={"datasource": datasource}, no_wait=no_wait, no_profile=no_profile,
                as_json=as_json, what=f"datasource {datasource!r}", replace=replace, snapshot=True)


def _run_import(ctx: CliContext, name: str, run_id: str, *, extra: dict, no_wait: bool, no_profile: bool, as_json: bool,
                what: str, replace: bool, rename: tuple[str, str] | None = None, snapshot: bool = False) -> None:
    """Wait for the submitted run of an import or snapshot (unless --no-wait), then report how it went."""
    from dataplat_dagster.datasets.importing import after_failed_run

    instance = ctx.instance()
    if no_wait:
        report(as_json, {"name": name, "run_id": run_id, "status": "parsing", **extra},
                f"Submitted run {run_id}; dataset {name!r} is parsing. Follow it with `dataplat dataset list`.")
        return
    try:
        outcome = wait_for_run(instance, run_id, f"{'Parsing' if rename else 'Reading'}{'' if no_profile else ' and profiling'} "
                               f"in run {run_id} ...", as_json=as_json, label=f"  {name}:")
    except KeyboardInterrupt:
        after_failed_run(instance, ctx.project, name, run_id)
        raise
    # A run that published the data and then failed did so on a blocking check: reported below.
    if (outcome.error is not None or outcome.status.value != "SUCCESS") and not _published_in(instance, ctx.project, name, run_id):
        after_failed_run(instance, ctx.project, name, run_id)
        reason = outcome.error or outcome.status.value
        if rename:
            reason = reason.replace(*rename)
        raise DataplatError(
            f"Import of {what} as {name!r} failed (run {outcome.run_id}): {reason}"
            + (" The previous version of the dataset is unchanged." if replace else " Nothing was registered.")
        )
    info = _find_info(ctx, name)
    if snapshot:
        from dagster import AssetKey

        from dataplat_dagster.datasources.drift import last_drift_check

        extra["schema_drift"] = drift = last_drift_check(instance, AssetKey(info.asset_key))
        if drift and not drift["passed"] and not as_json:
            warn(drift["description"])
    report(as_json, {**info.to_json(), **extra},
            f"Dataset {name!r} is ready: {plural(info.rows, 'row')} × {plural(info.columns, 'column')}, "
            f"{human_size(info.size_bytes)} as Parquet (run {outcome.run_id}).")
    if outcome.status.value != "SUCCESS":
        blocking = (info.checks or {}).get("failed_checks") or []
        raise DataplatError(
            f"Dataset {name!r} is published, but it failed its error check(s) {', '.join(blocking) or '(see the run)'}: "
            f"the steps downstream of it will not run. See `dataplat check list {name}`."
        )


def _published_in(instance, project, name: str, run_id: str) -> bool:
    """Whether run ``run_id`` materialized dataset ``name`` (then failed after it: a blocking check)."""
    from dagster import AssetKey

    from dataplat_dagster.keys import dataset_key

    event = instance.get_latest_materialization_event(AssetKey(dataset_key(project.name, name)))
    return event is not None and event.run_id == run_id


@dataset.command("list")
@click.option("--origin", "origins", multiple=True, type=click.Choice(ORIGINS), help="Only this origin (repeatable).")
@click.option("--search", help="Only datasets whose name contains TEXT (case-insensitive).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def dataset_list(ctx: CliContext, origins: tuple[str, ...], search: str | None, as_json: bool) -> None:
    """List the project's datasets with their origin, status and size."""
    from dataplat_dagster.datasets.status import dataset_infos

    _repair(ctx)
    project = ctx.project
    infos = dataset_infos(ctx.instance, project, project_catalog(project))
    infos = [i for i in infos if (not origins or i.origin in origins) and (not search or search.lower() in i.name.lower())]
    if as_json:
        print_json([i.to_json() for i in infos])
        return
    if not infos:
        click.echo("No datasets match." if (origins or search) else "No datasets yet: `dataplat dataset import PATH --name NAME`.")
        return
    print_table(
        ["name", "origin", "status", "rows", "columns", "size", "created", "datasource", "embeddings"],
        [[i.name, i.origin, i.status_text(), human_count(i.rows), i.columns,
          human_size(i.size_bytes), i.created_at.replace("T", " ")[:16], i.datasource, i.embeddings] for i in infos],
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
@click.option("--wait", is_flag=True, help="Wait for the dataset's runs in flight to finish, instead of refusing.")
@pass_context
def dataset_rename(ctx: CliContext, name: str, new_name: str, wait: bool) -> None:
    """Rename dataset NAME to NEW_NAME, keeping its data (the asset key follows the name)."""
    from dataplat_dagster.datasets.manage import rename_dataset

    _find_info(ctx, name)
    _no_run_in_flight(ctx, name, "rename", wait)
    rename_dataset(ctx.instance(), ctx.project, name, new_name)
    catalog_changed(ctx.project)
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


@dataset.command("export")
@click.argument("name")
@click.option("--exporter", "exporter_name", required=True, metavar="E", help="The exporter to write it through.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def dataset_export(ctx: CliContext, name: str, exporter_name: str, as_json: bool) -> None:
    """Export dataset NAME through exporter E, as a run of the project's export_dataset job."""
    from dataplat_dagster.exporters.exporting import export_dataset

    done = export_dataset(ctx.instance(), ctx.workspace, ctx.project, name, exporter_name)
    report(as_json, done, f"Exported dataset {name!r} through {exporter_name!r}: {plural(done['rows'], 'row')} "
            f"to {done['identifier']} ({done['mode']}, run {done['run_id']}).")


@dataset.command("versions")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def dataset_versions(ctx: CliContext, name: str, as_json: bool) -> None:
    """List the versions of dataset NAME kept in storage, newest first."""
    from dataplat_dagster.datasets.lookup import dataset_store, version_list

    _, store = dataset_store(ctx.project, name)
    versions = version_list(store)
    if as_json:
        print_json(versions)
        return
    if not versions:
        click.echo(f"Dataset {name!r} has no stored version yet (see `dataplat dataset list`).")
        return
    print_table(["version", "created", "rows", "run", "current"],
                [[v["id"], (v["created_at"] or "").replace("T", " ")[:19], human_count(v["rows"]), v["run_id"] or "",
                  "*" if v["current"] else ""] for v in versions])


@dataset.command("rollback")
@click.argument("name")
@click.option("--to", "version", required=True, metavar="VERSION", help="The version to make current (see `dataplat dataset versions NAME`).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def dataset_rollback(ctx: CliContext, name: str, version: str, as_json: bool) -> None:
    """Make an earlier version of dataset NAME current again, as a run of the rollback_dataset job."""
    from dataplat_dagster import runs
    from dataplat_dagster.datasets.lookup import dataset_store
    from dataplat_dagster.datasets.versions import start_rollback

    info = _find_info(ctx, name)
    if info.status == "parsing":
        raise DataplatError(f"Dataset {name!r} is parsing (run {info.run_id}); roll it back once the run has finished.")
    _, store = dataset_store(ctx.project, name)
    instance = ctx.instance()
    run_id = start_rollback(instance, ctx.workspace, ctx.project, store, version, wait=True)
    outcome = runs.wait_for(instance, run_id, notice=warn)
    if outcome.status.value != "SUCCESS":
        raise DataplatError(f"Rollback of dataset {name!r} to version {version} failed (run {run_id}): {outcome.error or outcome.status.value}")
    info = _find_info(ctx, name)
    report(as_json, {**info.to_json(), "version": version},
            f"Dataset {name!r} is at version {version} again: {plural(info.rows, 'row')} (run {run_id}).")


@dataset.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--wait", is_flag=True, help="Wait for the dataset's runs in flight to finish, instead of refusing.")
@pass_context
def dataset_delete(ctx: CliContext, name: str, yes: bool, wait: bool) -> None:
    """Delete dataset NAME: its stored files and catalog entry (sources are never touched)."""
    from dataplat_dagster.datasets.manage import delete_dataset

    _find_info(ctx, name)
    confirm_delete(f"{name!r}", f"Delete dataset {name!r} and its stored data?", yes)
    _no_run_in_flight(ctx, name, "delete", wait)
    delete_dataset(ctx.instance(), ctx.project, name)
    catalog_changed(ctx.project)
    click.echo(f"Deleted dataset {name!r}.")


def _no_run_in_flight(ctx: CliContext, name: str, action: str, wait: bool) -> None:
    """Refuse (or, with --wait, wait out) the runs that would write or read the dataset meanwhile."""
    from dataplat_dagster import runs
    from dataplat_dagster.datasets.manage import in_flight_runs

    instance = ctx.instance()
    while busy := in_flight_runs(instance, ctx.project, name):
        ids = ", ".join(run.run_id for run in busy)
        if not wait:
            raise DataplatError(
                f"Dataset {name!r} has {plural(len(busy), 'run')} in flight ({ids}); {action} it once "
                f"{'they have' if len(busy) > 1 else 'it has'} finished, or pass --wait."
            )
        click.echo(f"Waiting for {ids} to finish before the {action} ...", err=True)
        for run in busy:
            runs.wait_for(instance, run.run_id, notice=warn)


def _repair(ctx: CliContext) -> None:
    """Finish what an earlier dataset command left half-done (see ``manage``), and say so."""
    from dataplat_dagster.catalog.registry import project_registry

    if not project_registry(ctx.project).pending():
        return
    from dataplat_dagster.datasets.manage import finish_interrupted

    for done in finish_interrupted(ctx.instance(), ctx.project):
        warn(f"finished {done}, which an earlier command left half-done.")
        catalog_changed(ctx.project)


def _find_info(ctx: CliContext, name: str):
    from dataplat_dagster.datasets.lookup import dataset_store
    from dataplat_dagster.datasets.status import dataset_infos

    _repair(ctx)
    project = ctx.project
    dataset_store(project, name)  # raises a clear error for an unknown name
    return dataset_infos(ctx.instance, project, project_catalog(project), [name])[0]
