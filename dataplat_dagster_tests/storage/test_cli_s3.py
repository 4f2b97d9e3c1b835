"""End to end through the real `dataplat` CLI: a project stored on moto's S3 through its
storage connector (one module per store, so that pytest-xdist runs them side by side)."""

from dataplat_dagster_tests.storage.conftest import s3_keys
from dataplat_dagster_tests.storage.roundtrip import assert_round_trip, use_storage


def test_a_project_on_s3(cli_workspace, s3, tmp_path):
    env = {"LAKE_KEY": s3.access_key, "LAKE_SECRET": s3.secret_key}
    cli_workspace.run(
        "connector", "create", "s3", "lake", "--bucket", s3.bucket, "--region", s3.region,
        "--endpoint-url", s3.endpoint_url, "--access-key-env", "LAKE_KEY", "--secret-key-env", "LAKE_SECRET", env=env,
    )
    use_storage(cli_workspace, f"s3://{s3.bucket}/shop", "lake")

    assert_round_trip(cli_workspace, tmp_path, lambda prefix: s3_keys(s3, prefix), env)
