"""Synthetic test data shared by the benchmarks: 8 typed columns, written fast.

Rows are generated in chunks with numpy and formatted with pyarrow compute kernels, so
10 million rows take seconds, not minutes. Each chunk has its own seed: the same row
count always yields the same bytes. Files go to ``bench/data/`` (git-ignored) under
names that hold the row count, the dialect and ``VERSION``; a file that is already there
is reused. Files are written under a temporary name and renamed when complete, so a
file that exists is whole.

The columns: ``order_id`` (int, sequential), ``quantity`` (small int), ``unit_price``
(float, under 1000), ``amount`` (float, log-normal up to about 10^8: in the EU dialect
every value of 1000 or more has ``.`` thousands separators, ``1.234.567,89``),
``customer`` (text, 100,000 distinct), ``city`` (text, 40 distinct, some non-ASCII),
``order_date`` (date) and ``shipped`` (boolean, ``true``/``false``).

Dialects: ``us`` is ``,`` separated with ``.`` decimals and ISO dates (``2024-12-31``);
``eu`` is ``;`` separated with ``,`` decimals, ``.`` thousands and day-first dates
(``31/12/2024``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

DATA_DIR = Path(__file__).resolve().parent / "data"
VERSION = 1
CHUNK_ROWS = 1_000_000
DIALECTS = ("us", "eu")
SEPARATORS = {"us": ",", "eu": ";"}
DATE_FORMATS = {"us": "%Y-%m-%d", "eu": "%d/%m/%Y"}
CITIES = [
    "Berlin", "Paris", "Madrid", "Roma", "Lisboa", "Wien", "Zürich", "Kraków", "Praha", "Dublin",
    "Amsterdam", "Bruxelles", "København", "Stockholm", "Oslo", "Helsinki", "Athína", "Budapest",
    "București", "Sofia", "Warszawa", "Łódź", "Göteborg", "Málaga", "Sevilla", "Lyon", "Marseille",
    "München", "Köln", "Hamburg", "New York", "Chicago", "Boston", "Seattle", "Austin", "Denver",
    "Montréal", "Toronto", "São Paulo", "Ciudad de México",
]
CUSTOMERS = 100_000
FIRST_DATE = np.datetime64("2015-01-01", "D")
DAYS = 3650
MAX_AMOUNT_CENTS = 99_999_999_999  # below 10^9 units: three thousands groups at most


def csv_path(rows: int, dialect: str) -> Path:
    return DATA_DIR / f"{dialect}_{rows}_v{VERSION}.csv"


def parquet_path(rows: int) -> Path:
    return DATA_DIR / f"typed_{rows}_v{VERSION}.parquet"


def ensure_csv(rows: int, dialect: str) -> Path:
    """The CSV of ``rows`` rows in ``dialect``, generated unless already there."""
    path = csv_path(rows, dialect)
    if not path.exists():
        _write_atomically(path, lambda tmp: _write_csv(tmp, rows, dialect), f"{rows:,}-row {dialect} CSV")
    return path


def ensure_parquet(rows: int) -> Path:
    """The same data, typed, as one Parquet file (snappy, one row group per chunk)."""
    path = parquet_path(rows)
    if not path.exists():
        _write_atomically(path, lambda tmp: _write_parquet(tmp, rows), f"{rows:,}-row Parquet")
    return path


def warm_page_cache(path: Path) -> None:
    """Read the file once, so that every contender reads it from memory."""
    with open(path, "rb") as stream:
        while stream.read(64 << 20):
            pass


def _write_atomically(path: Path, write, what: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    started = time.perf_counter()
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    size = path.stat().st_size / 2**20
    print(f"  generated {what}: {path.name}, {size:,.0f} MiB in {time.perf_counter() - started:.1f} s")


# --- Rows -------------------------------------------------------------------------------


def typed_chunks(rows: int) -> Iterator[pa.Table]:
    """The rows as typed Arrow tables of at most ``CHUNK_ROWS`` rows."""
    customers = pc.binary_join_element_wise("customer_", _padded(np.arange(CUSTOMERS), 6), "")
    cities = pa.array(CITIES)
    for index, start in enumerate(range(0, rows, CHUNK_ROWS)):
        yield _typed_chunk(np.random.default_rng(index), start, min(CHUNK_ROWS, rows - start), customers, cities)


def _typed_chunk(rng: np.random.Generator, start: int, n: int, customers: pa.Array, cities: pa.Array) -> pa.Table:
    amount_cents = np.minimum(np.exp(rng.normal(9.0, 3.0, n)).astype(np.int64), MAX_AMOUNT_CENTS)
    days = rng.integers(0, DAYS, n)
    return pa.table(
        {
            "order_id": pa.array(np.arange(start + 1, start + n + 1, dtype=np.int64)),
            "quantity": pa.array(rng.integers(1, 500, n)),
            "unit_price": pa.array(rng.integers(1, 100_000, n) / 100),
            "amount": pa.array(amount_cents / 100),
            "customer": customers.take(pa.array(rng.integers(0, CUSTOMERS, n))),
            "city": cities.take(pa.array(rng.integers(0, len(CITIES), n))),
            "order_date": pa.array(FIRST_DATE + days.astype("timedelta64[D]")),
            "shipped": pa.array(rng.random(n) < 0.7),
        }
    )


# --- Writing ----------------------------------------------------------------------------


def _write_csv(path: Path, rows: int, dialect: str) -> None:
    options = pa_csv.WriteOptions(delimiter=SEPARATORS[dialect], quoting_style="none")
    writer = None
    try:
        for chunk in typed_chunks(rows):
            table = _eu_text(chunk) if dialect == "eu" else chunk
            if writer is None:
                writer = pa_csv.CSVWriter(path, table.schema, write_options=options)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def _write_parquet(path: Path, rows: int) -> None:
    writer = None
    try:
        for chunk in typed_chunks(rows):
            if writer is None:
                writer = pq.ParquetWriter(path, chunk.schema, compression="snappy")
            writer.write_table(chunk)
    finally:
        if writer is not None:
            writer.close()


def _eu_text(table: pa.Table) -> pa.Table:
    """Floats with ``,`` decimals (and ``.`` thousands on ``amount``), dates day first."""
    columns = {
        "unit_price": _eu_number(table["unit_price"], thousands=False),
        "amount": _eu_number(table["amount"], thousands=True),
        "order_date": _day_first(table["order_date"]),
    }
    for name, column in columns.items():
        table = table.set_column(table.schema.get_field_index(name), name, column)
    return table


def _day_first(column: pa.ChunkedArray) -> pa.Array:
    """31/12/2024: each distinct day is formatted once (strftime per row is slow)."""
    days = pc.cast(column, pa.int32()).to_numpy() - FIRST_DATE.astype(np.int64)
    calendar = pa.array(FIRST_DATE + np.arange(DAYS).astype("timedelta64[D]"))
    return pc.strftime(calendar, format=DATE_FORMATS["eu"]).take(pa.array(days))


def _eu_number(column: pa.ChunkedArray, thousands: bool) -> pa.Array:
    cents = np.rint(column.to_numpy() * 100).astype(np.int64)
    units, fraction = cents // 100, cents % 100
    whole = _grouped(units) if thousands else _text(units)
    return pc.binary_join_element_wise(whole, _padded(fraction, 2), ",")


def _grouped(units: np.ndarray) -> pa.Array:
    """Integers with ``.`` between groups of three digits: 1.234.567."""
    millions, thousands, ones = units // 1_000_000, units // 1000 % 1000, units % 1000
    from_millions = pc.binary_join_element_wise(_text(millions), _padded(thousands, 3), _padded(ones, 3), ".")
    from_thousands = pc.binary_join_element_wise(_text(thousands), _padded(ones, 3), ".")
    return pc.if_else(
        pa.array(units >= 1_000_000), from_millions, pc.if_else(pa.array(units >= 1000), from_thousands, _text(ones))
    )


def _text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def _padded(values: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(_text(values), width=width, padding="0")
