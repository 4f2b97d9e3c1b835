import datetime as dt
import decimal
import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from dataplat_dagster.profile import stats as profile_module
from dataplat_dagster.profile.stats import arrow_kind, cramers_v, profile_parquet
from dataplat_dagster.errors import InputError


def write(tmp_path, columns: dict, name="data.parquet"):
    path = tmp_path / name
    pq.write_table(pa.table(columns), path)
    return path


def column(profile: dict, name: str) -> dict:
    return next(c for c in profile["columns"] if c["name"] == name)


@pytest.fixture
def mixed(tmp_path):
    return write(tmp_path, {
        "n": pa.array([1, 2, 3, None], pa.int64()),
        "x": pa.array([1.0, 2.0, 3.0, 4.0]),
        "y": pa.array([2.0, 4.0, 6.0, 8.0]),
        "colour": pa.array(["red", "red", "blue", None]),
        "ok": pa.array([True, False, True, True]),
        "day": pa.array([dt.date(2024, 1, 3), dt.date(2024, 1, 1), None, dt.date(2024, 2, 1)]),
    })


def test_summary_counts_missing_cells_types_and_rows(mixed):
    summary = profile_parquet(mixed)["summary"]
    assert summary == {
        "rows": 4,
        "columns": 6,
        "missing_cells": 3,
        "missing_pct": 12.5,
        "duplicate_rows": 0,
        "column_types": {"integer": 1, "float": 2, "text": 1, "boolean": 1, "date": 1},
    }


def test_number_column_statistics(mixed):
    n = column(profile_parquet(mixed), "n")
    assert (n["type"], n["arrow_type"]) == ("integer", "int64")
    assert (n["missing"], n["missing_pct"], n["distinct"]) == (1, 25.0, 3)
    assert n["distinct_is_approximate"] is False
    assert (n["min"], n["max"], n["mean"], n["std"]) == (1, 3, 2.0, 1.0)
    assert n["quantiles"]["50%"] == 2
    assert set(n["quantiles"]) == {"5%", "25%", "50%", "75%", "95%"}


def test_integer_histogram_has_one_bin_per_value_for_small_ranges(mixed):
    histogram = column(profile_parquet(mixed), "n")["histogram"]
    assert histogram == {"edges": [1.0, 2.0, 3.0, 4.0], "counts": [1, 1, 1]}


def test_float_histogram_counts_sum_to_non_null_values(tmp_path):
    values = [i / 7 for i in range(100)] + [None] * 5
    profile = profile_parquet(write(tmp_path, {"v": pa.array(values)}))
    histogram = column(profile, "v")["histogram"]
    assert len(histogram["counts"]) == 20 and len(histogram["edges"]) == 21
    assert sum(histogram["counts"]) == 100
    assert histogram["edges"][0] == 0.0 and histogram["edges"][-1] == pytest.approx(99 / 7)
    assert histogram["counts"] == [5] * 20


def test_nan_and_infinity_are_left_out_of_float_statistics(tmp_path):
    path = write(tmp_path, {"v": pa.array([1.0, float("nan"), float("inf"), 3.0])})
    v = column(profile_parquet(path), "v")
    assert (v["min"], v["max"], v["mean"], v["non_finite"], v["missing"]) == (1.0, 3.0, 2.0, 2, 0)
    assert sum(v["histogram"]["counts"]) == 2


def test_top_values_with_exact_counts(mixed):
    profile = profile_parquet(mixed)
    assert column(profile, "colour")["top_values"] == [
        {"value": "red", "count": 2},
        {"value": "blue", "count": 1},
    ]
    assert column(profile, "ok")["top_values"] == [
        {"value": "true", "count": 3},
        {"value": "false", "count": 1},
    ]


def test_top_values_keep_the_ten_most_frequent(tmp_path):
    values = [f"v{i:02d}" for i in range(30) for _ in range(i + 1)]
    top = column(profile_parquet(write(tmp_path, {"t": values})), "t")["top_values"]
    assert top == [{"value": f"v{i:02d}", "count": i + 1} for i in range(29, 19, -1)]


def test_date_min_max_and_histogram_are_iso(mixed):
    day = column(profile_parquet(mixed), "day")
    assert (day["min"], day["max"]) == ("2024-01-01", "2024-02-01")
    assert day["histogram"]["edges"][0] == "2024-01-01"
    assert sum(day["histogram"]["counts"]) == 3
    assert all(len(edge) == 10 for edge in day["histogram"]["edges"])


def test_timestamp_with_time_zone_is_reported_in_utc(tmp_path):
    paris = dt.timezone(dt.timedelta(hours=1))
    moments = [dt.datetime(2024, 1, 1, 12, tzinfo=paris), dt.datetime(2024, 1, 2, 12, tzinfo=paris)]
    path = write(tmp_path, {"at": pa.array(moments, pa.timestamp("us", tz="Europe/Paris"))})
    at = column(profile_parquet(path), "at")
    assert (at["min"], at["max"]) == ("2024-01-01T11:00:00+00:00", "2024-01-02T11:00:00+00:00")
    assert at["histogram"]["edges"][-1] == at["max"]


def test_duplicate_rows_are_counted_exactly(tmp_path):
    path = write(tmp_path, {
        "a": [1, 1, 1, 2, 2, None, None],
        "b": ["x", "x", "x", "y", "z", None, None],
    })
    assert profile_parquet(path)["summary"]["duplicate_rows"] == 3


def test_pearson_of_perfectly_correlated_columns_is_one(mixed):
    pearson = profile_parquet(mixed)["correlations"]["pearson"]
    assert pearson["columns"] == ["n", "x", "y"]
    x, y = pearson["columns"].index("x"), pearson["columns"].index("y")
    assert pearson["matrix"][x][y] == pytest.approx(1.0)
    assert pearson["matrix"][x][x] == 1.0


def test_cramers_v_links_categories_that_determine_each_other(tmp_path):
    city = ["Paris", "Lyon", "Paris", "Lyon", "Nice", "Nice"] * 5
    country = ["FR"] * 30
    region = {"Paris": "IDF", "Lyon": "ARA", "Nice": "PACA"}
    path = write(tmp_path, {"city": city, "region": [region[c] for c in city], "country": country})
    cramers = profile_parquet(path)["correlations"]["cramers_v"]
    assert cramers["columns"] == ["city", "region"]  # a constant column has no association
    assert cramers["matrix"][0][1] == pytest.approx(1.0)


def test_cramers_v_of_independent_table_is_zero():
    cells = [("a", "x", 10), ("a", "y", 10), ("b", "x", 10), ("b", "y", 10)]
    assert cramers_v(cells) == 0.0


def test_sample_holds_first_rows_as_json_values(tmp_path):
    path = write(tmp_path, {
        "d": pa.array([decimal.Decimal("1.50"), None], pa.decimal128(5, 2)),
        "t": pa.array([dt.datetime(2024, 5, 6, 7, 8, 9), None]),
        "b": pa.array([b"\x00\xff", None]),
        "l": pa.array([[1, 2], None]),
    })
    profile = profile_parquet(path, sample_rows=1)
    assert profile["sample"] == {
        "columns": ["d", "t", "b", "l"],
        "rows": [["1.50", "2024-05-06T07:08:09", "00ff", [1, 2]]],
    }
    json.dumps(profile, allow_nan=False)


def test_awkward_column_names_are_quoted(tmp_path):
    path = write(tmp_path, {'say "hi"': [1, 2], "naïve space": ["a", "b"], "x;DROP": [3.0, 4.0]})
    profile = profile_parquet(path)
    assert [c["name"] for c in profile["columns"]] == ['say "hi"', "naïve space", "x;DROP"]
    assert column(profile, 'say "hi"')["mean"] == 1.5


def test_empty_file_has_no_statistics(tmp_path):
    path = write(tmp_path, {"n": pa.array([], pa.int64()), "s": pa.array([], pa.string())})
    profile = profile_parquet(path)
    assert profile["summary"]["rows"] == 0
    assert profile["summary"]["missing_pct"] == 0.0
    n = column(profile, "n")
    assert (n["min"], n["mean"], n["histogram"]) == (None, None, None)
    assert column(profile, "s")["top_values"] == []
    correlations = profile["correlations"]
    assert (correlations["pearson"], correlations["cramers_v"]) == (None, None)
    assert correlations["selection"]["pearson"]["eligible"] == 0


def test_all_null_column(tmp_path):
    path = write(tmp_path, {"n": pa.array([None, None], pa.float64()), "m": [1.0, 2.0]})
    profile = profile_parquet(path)
    n = column(profile, "n")
    assert (n["missing"], n["distinct"], n["histogram"]) == (2, 0, None)
    # An empty column correlates with nothing: it is not paired, and one column is no pair.
    assert profile["correlations"]["pearson"] is None
    assert profile["correlations"]["selection"]["pearson"]["eligible"] == 1


def test_large_files_use_approximate_distinct(tmp_path, monkeypatch):
    monkeypatch.setattr(profile_module, "EXACT_DISTINCT_MAX_ROWS", 2)
    n = column(profile_parquet(write(tmp_path, {"n": [1, 2, 3]})), "n")
    assert n["distinct_is_approximate"] is True
    assert n["distinct"] == 3


def test_unreadable_file_says_what_to_check(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_text("not parquet")
    with pytest.raises(InputError, match="complete Parquet file"):
        profile_parquet(path)


@pytest.mark.parametrize(
    ("arrow_type", "kind"),
    [
        (pa.uint8(), "integer"), (pa.int64(), "integer"), (pa.float16(), "float"),
        (pa.float64(), "float"), (pa.decimal128(10, 2), "decimal"), (pa.bool_(), "boolean"),
        (pa.date32(), "date"), (pa.date64(), "date"), (pa.timestamp("ns"), "timestamp"),
        (pa.string(), "text"), (pa.binary(), "text"), (pa.list_(pa.int64()), "text"),
        (pa.time64("us"), "text"), (pa.dictionary(pa.int32(), pa.string()), "text"),
    ],
)
def test_arrow_kind(arrow_type, kind):
    assert arrow_kind(arrow_type) == kind


def test_top_values_of_many_valued_columns_are_counted_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(profile_module, "FULL_COUNT_MAX_DISTINCT", 0)
    values = [f"v{i:02d}" for i in range(30) for _ in range(i + 1)]
    path = write(tmp_path, {"t": values, "l": [[i % 3] for i in range(len(values))]})
    profile = profile_parquet(path)
    assert column(profile, "t")["top_values"][:2] == [{"value": "v29", "count": 30}, {"value": "v28", "count": 29}]
    assert column(profile, "l")["top_values"] == [
        {"value": "[0]", "count": 155}, {"value": "[1]", "count": 155}, {"value": "[2]", "count": 155},
    ]


def test_duplicates_stay_exact_when_duckdb_spills_to_disk(tmp_path, monkeypatch):
    # 32 MB cannot hold the distinct-row hashes of 1M rows: DuckDB must spill, and the
    # fallback limit is the same, so running out of memory would fail the profile.
    monkeypatch.setattr(profile_module, "MEMORY_LIMIT", "32MB")
    monkeypatch.setattr(profile_module, "FALLBACK_MEMORY_LIMIT", "32MB")
    keys = pa.concat_arrays([pa.array(range(1_000_000)), pa.array(range(500))])
    path = write(tmp_path, {"a": keys, "b": pc.bit_wise_and(keys, 7)})
    profile = profile_parquet(path)
    assert profile["summary"]["duplicate_rows"] == 500
    assert column(profile, "b")["max"] == 7


def test_running_out_of_memory_retries_with_the_larger_limit(mixed, monkeypatch):
    expected = profile_parquet(mixed)
    limits = []
    first_pass = profile_module._first_pass

    def short_of_memory_at_first(con, *args):
        limits.append(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
        if len(limits) == 1:
            raise profile_module.duckdb.OutOfMemoryException("Out of Memory Error")
        return first_pass(con, *args)

    monkeypatch.setattr(profile_module, "_first_pass", short_of_memory_at_first)
    assert profile_parquet(mixed) == expected
    assert len(limits) == 2 and limits[0] != limits[1]
