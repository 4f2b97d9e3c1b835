"""A suite of checks proposed from a dataset version's stored profile.

Each suggestion states what the profiled data already is (no missing values, unique values,
a small set of values, the observed range), so it passes on that data and warns when a later
version departs from it. The arguments come from the profile alone: no data is read here.
"""

from __future__ import annotations

import datetime as dt

import yaml

from dataplat_dagster.catalog.models import CheckSpec

# A text column gets its value set only when it has at most this many values, all of them in
# the profile's top values (which keep the ten most frequent: see profile.stats.TOP_VALUES).
MAX_VALUE_SET = 20
SEVERITY = "warn"
STRING_TYPES = ("string", "large_string", "string_view")


def suggest_checks(profile: dict) -> list[CheckSpec]:
    """Checks that hold on the data ``profile`` (``profile_parquet``'s result) describes.

    - the row count between half and one and a half times the observed count, rounded
      outwards to two significant figures;
    - per column, in table order: not null where no value is missing; unique where every
      value is distinct (only when the distinct count is exact); the value set of a text
      column whose values repeat and are all known (at most ``MAX_VALUE_SET``), or of a
      boolean column that holds one value only; the observed min and max of numbers,
      dates and timestamps; the observed value lengths of text, when the profile has them.

    Every suggestion has severity ``warn``: it describes one version of the data, not a
    rule anyone has stated, so it should report a change rather than block the pipeline.
    An empty table and a column without values get no suggestions.
    """
    rows = profile["summary"]["rows"]
    if rows == 0:
        return []
    specs = [_spec("expect_table_row_count_to_be_between", **_row_count_band(rows))]
    for column in profile["columns"]:
        specs.extend(_column_checks(column, rows))
    return specs


def suggestion_yaml(dataset: str, specs: list[CheckSpec]) -> str:
    """``specs`` as the ``checks:`` section of ``dataplat.yaml``, for ``dataset``."""
    entries = []
    for spec in specs:
        entry = {"expectation": spec.expectation, "kwargs": spec.kwargs, "severity": spec.severity}
        if spec.name is not None:
            entry["name"] = spec.name
        entries.append(entry)
    # Flow style for the innermost collections writes each check's kwargs on one line, as
    # dataplat.yaml does: {column: city, value_set: [Lyon, Paris]}.
    return yaml.safe_dump({"checks": {dataset: entries}}, sort_keys=False, default_flow_style=None,
                          allow_unicode=True)


def _spec(expectation: str, **kwargs) -> CheckSpec:
    return CheckSpec(expectation=expectation, kwargs=kwargs, severity=SEVERITY)


def _row_count_band(rows: int) -> dict:
    low, high = rows // 2, -(-3 * rows // 2)
    return {"min_value": _two_figures(low, up=False), "max_value": _two_figures(high, up=True)}


def _two_figures(value: int, *, up: bool) -> int:
    """``value`` rounded down (or up) to two significant figures: 6172 -> 6100, 18518 -> 19000."""
    step = 10 ** max(len(str(value)) - 2, 0)
    return -(-value // step) * step if up else value // step * step


def _column_checks(column: dict, rows: int) -> list[CheckSpec]:
    name, kind = column["name"], column["type"]
    present = rows - column["missing"]
    if present == 0:
        return []  # no values: nothing to learn from, and a range or a set would be empty
    # GX reads the data through pandas, where a float NaN counts as missing and an infinity
    # lies outside any finite range; the profile counts both together in non_finite, so a
    # float column that has any gets neither not-null nor a range.
    finite = column.get("non_finite", 0) == 0
    specs = []
    if column["missing"] == 0 and finite:
        specs.append(_spec("expect_column_values_to_not_be_null", column=name))
    # One value is unique trivially, and a boolean column can only be unique with two rows
    # or fewer: neither says anything.
    if (column["distinct"] == present and present > 1 and not column["distinct_is_approximate"]
            and kind != "boolean"):
        specs.append(_spec("expect_column_values_to_be_unique", column=name))
    value_set = _value_set(column, present)
    if value_set is not None:
        specs.append(_spec("expect_column_values_to_be_in_set", column=name, value_set=value_set))
    bounds = _bounds(column, finite)
    if bounds is not None:
        specs.append(_spec("expect_column_values_to_be_between", column=name,
                           min_value=bounds[0], max_value=bounds[1]))
    # A value set says more than lengths: lengths only for text without one (codes, names).
    if value_set is None and _is_string(column) and column.get("min_length") is not None:
        specs.append(_spec("expect_column_value_lengths_to_be_between", column=name,
                           min_value=column["min_length"], max_value=column["max_length"]))
    return specs


def _value_set(column: dict, present: int) -> list | None:
    top = column.get("top_values") or []
    # The top values are all the values only when their counts add up to the column's.
    if not top or sum(item["count"] for item in top) != present:
        return None
    if column["type"] == "boolean":
        # Both values are all a boolean column can hold: only a constant one says something.
        return [top[0]["value"] == "true"] if len(top) == 1 else None
    # Values that never repeat make a key, not a category; and columns profiled as text
    # from another type (binary, lists, times of day) have top values in DuckDB's text
    # form, which does not compare equal to the values pandas gives GX.
    if not _is_string(column) or len(top) > MAX_VALUE_SET or len(top) == present:
        return None
    return sorted(item["value"] for item in top)


def _bounds(column: dict, finite: bool) -> tuple | None:
    low, high = column.get("min"), column.get("max")
    if low is None or high is None:
        return None
    kind = column["type"]
    if kind in ("integer", "date") or (kind == "float" and finite):
        return low, high
    if kind == "timestamp":
        # The profile keeps microseconds: a nanosecond timestamp's max can be up to 999 ns
        # below the true one, so the max is moved up by one microsecond.
        if column["arrow_type"].startswith("timestamp[ns"):
            high = (dt.datetime.fromisoformat(high) + dt.timedelta(microseconds=1)).isoformat()
        return low, high
    # Decimals are left out: pandas gives GX Python Decimal objects, compared exactly with
    # the profile's float bounds (Decimal("0.10") < 0.1), so the observed min and max
    # themselves would fail.
    return None


def _is_string(column: dict) -> bool:
    arrow_type = column["arrow_type"]
    return arrow_type in STRING_TYPES or any(
        arrow_type.startswith(f"dictionary<values={name},") for name in STRING_TYPES)
