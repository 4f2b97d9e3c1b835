"""One interface for the four file stores (FTP, SFTP, Amazon S3, Google Cloud Storage).

Paths are relative to the connector's root (FTP/SFTP) or prefix (S3/GCS), written with
``/``; a path that would climb out of the root is refused. Every store:

- ``list(prefix)``: the files (not folders) whose path starts with ``prefix``, recursively;
- ``stat(path)``: size, modification time (UTC) and, where the store has one, an etag;
- ``open_read(path)``: a binary file object that streams, whatever the file's size;
- ``write(path)``: a binary file object; the file appears at ``path`` only when the block
  ends without an error, complete (a temporary name then a rename on FTP/SFTP, a multipart
  or resumable upload that is only committed at the end on S3/GCS);
- ``delete(path)``, ``exists(path)``, and ``upload`` / ``download`` of local files.

A missing file raises ``FileNotFoundError`` with the store's address in the message; other
failures raise ``ConnectorError`` with the server's reason.
"""

from __future__ import annotations

import posixpath
import re
import uuid
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from dataplat_dagster.errors import ConnectorError

# Large enough that per-call overhead vanishes, small enough that memory stays flat.
CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int
    modified: datetime | None
    etag: str | None = None

    @property
    def version(self) -> str:
        """What changes when the file changes: its size, its mtime and, where the store has
        one, its etag (a new upload of the same bytes is a change too, as the store says so)."""
        stamp = self.modified.isoformat() if self.modified else "?"
        return f"{self.size}@{stamp}" + (f"#{self.etag}" if self.etag else "")

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "size": self.size,
            "modified": self.modified.isoformat() if self.modified else None,
            "etag": self.etag,
        }


def clean_path(path: str) -> str:
    """``path`` normalized relative to the store's root; refuses ``..`` out of it."""
    if "\x00" in path:
        raise ConnectorError(f"The path {path!r} holds a NUL character.")
    normalized = posixpath.normpath("/" + path.replace("\\", "/")).lstrip("/")
    parts = [part for part in path.replace("\\", "/").split("/") if part not in ("", ".")]
    depth = 0
    for part in parts:
        depth += -1 if part == ".." else 1
        if depth < 0:
            raise ConnectorError(f"The path {path!r} climbs out of the connector's root: use a path inside it.")
    return "" if normalized == "." else normalized


def temporary_sibling(path: str) -> str:
    """A hidden name beside ``path`` for writing before the rename."""
    folder, name = posixpath.split(path)
    return posixpath.join(folder, f".{name}.dataplat-{uuid.uuid4().hex[:12]}.part")


_TEMPORARY_NAME = re.compile(r"^\..+\.dataplat-[0-9a-f]{12}\.part$")


def is_temporary(path: str) -> bool:
    """Whether ``path`` is a ``temporary_sibling``: an upload in progress (or one that a
    dropped connection left behind), which listings leave out."""
    return bool(_TEMPORARY_NAME.match(posixpath.basename(path)))


def clean_prefix(prefix: str) -> str:
    """A ``list`` prefix, cleaned like a path but keeping a trailing ``/``: "in/" is that
    folder, while "in" also matches "in.csv" and "inbox/a.csv"."""
    cleaned = clean_path(prefix)
    return cleaned + "/" if cleaned and prefix.endswith(("/", "\\")) else cleaned


def may_hold(folder: str, prefix: str) -> bool:
    """Whether files under ``folder`` can start with ``prefix``: a walk lists only those folders."""
    return (folder + "/").startswith(prefix) or prefix.startswith(folder + "/")


class FileStore(ABC):
    """A connected file store; use it as a context manager so the connection is closed."""

    #: Where the store points, for messages: ``ftp://host:21/root``, ``s3://bucket/prefix``.
    address: str

    @abstractmethod
    def list(self, prefix: str = "") -> list[FileInfo]: ...

    @abstractmethod
    def stat(self, path: str) -> FileInfo: ...

    @abstractmethod
    def open_read(self, path: str) -> AbstractContextManager[BinaryIO]: ...

    @abstractmethod
    def write(self, path: str) -> AbstractContextManager[BinaryIO]: ...

    @abstractmethod
    def delete(self, path: str) -> None: ...

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except FileNotFoundError:
            return False
        return True

    def read_head(self, path: str, size: int) -> bytes:
        """The first ``size`` bytes of the file (stores with ranged reads override this)."""
        with self.open_read(path) as stream:
            return stream.read(size)

    def upload(self, local_path: str | Path, path: str) -> FileInfo:
        with open(local_path, "rb", buffering=0) as source, self.write(path) as target:
            copy_stream(source, target)
        return self.stat(path)

    def download(self, path: str, local_path: str | Path) -> Path:
        """Copy to ``local_path`` through a temporary file, so a failure leaves nothing there."""
        local_path = Path(local_path)
        partial = local_path.with_name(f".{local_path.name}.part")
        try:
            with self.open_read(path) as source, open(partial, "wb", buffering=0) as target:
                copy_stream(source, target)
            partial.replace(local_path)
        finally:
            partial.unlink(missing_ok=True)
        return local_path

    def close(self) -> None:
        """Release the connection; the default store holds none."""

    def __enter__(self) -> "FileStore":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def not_found(self, path: str) -> FileNotFoundError:
        return FileNotFoundError(f"{path!r} does not exist in {self.address}: check the path (it starts from the connector's root).")


def copy_stream(source: BinaryIO, target: BinaryIO) -> None:
    """Copy through one reused buffer: ``shutil.copyfileobj`` allocates a new 1 MiB bytes
    per chunk, which showed in loopback FTP downloads against ftplib."""
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    while count := source.readinto(buffer):
        target.write(view[:count])

