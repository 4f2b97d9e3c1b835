"""The profile computed in one pass while a table is written (``ProfileAccumulator``) is the
profile ``profile_parquet`` computes with DuckDB over the written file: the SQL passes are
the oracle, on tables of every kind the accumulator takes, streamed in small batches so
that every merge is exercised, and through the CSV reader's parallel chunks."""

from __future__ import annotations

import datetime as dt
import decimal
import fractions
import math
import random
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataplat_dagster.datasets.materialize import write_parquet
from dataplat_dagster.ingest import detect, stream
from dataplat_dagster.ingest.detect import detect_dialect
from dataplat_dagster.profile import accumulate, hashes, hll, rows
from dataplat_dagster.profile import columns as column_states
from dataplat_dagster.profile import stats as profile_module
from dataplat_dagster.profile.accumulate import ProfileAccumulator
from dataplat_dagster.profile.stats import profile_parquet

# Sums of floating-point numbers are added in another order: these may differ in the last digits.
SUMMED = {"mean", "std"}


def accumulated(path: Path, batch_rows: int = 7) -> dict:
    """The one-pass profile of a Parquet file, fed in batches of ``batch_rows`` rows."""
    parquet = pq.ParquetFile(path)
    accumulator = ProfileAccumulator.for_schema(parquet.schema_arrow)
    assert accumulator is not None
    for index, batch in enumerate(parquet.iter_batches(batch_size=batch_rows)):
        accumulator.add(accumulator.summarize(batch, (index,)))
    return accumulator.finish(path)


def assert_same_profile(new, old, where: str = "profile", tolerance: float = 1e-9) -> None:
    """Equal, except sums of floats (means, deviations, correlations): to ``tolerance``."""
    if isinstance(old, dict):
        assert isinstance(new, dict) and new.keys() == old.keys(), f"{where}: {sorted(new)} != {sorted(old)}"
        for key in old:
            assert_same_profile(new[key], old[key], f"{where}.{key}", tolerance)
    elif isinstance(old, list):
        assert isinstance(new, list) and len(new) == len(old), f"{where}: {new!r} != {old!r}"
        for k, (a, b) in enumerate(zip(new, old)):
            assert_same_profile(a, b, f"{where}[{k}]", tolerance)
    elif isinstance(old, float) and _summed(where):
        close = math.isclose(new, old, rel_tol=tolerance, abs_tol=1e-12)
        assert isinstance(new, float) and close, f"{where}: {new} != {old}"
    else:
        assert type(new) is type(old) and new == old, f"{where}: {new!r} != {old!r}"


def _summed(where: str) -> bool:
    return where.rsplit(".", 1)[-1] in SUMMED or ".correlations.pearson.matrix" in where


def write(tmp_path: Path, columns: dict, name: str = "data.parquet") -> Path:
    path = tmp_path / name
    pq.write_table(pa.table(columns), path)
    return path


def varied(rows: int, seed: int = 0) -> dict:
    """Every kind of column, with missing values, repeats, extremes and awkward text."""
    rng = random.Random(seed)
    def sometimes_none(values, share=0.1):
        return [None if rng.random() < share else v for v in values]
    words = ["red", "green", "blue", "", "naïve", "Zürich", "e\u0301", "👨‍👩‍👧", "a,b", 'say "hi"']
    specials = [0.0, -0.0, float("nan"), float("inf"), float("-inf"), 1e300, -1e-300]
    return {
        "id": pa.array(range(rows), pa.int64()),
        "n": pa.array(sometimes_none([rng.randint(-50, 50) for _ in range(rows)]), pa.int64()),
        "small": pa.array([rng.randint(-3, 3) for _ in range(rows)], pa.int8()),
        "unsigned": pa.array([rng.randint(0, 2**32 - 1) for _ in range(rows)], pa.uint32()),
        "x": pa.array(sometimes_none([rng.gauss(5, 2) for _ in range(rows)]), pa.float64()),
        "odd": pa.array([rng.choice(specials) if rng.random() < 0.2 else rng.random() for _ in range(rows)],
                        pa.float64()),
        "single": pa.array(sometimes_none([rng.uniform(-1, 1) for _ in range(rows)]), pa.float32()),
        "big": pa.array(sometimes_none([decimal.Decimal(rng.randint(-10**30, 10**30)) for _ in range(rows)]),
                        pa.decimal128(38, 0)),
        "cents": pa.array([decimal.Decimal(rng.randint(0, 10**6)) / 100 for _ in range(rows)], pa.decimal128(12, 2)),
        "word": pa.array(sometimes_none([rng.choice(words) for _ in range(rows)]), pa.string()),
        "code": pa.array([f"c{rng.randint(0, rows // 2)}" for _ in range(rows)], pa.large_string()),
        "flag": pa.array(sometimes_none([rng.random() < 0.3 for _ in range(rows)]), pa.bool_()),
        "day": pa.array(sometimes_none([dt.date(2020, 1, 1) + dt.timedelta(days=rng.randint(-400, 400))
                                        for _ in range(rows)]), pa.date32()),
        "at": pa.array([dt.datetime(2024, 1, 1) + dt.timedelta(microseconds=rng.randint(0, 10**12))
                        for _ in range(rows)], pa.timestamp("us")),
        "zoned": pa.array(sometimes_none([dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
                                          + dt.timedelta(seconds=rng.randint(0, 10**6)) for _ in range(rows)]),
                          pa.timestamp("us", tz="Europe/Paris")),
        "empty": pa.array([None] * rows, pa.float64()),
        "constant": pa.array([7] * rows, pa.int32()),
    }


@pytest.mark.parametrize("rows", [0, 1, 2, 57, 3000])
def test_varied_tables_profile_as_duckdb_does(tmp_path, rows):
    path = write(tmp_path, varied(rows))
    assert_same_profile(accumulated(path), profile_parquet(path))


@pytest.mark.parametrize("batch_rows", [1, 64, 100_000])
def test_batch_sizes_do_not_change_the_profile(tmp_path, batch_rows):
    path = write(tmp_path, varied(500, seed=3))
    assert_same_profile(accumulated(path, batch_rows), profile_parquet(path))


def test_one_column_and_the_widest_table(tmp_path):
    one = write(tmp_path, {"v": [3, 1, 2, 2, None]}, "one.parquet")
    assert_same_profile(accumulated(one), profile_parquet(one))
    rng = np.random.default_rng(1)
    wide = {f"c{k}": rng.integers(0, 5, 200) if k % 2 else rng.random(200) for k in range(32)}
    path = write(tmp_path, wide, "wide.parquet")
    assert_same_profile(accumulated(path), profile_parquet(path))


def test_duplicates_with_and_without_a_growing_key(tmp_path):
    rng = random.Random(5)
    values = [rng.randint(0, 3) for _ in range(400)]
    tables = {
        # No key: rows repeat, and are hashed.
        "no_key": {"a": values, "b": [v % 2 for v in values]},
        # A growing id: no duplicates, nothing hashed.
        "key": {"id": list(range(400)), "a": values},
        # Each batch grows, but the id starts again halfway: the file is counted instead.
        "restarting": {"id": list(range(200)) * 2, "a": [0] * 400},
        # Grows, but with a missing value: not a key.
        "gap": {"id": [None] + list(range(1, 400)), "a": [0] * 400},
    }
    duplicates = {}
    for name, columns in tables.items():
        path = write(tmp_path, columns, f"{name}.parquet")
        expected = profile_parquet(path)
        assert_same_profile(accumulated(path, batch_rows=50), expected, name)
        duplicates[name] = expected["summary"]["duplicate_rows"]
    assert duplicates == {"no_key": 396, "key": 0, "restarting": 200, "gap": 0}


def test_pairs_with_missing_values_on_different_rows(tmp_path):
    rng = random.Random(9)
    n = 300
    base = [rng.gauss(0, 1) for _ in range(n)]
    columns = {
        "a": [None if k % 7 == 0 else v for k, v in enumerate(base)],
        "b": [None if k % 5 == 0 else 2 * v + rng.gauss(0, 0.1) for k, v in enumerate(base)],
        # Constant on the rows it shares with c, varying elsewhere: no coefficient with c.
        "c": [1.5 if k % 2 else None for k in range(n)],
        "d": [1.5 if k % 2 else rng.random() for k in range(n)],
        # A NaN makes every coefficient of its column NaN, as in DuckDB.
        "f": [float("nan") if k == 100 else rng.random() for k in range(n)],
    }
    path = write(tmp_path, columns)
    expected = profile_parquet(path)
    assert_same_profile(accumulated(path, batch_rows=40), expected)
    pearson = expected["correlations"]["pearson"]
    assert pearson["matrix"][pearson["columns"].index("a")][pearson["columns"].index("b")] > 0.99


def test_large_values_with_a_small_spread_keep_their_digits(tmp_path):
    # Means near 1e9 differ by offsets from a value of the column, not by their roundings:
    # the deviations are those of exact arithmetic (DuckDB's own are off in the 8th digit).
    rng = random.Random(6)
    x = [1e9 + rng.random() for _ in range(300)]
    y = [v + rng.random() for v in x]
    path = write(tmp_path, {"x": x, "y": y})
    profile = accumulated(path, batch_rows=40)
    exact_x, exact_y = [fractions.Fraction(v) for v in x], [fractions.Fraction(v) for v in y]
    mean_x, mean_y = sum(exact_x) / 300, sum(exact_y) / 300
    squares_x = sum((v - mean_x) ** 2 for v in exact_x)
    squares_y = sum((v - mean_y) ** 2 for v in exact_y)
    co = sum((a - mean_x) * (b - mean_y) for a, b in zip(exact_x, exact_y))
    assert profile["columns"][0]["std"] == pytest.approx(math.sqrt(squares_x / 299), rel=1e-12)
    assert profile["columns"][0]["mean"] == pytest.approx(float(mean_x), rel=1e-15)
    pearson = profile["correlations"]["pearson"]["matrix"][0][1]
    assert pearson == pytest.approx(float(co) / math.sqrt(float(squares_x * squares_y)), rel=1e-9)
    assert_same_profile(profile, profile_parquet(path), tolerance=1e-6)


def test_text_with_many_values_is_counted_exactly(tmp_path, monkeypatch):
    rng = random.Random(2)
    values = [f"v{rng.randint(0, 3000)}" for _ in range(6000)]
    path = write(tmp_path, {"t": values, "u": [f"u{k}" for k in range(6000)]})
    expected = profile_parquet(path)
    assert_same_profile(accumulated(path, batch_rows=500), expected)
    # Counts that outgrow their memory are given up: the file is counted instead.
    monkeypatch.setattr(column_states, "TEXT_COUNT_MAX_VALUES", 100)
    assert_same_profile(accumulated(path, batch_rows=500), expected)


def test_categories_for_cramers_v(tmp_path):
    rng = random.Random(4)
    city = [rng.choice(["Paris", "Lyon", "Nice", None]) for _ in range(500)]
    region = {"Paris": "IDF", "Lyon": "ARA", "Nice": "PACA", None: None}
    path = write(tmp_path, {"city": city, "region": [region[c] for c in city],
                            "ok": [rng.random() < 0.5 for _ in range(500)], "n": list(range(500))})
    expected = profile_parquet(path)
    assert expected["correlations"]["cramers_v"]["columns"] == ["city", "region", "ok"]
    assert_same_profile(accumulated(path, batch_rows=33), expected)


def test_approximate_distinct_counts_are_duckdbs_estimates(tmp_path, monkeypatch):
    # Past the exact limit both count with DuckDB's HyperLogLog: the same estimates.
    monkeypatch.setattr(profile_module, "EXACT_DISTINCT_MAX_ROWS", 1000)
    table = varied(4000, seed=7)
    table["many"] = pa.array([f"m{k % 2500}" for k in range(4000)])
    path = write(tmp_path, table)
    expected = profile_parquet(path)
    assert all(c["distinct_is_approximate"] for c in expected["columns"])
    assert_same_profile(accumulated(path, batch_rows=300), expected)


def test_quantiles_past_the_sample_are_close_to_the_true_ones(tmp_path, monkeypatch):
    # Beyond QUANTILE_SAMPLE values both sample at random: compare with the exact ranks.
    monkeypatch.setattr(profile_module, "QUANTILE_SAMPLE", 2000)
    values = np.random.default_rng(3).permutation(100_000)
    path = write(tmp_path, {"v": values})
    quantiles = accumulated(path, batch_rows=7000)["columns"][0]["quantiles"]
    for label, fraction in profile_module.QUANTILES.items():
        assert abs(quantiles[label] - fraction * 100_000) < 0.03 * 100_000, label
    # The sample is drawn from the batches' places in the file: the same file, the same sample.
    assert accumulated(path, batch_rows=7000)["columns"][0]["quantiles"] == quantiles


def test_csv_import_profiles_while_parsing_as_duckdb_does_after(tmp_path, monkeypatch):
    # Small chunks: parsed (and summarized) on several threads, handed on in file order;
    # detection sees only the first lines.
    monkeypatch.setattr(stream, "CHUNK_BYTES", 2048)
    monkeypatch.setattr(detect, "SAMPLE_BYTES", 4096)
    rng = random.Random(8)
    lines = ["id;amount;city;day;ok;note"]
    for k in range(3000):
        amount = f"{rng.randint(0, 10**6):,}".replace(",", ".") + f",{rng.randint(0, 99):02d}"
        day = f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/20{rng.randint(10, 24)}"
        note = rng.choice(["", "late", "ok", "Zürich"])
        lines.append(f"{k};{amount};{rng.choice(['Köln', 'Wien', ''])};{day};{rng.choice(['true', 'false'])};{note}")
    # A value after the sample that is not a number: the column is read again as text.
    fields = lines[2500].split(";")
    lines[2500] = ";".join([fields[0], "lots", *fields[2:]])
    source = tmp_path / "eu.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    target = tmp_path / "out.parquet"
    result = stream.ingest_csv(source, detect_dialect(source), target, observe=ProfileAccumulator.for_schema)
    assert result.notes and result.schema.field("amount").type == pa.string()
    assert_same_profile(result.observer.finish(target), profile_parquet(target))


def test_batches_written_by_a_datasource_are_profiled_on_their_way(tmp_path):
    table = pa.table(varied(800, seed=11))
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=90))
    accumulator = ProfileAccumulator.for_schema(table.schema)
    path = tmp_path / "written.parquet"
    write_parquet(reader, path, observer=accumulator)
    assert_same_profile(accumulator.finish(path), profile_parquet(path))


@pytest.mark.parametrize("arrow_type", [
    pa.binary(), pa.list_(pa.int64()), pa.dictionary(pa.int32(), pa.string()), pa.uint64(),
    pa.time64("us"), pa.timestamp("ns"), pa.date64(), pa.float16(), pa.decimal256(40, 0),
])
def test_other_types_are_left_to_the_sql_profile(arrow_type):
    assert ProfileAccumulator.for_schema(pa.schema([("ok", pa.int64()), ("other", arrow_type)])) is None


def test_tables_wider_than_a_query_are_left_to_the_sql_profile():
    fields = [(f"c{k}", pa.int64()) for k in range(profile_module.COLUMNS_PER_QUERY + 1)]
    assert ProfileAccumulator.for_schema(pa.schema(fields[:-1])) is not None
    assert ProfileAccumulator.for_schema(pa.schema(fields)) is None
    assert ProfileAccumulator.for_schema(pa.schema([])) is None


# --- DuckDB's hashes and sketch, reproduced -----------------------------------------


def test_value_hashes_are_duckdbs(tmp_path):
    frame = pa.table({name: varied(200, seed=1)[name] for name in
                      ("id", "n", "small", "unsigned", "x", "odd", "single", "flag", "day", "at", "zoned", "constant")})
    con = duckdb.connect()
    expected = con.sql("SELECT " + ", ".join(f'hash("{n}")' for n in frame.column_names) + " FROM frame").fetchnumpy()
    for name, duck in zip(frame.column_names, expected.values()):
        assert np.array_equal(hashes.value_hashes(frame[name].combine_chunks()), duck), name
    row = con.sql("SELECT hash(" + ", ".join(f'"{n}"' for n in frame.column_names) + ") FROM frame").fetchnumpy()
    folded = hashes.fold_row_hashes([hashes.value_hashes(frame[n].combine_chunks()) for n in frame.column_names])
    assert np.array_equal(folded, next(iter(row.values())))


@pytest.mark.parametrize("values", [
    "range(100000)", "range(3)", "(SELECT 'w' || (i % 977) FROM range(50000) t(i))",
    "(SELECT i * 0.25 FROM range(20000) t(i))", "(SELECT DATE '2000-01-01' + (i % 4000)::INT FROM range(9000) t(i))",
])
def test_the_sketch_estimates_as_approx_count_distinct_does(values):
    con = duckdb.connect()
    query = f"SELECT approx_count_distinct(v), list(hash(v)) FROM (SELECT * FROM {values}) t(v)"
    expected, value_hashes = con.execute(query).fetchone()
    value_hashes = np.array(value_hashes, np.uint64)
    assert hll.estimate(hll.registers(value_hashes)) == expected
    # Sketches merge, and a part that skips what cannot raise the other's registers agrees.
    half = len(value_hashes) // 2
    first = hll.registers(value_hashes[:half])
    merged = np.maximum(first, hll.registers(value_hashes[half:], floor=int(first.min())))
    assert hll.estimate(merged) == expected


def test_row_hashes_are_counted_through_spill_files(monkeypatch):
    monkeypatch.setattr(rows, "MEMORY_BYTES", 1024)
    folder = accumulate.SpillFolder()
    counted = rows.RowHashes(folder)
    rng = np.random.default_rng(0)
    chunks = [rng.integers(0, 2**63, 3000, dtype=np.uint64) for _ in range(5)]
    chunks.append(chunks[0][:1000])  # repeats
    for chunk in chunks:
        counted.add(rows.RowHashes.part(chunk))
    assert counted.distinct() == len(np.unique(np.concatenate(chunks)))
    folder.remove()
