"""Pydantic models of the ``connectors:`` section of a project's catalog.

Secrets are never values here: every secret field is the *name* of an environment variable
(``password_env``, ``secret_key_env``, ...), so the catalog can be committed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import re

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from dataplat_dagster.connectors.secrets import check_env_name

EnvName = Annotated[str, AfterValidator(check_env_name)]

CONNECTOR_TYPES = ("sql", "ftp", "sftp", "s3", "gcs")
FINGERPRINT_PATTERN = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}=?$")

# Fields that would hold a secret in plain text, and the reference to use instead.
_PLAIN_SECRETS = {
    "password": "password_env",
    "passphrase": "passphrase_env",
    "secret_key": "secret_key_env",
    "access_key": "access_key_env",
    "url": "url_env",
    "credentials": "credentials_env",
}


class _ConnectorBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    timeout_s: float = Field(10.0, gt=0, description="Seconds to wait for the server to connect or answer.")
    retries: int = Field(3, ge=1, le=10, description="Attempts for an operation that fails with a transient network error.")
    backoff_s: float = Field(0.5, ge=0, description="Wait before the first retry; doubled before each further one.")
    max_concurrency: int | None = Field(None, ge=1, description="At most this many steps of a run use the connector at once.")

    @model_validator(mode="before")
    @classmethod
    def _no_plain_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for plain, reference in _PLAIN_SECRETS.items():
                if plain in data and reference in cls.model_fields:
                    raise ValueError(
                        f"'{plain}' would keep a secret in plain text: put it in an environment "
                        f"variable and give that variable's name as '{reference}'"
                    )
        return data


class _NetworkBase(_ConnectorBase):
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    username: str | None = None
    password_env: EnvName | None = Field(None, description="Environment variable holding the password.")

    def needs_host(self) -> bool:
        return True

    @model_validator(mode="after")
    def _host_given(self):
        if self.needs_host() and not self.host:
            raise ValueError(f"an {self.type} connector needs a host")
        return self


class SqlConnectorSpec(_NetworkBase):
    type: Literal["sql"] = "sql"
    dialect: str | None = Field(None, description="SQLAlchemy dialect: postgresql, mysql, mariadb, sqlite, mssql+pyodbc, ...")
    database: str | None = Field(None, description="Default database; for SQLite, the database file.")
    url_env: EnvName | None = Field(None, description="Environment variable holding a full SQLAlchemy URL (replaces the fields above).")
    options: dict[str, str | int | float | bool] = Field(default_factory=dict, description="Extra driver options (connect_args), e.g. sslmode: require.")

    def needs_host(self) -> bool:
        return False  # SQLite and URLs have none; the dialect check below asks for it

    def address(self) -> str:
        if self.url_env:
            return f"the URL in ${self.url_env}"
        if (self.dialect or "").startswith("sqlite"):
            return f"sqlite:///{self.database}"
        user = f"{self.username}@" if self.username else ""
        port = f":{self.port}" if self.port else ""
        return f"{self.dialect}://{user}{self.host}{port}/{self.database or ''}"

    @model_validator(mode="after")
    def _dialect_or_url(self) -> "SqlConnectorSpec":
        if not self.dialect and not self.url_env:
            raise ValueError("give a dialect (postgresql, mysql, sqlite, ...) or url_env, the variable holding a SQLAlchemy URL")
        if self.dialect and self.dialect.split("+")[0] == "sqlite":
            if not self.database:
                raise ValueError("a SQLite connector needs database: the path of the database file")
        elif self.dialect and not self.host:
            raise ValueError(f"a {self.dialect} connector needs a host")
        return self


class FtpConnectorSpec(_NetworkBase):
    type: Literal["ftp"] = "ftp"
    tls: bool = Field(False, description="Explicit FTPS (AUTH TLS), with the data channel protected too.")
    ca_file: str | None = Field(None, description="CA bundle that signed the server's certificate (for a private CA).")
    passive: bool = Field(True, description="Passive mode; active mode needs the server to reach back to this machine.")
    root: str = Field("/", description="Folder on the server that paths start from.")

    def address(self) -> str:
        return _server_address("ftps" if self.tls else "ftp", self, "/" + self.root.lstrip("/"))

    def file_uri(self, path: str) -> str:
        """The URI of a file at ``path`` from the root."""
        return _server_address("ftps" if self.tls else "ftp", self, _joined("/" + self.root.strip("/"), path))


class SftpConnectorSpec(_NetworkBase):
    type: Literal["sftp"] = "sftp"
    root: str = Field(".", description="Folder on the server that paths start from ('.' is the login folder).")
    private_key: str | None = Field(None, description="Private key file (OpenSSH or PEM format).")
    passphrase_env: EnvName | None = Field(None, description="Environment variable holding the private key's passphrase.")
    known_hosts: str | None = Field(None, description="known_hosts file to verify the server's host key against (default ~/.ssh/known_hosts).")
    host_key_fingerprint: str | None = Field(None, description="Pinned host key fingerprint, as `ssh-keygen -lf` prints it (SHA256:...).")
    insecure_accept_any_host_key: bool = Field(False, description="Skip host key verification (exposes the password to a man in the middle).")

    def address(self) -> str:
        return _server_address("sftp", self, "/" + self.root if not self.root.startswith("/") else self.root)

    def file_uri(self, path: str) -> str:
        """The URI of a file at ``path`` from the root; a relative root is under the login folder (``/~/``)."""
        root = self.root if self.root.startswith("/") else "/~/" + self.root.removeprefix(".").strip("/")
        return _server_address("sftp", self, _joined(root, path))

    @field_validator("host_key_fingerprint")
    @classmethod
    def _sha256_fingerprint(cls, value: str | None) -> str | None:
        if value is not None and not FINGERPRINT_PATTERN.match(value):
            raise ValueError(
                f"{value!r} is not a SHA256 host key fingerprint: give it as `ssh-keygen -lf KEY` or "
                "`ssh-keyscan HOST | ssh-keygen -lf -` prints it, e.g. SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8"
            )
        return value


class S3ConnectorSpec(_ConnectorBase):
    type: Literal["s3"] = "s3"
    bucket: str = Field(min_length=3, max_length=63)
    prefix: str = Field("", description="Key prefix that paths start from.")
    region: str | None = None
    endpoint_url: str | None = Field(None, description="For S3-compatible stores (MinIO, Ceph, ...).")
    access_key_env: EnvName | None = Field(None, description="Environment variable holding the access key id; default: the AWS credential chain.")
    secret_key_env: EnvName | None = Field(None, description="Environment variable holding the secret access key.")

    def address(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    def file_uri(self, path: str) -> str:
        return f"s3://{self.bucket}" + _joined("/" + self.prefix.strip("/"), path)

    @model_validator(mode="after")
    def _both_keys(self) -> "S3ConnectorSpec":
        if bool(self.access_key_env) != bool(self.secret_key_env):
            raise ValueError("give both access_key_env and secret_key_env, or neither (for the default AWS credential chain)")
        return self


class GcsConnectorSpec(_ConnectorBase):
    type: Literal["gcs"] = "gcs"
    bucket: str = Field(min_length=3, max_length=222)
    prefix: str = Field("", description="Object name prefix that paths start from.")
    gcp_project: str | None = None
    credentials_file: str | None = Field(None, description="Service-account JSON key file.")
    credentials_env: EnvName | None = Field(None, description="Environment variable holding the service-account JSON.")
    endpoint_url: str | None = Field(None, description="For emulators, e.g. http://127.0.0.1:9023.")

    def address(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"gs://{self.bucket}/{self.prefix}{where}"

    def file_uri(self, path: str) -> str:
        return f"gs://{self.bucket}" + _joined("/" + self.prefix.strip("/"), path)

    @model_validator(mode="after")
    def _one_credential(self) -> "GcsConnectorSpec":
        if self.credentials_file and self.credentials_env:
            raise ValueError("give credentials_file or credentials_env, not both")
        return self


def _server_address(scheme: str, spec: _NetworkBase, path: str) -> str:
    user = f"{spec.username}@" if spec.username else ""
    port = f":{spec.port}" if spec.port else ""
    return f"{scheme}://{user}{spec.host}{port}{path}"


ConnectorSpec = Annotated[
    Union[SqlConnectorSpec, FtpConnectorSpec, SftpConnectorSpec, S3ConnectorSpec, GcsConnectorSpec],
    Field(discriminator="type"),
]

SPEC_BY_TYPE: dict[str, type[_ConnectorBase]] = {
    "sql": SqlConnectorSpec,
    "ftp": FtpConnectorSpec,
    "sftp": SftpConnectorSpec,
    "s3": S3ConnectorSpec,
    "gcs": GcsConnectorSpec,
}

# Which fields are secret references, for `connector show` and the secret scrubbing.
SECRET_FIELDS = ("password_env", "passphrase_env", "access_key_env", "secret_key_env", "url_env", "credentials_env")


def connector_kind(connector: "ConnectorSpec") -> str:
    """The Dagster kind of what the connector reaches: postgresql, mysql, sqlite, s3, ftp, ..."""
    if connector.type != "sql":
        return connector.type
    dialect = (connector.dialect or "sql").split("+")[0]
    return {"postgres": "postgresql", "mariadb": "mysql"}.get(dialect, dialect)


def _joined(folder: str, path: str) -> str:
    """``folder/path`` with exactly one slash between them (``folder`` starts with one)."""
    return folder.rstrip("/") + "/" + path.lstrip("/")
