"""Streaming ingest: typed Parquet out, recovery when the sample was wrong, clear errors."""

from __future__ import annotations

import datetime as dt
import zipfile
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataplat_dagster.ingest import detect
from dataplat_dagster.ingest import stream as ingest
from dataplat_dagster.ingest.detect import detect_dialect
from dataplat_dagster.ingest.dialect import ColumnGuess, CsvOverrides, Dialect
from dataplat_dagster.ingest.stream import IngestResult, ingest_csv
from dataplat_dagster.errors import InputError

CORPUS = Path(__file__).parent / "corpus"


@pytest.fixture
def small_sample(monkeypatch):
    """Detection sees only the first lines; ingest reads small blocks into small row groups."""
    monkeypatch.setattr(detect, "SAMPLE_BYTES", 200)
    monkeypatch.setattr(ingest, "BLOCK_SIZE", 1024)
    monkeypatch.setattr(ingest, "CHUNK_BYTES", 1024)
    monkeypatch.setattr(ingest, "ROW_GROUP_ROWS", 500)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def ingest_file(path: Path, tmp_path: Path, overrides: CsvOverrides | None = None) -> tuple[IngestResult, dict]:
    target = tmp_path / "out" / "table.parquet"
    result = ingest_csv(path, detect_dialect(path, overrides), target)
    return result, pq.read_table(target).to_pydict()


def plain_dialect(*columns: ColumnGuess) -> Dialect:
    return Dialect("utf-8", ",", '"', True, ".", None, False, columns)


def test_result_and_schema(tmp_path):
    result, values = ingest_file(CORPUS / "us_comma.csv", tmp_path)
    assert (result.rows, result.columns) == (4, 6)
    assert result.schema.field("amount").type == pa.float64()
    assert result.schema.field("id").type == pa.int64()
    assert result.schema.field("signup").type == pa.date32()
    assert result.schema.field("active").type == pa.bool_()
    assert result.schema.names == ["id", "customer", "amount", "zip", "signup", "active"]
    assert result.notes == ()


@pytest.mark.parametrize("overlap_min_cpus", [1, 10_000], ids=["write-on-thread", "write-inline"])
def test_many_batches_keep_every_row_in_order(tmp_path, small_sample, monkeypatch, overlap_min_cpus):
    monkeypatch.setattr(ingest, "OVERLAP_MIN_CPUS", overlap_min_cpus)
    amounts = [f"{i * 1000:,}".replace(",", ".") + ",5" for i in range(3000)]
    lines = "".join(f"{i};{amount};name {i};{i % 28 + 1:02d}/01/2024\n" for i, amount in enumerate(amounts))
    path = write(tmp_path, "eu.csv", ("id;amount;name;day\n" + lines).encode())
    result, values = ingest_file(path, tmp_path)
    assert result.rows == 3000
    assert pq.ParquetFile(tmp_path / "out" / "table.parquet").metadata.num_row_groups > 1
    assert values["amount"][1234] == 1234000.5
    assert values["id"][-1] == 2999
    assert values["day"][27] == dt.date(2024, 1, 28)


def test_decimal_column_is_decimal128(tmp_path):
    result, values = ingest_file(CORPUS / "big_ints.csv", tmp_path)
    assert result.schema.field("big").type == pa.decimal128(38, 0)
    assert values["big"][1] == Decimal("-99999999999999999999")


def test_text_after_the_sample_demotes_the_column(tmp_path, small_sample):
    path = write(tmp_path, "late.csv", b"id,qty\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(500)) + b"500,abc\n")
    result, values = ingest_file(path, tmp_path)
    assert result.schema.field("qty").type == pa.string()
    assert result.schema.field("id").type == pa.int64()
    assert values["qty"][-1] == "abc" and values["qty"][3] == "3"
    assert result.dialect.columns[1] == ColumnGuess("qty", "text")
    assert any("'qty'" in note and "'abc'" in note for note in result.notes)


def test_int64_overflow_after_the_sample_becomes_decimal(tmp_path, small_sample):
    path = write(tmp_path, "big.csv", b"n\n" + b"1\n" * 500 + b"123456789012345678901234567\n")
    result, values = ingest_file(path, tmp_path)
    assert result.schema.field("n").type == pa.decimal128(38, 0)
    assert values["n"][-1] == Decimal("123456789012345678901234567")


def test_overflow_beyond_38_digits_after_the_sample_becomes_text(tmp_path, small_sample):
    huge = b"1" * 45
    path = write(tmp_path, "huge.csv", b"n\n" + b"99999999999999999999\n" * 20 + b"1\n" * 500 + huge + b"\n")
    result, values = ingest_file(path, tmp_path)
    assert result.schema.field("n").type == pa.string()
    assert values["n"][-1] == huge.decode()


def test_leading_zeros_after_the_sample_keep_the_column_text(tmp_path, small_sample):
    path = write(tmp_path, "zip.csv", b"zip\n" + b"12345\n" * 500 + b"01234\n")
    result, values = ingest_file(path, tmp_path)
    assert result.schema.field("zip").type == pa.string()
    assert values["zip"][-1] == "01234"


def test_negative_leading_zeros_after_the_sample_keep_the_column_text(tmp_path, small_sample):
    path = write(tmp_path, "codes.csv", b"code\n" + b"-5\n0\n-0\n" * 200 + b"-007\n")
    result, values = ingest_file(path, tmp_path)
    assert result.schema.field("code").type == pa.string()
    assert values["code"][:3] == ["-5", "0", "-0"] and values["code"][-1] == "-007"


def test_quoted_newlines_after_the_sample(tmp_path, small_sample):
    multi_line = "".join(f'{i},"x{i}, and\nline {i}"\n' for i in range(500))
    path = write(tmp_path, "nl.csv", b"id,text\n" + b"1,plain\n" * 50 + multi_line.encode())
    result, values = ingest_file(path, tmp_path)
    assert result.dialect.newlines_in_values is True
    assert values["text"][-1] == "x499, and\nline 499"
    assert result.rows == 550


def test_utf8_sample_with_cp1252_later_falls_back(tmp_path, small_sample):
    path = write(tmp_path, "mixed.csv", b"name\n" + b"plain\n" * 500 + "Zoë\n".encode("cp1252"))
    result, values = ingest_file(path, tmp_path)
    assert result.dialect.encoding == "cp1252"
    assert values["name"][-1] == "Zoë"


def test_forced_encoding_that_fails_later_names_encoding_and_line(tmp_path, small_sample):
    path = write(tmp_path, "mixed.csv", b"name\n" + b"plain\n" * 500 + "Zoë\n".encode("cp1252"))
    with pytest.raises(InputError, match=r"not valid utf-8: byte 0xeb at offset 3007 \(line 502\).*--encoding"):
        ingest_file(path, tmp_path, CsvOverrides(encoding="utf-8"))


def test_wrong_field_count_names_the_line_and_suggests_sep(tmp_path):
    path = write(tmp_path, "ragged.csv", b'a,b,c\n1,2,3\n4,"x\ny",6\n7,8,9,10\n')
    with pytest.raises(InputError, match=r"line 5 has 4 fields but the header has 3.*--sep"):
        ingest_file(path, tmp_path)


def test_failure_leaves_the_existing_target_and_no_temporary_file(tmp_path):
    target = tmp_path / "out" / "table.parquet"
    target.parent.mkdir()
    target.write_bytes(b"previous")
    path = write(tmp_path, "ragged.csv", b"a,b\n1,2\n3,4,5\n")
    with pytest.raises(InputError):
        ingest_csv(path, detect_dialect(path), target)
    assert target.read_bytes() == b"previous"
    assert list(target.parent.iterdir()) == [target]


def test_success_replaces_the_target_twice(tmp_path):
    target = tmp_path / "table.parquet"
    for _ in range(2):
        ingest_csv(CORPUS / "tab.tsv", detect_dialect(CORPUS / "tab.tsv"), target)
        assert pq.read_table(target).num_rows == 3
    assert [p.name for p in tmp_path.iterdir()] == ["table.parquet"]


def test_header_only_file_gives_an_empty_table(tmp_path):
    dialect = plain_dialect(ColumnGuess("a", "integer"), ColumnGuess("b", "text"))
    target = tmp_path / "t.parquet"
    result = ingest_csv(write(tmp_path, "h.csv", b"a,b\n"), dialect, target)
    assert result.rows == 0
    assert pq.read_table(target).schema.names == ["a", "b"]


def test_columns_with_different_date_formats(tmp_path):
    rows = b"31/12/2024,12/31/2024,24.12.2024\n01/02/2024,01/13/2024,01.01.2025\n"
    path = write(tmp_path, "d.csv", b"eu,us,dotted\n" + rows)
    result, values = ingest_file(path, tmp_path)
    assert values["eu"] == [dt.date(2024, 12, 31), dt.date(2024, 2, 1)]
    assert values["us"] == [dt.date(2024, 12, 31), dt.date(2024, 1, 13)]
    assert values["dotted"] == [dt.date(2024, 12, 24), dt.date(2025, 1, 1)]


def test_date_that_does_not_parse_demotes_to_text(tmp_path):
    dialect = plain_dialect(ColumnGuess("d", "date", "%d/%m/%Y"))
    target = tmp_path / "t.parquet"
    result = ingest_csv(write(tmp_path, "d.csv", b"d\n31/12/2024\nsoon\n"), dialect, target)
    assert result.schema.field("d").type == pa.string()
    assert pq.read_table(target).column("d").to_pylist() == ["31/12/2024", "soon"]


def test_nulls_in_typed_and_text_columns(tmp_path):
    result, values = ingest_file(CORPUS / "nulls.csv", tmp_path)
    assert values["value"] == [10, None, None, None, None]
    assert values["label"][3] is None


def test_bom_is_not_in_the_first_column_name(tmp_path):
    result, values = ingest_file(write(tmp_path, "bom.csv", b"\xef\xbb\xbfid,name\n1,a\n"), tmp_path)
    assert result.schema.names == ["id", "name"]


def test_zip_member_is_streamed(tmp_path):
    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("folder/data.csv", (CORPUS / "eu_semicolon.csv").read_bytes())
    result, values = ingest_file(path, tmp_path)
    assert values["preis"] == [1234567.89, 12.5, -0.75]


def test_no_header_reads_the_first_row_as_data(tmp_path):
    result, values = ingest_file(CORPUS / "no_header.csv", tmp_path)
    assert result.rows == 3
    assert values["column_1"] == [1, 2, 3]


def test_chunks_parsed_in_parallel_match_a_serial_read(tmp_path, small_sample, monkeypatch):
    rows = "".join(f'{i};"Müller; {i}";{i % 7},25\n' for i in range(2000))
    path = write(tmp_path, "cp.csv", ("id;name;score\n" + rows).encode("cp1252"))
    dialect = detect.detect_dialect(path)
    assert ingest._splittable(dialect)
    parallel = ingest.ingest_csv(path, dialect, tmp_path / "parallel.parquet")
    monkeypatch.setattr(ingest, "SPLITTABLE_ENCODINGS", set())
    serial = ingest.ingest_csv(path, dialect, tmp_path / "serial.parquet")
    a, b = pq.read_table(tmp_path / "parallel.parquet"), pq.read_table(tmp_path / "serial.parquet")
    assert parallel.rows == serial.rows == 2000 and a.equals(b)
    assert a.column("name")[1999].as_py() == "Müller; 1999" and a.column("score")[6].as_py() == 6.25
