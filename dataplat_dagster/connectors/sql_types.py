"""The Arrow type of each column a query returns, as the database declares it.

Reads through SQLAlchemy fetch rows of Python values in batches; typing a column from its
first batch would make a column that is NULL there ``null`` and fail on the first later
value. So the types come from the database: MySQL/MariaDB's cursor description (the
protocol's field types, with a decimal's size), SQLite's declared column types (by its
affinity rules), and only where the database declares nothing (an expression in SQLite,
another dialect) from the first batch's values, text if they are all NULL.

PostgreSQL's ``numeric`` read through ADBC arrives as text: its declared precision and
scale make it a decimal; an unconstrained ``numeric`` is sized from the values themselves
(one aggregate pass before the read, in the same transaction), so it stays exact.
"""

from __future__ import annotations

import uuid
from typing import Optional

from dataplat_dagster.errors import ConnectorError

# The note on an Arrow field whose values lost precision on the way in.
LOST_PRECISION_KEY = b"dataplat:lost_precision"

DECIMAL128_DIGITS, DECIMAL256_DIGITS = 38, 76


# -- MySQL / MariaDB ------------------------------------------------------------------------


def mysql_types(description) -> list:
    """Arrow types from a MySQL-protocol cursor description (PyMySQL, mysqlclient); None
    where the field type says "text or bytes" and only the values tell which."""
    import pyarrow as pa
    from pymysql.constants import FIELD_TYPE as F

    integers = {F.TINY, F.SHORT, F.LONG, F.INT24, F.LONGLONG, F.YEAR}
    by_code = {
        F.FLOAT: pa.float64(), F.DOUBLE: pa.float64(),
        F.DATE: pa.date32(), F.NEWDATE: pa.date32(),
        F.DATETIME: pa.timestamp("us"), F.TIMESTAMP: pa.timestamp("us"),
        F.TIME: pa.duration("us"),  # the driver returns a timedelta: MySQL's TIME spans -838 to 838 hours
        F.JSON: pa.string(), F.ENUM: pa.string(), F.SET: pa.string(),
        F.BIT: pa.binary(), F.GEOMETRY: pa.binary(),
        F.NULL: pa.null(),
    }
    types = []
    for _name, code, _display, length, _internal, scale, _nullable in description:
        if code in integers:
            types.append(pa.int64())
        elif code in (F.DECIMAL, F.NEWDECIMAL):
            # The display length counts the digits, the point and a sign: wide enough.
            types.append(decimal_type((length or DECIMAL128_DIGITS) - (1 if scale else 0), scale or 0))
        else:
            types.append(by_code.get(code))
    return types


# -- SQLite ---------------------------------------------------------------------------------


def sqlite_declared_types(connection, query: str) -> list[str] | None:
    """The declared type of each of the query's columns ('' for an expression), read from
    a temporary view over it; None if the query cannot be a view. Call it before the query
    runs on ``connection``."""
    view = f"dataplat_columns_{uuid.uuid4().hex[:12]}"
    try:
        connection.exec_driver_sql(f'CREATE TEMP VIEW "{view}" AS {query}')
    except Exception:  # the query itself reports what is wrong with it when it runs
        return None
    try:
        return [row[2] for row in connection.exec_driver_sql(f'PRAGMA temp.table_info("{view}")')]
    finally:
        connection.exec_driver_sql(f'DROP VIEW temp."{view}"')


def sqlite_type(declared: str):
    """The Arrow type of a SQLite column from its declared type, by SQLite's affinity
    rules (https://www.sqlite.org/datatype3.html#determination_of_column_affinity); None
    for no declared type (an expression), whose values can be anything."""
    import pyarrow as pa

    name = declared.upper()
    if "INT" in name:
        return pa.int64()
    if any(word in name for word in ("CHAR", "CLOB", "TEXT")):
        return pa.string()
    if "BLOB" in name:
        return pa.binary()
    if not name:
        return None
    if any(word in name for word in ("REAL", "FLOA", "DOUB")):
        return pa.float64()
    # NUMERIC affinity. SQLite stores dates and times as the text they were given, and
    # NUMERIC/DECIMAL values as integers or 8-byte floats.
    if "BOOL" in name:
        return pa.bool_()
    if "DATE" in name or "TIME" in name:
        return pa.string()
    return pa.float64()


# -- a schema for rows of Python values -------------------------------------------------------


def rows_schema(names: list[str], declared: list, first_rows: list):
    """The schema of a read: each column's declared type, else the type of its values in
    the first rows, else text (a column the database does not type, all NULL so far)."""
    import pyarrow as pa

    fields = []
    for index, (name, kind) in enumerate(zip(names, declared)):
        if kind is None:
            kind = pa.array([row[index] for row in first_rows]).type
            if pa.types.is_null(kind):
                kind = pa.string()
        fields.append(pa.field(name, kind))
    return pa.schema(fields)


def rows_to_batch(rows: list, schema):
    """Rows of Python values as a record batch in ``schema``. A value of another Python
    type than its column's (SQLite's 0/1 for a boolean, an integer in a REAL column) is
    cast safely; one that does not fit fails with the column's name."""
    import pyarrow as pa

    columns = list(zip(*rows)) if rows else [() for _ in schema]
    arrays = []
    for values, field in zip(columns, schema):
        try:
            try:
                arrays.append(pa.array(values, type=field.type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
                arrays.append(pa.array(values).cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, OverflowError) as error:
            raise ConnectorError(
                f"column {field.name!r} holds a value that is not {field.type}, the column's type ({error}): "
                "cast the column to one type in the datasource's query"
            ) from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# -- PostgreSQL numeric through ADBC -----------------------------------------------------------


def decimal_type(precision: int, scale: int):
    """The narrowest Arrow decimal with ``precision`` digits, ``scale`` of them after the
    point; None beyond decimal256's 76 digits."""
    import pyarrow as pa

    precision = max(precision, scale, 1)
    if precision <= DECIMAL128_DIGITS:
        return pa.decimal128(precision, scale)
    if precision <= DECIMAL256_DIGITS:
        return pa.decimal256(precision, scale)
    return None


def is_pg_numeric(field) -> bool:
    """A PostgreSQL ``numeric`` column as ADBC hands it over: opaque text."""
    import pyarrow as pa

    return isinstance(field.type, pa.BaseExtensionType) and getattr(field.type, "type_name", "") == "numeric"


def pg_numeric_precision(field) -> Optional[tuple[int, int]]:
    """``numeric(p, s)``'s precision and scale, from the type modifier ADBC keeps in the
    field's metadata; None for an unconstrained ``numeric``."""
    typmod = int((field.metadata or {}).get(b"POSTGRESQL:typmod", b"-1"))
    if typmod < 4:
        return None
    typmod -= 4  # VARHDRSZ
    return (typmod >> 16) & 0xFFFF, typmod & 0xFFFF


def pg_numeric_sizes_query(query: str, width: int, positions: list[int]) -> str:
    """One pass over the rows of ``query`` (``width`` columns): for each column at one of
    ``positions``, an unconstrained numeric, the largest scale, the most digits before the
    point, and whether any value is NaN or infinite (a numeric without a scale), which no
    decimal holds. The columns are renamed by position, so that duplicate or odd names in
    the query do not matter."""
    aliases = ", ".join(f"c{index}" for index in range(width))
    parts = []
    for index in positions:
        c = f"c{index}"
        parts += [
            f"max(scale({c}))",
            f"max(length(trunc(abs({c}))::text)) FILTER (WHERE scale({c}) IS NOT NULL)",
            f"coalesce(bool_or({c} IS NOT NULL AND scale({c}) IS NULL), false)",
        ]
    return f"SELECT {', '.join(parts)} FROM ({query}) AS dataplat_numeric_sizes({aliases})"


def pg_numeric_field(name: str, max_scale, max_integer_digits, non_finite: bool):
    """The Arrow field for an unconstrained numeric column whose values have at most
    ``max_scale`` digits after the point and ``max_integer_digits`` before it: a decimal of
    the full decimal128 (or decimal256) width, so that the schema stays the same from one
    read to the next as long as the scale does; float64, with a note, where no decimal fits."""
    import pyarrow as pa

    scale = int(max_scale or 0)
    digits = int(max_integer_digits or 0) + scale
    if non_finite:
        why = "it holds NaN or Infinity, which no decimal can hold"
    elif digits > DECIMAL256_DIGITS:
        why = f"its values need {digits} digits, more than the {DECIMAL256_DIGITS} of the widest Arrow decimal"
    else:
        width = DECIMAL128_DIGITS if digits <= DECIMAL128_DIGITS else DECIMAL256_DIGITS
        return pa.field(name, decimal_type(width, scale))
    note = f"PostgreSQL numeric read as float64 (about 15 significant digits): {why}"
    return pa.field(name, pa.float64(), metadata={LOST_PRECISION_KEY: note.encode()})


def lost_precision(schema) -> dict[str, str]:
    """The columns of ``schema`` whose values lost precision when read, with the reason."""
    return {field.name: field.metadata[LOST_PRECISION_KEY].decode() for field in schema if field.metadata and LOST_PRECISION_KEY in field.metadata}
