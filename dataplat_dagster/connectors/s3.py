"""The Amazon S3 connector (and S3-compatible stores: MinIO, Ceph, ... through ``endpoint_url``).

The client comes from dagster-aws's ``S3Resource``, so credentials work as they do in the
rest of Dagster: keys from the catalog's variables, else the default AWS credential chain
(environment, ``~/.aws``, an instance or task role). botocore retries each request (S3's
throttling and 5xx answers, dropped connections) up to the connector's ``retries``;
``retrying`` re-runs an operation whose connection still failed. ``S3Resource`` takes no
time-outs, so ``timeout_s`` bounds the check's connection steps while requests wait as
long as botocore does (60 s).

Writes stream: ``write`` sends parts of a multipart upload as they fill and completes it
only when the block ends without an error (a failure aborts it, so nothing appears and an
older object at that name stays); ``upload`` / ``download`` use boto3's managed, threaded
transfer, the fastest path it has.
"""

import io
import logging
import os
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timezone
from itertools import islice
from pathlib import Path
from typing import BinaryIO, ClassVar, Optional, TypeVar
from urllib.parse import urlsplit

from pydantic import Field

from dataplat_dagster.connectors.base import FileStoreConnector, env_reference
from dataplat_dagster.connectors.checks import CheckReport, Checker, content_steps, StepFailed, resolve_host, tcp_connect
from dataplat_dagster.connectors.filestore import FileInfo, FileStore, clean_path
from dataplat_dagster.errors import ConnectorError

T = TypeVar("T")
log = logging.getLogger("dataplat.connectors")

# Multipart parts start at 8 MiB and double every 1,000 parts: S3 allows 10,000 parts,
# so a stream of any size up to S3's 5 TB limit fits, with at most one part in memory.
PART_SIZE = 8 * 1024 * 1024
PARTS_PER_SIZE = 1000
MAX_PARTS = 10_000
# Managed transfers: boto3's own defaults, which measured as fast as anything larger on
# 100 MB files; stated here so that a boto3 upgrade does not change them unnoticed.
TRANSFER_PART_SIZE = 8 * 1024 * 1024
TRANSFER_THREADS = 10
# Error codes that mean the key id or the secret is wrong.
CREDENTIAL_ERRORS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidClientTokenId", "InvalidToken", "ExpiredToken"}
PERMISSION_ERRORS = {"AccessDenied", "AllAccessDisabled", "AccountProblem", "403"}


class S3Connector(FileStoreConnector):
    """An S3 bucket (or an S3-compatible store), from a key prefix down."""

    connector_type: ClassVar[str] = "s3"
    secret_fields: ClassVar[tuple[str, ...]] = ("access_key", "secret_key")

    bucket: str = Field(description="The bucket's name.")
    prefix: str = Field("", description="Key prefix that paths start from.")
    region: Optional[str] = Field(None, description="The bucket's region; default: the AWS configuration's.")
    endpoint_url: Optional[str] = Field(None, description="For S3-compatible stores (MinIO, Ceph, ...).")
    access_key: Optional[str] = Field(None, description="Access key id, from the environment variable named in the catalog; none: the default AWS credential chain.")
    secret_key: Optional[str] = Field(None, description="Secret access key, from the environment variable named in the catalog.")
    # The variables' names survive Dagster's resolution of the values: messages name them.
    access_key_env: Optional[str] = Field(None, description="Name of the variable holding the access key id (for messages).")
    secret_key_env: Optional[str] = Field(None, description="Name of the variable holding the secret access key (for messages).")

    @classmethod
    def from_spec(cls, name: str, spec, project_dir: Path) -> "S3Connector":
        return cls(
            **cls.common_fields(name, spec, project_dir),
            bucket=spec.bucket,
            prefix=spec.prefix,
            region=spec.region,
            endpoint_url=spec.endpoint_url,
            access_key=env_reference(spec.access_key_env),
            secret_key=env_reference(spec.secret_key_env),
            access_key_env=spec.access_key_env,
            secret_key_env=spec.secret_key_env,
        )

    def s3_resource(self):
        """dagster-aws's resource for these settings; its ``get_client()`` is what we use."""
        from dagster_aws.s3 import S3Resource

        return S3Resource(
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            # S3Resource counts retries after the first attempt.
            max_attempts=max(0, self.retries - 1),
        )

    def open_store(self) -> "S3Store":
        return S3Store(self, self.s3_resource().get_client())

    def endpoint(self) -> str:
        """The URL requests go to: ``endpoint_url``, else the region's AWS endpoint."""
        if self.endpoint_url:
            return self.endpoint_url
        import boto3

        region = self.region or boto3.session.Session().region_name or "us-east-1"
        return f"https://s3.{region}.amazonaws.com"

    def credentials_problem(self) -> str:
        """What to fix when S3 rejects the keys, naming where they come from."""
        if not self.access_key:
            return (
                "S3 rejected the credentials of the default AWS credential chain (AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, the instance role): check them, or give the "
                "connector access_key_env and secret_key_env"
            )
        key_from = f"${self.access_key_env}" if self.access_key_env else "access_key"
        secret_from = f"${self.secret_key_env}" if self.secret_key_env else "secret_key"
        return (
            f"the access key id (from {key_from}) or the secret access key (from {secret_from}) is wrong: "
            "S3 does not know the key id, or the secret does not match it; set both variables to a valid pair"
        )

    def check(self, write: bool = False) -> CheckReport:
        checker = Checker(self.connector_name, self.connector_type, secrets=self.secret_values(), write=write)
        store: Optional[S3Store] = None

        def authenticate() -> str:
            nonlocal store
            store = stack.enter_context(self.open_store())
            return store.authenticate()

        with checker, ExitStack() as stack:
            endpoint_steps(checker, self.endpoint(), self.timeout_s, "AWS_CA_BUNDLE")
            checker.run("authenticate", authenticate)
            checker.run("bucket", store.check_bucket)
            files = checker.run("list", lambda: list(islice(store.iter_files(), 5)), lambda found: listed(found, store.address))
            content_steps(checker, store, files[0] if files else None, write, f"nothing to read: no object under {store.address}")
        return checker.report


class ObjectPaths:
    """File paths as object names under a prefix (``root``), for the S3 and GCS stores."""

    root: str

    def key(self, path: str) -> str:
        """The object name of a file path."""
        cleaned = clean_path(path)
        if not cleaned:
            raise ConnectorError(f"{path!r} names the connector's root, not a file: give a file path.")
        return f"{self.root}/{cleaned}" if self.root else cleaned

    def key_prefix(self, prefix: str) -> str:
        """The name prefix of a path prefix; a trailing ``/`` keeps meaning "inside this folder"."""
        cleaned = clean_path(prefix)
        if cleaned and prefix.endswith("/"):
            cleaned += "/"
        return f"{self.root}/{cleaned}" if self.root else cleaned

    def path(self, key: str) -> str:
        return key[len(self.root) + 1 :] if self.root else key

    @staticmethod
    def is_folder_marker(key: str) -> bool:
        """A name ending in "/" is an empty "folder" made by a console, not a file."""
        return key.endswith("/")


class S3Store(ObjectPaths, FileStore):
    """The connector's bucket and prefix, through one boto3 client."""

    def __init__(self, connector: S3Connector, client):
        self.connector = connector
        self.client = client
        self.bucket = connector.bucket
        self.root = clean_path(connector.prefix)
        self.address = f"s3://{self.bucket}/{self.root}"

    # -- calls and their failures -------------------------------------------------------

    def call(self, what: str, action: Callable[[], T], missing: Optional[str] = None) -> T:
        """``action`` with retries; failures in words. A 404 on ``missing`` is FileNotFoundError."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.connector.retrying(action, what)
        except ClientError as error:
            if missing is not None and error_code(error) in ("404", "NoSuchKey"):
                raise self.not_found(missing) from None
            raise self.failure(error, what) from None
        except BotoCoreError as error:
            raise self.failure(error, what) from None
        except S3UploadFailedError as error:
            # boto3 wraps a managed upload's ClientError in this; the cause says why.
            raise self.failure(error.__context__ or error, what) from None

    def failure(self, error: Exception, what: str) -> ConnectorError:
        from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError, PartialCredentialsError
        from botocore.exceptions import ConnectionError as NetworkError

        if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
            return self.connector.fail(no_credentials_message(), error)
        if isinstance(error, (NetworkError, HTTPClientError)):
            return self.connector.fail(f"cannot {what}: {self.connector.endpoint()} did not answer", error)
        if not isinstance(error, ClientError):
            return self.connector.fail(f"cannot {what} in {self.address}", error)
        code = error_code(error)
        if code in CREDENTIAL_ERRORS:
            return self.connector.fail(self.connector.credentials_problem(), error)
        if code == "NoSuchBucket":
            return self.connector.fail(missing_bucket_message(self.bucket), error)
        if code in PERMISSION_ERRORS:
            return self.connector.fail(f"permission denied to {what} in {self.address}: the credentials lack the S3 permission for it on this bucket or prefix", error)
        return self.connector.fail(f"cannot {what} in {self.address}", error)

    # -- the FileStore interface --------------------------------------------------------

    def iter_files(self, prefix: str = "") -> Iterator[FileInfo]:
        """The files under ``prefix``, one listing page (1,000 keys) at a time."""
        request = {"Bucket": self.bucket, "Prefix": self.key_prefix(prefix)}
        while True:
            page = self.call("list objects", lambda: self.client.list_objects_v2(**request))
            for item in page.get("Contents", []):
                if not self.is_folder_marker(item["Key"]):
                    yield FileInfo(self.path(item["Key"]), item["Size"], item["LastModified"].astimezone(timezone.utc), item["ETag"].strip('"'))
            if not page.get("IsTruncated"):
                return
            request["ContinuationToken"] = page["NextContinuationToken"]

    def list(self, prefix: str = "") -> list[FileInfo]:
        return list(self.iter_files(prefix))

    def stat(self, path: str) -> FileInfo:
        key = self.key(path)
        head = self.call(f"read the metadata of {key!r}", lambda: self.client.head_object(Bucket=self.bucket, Key=key), missing=path)
        return FileInfo(clean_path(path), head["ContentLength"], head["LastModified"].astimezone(timezone.utc), head["ETag"].strip('"'))

    @contextmanager
    def open_read(self, path: str) -> Iterator[BinaryIO]:
        key = self.key(path)
        response = self.call(f"read {key!r}", lambda: self.client.get_object(Bucket=self.bucket, Key=key), missing=path)
        body = response["Body"]  # botocore's StreamingBody: reads from the socket as asked
        try:
            yield body
        finally:
            body.close()

    @contextmanager
    def write(self, path: str) -> Iterator[BinaryIO]:
        upload = MultipartWriter(self, self.key(path))
        try:
            yield upload
            upload.commit()
        except BaseException:
            upload.abort()
            raise

    def delete(self, path: str) -> None:
        key = self.key(path)
        # S3 deletes a missing key without a word; the interface says FileNotFoundError.
        self.stat(path)
        self.call(f"delete {key!r}", lambda: self.client.delete_object(Bucket=self.bucket, Key=key))

    def upload(self, local_path, path: str) -> FileInfo:
        key = self.key(path)
        self.call(f"upload to {key!r}", lambda: self.client.upload_file(str(local_path), self.bucket, key, Config=transfer_config()))
        return self.stat(path)

    def download(self, path: str, local_path) -> Path:
        # boto3 writes to a temporary name and renames it when complete, so a failure
        # leaves nothing at ``local_path``.
        key = self.key(path)
        local_path = Path(local_path)
        self.call(f"download {key!r}", lambda: self.client.download_file(self.bucket, key, str(local_path), Config=transfer_config()), missing=path)
        return local_path

    def close(self) -> None:
        self.client.close()

    # -- the check's steps ---------------------------------------------------------------

    def authenticate(self) -> str:
        """Any signed request proves the keys; ListBuckets needs no bucket permission."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.list_buckets()
        except ClientError as error:
            code = error_code(error)
            if code in CREDENTIAL_ERRORS:
                raise StepFailed(f"{self.connector.credentials_problem()} ({code})") from None
            if code not in PERMISSION_ERRORS:
                raise self.failure(error, "sign in") from None
            return "credentials accepted (they may not list the account's buckets, which the connector does not need)"
        except BotoCoreError as error:  # no credentials, or no answer
            raise self.failure(error, "sign in") from None
        return "credentials accepted"

    def check_bucket(self) -> str:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            region = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-bucket-region")
            if status == 404:
                raise StepFailed(missing_bucket_message(self.bucket)) from None
            if status == 403:
                # S3 answers 404 for a missing bucket whoever asks, so a 403 means it exists;
                # a policy may allow listing only under the prefix, which the next step tries.
                return f"bucket {self.bucket!r} exists (these credentials may not read it as a whole)"
            if status == 301 and region:
                raise StepFailed(f"bucket {self.bucket!r} is in region {region}, not {self.client.meta.region_name}: set the connector's region to {region}") from None
            raise self.failure(error, "read the bucket") from None
        region = head.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-bucket-region")
        return f"bucket {self.bucket!r} exists" + (f" (region {region})" if region else "")

    def read_head(self, path: str, size: int) -> bytes:
        key = self.key(path)
        response = self.call(f"read {key!r}", lambda: self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{size - 1}"), missing=path)
        with response["Body"] as body:
            return body.read()


class MultipartWriter(io.RawIOBase):
    """A write-only stream that uploads parts as they fill.

    Nothing is visible at the key until ``commit``: a file smaller than one part is sent
    with a single PUT then, a larger one is a multipart upload that ``commit`` completes
    and ``abort`` discards.
    """

    def __init__(self, store: S3Store, key: str):
        super().__init__()
        self.store = store
        self.key = key
        self.buffer = bytearray()
        self.parts: list[dict] = []
        self.upload_id: Optional[str] = None
        self.written = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.written

    def write(self, data) -> int:
        self.buffer += data
        self.written += len(data)
        if len(self.buffer) >= self.part_size():
            self.send_part()
        return len(data)

    def part_size(self) -> int:
        return PART_SIZE * 2 ** (len(self.parts) // PARTS_PER_SIZE)

    def send_part(self) -> None:
        """Upload the buffer as the next part; parts need not be equal, so it goes whole."""
        if len(self.parts) >= MAX_PARTS:
            raise self.store.connector.fail(f"{self.key!r} is larger than S3 accepts in one object")
        client, bucket = self.store.client, self.store.bucket
        if self.upload_id is None:
            created = self.store.call(f"start the upload of {self.key!r}", lambda: client.create_multipart_upload(Bucket=bucket, Key=self.key))
            self.upload_id = created["UploadId"]
        number, body = len(self.parts) + 1, self.buffer
        sent = self.store.call(
            f"upload part {number} of {self.key!r}",
            lambda: client.upload_part(Bucket=bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=body),
        )
        self.parts.append({"PartNumber": number, "ETag": sent["ETag"]})
        # A new buffer rather than clear(): the old one is still the part's request body.
        self.buffer = bytearray()

    def commit(self) -> None:
        client, bucket = self.store.client, self.store.bucket
        if self.upload_id is None:
            body = self.buffer
            self.store.call(f"write {self.key!r}", lambda: client.put_object(Bucket=bucket, Key=self.key, Body=body))
            return
        if self.buffer:
            self.send_part()
        parts = {"Parts": self.parts}
        self.store.call(
            f"complete the upload of {self.key!r}",
            lambda: client.complete_multipart_upload(Bucket=bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload=parts),
        )

    def abort(self) -> None:
        """Discard the uploaded parts; if the server cannot be told, S3 keeps them until a
        lifecycle rule for incomplete multipart uploads removes them (they are never visible)."""
        self.buffer = bytearray()
        if self.upload_id is None:
            return
        try:
            self.store.client.abort_multipart_upload(Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id)
        except Exception as error:
            log.warning("%s: could not abort the unfinished upload of %r: %s", self.store.connector.connector_name, self.key, error)


# -- helpers shared with the GCS connector ------------------------------------------------


def endpoint_steps(checker: Checker, url: str, timeout_s: float, ca_bundle_var: str) -> None:
    """The steps ``resolve``, ``connect`` and (for https) ``tls`` of an HTTP endpoint;
    ``ca_bundle_var`` is the variable with which the client library takes a private CA."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        checker.fail("resolve", f"the endpoint {url!r} is not an http:// or https:// URL: write it as https://host[:port]")
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    checker.run("resolve", lambda: resolve_host(host, port))
    checker.run("connect", lambda: tcp_connect(host, port, timeout_s))
    if parts.scheme == "https":
        checker.run("tls", lambda: tls_handshake(host, port, timeout_s, ca_bundle_var))


def tls_handshake(host: str, port: int, timeout_s: float, ca_bundle_var: str) -> str:
    """The step ``tls``: the server's certificate is valid for ``host`` and trusted by the
    CA bundle the client library uses (certifi's, unless ``ca_bundle_var`` names another)."""
    import certifi

    context = ssl.create_default_context(cafile=os.environ.get(ca_bundle_var) or certifi.where())
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as raw, context.wrap_socket(raw, server_hostname=host) as tls:
            version, certificate = tls.version(), tls.getpeercert()
    except ssl.SSLCertVerificationError as error:
        raise StepFailed(
            f"the TLS certificate of {host}:{port} is not trusted ({error.verify_message}): if the store uses a private CA, "
            f"point {ca_bundle_var} at a file with its certificate"
        ) from None
    except (ssl.SSLError, OSError) as error:
        raise StepFailed(f"no TLS handshake with {host}:{port} ({error}): check that the endpoint speaks https on that port") from None
    return f"{version}, certificate valid until {certificate.get('notAfter', '?')}"


def listed(files: list[FileInfo], address: str) -> str:
    if not files:
        return f"no objects under {address}"
    names = ", ".join(info.path for info in files)
    return f"objects under {address} can be listed, e.g. {names}"



def error_code(error) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def missing_bucket_message(bucket: str) -> str:
    return f"bucket {bucket!r} does not exist: check the bucket's name (and the endpoint or region it lives in)"


def no_credentials_message() -> str:
    return (
        "no AWS credentials found: give the connector access_key_env and secret_key_env (the names of the "
        "variables holding the keys), or configure the default AWS credential chain (AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, or an instance role)"
    )


def transfer_config():
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=TRANSFER_PART_SIZE,
        multipart_chunksize=TRANSFER_PART_SIZE,
        max_concurrency=TRANSFER_THREADS,
        use_threads=True,
    )
