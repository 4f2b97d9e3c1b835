"""End to end through the real `dataplat` CLI: a project stored on the GCS emulator through
its storage connector (one module per store, so that pytest-xdist runs them side by side)."""

from dataplat_dagster_tests.storage.conftest import gcs_names
from dataplat_dagster_tests.storage.roundtrip import assert_round_trip, use_storage


def test_a_project_on_gcs(cli_workspace, gcs, tmp_path):
    cli_workspace.run(
        "connector", "create", "gcs", "media", "--bucket", gcs.bucket, "--gcp-project", gcs.project,
        "--endpoint-url", gcs.endpoint_url,
    )
    use_storage(cli_workspace, f"gs://{gcs.bucket}/shop", "media")

    assert_round_trip(cli_workspace, tmp_path, lambda prefix: gcs_names(gcs, prefix), {})
