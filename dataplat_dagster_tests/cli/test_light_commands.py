"""Commands that only read the project's files never import Dagster (0.7 s of each command),
nor any engine: the package's public names load on first use."""

import subprocess
import sys

import pytest

PROBE = """
import sys
from dataplat_dagster.cli.main import cli
try:
    cli.main(args=sys.argv[1:], prog_name="dataplat", standalone_mode=False)
except SystemExit:
    pass
heavy = ("dagster", "sqlalchemy", "alembic", "pandas", "duckdb", "great_expectations", "torch")
print("imported:", sorted(name for name in heavy if name in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize("command", [["--help"], ["project", "list"], ["connector", "list"], ["datasource", "list"],
                                     ["exporter", "list"], ["connector", "show", "lake"], ["datasource", "show", "files"]])
def test_a_command_that_only_reads_files_imports_no_dagster(cli_workspace, command):
    """(``dataset list``/``show``/``versions`` and ``check list``: ``test_recorded_state``.)"""
    ws = cli_workspace
    ws.run("connector", "create", "s3", "lake", "--bucket", "lake-bucket", "--endpoint-url", "http://127.0.0.1:9")
    ws.run("datasource", "create", "files", "--connector", "lake", "--path", "a.csv")
    probe = subprocess.run([sys.executable, "-c", PROBE, *command], cwd=ws.root, capture_output=True, text=True,
                           env={"DAGSTER_HOME": str(ws.root), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert "imported: []" in probe.stderr, probe.stderr
    assert probe.stdout.strip(), probe.stderr  # it did print what it reads


def test_the_public_names_still_import():
    import dataplat_dagster
    from dataplat_dagster import dataset_in, pipeline_dataset, project_definitions

    assert callable(dataset_in) and callable(pipeline_dataset) and callable(project_definitions)
    assert set(dataplat_dagster.__all__) == {"DataplatProject", "dataset_in", "datasource_asset", "datasource_op",
                                             "image_folder", "load_image_folder", "pipeline_dataset", "project_definitions"}
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        dataplat_dagster.nope  # noqa: B018
