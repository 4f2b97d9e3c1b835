"""Open the bytes of a flat table file: plain, gzip-compressed, or alone in a zip archive.

The kind of file is told by its first bytes, not its name. Zip members are streamed,
never extracted, so a member's path can do no harm on disk; hostile paths and zip bombs
are refused anyway, and so is anything that is plainly not text.
"""

from __future__ import annotations

import codecs
import re
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterator

import pyarrow as pa

from dataplat_dagster.errors import InputError

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".tab", ".psv")
HEAD_BYTES = 64 * 1024
MAX_ZIP_RATIO = 1000
MAX_UNCHECKED_MEMBER_BYTES = 1 << 30

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_BINARY_MAGICS = {
    b"\x89PNG": "a PNG image",
    b"%PDF": "a PDF document",
    b"GIF8": "a GIF image",
    b"\xff\xd8\xff": "a JPEG image",
    b"\xd0\xcf\x11\xe0": "an old-style Office file (.xls/.doc)",
    b"PAR1": "a Parquet file",
    b"SQLite format 3": "an SQLite database",
    b"7z\xbc\xaf": "a 7-Zip archive",
    b"Rar!": "a RAR archive",
    b"BZh": "a bzip2 archive",
    b"\xfd7zXZ": "an xz archive",
    b"\x7fELF": "an executable",
}
_OFFICE_MARKERS = {"xl/": "an Excel workbook", "word/": "a Word document", "ppt/": "a PowerPoint file"}
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_WHITESPACE_AND_BOMS = " \t\r\n\ufeff"


@dataclass(frozen=True)
class TableSource:
    """Where the table's bytes are: a file, and the compression or zip member around them."""

    path: Path
    compression: str  # "none", "gzip" or "zip"
    member: str | None = None

    @property
    def label(self) -> str:
        return f"{self.path}:{self.member}" if self.member else str(self.path)


def resolve_source(path: str | Path) -> TableSource:
    """Find the table inside ``path`` and check that it looks like non-empty text."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file; check the path.")
    with path.open("rb") as file:
        magic = file.read(8)
    if magic.startswith(_GZIP_MAGIC):
        source = TableSource(path, "gzip")
    elif magic.startswith(_ZIP_MAGICS):
        source = TableSource(path, "zip", _table_member(path))
    else:
        source = TableSource(path, "none")
    _check_text(source, read_head(source, HEAD_BYTES))
    return source


@contextmanager
def open_binary(source: TableSource) -> Iterator[BinaryIO]:
    """The decompressed bytes of the table, as a readable stream."""
    if source.compression == "zip":
        with zipfile.ZipFile(source.path) as archive, archive.open(source.member) as member:
            yield member
        return
    compression = "gzip" if source.compression == "gzip" else None
    try:
        stream = pa.input_stream(str(source.path), compression=compression)
    except OSError as error:
        raise InputError(f"{source.label} cannot be opened ({error}); check the file.") from None
    with stream:
        yield _PythonStream(stream)


class _PythonStream:
    """A pyarrow stream seen as a plain Python object with ``read``.

    pyarrow's CSV reader reads a native stream ahead without bound (the whole file, if
    parsing keeps up; an ``io.RawIOBase`` fared the same). Through a plain object it
    stays a few blocks ahead, which keeps memory flat however large the file is.
    """

    def __init__(self, native: pa.NativeFile) -> None:
        self._native = native

    @property
    def closed(self) -> bool:
        return self._native.closed

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def read(self, size: int | None = -1) -> bytes:
        return self._native.read(None if size is None or size < 0 else size)

    read1 = read

    def close(self) -> None:
        self._native.close()


def read_head(source: TableSource, size: int) -> bytes:
    """Up to ``size`` decompressed bytes from the start of the table."""
    try:
        with open_binary(source) as stream:
            return bytes(stream.read(size))
    except (OSError, EOFError, NotImplementedError, zipfile.BadZipFile) as error:
        raise InputError(f"{source.label} is damaged and cannot be decompressed ({error}).") from None


def utf16_codec(head: bytes) -> str | None:
    """'utf-16' for a UTF-16 BOM, 'utf-16-le'/'-be' for BOM-less UTF-16 text, else None."""
    if head.startswith(_UTF16_BOMS):
        return "utf-16"
    sample = head[:4096]
    if len(sample) < 4:
        return None
    even_nuls = sample[0::2].count(0) / len(sample[0::2])
    odd_nuls = sample[1::2].count(0) / len(sample[1::2])
    if odd_nuls > 0.7 and even_nuls < 0.1:
        return "utf-16-le"
    if even_nuls > 0.7 and odd_nuls < 0.1:
        return "utf-16-be"
    return None


def _check_text(source: TableSource, head: bytes) -> None:
    for magic, kind in _BINARY_MAGICS.items():
        if head.startswith(magic):
            raise _not_text(source, kind)
    codec = utf16_codec(head)
    if codec is None and b"\x00" in head:
        raise _not_text(source, "binary data (it contains NUL bytes)")
    if codec is None:
        codec = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "latin-1"
    text = head.decode(codec, errors="ignore")
    if not text.strip(_WHITESPACE_AND_BOMS) and len(head) < HEAD_BYTES:
        raise InputError(f"{source.label} is empty (no rows and no header); pass a file with data.")


def _not_text(source: TableSource, kind: str) -> InputError:
    return InputError(
        f"{source.label} does not look like a text table: it is {kind}. "
        "Export it as CSV (or TSV) and pass that file instead."
    )


def _table_member(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile as error:
        raise InputError(f"{path} looks like a zip archive but cannot be read ({error}).") from None
    for info in infos:
        _check_member_path(path, info.filename)
    tables = [info for info in infos if _is_table_member(info)]
    if len(tables) != 1:
        raise _member_count_error(path, [info.filename for info in infos], tables)
    _check_member_size(path, tables[0])
    return tables[0].filename


def _check_member_path(path: Path, name: str) -> None:
    parts = re.split(r"[\\/]", name)
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        raise InputError(
            f"{path} holds a member with an unsafe path ({name!r}); refusing to read it. "
            "Re-create the archive with plain relative paths, or pass the table file itself."
        )


def _is_table_member(info: zipfile.ZipInfo) -> bool:
    parts = PurePosixPath(info.filename).parts
    if info.is_dir() or not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts):
        return False
    return info.filename.lower().endswith(TABLE_SUFFIXES)


def _member_count_error(path: Path, names: list[str], tables: list[zipfile.ZipInfo]) -> InputError:
    if tables:
        found = ", ".join(info.filename for info in tables[:10])
        return InputError(
            f"{path} holds {len(tables)} table files ({found}); it must hold exactly one. "
            "Unzip it and pass the file you want."
        )
    for marker, kind in _OFFICE_MARKERS.items():
        if any(name.startswith(marker) for name in names) and "[Content_Types].xml" in names:
            return _not_text(TableSource(path, "zip"), kind)
    listed = ", ".join(names[:10]) or "nothing"
    suffixes = "/".join(TABLE_SUFFIXES)
    return InputError(
        f"{path} holds no table file ({suffixes}); it contains: {listed}. Pass a zip holding one CSV file."
    )


def _check_member_size(path: Path, info: zipfile.ZipInfo) -> None:
    if info.flag_bits & 0x1:
        raise InputError(f"{path}: {info.filename} is encrypted; unzip it yourself and pass the file.")
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > MAX_UNCHECKED_MEMBER_BYTES and ratio > MAX_ZIP_RATIO:
        raise InputError(
            f"{path}: {info.filename} claims to expand {info.compress_size} bytes into {info.file_size} "
            f"(ratio {ratio:.0f}:1), which looks like a zip bomb; refusing to read it. "
            "If the file is genuine, unzip it yourself and pass the CSV."
        )
