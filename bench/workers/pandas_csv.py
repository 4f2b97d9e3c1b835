"""Baseline (d) of bench/ingest.py: pandas, with the dialect given by hand.

    python pandas_csv.py us|eu FILE.csv OUT.parquet

``pandas.read_csv`` (the default C engine) with ``sep``, ``decimal``, ``thousands``,
``parse_dates`` and ``date_format`` spelled out, then ``DataFrame.to_parquet`` (pyarrow,
snappy, no index).
"""

import sys

import pandas as pd

OPTIONS = {
    "us": dict(sep=",", decimal=".", thousands=None, date_format="%Y-%m-%d"),
    "eu": dict(sep=";", decimal=",", thousands=".", date_format="%d/%m/%Y"),
}

if __name__ == "__main__":
    dialect, source, target = sys.argv[1:4]
    frame = pd.read_csv(source, engine="c", parse_dates=["order_date"], **OPTIONS[dialect])
    frame.to_parquet(target, engine="pyarrow", compression="snappy", index=False)
