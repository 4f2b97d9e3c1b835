"""``dataplat init``, ``dataplat project ...`` and ``dataplat dev``."""

from __future__ import annotations

import os
import sys

import click

from dataplat_dagster.cli.context import CliContext, pass_context
from dataplat_dagster.cli.output import print_json, print_table
from dataplat_dagster.workspace import WORKSPACE_FILE, Workspace


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
def init(directory: str) -> None:
    """Create a new, empty workspace in DIRECTORY (default: the current folder)."""
    workspace = Workspace.init(directory)
    click.echo(f"Created workspace {workspace.root} ({WORKSPACE_FILE}, dagster.yaml, projects/).")
    click.echo("Next: `dataplat project create NAME`.")


@click.group()
def project() -> None:
    """Projects: one Dagster code location each, holding their own data."""


@project.command("create")
@click.argument("name")
@pass_context
def project_create(ctx: CliContext, name: str) -> None:
    """Add project NAME: a folder under projects/ and a code location in workspace.yaml."""
    created = ctx.workspace.create_project(name)
    click.echo(f"Created project {name!r} in {created.dir}.")


@project.command("migrate")
@pass_context
def project_migrate(ctx: CliContext) -> None:
    """Move what earlier versions wrote into dataplat.yaml at run time (imported datasets,
    pipeline datasets) into the project's registry under its storage root; once is enough."""
    from dataplat_dagster.catalog.migrate import migrate_project
    from dataplat_dagster.cli.catalog_entries import catalog_changed

    moved = migrate_project(ctx.project)
    if not moved:
        click.echo(f"Nothing to migrate in project {ctx.project.name!r}: dataplat.yaml holds declarations only.")
        return
    catalog_changed(ctx.project)
    click.echo(f"Moved {len(moved)} dataset(s) from dataplat.yaml to the project's registry: {', '.join(moved)}.")


@project.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def project_list(ctx: CliContext, as_json: bool) -> None:
    """List the workspace's projects."""
    workspace = ctx.workspace
    names = workspace.project_names()
    rows = [{"name": name, "path": str(workspace.project(name).dir)} for name in names]
    if as_json:
        print_json(rows)
    elif rows:
        print_table(["name", "path"], [[r["name"], r["path"]] for r in rows])
    else:
        click.echo("No projects yet: create one with `dataplat project create NAME`.")


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("dagster_args", nargs=-1, type=click.UNPROCESSED)
@pass_context
def dev(ctx: CliContext, dagster_args: tuple[str, ...]) -> None:
    """Start the Dagster UI on this workspace (``dagster dev -w workspace.yaml``); arguments
    after ``--`` go to ``dagster dev`` (``dataplat dev -- -p 3001``). The address is recorded
    in the workspace, so that the CLI asks this webserver to reload a project's code
    location whenever it changes the project's catalog."""
    from dataplat_dagster.webserver import record_dev

    workspace = ctx.workspace
    os.environ.setdefault("DAGSTER_HOME", str(workspace.root))
    os.chdir(workspace.root)
    record_dev(workspace.root, _served_url(dagster_args))  # this process becomes dagster dev: same pid
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    os.execv(dagster, [dagster, "dev", "-w", str(workspace.workspace_file), *dagster_args])


def _served_url(dagster_args: tuple[str, ...]) -> str:
    """Where ``dagster dev`` will serve, read by ``dagster dev``'s own option parser (so every
    spelling it accepts, ``-p3001`` and ``--dagit-port`` included, gives its address)."""
    from dagster._cli.dev import dev_command

    params = dev_command.make_context("dev", list(dagster_args), resilient_parsing=True).params
    host = params.get("host") or "127.0.0.1"
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{host}:{params.get('port') or 3000}"
