"""Extracting an image folder from a zip or a local folder: formats told by content, labels,
names in any encoding, duplicates, and every hostile archive refused with the member named.
Every archive is built here, most of them in memory."""

from __future__ import annotations

import hashlib
import io
import os
import resource
import stat
import struct
import time
import unicodedata
import warnings
import zipfile
import zlib
from pathlib import Path

import pyarrow as pa
import pytest
from PIL import Image

from dataplat_dagster.errors import InputError
from dataplat_dagster.images.archive import (
    MANIFEST_SCHEMA,
    ExtractedImages,
    ImageLimits,
    extract_images,
    manifest_table,
)

MIB = 1 << 20


@pytest.fixture(autouse=True)
def default_limits(monkeypatch):
    monkeypatch.delenv("DATAPLAT_MAX_EXPANSION_RATIO", raising=False)
    monkeypatch.delenv("DATAPLAT_IMAGE_MAX_TOTAL_BYTES", raising=False)


def image_bytes(image_format: str = "PNG", size: tuple[int, int] = (8, 6), mode: str = "RGB",
                color=None, **params) -> bytes:
    image = Image.new(mode, size, color if color is not None else (200, 40, 90) if mode == "RGB" else 0)
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A PNG of a few bytes whose header declares ``width`` x ``height`` pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def make_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def with_raw_names(data: bytes, names: dict[str, bytes]) -> bytes:
    """``data`` (a zip) with each ASCII placeholder name replaced by raw name bytes of the
    same length, in the local header and the central directory, without the UTF-8 flag."""
    for placeholder, raw in names.items():
        assert len(placeholder.encode()) == len(raw) and data.count(placeholder.encode()) == 2
        data = data.replace(placeholder.encode(), raw)
    return data


def files_under(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def extract(tmp_path: Path, source: Path, **options) -> ExtractedImages:
    """Extract into ``tmp_path/out`` and check the folder holds exactly the records."""
    extracted = extract_images(source, tmp_path / "out", **options)
    assert sorted(files_under(tmp_path / "out")) == [record.path for record in extracted.records]
    return extracted


def refused(tmp_path: Path, source: Path, **options) -> str:
    """The message of the refusal; nothing is left in ``tmp_path/out`` nor beside it."""
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(InputError) as raised:
        extract_images(source, tmp_path / "out", **options)
    assert sorted(os.listdir(tmp_path)) == sorted({*before, "out"})
    assert list((tmp_path / "out").rglob("*")) == []
    message = str(raised.value)
    assert "\n" not in message
    return message


def by_path(extracted: ExtractedImages) -> dict:
    return {record.path: record for record in extracted.records}


# --- What is extracted ----------------------------------------------------------------------------------


def test_formats_are_read_from_the_content_and_bytes_are_kept(tmp_path):
    members = {  # each format under another format's extension
        "jpeg.png": (image_bytes("JPEG", (8, 6)), "JPEG", "RGB", (8, 6)),
        "png.jpg": (image_bytes("PNG", (7, 5), "RGBA", (1, 2, 3, 4)), "PNG", "RGBA", (7, 5)),
        "gif.bmp": (image_bytes("GIF", (6, 4)), "GIF", "P", (6, 4)),
        "bmp.gif": (image_bytes("BMP", (5, 3), "L"), "BMP", "L", (5, 3)),
        "tiff.webp": (image_bytes("TIFF", (4, 3)), "TIFF", "RGB", (4, 3)),
        "webp.tif": (image_bytes("WEBP", (9, 2), lossless=True), "WEBP", "RGB", (9, 2)),
    }
    archive = make_zip(tmp_path / "images.zip", {name: data for name, (data, *_) in members.items()})
    extracted = extract(tmp_path, archive)
    assert [record.path for record in extracted.records] == sorted(members)
    for name, (data, image_format, mode, (width, height)) in members.items():
        record = by_path(extracted)[name]
        assert (record.format, record.mode, record.width, record.height) == (image_format, mode, width, height)
        assert (record.bytes, record.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert (record.label, record.label_index, record.duplicate_of) == (None, None, None)
        assert (tmp_path / "out" / name).read_bytes() == data
    assert (extracted.labels, extracted.skipped, extracted.debris, extracted.stripped_folder) == ([], [], 0, None)


def test_a_camera_mpo_is_a_jpeg_and_a_small_member_may_expand_freely(tmp_path):
    pictures = [Image.new("RGB", (16, 12), (10, 20, 30)), Image.new("RGB", (16, 12), (30, 20, 10))]
    buffer = io.BytesIO()
    pictures[0].save(buffer, "MPO", save_all=True, append_images=pictures[1:])
    flat = image_bytes("BMP", (1000, 1000), color=(7, 7, 7))  # 3 MB of one colour: deflate packs it ~1000:1
    archive = make_zip(tmp_path / "images.zip", {"camera.jpg": buffer.getvalue(), "flat.bmp": flat})
    with zipfile.ZipFile(archive) as reader:
        assert reader.getinfo("flat.bmp").file_size > 500 * reader.getinfo("flat.bmp").compress_size
    extracted = extract(tmp_path, archive)
    assert [(r.path, r.format, r.width, r.height) for r in extracted.records] == [
        ("camera.jpg", "JPEG", 16, 12), ("flat.bmp", "BMP", 1000, 1000),
    ]
    assert extracted.records[0].bytes == len(buffer.getvalue())


def test_first_folder_level_is_the_label_deeper_folders_stay_in_the_path(tmp_path):
    archive = make_zip(tmp_path / "images.zip", {
        "cats/": b"", "empty/": b"",  # folder entries: fine, and nothing is created for them
        "cats/a.png": image_bytes(color=(1, 1, 1)),
        "cats/siamese/b.png": image_bytes(color=(2, 2, 2)),
        "dogs/c.png": image_bytes(color=(3, 3, 3)),
        "Birds/d.png": image_bytes(color=(4, 4, 4)),
        "zebra.png": image_bytes(color=(5, 5, 5)),
    })
    extracted = extract(tmp_path, archive)
    assert extracted.labels == ["Birds", "cats", "dogs"]  # a plain sort: capitals first
    assert [(r.path, r.label, r.label_index) for r in extracted.records] == [
        ("Birds/d.png", "Birds", 0),
        ("cats/a.png", "cats", 1),
        ("cats/siamese/b.png", "cats", 1),
        ("dogs/c.png", "dogs", 2),
        ("zebra.png", None, None),
    ]
    assert extracted.stripped_folder is None
    assert not (tmp_path / "out" / "empty").exists()


def test_a_single_top_folder_is_stripped_and_debris_is_counted(tmp_path):
    archive = make_zip(tmp_path / "images.zip", {
        "pets/": b"",
        "pets/cats/a.png": image_bytes(color=(1, 1, 1)),
        "pets/dogs/b.png": image_bytes(color=(2, 2, 2)),
        "pets/c.png": image_bytes(color=(3, 3, 3)),
        "__MACOSX/": b"",
        "__MACOSX/pets/cats/._a.png": b"\x00\x05\x16\x07 AppleDouble",
        "pets/.DS_Store": b"Bud1",
        "pets/._c.png": b"\x00\x05\x16\x07",
        "pets/cats/Thumbs.db": b"\xd0\xcf\x11\xe0",
        "pets/dogs/DESKTOP.INI": b"[.ShellClassInfo]",
    })
    extracted = extract(tmp_path, archive)
    assert extracted.stripped_folder == "pets"
    assert extracted.debris == 5  # files only: the folder entries are not debris
    assert [(r.path, r.label, r.label_index) for r in extracted.records] == [
        ("c.png", None, None), ("cats/a.png", "cats", 0), ("dogs/b.png", "dogs", 1),
    ]


def test_names_are_decoded_as_utf8_with_or_without_the_flag_else_cp437_and_normalised(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("été/chat.png", image_bytes(color=(1, 1, 1)))  # zipfile sets the UTF-8 flag
        archive.writestr("cafe\u0301/y.png", image_bytes(color=(2, 2, 2)))  # decomposed, as macOS writes it
        archive.writestr("niXXo/perro.png", image_bytes(color=(3, 3, 3)))
        archive.writestr("cafX/x.png", image_bytes(color=(4, 4, 4)))
    (tmp_path / "images.zip").write_bytes(with_raw_names(buffer.getvalue(), {
        "niXXo/perro.png": "niño/perro.png".encode(),  # UTF-8 without the flag
        "cafX/x.png": b"caf\x82/x.png",  # cp437: 0x82 is é there, and not valid UTF-8
    }))
    with zipfile.ZipFile(tmp_path / "images.zip") as archive:
        assert [info.flag_bits & 0x800 for info in archive.infolist()] == [0x800, 0x800, 0, 0]

    extracted = extract(tmp_path, tmp_path / "images.zip")
    cafe = unicodedata.normalize("NFC", "café")
    assert [(r.path, r.label) for r in extracted.records] == [
        (f"{cafe}/x.png", cafe), (f"{cafe}/y.png", cafe), ("niño/perro.png", "niño"), ("été/chat.png", "été"),
    ]
    assert extracted.labels == [cafe, "niño", "été"]
    assert all(unicodedata.is_normalized("NFC", record.path) for record in extracted.records)
    assert (tmp_path / "out" / cafe / "y.png").is_file()


def test_exact_duplicates_point_at_the_first_path_in_path_order(tmp_path):
    same, other = image_bytes(color=(9, 9, 9)), image_bytes(color=(8, 8, 8))
    archive = make_zip(tmp_path / "images.zip", {"b/1.png": same, "a/2.png": same, "a/3.png": same, "c/4.png": other})
    extracted = extract(tmp_path, archive)
    assert [(r.path, r.duplicate_of) for r in extracted.records] == [
        ("a/2.png", None), ("a/3.png", "a/2.png"), ("b/1.png", "a/2.png"), ("c/4.png", None),
    ]
    table = manifest_table(extracted)
    assert table.schema == MANIFEST_SCHEMA
    assert table.column("duplicate").to_pylist() == [False, True, True, False]
    assert table.column("duplicate_of").to_pylist() == [None, "a/2.png", "a/2.png", None]


def test_manifest_table_has_one_typed_row_per_record(tmp_path):
    data = image_bytes("JPEG", (10, 7))
    archive = make_zip(tmp_path / "images.zip", {"cats/a.jpg": data, "root.png": image_bytes(size=(3, 2))})
    table = manifest_table(extract(tmp_path, archive))
    assert table.schema.names == ["path", "label", "label_index", "width", "height", "format", "mode", "bytes",
                                  "sha256", "duplicate", "duplicate_of"]
    assert table.schema.field("label_index").type == pa.int32() and table.schema.field("bytes").type == pa.int64()
    assert table.to_pylist()[0] == {
        "path": "cats/a.jpg", "label": "cats", "label_index": 0, "width": 10, "height": 7, "format": "JPEG",
        "mode": "RGB", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "duplicate": False,
        "duplicate_of": None,
    }
    assert table.to_pylist()[1]["label"] is None and table.to_pylist()[1]["label_index"] is None


def test_an_exif_rotated_jpeg_keeps_its_stored_size_and_bytes(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to display
    data = image_bytes("JPEG", (40, 20), exif=exif)
    extracted = extract(tmp_path, make_zip(tmp_path / "images.zip", {"photos/rotated.jpg": data}))
    record = extracted.records[0]
    assert (record.path, record.width, record.height, record.format) == ("rotated.jpg", 40, 20, "JPEG")
    assert (tmp_path / "out" / "rotated.jpg").read_bytes() == data
    with Image.open(tmp_path / "out" / "rotated.jpg") as image:
        assert image.getexif()[0x0112] == 6


def test_a_local_folder_is_read_by_the_same_rules(tmp_path):
    source = tmp_path / "source"
    (source / "cats" / "siamese").mkdir(parents=True)
    (source / "dogs").mkdir()
    files = {
        "cats/a.jpg": image_bytes("PNG", color=(1, 1, 1)),
        "cats/siamese/b.png": image_bytes("GIF", color=(2, 2, 2)),
        "dogs/c.png": image_bytes("JPEG"),
        "root.bmp": image_bytes("BMP", color=(3, 3, 3)),
        ".DS_Store": b"Bud1",
        "cats/._a.jpg": b"\x00\x05\x16\x07",
    }
    for name, data in files.items():
        (source / name).write_bytes(data)
    extracted = extract(tmp_path, source)
    assert [(r.path, r.label, r.format) for r in extracted.records] == [
        ("cats/a.jpg", "cats", "PNG"), ("cats/siamese/b.png", "cats", "GIF"), ("dogs/c.png", "dogs", "JPEG"),
        ("root.bmp", None, "BMP"),
    ]
    assert (extracted.debris, extracted.labels) == (2, ["cats", "dogs"])
    assert (tmp_path / "out" / "cats/siamese/b.png").read_bytes() == files["cats/siamese/b.png"]


@pytest.mark.parametrize("link", ["cats/link.png", "dogs"])
def test_a_local_folder_with_a_symbolic_link_is_refused(tmp_path, link):
    source = tmp_path / "source"
    (source / "cats").mkdir(parents=True)
    (source / "cats" / "a.png").write_bytes(image_bytes())
    (source / link).symlink_to(tmp_path / "elsewhere.png" if link.endswith(".png") else tmp_path)
    message = refused(tmp_path, source)
    assert f"{source}: {link!r} is a symbolic link" in message


def test_a_local_folder_with_a_name_that_is_not_utf8_is_refused(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "a.png").write_bytes(image_bytes())
    with open(os.path.join(os.fsencode(source), b"caf\xe9.png"), "wb") as file:  # Latin-1, as an old tool wrote it
        file.write(image_bytes())
    message = refused(tmp_path, source)
    assert f"{source} holds a member with an unsafe name ('caf\\udce9.png'): it is not valid UTF-8" in message


def test_a_local_folder_with_a_named_pipe_is_refused(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "a.png").write_bytes(image_bytes())
    os.mkfifo(source / "pipe.png")
    assert "'pipe.png' is a named pipe (FIFO), not a regular file" in refused(tmp_path, source)


def test_destination_must_be_empty_and_outside_the_source(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "a.png").write_bytes(image_bytes())
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(ValueError, match="is not empty"):
        extract_images(source, tmp_path / "busy")
    with pytest.raises(InputError, match="is inside .*source, the folder being imported"):
        extract_images(source, source / "out")


# --- Sources that are not image archives ----------------------------------------------------------------


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    (tmp_path / "notes.zip").write_text("just some text\n")
    assert refused(tmp_path, tmp_path / "notes.zip").startswith(f"{tmp_path / 'notes.zip'} is not a zip file")
    (tmp_path / "photo.png").write_bytes(image_bytes())
    assert "photo.png is not a zip file" in refused(tmp_path, tmp_path / "photo.png")
    assert "does not exist" in refused(tmp_path, tmp_path / "missing.zip")


@pytest.mark.parametrize("members", [{}, {"pets/": b"", "__MACOSX/pets/._a.png": b"x", "pets/.DS_Store": b"x"}])
def test_a_zip_without_images_is_refused(tmp_path, members):
    archive = make_zip(tmp_path / "images.zip", members)
    assert refused(tmp_path, archive).startswith(f"{archive} holds no images")


# --- Hostile archives: refused whatever skip_invalid says -----------------------------------------------


@pytest.mark.parametrize(("name", "reason"), [
    ("../x.png", "it climbs out of the folder with '..'"),
    ("cats/../../x.png", "it climbs out of the folder with '..'"),
    ("/abs.png", "it is an absolute path"),
    ("C:\\x.png", "it starts with a drive letter"),
    ("C:/x.png", "it starts with a drive letter"),
    ("cats/D:x.png", "its part 'D:x.png' starts with a drive letter"),
    ("a\\..\\..\\x.png", "it climbs out of the folder with '..'"),
    ("cats\\x.png", "it contains a backslash"),
    ("cats/a\x1b.png", "it contains the control character '\\x1b'"),
])
def test_unsafe_member_names_are_refused(tmp_path, name, reason):
    archive = make_zip(tmp_path / "images.zip", {"cats/ok.png": image_bytes(), name: image_bytes()})
    message = refused(tmp_path, archive, skip_invalid=True)
    assert message.startswith(f"{archive} holds a member with an unsafe name ({name!r}): {reason}")


def test_a_nul_in_a_member_name_is_refused_though_zipfile_cuts_the_name_there(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("evil.png_.txt", image_bytes())
    (tmp_path / "images.zip").write_bytes(with_raw_names(buffer.getvalue(), {"evil.png_.txt": b"evil.png\x00.txt"}))
    message = refused(tmp_path, tmp_path / "images.zip")
    assert "unsafe name ('evil.png\\x00.txt'): it contains the control character '\\x00'" in message


@pytest.mark.parametrize(("file_type", "what"), [
    (stat.S_IFLNK, "is a symbolic link; links are never followed or extracted"),
    (stat.S_IFCHR, "is a character device, not a regular file"),
    (stat.S_IFIFO, "is a named pipe (FIFO), not a regular file"),
])
def test_links_and_special_entries_are_refused(tmp_path, file_type, what):
    entry = zipfile.ZipInfo("cats/link.png")
    entry.external_attr = (file_type | 0o777) << 16
    with zipfile.ZipFile(tmp_path / "images.zip", "w") as archive:
        archive.writestr("cats/ok.png", image_bytes())
        archive.writestr(entry, "../../../etc/passwd")
    message = refused(tmp_path, tmp_path / "images.zip", skip_invalid=True)
    assert f"{tmp_path / 'images.zip'}: 'cats/link.png' {what}" in message


def test_an_encrypted_member_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "images.zip", "w") as archive:
        archive.writestr("cats/secret.png", image_bytes())
        archive.filelist[-1].flag_bits |= 0x1  # the central directory says: encrypted
    message = refused(tmp_path, tmp_path / "images.zip", skip_invalid=True)
    assert "member 'cats/secret.png' is encrypted; password-protected archives are not read" in message


def test_a_bzip2_member_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "images.zip", "w") as archive:
        archive.writestr("cats/a.png", image_bytes(), compress_type=zipfile.ZIP_BZIP2)
    message = refused(tmp_path, tmp_path / "images.zip")
    assert "member 'cats/a.png' is compressed with method 12 (bzip2); only stored and deflate members" in message


def test_overlapping_entries_are_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "images.zip", "w") as archive:
        archive.writestr("a.png", image_bytes(color=(1, 1, 1)))
        archive.writestr("b.png", image_bytes(color=(2, 2, 2)))
        archive.filelist[1].header_offset = archive.filelist[0].header_offset  # both point at a's bytes
    message = refused(tmp_path, tmp_path / "images.zip", skip_invalid=True)
    assert "members 'a.png' and 'b.png' overlap (they share the archive's bytes from offset 0)" in message
    assert "zip bombs" in message


def test_a_ratio_bomb_is_refused_from_its_declared_sizes_in_seconds_and_flat_memory(tmp_path):
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as writer:
        writer.writestr("cats/a.png", image_bytes())
        with writer.open("cats/zeros.png", "w") as member:  # 200 MiB, streamed: the test stays light
            zeros = bytes(MIB)
            for _ in range(200):
                member.write(zeros)
    assert archive.stat().st_size < 300_000
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    message = refused(tmp_path, archive, skip_invalid=True)
    assert time.monotonic() - started < 5
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) * 1024 < 100 * MIB
    assert "member 'cats/zeros.png': " in message and "compressed bytes expand into 209,715,200" in message
    assert "may expand at most 1,000:1, so this looks like a compression bomb" in message
    assert "DATAPLAT_MAX_EXPANSION_RATIO" in message


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_member_yielding_more_than_it_declares_is_refused(tmp_path, compression):
    with zipfile.ZipFile(tmp_path / "images.zip", "w", compression) as archive:
        archive.writestr("cats/ok.png", image_bytes(color=(1, 1, 1)))
        archive.writestr("cats/big.png", image_bytes(size=(64, 64), color=(2, 2, 2)))
        archive.filelist[-1].file_size = 10  # the central directory understates it
    message = refused(tmp_path, tmp_path / "images.zip", skip_invalid=True)
    assert "member 'cats/big.png' yields more than the 10 bytes the archive declares for it" in message


def test_declared_totals_and_member_counts_are_limited(tmp_path, monkeypatch):
    archive = make_zip(tmp_path / "images.zip", {"a.png": bytes(80), "b.png": bytes(80), "c.png": bytes(80)})
    message = refused(tmp_path, archive, limits=ImageLimits(max_total_bytes=100))
    assert "its files come to 160 bytes by 'b.png', more than the 100 an image folder may hold" in message
    assert "DATAPLAT_IMAGE_MAX_TOTAL_BYTES" in message
    message = refused(tmp_path, archive, limits=ImageLimits(max_members=2))
    assert "holds 3 members, more than the 2 allowed (the first past the limit is 'c.png')" in message

    monkeypatch.setenv("DATAPLAT_IMAGE_MAX_TOTAL_BYTES", "1234")
    monkeypatch.setenv("DATAPLAT_MAX_EXPANSION_RATIO", "50")
    assert ImageLimits.from_env() == ImageLimits(50.0, 1234, 1_000_000, Image.MAX_IMAGE_PIXELS)
    monkeypatch.setenv("DATAPLAT_IMAGE_MAX_TOTAL_BYTES", "lots")
    with pytest.raises(InputError, match=r"\$DATAPLAT_IMAGE_MAX_TOTAL_BYTES is 'lots': it must be a whole number"):
        ImageLimits.from_env()


@pytest.mark.parametrize(("image", "limits", "pixels"), [
    (png_declaring(20_000, 20_000), None, "exceeds limit"),  # Pillow's own error, past twice its limit
    (png_declaring(10_000, 10_000), None, "10,000 x 10,000 = 100,000,000"),  # between its warning and error
    (image_bytes(size=(40, 30)), ImageLimits(max_pixels=1_000), "40 x 30 = 1,200"),
])
def test_decompression_bomb_pixels_are_refused(tmp_path, image, limits, pixels):
    archive = make_zip(tmp_path / "images.zip", {"cats/ok.png": image_bytes(size=(20, 20)), "cats/huge.png": image})
    message = refused(tmp_path, archive, skip_invalid=True, limits=limits)
    maximum = (limits or ImageLimits()).max_pixels
    assert "'cats/huge.png' has too many pixels (" in message and pixels in message
    assert f"at most {maximum:,} are allowed" in message and "decompression bomb" in message


@pytest.mark.parametrize("name", ["cats/inner.zip", "cats/inner.png"])
def test_a_zip_inside_the_zip_is_refused(tmp_path, name):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("x.png", image_bytes())
    archive = make_zip(tmp_path / "images.zip", {"cats/ok.png": image_bytes(), name: inner.getvalue()})
    message = refused(tmp_path, archive, skip_invalid=True)
    assert f"{name!r} is a zip archive; nested archives are not unpacked" in message


@pytest.mark.parametrize(("names", "reason"), [
    (["cats/caf\u00e9.png", "cats/cafe\u0301.png"], "their names are the same once Unicode-normalised"),
    (["cats/A.png", "cats/a.png"], "their names differ only in case"),
    (["Cats/a.png", "cats/b.png"], "they sit in folders whose names differ only in case ('Cats' and 'cats')"),
    (["cats", "cats/a.png"], "'cats' is a file where 'cats/a.png' needs a folder"),
    (["cats/a.png", "cats/a.png"], "the archive holds that name twice"),
])
def test_names_that_collide_once_normalised_are_refused(tmp_path, names, reason):
    with zipfile.ZipFile(tmp_path / "images.zip", "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name it is asked to write
        for index, name in enumerate(names):
            archive.writestr(name, image_bytes(color=(index, index, index)))
    message = refused(tmp_path, tmp_path / "images.zip", skip_invalid=True)
    expected = sorted(names, key=lambda name: unicodedata.normalize("NFC", name))
    assert f"members {expected[0]!r} and {expected[1]!r} collide: {reason}" in message


def test_case_variants_are_kept_apart_when_case_matters(tmp_path):
    archive = make_zip(tmp_path / "images.zip", {"cats/A.png": image_bytes(color=(1, 1, 1)),
                                                 "cats/a.png": image_bytes(color=(2, 2, 2)), "b.png": image_bytes()})
    extracted = extract(tmp_path, archive, case_insensitive=False)
    assert [record.path for record in extracted.records] == ["b.png", "cats/A.png", "cats/a.png"]


# --- Members that are not readable images ---------------------------------------------------------------


def invalid_archive(tmp_path: Path) -> tuple[Path, bytes]:
    good = image_bytes("PNG", (12, 12))
    jpeg = image_bytes("JPEG", (64, 64), color=(10, 200, 30))
    return make_zip(tmp_path / "images.zip", {
        "cats/cut.jpg": jpeg[: len(jpeg) // 2], "cats/ok.png": good, "dogs/notes.png": b"not an image\n",
    }), good


def test_invalid_members_fail_the_import_all_listed(tmp_path):
    archive, _ = invalid_archive(tmp_path)
    message = refused(tmp_path, archive)
    assert message.startswith(f"{archive}: 2 of its 3 files are not readable images: ")
    assert "'cats/cut.jpg' (it cannot be decoded: Truncated File Read)" in message  # Pillow's words
    assert "'dogs/notes.png' (it is not an image (JPEG, PNG, GIF, BMP, TIFF, WEBP))" in message
    assert "or import with invalid files skipped (the other 1 would be imported)" in message


def test_skip_invalid_keeps_the_readable_images_and_lists_the_others(tmp_path):
    archive, good = invalid_archive(tmp_path)
    extracted = extract(tmp_path, archive, skip_invalid=True)
    assert [(r.path, r.label, r.label_index) for r in extracted.records] == [("cats/ok.png", "cats", 0)]
    assert extracted.labels == ["cats"]
    assert [entry["member"] for entry in extracted.skipped] == ["cats/cut.jpg", "dogs/notes.png"]
    assert extracted.skipped[0]["reason"] == "it cannot be decoded: Truncated File Read"
    assert extracted.skipped[1]["reason"] == "it is not an image (JPEG, PNG, GIF, BMP, TIFF, WEBP)"
    assert files_under(tmp_path / "out") == {"cats/ok.png": good}


def test_a_member_failing_its_checksum_is_invalid(tmp_path):
    with zipfile.ZipFile(tmp_path / "images.zip", "w") as archive:
        archive.writestr("cats/ok.png", image_bytes(color=(1, 1, 1)))
        archive.writestr("dogs/flipped.png", image_bytes(color=(2, 2, 2)))
        archive.filelist[-1].CRC ^= 1
    extracted = extract(tmp_path, tmp_path / "images.zip", skip_invalid=True)
    assert [record.path for record in extracted.records] == ["cats/ok.png"]
    reason = "it is damaged: its content does not match the archive's checksum (CRC-32)"
    assert extracted.skipped == [{"member": "dogs/flipped.png", "reason": reason}]


def test_invalid_members_are_listed_first_20_and_n_more(tmp_path):
    members = {f"bad/{index:02}.png": b"text\n" for index in range(25)} | {"good/a.png": image_bytes()}
    archive = make_zip(tmp_path / "images.zip", members)
    message = refused(tmp_path, archive)
    assert "25 of its 26 files are not readable images" in message
    assert "'bad/19.png' (it is not an image" in message and "'bad/20.png'" not in message
    assert "; and 5 more. Fix or remove them" in message

    extracted = extract(tmp_path, archive, skip_invalid=True)
    assert [entry["member"] for entry in extracted.skipped] == [f"bad/{index:02}.png" for index in range(25)]
    assert [(r.path, r.label) for r in extracted.records] == [("good/a.png", "good")]


def test_an_archive_of_nothing_readable_is_refused_even_when_skipping(tmp_path):
    archive = make_zip(tmp_path / "images.zip", {"a.png": b"text", "b.jpg": b""})
    message = refused(tmp_path, archive, skip_invalid=True)
    assert message.startswith(f"{archive}: none of its 2 files is a readable image: 'a.png' (it is not an image")
