"""The storage tests' servers: moto's S3 and the GCS emulator, emptied for each test."""

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage


def gcs_bucket(server) -> storage.Bucket:
    """The emulator's bucket through the bare client, for setting up and checking."""
    client = storage.Client(project=server.project, credentials=AnonymousCredentials(), client_options={"api_endpoint": server.endpoint_url})
    return client.bucket(server.bucket)


def s3_keys(server, prefix: str = "") -> list[str]:
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=server.bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def gcs_names(server, prefix: str = "") -> list[str]:
    return sorted(blob.name for blob in gcs_bucket(server).list_blobs(prefix=prefix))


@pytest.fixture
def s3(s3_server):
    s3_server.reset()
    return s3_server


@pytest.fixture
def gcs(gcs_server):
    for blob in gcs_bucket(gcs_server).list_blobs():
        blob.delete()
    return gcs_server
