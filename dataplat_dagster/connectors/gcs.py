"""The Google Cloud Storage connector (and GCS emulators, through ``endpoint_url``).

With no credentials in the catalog the client comes from dagster-gcp's ``GCSResource``:
Application Default Credentials, as elsewhere in Dagster. A service-account key (a file,
or its JSON in a variable) or an emulator's endpoint need options ``GCSResource`` does
not take, so those clients are built here, with the same library; nothing here sets
process-wide variables such as ``STORAGE_EMULATOR_HOST``.

The library retries each request (and resumes an upload or a download where it broke
off) up to the connector's ``retries``, on the errors ``retry.is_transient`` names;
``retrying`` re-runs an operation whose connection still failed. ``write`` is one
resumable upload, finalized only when the block ends without an error: until then no
object exists at the name, and an older one there is untouched.
"""

import io
import itertools
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timezone
from pathlib import Path
from typing import BinaryIO, ClassVar, Optional, TypeVar

from pydantic import Field

from dataplat_dagster.connectors.base import FileStoreConnector, env_reference, project_path
from dataplat_dagster.connectors.checks import CheckReport, Checker, content_steps, StepFailed
from dataplat_dagster.connectors.filestore import FileInfo, FileStore, clean_path
from dataplat_dagster.connectors.retry import is_transient
from dataplat_dagster.connectors.s3 import ObjectPaths, endpoint_steps, listed

T = TypeVar("T")
log = logging.getLogger("dataplat.connectors")

GOOGLE_ENDPOINT = "https://storage.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)
# Resumable uploads go in chunks of a multiple of 256 KiB; ``write`` holds one in memory.
WRITE_CHUNK = 8 * 1024 * 1024
# ``open_read`` fetches ranges of this size, holding about three times it (the library's
# default, 40 MiB, is a lot of memory per open file: 4, 8 and 16 MiB read equally fast).
READ_CHUNK = 4 * 1024 * 1024
# ``upload`` of a file: each chunk is one request, read into memory. On 100 MB files,
# 32 MiB chunks took 1.6x the time of the library's 100 MiB default and 64 MiB 1.3x, so
# the default it is, stated so that a library upgrade does not change it unnoticed.
UPLOAD_CHUNK = 100 * 1024 * 1024
# Fields of a service-account key that are secret, besides the key as a whole.
KEY_SECRETS = ("private_key", "private_key_id", "client_secret", "refresh_token")


class GcsConnector(FileStoreConnector):
    """A Google Cloud Storage bucket, from an object-name prefix down."""

    connector_type: ClassVar[str] = "gcs"
    secret_fields: ClassVar[tuple[str, ...]] = ("credentials_json",)

    bucket: str = Field(description="The bucket's name.")
    prefix: str = Field("", description="Object name prefix that paths start from.")
    gcp_project: Optional[str] = Field(None, description="The Google Cloud project; default: the credentials'.")
    credentials_file: Optional[str] = Field(None, description="Service-account JSON key file.")
    credentials_json: Optional[str] = Field(None, description="Service-account JSON key, from the environment variable named in the catalog.")
    # The variable's name survives Dagster's resolution of the value: messages name it.
    credentials_env: Optional[str] = Field(None, description="Name of the variable holding the JSON key (for messages).")
    endpoint_url: Optional[str] = Field(None, description="For emulators, e.g. http://127.0.0.1:9023.")

    @classmethod
    def from_spec(cls, name: str, spec, project_dir: Path) -> "GcsConnector":
        return cls(
            **cls.common_fields(name, spec, project_dir),
            bucket=spec.bucket,
            prefix=spec.prefix,
            gcp_project=spec.gcp_project,
            credentials_file=project_path(project_dir, spec.credentials_file),
            credentials_json=env_reference(spec.credentials_env),
            credentials_env=spec.credentials_env,
            endpoint_url=spec.endpoint_url,
        )

    def secret_values(self) -> list[str]:
        # A library may quote a piece of the key rather than the whole JSON.
        values = super().secret_values()
        try:
            info = json.loads(self.credentials_json or "{}")
        except ValueError:
            return values
        return values + [info[name] for name in KEY_SECRETS if isinstance(info, dict) and isinstance(info.get(name), str)]

    # -- credentials and the client -----------------------------------------------------

    def credentials_source(self) -> str:
        if self.credentials_json:
            return f"the JSON key in ${self.credentials_env}" if self.credentials_env else "the JSON key in credentials_json"
        if self.credentials_file:
            return f"the key file {self.credentials_file}"
        return "the Application Default Credentials"

    def credentials(self):
        """The catalog's key; anonymous for an emulator without one; None: Application
        Default Credentials."""
        import google.auth
        from google.auth.credentials import AnonymousCredentials
        from google.auth.exceptions import DefaultCredentialsError

        if self.credentials_json:
            try:
                info = json.loads(self.credentials_json)
            except ValueError:
                info = None
            if not isinstance(info, dict):
                raise self.fail(f"{self.credentials_source()} is not a JSON object: put the whole content of the service account's key file in the variable")
            try:
                return google.auth.load_credentials_from_dict(info, scopes=SCOPES)[0]
            except (DefaultCredentialsError, ValueError) as error:
                raise self.fail(f"{self.credentials_source()} is not a usable Google key", error) from None
        if self.credentials_file:
            try:
                return google.auth.load_credentials_from_file(self.local_file(self.credentials_file), scopes=SCOPES)[0]
            except (DefaultCredentialsError, ValueError) as error:
                raise self.fail(f"{self.credentials_source()} is missing or not a usable Google key (check credentials_file; relative paths start at the project folder)", error) from None
        if self.endpoint_url:
            return AnonymousCredentials()
        return None

    def client(self):
        from google.auth.exceptions import DefaultCredentialsError

        credentials = self.credentials()
        if credentials is None:
            from dagster_gcp import GCSResource

            try:
                return GCSResource(project=self.gcp_project).get_client()
            except DefaultCredentialsError as error:
                raise self.fail(no_credentials_message(), error) from None
        from google.cloud import storage

        options = {"api_endpoint": self.endpoint_url} if self.endpoint_url else None
        project = self.gcp_project or getattr(credentials, "project_id", None)
        return storage.Client(project=project, credentials=credentials, client_options=options)

    def open_store(self) -> "GcsStore":
        return GcsStore(self, self.client())

    def request_retry(self):
        """The library's retry for one call, held to this connector's attempts and backoff.

        The library's own default retries for two minutes; a fresh counter per call makes
        it ``retries`` attempts instead."""
        if self.retries <= 1:
            return None
        from google.api_core.retry import Retry

        failures = itertools.count(1)
        return Retry(
            predicate=lambda error: is_transient(error) and next(failures) < self.retries,
            initial=max(self.backoff_s, 0.01),
            multiplier=2.0,
            timeout=None,
        )

    # -- the check ----------------------------------------------------------------------

    def check(self, write: bool = False) -> CheckReport:
        checker = Checker(self.connector_name, self.connector_type, secrets=self.secret_values(), write=write)
        store: Optional[GcsStore] = None

        def authenticate() -> str:
            nonlocal store
            signed_in = self.sign_in()
            store = stack.enter_context(self.open_store())
            return signed_in

        with checker, ExitStack() as stack:
            endpoint_steps(checker, self.endpoint_url or GOOGLE_ENDPOINT, self.timeout_s, "REQUESTS_CA_BUNDLE")
            checker.run("authenticate", authenticate)
            checker.run("bucket", store.check_bucket)
            files = checker.run("list", lambda: store.files(limit=5), lambda found: listed(found, store.address))
            content_steps(checker, store, files[0] if files else None, write, f"nothing to read: no object under {store.address}")
        return checker.report

    def sign_in(self) -> str:
        """Get an access token, which proves the key before any bucket is involved."""
        import google.auth
        from google.auth.credentials import AnonymousCredentials
        from google.auth.exceptions import DefaultCredentialsError, RefreshError, TransportError
        from google.auth.transport.requests import Request

        credentials = self.credentials()
        if credentials is None:
            try:
                credentials = google.auth.default(scopes=SCOPES)[0]
            except DefaultCredentialsError:
                raise StepFailed(no_credentials_message()) from None
        if isinstance(credentials, AnonymousCredentials):
            return f"no credentials: anonymous requests to {self.endpoint_url} (an emulator takes them)"
        request = Request()

        def timed_request(*args, **kwargs):
            # The sign-in waits two minutes by default; the connector's time-out is the user's.
            kwargs.setdefault("timeout", self.timeout_s)
            return request(*args, **kwargs)

        try:
            credentials.refresh(timed_request)
        except RefreshError as error:
            raise StepFailed(
                f"Google refused {self.credentials_source()} ({error}): the key may be revoked or deleted, "
                "or its service account disabled; create a new key for it"
            ) from None
        except TransportError as error:
            raise StepFailed(f"cannot reach Google's sign-in service to check {self.credentials_source()}: {error}") from None
        account = getattr(credentials, "service_account_email", None)
        return f"signed in as {account}" if account else "credentials accepted"


class GcsStore(ObjectPaths, FileStore):
    """The connector's bucket and prefix, through one ``google.cloud.storage`` client."""

    def __init__(self, connector: GcsConnector, client):
        self.connector = connector
        self.client = client
        self.bucket = client.bucket(connector.bucket)
        self.root = clean_path(connector.prefix)
        self.address = f"gs://{connector.bucket}/{self.root}"

    # -- calls and their failures -------------------------------------------------------

    def options(self) -> dict:
        """Time-out and retry arguments for one library call."""
        return {"timeout": self.connector.timeout_s, "retry": self.connector.request_retry()}

    def call(self, what: str, action: Callable[[], T], missing: Optional[str] = None) -> T:
        with self.translated(what, missing):
            return self.connector.retrying(action, what)

    @contextmanager
    def translated(self, what: str, missing: Optional[str] = None) -> Iterator[None]:
        """Library errors as ``ConnectorError`` in words; a 404 on ``missing`` is FileNotFoundError."""
        import requests
        from google.api_core import exceptions as api
        from google.auth import exceptions as auth

        try:
            yield
        except api.NotFound as error:
            if missing is not None:
                raise self.not_found(missing) from None
            raise self.connector.fail(missing_bucket_message(self.bucket.name), error) from None
        except api.Forbidden as error:
            raise self.connector.fail(
                f"permission denied to {what} in {self.address}: the credentials lack the Cloud Storage "
                "permission for it on this bucket (roles/storage.objectViewer to list and read, roles/storage.objectUser to write and delete)",
                error,
            ) from None
        except (api.Unauthorized, auth.RefreshError) as error:
            raise self.connector.fail(f"Google did not accept {self.connector.credentials_source()}: check the key, or create a new one", error) from None
        except auth.DefaultCredentialsError as error:
            raise self.connector.fail(no_credentials_message(), error) from None
        except (api.GoogleAPIError, auth.TransportError, requests.RequestException) as error:
            raise self.connector.fail(f"cannot {what} in {self.address}", error) from None

    def info(self, blob) -> FileInfo:
        # The generation changes with every write of the object, even of equal bytes.
        return FileInfo(self.path(blob.name), blob.size, blob.updated.astimezone(timezone.utc), str(blob.generation))

    # -- the FileStore interface --------------------------------------------------------

    def files(self, prefix: str = "", limit: Optional[int] = None) -> list[FileInfo]:
        """The files under ``prefix``: all of them, or the first ``limit``."""

        def fetch() -> list[FileInfo]:
            blobs = self.client.list_blobs(self.bucket, prefix=self.key_prefix(prefix), max_results=limit, **self.options())
            return [self.info(blob) for blob in blobs if not self.is_folder_marker(blob.name)]

        return self.call("list objects", fetch)

    def list(self, prefix: str = "") -> list[FileInfo]:
        return self.files(prefix)

    def stat(self, path: str) -> FileInfo:
        blob = self.call(f"read the metadata of {path!r}", lambda: self.bucket.get_blob(self.key(path), **self.options()))
        if blob is None:
            raise self.not_found(path)
        return self.info(blob)

    @contextmanager
    def open_read(self, path: str) -> Iterator[BinaryIO]:
        # Every range read asks for the generation stat saw, so a file rewritten while it
        # is read fails (404) instead of mixing two versions.
        generation = int(self.stat(path).etag)
        blob = self.bucket.blob(self.key(path), generation=generation)
        reader = blob.open("rb", chunk_size=READ_CHUNK, **self.options())
        try:
            yield reader
        finally:
            reader.close()

    @contextmanager
    def write(self, path: str) -> Iterator[BinaryIO]:
        blob = self.bucket.blob(self.key(path))
        writer = ResumableWriter(self, blob.open("wb", chunk_size=WRITE_CHUNK, ignore_flush=True, **self.options()), path)
        try:
            yield writer
            writer.commit()
        except BaseException:
            writer.cancel()
            raise

    def delete(self, path: str) -> None:
        blob = self.bucket.blob(self.key(path))
        self.call(f"delete {path!r}", lambda: blob.delete(**self.options()), missing=path)

    def upload(self, local_path, path: str) -> FileInfo:
        blob = self.bucket.blob(self.key(path), chunk_size=UPLOAD_CHUNK)
        self.call(f"upload to {path!r}", lambda: blob.upload_from_filename(str(local_path), **self.options()))
        return self.info(blob)  # the upload's answer filled in the object's metadata

    def download(self, path: str, local_path) -> Path:
        # One streaming request (no chunk size), the library's fastest download; it checks
        # the object's checksum. Through a temporary file so that a failure leaves nothing.
        local_path = Path(local_path)
        partial = local_path.with_name(f".{local_path.name}.part")
        blob = self.bucket.blob(self.key(path))
        try:
            self.call(f"download {path!r}", lambda: blob.download_to_filename(str(partial), **self.options()), missing=path)
            partial.replace(local_path)
        finally:
            partial.unlink(missing_ok=True)
        return local_path

    def close(self) -> None:
        self.client.close()

    # -- the check's steps --------------------------------------------------------------

    def check_bucket(self) -> str:
        from google.api_core.exceptions import Forbidden, NotFound

        try:
            self.bucket.reload(**self.options())
        except NotFound:
            raise StepFailed(missing_bucket_message(self.bucket.name)) from None
        except Forbidden:
            # GCS answers 404 for a missing bucket whoever asks: a 403 means it exists.
            return f"bucket {self.bucket.name!r} exists (its settings are not readable with these credentials, which the connector does not need)"
        where = f" in {self.bucket.location}" if self.bucket.location else ""
        return f"bucket {self.bucket.name!r} exists{where}"

    def read_head(self, path: str, size: int) -> bytes:
        blob = self.bucket.blob(self.key(path))
        return self.call(f"read {path!r}", lambda: blob.download_as_bytes(start=0, end=size - 1, **self.options()), missing=path)


class ResumableWriter(io.RawIOBase):
    """The library's resumable-upload writer, with its failures in words.

    It sends a chunk each time one fills; ``commit`` sends the rest and finalizes the
    object, ``cancel`` deletes the upload session so that nothing is created.
    """

    def __init__(self, store: GcsStore, blob_writer, path: str):
        super().__init__()
        self.store = store
        self.blob_writer = blob_writer
        self.path = path

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.blob_writer.tell()

    def write(self, data) -> int:
        # Not through ``retrying``: the bytes of a failed chunk are gone from our side;
        # the library retries the chunk itself, resuming the session.
        with self.store.translated(f"write {self.path!r}"):
            return self.blob_writer.write(data)

    def commit(self) -> None:
        with self.store.translated(f"write {self.path!r}"):
            self.blob_writer.close()

    def cancel(self) -> None:
        try:
            self.blob_writer.terminate()
        except Exception as error:  # the session expires unfinalized on its own (a week)
            log.warning("%s: could not cancel the unfinished upload of %r: %s", self.store.connector.connector_name, self.path, error)


def missing_bucket_message(bucket: str) -> str:
    return f"bucket {bucket!r} does not exist: check the bucket's name (and, for an emulator, its endpoint_url)"


def no_credentials_message() -> str:
    return (
        "no Google credentials found: give the connector credentials_file (a service-account JSON key file) "
        "or credentials_env (the name of a variable holding the key's JSON), or set up Application Default "
        "Credentials (GOOGLE_APPLICATION_CREDENTIALS, or `gcloud auth application-default login`)"
    )
