"""The GX bridge (``quality.engine.evaluate``) on Parquet files written here: each family of
expectations passing and failing with its statistics, and the batched evaluation (small
``BATCH_ROWS`` over several row groups) giving what GX gives on the whole frame in one batch."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataplat_dagster.catalog.models import CheckSpec, named_checks
from dataplat_dagster.quality import engine

ROWS = 100
SMALL_BATCH = 7  # batch 0 (rows 0-6) holds only nulls of `email`; batches straddle the row groups of 20
AMOUNT_NULLS = {50, 51}


def spec(expectation: str, **kwargs) -> CheckSpec:
    return CheckSpec(expectation=expectation, kwargs=kwargs)


def made_table() -> pa.Table:
    i = range(ROWS)
    return pa.table({
        "id": pa.array(list(i), pa.int64()),
        # 10 duplicated values (0-9), each twice: rows 0-9 and 90-99.
        "dup": pa.array([k % 90 for k in i], pa.int64()),
        # 10% nulls, all in rows 0-9 (so the first batch of 7 is 100% nulls); two malformed addresses.
        "email": [None if k < 10 else (f"bad{k}" if k in (25, 75) else f"user{k}@x.org") for k in i],
        "colour": ["purple" if k % 10 == 3 else ("red", "green", "blue")[k % 3] for k in i],
        # -3 .. 96, with two nulls: 3 negatives of 98 values.
        "amount": pa.array([None if k in AMOUNT_NULLS else float(k - 3) for k in i], pa.float64()),
        "code": ["A" * (1 + k % 5) for k in i],  # lengths 1..5, 20 rows each
    })


CHECKS = {
    # nulls: 10 of 100; mostly decided on the sums (0.90 >= 0.85, < 0.95)
    "email_nulls_85": spec("expect_column_values_to_not_be_null", column="email", mostly=0.85),
    "email_nulls_95": spec("expect_column_values_to_not_be_null", column="email", mostly=0.95),
    "id_not_null": spec("expect_column_values_to_not_be_null", column="id"),
    # uniqueness
    "id_unique": spec("expect_column_values_to_be_unique", column="id"),
    "dup_unique": spec("expect_column_values_to_be_unique", column="dup"),
    # sets
    "colour_in_set": spec("expect_column_values_to_be_in_set", column="colour", value_set=["red", "green", "blue"]),
    "colour_in_wider_set": spec("expect_column_values_to_be_in_set", column="colour",
                                value_set=["red", "green", "blue", "purple"]),
    # ranges: the nulls are not counted (3 of 98)
    "amount_min_0": spec("expect_column_values_to_be_between", column="amount", min_value=0),
    "amount_min_0_mostly_96": spec("expect_column_values_to_be_between", column="amount", min_value=0, mostly=0.96),
    "amount_min_0_mostly_97": spec("expect_column_values_to_be_between", column="amount", min_value=0, mostly=0.97),
    "amount_min_minus_3": spec("expect_column_values_to_be_between", column="amount", min_value=-3, max_value=96),
    "amount_max_low": spec("expect_column_max_to_be_between", column="amount", max_value=50),
    "amount_max_ok": spec("expect_column_max_to_be_between", column="amount", min_value=90, max_value=100),
    "amount_mean_ok": spec("expect_column_mean_to_be_between", column="amount", min_value=46, max_value=47),
    "amount_mean_high": spec("expect_column_mean_to_be_between", column="amount", min_value=50),
    # regex: nulls are not counted (2 of 90)
    "email_regex": spec("expect_column_values_to_match_regex", column="email", regex=r"^[a-z0-9]+@x\.org$"),
    "email_regex_loose": spec("expect_column_values_to_match_regex", column="email", regex=r"^[a-z]+[0-9]+"),
    # row count
    "rows_too_few_allowed": spec("expect_table_row_count_to_be_between", min_value=10, max_value=99),
    "rows_exact": spec("expect_table_row_count_to_be_between", min_value=100, max_value=100),
    # column types
    "amount_float": spec("expect_column_values_to_be_of_type", column="amount", type_="float64"),
    "amount_int": spec("expect_column_values_to_be_of_type", column="amount", type_="int64"),
    "id_int": spec("expect_column_values_to_be_of_type", column="id", type_="int64"),
    # lengths
    "code_len_1_3": spec("expect_column_value_lengths_to_be_between", column="code", min_value=1, max_value=3),
    "code_len_1_5": spec("expect_column_value_lengths_to_be_between", column="code", min_value=1, max_value=5),
}
ROW_WISE = [name for name, s in CHECKS.items() if s.expectation.startswith("expect_column_value")
            and s.expectation not in engine.WHOLE_COLUMN and "of_type" not in s.expectation]


@pytest.fixture(scope="module")
def parquet(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("engine") / "data.parquet"
    pq.write_table(made_table(), path, row_group_size=20)
    assert pq.ParquetFile(path).num_row_groups == 5
    return path


@pytest.fixture(scope="module")
def outcomes(parquet) -> dict[str, dict[str, engine.CheckOutcome]]:
    """The outcomes of CHECKS batched by 7 rows, and in one batch (the default BATCH_ROWS)."""
    assert engine.BATCH_ROWS >= ROWS
    whole = engine.evaluate(parquet, CHECKS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "BATCH_ROWS", SMALL_BATCH)
        batched = engine.evaluate(parquet, CHECKS)
    return {"batched": batched, "whole": whole}


def stats(outcome: engine.CheckOutcome) -> tuple:
    return (outcome.success, outcome.element_count, outcome.unexpected_count, outcome.unexpected_percent,
            outcome.missing_count, outcome.unexpected_sample, outcome.observed_value, outcome.error)


# (success, element_count, unexpected_count, unexpected_percent, missing_count, unexpected_sample, observed_value)
EXPECTED = {
    "email_nulls_85": (True, 100, 10, 10.0, 0, [], None),  # nulls are not shown as values
    "email_nulls_95": (False, 100, 10, 10.0, 0, [], None),
    "id_not_null": (True, 100, 0, 0.0, 0, [], None),
    "id_unique": (True, 100, 0, 0.0, 0, [], None),
    "dup_unique": (False, 100, 20, 20.0, 0, list(range(10)) * 2, None),
    "colour_in_set": (False, 100, 10, 10.0, 0, ["purple"] * 10, None),
    "colour_in_wider_set": (True, 100, 0, 0.0, 0, [], None),
    "amount_min_0": (False, 100, 3, 300 / 98, 2, [-3.0, -2.0, -1.0], None),
    "amount_min_0_mostly_96": (True, 100, 3, 300 / 98, 2, [-3.0, -2.0, -1.0], None),
    "amount_min_0_mostly_97": (False, 100, 3, 300 / 98, 2, [-3.0, -2.0, -1.0], None),
    "amount_min_minus_3": (True, 100, 0, 0.0, 2, [], None),
    "amount_max_low": (False, None, None, None, None, [], 96.0),
    "amount_max_ok": (True, None, None, None, None, [], 96.0),
    "amount_mean_ok": (True, None, None, None, None, [], pytest.approx((sum(range(-3, 97)) - 47 - 48) / 98)),
    "amount_mean_high": (False, None, None, None, None, [], pytest.approx((sum(range(-3, 97)) - 47 - 48) / 98)),
    "email_regex": (False, 100, 2, 200 / 90, 10, ["bad25", "bad75"], None),
    "email_regex_loose": (True, 100, 0, 0.0, 10, [], None),
    "rows_too_few_allowed": (False, None, None, None, None, [], 100),
    "rows_exact": (True, None, None, None, None, [], 100),
    "amount_float": (True, None, None, None, None, [], "float64"),
    "amount_int": (False, None, None, None, None, [], "float64"),
    "id_int": (True, None, None, None, None, [], "int64"),
    "code_len_1_3": (False, 100, 40, 40.0, 0, ["AAAA", "AAAAA"] * 10, None),
    "code_len_1_5": (True, 100, 0, 0.0, 0, [], None),
}


@pytest.mark.parametrize("mode", ["whole", "batched"])
@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_expectation_passes_or_fails_with_its_statistics(outcomes, mode, name):
    outcome = outcomes[mode][name]
    success, elements, unexpected, percent, missing, sample, observed = EXPECTED[name]
    assert outcome.error is None, outcome.error
    assert outcome.success is success
    assert (outcome.element_count, outcome.unexpected_count, outcome.missing_count) == (elements, unexpected, missing)
    assert outcome.unexpected_percent == (None if percent is None else pytest.approx(percent))
    assert outcome.unexpected_sample == sample
    assert outcome.observed_value == observed
    assert json.loads(json.dumps(outcome.to_json())) == outcome.to_json()  # JSON-ready, as stored in the run's metadata


def test_every_check_has_an_outcome(outcomes):
    assert set(outcomes["whole"]) == set(outcomes["batched"]) == set(CHECKS) == set(EXPECTED)


def test_batches_add_up_to_the_single_batch_result(outcomes):
    """Every statistic of the 7-row batches equals the one-batch evaluation's: counts, percent,
    the sample (in row order) and the verdict, ``mostly`` included."""
    for name in CHECKS:
        assert stats(outcomes["batched"][name]) == stats(outcomes["whole"][name]), name


def test_mostly_is_decided_on_the_sums_not_per_batch(parquet, tmp_path):
    """The first batch of 7 rows alone is 100% null: judged alone it fails mostly=0.85, yet
    the 10% nulls of the whole file pass it, batched or not."""
    first = tmp_path / "first.parquet"
    pq.write_table(pq.read_table(parquet).slice(0, SMALL_BATCH), first)
    alone = engine.evaluate(first, {"nulls": CHECKS["email_nulls_85"]})["nulls"]
    assert (alone.success, alone.unexpected_count, alone.unexpected_percent) == (False, SMALL_BATCH, 100.0)


def test_gx_itself_gives_the_same_result_on_the_whole_frame(parquet, outcomes):
    """GX's own validation of the whole frame in one batch (its public API, not the bridge):
    the batched counts, percents and verdicts are GX's."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (context.data_sources.add_pandas("test").add_dataframe_asset("frame")
                        .add_batch_definition_whole_dataframe("whole"))
    suite = gx.ExpectationSuite(name="test")
    for name in ROW_WISE:
        expectation = ExpectationConfiguration(type=CHECKS[name].expectation, kwargs=CHECKS[name].kwargs).to_domain_obj()
        expectation.meta = {"name": name}
        suite.add_expectation(expectation)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": pq.read_table(parquet).to_pandas()})
    results = batch.validate(suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": 20}).results
    assert len(results) == len(ROW_WISE) > 10
    for result in results:
        name = result.expectation_config.meta["name"]
        batched = outcomes["batched"][name]
        assert batched.success is result.success, name
        assert batched.element_count == result.result["element_count"], name
        assert batched.unexpected_count == result.result["unexpected_count"], name
        assert batched.missing_count == result.result.get("missing_count", 0), name  # GX has none for the null checks
        assert batched.unexpected_percent == pytest.approx(result.result["unexpected_percent"]), name
        # GX's sample, without its nulls (which the counts say).
        assert batched.unexpected_sample == [v for v in result.result["partial_unexpected_list"] if v is not None], name


@pytest.mark.parametrize("batch_rows", [SMALL_BATCH, 1_000_000])
def test_a_check_of_a_column_that_is_not_there_is_an_error(parquet, monkeypatch, batch_rows):
    monkeypatch.setattr(engine, "BATCH_ROWS", batch_rows)
    found = engine.evaluate(parquet, {
        "missing_row_wise": spec("expect_column_values_to_not_be_null", column="nope"),
        "missing_whole": spec("expect_column_max_to_be_between", column="nope", max_value=1),
        "present": spec("expect_column_values_to_not_be_null", column="id"),
    })
    for name in ("missing_row_wise", "missing_whole"):
        assert found[name].success is False
        assert found[name].error == "the dataset has no column 'nope'"
        assert found[name].describe() == "could not be evaluated: the dataset has no column 'nope'"
    assert found["present"].success is True and found["present"].error is None  # the others still run


def test_an_expectation_gx_refuses_is_an_error_outcome(parquet):
    found = engine.evaluate(parquet, {
        "unknown": spec("expect_column_values_to_be_purple", column="id"),
        "ok": spec("expect_table_row_count_to_be_between", min_value=1),
    })
    assert found["unknown"].success is False
    # As when it is declared: GX's verdict, with the close names (a hand edit of dataplat.yaml).
    assert found["unknown"].error.startswith("Great Expectations has no expectation 'expect_column_values_to_be_purple'. "
                                             "Close names: expect_column_values_to_be_null")
    assert (found["ok"].success, found["ok"].observed_value) == (True, 100)


def test_two_equal_checks_both_get_results(parquet, monkeypatch):
    monkeypatch.setattr(engine, "BATCH_ROWS", SMALL_BATCH)
    checks = named_checks([
        spec("expect_column_values_to_be_between", column="amount", min_value=0),
        spec("expect_column_values_to_be_between", column="amount", min_value=0),
        CheckSpec(expectation="expect_table_row_count_to_be_between", kwargs={"min_value": 1}, name="rows_a"),
        CheckSpec(expectation="expect_table_row_count_to_be_between", kwargs={"min_value": 1}, name="rows_b"),
    ])
    assert list(checks) == ["amount_be_between", "amount_be_between_2", "rows_a", "rows_b"]
    found = engine.evaluate(parquet, checks)
    assert set(found) == set(checks)
    for name in ("amount_be_between", "amount_be_between_2"):
        assert (found[name].success, found[name].unexpected_count, found[name].element_count) == (False, 3, 100)
    assert found["rows_a"].observed_value == found["rows_b"].observed_value == 100


def test_describe_summarises_the_statistics(outcomes):
    assert outcomes["batched"]["amount_min_0"].describe() == (
        "3 unexpected of 100 rows (3.061%), e.g. -3.0, -2.0, -1.0")
    assert outcomes["batched"]["rows_too_few_allowed"].describe() == "observed 100"


def test_table_checks_see_the_row_count_and_the_column_names(parquet):
    names = pq.read_schema(parquet).names
    found = engine.evaluate(parquet, {
        "rows": spec("expect_table_row_count_to_equal", value=100),
        "columns": spec("expect_table_columns_to_match_set", column_set=names),
        "fewer": spec("expect_table_columns_to_match_set", column_set=names[:2], exact_match=True),
        "count": spec("expect_table_column_count_to_equal", value=len(names)),
    })
    assert {name: outcome.success for name, outcome in found.items()} == {"rows": True, "columns": True, "fewer": False, "count": True}
    assert found["rows"].observed_value == 100
    assert sorted(found["columns"].observed_value) == sorted(names) and found["count"].observed_value == len(names)
