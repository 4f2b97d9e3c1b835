"""Declaring a check: its arguments from the command line, and GX's verdict on them.

A check is refused when it is declared, not when it first runs: GX builds the expectation
from its type and arguments, and an unknown type or a wrong argument gets GX's own message,
with the close names of the types GX knows.
"""

from __future__ import annotations

import difflib

import yaml

from dataplat_dagster.catalog.models import CheckSpec
from dataplat_dagster.errors import DataplatError


def parse_args(pairs: list[str]) -> dict:
    """``KEY=VALUE`` pairs as expectation arguments; each value is read as YAML, so that
    ``min_value=0`` is a number, ``value_set=[a, b]`` a list and ``regex=^A`` text."""
    kwargs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DataplatError(f"--arg {pair!r} is not KEY=VALUE: write it as, e.g., --arg min_value=0 or --arg value_set='[a, b]'.")
        try:
            kwargs[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            kwargs[key.strip()] = value  # not YAML (a regex with a colon, say): the text as given
    return kwargs


def validate_check(spec: CheckSpec) -> None:
    """Raise a DataplatError with GX's message if GX refuses the expectation or its arguments."""
    from dataplat_dagster.quality.engine import build_expectation

    try:
        build_expectation(spec)
    except DataplatError:
        raise
    except Exception as error:
        raise DataplatError(refusal(spec, error)) from None


def refusal(spec: CheckSpec, error: Exception) -> str:
    """What GX's refusal of ``spec`` means for a user: GX's words, and the close names of an
    unknown expectation type."""
    if type(error).__name__ == "ExpectationNotFoundError":
        return f"Great Expectations has no expectation {spec.expectation!r}.{_close_names(spec.expectation)}"
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    detail = "; ".join(_pairs(lines[1:])) if len(lines) > 1 else (lines[0] if lines else type(error).__name__)
    return (f"Great Expectations refuses the arguments {spec.kwargs} of {spec.expectation}: {detail}. "
            "Give them with --column and --arg KEY=VALUE (the expectation's arguments are on greatexpectations.io/expectations).")


def known_expectations() -> list[str]:
    from great_expectations.expectations.registry import list_registered_expectation_implementations

    return sorted(list_registered_expectation_implementations())


def _close_names(expectation: str) -> str:
    known = known_expectations()
    close = difflib.get_close_matches(expectation, known, n=5, cutoff=0.6)
    if close:
        return " Close names: " + ", ".join(close) + "."
    return f" The {len(known)} it knows: " + ", ".join(known) + "."


def _pairs(lines: list[str]) -> list[str]:
    """pydantic's "field / reason" line pairs as "field: reason", each said once."""
    said: list[str] = []
    for field, reason in zip(lines[::2], lines[1::2]):
        text = f"{field}: {reason}" if field != "__root__" else reason
        if text not in said:
            said.append(text)
    return said
