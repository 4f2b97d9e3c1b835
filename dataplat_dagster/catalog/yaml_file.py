"""Editing the YAML files people write by hand (``dataplat.yaml``, ``workspace.yaml``).

Two CLI calls editing one project at once must not lose each other's edits, and an edit
must keep what a person wrote: comments, key order, quoting. ``edited_yaml`` holds a lock
(``filelock``: a timeout, on every platform) for the whole read-change-write, loads the
file with ruamel.yaml's round-trip loader, lets the caller change the plain data, then
applies only what changed to the loaded document and replaces the file in one step.
"""

from __future__ import annotations

import copy
import getpass
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from dataplat_dagster.errors import CatalogError

LOCK_TIMEOUT_ENV = "DATAPLAT_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT_S = 60.0


def _yaml() -> YAML:
    yaml = YAML()  # round trip
    yaml.preserve_quotes = True
    yaml.width = 4096  # long descriptions stay on one line, as written
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def read_yaml(path: Path):
    """The document as ruamel loads it (mappings keep their comments and order)."""
    try:
        return _yaml().load(path.read_text(encoding="utf-8"))
    except YAMLError as error:
        raise CatalogError(f"{path} is not valid YAML: {error}") from None


def write_yaml(path: Path, document) -> None:
    """Replace ``path`` with ``document`` in one step (a reader sees the old file or the new)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as file:
            _yaml().dump(document, file)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def apply_changes(document, before, after):
    """``document`` changed as ``before`` became ``after`` (plain data): keys removed or
    changed are updated in place, new keys are added at the end, and everything else,
    with its comments, is left as it was. Returns the document (new if it was not a mapping)."""
    if isinstance(before, list) and isinstance(after, list) and isinstance(document, list) and len(document) == len(before):
        if after[: len(before)] == before:  # items added at the end: those written keep their comments
            document.extend(copy.deepcopy(after[len(before):]))
            return document
        if len(after) == len(before):
            for index, (old, new) in enumerate(zip(before, after)):
                if old != new:
                    document[index] = apply_changes(document[index], old, new)
            return document
    if not (isinstance(before, dict) and isinstance(after, dict) and hasattr(document, "items")):
        return copy.deepcopy(after)
    for key in [key for key in before if key not in after]:
        document.pop(key, None)
    for key, value in after.items():
        if key in before and before[key] == value:
            continue  # unchanged: a default the file does not spell out stays unwritten
        if key in document:
            document[key] = apply_changes(document[key], before.get(key), value)
        else:
            document[key] = copy.deepcopy(value)
    return document


def lock_timeout() -> float:
    value = os.environ.get(LOCK_TIMEOUT_ENV)
    try:
        return float(value) if value else DEFAULT_LOCK_TIMEOUT_S
    except ValueError:
        raise CatalogError(f"{LOCK_TIMEOUT_ENV}={value!r} is not a number of seconds.") from None


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold ``path``'s edit lock. Waits up to ``DATAPLAT_LOCK_TIMEOUT`` seconds, then fails
    naming the process that holds it."""
    lock_file = path.with_name(f".{path.name}.lock")
    holder_file = path.with_name(f".{path.name}.lock-holder")
    timeout = lock_timeout()
    lock = filelock.FileLock(lock_file, timeout=timeout)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise CatalogError(
            f"{path} is being edited by {_describe_holder(holder_file)}; waited {timeout:g} s. Retry once it has "
            f"finished, or raise {LOCK_TIMEOUT_ENV}. If that process is gone, its lock was released with it."
        ) from None
    try:
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "user": _user(), "since": time.time(),
                  "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200]}
        holder_file.write_text(json.dumps(holder))
        yield
    finally:
        holder_file.unlink(missing_ok=True)
        lock.release()


def _describe_holder(holder_file: Path) -> str:
    try:
        holder = json.loads(holder_file.read_text())
    except (OSError, ValueError):
        return "another process"
    held = time.time() - float(holder.get("since", time.time()))
    return (f"process {holder.get('pid')} on {holder.get('host')} ({holder.get('user')}: {holder.get('command')!r}, "
            f"for {held:.0f} s)")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "?"


@contextmanager
def edited_yaml(path: Path, *, missing: dict | None = None) -> Iterator[dict]:
    """Under ``path``'s lock: yield its content as plain data for the caller to change, then
    write back what changed, keeping comments and order. ``missing`` is the content of a file
    that does not exist yet. Nothing is written if the body raises."""
    with file_lock(path):
        if path.exists():
            document = read_yaml(path)
        elif missing is not None:
            document = None
        else:
            raise CatalogError(f"{path} does not exist.")
        before = plain(document) if document is not None else copy.deepcopy(missing or {})
        data = copy.deepcopy(before)
        yield data
        if data != before:
            write_yaml(path, apply_changes(document if document is not None else {}, before, data))


def plain(document):
    """ruamel's commented containers as dicts and lists."""
    if hasattr(document, "items"):
        return {key: plain(value) for key, value in document.items()}
    if isinstance(document, list):
        return [plain(value) for value in document]
    return document
