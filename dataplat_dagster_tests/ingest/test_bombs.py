"""Compression bombs and hostile archives, at the production limits: small files built here
that expand past 1 GiB, refused early, with the member, the limit and the way to raise it
in the message, and with memory measured in a child process."""

from __future__ import annotations

import dataclasses
import json
import random
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dataplat_dagster.errors import InputError
from dataplat_dagster.ingest import sources
from dataplat_dagster.ingest.detect import detect_dialect
from dataplat_dagster.ingest.stream import ingest_csv

GIB = 1 << 30
LINES = b"1,2\n" * (1 << 24)  # 64 MiB of rows that deflate packs about 1000:1
# Memory a refusal may take beyond what the same child takes to read a small file.
EXTRA_MEMORY_MB = 256
# A refusal takes seconds; an unguarded read of these files takes many minutes.
CHILD_TIMEOUT_S = 120

CHILD = """
import json, resource, sys
from dataplat_dagster.errors import InputError
from dataplat_dagster.ingest.detect import detect_dialect
from dataplat_dagster.ingest.dialect import ColumnGuess, Dialect
from dataplat_dagster.ingest.stream import ingest_csv

action, path, target = sys.argv[1:]
try:
    if action == "detect":
        detect_dialect(path)
    else:  # what a run does with the dialect the CLI detected
        columns = (ColumnGuess("a", "integer"), ColumnGuess("b", "integer"))
        dialect = Dialect(encoding="utf-8", sep=",", quotechar='"', has_header=True, decimal=".", thousands=None,
                          newlines_in_values=False, columns=columns)
        ingest_csv(path, dialect, target)
    error = None
except InputError as raised:
    error = str(raised)
print(json.dumps({"error": error, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def in_child(action: str, path: Path, target: Path | None = None) -> dict:
    """Run ``detect`` or ``ingest`` on ``path`` in a fresh interpreter: its error and peak memory."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, action, str(path), str(target or path.with_suffix(".parquet"))],
        capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def gzip_member(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return compressor.compress(data) + compressor.flush()


def write_gzip_bomb(path: Path, expanded: int) -> Path:
    """A header, then ``expanded`` bytes of rows as repeated gzip members (a valid gzip file:
    members are concatenated), written without ever holding the expansion."""
    member = gzip_member(LINES)
    with path.open("wb") as file:
        file.write(gzip_member(b"a,b\n"))
        for _ in range(expanded // len(LINES)):
            file.write(member)
    return path


def write_zip_bomb(path: Path, name: str, expanded: int, *, declared_size: int | None = None,
                   declared_compressed: int | None = None, crc: int | None = None) -> Path:
    """A zip of one deflated member holding ``expanded`` bytes of rows, written by hand: the
    deflate stream is one full-flushed block of ``LINES`` repeated, so it costs one
    compression. The header may declare other sizes (or CRC) than the truth."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = compressor.compress(LINES) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()
    count = expanded // len(LINES)
    if crc is None:
        crc = 0
        for _ in range(count):
            crc = zlib.crc32(LINES, crc)
    compressed = len(block) * count + len(end)
    size, stored = declared_size or len(LINES) * count, declared_compressed or compressed
    encoded = name.encode()
    with path.open("wb") as file:
        file.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, stored, size, len(encoded), 0) + encoded)
        for _ in range(count):
            file.write(block)
        file.write(end)
        directory = file.tell()
        file.write(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, stored, size,
                               len(encoded), 0, 0, 0, 0, 0, 0) + encoded)
        directory_size = file.tell() - directory
        file.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, directory_size, directory, 0))
    return path


@pytest.fixture(scope="module")
def baseline_mb(tmp_path_factory) -> float:
    """The peak memory of the same child reading a small gzip file: the peer of each bound."""
    path = tmp_path_factory.mktemp("small") / "small.csv.gz"
    path.write_bytes(gzip_member(b"a,b\n" + LINES[: 1 << 20]))
    measured = in_child("detect", path)
    assert measured["error"] is None
    return measured["peak_rss_mb"]


def assert_refused_as_bomb(error: str | None, what: str, ratio: str = "1,000") -> None:
    assert error is not None, "the bomb was read"
    assert error.startswith(what), error
    assert f"past {GIB:,} bytes a table may expand at most {ratio}:1" in error
    assert "looks like a compression bomb and is refused" in error
    assert "set DATAPLAT_MAX_EXPANSION_RATIO to a larger ratio" in error


def test_gzip_bomb_of_8_gib_is_refused_by_detection_with_bounded_memory(tmp_path, baseline_mb):
    path = write_gzip_bomb(tmp_path / "orders.csv.gz", 8 * GIB)
    assert path.stat().st_size < 9 << 20
    measured = in_child("detect", path)
    assert_refused_as_bomb(measured["error"], f"{path}: ")
    assert "expand into more than" in measured["error"]
    assert measured["peak_rss_mb"] < baseline_mb + EXTRA_MEMORY_MB


def test_gzip_bomb_is_refused_by_a_run_that_was_given_the_dialect_and_nothing_is_written(tmp_path, baseline_mb):
    path = write_gzip_bomb(tmp_path / "orders.csv.gz", 8 * GIB)
    target = tmp_path / "out" / "data.parquet"
    measured = in_child("ingest", path, target)
    assert_refused_as_bomb(measured["error"], f"{path}: ")
    assert measured["peak_rss_mb"] < baseline_mb + EXTRA_MEMORY_MB
    assert not target.exists() and list(target.parent.glob("*")) == []


def test_zip_bomb_of_2_gib_is_refused_from_its_header_with_bounded_memory(tmp_path, baseline_mb):
    path = write_zip_bomb(tmp_path / "orders.zip", "orders.csv", 2 * GIB)
    assert path.stat().st_size < 3 << 20
    with zipfile.ZipFile(path) as archive:  # a genuine archive, honest about its sizes
        assert archive.getinfo("orders.csv").file_size == 2 * GIB
    measured = in_child("detect", path)
    assert_refused_as_bomb(measured["error"], f"{path}: member orders.csv: ")
    assert f"expand into {2 * GIB:,} (ratio 1,02" in measured["error"]
    assert measured["peak_rss_mb"] < baseline_mb + EXTRA_MEMORY_MB


def test_zip_member_claiming_more_compressed_bytes_than_the_archive_holds_is_refused(tmp_path, baseline_mb):
    # Declared as 1 GiB compressed: 2:1 on paper, though the archive is 2 MB.
    path = write_zip_bomb(tmp_path / "orders.zip", "orders.csv", 2 * GIB, declared_compressed=GIB)
    measured = in_child("detect", path)
    size = path.stat().st_size
    assert_refused_as_bomb(measured["error"], f"{path}: member orders.csv: {size:,} compressed bytes expand into {2 * GIB:,}")
    assert measured["peak_rss_mb"] < baseline_mb + EXTRA_MEMORY_MB


def test_zip_member_expanding_beyond_its_declared_size_is_cut_there_and_refused_as_damaged(tmp_path, baseline_mb):
    # Declares 16 MiB with the wrong checksum; the stream inside would give 2 GiB.
    path = write_zip_bomb(tmp_path / "orders.zip", "orders.csv", 2 * GIB, declared_size=16 << 20, crc=1)
    target = tmp_path / "out" / "data.parquet"
    measured = in_child("ingest", path, target)
    assert measured["error"] == (
        f"{path}:orders.csv is damaged and cannot be decompressed (Bad CRC-32 for file 'orders.csv'); "
        "check the file, or export it again."
    )
    assert measured["peak_rss_mb"] < baseline_mb + EXTRA_MEMORY_MB
    assert not target.exists() and list(target.parent.glob("*")) == []


@pytest.mark.parametrize("method, name", [(zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "lzma")])
def test_zip_members_zipfile_cannot_decompress_in_bounded_steps_are_refused(tmp_path, method, name):
    path = tmp_path / "orders.zip"
    with zipfile.ZipFile(path, "w", method) as archive:
        archive.writestr("orders.csv", b"a,b\n1,2\n")
    with pytest.raises(InputError) as refused:
        detect_dialect(path)
    assert str(refused.value) == (
        f"{path}: orders.csv is compressed with method {method} ({name}); only stored and deflate members are read. "
        "Re-create the archive with ordinary zip compression (deflate), or pass the CSV itself."
    )


def test_bomb_is_refused_through_the_cli_and_nothing_is_registered(cli_workspace, tmp_path):
    path = write_gzip_bomb(tmp_path / "orders.csv.gz", 8 * GIB)
    result = cli_workspace.run("dataset", "import", str(path), "--name", "orders", check=False, timeout=CHILD_TIMEOUT_S)
    assert result.code == 1
    assert "looks like a compression bomb and is refused" in result.stderr
    assert "DATAPLAT_MAX_EXPANSION_RATIO" in result.stderr and "Traceback" not in result.stderr
    assert "orders" not in cli_workspace.datasets()
    assert not (cli_workspace.project_dir / "storage" / "datasets" / "orders").exists()


# -- the rule itself, with the unchecked size shrunk so that files stay small -------------


def mixed_gzip(path: Path, bomb_bytes: int) -> Path:
    """2 MB of ordinary rows, then ``bomb_bytes`` of rows that compress about 1000:1."""
    rows = random.Random(7)
    ordinary = b"".join(f"{rows.randrange(10**9)},{rows.randrange(10**9)}\n".encode() for _ in range(100_000))
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    data = [compressor.compress(b"a,b\n" + ordinary)]
    data += [compressor.compress(LINES[: 1 << 20]) for _ in range(bomb_bytes >> 20)]
    path.write_bytes(b"".join(data) + compressor.flush())
    return path


@pytest.mark.parametrize("newlines_in_values", [False, True], ids=["chunks parsed in parallel", "pyarrow's streaming reader"])
def test_a_bomb_after_an_ordinary_start_is_refused_while_it_is_parsed(tmp_path, monkeypatch, newlines_in_values):
    monkeypatch.setattr(sources, "MAX_UNCHECKED_BYTES", 1 << 20)
    monkeypatch.setenv(sources.EXPANSION_RATIO_ENV, "20")
    path = mixed_gzip(tmp_path / "orders.csv.gz", 64 << 20)
    dialect = dataclasses.replace(detect_dialect(path), newlines_in_values=newlines_in_values)  # its start is fine
    target = tmp_path / "out" / "data.parquet"
    with pytest.raises(InputError, match=r"expand into more than [\d,]+ \(ratio \d+:1\); past 1,048,576 bytes a table may expand at most 20:1"):
        ingest_csv(path, dialect, target)
    assert not target.exists() and list(target.parent.glob("*")) == []


def test_raising_the_ratio_reads_a_genuine_highly_compressed_file(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_UNCHECKED_BYTES", 1 << 20)
    path = tmp_path / "orders.csv.gz"
    path.write_bytes(gzip_member(b"a,b\n" + LINES[: 8 << 20]))
    with pytest.raises(InputError, match=r"at most 1,000:1, so this looks like a compression bomb"):
        detect_dialect(path)

    monkeypatch.setenv(sources.EXPANSION_RATIO_ENV, "5000")
    result = ingest_csv(path, detect_dialect(path), tmp_path / "data.parquet")
    assert result.rows == (8 << 20) // 4
    table = pq.read_table(tmp_path / "data.parquet")
    assert table.column_names == ["a", "b"] and table.column("b").unique().to_pylist() == [2]


@pytest.mark.parametrize("value", ["lots", "0", "-5", "nan"])
def test_a_wrong_ratio_setting_is_named(tmp_path, monkeypatch, value):
    monkeypatch.setenv(sources.EXPANSION_RATIO_ENV, value)
    path = tmp_path / "orders.csv.gz"
    path.write_bytes(gzip_member(b"a,b\n1,2\n"))
    with pytest.raises(InputError) as refused:
        detect_dialect(path)
    assert str(refused.value) == (
        f"$DATAPLAT_MAX_EXPANSION_RATIO is {value!r}: it must be a number of at least 1 (the default is 1000). "
        "Fix it or unset it."
    )
