"""Check and extract the images of an image folder from a zip archive or a local folder.

An image folder is a tree of images whose first folder level names their class (the layout
of torchvision's ImageFolder). It mostly arrives as an uploaded zip, so every member is
treated as hostile until checked, in three steps:

1. The archive as a whole, before any content is read: each member's name (no ``..``,
   absolute paths, drive letters, backslashes or control characters), its type (symbolic
   links, devices and pipes are refused, never followed), encryption, compression method,
   the sizes it declares (an expansion ratio per member, a total, a member count) and where
   its bytes lie: members whose byte ranges overlap are how the most compact zip bombs are
   built. Names that land on the same file once Unicode-normalised (NFC), or by default once
   case is ignored, are refused too, since one would silently overwrite the other.
2. Each member's content, streamed in chunks into a staging folder inside the destination
   while it is hashed and counted; a member that yields more than it declares, or that is
   itself a zip, is refused on the spot. The staged copy, byte for byte the member (read
   back from disk, or kept in memory when it came in one 1 MiB chunk), is then fully
   decoded by Pillow, restricted to the six formats an image folder holds (which also
   keeps Pillow's riskier plugins, such as EPS through Ghostscript, out of reach), after its
   pixel count is checked against the decompression-bomb limit.
3. The accepted images move to their final paths. When every member (debris aside) sits in
   one top folder, that folder is stripped: the archive's layout decides, not which members
   happen to decode.

Only stored and deflate members are read: zipfile decompresses a bzip2 or lzma member one
whole compressed read at a time, so a few kilobytes of them could fill the memory before the
declared size stops them. Hostile members (names, types, encryption, bombs, nested archives,
colliding names) always refuse the whole import. Members that are merely not readable images
(truncated, corrupt, text) refuse it too, all listed at once, unless ``skip_invalid`` leaves
them out. A local folder is read by the same rules, its entries ``lstat``-ed, never followed.
"""

from __future__ import annotations

import copy
import hashlib
import io
import os
import re
import shutil
import stat
import struct
import tempfile
import unicodedata
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
from PIL import Image

from dataplat_dagster.errors import InputError
from dataplat_dagster.ingest.sources import EXPANSION_RATIO_ENV, max_expansion_ratio

MAX_TOTAL_BYTES_ENV = "DATAPLAT_IMAGE_MAX_TOTAL_BYTES"
DEFAULT_MAX_TOTAL_BYTES = 64 << 30
DEFAULT_MAX_MEMBERS = 1_000_000
# Pillow's own default, for a process that switched its check off (MAX_IMAGE_PIXELS = None).
_PILLOW_DEFAULT_MAX_PIXELS = 89_478_485
# Below this a member may expand freely: a small PNG of one flat colour deflates far past
# any ratio a bomb needs, and cannot fill a disk.
RATIO_CHECKED_FROM_BYTES = 10 << 20
IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP")
# An MPO (a camera's JPEG with further pictures appended) is a JPEG to every reader.
_FORMAT_ALIASES = {"MPO": "JPEG"}
_CHUNK_BYTES = 1 << 20
_MAX_LISTED = 20
_MAX_NAME_PART_BYTES = 255
_UTF8_NAME_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_READABLE_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_ZIP_METHOD_NAMES = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma", 9: "deflate64"}
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_LOCAL_HEADER_MAGIC = b"PK\x03\x04"
_DRIVE_LETTER = re.compile(r"[A-Za-z]:")
_DEBRIS_FOLDER = "__macosx"
_DEBRIS_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
_SPECIAL_FILES = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
}


def _max_total_bytes() -> int:
    text = os.environ.get(MAX_TOTAL_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_TOTAL_BYTES
    try:
        total = int(text)
    except ValueError:
        total = 0
    if total < 1:
        raise InputError(
            f"${MAX_TOTAL_BYTES_ENV} is {text!r}: it must be a whole number of bytes, at least 1 (the default is "
            f"{DEFAULT_MAX_TOTAL_BYTES:,}, 64 GiB). Fix it or unset it."
        )
    return total


def _pillow_max_pixels() -> int:
    return Image.MAX_IMAGE_PIXELS or _PILLOW_DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class ImageLimits:
    """How far an archive may expand and how large an image may be. A field left out takes
    the environment's setting where there is one, so ``ImageLimits(max_pixels=...)`` changes
    that limit alone."""

    max_ratio: float = field(default_factory=max_expansion_ratio)  # per member, past RATIO_CHECKED_FROM_BYTES
    max_total_bytes: int = field(default_factory=_max_total_bytes)  # all members together, as declared
    max_members: int = DEFAULT_MAX_MEMBERS
    max_pixels: int = field(default_factory=_pillow_max_pixels)  # width x height, per image

    @classmethod
    def from_env(cls) -> ImageLimits:
        """The limits this deployment sets: ``$DATAPLAT_MAX_EXPANSION_RATIO``,
        ``$DATAPLAT_IMAGE_MAX_TOTAL_BYTES``, and the defaults elsewhere."""
        return cls()


@dataclass(frozen=True)
class ImageRecord:
    """One accepted image, as written under the destination."""

    path: str  # POSIX, relative to the image folder's root, NFC, the common top folder stripped
    label: str | None  # the first folder level; None for an image at the root
    label_index: int | None  # its position in the sorted labels (torchvision's ImageFolder numbering)
    width: int  # as stored: an EXIF orientation is not applied
    height: int
    format: str  # Pillow's name for the format of the content, whatever the extension says
    mode: str
    bytes: int
    sha256: str
    duplicate_of: str | None  # the first path, in path order, with the same content


@dataclass(frozen=True)
class ExtractedImages:
    records: list[ImageRecord]  # sorted by path
    labels: list[str]  # sorted
    skipped: list[dict]  # {"member": name, "reason": text}, in path order, with skip_invalid
    debris: int  # operating-system files (__MACOSX/, ._*, .DS_Store, Thumbs.db, desktop.ini) left out
    stripped_folder: str | None  # the common top folder stripped from every path, if any


MANIFEST_SCHEMA = pa.schema([
    pa.field("path", pa.string(), nullable=False),
    pa.field("label", pa.string()),
    pa.field("label_index", pa.int32()),
    pa.field("width", pa.int32(), nullable=False),
    pa.field("height", pa.int32(), nullable=False),
    pa.field("format", pa.string(), nullable=False),
    pa.field("mode", pa.string(), nullable=False),
    pa.field("bytes", pa.int64(), nullable=False),
    pa.field("sha256", pa.string(), nullable=False),
    pa.field("duplicate", pa.bool_(), nullable=False),
    pa.field("duplicate_of", pa.string()),
])


def manifest_table(extracted: ExtractedImages) -> pa.Table:
    """One row per image, in path order, with ``MANIFEST_SCHEMA``."""
    records = extracted.records
    columns = {name: [getattr(record, name) for record in records] for name in MANIFEST_SCHEMA.names
               if name != "duplicate"}
    columns["duplicate"] = [record.duplicate_of is not None for record in records]
    return pa.Table.from_pydict(columns, schema=MANIFEST_SCHEMA)


def extract_images(source: Path, destination: Path, *, skip_invalid: bool = False,
                   limits: ImageLimits | None = None, case_insensitive: bool = True) -> ExtractedImages:
    """Check every member of ``source`` (a zip file or a local folder) and write each image,
    its bytes unchanged, to ``destination/<record.path>``. ``destination`` must be an empty
    (or new) folder; nothing is written outside it. Raises ``InputError`` naming the member
    and the reason when the source is refused; the caller removes ``destination`` then."""
    source, destination = Path(source), Path(destination)
    limits = limits or ImageLimits.from_env()
    destination.mkdir(parents=True, exist_ok=True)
    if any(destination.iterdir()):
        raise ValueError(f"{destination} is not empty: images are extracted into a new, empty folder.")
    if source.is_dir() and destination.resolve().is_relative_to(source.resolve()):
        raise InputError(f"{destination} is inside {source}, the folder being imported; extract elsewhere.")
    reader = _open_source(source, limits)
    try:
        if not reader.members:
            raise InputError(
                f"{source} holds no images (only folders, or system files such as __MACOSX/ and .DS_Store); "
                "add the images, one folder per label."
            )
        _check_collisions(source, reader.members, case_insensitive)
        root = destination.resolve()
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
        try:
            accepted, invalid = _stage_all(reader, staging, limits)
            if invalid and (not skip_invalid or not accepted):
                raise _invalid_error(source, invalid, len(reader.members))
            # The layout is the archive's: which members decode does not move the others.
            top = _common_top_folder([member.path for member in reader.members])
            return _place(source, accepted, invalid, reader.debris, root, top)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        reader.close()


# --- Reading the source ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Member:
    """A regular file of the source that may be an image."""

    name: str  # as the source spells it, for messages
    path: str  # POSIX, NFC, without empty or "." parts
    size: int  # as declared by the archive, or listed by the folder
    crc: int | None  # the archive's CRC-32 of the content; None for a folder's file
    location: zipfile.ZipInfo | Path


class _ZipSource:
    """A zip archive, checked as a whole when opened; ``members`` are its candidate images."""

    def __init__(self, path: Path, limits: ImageLimits) -> None:
        self.path = path
        try:
            self._archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, NotImplementedError, UnicodeDecodeError, ValueError, EOFError) as error:
            raise InputError(
                f"{path} is not a zip file, or a damaged one ({error}); pass a .zip of images (one folder per "
                "label), or a folder of them."
            ) from None
        except OSError as error:
            raise InputError(f"{path} cannot be read ({error}); check the file.") from None
        try:
            self.members, self.debris = self._scan(limits)
        except BaseException:
            self._archive.close()
            raise

    def _scan(self, limits: ImageLimits) -> tuple[list[_Member], int]:
        infos = self._archive.infolist()
        if len(infos) > limits.max_members:
            raise InputError(
                f"{self.path} holds {len(infos):,} members, more than the {limits.max_members:,} allowed (the first "
                f"past the limit is {infos[limits.max_members].orig_filename!r}); split the images into smaller "
                "archives."
            )
        archive_bytes = self.path.stat().st_size
        members, debris, total = [], 0, 0
        named = [(info, _zip_member_name(info)) for info in infos]
        for info, name in named:
            parts = _path_parts(self.path, name)
            if self._is_folder(info, name):
                continue
            if not parts:
                raise _unsafe_name(self.path, name, "it is empty")
            if info.flag_bits & _ENCRYPTED_FLAG:
                raise InputError(
                    f"{self.path}: member {name!r} is encrypted; password-protected archives are not read. "
                    "Re-create the archive without a password."
                )
            if info.compress_type not in _READABLE_ZIP_METHODS:
                method = _ZIP_METHOD_NAMES.get(info.compress_type, "unknown")
                raise InputError(
                    f"{self.path}: member {name!r} is compressed with method {info.compress_type} ({method}); only "
                    "stored and deflate members are read, since the others cannot be decompressed in bounded "
                    "memory. Re-create the archive with ordinary zip compression (deflate)."
                )
            # A member cannot hold more compressed bytes than the archive: a larger claim hides a bomb.
            compressed = min(info.compress_size, archive_bytes)
            if info.file_size > RATIO_CHECKED_FROM_BYTES and info.file_size > limits.max_ratio * compressed:
                raise _ratio_bomb(self.path, name, compressed, info.file_size, limits.max_ratio)
            total += info.file_size
            if total > limits.max_total_bytes:
                raise _too_large(self.path, name, total, limits.max_total_bytes)
            if _is_debris(parts):
                debris += 1
                continue
            _check_not_archive_name(self.path, name)
            members.append(_Member(name, "/".join(parts), info.file_size, info.CRC, info))
        _check_overlaps(self.path, named)
        return sorted(members, key=lambda member: member.path), debris

    def _is_folder(self, info: zipfile.ZipInfo, name: str) -> bool:
        """Whether ``info`` is a folder entry; refuses links and other special files."""
        file_type = stat.S_IFMT(info.external_attr >> 16)  # the Unix mode, where the archive records one
        if file_type == stat.S_IFLNK:
            raise _symlink(self.path, name)
        if info.is_dir() or file_type == stat.S_IFDIR:
            return True
        if file_type not in (0, stat.S_IFREG):
            raise _special_file(self.path, name, file_type)
        return False

    def open(self, member: _Member) -> BinaryIO:
        # zipfile stops at the declared size and then checks the CRC, so a member that runs
        # past its declaration would read as merely damaged: this view lets one byte past the
        # declaration through, unchecked, and the copy loop counts and checks it.
        view = copy.copy(member.location)
        view.file_size += 1
        del view.CRC
        try:
            return self._archive.open(view)
        except (zipfile.BadZipFile, NotImplementedError, OSError, ValueError) as error:
            raise InputError(
                f"{self.path} is damaged at member {member.name!r} ({error}); re-create the archive with an ordinary "
                "zip tool."
            ) from None

    def overflow(self, member: _Member) -> InputError:
        return InputError(
            f"{self.path}: member {member.name!r} yields more than the {member.size:,} bytes the archive declares "
            "for it; an archive that understates its sizes is a zip bomb's trick, so it is refused. Re-create it "
            "with an ordinary zip tool."
        )

    def close(self) -> None:
        self._archive.close()


class _FolderSource:
    """A local folder, listed with ``lstat`` so that no link is followed."""

    def __init__(self, root: Path, limits: ImageLimits) -> None:
        self.path = root
        members, self.debris, count, total = [], 0, 0, 0
        for folder, subfolders, files in os.walk(root, onerror=self._unreadable):
            subfolders.sort()  # a symbolic link to a folder is listed here, and never walked into
            for entry in sorted(subfolders + files):
                location = Path(folder, entry)
                name = location.relative_to(root).as_posix()
                parts = _path_parts(root, name)
                status = location.lstat()
                if stat.S_ISLNK(status.st_mode):
                    raise _symlink(root, name)
                if stat.S_ISDIR(status.st_mode):
                    continue
                if not stat.S_ISREG(status.st_mode):
                    raise _special_file(root, name, stat.S_IFMT(status.st_mode))
                count += 1
                if count > limits.max_members:
                    raise InputError(
                        f"{root} holds more than the {limits.max_members:,} files allowed (the first past the limit "
                        f"is {name!r}); split the images into smaller folders."
                    )
                total += status.st_size
                if total > limits.max_total_bytes:
                    raise _too_large(root, name, total, limits.max_total_bytes)
                if _is_debris(parts):
                    self.debris += 1
                    continue
                _check_not_archive_name(root, name)
                members.append(_Member(name, "/".join(parts), status.st_size, None, location))
        self.members = sorted(members, key=lambda member: member.path)

    def _unreadable(self, error: OSError) -> None:
        raise InputError(f"{self.path}: {error.filename} cannot be read ({error.strerror}); check its permissions.")

    def open(self, member: _Member) -> BinaryIO:
        try:
            # O_NOFOLLOW: a link swapped in since the listing is refused, not followed.
            return os.fdopen(os.open(member.location, os.O_RDONLY | os.O_NOFOLLOW), "rb")
        except OSError as error:
            message = f"{self.path}: {member.name!r} cannot be read ({error.strerror}); check the file."
            raise InputError(message) from None

    def overflow(self, member: _Member) -> InputError:
        return InputError(
            f"{self.path}: {member.name!r} grew past the {member.size:,} bytes it had when the folder was listed; "
            "import the folder once nothing writes to it."
        )

    def close(self) -> None:
        pass


def _open_source(source: Path, limits: ImageLimits) -> _ZipSource | _FolderSource:
    if source.is_dir():
        return _FolderSource(source, limits)
    if source.is_file():
        return _ZipSource(source, limits)
    raise InputError(f"{source} does not exist, or is neither a file nor a folder; check the path.")


def _zip_member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as written (``orig_filename``: zipfile's ``filename`` is cut at a NUL).
    Without the UTF-8 flag zipfile decodes cp437, but many zip tools write UTF-8 without
    setting the flag, and a cp437 name is rarely also valid UTF-8: UTF-8 is preferred then."""
    if info.flag_bits & _UTF8_NAME_FLAG:
        return info.orig_filename
    try:
        return info.orig_filename.encode("cp437").decode("utf-8")
    except UnicodeError:
        return info.orig_filename


def _path_parts(source: Path, name: str) -> list[str]:
    """The NFC parts of a safe relative ``name``; refuses any other."""
    if _DRIVE_LETTER.match(name):
        raise _unsafe_name(source, name, "it starts with a drive letter (an absolute Windows path)")
    if name.startswith(("/", "\\")):
        raise _unsafe_name(source, name, "it is an absolute path")
    if ".." in re.split(r"[\\/]", name):
        raise _unsafe_name(source, name, "it climbs out of the folder with '..'")
    if "\\" in name:
        raise _unsafe_name(source, name, "it contains a backslash, which Windows reads as a folder separator")
    for character in name:
        category = unicodedata.category(character)
        if category == "Cs":  # a folder's name that is not UTF-8, as os.fsdecode escapes it
            raise _unsafe_name(source, name, "it is not valid UTF-8")
        if category == "Cc":
            raise _unsafe_name(source, name, f"it contains the control character {character!r}")
    parts = [unicodedata.normalize("NFC", part) for part in name.split("/") if part not in ("", ".")]
    for part in parts:
        if _DRIVE_LETTER.match(part):
            raise _unsafe_name(source, name, f"its part {part!r} starts with a drive letter")
        if len(part.encode("utf-8")) > _MAX_NAME_PART_BYTES:
            raise _unsafe_name(source, name, f"a part of it is longer than {_MAX_NAME_PART_BYTES} bytes")
    return parts


def _is_debris(parts: list[str]) -> bool:
    basename = parts[-1].casefold()
    return parts[0].casefold() == _DEBRIS_FOLDER or basename.startswith("._") or basename in _DEBRIS_NAMES


def _check_not_archive_name(source: Path, name: str) -> None:
    if name.casefold().endswith(".zip"):
        raise _nested_archive(source, name)


def _check_overlaps(path: Path, named: list[tuple[zipfile.ZipInfo, str]]) -> None:
    """Refuse members whose bytes (local header, name, extra field, data) overlap: the
    overlapping zip bomb (Fifield, 2019) points many entries at one compressed kernel."""
    spans = []
    with path.open("rb") as file:
        for info, name in named:
            try:
                file.seek(info.header_offset)
                header = file.read(zipfile.sizeFileHeader)
            except (OSError, ValueError):  # an offset before the start of the file
                header = b""
            if len(header) != zipfile.sizeFileHeader or not header.startswith(_LOCAL_HEADER_MAGIC):
                raise InputError(
                    f"{path} is damaged at member {name!r} (its central directory entry points at no local header); "
                    "re-create the archive with an ordinary zip tool."
                )
            *_, name_length, extra_length = struct.unpack(zipfile.structFileHeader, header)
            end = info.header_offset + len(header) + name_length + extra_length + info.compress_size
            spans.append((info.header_offset, end, name))
    spans.sort(key=lambda span: span[0])  # stable: at one offset, the central directory's order
    reach, reaching = 0, ""
    for start, end, name in spans:
        if start < reach:
            raise InputError(
                f"{path}: members {reaching!r} and {name!r} overlap (they share the archive's bytes from offset "
                f"{start:,}); overlapping entries are how compact zip bombs are built, so the archive is refused. "
                "Re-create it with an ordinary zip tool."
            )
        if end > reach:
            reach, reaching = end, name


def _check_collisions(source: Path, members: list[_Member], case_insensitive: bool) -> None:
    """Refuse two members that would land on one file, or a file where a folder goes. Paths
    are NFC already; with ``case_insensitive`` (Windows and macOS file systems) case is
    ignored too, and two spellings of one folder are refused as well."""
    def key(path: str) -> str:
        return unicodedata.normalize("NFC", path.casefold()) if case_insensitive else path

    seen: dict[str, tuple[str, str, str]] = {}  # key -> (spelling, "file" or "folder", the member it came from)
    for member in members:
        parts = member.path.split("/")
        for depth in range(1, len(parts) + 1):
            spelling = "/".join(parts[:depth])
            kind = "file" if depth == len(parts) else "folder"
            entry = (spelling, kind, member.name)
            earlier = seen.setdefault(key(spelling), entry)
            if earlier is entry or earlier[:2] == (spelling, "folder") and kind == "folder":
                continue  # the first use of that name, or one more file in the same folder
            earlier_spelling, earlier_kind, earlier_name = earlier
            if kind != earlier_kind:
                file, folder = (earlier_name, member.name) if earlier_kind == "file" else (member.name, earlier_name)
                reason = f"{file!r} is a file where {folder!r} needs a folder"
            elif kind == "folder":  # paths are NFC already: only case can tell two spellings apart
                reason = (f"they sit in folders whose names differ only in case ({earlier_spelling!r} and "
                          f"{spelling!r}), which Windows and macOS treat as one folder")
            elif earlier_name == member.name:
                reason = "the archive holds that name twice"
            elif earlier_spelling == spelling:
                reason = f"their names are the same once Unicode-normalised (NFC: {spelling!r})"
            else:
                reason = f"their names differ only in case, which Windows and macOS ignore ({spelling.casefold()!r})"
            raise InputError(
                f"{source}: members {earlier_name!r} and {member.name!r} collide: {reason}; extracted, one would "
                "overwrite the other. Rename one of them and re-create the archive."
            )


# --- Staging and decoding each member ------------------------------------------------------------------


class _InvalidMember(Exception):
    """A member that is not a readable image; ``str`` says why."""


@dataclass(frozen=True)
class _Staged:
    member: _Member
    file: Path
    size: int
    sha256: str
    format: str
    mode: str
    width: int
    height: int


def _stage_all(reader: _ZipSource | _FolderSource, staging: Path,
               limits: ImageLimits) -> tuple[list[_Staged], list[tuple[_Member, str]]]:
    """Copy and decode every member; returns the images and the invalid members with why."""
    accepted, invalid = [], []
    for index, member in enumerate(reader.members):
        file = staging / str(index)
        try:
            size, sha256, content = _copy_member(reader, member, file)
            # A member read in one chunk is decoded from that chunk, the very bytes just written
            # to ``file``: decoding a small JPEG from the file took 15-20% longer than from memory.
            image = file if content is None else io.BytesIO(content)
            image_format, mode, width, height = _decode(reader.path, member, image, limits.max_pixels)
        except _InvalidMember as why:
            file.unlink(missing_ok=True)
            invalid.append((member, str(why)))
            continue
        accepted.append(_Staged(member, file, size, sha256, image_format, mode, width, height))
    return accepted, invalid


def _copy_member(reader: _ZipSource | _FolderSource, member: _Member, file: Path) -> tuple[int, str, bytes | None]:
    """Stream ``member`` into ``file``; its size, SHA-256, and its content when it came in one
    chunk (at most ``_CHUNK_BYTES``, held anyway while it was written), else None."""
    digest, crc, size, content = hashlib.sha256(), 0, 0, None
    with reader.open(member) as stream, file.open("xb") as out:
        for chunk in _read_chunks(stream):
            if size == 0 and chunk.startswith(_ZIP_MAGICS):
                raise _nested_archive(reader.path, member.name)
            content = chunk if size == 0 else None  # the whole content as long as it is one chunk
            size += len(chunk)
            if size > member.size:
                raise reader.overflow(member)
            digest.update(chunk)
            crc = zlib.crc32(chunk, crc)
            out.write(chunk)
    if size < member.size:
        raise _InvalidMember(f"it is damaged: {size:,} of its {member.size:,} bytes could be read")
    if member.crc is not None and crc != member.crc:
        raise _InvalidMember("it is damaged: its content does not match the archive's checksum (CRC-32)")
    return size, digest.hexdigest(), content


def _read_chunks(stream: BinaryIO) -> Iterator[bytes]:
    while True:
        try:
            chunk = stream.read(_CHUNK_BYTES)
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as error:
            raise _InvalidMember(f"it is damaged and cannot be decompressed ({error})") from None
        if not chunk:
            return
        yield chunk


def _decode(source: Path, member: _Member, file: Path | BinaryIO, max_pixels: int) -> tuple[str, str, int, int]:
    """Format, mode and stored size of the image in ``file`` (the staged copy, or its bytes
    in memory), after decoding all of it."""
    # Pillow's warnings (its own bomb warning, superseded by max_pixels here; corrupt EXIF)
    # would only flood the log: a member is judged by whether it decodes.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Image.open(file, formats=IMAGE_FORMATS) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise _pixel_bomb(source, member, f"{width:,} x {height:,} = {width * height:,}", max_pixels)
                image.load()
                return _FORMAT_ALIASES.get(image.format, image.format), image.mode, width, height
        except (InputError, MemoryError):
            raise
        except Image.DecompressionBombError as error:  # past twice Pillow's own limit, whatever max_pixels says
            raise _pixel_bomb(source, member, str(error), max_pixels) from None
        except Image.UnidentifiedImageError:
            raise _InvalidMember(f"it is not an image ({', '.join(IMAGE_FORMATS)})") from None
        # A decoder fed a damaged file may raise anything: every error means it is not readable.
        except Exception as error:  # noqa: BLE001
            raise _InvalidMember(f"it cannot be decoded: {str(error) or type(error).__name__}") from None


# --- The result -----------------------------------------------------------------------------------------


def _place(source: Path, accepted: list[_Staged], invalid: list[tuple[_Member, str]], debris: int,
           root: Path, top: str | None) -> ExtractedImages:
    """Move the staged images to their final paths, ``top`` stripped, and describe them."""
    stripped = len(top) + 1 if top else 0
    final = sorted(((staged.member.path[stripped:], staged) for staged in accepted), key=lambda pair: pair[0])
    labels = sorted({path.split("/", 1)[0] for path, _ in final if "/" in path})
    label_index = {label: index for index, label in enumerate(labels)}
    first_with_digest: dict[str, str] = {}
    folders: dict[Path, Path] = {}  # each target folder, checked and made once: most images share a few
    records = []
    for path, staged in final:
        _move(source, staged, root, path, folders)
        label = path.split("/", 1)[0] if "/" in path else None
        original = first_with_digest.setdefault(staged.sha256, path)
        records.append(ImageRecord(
            path=path, label=label, label_index=label_index.get(label), width=staged.width, height=staged.height,
            format=staged.format, mode=staged.mode, bytes=staged.size, sha256=staged.sha256,
            duplicate_of=original if original != path else None,
        ))
    skipped = [{"member": member.name, "reason": reason} for member, reason in invalid]
    return ExtractedImages(records, labels, skipped, debris, top)


def _common_top_folder(paths: list[str]) -> str | None:
    tops = {path.split("/", 1)[0] for path in paths}
    if len(tops) == 1 and all("/" in path for path in paths):
        return tops.pop()
    return None


def _move(source: Path, staged: _Staged, root: Path, path: str, folders: dict[Path, Path]) -> None:
    target = root / path
    # The names were checked already; resolving the target keeps that promise even so. Its
    # folder is resolved (before it is made) once, and the target is that folder and its
    # name, a plain part that ``lexists`` below finds if anything is there already: the
    # same answer as resolving each target, without an lstat per part of its path.
    folder = folders.get(target.parent)
    if folder is None:
        folder = target.parent.resolve()
        if not folder.is_relative_to(root):
            raise _unsafe_name(source, staged.member.name, "it resolves outside the destination folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        folders[target.parent] = folder
    if os.path.lexists(target):  # a file system that ignores case when the check did not
        raise InputError(
            f"{source}: member {staged.member.name!r} lands on a file already extracted ({path!r}): this file system "
            "ignores case or Unicode normalisation. Import with case-insensitive name checks, or rename the file."
        )
    os.replace(staged.file, target)


# --- Messages -------------------------------------------------------------------------------------------


def _unsafe_name(source: Path, name: str, reason: str) -> InputError:
    return InputError(
        f"{source} holds a member with an unsafe name ({name!r}): {reason}; nothing was extracted. Rename it, or "
        "re-create the archive from the folder itself, with plain relative paths."
    )


def _symlink(source: Path, name: str) -> InputError:
    return InputError(
        f"{source}: {name!r} is a symbolic link; links are never followed or extracted. Replace it with the image "
        "itself (zip without --symlinks)."
    )


def _special_file(source: Path, name: str, file_type: int) -> InputError:
    kind = _SPECIAL_FILES.get(file_type, f"a special file (type {file_type:#o})")
    return InputError(f"{source}: {name!r} is {kind}, not a regular file; remove it and try again.")


def _nested_archive(source: Path, name: str) -> InputError:
    return InputError(
        f"{source}: {name!r} is a zip archive; nested archives are not unpacked. Unzip it and put its images in "
        "the outer archive (or folder) instead."
    )


def _ratio_bomb(source: Path, name: str, compressed: int, expanded: int, ratio: float) -> InputError:
    return InputError(
        f"{source}: member {name!r}: {compressed:,} compressed bytes expand into {expanded:,} "
        f"(ratio {expanded / max(compressed, 1):,.0f}:1); past {RATIO_CHECKED_FROM_BYTES:,} bytes a member may "
        f"expand at most {ratio:,.0f}:1, so this looks like a compression bomb and is refused. If the archive is "
        f"genuine, set {EXPANSION_RATIO_ENV} to a larger ratio in the environment of the command and of the runs."
    )


def _too_large(source: Path, name: str, total: int, limit: int) -> InputError:
    return InputError(
        f"{source}: its files come to {total:,} bytes by {name!r}, more than the {limit:,} an image folder may "
        f"hold; split the images into smaller archives, or set {MAX_TOTAL_BYTES_ENV} to a larger number of bytes "
        "in the environment of the command and of the runs."
    )


def _pixel_bomb(source: Path, member: _Member, pixels: str, max_pixels: int) -> InputError:
    return InputError(
        f"{source}: {member.name!r} has too many pixels ({pixels}); at most {max_pixels:,} are allowed, since such "
        "an image decodes into gigabytes of memory (a decompression bomb). Resize it, or remove it."
    )


def _invalid_error(source: Path, invalid: list[tuple[_Member, str]], files: int) -> InputError:
    listed = "; ".join(f"{member.name!r} ({reason})" for member, reason in invalid[:_MAX_LISTED])
    more = f"; and {len(invalid) - _MAX_LISTED:,} more" if len(invalid) > _MAX_LISTED else ""
    readable = files - len(invalid)
    if not readable:
        return InputError(
            f"{source}: none of its {files:,} files is a readable image: {listed}{more}. Pass an archive of JPEG, "
            "PNG, GIF, BMP, TIFF or WebP images."
        )
    return InputError(
        f"{source}: {len(invalid):,} of its {files:,} files are not readable images: {listed}{more}. Fix or remove "
        f"them, or import with invalid files skipped (the other {readable:,} would be imported)."
    )
