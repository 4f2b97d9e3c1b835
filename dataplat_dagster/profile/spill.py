"""A private temp folder for what a profile keeps on disk while a table is written (the
hashes of its rows, once they outgrow their memory): created on first use, removed when the
profile is done or dropped (a read that starts again with other column types)."""

from __future__ import annotations

import shutil
import tempfile
import threading
import weakref
from pathlib import Path

PREFIX = "dataplat-profile-"


class SpillFolder:
    def __init__(self) -> None:
        self._path: Path | None = None
        self._remove: weakref.finalize | None = None
        self._lock = threading.Lock()

    def file(self, name: str) -> Path:
        with self._lock:
            if self._path is None:
                self._path = Path(tempfile.mkdtemp(prefix=PREFIX))
                self._remove = weakref.finalize(self, shutil.rmtree, self._path, True)
        return self._path / name

    def remove(self) -> None:
        if self._remove:
            self._remove()
