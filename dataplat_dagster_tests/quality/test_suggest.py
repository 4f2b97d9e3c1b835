"""Checks suggested from a profile: the expected ones, each passing on the data it was
profiled from and failing where a copy of that data departs from it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from dataplat_dagster.catalog.models import CheckSpec, named_checks
from dataplat_dagster.ingest.detect import detect_dialect
from dataplat_dagster.ingest.stream import ingest_csv
from dataplat_dagster.profile.stats import profile_parquet
from dataplat_dagster.quality.declare import validate_check
from dataplat_dagster.quality.engine import evaluate
from dataplat_dagster.quality.suggest import suggest_checks, suggestion_yaml

SAMPLES = Path(__file__).parents[2] / "projects" / "demo" / "samples"
ROWS = 40
START = dt.datetime(2024, 5, 1, 8, 30, 0, 123)


def made_table() -> pa.Table:
    """Every kind of column the suggestions treat differently, 40 rows."""
    i = range(ROWS)
    return pa.table({
        "id": pa.array([k + 1 for k in i], pa.int64()),
        "code": [f"K{k}" for k in i],
        "colour": [None if k % 10 == 9 else ("red", "green", "blue")[k % 3] for k in i],
        "amount": [None if k % 8 == 7 else 0.1 + (k % 13) * 2.45 for k in i],
        "day": [dt.date(2024, 1, 1) + dt.timedelta(days=(k % 20) * 3) for k in i],
        "at": pa.array([None if k % 5 == 4 else START + dt.timedelta(hours=k % 7) for k in i], pa.timestamp("us")),
        "active": [k % 2 == 0 for k in i],
        "flag": [None if k % 4 == 0 else True for k in i],
        "price": pa.array([Decimal(f"{k % 5}.10") for k in i], pa.decimal128(6, 2)),
        "ratio": [float("nan") if k == 5 else (k % 4) / 4 for k in i],
        "empty": pa.nulls(ROWS, pa.string()),
    })


def corrupted(table: pa.Table) -> pa.Table:
    """The first 15 rows (fewer than half), with a duplicated id, a missing day, a colour
    outside the set and an amount above the max."""
    rows = table.slice(0, 15).to_pylist()
    rows[1]["id"] = rows[0]["id"]
    rows[2]["day"] = None
    rows[3]["colour"] = "purple"
    rows[4]["amount"] = 1000.0
    return pa.Table.from_pylist(rows, schema=table.schema)


def write(path: Path, table: pa.Table) -> Path:
    pq.write_table(table, path)
    return path


def ingest_sample(name: str, folder: Path) -> Path:
    source = SAMPLES / f"{name}.csv"
    target = folder / f"{name}.parquet"
    ingest_csv(source, detect_dialect(source), target)
    return target


def pairs(specs: list[CheckSpec]) -> list[tuple[str, dict]]:
    return [(spec.expectation, spec.kwargs) for spec in specs]


def of_column(specs: list[CheckSpec], column: str) -> dict[str, dict]:
    """The suggestions for ``column``: their kwargs (less the column) by expectation."""
    return {s.expectation: {k: v for k, v in s.kwargs.items() if k != "column"}
            for s in specs if s.kwargs.get("column") == column}


def failed(outcomes: dict) -> set[str]:
    return {name for name, outcome in outcomes.items() if not outcome.success}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("suggest")


@pytest.fixture(scope="module")
def made(folder):
    path = write(folder / "made.parquet", made_table())
    return path, suggest_checks(profile_parquet(path))


@pytest.fixture(scope="module")
def made_outcomes(made, folder):
    """The suggestions evaluated on the made data and on its corrupted copy."""
    path, specs = made
    checks = named_checks(specs)
    broken = write(folder / "corrupted.parquet", corrupted(made_table()))
    return evaluate(path, checks), evaluate(broken, checks)


@pytest.fixture(scope="module")
def demo(folder):
    """The demo's two samples, ingested: their suggestions and outcomes, by name."""
    result = {}
    for name in ("customers", "sales_eu"):
        path = ingest_sample(name, folder)
        specs = suggest_checks(profile_parquet(path))
        result[name] = (specs, evaluate(path, named_checks(specs)))
    return result


def test_made_data_gets_the_expected_suite(made):
    _, specs = made
    between, in_set = "expect_column_values_to_be_between", "expect_column_values_to_be_in_set"
    not_null, unique = "expect_column_values_to_not_be_null", "expect_column_values_to_be_unique"
    assert pairs(specs) == [
        ("expect_table_row_count_to_be_between", {"min_value": 20, "max_value": 60}),
        (not_null, {"column": "id"}),
        (unique, {"column": "id"}),
        (between, {"column": "id", "min_value": 1, "max_value": 40}),
        (not_null, {"column": "code"}),
        (unique, {"column": "code"}),
        ("expect_column_value_lengths_to_be_between", {"column": "code", "min_value": 2, "max_value": 3}),
        (in_set, {"column": "colour", "value_set": ["blue", "green", "red"]}),
        # The float bounds are the observed values exactly, not rounded.
        (between, {"column": "amount", "min_value": 0.1, "max_value": 0.1 + 12 * 2.45}),
        (not_null, {"column": "day"}),
        (between, {"column": "day", "min_value": "2024-01-01", "max_value": "2024-02-27"}),
        (between, {"column": "at", "min_value": "2024-05-01T08:30:00.000123", "max_value": "2024-05-01T14:30:00.000123"}),
        (not_null, {"column": "active"}),
        (in_set, {"column": "flag", "value_set": [True]}),
        (not_null, {"column": "price"}),
        # ratio (a NaN) and empty (no values) get nothing.
    ]
    assert {spec.severity for spec in specs} == {"warn"}


def test_every_suggestion_is_accepted_by_gx(made, demo):
    for spec in made[1] + demo["customers"][0] + demo["sales_eu"][0]:
        validate_check(spec)


def test_suggestions_pass_on_the_data_they_come_from(made_outcomes):
    outcomes, _ = made_outcomes
    assert len(outcomes) == 15
    assert failed(outcomes) == set(), {n: o.describe() for n, o in outcomes.items()}


def test_each_departure_fails_its_own_check_only(made_outcomes):
    _, outcomes = made_outcomes
    assert failed(outcomes) == {
        "row_count_to_be_between",  # 15 rows of 40
        "id_be_unique",
        "day_not_be_null",
        "colour_be_in_set",
        "amount_be_between",
    }, {n: o.describe() for n, o in outcomes.items()}
    assert outcomes["colour_be_in_set"].unexpected_sample == ["purple"]
    assert outcomes["amount_be_between"].unexpected_sample == [1000.0]
    assert outcomes["row_count_to_be_between"].observed_value == 15


def test_customers_sample(demo):
    specs, outcomes = demo["customers"]
    assert failed(outcomes) == set(), {n: o.describe() for n, o in outcomes.items()}
    assert pairs(specs)[0] == ("expect_table_row_count_to_be_between", {"min_value": 150, "max_value": 450})
    assert of_column(specs, "customer_id") == {
        "expect_column_values_to_not_be_null": {},
        "expect_column_values_to_be_unique": {},
        "expect_column_values_to_be_between": {"min_value": 1, "max_value": 300},
    }
    assert of_column(specs, "segment")["expect_column_values_to_be_in_set"] == {"value_set": ["online", "retail", "wholesale"]}
    assert of_column(specs, "city")["expect_column_values_to_be_in_set"]["value_set"] == [
        "Bordeaux", "Lille", "Lyon", "Marseille", "Montpellier", "Nantes", "Nice", "Paris", "Strasbourg", "Toulouse"]
    assert of_column(specs, "signup_date")["expect_column_values_to_be_between"] == {
        "min_value": "2021-01-01", "max_value": "2024-03-30"}
    # 200 names among 300 rows, and 299 zip codes: neither a set nor unique; their lengths.
    assert of_column(specs, "name") == {"expect_column_values_to_not_be_null": {},
                                        "expect_column_value_lengths_to_be_between": {"min_value": 6, "max_value": 11}}
    assert of_column(specs, "zip") == {"expect_column_values_to_not_be_null": {},
                                       "expect_column_value_lengths_to_be_between": {"min_value": 5, "max_value": 5}}
    # Both values seen: a set of true and false would say nothing about a boolean.
    assert set(of_column(specs, "vip")) == {"expect_column_values_to_not_be_null"}


def test_sales_sample(demo):
    specs, outcomes = demo["sales_eu"]
    assert failed(outcomes) == set(), {n: o.describe() for n, o in outcomes.items()}
    assert pairs(specs)[0] == ("expect_table_row_count_to_be_between", {"min_value": 1000, "max_value": 3000})
    assert set(of_column(specs, "order_id")) == {"expect_column_values_to_not_be_null", "expect_column_values_to_be_unique",
                                                 "expect_column_value_lengths_to_be_between"}
    assert of_column(specs, "amount")["expect_column_values_to_be_between"] == {"min_value": 15.6, "max_value": 15973.58}
    # Missing in 10% and 31% of the rows: a range and a set, but not "not null".
    assert of_column(specs, "discount") == {"expect_column_values_to_be_between": {"min_value": 0, "max_value": 15}}
    assert of_column(specs, "comment") == {
        "expect_column_values_to_be_in_set": {"value_set": ["livré", "retour", "urgent", "à vérifier"]}}


def test_value_lengths_come_from_the_profile(folder, made):
    """Lengths are suggested for text without a value set, from the profile's character counts."""
    path, specs = made
    lengths = [s for s in specs if s.expectation == "expect_column_value_lengths_to_be_between"]
    assert pairs(lengths) == [("expect_column_value_lengths_to_be_between", {"column": "code", "min_value": 2, "max_value": 3})]
    longer = made_table().to_pylist()
    longer[0]["code"] = "K1000"
    broken = write(folder / "long_code.parquet", pa.Table.from_pylist(longer, schema=made_table().schema))
    checks = named_checks(lengths)
    assert failed(evaluate(path, checks)) == set()
    assert failed(evaluate(broken, checks)) == set(checks)


def test_an_empty_table_gets_no_suggestions(folder):
    path = write(folder / "empty.parquet", made_table().slice(0, 0))
    assert suggest_checks(profile_parquet(path)) == []


@pytest.mark.parametrize("rows, band", [(1, (0, 2)), (3, (1, 5)), (300, (150, 450)), (12_345, (6_100, 19_000))])
def test_row_count_band_is_rounded_outwards(rows, band):
    profile = {"summary": {"rows": rows}, "columns": []}
    (spec,) = suggest_checks(profile)
    assert (spec.kwargs["min_value"], spec.kwargs["max_value"]) == band


def test_approximate_distinct_counts_suggest_no_uniqueness(made):
    path, _ = made
    profile = profile_parquet(path)
    for column in profile["columns"]:
        column["distinct_is_approximate"] = True
    assert "expect_column_values_to_be_unique" not in {s.expectation for s in suggest_checks(profile)}


def test_yaml_reads_back_as_the_checks_section(demo):
    specs, _ = demo["customers"]
    text = suggestion_yaml("customers", specs)
    assert "    kwargs: {column: customer_id}\n" in text
    assert "      value_set: [online, retail, wholesale]\n" in text
    loaded = yaml.safe_load(text)
    assert list(loaded) == ["checks"] and list(loaded["checks"]) == ["customers"]
    entries = loaded["checks"]["customers"]
    assert entries[0] == {"expectation": "expect_table_row_count_to_be_between",
                          "kwargs": {"min_value": 150, "max_value": 450}, "severity": "warn"}
    read_back = [CheckSpec(**entry) for entry in entries]
    assert pairs(read_back) == pairs(specs)
    assert {spec.severity for spec in read_back} == {"warn"}


def test_the_customers_suggestion_fails_on_a_corrupted_copy(demo, folder):
    """A copy of the demo's customers with a customer id given twice, a segment the shop does
    not have, a city left empty and a signup date after the last one: each breaks its check."""
    specs, _ = demo["customers"]
    rows = pq.read_table(folder / "customers.parquet").to_pylist()
    rows[1]["customer_id"] = rows[0]["customer_id"]
    rows[2]["segment"] = "reseller"
    rows[3]["city"] = None
    rows[4]["signup_date"] = rows[4]["signup_date"].replace(year=2030)
    broken = write(folder / "customers_broken.parquet", pa.Table.from_pylist(rows, schema=pq.read_schema(folder / "customers.parquet")))
    outcomes = evaluate(broken, named_checks(specs))
    assert failed(outcomes) == {"customer_id_be_unique", "segment_be_in_set", "city_not_be_null", "signup_date_be_between"}
    assert outcomes["segment_be_in_set"].unexpected_sample == ["reseller"]
    assert outcomes["city_not_be_null"].unexpected_count == 1
