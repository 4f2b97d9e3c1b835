"""The checks' last results, recorded with the dataset: one object per check,
``checks/<name>.json`` in the dataset's storage folder, written by the op that evaluated it.

``dataset list`` and ``check list`` read them from there, without Dagster; a rename moves
them with the dataset's folder and a delete removes them. The Dagster instance keeps each
check's whole history (the UI's Checks tab); it is asked here only about a dataset whose
current version was written before results were recorded.
"""

from __future__ import annotations

import json
import time

from dataplat_dagster.datasets.storage import DatasetStore, write_bytes

RESULTS_FOLDER = "checks"


def record_result(store: DatasetStore, name: str, passed: bool, severity: str, description: str, metadata: dict,
                  version: str | None, run_id: str) -> None:
    """``metadata``: the evaluation's plain values, the ``dataplat/`` ones left out."""
    result = {"passed": passed, "severity": severity, "version": version, "description": description,
              "run_id": run_id, "timestamp": time.time(), "metadata": metadata}
    write_bytes(_path(store, name), json.dumps(result, default=str).encode())


def last_results(instance, project_name: str, store: DatasetStore, version, names) -> dict[str, dict | None]:
    """The last completed evaluation of each check: {passed, severity, version, description,
    run_id, timestamp, metadata}, or None where the check never ran. ``version`` is the
    dataset's current one (or None); ``instance`` (a callable) is called only for a version
    from before results were recorded."""
    if version is not None and "columns" not in version.manifest:
        from dataplat_dagster.quality.checks import instance_results

        return instance_results(instance(), project_name, store.name, names)
    return {name: _read(store, name) for name in names}


def checks_summary(instance, project_name: str, store: DatasetStore, version, checks: dict) -> dict | None:
    """How the dataset's checks last went: {count, passed, failed, not_run, failed_checks};
    None for a dataset without checks."""
    if not checks:
        return None
    results = last_results(instance, project_name, store, version, list(checks))
    failed = [name for name, result in results.items() if result and not result["passed"]]
    not_run = [name for name, result in results.items() if result is None]
    return {"count": len(checks), "passed": len(checks) - len(failed) - len(not_run), "failed": len(failed),
            "not_run": len(not_run), "failed_checks": failed}


def remove_result(store: DatasetStore, name: str) -> None:
    path = _path(store, name)
    if path.exists():
        path.unlink()


def _read(store: DatasetStore, name: str) -> dict | None:
    try:
        return json.loads(_path(store, name).read_text())
    except FileNotFoundError:
        return None


def _path(store: DatasetStore, name: str):
    return store.path(f"{RESULTS_FOLDER}/{name}.json")
