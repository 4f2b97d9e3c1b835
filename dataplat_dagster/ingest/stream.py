"""Stream a flat file into a Parquet file, with the column types its dialect names.

pyarrow's streaming CSV reader parses blocks on all cores; each batch is converted where
pyarrow cannot do it while parsing (thousands separators, leading-zero checks, big
integers, several date formats), batches are gathered into row groups, and each row group
is written on a second thread while the next blocks are parsed. Only a bounded number of
blocks is in memory at once, so memory stays flat however long the file is. An observer
(the profile, ``profile/accumulate.py``) may look at every batch on its way to the file:
it summarizes a batch on the thread that parsed it, and takes the summaries in file order.

Detection saw only a sample. When a later value does not fit its column's kind, the
column is demoted (integer to decimal to text, anything else to text) and the file is
read again from the start; a line break inside quotes after the sample and bytes that
are not in the detected encoding are handled the same way. The Parquet file is written
next to the target and moved into place only when everything has been read.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import itertools
import os
import re
import uuid
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from dataplat_dagster.ingest.dialect import (
    FALSE_SPELLINGS,
    ISO_ZONED_FORMAT,
    NULL_SPELLINGS,
    TRUE_SPELLINGS,
    ColumnGuess,
    Dialect,
)
from dataplat_dagster.ingest.sources import TableSource, open_binary, read_head, resolve_source
from dataplat_dagster.errors import InputError

# pyarrow reads about 32 blocks ahead of the batch being used: the block size bounds memory.
BLOCK_SIZE = 4 << 20
ROW_GROUP_ROWS = 1 << 20
ROW_GROUP_BYTES = 256 << 20
CONVERT_THREADS = min(8, os.cpu_count() or 1)
# Writing on its own thread pays off only with cores to spare beside the parser's; on two
# busy cores it made ingest about 30% slower (2M rows), so small machines write inline.
OVERLAP_MIN_CPUS = 4
COMPRESSION = "snappy"
# A column is dictionary-encoded when at most this share of the first batch's values
# differ; a first batch of fewer rows than the probe says nothing, and all are encoded.
DICTIONARY_MAX_DISTINCT_SHARE = 0.5
DICTIONARY_PROBE_ROWS = 10_000
# Chunks parsed in parallel when the file can be cut at line breaks (see _parsed_in_parallel).
CHUNK_BYTES = 16 << 20
PARSE_THREADS = max(1, os.cpu_count() or 1)
SPLITTABLE_ENCODINGS = {"utf-8", "utf-8-sig", "cp1252", "iso8859-1", "ascii", "iso8859-15"}
ISO_DATE_FORMAT = "%Y-%m-%d"
DECIMAL_TYPE = pa.decimal128(38, 0)
HEADER_PROBE_BYTES = 1 << 20
LOCATE_CHUNK_BYTES = 1 << 20

_CONVERSION_ERROR = re.compile(r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to [^:]+: (.*)", re.S)
_QUOTED_VALUE = re.compile(r"invalid value '(.*)'|Failed to parse string: '(.*)' as a scalar", re.S)
_ROW_COUNT_ERROR = re.compile(r"Expected \d+ columns, got \d+|out of sync with chunker")
_BIG_INTEGER = re.compile(r"^-?\d{1,38}$")
_FALLBACK_ENCODINGS = {"utf-8": "cp1252", "utf-8-sig": "cp1252", "cp1252": "latin-1"}


class BatchObserver(Protocol):
    """Looks at every batch written, in one pass (the profile's statistics)."""

    def summarize(self, batch: pa.RecordBatch, seed: tuple[int, ...]) -> Any:
        """What ``add`` needs of ``batch``, on any thread; ``seed`` is the batch's place."""

    def add(self, summary: Any) -> None:
        """Take one batch's summary, on the writing thread, in file order."""


# Called with the schema of each attempt at reading the file (a column demoted after the
# sample starts another): a fresh observer for it, or None.
Observe = Callable[[pa.Schema], BatchObserver | None]


@dataclass(frozen=True)
class IngestResult:
    rows: int
    columns: int
    schema: pa.Schema
    dialect: Dialect | None = None  # the dialect as finally read: columns demoted after the sample
    notes: tuple[str, ...] = ()  # what reading the whole file changed, in plain words
    observer: BatchObserver | None = None  # the one that saw every batch of the file written


def ingest_csv(path: str | Path, dialect: Dialect, target_parquet_path: str | Path, *,
               observe: Observe | None = None) -> IngestResult:
    """Read ``path`` with ``dialect`` and write it to ``target_parquet_path`` as Parquet;
    ``observe`` gives what looks at the batches on their way."""
    source = resolve_source(path)
    target = Path(target_parquet_path)
    current = dialect
    for _ in range(2 * len(dialect.columns) + 3):
        try:
            rows, schema, observer = _write_atomically(source, current, target, observe)
        except _Retry as retry:
            current = retry.dialect
            continue
        notes = current.notes[len(dialect.notes) :]
        return IngestResult(rows, len(schema), schema, current, notes, observer)
    raise InputError(f"{source.label}: the column types kept changing while reading; pass --encoding and --sep.")


class _Retry(Exception):
    """Read the file again, from the start, with ``dialect``."""

    def __init__(self, dialect: Dialect) -> None:
        super().__init__()
        self.dialect = dialect


class _BadValue(Exception):
    """A value a per-batch conversion refuses."""

    def __init__(self, value: str | None) -> None:
        super().__init__(value)
        self.value = value


class _ColumnFailed(Exception):
    def __init__(self, index: int, value: str | None) -> None:
        super().__init__(index, value)
        self.index = index
        self.value = value


def _write_atomically(source: TableSource, dialect: Dialect, target: Path,
                      observe: Observe | None) -> tuple[int, pa.Schema, BatchObserver | None]:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        rows, schema, observer = _stream_to_parquet(source, dialect, temporary, observe)
        os.replace(temporary, target)
    except (pa.ArrowInvalid, UnicodeDecodeError, _ColumnFailed) as error:
        raise _failure(error, source, dialect) from None
    finally:
        temporary.unlink(missing_ok=True)
    return rows, schema, observer


# --- Reading plan: what pyarrow parses each column as, and what each batch then needs --


@dataclass(frozen=True)
class _ColumnRead:
    read_type: pa.DataType
    out_type: pa.DataType
    convert: Callable[[pa.Array], pa.Array] | None = None


def _plan(dialect: Dialect) -> tuple[list[_ColumnRead], list[str] | None]:
    """How to read each column, and the timestamp parsers pyarrow should try."""
    formats = {c.date_format for c in dialect.columns if c.kind in ("date", "timestamp")}
    custom = formats - {None, ISO_DATE_FORMAT, ISO_ZONED_FORMAT}
    # pyarrow tries one parser list on every timestamp column; a single custom format
    # can go there, several must be parsed per column after reading.
    native_format = next(iter(custom)) if len(custom) == 1 else None
    parsers = [native_format, pa_csv.ISO8601] if native_format else None
    reads = [_column_read(column, dialect, native_format) for column in dialect.columns]
    return reads, parsers


def _column_read(column: ColumnGuess, dialect: Dialect, native_format: str | None) -> _ColumnRead:
    kind, fmt = column.kind, column.date_format
    if kind == "integer":
        # Read as text so that leading zeros after the sample are caught, not dropped: the
        # check and the cast cost about 3% of the CPU time of a read (measured, 2M rows).
        return _ColumnRead(pa.string(), pa.int64(), partial(_to_integer, thousands=dialect.thousands))
    if kind == "float" and dialect.thousands:
        return _ColumnRead(pa.string(), pa.float64(), partial(_to_float, dialect.thousands, dialect.decimal))
    if kind == "float":
        return _ColumnRead(pa.float64(), pa.float64())
    if kind == "decimal":
        return _ColumnRead(pa.string(), DECIMAL_TYPE, partial(_to_decimal, thousands=dialect.thousands))
    if kind == "boolean":
        return _ColumnRead(pa.bool_(), pa.bool_())
    if kind == "date":
        return _date_read(fmt, native_format)
    if kind == "timestamp":
        return _timestamp_read(fmt, native_format)
    return _ColumnRead(pa.string(), pa.string())


def _date_read(fmt: str | None, native_format: str | None) -> _ColumnRead:
    if fmt in (None, ISO_DATE_FORMAT):
        return _ColumnRead(pa.date32(), pa.date32())
    if fmt == native_format:
        return _ColumnRead(pa.timestamp("s"), pa.date32(), partial(pc.cast, target_type=pa.date32()))
    return _ColumnRead(pa.string(), pa.date32(), partial(_parse_date, fmt=fmt))


def _timestamp_read(fmt: str | None, native_format: str | None) -> _ColumnRead:
    out = pa.timestamp("us", "UTC") if fmt and "%z" in fmt else pa.timestamp("us")
    if fmt in (None, ISO_ZONED_FORMAT) or fmt == native_format:
        return _ColumnRead(out, out)
    return _ColumnRead(pa.string(), out, partial(_parse_timestamp, fmt=fmt, out=out))


def _to_integer(array: pa.Array, thousands: str | None) -> pa.Array:
    zero_first = pc.or_(pc.starts_with(array, "0"), pc.starts_with(array, "-0"))
    if pc.any(zero_first).as_py():
        candidates = pc.filter(array, zero_first)
        longer = pc.filter(candidates, pc.greater(pc.binary_length(pc.utf8_ltrim(candidates, "-")), 1))
        if len(longer):
            raise _BadValue(longer[0].as_py())
    return pc.cast(_strip(array, thousands), pa.int64())


def _to_float(thousands: str, decimal: str, array: pa.Array) -> pa.Array:
    array = _strip(array, thousands)
    if decimal == ",":
        array = pc.replace_substring(array, ",", ".")
    return pc.cast(array, pa.float64())


def _to_decimal(array: pa.Array, thousands: str | None) -> pa.Array:
    array = _strip(array, thousands)
    # The cast does not check precision: 39 digits would silently wrap around.
    too_long = pc.invert(pc.fill_null(pc.match_substring_regex(array, _BIG_INTEGER.pattern), True))
    if pc.any(too_long).as_py():
        raise _BadValue(pc.filter(array, too_long)[0].as_py())
    return pc.cast(array, DECIMAL_TYPE)


def _strip(array: pa.Array, thousands: str | None) -> pa.Array:
    return pc.replace_substring(array, thousands, "") if thousands else array


def _parse_date(array: pa.Array, fmt: str) -> pa.Array:
    return pc.cast(pc.strptime(array, format=fmt, unit="s"), pa.date32())


def _parse_timestamp(array: pa.Array, fmt: str, out: pa.DataType) -> pa.Array:
    return pc.cast(pc.strptime(array, format=fmt, unit="us"), out)


# --- Streaming --------------------------------------------------------------------------


def _stream_to_parquet(source: TableSource, dialect: Dialect, temporary: Path,
                       observe: Observe | None) -> tuple[int, pa.Schema, BatchObserver | None]:
    reads, parsers = _plan(dialect)
    schema = pa.schema([pa.field(c.name, r.out_type) for c, r in zip(dialect.columns, reads)])
    options = _reader_options(source, dialect, reads, parsers)
    observer = observe(schema) if observe else None
    with open_binary(source) as stream:
        if _splittable(dialect):
            rows = _write(_parsed_in_parallel(stream, options, reads, schema, observer), temporary, schema)
            return rows, schema, observer
        reader = pa_csv.open_csv(stream, **options)
        with ThreadPoolExecutor(max_workers=CONVERT_THREADS) as pool:
            batches = (_convert(batch, reads, schema, pool) for batch in reader)
            rows = _write(_observed(batches, observer) if observer else batches, temporary, schema)
    return rows, schema, observer


def _observed(batches: Iterator[pa.RecordBatch], observer: BatchObserver) -> Iterator[pa.RecordBatch]:
    for index, batch in enumerate(batches):
        observer.add(observer.summarize(batch, (index,)))
        yield batch


def _splittable(dialect: Dialect) -> bool:
    """Whether the file can be cut at any line break: no line breaks inside quoted values,
    and an encoding in which a newline byte is always a line break."""
    return not dialect.newlines_in_values and codecs.lookup(dialect.encoding).name in SPLITTABLE_ENCODINGS


def _parsed_in_parallel(stream, options: dict, reads: list[_ColumnRead], schema: pa.Schema,
                        observer: BatchObserver | None) -> Iterator[pa.RecordBatch]:
    """pyarrow's streaming reader parses one block at a time; cutting the file into chunks
    at line breaks and parsing them on every core (``read_csv`` drops the GIL) is about as
    fast as reading the whole file at once, with only a few chunks in memory. The observer
    summarizes each chunk's batches on the thread that parsed them."""
    whole = options["read_options"]
    # Each chunk is parsed on one thread; only the first one holds the header.
    first, later = _chunk_read_options(whole, whole.skip_rows), _chunk_read_options(whole, 0)
    with ThreadPoolExecutor(max_workers=PARSE_THREADS) as pool:
        pending = []
        for index, chunk in enumerate(_line_chunks(stream)):
            read_options = first if index == 0 else later
            pending.append(pool.submit(_parse_chunk, chunk, read_options, options, reads, schema, observer, index))
            if len(pending) > PARSE_THREADS:
                yield from _handed_on(pending.pop(0).result(), observer)
        for future in pending:
            yield from _handed_on(future.result(), observer)


def _handed_on(parsed: list[tuple[pa.RecordBatch, Any]], observer: BatchObserver | None) -> Iterator[pa.RecordBatch]:
    for batch, summary in parsed:
        if observer:
            observer.add(summary)
        yield batch


def _chunk_read_options(read_options: pa_csv.ReadOptions, skip_rows: int) -> pa_csv.ReadOptions:
    return pa_csv.ReadOptions(
        use_threads=False, block_size=CHUNK_BYTES + (1 << 20), skip_rows=skip_rows,
        column_names=read_options.column_names, encoding=read_options.encoding,
    )


def _parse_chunk(chunk: memoryview | bytes, read_options, options: dict, reads, schema, observer: BatchObserver | None,
                 index: int) -> list[tuple[pa.RecordBatch, Any]]:
    table = pa_csv.read_csv(
        pa.py_buffer(chunk), read_options=read_options,
        parse_options=options["parse_options"], convert_options=options["convert_options"],
    )
    batches = [_convert(batch, reads, schema, _INLINE) for batch in table.to_batches()]
    return [(batch, observer.summarize(batch, (index, k)) if observer else None) for k, batch in enumerate(batches)]


def _line_chunks(stream) -> Iterator[memoryview | bytes]:
    """The stream in pieces of about ``CHUNK_BYTES``, each ending at a line break. Each is
    read into a buffer of its own, after the previous piece's unfinished line: the file's
    bytes are copied once, not again to join and to cut them (two copies of the whole file
    on the reading thread, which the parsing threads wait for)."""
    carry = b""
    while True:
        block = bytearray(len(carry) + CHUNK_BYTES)
        block[: len(carry)] = carry
        end = len(carry) + _read_into(stream, memoryview(block)[len(carry) :])
        if end == len(carry):
            break
        cut = block.rfind(b"\n", 0, end) + 1
        carry = bytes(block[cut:end])
        if cut:
            yield memoryview(block)[:cut]
    if carry:
        yield carry


def _read_into(stream, buffer: memoryview) -> int:
    """Fill ``buffer`` from the stream, up to its end: how many bytes were read."""
    filled = 0
    while filled < len(buffer):
        count = stream.readinto(buffer[filled:])
        if not count:
            break
        filled += count
    return filled


class _InlineExecutor(Executor):
    """Runs each task at once: a chunk's columns are converted on the thread parsing it."""

    def submit(self, fn, /, *args, **kwargs):
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:  # handed to the caller through the future, as a pool would
            future.set_exception(error)
        return future


_INLINE = _InlineExecutor()


def _write(batches: Iterator[pa.RecordBatch], path: Path, schema: pa.Schema) -> int:
    """Write the batches to a Parquet file, opened once the first batch shows which
    columns are worth a dictionary."""
    first = next(batches, None)
    dictionary = _dictionary_columns(first)
    with pq.ParquetWriter(path, schema, compression=COMPRESSION, use_dictionary=dictionary) as writer:
        batches = itertools.chain([first], batches) if first is not None else iter(())
        if (os.cpu_count() or 1) >= OVERLAP_MIN_CPUS:
            return _write_overlapped(batches, writer)
        return _write_inline(batches, writer)


def _dictionary_columns(first: pa.RecordBatch | None) -> bool | list[str]:
    """The columns to dictionary-encode: those whose values repeat in the first batch.
    Where most values differ (ids, amounts), pyarrow builds a dictionary until it outgrows
    its page and then falls back to plain values: about an eighth of the write's time on
    the benchmark's file (10M rows), for a file of the same size."""
    if first is None or first.num_rows < DICTIONARY_PROBE_ROWS:
        return True
    limit = DICTIONARY_MAX_DISTINCT_SHARE * first.num_rows
    return [field.name for field, column in zip(first.schema, first.columns)
            if pc.count_distinct(column).as_py() <= limit]


def _write_overlapped(batches: Iterator[pa.RecordBatch], writer: pq.ParquetWriter) -> int:
    """Gather batches into row groups; write each on a second thread while parsing goes on."""
    rows = 0
    pending = None
    with ThreadPoolExecutor(max_workers=1) as pool:
        for group in _row_groups(batches):
            if pending:
                pending.result()
            pending = pool.submit(writer.write_table, group, row_group_size=group.num_rows)
            rows += group.num_rows
        if pending:
            pending.result()
    return rows


def _write_inline(batches: Iterator[pa.RecordBatch], writer: pq.ParquetWriter) -> int:
    rows = 0
    for group in _row_groups(batches):
        writer.write_table(group, row_group_size=group.num_rows)
        rows += group.num_rows
    return rows


def _row_groups(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.Table]:
    group: list[pa.RecordBatch] = []
    rows = size = 0
    for batch in batches:
        group.append(batch)
        rows, size = rows + batch.num_rows, size + batch.nbytes
        if rows >= ROW_GROUP_ROWS or size >= ROW_GROUP_BYTES:
            yield pa.Table.from_batches(group)
            group, rows, size = [], 0, 0
    if group:
        yield pa.Table.from_batches(group)


def _reader_options(source: TableSource, dialect: Dialect, reads: list[_ColumnRead], parsers) -> dict:
    names = [column.name for column in dialect.columns]
    return dict(
        read_options=pa_csv.ReadOptions(
            use_threads=True,
            block_size=BLOCK_SIZE,
            skip_rows=_header_lines(source, dialect),
            column_names=names,
            encoding=_arrow_encoding(dialect.encoding),
        ),
        parse_options=pa_csv.ParseOptions(
            delimiter=dialect.sep,
            quote_char=dialect.quotechar,
            double_quote=True,
            newlines_in_values=dialect.newlines_in_values,
        ),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: read.read_type for name, read in zip(names, reads)},
            null_values=list(NULL_SPELLINGS),
            true_values=list(TRUE_SPELLINGS),
            false_values=list(FALSE_SPELLINGS),
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            decimal_point=dialect.decimal,
            timestamp_parsers=parsers,
        ),
    )


def _arrow_encoding(encoding: str) -> str:
    # pyarrow reads UTF-8 natively and skips its BOM; other codecs go through Python.
    return "utf8" if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig") else encoding


def _header_lines(source: TableSource, dialect: Dialect) -> int:
    """Physical lines up to the end of the header: a quoted name may hold a line break."""
    if not dialect.has_header:
        return 0
    decoder = codecs.getincrementaldecoder(dialect.encoding)(errors="replace")
    text = decoder.decode(read_head(source, HEADER_PROBE_BYTES))
    reader = csv.reader(io.StringIO(text), delimiter=dialect.sep, quotechar=dialect.quotechar)
    next((record for record in reader if record), None)
    return max(reader.line_num, 1)


def _convert(batch: pa.RecordBatch, reads: list[_ColumnRead], schema: pa.Schema, pool: Executor) -> pa.RecordBatch:
    """Convert the columns that need it, in parallel: compute kernels drop the GIL."""
    futures = [pool.submit(read.convert, array) if read.convert else None for array, read in zip(batch.columns, reads)]
    arrays = []
    for index, (array, future) in enumerate(zip(batch.columns, futures)):
        try:
            arrays.append(future.result() if future else array)
        except _BadValue as error:
            raise _ColumnFailed(index, error.value) from None
        except pa.ArrowInvalid as error:
            raise _ColumnFailed(index, _quoted_value(str(error))) from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _quoted_value(message: str) -> str | None:
    match = _QUOTED_VALUE.search(message)
    return next((group for group in match.groups() if group is not None), None) if match else None


# --- What a failure means: read again differently, or tell the user -------------------


def _failure(error: Exception, source: TableSource, dialect: Dialect) -> Exception:
    if isinstance(error, _ColumnFailed):
        return _demote(dialect, error.index, error.value)
    if isinstance(error, UnicodeDecodeError) or "invalid UTF8" in str(error):
        return _encoding_failure(source, dialect)
    message = str(error)
    conversion = _CONVERSION_ERROR.search(message)
    if conversion:
        return _demote(dialect, int(conversion.group(1)), _quoted_value(conversion.group(2)))
    if _ROW_COUNT_ERROR.search(message):
        return _row_count_failure(source, dialect, message)
    return InputError(
        f"{source.label} cannot be read as {dialect.describe()}: {message}. "
        "Check the options (--sep, --decimal, --thousands, --encoding, --no-header)."
    )


def _demote(dialect: Dialect, index: int, value: str | None) -> Exception:
    column = dialect.columns[index]
    if column.kind == "text":
        return InputError(f"{column.name!r} cannot be read even as text (value {value!r}); check --encoding.")
    kind = "decimal" if column.kind == "integer" and _beyond_int64(value, dialect.thousands) else "text"
    note = f"column {column.name!r}: value {value!r} after the sample is not {column.kind}; stored as {kind}"
    columns = list(dialect.columns)
    columns[index] = ColumnGuess(column.name, kind)
    return _Retry(dataclasses.replace(dialect, columns=tuple(columns), notes=dialect.notes + (note,)))


def _beyond_int64(value: str | None, thousands: str | None) -> bool:
    digits = value.replace(thousands, "") if value and thousands else value
    return bool(digits and _BIG_INTEGER.fullmatch(digits) and not -(2**63) <= int(digits) < 2**63)


def _encoding_failure(source: TableSource, dialect: Dialect) -> Exception:
    fallback = _FALLBACK_ENCODINGS.get(codecs.lookup(dialect.encoding).name)
    if fallback and "encoding" not in dialect.overridden:
        note = f"bytes after the sample are not {dialect.encoding}; read the file as {fallback}"
        return _Retry(dataclasses.replace(dialect, encoding=fallback, notes=dialect.notes + (note,)))
    where = _locate_bad_byte(source, dialect.encoding)
    return InputError(
        f"{source.label} is not valid {dialect.encoding}: {where}. "
        "Pass another --encoding, e.g. utf-8, cp1252, latin-1 or utf-16."
    )


def _locate_bad_byte(source: TableSource, encoding: str) -> str:
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = lines = 0
    with open_binary(source) as stream:
        while chunk := bytes(stream.read(LOCATE_CHUNK_BYTES)):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                # error.start counts from the decoder's buffered bytes, which end this chunk.
                bad = offset + error.start - (len(error.object) - len(chunk))
                line = lines + chunk[: max(bad - offset, 0)].count(b"\n") + 1
                return f"byte {error.object[error.start]:#04x} at offset {bad} (line {line}) cannot be decoded"
            offset += len(chunk)
            lines += chunk.count(b"\n")
    return "a byte sequence cannot be decoded"


def _row_count_failure(source: TableSource, dialect: Dialect, message: str) -> Exception:
    if not dialect.newlines_in_values:
        note = "a quoted value after the sample holds a line break; read with line breaks in values"
        return _Retry(dataclasses.replace(dialect, newlines_in_values=True, notes=dialect.notes + (note,)))
    bad = _first_bad_row(source, dialect)
    expected = len(dialect.columns)
    what = "the header has" if dialect.has_header else "the first row has"
    if bad is None:
        return InputError(f"{source.label}: {message}. Check the separator (--sep) and quoting (--quotechar).")
    line, actual = bad
    return InputError(
        f"{source.label}: line {line} has {actual} fields but {what} {expected}. "
        f"If the separator {dialect.sep!r} is wrong, pass --sep (e.g. --sep ';'); otherwise fix that line."
    )


def _first_bad_row(source: TableSource, dialect: Dialect) -> tuple[int, int] | None:
    """(1-based physical line, field count) of the first record with the wrong field count."""
    expected = len(dialect.columns)
    with open_binary(source) as stream:
        text = io.TextIOWrapper(stream, encoding=dialect.encoding, errors="replace", newline="")
        reader = csv.reader(text, delimiter=dialect.sep, quotechar=dialect.quotechar)
        end_of_previous = 0
        for record in reader:
            if record and len(record) != expected:
                return end_of_previous + 1, len(record)
            end_of_previous = reader.line_num
    return None
