"""A dataset's checks as Dagster asset checks: one check per expectation, all of a dataset's
checks in one multi-asset check definition that can run any subset of them.

Jobs that materialize a dataset include its checks (an asset selection takes the checks of
the assets it selects), so the checks run after every materialization, in the same run:
an upload, a snapshot, a refresh, a pipeline output. A check of severity ``error`` is
*blocking*: when it fails, the steps downstream of the dataset in that run do not start.
The two jobs that report a materialization from an op (the drop-zone import, a rollback)
evaluate the checks in that op (``log_evaluations``). A run of the checks alone is
``dataplat check run`` or the UI's Execute button on the Checks tab.

Each result carries GX's statistics as metadata, and the version it judged
(``dataplat/version``), which is how a later run knows whether a failure still applies to
the dataset's current version (``gate``).

No ``from __future__ import annotations`` here: Dagster reads the check function's
``context`` annotation as a class when the definition is made.
"""

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetChecksDefinition,
    AssetKey,
    AssetSelection,
    MetadataValue,
    define_asset_job,
    in_process_executor,
    multi_asset_check,
)

from dataplat_dagster.catalog.models import CheckSpec
from dataplat_dagster.datasets import storage
from dataplat_dagster.keys import dataset_key

VERSION_METADATA = "dataplat/version"
# Runs the checks alone (`dataplat check run`, or a launch from the UI).
CHECKS_JOB = "quality_checks"


def checks_job(project_name: str, definitions: list[AssetChecksDefinition]):
    return define_asset_job(
        CHECKS_JOB, selection=AssetSelection.checks(*definitions), executor_def=in_process_executor,
        description=f"Run the data-quality checks of the datasets of project {project_name!r} on their current versions.",
        tags={"dataplat/project": project_name},
    )


def checks_op_name(dataset: str) -> str:
    return f"quality_checks_{dataset}"


def dataset_checks_definition(project_name: str, root, dataset: str, checks: dict[str, CheckSpec]) -> AssetChecksDefinition:
    key = AssetKey(dataset_key(project_name, dataset))
    specs = [
        AssetCheckSpec(name, asset=key, blocking=spec.severity == "error", description=spec.describe() + ".",
                       metadata={"dataplat/expectation": spec.expectation, "dataplat/severity": spec.severity})
        for name, spec in checks.items()
    ]

    @multi_asset_check(specs=specs, name=checks_op_name(dataset), can_subset=True,
                       description=f"The data-quality checks of dataset {dataset!r} (Great Expectations).")
    def _checks(context: AssetCheckExecutionContext):
        selected = {check_key.name for check_key in context.selected_asset_check_keys}
        version_id, outcomes = evaluate_current(root, dataset, {name: checks[name] for name in checks if name in selected})
        for name, outcome in outcomes.items():
            fields = result_fields(checks[name], outcome, version_id)
            record(root, dataset, name, fields, version_id, context.run.run_id)
            yield AssetCheckResult(asset_key=key, check_name=name, **fields)

    return _checks


def evaluate_current(root, dataset: str, checks: dict[str, CheckSpec]):
    """Evaluate ``checks`` on the dataset's current version: (version id, outcomes)."""
    from dataplat_dagster.quality.engine import CheckOutcome, evaluate

    store = storage.DatasetStore(root, dataset)
    version = store.current()
    data = version.path(storage.DATA_FILE) if version else None
    if data is None or not data.exists():
        missing = CheckOutcome(success=False, error=f"dataset {dataset!r} has no data yet: import or materialize it first")
        return None, {name: missing for name in checks}
    with storage.local_copy(data) as local:
        return version.id, evaluate(local, checks)


def log_evaluations(context, project_name: str, root, dataset: str, checks: dict[str, CheckSpec]) -> None:
    """Evaluate the checks on the current version and log them from an op: what a job that
    reports a materialization from an op (the drop-zone import, a rollback) does after it."""
    if not checks:
        return
    key = AssetKey(dataset_key(project_name, dataset))
    version_id, outcomes = evaluate_current(root, dataset, checks)
    for name, outcome in outcomes.items():
        fields = result_fields(checks[name], outcome, version_id)
        record(root, dataset, name, fields, version_id, context.run_id)
        context.log_event(AssetCheckEvaluation(asset_key=key, check_name=name, **fields))


def record(root, dataset: str, name: str, fields: dict, version_id: str | None, run_id: str) -> None:
    """Write the result with the dataset too, where the read-only commands find it (``results``)."""
    from dataplat_dagster.quality.results import record_result

    metadata = {label: value.value for label, value in fields["metadata"].items() if not label.startswith("dataplat/")}
    record_result(storage.DatasetStore(root, dataset), name, fields["passed"], fields["severity"].value.lower(),
                  fields["description"], metadata, version_id, run_id)


def result_fields(spec: CheckSpec, outcome, version_id: str | None) -> dict:
    """What an AssetCheckResult and an AssetCheckEvaluation both take."""
    metadata = {
        "expectation": MetadataValue.text(spec.expectation),
        "kwargs": MetadataValue.json(spec.kwargs),
        "severity": MetadataValue.text(spec.severity),
        "result": MetadataValue.text(outcome.describe()),
    }
    if version_id:
        metadata[VERSION_METADATA] = MetadataValue.text(version_id)
    if outcome.error:
        metadata["error"] = MetadataValue.text(outcome.error)
    if outcome.observed_value is not None:
        metadata["observed_value"] = _observed(outcome.observed_value)
    for name in ("element_count", "unexpected_count", "missing_count"):
        if getattr(outcome, name) is not None:
            metadata[name] = MetadataValue.int(int(getattr(outcome, name)))
    if outcome.unexpected_percent is not None:
        metadata["unexpected_percent"] = MetadataValue.float(float(outcome.unexpected_percent))
    if outcome.unexpected_sample:
        metadata["unexpected_sample"] = MetadataValue.json(outcome.unexpected_sample)
    return {
        "passed": bool(outcome.success),
        "severity": AssetCheckSeverity.ERROR if spec.severity == "error" else AssetCheckSeverity.WARN,
        "metadata": metadata,
        "description": outcome.describe(),
    }


def _observed(value) -> MetadataValue:
    """GX's observed value with its type: a number as a number, a list or mapping as JSON."""
    if isinstance(value, bool) or not isinstance(value, (int, float, list, dict)):
        return MetadataValue.text(str(value))
    if isinstance(value, int):
        return MetadataValue.int(value)
    if isinstance(value, float):
        return MetadataValue.float(value)
    return MetadataValue.json({"value": value})


# --- the last results, for the CLI and the quality gate ---------------------------------

def instance_results(instance, project_name: str, dataset: str, names) -> dict[str, dict | None]:
    """The last completed evaluation of each check, as the Dagster instance has it: {passed,
    severity, version, description, run_id, timestamp, metadata}, or None where the check
    never ran. (``quality.results`` has the same from the project's state.)"""
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    key = AssetKey(dataset_key(project_name, dataset))
    done = {AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED}
    found: dict[str, dict | None] = {}
    for name in names:
        records = instance.event_log_storage.get_asset_check_execution_history(AssetCheckKey(key, name), limit=1, status=done)
        evaluation = records[0].event.asset_check_evaluation if records and records[0].event else None
        if evaluation is None:
            found[name] = None
            continue
        metadata = {label: value.value for label, value in evaluation.metadata.items()}
        found[name] = {
            "passed": evaluation.passed,
            "severity": evaluation.severity.value.lower(),
            "version": metadata.get(VERSION_METADATA),
            "description": evaluation.description,
            "run_id": records[0].run_id,
            "timestamp": records[0].event.timestamp,
            "metadata": {label: value for label, value in metadata.items() if not label.startswith("dataplat/")},
        }
    return found
