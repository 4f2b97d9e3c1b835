"""Entry point of the ``dataplat`` command: global options and error reporting.

A ``DataplatError`` is printed as one paragraph on stderr with a non-zero exit and no
traceback; any other exception too, unless ``--debug`` asks for the traceback.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import textwrap

import click

from dataplat_dagster.cli.check import check
from dataplat_dagster.cli.connector import connector
from dataplat_dagster.cli.context import CliContext
from dataplat_dagster.cli.datasource import datasource
from dataplat_dagster.cli.embeddings import embeddings
from dataplat_dagster.cli.dataset import dataset
from dataplat_dagster.cli.exporter import exporter
from dataplat_dagster.cli.image_folder import image_folder
from dataplat_dagster.cli.project import dev, init, project
from dataplat_dagster.errors import DataplatError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--workspace", "workspace_dir", metavar="DIR", help="Workspace folder (default: $DATAPLAT_WORKSPACE, else the nearest parent holding workspace.yaml).")
@click.option("--project", "project_name", metavar="NAME", help="Project (default: $DATAPLAT_PROJECT, else the only project).")
@click.option("--dagster-url", metavar="URL", envvar="DATAPLAT_DAGSTER_URL",
              help="The webserver of a deployment (default: $DATAPLAT_DAGSTER_URL): runs are launched through it.")
@click.option("--debug", is_flag=True, help="Show Python tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, workspace_dir: str | None, project_name: str | None, dagster_url: str | None, debug: bool) -> None:
    """dataplat: datasets, connectors, datasources and exporters on Dagster."""
    if dagster_url:
        os.environ["DATAPLAT_DAGSTER_URL"] = dagster_url
    ctx.obj = CliContext(workspace_dir, project_name, debug)


cli.add_command(init)
cli.add_command(project)
cli.add_command(dataset)
cli.add_command(connector)
cli.add_command(datasource)
cli.add_command(exporter)
cli.add_command(image_folder)
cli.add_command(embeddings)
cli.add_command(check)
cli.add_command(dev)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    # At exit, the garbage collector would walk every object Dagster created (0.7-0.9 s per
    # command, measured); frozen, they are left to the process's end. atexit still runs.
    atexit.register(gc.freeze)
    debug = "--debug" in argv
    try:
        cli.main(args=argv, prog_name="dataplat", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("Aborted.", 130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except DataplatError as error:
        if debug:
            raise
        _fail(str(error), error.exit_code)
    except KeyboardInterrupt:
        _fail("Interrupted.", 130)
    except Exception as error:  # a bug or an environment problem: say what, keep the traceback for --debug
        if debug:
            raise
        _fail(f"Unexpected error: {type(error).__name__}: {error}. Run again with --debug to see the traceback.", 1)
    sys.exit(0)


def _fail(message: str, code: int) -> None:
    lines = message.splitlines() or [""]
    head = f"error: {lines[0]}"
    if sys.stderr.isatty():
        # The first line is the paragraph: wrap it for people; scripts get it on one line.
        head = textwrap.fill(lines[0], width=100, initial_indent="error: ", subsequent_indent="  ")
    click.echo("\n".join([head, *lines[1:]]), err=True)
    sys.exit(code)
