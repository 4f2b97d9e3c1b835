"""Evaluate a dataset's checks with Great Expectations 1.x on its stored Parquet.

The bridge uses GX's public API only: an ephemeral context, a pandas data source with one
whole-dataframe batch definition, and the suite's validation results. Which engine reads the
data was chosen by measurement (bench/README.md, "bench/checks.py"): GX has no DuckDB
dialect (a DuckDB SQLAlchemy engine fails its metric bundles), and GX's pandas engine on the
whole 10M-row frame peaks at 1.9 GB because a regex or a length check turns a text column
into Python strings. So the data is read in batches of ``BATCH_ROWS`` rows, only the columns
the checks name:

- a *row-wise* expectation (GX's column map expectations, except those that compare rows
  with each other: uniqueness, ordering) runs on each batch, and the batches' counts add up
  (unexpected and missing counts, a sample of unexpected values) before ``mostly`` is
  applied to the sums, as GX applies it to one batch;
- any other expectation (the row count, a column's mean, max or distinct values, uniqueness)
  sees its columns whole, one check at a time, so memory holds only what it needs.

great_expectations is imported here only, when checks run or are declared: never when the
package or a code location loads.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from dataplat_dagster.catalog.models import CheckSpec
from dataplat_dagster.errors import DataplatError

BATCH_ROWS = 1_000_000
SAMPLE_SIZE = 20  # unexpected values kept per check, as GX's partial_unexpected_list
# Column map expectations whose verdict on a row depends on other rows.
WHOLE_COLUMN = {
    "expect_column_values_to_be_unique",
    "expect_compound_columns_to_be_unique",
    "expect_select_column_values_to_be_unique_within_record",
    "expect_column_values_to_be_increasing",
    "expect_column_values_to_be_decreasing",
    "expect_multicolumn_values_to_be_unique",
}
COUNT_KEYS = ("element_count", "unexpected_count", "missing_count")
QUALITY_HINT = "install the extra: pip install 'dataplat-dagster[quality]'"


@dataclass
class CheckOutcome:
    """The result of one check on one version of a dataset."""

    success: bool
    observed_value: object = None
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    missing_count: int | None = None
    unexpected_sample: list = field(default_factory=list)
    error: str | None = None  # GX could not evaluate it (a column that is not there, say)

    def describe(self) -> str:
        if self.error:
            return f"could not be evaluated: {self.error}"
        if self.unexpected_count is not None:
            text = f"{self.unexpected_count:,} unexpected of {self.element_count:,} rows ({self.unexpected_percent:.4g}%)"
            if self.unexpected_sample:
                text += ", e.g. " + ", ".join(repr(value) for value in self.unexpected_sample[:5])
            return text
        return f"observed {self.observed_value!r}"

    def to_json(self) -> dict:
        return {key: value for key, value in self.__dict__.items() if value is not None and value != []}


def _gx():
    """great_expectations, imported on first use, without its usage statistics."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    try:
        import great_expectations
    except ImportError:
        raise DataplatError(f"Data-quality checks need Great Expectations: {QUALITY_HINT}.") from None
    return great_expectations


def build_expectation(spec: CheckSpec):
    """The GX expectation of ``spec``. GX's own errors (an unknown type, wrong arguments)
    pass through; ``declare.validate_check`` turns them into a user's message."""
    _gx()
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    return ExpectationConfiguration(type=spec.expectation, kwargs=dict(spec.kwargs)).to_domain_obj()


def is_row_wise(expectation) -> bool:
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    return (isinstance(expectation, (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation))
            and expectation.expectation_type not in WHOLE_COLUMN)


def columns_of(spec: CheckSpec) -> list[str] | None:
    """The columns a check reads; None for a table-level check (row count, column names)."""
    kwargs = spec.kwargs
    if "column_list" in kwargs:
        return list(kwargs["column_list"])
    pair = [kwargs[key] for key in ("column_A", "column_B") if key in kwargs]
    if pair:
        return pair
    if "column" in kwargs:
        return [kwargs["column"]]
    return None


class _Validator:
    """One ephemeral GX context with a pandas batch definition, reused for every batch."""

    def __init__(self):
        gx = _gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        asset = self.context.data_sources.add_pandas("dataplat").add_dataframe_asset("dataset")
        self.batch_definition = asset.add_batch_definition_whole_dataframe("whole")

    def validate(self, frame, expectations: dict[str, object]) -> dict[str, object]:
        """GX's result of each expectation (by key) on ``frame``."""
        suite = self.gx.ExpectationSuite(name="dataplat")
        for key, expectation in expectations.items():
            expectation.meta = {"dataplat/key": key}
            suite.add_expectation(expectation)
        batch = self.batch_definition.get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE})
        return {item.expectation_config.meta["dataplat/key"]: item for item in result.results}


def evaluate(parquet: Path, checks: dict[str, CheckSpec]) -> dict[str, CheckOutcome]:
    """Evaluate every check on the Parquet file; returns an outcome per check name."""
    import pyarrow.parquet as pq

    outcomes: dict[str, CheckOutcome] = {}
    # One evaluation per distinct expectation: a GX suite keeps only one of equal ones.
    by_config: dict[str, list[str]] = {}
    expectations: dict[str, object] = {}
    for name, spec in checks.items():
        key = json.dumps([spec.expectation, spec.kwargs], sort_keys=True, default=str)
        if key not in by_config:
            try:
                expectations[key] = build_expectation(spec)
            except DataplatError:
                raise
            except Exception as error:  # a declaration GX refuses now (a hand edit of dataplat.yaml, a GX upgrade)
                from dataplat_dagster.quality.declare import refusal

                outcomes[name] = CheckOutcome(success=False, error=refusal(spec, error))
                continue
        by_config.setdefault(key, []).append(name)
    if not expectations:
        return outcomes
    file = pq.ParquetFile(parquet)
    present = set(file.schema_arrow.names)
    validator = _Validator()
    results: dict[str, CheckOutcome] = {}
    row_wise = {}
    for key, expectation in expectations.items():
        columns = columns_of(checks[by_config[key][0]])
        missing = [c for c in columns or [] if c not in present]
        if missing:
            results[key] = CheckOutcome(success=False, error=f"the dataset has no column {', '.join(map(repr, missing))}")
        elif is_row_wise(expectation):
            row_wise[key] = expectation
        else:
            results[key] = _whole(validator, file, expectation, columns)
    if row_wise:
        results.update(_in_batches(validator, file, row_wise, {k: checks[by_config[k][0]] for k in row_wise}))
    for key, names in by_config.items():
        for name in names:
            outcomes[name] = results[key]
    return outcomes


def _whole(validator: _Validator, file, expectation, columns: list[str] | None) -> CheckOutcome:
    """A check on its columns whole. A table-level check gets what it reads and no more: the
    row count a frame of that many rows and no column (a 10M-row count in 1 s and no memory
    to speak of, against 550 MiB for a frame of one-byte columns), the other table checks
    (column names, their count) the columns with no row."""
    import pandas as pd

    if columns is not None:
        frame = file.read(columns=columns).to_pandas()
    elif expectation.expectation_type.startswith("expect_table_row_count"):
        frame = pd.DataFrame(index=pd.RangeIndex(file.metadata.num_rows))
    else:
        frame = file.schema_arrow.empty_table().to_pandas()
    (result,) = validator.validate(frame, {"whole": expectation}).values()
    return _outcome(result)


def _in_batches(validator: _Validator, file, expectations: dict[str, object], specs: dict[str, CheckSpec]) -> dict[str, CheckOutcome]:
    """Row-wise checks on each batch of their columns; their counts summed over the batches."""
    columns = sorted({c for spec in specs.values() for c in columns_of(spec) or []})
    totals = {key: {"counts": dict.fromkeys(COUNT_KEYS, 0), "counted": False, "sample": [], "observed": None,
                    "success": True, "error": None} for key in expectations}
    for batch in file.iter_batches(batch_size=BATCH_ROWS, columns=columns):
        results = validator.validate(batch.to_pandas(), {key: expectation.copy() for key, expectation in expectations.items()})
        for key, result in results.items():
            total = totals[key]
            if not _evaluated(result):
                total["error"] = total["error"] or _exception(result)
                continue
            found = result.result or {}
            total["counted"] = total["counted"] or "unexpected_count" in found
            for count in COUNT_KEYS:
                total["counts"][count] += found.get(count) or 0
            total["sample"] = (total["sample"] + list(found.get("partial_unexpected_list") or []))[:SAMPLE_SIZE]
            total["observed"] = total["observed"] if total["observed"] is not None else found.get("observed_value")
            total["success"] = total["success"] and result.success
    return {key: _summed(expectations[key], totals[key]) for key in expectations}


def _summed(expectation, total: dict) -> CheckOutcome:
    if total["error"]:
        return CheckOutcome(success=False, error=total["error"])
    if not total["counted"]:  # a verdict without counts (a column's type): the same on every batch
        return CheckOutcome(success=total["success"], observed_value=_plain(total["observed"]))
    counts = total["counts"]
    elements, unexpected, missing = counts["element_count"], counts["unexpected_count"], counts["missing_count"]
    # As GX: nulls are not considered, except by the expectations about nulls themselves.
    considered = elements if "null" in expectation.expectation_type else elements - missing
    mostly = getattr(expectation, "mostly", None)
    mostly = 1.0 if mostly is None else mostly
    success = considered == 0 or (considered - unexpected) / considered >= mostly
    return CheckOutcome(
        success=success,
        observed_value=total["observed"],
        element_count=elements,
        unexpected_count=unexpected,
        unexpected_percent=100.0 * unexpected / considered if considered else 0.0,
        missing_count=missing,
        unexpected_sample=_values(total["sample"]),
    )


def _outcome(result) -> CheckOutcome:
    if not _evaluated(result):
        return CheckOutcome(success=False, error=_exception(result))
    found = result.result or {}
    return CheckOutcome(
        success=bool(result.success),
        observed_value=_plain(found.get("observed_value")),
        element_count=found.get("element_count"),
        unexpected_count=found.get("unexpected_count"),
        unexpected_percent=found.get("unexpected_percent"),
        missing_count=found.get("missing_count"),
        unexpected_sample=_values(list(found.get("partial_unexpected_list") or [])),
    )


def _evaluated(result) -> bool:
    info = result.exception_info or {}
    if "raised_exception" in info:
        return not info["raised_exception"]
    return not any(isinstance(value, dict) and value.get("raised_exception") for value in info.values())


def _exception(result) -> str:
    info = result.exception_info or {}
    messages = [info.get("exception_message")] if "raised_exception" in info else [
        value.get("exception_message") for value in info.values() if isinstance(value, dict)]
    return _first_line(next((m for m in messages if m), "GX raised an error"))


def _first_line(error) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _values(sample: list) -> list:
    """Unexpected values worth showing: nulls say nothing more than the counts (and NaN is no JSON)."""
    return [value for value in _plain(sample) if value is not None and value == value]


def _plain(value):
    """JSON-ready: numpy scalars as Python numbers, timestamps and the like as text."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))
