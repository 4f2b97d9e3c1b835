"""Detect how a flat file is written, from a bounded sample at its start.

The steps, in order: encoding, sample text, separator (the candidate that splits the
sample lines into the most consistent field counts), number style (decimal mark and
thousands separator), header, then the kind of each column. What the user overrides is
taken as given; what detection cannot decide is chosen by default and said in a note.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from dataplat_dagster.ingest.dialect import (
    FALSE_SPELLINGS,
    ISO_ZONED_FORMAT,
    NULL_SPELLINGS,
    TRUE_SPELLINGS,
    ColumnGuess,
    CsvOverrides,
    Dialect,
)
from dataplat_dagster.ingest.sources import TableSource, read_head, resolve_source, utf16_codec
from dataplat_dagster.errors import InputError

SAMPLE_BYTES = 1 << 20
# Ties go to the earliest; ',' comes last because it is the one most often inside values.
SEPARATOR_CANDIDATES = ("\t", ";", "|", ",")
SEPARATOR_SAMPLE_RECORDS = 500
_NULLS = frozenset(NULL_SPELLINGS)


def detect_dialect(path: str | Path, overrides: CsvOverrides | None = None) -> Dialect:
    """Detect the dialect of the table at ``path``; every field set in ``overrides`` wins."""
    overrides = overrides or CsvOverrides()
    source = resolve_source(path)
    notes: list[str] = []
    raw = read_head(source, SAMPLE_BYTES)
    complete = len(raw) < SAMPLE_BYTES
    encoding = overrides.encoding or _detect_encoding(raw, complete, notes)
    quotechar = overrides.quotechar or '"'
    text = _cut_at_record_end(_decode_sample(source, raw, encoding, complete), quotechar, complete)
    sep = overrides.sep or _detect_separator(text, quotechar, notes)
    records = _read_records(text, sep, quotechar)
    if not records:
        raise InputError(f"{source.label} holds no rows; pass a file with a header and data.")
    width = len(records[0])
    rows = [record for record in records if len(record) == width]
    style = _number_style(_distinct_cells(rows), sep, overrides, notes)
    header = _detect_header(rows, style, overrides, notes)
    names = _column_names(rows[0] if header else None, width)
    columns = _guess_columns(names, rows[1:] if header else rows, style, overrides, notes)
    return Dialect(
        encoding=encoding,
        sep=sep,
        quotechar=quotechar,
        has_header=header,
        decimal=style.decimal,
        thousands=style.thousands,
        newlines_in_values=any("\n" in cell or "\r" in cell for row in records for cell in row),
        columns=columns,
        notes=tuple(notes),
        overridden=overrides.given(),
    )


def _detect_encoding(raw: bytes, complete: bool, notes: list[str]) -> str:
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    codec = utf16_codec(raw)
    if codec:
        return codec
    try:
        codecs.getincrementaldecoder("utf-8")().decode(raw, final=complete)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        raw.decode("cp1252")
        encoding = "cp1252"
    except UnicodeDecodeError:
        encoding = "latin-1"
    notes.append(f"the file is not UTF-8; read it as {encoding} (pass --encoding if accents look wrong)")
    return encoding


def _decode_sample(source: TableSource, raw: bytes, encoding: str, complete: bool) -> str:
    try:
        text = codecs.getincrementaldecoder(encoding)().decode(raw, final=complete)
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise InputError(
            f"{source.label} is not valid {encoding}: byte {raw[error.start]:#04x} at offset {error.start} "
            f"(line {line}) cannot be decoded. Pass another --encoding, e.g. cp1252, latin-1 or utf-16."
        ) from None
    return text.lstrip("\ufeff")


def _cut_at_record_end(text: str, quotechar: str, complete: bool) -> str:
    """Drop the partial record a bounded sample ends with: cut at a newline outside quotes."""
    if complete:
        return text
    end = len(text)
    while True:
        cut = text.rfind("\n", 0, end)
        if cut < 0:
            return text
        if text.count(quotechar, 0, cut) % 2 == 0:
            return text[: cut + 1]
        end = cut


def _detect_separator(text: str, quotechar: str, notes: list[str]) -> str:
    scores = {sep: _consistency(text, sep, quotechar) for sep in SEPARATOR_CANDIDATES}
    best = max(SEPARATOR_CANDIDATES, key=lambda sep: scores[sep])
    if scores[best] > 0:
        return best
    notes.append("found no separator; read the file as a single column (pass --sep if that is wrong)")
    return ","


def _consistency(text: str, sep: str, quotechar: str) -> float:
    """Share of sample records that have the most common field count, 0 if that count is 1."""
    reader = csv.reader(io.StringIO(text), delimiter=sep, quotechar=quotechar)
    counts = Counter(len(record) for record in itertools.islice(reader, SEPARATOR_SAMPLE_RECORDS) if record)
    if not counts:
        return 0.0
    width, hits = counts.most_common(1)[0]
    return 0.0 if width < 2 else hits / sum(counts.values())


def _read_records(text: str, sep: str, quotechar: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text), delimiter=sep, quotechar=quotechar)
    return [record for record in reader if record]


def _distinct_cells(rows: list[list[str]]) -> set[str]:
    return {cell for row in rows for cell in row} - _NULLS


def _column_values(rows: list[list[str]], index: int) -> set[str]:
    return {row[index] for row in rows} - _NULLS


def _detect_header(rows: list[list[str]], style: NumberStyle, overrides: CsvOverrides, notes: list[str]) -> bool:
    """A header is a first row whose cells do not fit the kinds of the columns below them."""
    if overrides.header is not None:
        return overrides.header
    if len(rows) < 2:
        notes.append("only one row; took it as the header (pass --no-header if it is data)")
        return True
    typed = False
    for index, first in enumerate(rows[0]):
        guess = _infer_kind(_column_values(rows[1:], index), style, overrides.date_format)
        if guess.kind == "text":
            continue
        typed = True
        if first not in _NULLS and not _fits(first, guess, style):
            return True
    if not typed:
        notes.append("all columns hold text; took the first row as the header (pass --no-header if it is data)")
        return True
    return False


def _column_names(header: list[str] | None, width: int) -> list[str]:
    """Unique, non-empty names: empty ones are named by position, repeats get _2, _3..."""
    raw = [cell.strip().lstrip("\ufeff") for cell in header] if header else [""] * width
    names = [name or f"column_{position}" for position, name in enumerate(raw, start=1)]
    seen = set()
    unique = []
    for name in names:
        candidate, suffix = name, 2
        while candidate in seen:
            candidate, suffix = f"{name}_{suffix}", suffix + 1
        seen.add(candidate)
        unique.append(candidate)
    return unique


def _guess_columns(
    names: list[str], rows: list[list[str]], style: NumberStyle, overrides: CsvOverrides, notes: list[str]
) -> tuple[ColumnGuess, ...]:
    columns = []
    for index, name in enumerate(names):
        guess = _infer_kind(_column_values(rows, index), style, overrides.date_format)
        if guess.note:
            notes.append(f"column {name!r}: {guess.note}")
        columns.append(ColumnGuess(name, guess.kind, guess.date_format))
    return tuple(columns)


# --- Number style: which mark is the decimal, which one groups thousands ---------------

INT64_MAX = 2**63 - 1
DECIMAL_MAX_DIGITS = 38

# Alternatives are tried in order; the name of the first that matches a whole cell is its vote.
_EVIDENCE = re.compile(
    "|".join(
        f"(?P<{name}>{pattern})"
        for name, pattern in (
            ("dot", r"0\.\d+(?:[eE][+-]?\d+)?"),
            ("comma", r"0,\d+(?:[eE][+-]?\d+)?"),
            ("us", r"\d{1,3}(?:,\d{3})+\.\d+|\d{1,3}(?:,\d{3}){2,}"),
            ("eu", r"\d{1,3}(?:\.\d{3})+,\d+|\d{1,3}(?:\.\d{3}){2,}"),
            ("comma_or_thousands", r"\d{1,3},\d{3}"),
            ("dot_or_thousands", r"\d{1,3}\.\d{3}"),
            ("comma_", r"\d*,\d+(?:[eE][+-]?\d+)?"),
            ("dot_", r"\d*\.\d+(?:[eE][+-]?\d+)?"),
            ("space_dot", r"\d{1,3}(?: \d{3})+\.\d+"),
            ("space_comma", r"\d{1,3}(?: \d{3})+,\d+"),
            ("space", r"\d{1,3}(?: \d{3})+"),
            ("apostrophe", r"\d{1,3}(?:'\d{3})+(?:\.\d+)?"),
        )
    )
)
_DECIMAL_VOTES = {".": ("dot", "dot_", "us", "space_dot", "apostrophe"), ",": ("comma", "comma_", "eu", "space_comma")}
_THOUSANDS_VOTES = {
    ".": {",": ("us", "comma_or_thousands"), " ": ("space", "space_dot"), "'": ("apostrophe",)},
    ",": {".": ("eu", "dot_or_thousands"), " ": ("space", "space_comma")},
}


@dataclass(frozen=True)
class NumberStyle:
    decimal: str
    thousands: str | None


def _number_style(cells: set[str], sep: str, overrides: CsvOverrides, notes: list[str]) -> NumberStyle:
    votes = Counter(filter(None, map(_number_evidence, cells)))
    decimal = overrides.decimal or _choose_decimal(votes, sep, overrides.thousands, notes)
    if overrides.thousands is not None:
        return NumberStyle(decimal, overrides.thousands or None)
    return NumberStyle(decimal, _choose_thousands(votes, decimal, notes))


def _number_evidence(cell: str) -> str | None:
    start = 1 if cell[:1] == "-" else 0
    if cell[start:].isdigit():  # every alternative has a mark between digits: saves most regex calls
        return None
    match = _EVIDENCE.fullmatch(cell, start)
    return match.lastgroup if match else None


def _choose_decimal(votes: Counter, sep: str, thousands: str | None, notes: list[str]) -> str:
    if thousands in (".", ","):
        return "," if thousands == "." else "."
    dot = sum(votes[tag] for tag in _DECIMAL_VOTES["."])
    comma = sum(votes[tag] for tag in _DECIMAL_VOTES[","])
    if dot and comma:
        decimal = "," if comma > dot else "."
        notes.append(f"numbers use both '.' and ',' as decimal mark; chose {decimal!r} (pass --decimal to override)")
        return decimal
    if dot or comma:
        return "." if dot else ","
    if votes["comma_or_thousands"] or votes["dot_or_thousands"]:
        # With nothing else to go on, a ';' separator is the strongest hint of a European file.
        decimal = "," if sep == ";" else "."
        notes.append(
            f"numbers like '1.234' or '1,234' could use either mark as decimal; chose {decimal!r} "
            "(pass --decimal and --thousands to override)"
        )
        return decimal
    return "."


def _choose_thousands(votes: Counter, decimal: str, notes: list[str]) -> str | None:
    counts = {mark: sum(votes[tag] for tag in tags) for mark, tags in _THOUSANDS_VOTES[decimal].items()}
    seen = {mark: count for mark, count in counts.items() if count}
    if not seen:
        # Nothing to decide: numbers without separators read the same either way.
        return None
    thousands = max(seen, key=seen.get)
    if len(seen) > 1:
        notes.append(f"several thousands separators seen; chose {thousands!r} (pass --thousands to override)")
    return thousands


@lru_cache(maxsize=None)
def _number_patterns(style: NumberStyle) -> tuple[re.Pattern, re.Pattern]:
    """Patterns of an integer and of a float written in ``style``, as pyarrow can read them."""
    digits = r"\d+"
    if style.thousands:
        digits = rf"(?:\d+|\d{{1,3}}(?:{re.escape(style.thousands)}\d{{3}})+)"
    integer = re.compile(rf"-?{digits}")
    mark = re.escape(style.decimal)
    number = re.compile(rf"[+-]?(?:{digits}(?:{mark}\d*)?|{mark}\d+)(?:[eE][+-]?\d+)?")
    return integer, number


# --- Column kinds ---------------------------------------------------------------------

BOOLEANS = frozenset(TRUE_SPELLINGS + FALSE_SPELLINGS)
MONTH_FIRST = {"%d/%m/%Y": "%m/%d/%Y", "%d-%m-%Y": "%m-%d-%Y"}
DATE_FORMATS = ("%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d")
TIME_SUFFIXES = (" %H:%M:%S", " %H:%M")
STRPTIME_CHECKS = 5000  # distinct values parsed per format; the regex checks all of them

_LEADING_ZERO = re.compile(r"-?0\d")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?")
_ISO_ZONED = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})")
_DIRECTIVES = {"%Y": r"\d{4}", "%m": r"\d{1,2}", "%d": r"\d{1,2}", "%H": r"\d{1,2}", "%M": r"\d{2}", "%S": r"\d{2}"}


@dataclass(frozen=True)
class KindGuess:
    kind: str
    date_format: str | None = None
    note: str | None = None


def _infer_kind(values: set[str], style: NumberStyle, date_format: str | None) -> KindGuess:
    """The narrowest kind every value fits; text when none does."""
    if not values:
        return KindGuess("text", note="no values in the sample; stored as text")
    if values <= BOOLEANS:
        return KindGuess("boolean")
    return _numeric_kind(values, style) or _temporal_kind(values, date_format) or KindGuess("text")


def _fits(value: str, guess: KindGuess, style: NumberStyle) -> bool:
    numeric = ("integer", "decimal", "float")
    kind = _infer_kind({value}, style, guess.date_format).kind
    if kind in numeric and guess.kind in numeric:
        return True
    return kind == guess.kind or {kind, guess.kind} == {"date", "timestamp"}


def _numeric_kind(values: set[str], style: NumberStyle) -> KindGuess | None:
    integer, number = _number_patterns(style)
    if any(_LEADING_ZERO.match(value) for value in values):
        return None  # identifiers such as zip codes: the zeros matter
    if all(integer.fullmatch(value) for value in values):
        return _integer_kind(values, style)
    if all(number.fullmatch(value) for value in values):
        return KindGuess("float")
    return None


def _integer_kind(values: set[str], style: NumberStyle) -> KindGuess:
    numbers = [int(value.replace(style.thousands, "")) if style.thousands else int(value) for value in values]
    if all(-INT64_MAX - 1 <= number <= INT64_MAX for number in numbers):
        return KindGuess("integer")
    if max(len(str(abs(number))) for number in numbers) <= DECIMAL_MAX_DIGITS:
        return KindGuess("decimal")
    return KindGuess("text", note=f"integers longer than {DECIMAL_MAX_DIGITS} digits; stored as text")


def _temporal_kind(values: set[str], date_format: str | None) -> KindGuess | None:
    if all(_ISO_DATE.fullmatch(value) for value in values) and _all_iso_dates(values):
        return KindGuess("date", "%Y-%m-%d")
    if all(_ISO_TIMESTAMP.fullmatch(value) for value in values) and _all_iso(values):
        return KindGuess("timestamp")
    if all(_ISO_ZONED.fullmatch(value) for value in values) and _all_iso(values):
        return KindGuess("timestamp", ISO_ZONED_FORMAT)
    candidates = (date_format,) if date_format else DATE_FORMATS + _with_times(DATE_FORMATS)
    matching = [fmt for fmt in candidates if _all_match(values, fmt)]
    if not matching:
        return None
    fmt = matching[0]
    kind = "timestamp" if "%H" in fmt else "date"
    if date_format is None and _also_month_first(values, fmt):
        note = "dates could be day- or month-first, chose day-first; pass --date-format to override"
        return KindGuess(kind, fmt, note)
    return KindGuess(kind, fmt)


def _with_times(formats: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(fmt + suffix for fmt in formats for suffix in TIME_SUFFIXES)


def _also_month_first(values: set[str], fmt: str) -> bool:
    day_first = fmt.split(" ")[0]
    month_first = MONTH_FIRST.get(day_first)
    return month_first is not None and _all_match(values, fmt.replace(day_first, month_first))


def _all_match(values: set[str], fmt: str) -> bool:
    pattern = _format_pattern(fmt)
    return all(pattern.fullmatch(value) for value in values) and _all_parse(values, fmt)


@lru_cache(maxsize=None)
def _format_pattern(fmt: str) -> re.Pattern:
    pieces = re.split(r"(%.)", fmt)
    parts = (_DIRECTIVES.get(piece, ".+?") if piece.startswith("%") else re.escape(piece) for piece in pieces)
    return re.compile("".join(parts))


def _all_parse(values: set[str], fmt: str) -> bool:
    try:
        for value in itertools.islice(values, STRPTIME_CHECKS):
            datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def _all_iso_dates(values: set[str]) -> bool:
    """``_all_parse(values, "%Y-%m-%d")`` for values of the form dddd-dd-dd, 40 times faster."""
    try:
        for value in itertools.islice(values, STRPTIME_CHECKS):
            date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _all_iso(values: set[str]) -> bool:
    try:
        for value in itertools.islice(values, STRPTIME_CHECKS):
            datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
