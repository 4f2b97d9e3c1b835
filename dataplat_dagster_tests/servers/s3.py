"""moto's S3 in server mode on 127.0.0.1, with request signatures and IAM enforced.

By default moto accepts any credentials. It checks signatures and IAM policies once
its count of unauthenticated requests (INITIAL_NO_AUTH_ACTION_COUNT, infinite by
default) is used up. So the server starts open, two IAM users with access keys and
inline policies and the bucket are created, and then `POST /moto-api/reset-auth 0`
ends the open period: from there a wrong secret key gets SignatureDoesNotMatch, an
unknown key id InvalidAccessKeyId, and what a policy does not allow AccessDenied.
Flipping it after the setup, instead of counting the setup's requests in advance,
keeps the setup free to change.
"""

import json
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from dataplat_dagster_tests.servers.ports import HOST, free_port, port_open
from dataplat_dagster_tests.servers.process import ServerHandle, ServerProcess

REGION = "us-east-1"
BUCKET = "dataplat-test"
READ_ONLY_ACTIONS = ["s3:ListBucket", "s3:GetObject"]


@dataclass
class S3Server(ServerHandle):
    """How to reach the server.

    `access_key`/`secret_key` may do anything on S3; `readonly_access_key`/
    `readonly_secret_key` may only list buckets' contents and download (s3:ListBucket,
    s3:GetObject), so uploads and deletes get AccessDenied. `auth_enforced` says that
    wrong credentials are refused (always true here: moto enforces them, see above).
    """

    endpoint_url: str
    region: str
    access_key: str
    secret_key: str
    readonly_access_key: str
    readonly_secret_key: str
    bucket: str
    auth_enforced: bool
    _process: ServerProcess = field(repr=False)

    def client(self):
        """A boto3 S3 client with the full-access key, for setting up and checking."""
        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
        )

    def reset(self) -> None:
        """Back to one empty `bucket`: every object, version, upload and other bucket goes.

        moto's own `/moto-api/reset` would also wipe the IAM users, and new access keys
        would not match the ones tests hold, so this empties S3 through the API instead.
        """
        s3 = self.client()
        for bucket in s3.list_buckets()["Buckets"]:
            name = bucket["Name"]
            # Collect first: deleting while paginating moves the pages under the paginator.
            versions = [
                version
                for page in s3.get_paginator("list_object_versions").paginate(Bucket=name)
                for version in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            for version in versions:
                s3.delete_object(Bucket=name, Key=version["Key"], VersionId=version["VersionId"])
            for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=name):
                for upload in page.get("Uploads", []):
                    s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
            s3.delete_bucket(Bucket=name)
        s3.create_bucket(Bucket=self.bucket)


def start_s3(workdir: Path, timeout: float = 60.0) -> S3Server:
    """Start moto_server on a free port, create the IAM users and the bucket, enforce auth."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    endpoint_url = f"http://{HOST}:{port}"
    process = ServerProcess(
        "moto", [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
        workdir / "moto.log", cwd=workdir,
    )
    with process.starting():
        process.wait_ready(lambda: port_open(HOST, port), timeout)
        # Any key works until auth is enforced below.
        open_access = dict(endpoint_url=endpoint_url, region_name=REGION,
                           aws_access_key_id="setup", aws_secret_access_key="setup")
        iam = boto3.client("iam", **open_access)
        access_key, secret_key = _iam_user(iam, "dataplat-admin", ["s3:*"])
        readonly_access_key, readonly_secret_key = _iam_user(iam, "dataplat-readonly", READ_ONLY_ACTIONS)
        boto3.client("s3", **open_access).create_bucket(Bucket=BUCKET)
        _post(f"{endpoint_url}/moto-api/reset-auth", b"0")
    return S3Server(
        endpoint_url=endpoint_url, region=REGION, access_key=access_key, secret_key=secret_key,
        readonly_access_key=readonly_access_key, readonly_secret_key=readonly_secret_key,
        bucket=BUCKET, auth_enforced=True, _process=process,
    )


def _iam_user(iam, name: str, actions: list[str]) -> tuple[str, str]:
    """An IAM user allowed `actions` on every resource; its new access key id and secret."""
    iam.create_user(UserName=name)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def _post(url: str, body: bytes) -> None:
    # Not urllib's default form content type: moto would parse the body as a form
    # and see it empty.
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "text/plain"})
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"POST {url}: {error.code} {error.read()[:500]!r}") from error
