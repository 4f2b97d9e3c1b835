"""A project folder whose datasets are snapshots of datasources, materialized in process.

Each call loads the project's definitions afresh from its catalog (as a code location
reload does) and runs the project's ``refresh_datasets`` job in one ephemeral instance, so
cursors and previous schemas persist from one snapshot to the next within a test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import yaml
from dagster import AssetKey, DagsterInstance

from dataplat_dagster.definitions import DATASETS_JOB, project_definitions
from dataplat_dagster.datasources.drift import last_drift_check


class SnapshotProject:
    def __init__(self, root: Path, connectors: dict, datasources: dict, datasets: dict[str, str] | None = None):
        self.dir = root / "shop"
        self.dir.mkdir(parents=True)
        self.catalog = {"connectors": connectors, "datasources": datasources,
                        "datasets": {name: {"origin": "datasource", "datasource": ds} for name, ds in (datasets or {}).items()}}
        self._save()
        self.instance = DagsterInstance.ephemeral()

    def _save(self) -> None:
        (self.dir / "dataplat.yaml").write_text(yaml.safe_dump(self.catalog))

    def set_datasource(self, name: str, **fields) -> None:
        self.catalog["datasources"][name].update(fields)
        self._save()

    def definitions(self):
        return project_definitions(self.dir)

    def key(self, dataset: str) -> AssetKey:
        return AssetKey(["shop", "datasets", dataset])

    def snapshot(self, dataset: str, **config):
        """Materialize ``dataset``; returns the run's result (not raising on failure)."""
        job = self.definitions().resolve_job_def(DATASETS_JOB)
        op = self.key(dataset).to_python_identifier()
        run_config = {"ops": {op: {"config": config}}} if config else None
        return job.execute_in_process(instance=self.instance, asset_selection=[self.key(dataset)], run_config=run_config, raise_on_error=False)

    def folder(self, dataset: str) -> Path:
        return self.dir / "storage" / "datasets" / dataset

    def table(self, dataset: str):
        """The current version's rows, found as a reader finds them: through ``current.json``."""
        current = json.loads((self.folder(dataset) / "current.json").read_text())["current"]
        return pq.read_table(self.folder(dataset) / "versions" / current / "data.parquet")

    def metadata(self, dataset: str) -> dict:
        event = self.instance.get_latest_materialization_event(self.key(dataset))
        return {key: getattr(value, "value", value) for key, value in event.asset_materialization.metadata.items()}

    def materializations(self, dataset: str) -> int:
        return len(self.instance.fetch_materializations(self.key(dataset), limit=100).records)

    def drift(self, dataset: str) -> dict | None:
        return last_drift_check(self.instance, self.key(dataset))


def failure_message(result) -> str:
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            return data.user_failure_data.description if data.user_failure_data else data.error.message
    return ""
