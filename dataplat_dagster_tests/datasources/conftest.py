import pytest

from dataplat_dagster_tests.datasources.sources import S3_KEY_ENV, S3_SECRET_ENV


@pytest.fixture
def s3(s3_server, monkeypatch):
    """The test S3 server, emptied, with the connector's credentials in the environment."""
    s3_server.reset()
    monkeypatch.setenv(S3_KEY_ENV, s3_server.access_key)
    monkeypatch.setenv(S3_SECRET_ENV, s3_server.secret_key)
    return s3_server
