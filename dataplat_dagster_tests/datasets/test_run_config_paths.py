"""A dataset run's `upload` config names a file staged in the dataset's own raw/ folder and
nothing else: no other file of the run's host, not even through a link."""

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, instance_for_test

from dataplat_dagster.definitions import DATASETS_JOB, project_definitions
from dataplat_dagster_tests.test_definitions import make_project

KEY = AssetKey(["lab", "datasets", "measures"])
SECRET = "user,password\nroot,hunter2\n"


def run_with_upload(project, instance, upload: str):
    job = project_definitions(project.definitions_file).resolve_job_def(DATASETS_JOB)
    config = {"ops": {"lab__datasets__measures": {"config": {"upload": upload}}}}
    return job.execute_in_process(instance=instance, run_config=config, raise_on_error=False)


def step_failure(result):
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    return failure.step_failure_data


def raw_folder(project) -> Path:
    return project.dir / "storage" / "datasets" / "measures" / "raw"


@pytest.mark.parametrize(
    "upload", ["/etc/passwd", "../../../etc/passwd", "raw/../../../../etc/passwd", "raw/x/../../y.csv", "raw/x\\..\\y.csv"]
)
def test_an_upload_outside_the_datasets_raw_folder_is_refused_with_what_to_do(tmp_path, upload):
    project = make_project(tmp_path)
    with instance_for_test() as instance:
        result = run_with_upload(project, instance, upload)
        assert not result.success
        failure = step_failure(result)
        assert failure.error.cls_name == "Failure"  # the message, no traceback of ours
        assert failure.user_failure_data.description == (
            f"The run's upload {upload!r} is not an upload of dataset 'measures': it must be raw/<id>/<file name>, "
            "a file staged in the dataset's storage folder by `dataplat dataset import`. Leave `upload` unset to "
            "parse the dataset's current raw file again, or import the file with `dataplat dataset import`."
        )
        assert instance.get_latest_materialization_event(KEY) is None


@pytest.mark.parametrize("linked", ["file", "folder"])
def test_an_upload_that_links_out_of_the_raw_folder_is_refused_and_its_target_kept(tmp_path, linked):
    project = make_project(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text(SECRET)
    raw_folder(project).mkdir(parents=True)
    if linked == "file":
        (raw_folder(project) / "abc").mkdir()
        (raw_folder(project) / "abc" / "secret.csv").symlink_to(outside / "secret.csv")
    else:
        (raw_folder(project) / "abc").symlink_to(outside, target_is_directory=True)
    with instance_for_test() as instance:
        result = run_with_upload(project, instance, "raw/abc/secret.csv")
        assert not result.success
        assert step_failure(result).user_failure_data.description == (
            "The run's upload 'raw/abc/secret.csv' leads out of dataset 'measures''s raw folder (a link); "
            "import the file itself with `dataplat dataset import`."
        )
        assert instance.get_latest_materialization_event(KEY) is None
    assert (outside / "secret.csv").read_text() == SECRET
    assert not list(project.dir.glob("storage/datasets/measures/**/data.parquet"))


def test_a_file_staged_in_the_raw_folder_is_read(tmp_path):
    project = make_project(tmp_path)
    staged = raw_folder(project) / "abc" / "fresh.csv"
    staged.parent.mkdir(parents=True)
    staged.write_text("sample,value\nx,1.5\ny,2.5\n")
    with instance_for_test() as instance:
        result = run_with_upload(project, instance, "raw/abc/fresh.csv")
        assert result.success
        metadata = instance.get_latest_materialization_event(KEY).asset_materialization.metadata
        assert metadata["dataplat/upload"].value == "raw/abc/fresh.csv"
        assert metadata["dagster/row_count"].value == 2
    (data,) = project.dir.glob("storage/datasets/measures/**/data.parquet")
    assert pq.read_table(data).to_pydict() == {"sample": ["x", "y"], "value": [1.5, 2.5]}
