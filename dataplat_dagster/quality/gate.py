"""The quality gate: a dataset whose ``error`` checks fail does not flow on.

Within one run, Dagster's blocking checks stop the steps downstream of the dataset. Across
runs (a pipeline run that reads a dataset materialized by another run), the dataset IO
manager asks ``refusal`` before it loads an input: a failed ``error`` check that judged the
dataset's current version refuses the load. And under a datasource's ``quality_policy:
fail``, a new snapshot or refresh is evaluated before it is published (``staged_refusal``),
so that a failing one never becomes current.
"""

from __future__ import annotations

from pathlib import Path

from dataplat_dagster.catalog.models import CheckSpec


def refusal(instance, project_name: str, dataset: str, checks: dict[str, CheckSpec], version_id: str) -> str | None:
    """Why ``dataset`` must not be read, or None: its error checks' last results on this version."""
    from dataplat_dagster.quality.checks import instance_results

    blocking = [name for name, spec in checks.items() if spec.severity == "error"]
    if not blocking:
        return None
    results = instance_results(instance, project_name, dataset, blocking)
    failed = {name: result for name, result in results.items()
              if result and not result["passed"] and result["version"] == version_id}
    if not failed:
        return None
    details = "; ".join(f"{name}: {result['description']}" for name, result in failed.items())
    return (f"Dataset {dataset!r} failed its error check(s) on its current version ({details}), so the steps that read "
            f"it do not run. Fix the data and materialize it again, or see `dataplat check list {dataset}`.")


def staged_refusal(parquet: Path, checks: dict[str, CheckSpec]) -> str | None:
    """Why a staged version must not be published, or None: its error checks, evaluated on it."""
    from dataplat_dagster.quality.engine import evaluate

    blocking = {name: spec for name, spec in checks.items() if spec.severity == "error"}
    if not blocking:
        return None
    failed = {name: outcome for name, outcome in evaluate(parquet, blocking).items() if not outcome.success}
    if not failed:
        return None
    return "; ".join(f"{name}: {outcome.describe()}" for name, outcome in failed.items())
