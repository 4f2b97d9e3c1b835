"""What the FTP and SFTP stores share: a server's file system, walked folder by folder.

Both reach the files through one session under a root folder, so listing is a walk of
that tree, an upload makes its parent folders and goes to a temporary name that is then
renamed over the target, and an operation that fails on a dropped connection is retried
over a new one. ``FolderStore`` holds that logic once; each protocol fills in the few
steps that talk to its server (list one folder, make one, rename, remove, open an
upload) and says which of its client's exceptions are refusals and which are failures.
"""

from __future__ import annotations

import io
import logging
import posixpath
from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any, BinaryIO, ClassVar, NamedTuple, Optional, TypeVar

from dataplat_dagster.connectors.filestore import (
    CHUNK_SIZE,
    FileInfo,
    FileStore,
    clean_path,
    clean_prefix,
    is_temporary,
    may_hold,
    temporary_sibling,
)
from dataplat_dagster.errors import ConnectorError

T = TypeVar("T")
log = logging.getLogger("dataplat.connectors")


class Entry(NamedTuple):
    """One name in a folder listing. ``kind`` is "file", "folder", "link" (followed when a
    walk reaches it, see ``_follow``) or "other" (a socket, a device: walks pass over it)."""

    name: str
    kind: str
    size: int
    modified: Optional[datetime]


class FolderStore(FileStore):
    """A session on a server's file system, under the connector's root; it reconnects
    when the connection drops. A subclass sets ``_root`` (absolute) once its session is
    in the root folder, and ``_root`` is None while there is no session."""

    #: What the client raises for network and protocol failures, which end an operation.
    _FAILURES: ClassVar[tuple[type[BaseException], ...]]
    #: What it raises when the server refuses an operation; ``_refusal`` says what it means.
    _REFUSALS: ClassVar[tuple[type[BaseException], ...]]
    #: How messages name the root folder itself.
    _ROOT_NAME: ClassVar[str]

    connector: Any  # the FileStoreConnector this store belongs to
    _root: Optional[str]
    _folders: set[str]  # made or seen by this session: not made again

    # -- the session: each protocol's steps --------------------------------------------------

    @abstractmethod
    def _open(self) -> None:
        """Connect, log in and enter the root folder (the check runs each step on its own)."""

    @abstractmethod
    def _session(self) -> Any:
        """The client object that operations run on, connecting first if there is none."""

    @abstractmethod
    def _drop(self) -> None:
        """Forget the connection, which may be gone: the next operation reconnects."""

    def ensure_connected(self) -> None:
        self._run("connecting", None, lambda session: None)

    def _connect(self) -> None:
        try:
            self._open()
        except BaseException:
            self._drop()  # no half-open session stays behind
            raise

    # -- running an operation ---------------------------------------------------------------

    def _run(self, what: str, path: Optional[str], action: Callable[[Any], T]) -> T:
        """``action(session)``, retried on transient errors over a new connection; a refusal
        becomes FileNotFoundError (``path`` is missing) or ConnectorError, with the reply."""

        def attempt() -> T:
            session = self._session()
            try:
                return action(session)
            except self._REFUSALS as error:
                raise self._refusal(session, error, what, path) from None
            except self._FAILURES as error:
                self._name_a_lost_connection(error)
                raise

        try:
            return self.connector.retrying(attempt, what, before_retry=self._drop)
        except (FileNotFoundError, ConnectorError):
            raise
        except self._FAILURES as error:
            if self._lost():
                self._drop()  # the next operation starts over
            raise self.connector.fail(f"{what} failed ({self.address})", error) from error

    @abstractmethod
    def _refusal(self, session: Any, error: BaseException, what: str, path: Optional[str]) -> Exception:
        """What the server's refusal ``error`` of ``what`` means: FileNotFoundError when
        ``path`` (if given) is missing, else a ConnectorError with the server's reason."""

    @abstractmethod
    def _denies(self, error: BaseException) -> bool:
        """Whether a refusal says permission denied (a survey passes over such folders)."""

    def _name_a_lost_connection(self, error: BaseException) -> None:
        """Called with a failure, before the retry judges it: a client whose errors do not
        always say that the connection dropped raises a ConnectionResetError here."""

    def _lost(self) -> bool:
        """Whether a failed operation left the session unusable; by default it did (a
        client that can tell says otherwise), and the next operation reconnects."""
        return True

    def _full(self, path: str) -> str:
        return posixpath.join(self._root, path) if path else self._root

    def not_a_file(self, path: str) -> FileNotFoundError:
        return FileNotFoundError(f"{path!r} in {self.address} is a folder, not a file.")

    # -- listing ------------------------------------------------------------------------------

    @abstractmethod
    def _entries(self, session: Any, folder: str) -> list[Entry]:
        """What ``folder`` holds, in the order a walk goes through it."""

    def _follow(self, session: Any, path: str) -> Optional[Entry]:
        """What the link at ``path`` points to, None for nowhere; a store whose listings
        hold no links never gets here."""
        return None

    def list(self, prefix: str = "") -> "list[FileInfo]":
        wanted = clean_prefix(prefix)
        files = self._run(f"listing {wanted!r}", None, lambda session: list(self._walk(session, "", wanted)))
        return sorted(files, key=lambda info: info.path)

    def survey(self) -> tuple[str, Optional[FileInfo]]:
        """What the root folder holds, and a file to read: the first of a depth-first walk,
        which lists no more folders than it takes to find one, and passes over those the
        user may not read (``list`` fails on them)."""

        def look(session) -> tuple[str, Optional[FileInfo]]:
            entries = self._entries(session, "")
            folders = sum(entry.kind == "folder" for entry in entries)
            summary = f"the root folder holds {_count(len(entries) - folders, 'file')} and {_count(folders, 'folder')}"
            unreadable: list[str] = []
            first = next(self._walk(session, "", "", unreadable), None)
            if unreadable:
                summary += f"; permission denied listing {', '.join(map(repr, unreadable))}"
            return summary, first

        return self._run("listing the root folder", None, look)

    def _walk(self, session: Any, folder: str, prefix: str, unreadable: Optional[list] = None) -> Iterator[FileInfo]:
        """The files under ``folder`` that start with ``prefix``; a folder the user may not
        list is an error, or with ``unreadable`` given, noted there and passed over."""
        try:
            entries = self._entries(session, folder)
        except self._REFUSALS as error:
            if unreadable is not None and folder and self._denies(error):
                unreadable.append(folder)
                return
            raise self._refusal(session, error, f"listing the folder {folder or self._ROOT_NAME!r}", None) from None
        for entry in entries:
            path = posixpath.join(folder, entry.name) if folder else entry.name
            if entry.kind == "link":
                entry = self._follow(session, path)
                if entry is None:
                    continue
            if entry.kind == "folder":
                if may_hold(path, prefix):
                    yield from self._walk(session, path, prefix, unreadable)
            elif entry.kind == "file" and path.startswith(prefix) and not is_temporary(path):
                yield FileInfo(path, entry.size, entry.modified)

    # -- writing and deleting -------------------------------------------------------------

    @abstractmethod
    def _open_upload(self, what: str, path: str, temporary: str) -> io.RawIOBase:
        """Start the upload to ``temporary`` (``_make_parents`` of ``path`` first), as a raw
        file with an ``abort()`` that cuts it."""

    def _confirm_upload(self, what: str) -> None:
        """After the upload's stream closed: a protocol whose server answers for the whole
        transfer reads that answer here (closing waited for the answer to every write)."""

    def _upload_cut(self, closed: bool) -> None:
        """After an upload was cut, ``closed`` telling whether its stream had closed: a
        protocol that answers for a transfer reads the answer still due here."""

    @abstractmethod
    def _replace(self, session: Any, temporary: str, final: str) -> None:
        """Rename ``temporary`` over ``final``."""

    @abstractmethod
    def _make_folder(self, session: Any, folder: str) -> None:
        """Make ``folder``; a refusal is no error here (it may exist), the upload says which."""

    @abstractmethod
    def _remove(self, session: Any, path: str) -> None:
        """Remove the file at ``path``."""

    @contextmanager
    def write(self, path: str) -> Iterator[BinaryIO]:
        rel = clean_path(path)
        if not rel:
            raise self.connector.fail("cannot write to the root folder itself: give a file name")
        what = f"writing {rel!r}"
        temporary = temporary_sibling(rel)
        raw = self._open_upload(what, rel, temporary)
        stream = io.BufferedWriter(raw, CHUNK_SIZE)
        closed = False
        try:
            yield stream
            stream.close()  # flushes, and ends the transfer: the file's end
            closed = True
            self._confirm_upload(what)
            self._run(what, None, lambda session: self._replace(session, temporary, rel))
        except BaseException:
            self._discard_upload(raw, stream, temporary, closed)
            raise

    def _make_parents(self, session: Any, path: str) -> None:
        folder = ""
        for part in path.split("/")[:-1]:
            folder = posixpath.join(folder, part) if folder else part
            if folder not in self._folders:
                self._make_folder(session, folder)
                self._folders.add(folder)

    def _discard_upload(self, raw: io.RawIOBase, stream: io.BufferedWriter, temporary: str, closed: bool) -> None:
        """Cut the upload and remove its temporary file; the final name was never touched.
        With the server gone, the hidden temporary file may stay (listings skip it)."""
        raw.abort()
        with suppress(Exception):
            stream.close()  # what it still buffers has nowhere to go now
        self._upload_cut(closed)
        try:
            self._run("removing the partial upload", None, lambda session: self._remove(session, temporary))
        except (ConnectorError, FileNotFoundError) as error:
            log.warning("%s: could not remove the partial upload %s: %s", self.connector.connector_name, temporary, error)

    def delete(self, path: str) -> None:
        rel = clean_path(path)
        self._run(f"deleting {rel!r}", rel, lambda session: self._remove(session, rel))


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
