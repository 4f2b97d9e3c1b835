"""Baseline (c) of bench/ingest.py: pyarrow alone, with the dialect given by hand.

    python arrow_csv.py us|eu FILE.csv OUT.parquet

``pyarrow.csv.read_csv`` reads the whole file into memory with the column types, the
separator, the decimal point and the date format spelled out; the EU ``amount`` column,
which has ``.`` thousands separators pyarrow cannot parse, is read as text and converted
with two compute kernels. ``pyarrow.parquet.write_table`` then writes it (snappy).
"""

import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

TYPES = {
    "order_id": pa.int64(),
    "quantity": pa.int64(),
    "unit_price": pa.float64(),
    "amount": pa.float64(),
    "customer": pa.string(),
    "city": pa.string(),
    "order_date": pa.date32(),
    "shipped": pa.bool_(),
}


def read(dialect: str, path: str) -> pa.Table:
    if dialect == "us":
        return pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(column_types=TYPES))
    types = dict(TYPES, amount=pa.string(), order_date=pa.timestamp("s"))
    table = pa_csv.read_csv(
        path,
        parse_options=pa_csv.ParseOptions(delimiter=";"),
        convert_options=pa_csv.ConvertOptions(
            column_types=types, decimal_point=",", timestamp_parsers=["%d/%m/%Y"]
        ),
    )
    amount = pc.replace_substring(pc.replace_substring(table["amount"], ".", ""), ",", ".")
    table = table.set_column(3, "amount", pc.cast(amount, pa.float64()))
    return table.set_column(6, "order_date", pc.cast(table["order_date"], pa.date32()))


if __name__ == "__main__":
    dialect, source, target = sys.argv[1:4]
    pq.write_table(read(dialect, source), target, compression="snappy")
