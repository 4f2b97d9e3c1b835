"""``dataplat image-folder ...``: import, list, show, rename, download, delete."""

from __future__ import annotations

from pathlib import Path

import click

from dataplat_dagster.catalog.registry import project_catalog
from dataplat_dagster.cli.catalog_entries import catalog_changed
from dataplat_dagster.cli.context import CliContext, pass_context
from dataplat_dagster.cli.output import confirm_delete, human_count, human_size, plural, print_json, print_table, report, wait_for_run, warn
from dataplat_dagster.errors import DataplatError

NO_SOURCES = ("Image folders are made only from an uploaded zip (or a folder) of images: they cannot use a "
              "datasource or a connector. Import the zip with `dataplat image-folder import ZIP --name NAME`.")


@click.group("image-folder")
def image_folder() -> None:
    """Image folders: zips of images, subfolders as labels, one Dagster asset each."""


@image_folder.command("import")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Name of the image folder (letters, digits, underscores).")
@click.option("--skip-invalid", is_flag=True, help="Skip members that are not decodable images (listed in the metadata) instead of failing.")
@click.option("--replace", is_flag=True, help="Import this zip as the new version of an existing image folder.")
@click.option("--no-wait", is_flag=True, help="Return as soon as the run is submitted.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--datasource", hidden=True, help="Refused: image folders use no datasource.")
@click.option("--connector", hidden=True, help="Refused: image folders use no connector.")
@pass_context
def image_folder_import(ctx: CliContext, source: Path, name: str, skip_invalid: bool, replace: bool, no_wait: bool, as_json: bool,
                        datasource: str | None, connector: str | None) -> None:
    """Import SOURCE (a .zip of images, or a folder of images) as image folder NAME, as a Dagster run."""
    if datasource or connector:
        raise click.UsageError(NO_SOURCES)
    from dataplat_dagster.images.manage import after_failed_run, start_image_import
    from dataplat_dagster.images.status import image_folder_infos

    instance = ctx.instance()
    run_id, warning = start_image_import(instance, ctx.workspace, ctx.project, name, source, replace=replace,
                                         skip_invalid=skip_invalid, wait=not no_wait)
    if warning:
        warn(warning)
    if no_wait:
        report(as_json, {"name": name, "run_id": run_id, "status": "parsing"},
                f"Submitted run {run_id}; image folder {name!r} is parsing. Follow it with `dataplat image-folder list`.")
        return
    try:
        outcome = wait_for_run(instance, run_id, f"Checking and storing the images in run {run_id} ...", as_json=as_json,
                               label=f"  {name}:")
    except KeyboardInterrupt:
        after_failed_run(instance, ctx.project, name, run_id)
        raise
    if outcome.error is not None or outcome.status.value != "SUCCESS":
        after_failed_run(instance, ctx.project, name, run_id)
        reason = (outcome.error or outcome.status.value).replace(str(source), source.name)
        raise DataplatError(
            f"Import of {source.name} as image folder {name!r} failed (run {outcome.run_id}): {reason}"
            + (" The previous version of the image folder is unchanged." if replace else " Nothing was registered.")
        )
    info = image_folder_infos(lambda: instance, ctx.project, project_catalog(ctx.project), [name])[0]
    report(as_json, info.to_json(),
            f"Image folder {name!r} is ready: {plural(info.images, 'image')} in {plural(info.labels, 'label')}, "
            f"{human_size(info.size_bytes)} (run {outcome.run_id}).")


@image_folder.command("list")
@click.option("--search", help="Only image folders whose name contains TEXT (case-insensitive).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def image_folder_list(ctx: CliContext, search: str | None, as_json: bool) -> None:
    """List the project's image folders with their status, images and labels."""
    from dataplat_dagster.images.status import image_folder_infos

    catalog = project_catalog(ctx.project)
    infos = [i for i in image_folder_infos(ctx.instance, ctx.project, catalog) if not search or search.lower() in i.name.lower()]
    if as_json:
        print_json([i.to_json() for i in infos])
        return
    if not infos:
        click.echo("No image folders match." if search else "No image folders yet: `dataplat image-folder import ZIP --name NAME`.")
        return
    print_table(
        ["name", "status", "images", "labels", "size", "created", "embeddings"],
        [[i.name, i.status + (f": {i.error}" if i.error else ""), human_count(i.images), i.labels, human_size(i.size_bytes),
          i.created_at.replace("T", " ")[:16], i.embeddings] for i in infos],
    )


@image_folder.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def image_folder_show(ctx: CliContext, name: str, as_json: bool) -> None:
    """Show what image folder NAME holds: labels, formats, sizes, dimensions, duplicates, skipped members."""
    from dataplat_dagster.images.status import image_folder_infos
    from dataplat_dagster.images.store import SUMMARY_FILE, find_image_folder
    from dataplat_dagster.images.summary import summary_text

    version = find_image_folder(ctx.project, name).current()
    info = image_folder_infos(ctx.instance, ctx.project, project_catalog(ctx.project), [name])[0]
    summary = version.read_json(SUMMARY_FILE) if version is not None else None
    if summary is None:
        raise DataplatError(f"Image folder {name!r} has no images yet ({info.status}{': ' + info.error if info.error else ''}).")
    if as_json:
        print_json({**info.to_json(), "version": version.id, "summary": summary})
        return
    click.echo(f"Image folder {name!r} ({info.status}, version {version.id})")
    click.echo(summary_text(summary))


@image_folder.command("rename")
@click.argument("name")
@click.argument("new_name")
@pass_context
def image_folder_rename(ctx: CliContext, name: str, new_name: str) -> None:
    """Rename image folder NAME to NEW_NAME, keeping its images (the asset key follows the name)."""
    from dataplat_dagster.images.manage import rename_image_folder
    from dataplat_dagster.images.store import find_image_folder

    find_image_folder(ctx.project, name)
    _no_run_in_flight(ctx, name, "rename")
    rename_image_folder(ctx.instance(), ctx.project, name, new_name)
    catalog_changed(ctx.project)
    click.echo(f"Renamed image folder {name!r} to {new_name!r}.")


@image_folder.command("download")
@click.argument("name")
@click.option("--output", required=True, type=click.Path(path_type=Path), help="The zip file to write.")
@pass_context
def image_folder_download(ctx: CliContext, name: str, output: Path) -> None:
    """Write image folder NAME's images to a zip, under the paths they were imported with."""
    from dataplat_dagster.images.manage import download_image_folder

    images, size = download_image_folder(ctx.project, name, output)
    click.echo(f"Wrote {output}: {plural(images, 'image')}, {human_size(size)}.")


@image_folder.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def image_folder_delete(ctx: CliContext, name: str, yes: bool) -> None:
    """Delete image folder NAME: its stored images and its entry."""
    from dataplat_dagster.images.manage import delete_image_folder
    from dataplat_dagster.images.store import find_image_folder

    find_image_folder(ctx.project, name)
    confirm_delete(f"{name!r}", f"Delete image folder {name!r} and its stored images?", yes)
    _no_run_in_flight(ctx, name, "delete")
    delete_image_folder(ctx.instance(), ctx.project, name)
    catalog_changed(ctx.project)
    click.echo(f"Deleted image folder {name!r}.")


def _no_run_in_flight(ctx: CliContext, name: str, action: str) -> None:
    from dataplat_dagster.images.manage import in_flight_runs

    busy = in_flight_runs(ctx.instance(), ctx.project, name)
    if busy:
        ids = ", ".join(run.run_id for run in busy)
        raise DataplatError(f"Image folder {name!r} has {plural(len(busy), 'run')} in flight ({ids}); {action} it once it has finished.")
