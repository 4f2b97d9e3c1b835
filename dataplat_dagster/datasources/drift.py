"""Schema drift between two snapshots of a datasource: columns added, removed or retyped.

Each snapshot's Arrow schema is compared with the previous version's, read from the stored
Parquet's footer. The result is the ``schema_drift`` asset check of the snapshot dataset;
under the datasource's ``drift_policy: fail`` a drifted snapshot is refused before anything
is published, so the previous version stays current.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

if TYPE_CHECKING:
    import pyarrow as pa

DRIFT_CHECK = "schema_drift"


@dataclass(frozen=True)
class SchemaDrift:
    added: list[dict] = field(default_factory=list)  # [{"name", "type"}]
    removed: list[dict] = field(default_factory=list)
    retyped: list[dict] = field(default_factory=list)  # [{"name", "before", "after"}]
    first: bool = False  # no previous snapshot to compare with

    @property
    def drifted(self) -> bool:
        return bool(self.added or self.removed or self.retyped)

    def describe(self) -> str:
        if self.first:
            return "First snapshot: no previous schema to compare with."
        if not self.drifted:
            return "The columns and their types are those of the previous snapshot."
        parts = []
        if self.added:
            parts.append("added " + ", ".join(f"{c['name']} ({c['type']})" for c in self.added))
        if self.removed:
            parts.append("removed " + ", ".join(f"{c['name']} ({c['type']})" for c in self.removed))
        if self.retyped:
            parts.append("retyped " + ", ".join(f"{c['name']} ({c['before']} → {c['after']})" for c in self.retyped))
        return "Schema changed since the previous snapshot: " + "; ".join(parts) + "."

    def to_json(self) -> dict:
        return {"added": self.added, "removed": self.removed, "retyped": self.retyped}


def compare_schemas(previous: pa.Schema | None, current: pa.Schema) -> SchemaDrift:
    if previous is None:
        return SchemaDrift(first=True)
    before = {f.name: str(f.type) for f in previous}
    after = {f.name: str(f.type) for f in current}
    return SchemaDrift(
        added=[{"name": n, "type": t} for n, t in after.items() if n not in before],
        removed=[{"name": n, "type": t} for n, t in before.items() if n not in after],
        retyped=[{"name": n, "before": before[n], "after": t} for n, t in after.items() if n in before and before[n] != t],
    )


def drift_check_result(drift: SchemaDrift, policy: str, refused: bool = False) -> AssetCheckResult:
    """``policy`` warn: a drift is a warning; fail: an error, and the snapshot was refused."""
    description = drift.describe()
    if refused:
        description += " The snapshot was refused (drift_policy: fail); the previous version stays current."
    return AssetCheckResult(
        check_name=DRIFT_CHECK,
        passed=not drift.drifted,
        severity=AssetCheckSeverity.ERROR if policy == "fail" else AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "drift_policy": MetadataValue.text(policy),
            "added": MetadataValue.json(drift.added),
            "removed": MetadataValue.json(drift.removed),
            "retyped": MetadataValue.json(drift.retyped),
            "summary": MetadataValue.text(description),
        },
    )


def last_drift_check(instance, asset_key) -> dict | None:
    """The last ``schema_drift`` evaluation of a snapshot dataset: passed, severity, description."""
    from dagster import AssetCheckKey

    records = instance.event_log_storage.get_asset_check_execution_history(AssetCheckKey(asset_key, DRIFT_CHECK), limit=1)
    event = records[0].event if records else None
    evaluation = event.dagster_event.event_specific_data if event and event.dagster_event else None
    if evaluation is None:
        return None
    return {"passed": evaluation.passed, "severity": evaluation.severity.value, "description": evaluation.description}
