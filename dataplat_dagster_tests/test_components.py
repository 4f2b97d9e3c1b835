"""The DataplatProject component: registered for `dg`, and loading a project from defs.yaml."""

from importlib.metadata import entry_points

from dagster import AssetKey
from dagster.components.testing import create_defs_folder_sandbox

from dataplat_dagster import DataplatProject
from dataplat_dagster_tests.test_definitions import make_project


def test_component_registry_entry_point_names_our_module():
    found = {e.name: e.value for e in entry_points(group="dagster_dg_cli.registry_modules")}
    assert found["dataplat_dagster"] == "dataplat_dagster.components"


def test_defs_yaml_declares_a_whole_project(tmp_path):
    project = make_project(tmp_path)
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(
            component_cls=DataplatProject,
            defs_yaml_contents={"type": "dataplat_dagster.DataplatProject", "attributes": {"project_dir": str(project.dir)}},
        )
        with sandbox.load_component_and_build_defs(defs_path=defs_path) as (component, defs):
            assert isinstance(component, DataplatProject)
            key = AssetKey(["lab", "datasets", "measures"])
            assert defs.resolve_assets_def(key).specs_by_key[key].group_name == "lab"
            assert key in defs.resolve_job_def("refresh_datasets").asset_layer.selected_asset_keys
