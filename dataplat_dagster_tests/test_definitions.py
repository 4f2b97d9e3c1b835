"""Load a project's code location and materialize a dataset through Dagster, in a temporary
instance; then read what the UI shows back from the instance."""

import re
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey, instance_for_test

from dataplat_dagster import project_definitions
from dataplat_dagster.definitions import DATASETS_JOB
from dataplat_dagster.workspace import Workspace
from dataplat_dagster_tests.conftest import stored

CSV = "id;when;amount;label\n1;31/12/2024;1,5;a\n2;01/01/2025;2,5;b\n3;02/01/2025;;a\n"


def make_project(tmp_path: Path):
    workspace = Workspace.init(tmp_path / "ws")
    project = workspace.create_project("lab")
    (project.dir / "data.csv").write_text(CSV)
    text = project.catalog_path.read_text().replace(
        "datasets: {}", "datasets:\n  measures:\n    description: Lab measures.\n    source:\n      path: data.csv\n"
    )
    project.catalog_path.write_text(text)
    return project


def test_code_location_has_one_asset_per_dataset_in_the_project_group(tmp_path):
    project = make_project(tmp_path)
    defs = project_definitions(project.definitions_file)
    spec = defs.resolve_assets_def(AssetKey(["lab", "datasets", "measures"])).specs_by_key[
        AssetKey(["lab", "datasets", "measures"])
    ]
    assert spec.group_name == "lab"
    assert spec.tags["dataplat/origin"] == "file_upload"
    assert "parquet" in spec.kinds
    assert spec.description.startswith("Lab measures.")
    # The datasets job materializes this dataset (and so can refresh it from the UI).
    job = defs.resolve_job_def(DATASETS_JOB)
    assert AssetKey(["lab", "datasets", "measures"]) in job.asset_layer.selected_asset_keys


def test_materialize_records_native_metadata_in_the_instance(tmp_path):
    project = make_project(tmp_path)
    defs = project_definitions(project.definitions_file)
    key = AssetKey(["lab", "datasets", "measures"])
    with instance_for_test() as instance:
        result = defs.resolve_job_def(DATASETS_JOB).execute_in_process(instance=instance)
        assert result.success
        metadata = instance.get_latest_materialization_event(key).asset_materialization.metadata
    assert metadata["dagster/row_count"].value == 3
    schema = {c.name: c.type for c in metadata["dagster/column_schema"].value.columns}
    assert list(schema) == ["id", "when", "amount", "label"]
    # No absolute path of this host: a local root shows from the folder that holds it.
    assert re.fullmatch(r"storage/datasets/measures/versions/[0-9-]+/data\.parquet", metadata["dagster/uri"].value)
    assert metadata["size_bytes"].value > 0
    assert metadata["dialect"].value["sep"] == ";" and metadata["dialect"].value["decimal"] == ","
    sample = metadata["sample"].value
    assert [record.data["label"] for record in sample.records] == ["a", "b", "a"]
    assert "data:image/png;base64," in metadata["distributions"].value
    assert (stored(project.dir / "storage/datasets/measures", "report.html")).is_file()
    # Materializing never changes the definition: the profile stays in the metadata, so a
    # run's job snapshot still matches the code location's (re-execution shows no warning).
    reloaded = project_definitions(project.definitions_file).resolve_assets_def(key).specs_by_key[key]
    assert reloaded.description == "Lab measures."


def test_loading_a_code_location_imports_no_heavy_engines(tmp_path):
    project = make_project(tmp_path)
    code = (
        "import sys; from dataplat_dagster import project_definitions; "
        f"project_definitions({str(project.definitions_file)!r}); "
        "heavy = [m for m in ('torch', 'open_clip', 'great_expectations', 'matplotlib', 'duckdb') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_storage_root_can_be_any_fsspec_url(tmp_path):
    import fsspec
    import pyarrow.parquet as pq

    project = make_project(tmp_path)
    text = project.catalog_path.read_text().replace("storage_root: storage", "storage_root: memory://lab-storage")
    project.catalog_path.write_text(text)
    defs = project_definitions(project.definitions_file)
    with instance_for_test() as instance:
        assert defs.resolve_job_def(DATASETS_JOB).execute_in_process(instance=instance).success
        event = instance.get_latest_materialization_event(AssetKey(["lab", "datasets", "measures"]))
    uri = event.asset_materialization.metadata["dagster/uri"].value
    assert re.fullmatch(r"memory://lab-storage/datasets/measures/versions/[0-9-]+/data\.parquet", uri)
    memory = fsspec.filesystem("memory")
    with memory.open(uri.removeprefix("memory:/"), "rb") as handle:
        assert pq.read_table(handle).column("amount").to_pylist() == [1.5, 2.5, None]
    assert memory.exists(uri.removeprefix("memory:/").replace("data.parquet", "report.html"))
    assert not (project.dir / "storage").exists()


def test_materializing_without_profile_drops_the_stale_profile(tmp_path):
    project = make_project(tmp_path)
    job = project_definitions(project.definitions_file).resolve_job_def(DATASETS_JOB)
    folder = project.dir / "storage/datasets/measures"
    with instance_for_test() as instance:
        assert job.execute_in_process(instance=instance).success
        assert stored(folder, "profile.json").is_file() and stored(folder, "distributions.png").is_file()
        config = {"ops": {"lab__datasets__measures": {"config": {"profile": False}}}}
        assert job.execute_in_process(instance=instance, run_config=config).success
        metadata = instance.get_latest_materialization_event(AssetKey(["lab", "datasets", "measures"])).asset_materialization.metadata
    assert metadata["dagster/row_count"].value == 3 and "summary" not in metadata
    current = stored(folder, "data.parquet").parent
    assert sorted(p.name for p in current.iterdir() if p.is_file()) == ["data.parquet", "dialect.json", "manifest.json"]


def test_a_users_asset_reads_a_dataset_as_pandas_or_arrow(tmp_path):
    import pandas as pd
    import pyarrow as pa
    from dagster import AssetIn, Definitions, asset, define_asset_job

    project = make_project(tmp_path)
    project_defs = project_definitions(project.definitions_file)
    dataset = AssetKey(["lab", "datasets", "measures"])

    @asset(ins={"measures": AssetIn(key=dataset)})
    def total_amount(measures: pd.DataFrame) -> float:
        return float(measures["amount"].sum())

    @asset(ins={"measures": AssetIn(key=dataset)})
    def labels(measures: pa.Table) -> list:
        return measures.column("label").to_pylist()

    downstream = define_asset_job("downstream", selection=[total_amount.key, labels.key])
    defs = Definitions.merge(project_defs, Definitions(assets=[total_amount, labels], jobs=[downstream]))
    with instance_for_test() as instance:
        assert defs.resolve_job_def(DATASETS_JOB).execute_in_process(instance=instance).success
        result = defs.resolve_job_def("downstream").execute_in_process(instance=instance)
    assert result.output_for_node("total_amount") == 4.0
    assert result.output_for_node("labels") == ["a", "b", "a"]
