"""Dialect detection on real-looking files: each case checks the dialect and the typed values."""

from __future__ import annotations

import codecs
import datetime as dt
import gzip
import zipfile
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dataplat_dagster.ingest import sources
from dataplat_dagster.ingest.detect import detect_dialect
from dataplat_dagster.ingest.dialect import ColumnGuess, CsvOverrides, Dialect
from dataplat_dagster.ingest.stream import ingest_csv
from dataplat_dagster.errors import InputError

CORPUS = Path(__file__).parent / "corpus"


def corpus(name: str) -> Path:
    return CORPUS / name


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read_typed(path: Path, tmp_path: Path, overrides: CsvOverrides | None = None) -> tuple[Dialect, dict]:
    """Detect, ingest, and return the dialect with the Parquet columns as Python lists."""
    dialect = detect_dialect(path, overrides)
    target = tmp_path / "out.parquet"
    ingest_csv(path, dialect, target)
    return dialect, pq.read_table(target).to_pydict()


def kinds(dialect: Dialect) -> dict[str, str]:
    return {column.name: column.kind for column in dialect.columns}


# --- Separators and number styles -------------------------------------------------------


def test_us_comma_file_with_quoted_thousands(tmp_path):
    dialect, values = read_typed(corpus("us_comma.csv"), tmp_path)
    assert (dialect.sep, dialect.decimal, dialect.thousands, dialect.has_header) == (",", ".", ",", True)
    assert kinds(dialect) == {
        "id": "integer",
        "customer": "text",
        "amount": "float",
        "zip": "text",
        "signup": "date",
        "active": "boolean",
    }
    assert values["amount"] == [1234567.89, 12.5, 1234.56, 2000.0]
    assert values["zip"][0] == "00123"
    assert values["customer"][2] == "Smith, Carol"
    assert values["signup"][1] == dt.date(2024, 2, 29)
    assert values["active"] == [True, False, True, False]


def test_eu_semicolon_file_with_decimal_comma_and_dot_thousands(tmp_path):
    dialect, values = read_typed(corpus("eu_semicolon.csv"), tmp_path)
    assert (dialect.sep, dialect.decimal, dialect.thousands) == (";", ",", ".")
    assert dialect.describe() == "encoding utf-8, separator ';', decimal ',', thousands '.', header yes, 5 columns"
    assert kinds(dialect)["preis"] == "float"
    assert values["preis"] == [1234567.89, 12.5, -0.75]
    assert values["menge"] == [3, 1200, 7]
    assert values["datum"] == [dt.date(2024, 12, 31), dt.date(2024, 2, 1), dt.date(2023, 6, 15)]
    assert values["kommentar"] == ["frisch", "reif; süß", None]


def test_us_thousands_with_semicolon_separator(tmp_path):
    dialect, values = read_typed(corpus("us_thousands_only.csv"), tmp_path)
    assert (dialect.sep, dialect.decimal, dialect.thousands) == (";", ".", ",")
    assert values["population"] == [1234567, 987654]
    assert values["area"] == [12.5, 3.25]


def test_tab_separated(tmp_path):
    dialect, values = read_typed(corpus("tab.tsv"), tmp_path)
    assert dialect.sep == "\t"
    assert dialect.describe().startswith("encoding utf-8, separator tab,")
    assert values["score"] == [1.5, 2.25, -3.0]


def test_pipe_separated_with_comma_in_values(tmp_path):
    dialect, values = read_typed(corpus("pipe.txt"), tmp_path)
    assert dialect.sep == "|"
    assert values["label"][1] == "second, with comma"
    assert values["qty"] == [10, 20, 30]


def test_single_column_file(tmp_path):
    dialect, values = read_typed(corpus("single_column.csv"), tmp_path)
    assert [c.name for c in dialect.columns] == ["city"]
    assert values["city"] == ["Amsterdam", "Berlin", "Copenhagen"]
    assert any("single column" in note for note in dialect.notes)


def test_ambiguous_thousands_is_noted(tmp_path):
    path = write(tmp_path, "ambiguous.csv", b"name,weight\na,\"1,234\"\nb,\"2,500\"\n")
    dialect, values = read_typed(path, tmp_path)
    assert (dialect.decimal, dialect.thousands) == (".", ",")
    assert values["weight"] == [1234, 2500]
    assert any("could use either mark" in note for note in dialect.notes)


# --- Encodings ----------------------------------------------------------------------------


def test_utf8_bom_never_reaches_the_first_column_name(tmp_path):
    path = write(tmp_path, "bom.csv", codecs.BOM_UTF8 + "naam;prijs\nkaas;3,5\nbrood;2,25\n".encode())
    dialect, values = read_typed(path, tmp_path)
    assert dialect.encoding == "utf-8-sig"
    assert dialect.columns[0].name == "naam"
    assert values == {"naam": ["kaas", "brood"], "prijs": [3.5, 2.25]}


def test_utf16_excel_unicode_text(tmp_path):
    text = "Name\tAmount\tWhen\r\nZoë\t1.5\t2024-01-31\r\nŁukasz\t-2\t2024-02-01\r\n"
    path = write(tmp_path, "unicode.txt", text.encode("utf-16"))
    dialect, values = read_typed(path, tmp_path)
    assert (dialect.encoding, dialect.sep) == ("utf-16", "\t")
    assert values["Name"] == ["Zoë", "Łukasz"]
    assert values["Amount"] == [1.5, -2.0]
    assert values["When"][0] == dt.date(2024, 1, 31)


def test_windows_1252_file(tmp_path):
    path = write(tmp_path, "latin.csv", "name;city;price\nJosé;Zürich;€ 5\nNoël;Köln;3\n".encode("cp1252"))
    dialect, values = read_typed(path, tmp_path)
    assert dialect.encoding == "cp1252"
    assert values["name"] == ["José", "Noël"]
    assert values["price"] == ["€ 5", "3"]
    assert any("not UTF-8" in note for note in dialect.notes)


def test_forced_encoding_that_cannot_decode_names_the_offset(tmp_path):
    path = write(tmp_path, "latin.csv", "a,b\n1,é\n".encode("cp1252"))
    with pytest.raises(InputError, match=r"not valid utf-8: byte 0xe9 at offset 6 \(line 2\).*--encoding"):
        detect_dialect(path, CsvOverrides(encoding="utf-8"))


# --- Quoting and line endings -----------------------------------------------------------------


def test_crlf_with_quoted_separators_quotes_and_newlines(tmp_path):
    text = 'id,comment,amount\r\n1,"Hello, ""world""",1.5\r\n2,"two\r\nlines",2.5\r\n3,plain,3\r\n'
    dialect, values = read_typed(write(tmp_path, "quoted.csv", text.encode()), tmp_path)
    assert dialect.newlines_in_values is True
    assert values["comment"] == ['Hello, "world"', "two\r\nlines", "plain"]
    assert values["amount"] == [1.5, 2.5, 3.0]
    assert values["id"] == [1, 2, 3]


def test_header_name_with_a_line_break(tmp_path):
    text = '"first\nname",age\nann,31\nbob,42\n'
    dialect, values = read_typed(write(tmp_path, "h.csv", text.encode()), tmp_path)
    assert values == {"first\nname": ["ann", "bob"], "age": [31, 42]}
    assert dialect.newlines_in_values is True


# --- Values ------------------------------------------------------------------------------------


def test_dates_and_timestamps(tmp_path):
    dialect, values = read_typed(corpus("dates.csv"), tmp_path)
    guesses = {c.name: (c.kind, c.date_format) for c in dialect.columns}
    assert guesses["iso"] == ("date", "%Y-%m-%d")
    assert guesses["dayfirst"] == ("date", "%d/%m/%Y")
    assert guesses["dotted"] == ("date", "%d.%m.%Y")
    assert guesses["stamp"][0] == "timestamp"
    assert values["dayfirst"][0] == dt.date(2024, 12, 31)
    assert values["dotted"][1] == dt.date(2025, 1, 1)
    assert values["stamp"][1] == dt.datetime(2024, 2, 29, 23, 59, 59, 123456)
    assert values["zoned"][1] == dt.datetime(2024, 2, 29, 6, 0, tzinfo=dt.timezone.utc)


def test_ambiguous_dates_choose_day_first_with_a_note(tmp_path):
    dialect, values = read_typed(corpus("dates.csv"), tmp_path)
    assert values["ambiguous"][0] == dt.date(2024, 2, 1)
    assert any("'ambiguous'" in note and "day-first" in note and "--date-format" in note for note in dialect.notes)


def test_date_format_override_wins(tmp_path):
    dialect, values = read_typed(corpus("dates.csv"), tmp_path, CsvOverrides(date_format="%m/%d/%Y"))
    assert values["ambiguous"][0] == dt.date(2024, 1, 2)
    assert kinds(dialect)["dayfirst"] == "text"  # 31/12 is no month-first date
    assert "date_format" in dialect.overridden


def test_month_first_dates_when_a_day_exceeds_twelve(tmp_path):
    path = write(tmp_path, "us_dates.csv", b"when\n12/31/2024\n01/02/2024\n")
    dialect, values = read_typed(path, tmp_path)
    assert dialect.columns[0].date_format == "%m/%d/%Y"
    assert values["when"] == [dt.date(2024, 12, 31), dt.date(2024, 1, 2)]


def test_null_spellings_become_nulls(tmp_path):
    dialect, values = read_typed(corpus("nulls.csv"), tmp_path)
    assert kinds(dialect)["value"] == "integer"
    assert values["value"] == [10, None, None, None, None]
    assert values["label"] == ["a", None, None, None, "e"]


def test_big_integers_become_decimal_then_text(tmp_path):
    dialect, values = read_typed(corpus("big_ints.csv"), tmp_path)
    assert kinds(dialect) == {"small": "integer", "big": "decimal", "huge": "text"}
    assert values["big"][0] == Decimal("123456789012345678901234")
    assert values["big"][2] == Decimal("9223372036854775808")
    assert values["huge"][0] == "1234567890123456789012345678901234567890"


def test_mostly_numeric_column_with_text_is_text(tmp_path):
    dialect, values = read_typed(corpus("mostly_numeric.csv"), tmp_path)
    assert kinds(dialect)["measure"] == "text"
    assert values["measure"][2] == "n.d."
    assert values["measure"][0] == "10.5"


def test_booleans_are_only_spelled_out_true_and_false(tmp_path):
    path = write(tmp_path, "b.csv", b"a,b,c\ntrue,yes,1\nFALSE,no,0\nTrue,yes,1\n")
    dialect, values = read_typed(path, tmp_path)
    assert kinds(dialect) == {"a": "boolean", "b": "text", "c": "integer"}
    assert values["a"] == [True, False, True]


# --- Header and names --------------------------------------------------------------------------


def test_duplicate_and_empty_names_become_unique(tmp_path):
    dialect, values = read_typed(corpus("messy_names.csv"), tmp_path)
    assert [c.name for c in dialect.columns] == ["value", "value_2", "column_3", "Total", "value_3"]
    assert values["column_3"] == [3, 8]


def test_numeric_first_row_means_no_header(tmp_path):
    dialect, values = read_typed(corpus("no_header.csv"), tmp_path)
    assert dialect.has_header is False
    assert [c.name for c in dialect.columns] == ["column_1", "column_2", "column_3"]
    assert values["column_2"] == [2.5, 3.5, 4.5]


def test_no_header_override(tmp_path):
    dialect, values = read_typed(corpus("pipe.txt"), tmp_path, CsvOverrides(header=False))
    assert dialect.has_header is False
    assert values["column_1"][0] == "code"
    assert kinds(dialect)["column_3"] == "text"
    assert dialect.overridden == ("header",)


def test_separator_override_wins(tmp_path):
    dialect = detect_dialect(corpus("pipe.txt"), CsvOverrides(sep="tab"))
    assert dialect.sep == "\t"
    assert len(dialect.columns) == 1
    assert dialect.overridden == ("sep",)


def test_decimal_and_thousands_overrides_win(tmp_path):
    path = write(tmp_path, "n.csv", b"x;y\n1.234;a\n5.678;b\n")
    dialect, values = read_typed(path, tmp_path, CsvOverrides(decimal=",", thousands="."))
    assert values["x"] == [1234, 5678]
    dialect, values = read_typed(path, tmp_path, CsvOverrides(decimal=".", thousands=""))
    assert (dialect.thousands, values["x"]) == (None, [1.234, 5.678])


def test_bad_override_values_are_refused():
    with pytest.raises(InputError, match="--decimal"):
        CsvOverrides(decimal=";")
    with pytest.raises(InputError, match="--encoding"):
        CsvOverrides(encoding="no-such-codec")
    with pytest.raises(InputError, match="--sep"):
        CsvOverrides(sep=";;")


# --- Dialect object ----------------------------------------------------------------------------


def test_dialect_round_trips_through_json():
    dialect = detect_dialect(corpus("dates.csv"))
    assert Dialect.from_json(dialect.to_json()) == dialect
    assert isinstance(dialect.to_json()["columns"][0], dict)
    assert dialect.columns[0] == ColumnGuess("iso", "date", "%Y-%m-%d")


def test_detection_reads_a_bounded_sample(tmp_path, monkeypatch):
    monkeypatch.setattr("dataplat_dagster.ingest.detect.SAMPLE_BYTES", 64)
    path = write(tmp_path, "long.csv", b'id,text\n1,"a\nb"\n' + b"2,xyz\n" * 50 + b"oops,broken\n")
    dialect = detect_dialect(path)
    assert kinds(dialect) == {"id": "integer", "text": "text"}
    assert dialect.newlines_in_values is True


# --- Containers and refusals -------------------------------------------------------------------


def test_gzip_file(tmp_path):
    path = write(tmp_path, "data.csv.gz", gzip.compress(corpus("eu_semicolon.csv").read_bytes()))
    dialect, values = read_typed(path, tmp_path)
    assert dialect.sep == ";"
    assert values["preis"][0] == 1234567.89


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_zip_with_one_table_ignores_directories_and_mac_metadata(tmp_path):
    path = make_zip(
        tmp_path / "data.zip",
        {
            "export/": b"",
            "__MACOSX/export/._data.csv": b"\x00\x05\x16\x07",
            "export/.hidden.csv": b"x\n1\n",
            "export/data.csv": corpus("tab.tsv").read_bytes(),
            "export/readme.md": b"hello",
        },
    )
    dialect, values = read_typed(path, tmp_path)
    assert dialect.sep == "\t"
    assert values["name"] == ["ada", "bob", "cyd"]


def test_zip_with_several_or_no_tables_names_the_members(tmp_path):
    several = make_zip(tmp_path / "two.zip", {"a.csv": b"x\n1\n", "b.csv": b"y\n2\n"})
    with pytest.raises(InputError, match=r"2 table files \(a\.csv, b\.csv\).*exactly one"):
        detect_dialect(several)
    none = make_zip(tmp_path / "none.zip", {"notes.md": b"hi", "img.png": b"\x89PNG"})
    with pytest.raises(InputError, match=r"holds no table file.*notes\.md, img\.png"):
        detect_dialect(none)


def test_zip_with_unsafe_member_path_is_refused(tmp_path):
    path = make_zip(tmp_path / "evil.zip", {"../../etc/data.csv": b"x\n1\n"})
    with pytest.raises(InputError, match="unsafe path"):
        detect_dialect(path)
    path = make_zip(tmp_path / "abs.zip", {"ok.csv": b"x\n1\n"})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(zipfile.ZipInfo("/abs/data.txt"), b"x\n1\n")
    with pytest.raises(InputError, match="unsafe path"):
        detect_dialect(path)


def test_zip_bomb_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_UNCHECKED_BYTES", 1 << 20)
    monkeypatch.setenv(sources.EXPANSION_RATIO_ENV, "100")
    path = make_zip(tmp_path / "bomb.zip", {"bomb.csv": b"a\n" + b"0\n" * (4 << 20)})
    with pytest.raises(InputError, match=r"member bomb\.csv: .* at most 100:1, so this looks like a compression bomb"):
        detect_dialect(path)


def test_excel_workbook_is_not_a_text_table(tmp_path):
    path = make_zip(tmp_path / "book.csv", {"[Content_Types].xml": b"<x/>", "xl/workbook.xml": b"<x/>"})
    with pytest.raises(InputError, match="does not look like a text table: it is an Excel workbook"):
        detect_dialect(path)


@pytest.mark.parametrize(
    "data, kind",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b"id,name\n1,\x00\x01\x02\x03\n", "NUL"),
    ],
)
def test_binary_files_are_refused(tmp_path, data, kind):
    with pytest.raises(InputError, match=f"does not look like a text table.*{kind}"):
        detect_dialect(write(tmp_path, "file.csv", data))


@pytest.mark.parametrize("data", [b"", b"  \r\n\n\t", codecs.BOM_UTF8 + b"\n", codecs.BOM_UTF16_LE])
def test_empty_files_are_refused(tmp_path, data):
    with pytest.raises(InputError, match="is empty"):
        detect_dialect(write(tmp_path, "empty.csv", data))


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        detect_dialect(tmp_path / "nope.csv")
