"""Declaring, listing, suggesting and running a dataset's checks, for the CLI.

Checks added here go to the project's run-time registry (one object per check), so every
process of a deployment sees them; checks in ``dataplat.yaml`` are reviewed configuration
that only an edit of the file changes. A run of checks is a Dagster run of the
``quality_checks`` job with only the chosen checks selected: the UI shows it, and its
results are the checks' history on the dataset's Checks tab.
"""

from __future__ import annotations

from pydantic import ValidationError

from dataplat_dagster.catalog.models import CheckSpec, find_entry, named_checks
from dataplat_dagster.catalog.registry import project_catalog, project_registry
from dataplat_dagster.datasets import storage
from dataplat_dagster.errors import DataplatError
from dataplat_dagster.keys import dataset_key
from dataplat_dagster.workspace import Project, Workspace

TAG_DATASET = "dataplat/dataset"


def _dataset_checks(project: Project, catalog, dataset: str) -> dict[str, CheckSpec]:
    find_entry(catalog.datasets, "dataset", dataset, project.name)
    try:
        return catalog.dataset_checks(dataset)
    except ValueError as error:
        raise DataplatError(f"The checks of dataset {dataset!r}: {error}.") from None


def _declared(project: Project) -> dict[str, set[str]]:
    """The names of the checks ``dataplat.yaml`` declares, by dataset."""
    from dataplat_dagster.catalog.store import load_catalog

    return {dataset: set(named_checks(specs)) for dataset, specs in load_catalog(project.catalog_path).checks.items()}


def _current_version(project: Project, catalog, dataset: str):
    return storage.DatasetStore(storage.project_root(project.dir, catalog), dataset).current()


def new_check(project: Project, dataset: str, expectation: str, kwargs: dict, severity: str, name: str | None) -> CheckSpec:
    """The check as it would be added: validated by GX, its columns in the dataset, its name free."""
    from dataplat_dagster.quality.declare import validate_check

    catalog = project_catalog(project)
    existing = _dataset_checks(project, catalog, dataset)
    try:
        spec = CheckSpec(expectation=expectation, kwargs=kwargs, severity=severity, name=name)
    except ValidationError as error:
        raise DataplatError(_first_error(error)) from None
    validate_check(spec)
    _check_columns(_current_version(project, catalog, dataset), dataset, spec)
    if name and name in existing:
        raise DataplatError(f"Dataset {dataset!r} already has a check named {name!r}: choose another --name, or delete it first.")
    return list(named_checks([*existing.values(), spec]).values())[-1]  # a derived name numbered if taken


def add_check(project: Project, dataset: str, spec: CheckSpec) -> None:
    if not project_registry(project).add_check(dataset, spec):
        raise DataplatError(f"Dataset {dataset!r} already has a check named {spec.name!r}: choose another --name.")


def delete_check(project: Project, dataset: str, name: str) -> None:
    from dataplat_dagster.quality.results import remove_result

    catalog = project_catalog(project)
    existing = _dataset_checks(project, catalog, dataset)
    if name not in existing:
        known = ", ".join(existing) or "none"
        raise DataplatError(f"Dataset {dataset!r} has no check {name!r} (its checks: {known}).")
    if name in _declared(project).get(dataset, ()):
        raise DataplatError(f"Check {name!r} of dataset {dataset!r} is declared in {project.catalog_path.name}: remove it there.")
    project_registry(project).remove_check(dataset, name)
    remove_result(storage.DatasetStore(storage.project_root(project.dir, catalog), dataset), name)


def list_checks(instance, project: Project, dataset: str | None) -> list[dict]:
    """Each check with its last result, as ``check list --json`` prints them. ``instance``
    (a callable) is called only for a dataset whose results are not recorded with it."""
    from dataplat_dagster.quality.results import last_results

    catalog = project_catalog(project)
    if dataset is not None:
        find_entry(catalog.datasets, "dataset", dataset, project.name)
    names = [dataset] if dataset else [name for name in catalog.checks if name in catalog.datasets]
    declared = _declared(project)
    root = storage.project_root(project.dir, catalog)
    found = []
    for name in names:
        checks = _dataset_checks(project, catalog, name)
        store = storage.DatasetStore(root, name)
        results = last_results(instance, project.name, store, store.current(), list(checks))
        for check, spec in checks.items():
            found.append({"dataset": name, "name": check, "expectation": spec.expectation, "kwargs": spec.kwargs,
                          "severity": spec.severity,
                          "declared_in": "dataplat.yaml" if check in declared.get(name, ()) else "registry",
                          "last_result": results[check]})
    return found


def validate_checks(project: Project, dataset: str | None) -> tuple[int, list[tuple[str, str]]]:
    """GX's verdict on each check: (how many were checked, [(dataset/check, why refused)])."""
    from dataplat_dagster.quality.declare import validate_check

    catalog = project_catalog(project)
    if dataset is not None:
        find_entry(catalog.datasets, "dataset", dataset, project.name)
    refused, checked = [], 0
    for name in [dataset] if dataset else list(catalog.checks):
        if name not in catalog.datasets:
            refused.append((name, f"checks are declared for {name!r}, which is not a dataset of project {project.name!r}"))
            continue
        for check, spec in _dataset_checks(project, catalog, name).items():
            checked += 1
            try:
                validate_check(spec)
            except DataplatError as error:
                refused.append((f"{name}/{check}", str(error)))
    return checked, refused


def start_check_run(instance, workspace: Workspace, project: Project, dataset: str,
                    names: list[str] | None, *, wait: bool) -> tuple[str, list[str]]:
    """Start a run of the dataset's checks (all, or ``names``); returns its id and the checks."""
    catalog = project_catalog(project)
    checks = _dataset_checks(project, catalog, dataset)
    if not checks:
        raise DataplatError(f"Dataset {dataset!r} has no checks: add one with `dataplat check add {dataset} EXPECTATION ...` "
                            f"or `dataplat check suggest {dataset} --apply`.")
    unknown = [name for name in names or [] if name not in checks]
    if unknown:
        raise DataplatError(f"Dataset {dataset!r} has no check {', '.join(map(repr, unknown))} (its checks: {', '.join(checks)}).")
    chosen = names or list(checks)
    if _current_version(project, catalog, dataset) is None:
        raise DataplatError(f"Dataset {dataset!r} has no data yet: wait for its import (`dataplat dataset list`), then run its checks.")
    from dagster import AssetCheckKey, AssetKey

    from dataplat_dagster import runs
    from dataplat_dagster.quality.checks import CHECKS_JOB

    key = AssetKey(dataset_key(project.name, dataset))
    request = runs.RunRequest(project, CHECKS_JOB, [], dict(runs.QUIET_CONSOLE),
                              {TAG_DATASET: dataset, "dataplat/action": "check"},
                              check_keys=[AssetCheckKey(key, name) for name in chosen])
    return runs.submit(instance, workspace, request, wait=wait), chosen


def suggested_checks(project: Project, dataset: str) -> list[CheckSpec]:
    """A suite proposed from the profile of the dataset's current version, named; a
    suggestion equal to a check the dataset has already is left out."""
    from dataplat_dagster.quality.suggest import suggest_checks

    catalog = project_catalog(project)
    existing = _dataset_checks(project, catalog, dataset)
    version = _current_version(project, catalog, dataset)
    profile = version.read_json(storage.PROFILE_FILE) if version else None
    if profile is None:
        raise DataplatError(f"Dataset {dataset!r} has no stored profile: import it with its profile "
                            f"(`dataplat dataset import ... --name {dataset} --replace`), then ask again.")
    have = {(spec.expectation, repr(sorted(spec.kwargs.items()))) for spec in existing.values()}
    fresh = [spec for spec in suggest_checks(profile) if (spec.expectation, repr(sorted(spec.kwargs.items()))) not in have]
    named = named_checks([*existing.values(), *(spec.model_copy(update={"name": None}) for spec in fresh)])
    return [spec for name, spec in named.items() if name not in existing]


def _check_columns(version, dataset: str, spec: CheckSpec) -> None:
    """Refuse a column the dataset's current ``version`` does not have (its Parquet footer only)."""
    import pyarrow.parquet as pq

    from dataplat_dagster.quality.engine import columns_of

    columns = columns_of(spec) or []
    if not columns or version is None or not version.path(storage.DATA_FILE).exists():
        return
    with version.path(storage.DATA_FILE).open("rb") as file:
        present = pq.read_schema(file).names
    missing = [column for column in columns if column not in present]
    if missing:
        raise DataplatError(f"Dataset {dataset!r} has no column {', '.join(map(repr, missing))} (its columns: {', '.join(present)}).")


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    return str(first.get("msg", error)).removeprefix("Value error, ")
