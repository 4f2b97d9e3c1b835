"""Open the bytes of a flat table file: plain, gzip-compressed, or alone in a zip archive.

The kind of file is told by its first bytes, not its name. Zip members are streamed,
never extracted, so a member's path can do no harm on disk; hostile paths are refused
anyway, and so is anything that is plainly not text.

Compression bombs are refused by one rule for zip members and gzip files alike: past
``MAX_UNCHECKED_BYTES`` of table, the table may be at most ``max_expansion_ratio()`` times
the compressed bytes it came from. A zip member is judged by the sizes its archive declares
(zipfile stops reading at the declared size, so the declaration bounds what is read); a
gzip file declares nothing reliable, so its first ``MAX_UNCHECKED_BYTES`` are decompressed
and counted, without parsing, before anyone reads it, and the count goes on while it is read.
"""

from __future__ import annotations

import codecs
import os
import re
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable, Iterator

import pyarrow as pa

from dataplat_dagster.errors import InputError

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".tab", ".psv")
HEAD_BYTES = 64 * 1024
MAX_UNCHECKED_BYTES = 1 << 30
DEFAULT_MAX_EXPANSION_RATIO = 1000
EXPANSION_RATIO_ENV = "DATAPLAT_MAX_EXPANSION_RATIO"
# zipfile bounds each read of a deflated member; bzip2 and lzma members it decompresses a
# whole compressed read at once, so a few kilobytes of them could fill the memory.
_READABLE_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_ZIP_METHOD_NAMES = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma", 9: "deflate64"}
_GZIP_WBITS = zlib.MAX_WBITS | 16
_GZIP_SCAN_INPUT = 64 << 10
_GZIP_SCAN_BLOCK = 4 << 20

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
    if source.compression == "gzip":
        _scan_gzip(source)
    return source


@contextmanager
def open_binary(source: TableSource) -> Iterator[BinaryIO]:
    """The decompressed bytes of the table, as a readable stream; reading it raises
    ``InputError`` if the file turns out damaged or a compression bomb."""
    if source.compression == "zip":
        with zipfile.ZipFile(source.path) as archive, archive.open(source.member) as member:
            yield _PythonStream(member, source)
        return
    try:
        raw = pa.OSFile(str(source.path))
    except OSError as error:
        raise InputError(f"{source.label} cannot be opened ({error}); check the file.") from None
    if source.compression != "gzip":
        with raw:
            yield _PythonStream(raw, source)
        return
    with raw, pa.CompressedInputStream(raw, "gzip") as stream:
        yield _PythonStream(stream, source, compressed_read=raw.tell)


def max_expansion_ratio() -> float:
    """How many times its compressed size a table past ``MAX_UNCHECKED_BYTES`` may be."""
    text = os.environ.get(EXPANSION_RATIO_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_EXPANSION_RATIO
    try:
        ratio = float(text)
    except ValueError:
        ratio = 0.0
    if not ratio >= 1:
        raise InputError(
            f"${EXPANSION_RATIO_ENV} is {text!r}: it must be a number of at least 1 (the default is "
            f"{DEFAULT_MAX_EXPANSION_RATIO}). Fix it or unset it."
        )
    return ratio


def _bomb(what: str, compressed: int, expanded: int, ratio: float, *, so_far: bool = False) -> InputError:
    return InputError(
        f"{what}: {compressed:,} compressed bytes expand into {'more than ' if so_far else ''}{expanded:,} "
        f"(ratio {expanded / max(compressed, 1):,.0f}:1); "
        f"past {MAX_UNCHECKED_BYTES:,} bytes a table may expand at most {ratio:,.0f}:1, so this looks like a "
        f"compression bomb and is refused. If the file is genuine, set {EXPANSION_RATIO_ENV} to a larger ratio in "
        "the environment of the command and of the runs, or decompress the file yourself and pass the CSV."
    )


def _scan_gzip(source: TableSource) -> None:
    """Decompress, without parsing, the first ``MAX_UNCHECKED_BYTES`` of a gzip file and
    count exactly the compressed bytes they came from: a bomb is refused after a second
    or so, before anything parses it."""
    ratio = max_expansion_ratio()
    decompressor = zlib.decompressobj(_GZIP_WBITS)
    consumed = expanded = 0
    pending = b""
    with source.path.open("rb") as file:
        while expanded <= MAX_UNCHECKED_BYTES:
            if not pending and not (pending := file.read(_GZIP_SCAN_INPUT)):
                return
            try:
                expanded += len(decompressor.decompress(pending, _GZIP_SCAN_BLOCK))
            except zlib.error as error:
                raise _damaged(source, error) from None
            left = decompressor.unused_data if decompressor.eof else decompressor.unconsumed_tail
            consumed += len(pending) - len(left)
            pending = left
            if decompressor.eof:  # another gzip member may follow
                decompressor = zlib.decompressobj(_GZIP_WBITS)
    if expanded > ratio * consumed:
        raise _bomb(str(source.path), consumed, expanded, ratio, so_far=True)


class _PythonStream:
    """A pyarrow stream or a zip member seen as a plain Python object with ``read``, which
    counts what it hands out: given ``compressed_read`` (how far into the compressed file
    the decompressor is), it refuses a compression bomb as it reads. That position runs
    ahead of the decompressor by up to one chunk, so a bomb after an ordinary start is
    refused a chunk's worth of expansion late, never a genuine file too early.

    pyarrow's CSV reader reads a native stream ahead without bound (the whole file, if
    parsing keeps up; an ``io.RawIOBase`` fared the same). Through a plain object it
    stays a few blocks ahead, which keeps memory flat however large the file is.
    """

    def __init__(self, native, source: TableSource, compressed_read: Callable[[], int] | None = None) -> None:
        self._native = native
        self._source = source
        self._compressed_read = compressed_read
        self._ratio = max_expansion_ratio() if compressed_read else None
        self.expanded = 0

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
        try:
            data = self._native.read(None if size is None or size < 0 else size)
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as error:
            raise _damaged(self._source, error) from None
        self._count(len(data))
        return data

    def readinto(self, buffer) -> int:
        try:
            count = self._native.readinto(buffer)
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as error:
            raise _damaged(self._source, error) from None
        self._count(count)
        return count

    def _count(self, size: int) -> None:
        self.expanded += size
        if self._ratio and self.expanded > MAX_UNCHECKED_BYTES:
            compressed = self._compressed_read()
            if self.expanded > self._ratio * compressed:
                raise _bomb(str(self._source.path), compressed, self.expanded, self._ratio, so_far=True)

    read1 = read

    def close(self) -> None:
        self._native.close()


def read_head(source: TableSource, size: int) -> bytes:
    """Up to ``size`` decompressed bytes from the start of the table."""
    try:
        with open_binary(source) as stream:
            return bytes(stream.read(size))
    except (OSError, EOFError, NotImplementedError, zipfile.BadZipFile) as error:
        raise _damaged(source, error) from None


def _damaged(source: TableSource, error: Exception) -> InputError:
    return InputError(f"{source.label} is damaged and cannot be decompressed ({error}); check the file, or export it again.")


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
    _check_member_readable(path, tables[0])
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


# A zip mostly of these is an image folder's upload, not a table's.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp")


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
    images = [name for name in names if name.lower().endswith(IMAGE_SUFFIXES)]
    if images and len(images) * 2 > len([name for name in names if not name.endswith("/")]):
        return InputError(
            f"{path} is a zip of images ({images[0]}, ...), not of a table: import it as an image folder with "
            f"`dataplat image-folder import {path.name} --name NAME`."
        )
    listed = ", ".join(names[:10]) or "nothing"
    suffixes = "/".join(TABLE_SUFFIXES)
    return InputError(
        f"{path} holds no table file ({suffixes}); it contains: {listed}. Pass a zip holding one CSV file."
    )


def _check_member_readable(path: Path, info: zipfile.ZipInfo) -> None:
    if info.flag_bits & 0x1:
        raise InputError(f"{path}: {info.filename} is encrypted; unzip it yourself and pass the file.")
    if info.compress_type not in _READABLE_ZIP_METHODS:
        raise InputError(
            f"{path}: {info.filename} is compressed with method {info.compress_type} "
            f"({_ZIP_METHOD_NAMES.get(info.compress_type, 'unknown')}); only stored and deflate members are read. "
            "Re-create the archive with ordinary zip compression (deflate), or pass the CSV itself."
        )
    # A member cannot hold more compressed bytes than the archive: a larger claim hides a bomb.
    compressed = min(info.compress_size, path.stat().st_size)
    ratio = max_expansion_ratio()
    if info.file_size > MAX_UNCHECKED_BYTES and info.file_size > ratio * compressed:
        raise _bomb(f"{path}: member {info.filename}", compressed, info.file_size, ratio)
