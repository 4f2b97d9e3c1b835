"""Build a project's Dagster definitions from its catalog, when its code location loads.

Loading stays fast: nothing here imports pandas, Pillow or DuckDB; the dataset assets
import their engines when they run.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor

from dataplat_dagster.catalog.registry import project_catalog
from dataplat_dagster.catalog.models import PIPELINE_ORIGINS
from dataplat_dagster.connectors.base import connector_executor
from dataplat_dagster.connectors.check_job import connector_check_job
from dataplat_dagster.connectors.registry import build_connector
from dataplat_dagster.datasets.assets import dataset_asset
from dataplat_dagster.datasets.dropzone import dropzone_sensor, import_file_job
from dataplat_dagster.datasets.io_manager import IO_MANAGER_KEY, DatasetIOManager
from dataplat_dagster.datasets.storage import project_root
from dataplat_dagster.datasets.versions import rollback_job
from dataplat_dagster.datasources.assets import datasource_source_spec, snapshot_asset
from dataplat_dagster.datasources.automation import datasource_automation
from dataplat_dagster.embeddings.assets import IO_MANAGER_KEY as EMBEDDINGS_IO_MANAGER_KEY
from dataplat_dagster.embeddings.assets import embeddings_asset, embeddings_job
from dataplat_dagster.embeddings.loading import EmbeddingsIOManager
from dataplat_dagster.images.assets import IO_MANAGER_KEY as IMAGE_FOLDERS_IO_MANAGER_KEY
from dataplat_dagster.images.assets import image_folder_asset
from dataplat_dagster.images.loading import ImageFolderIOManager
from dataplat_dagster.exporters.export_job import export_dataset_job, export_target_spec
from dataplat_dagster.exporters.io_manager import ExporterIOManager
from dataplat_dagster.quality.checks import checks_job, dataset_checks_definition
from dataplat_dagster.workspace import Project

# Materializes any selection of the project's datasets. In-process: a dataset import is
# one step, and a subprocess per step would only add start-up time.
DATASETS_JOB = "refresh_datasets"


def load_project(location: str | os.PathLike) -> Project:
    """The project of a folder, or of a file inside it (a code location's ``__file__``)."""
    path = Path(location).resolve()
    project_dir = path if path.is_dir() else path.parent
    return Project(project_dir.name, project_dir).remember()


def project_definitions(location: str | os.PathLike) -> Definitions:
    """The definitions of the project at ``location``: its folder, or a file inside it."""
    project = load_project(location)
    catalog = project_catalog(project)
    root = project_root(project.dir, catalog)
    # Pipeline outputs are assets of the pipeline's own code (see ``pipeline_dataset``).
    assets = [
        snapshot_asset(project, root, name, spec, catalog.datasources[spec.datasource])
        if spec.datasource
        else dataset_asset(project, root, name, spec)
        for name, spec in catalog.datasets.items()
        if spec.origin not in PIPELINE_ORIGINS
    ]
    assets += [image_folder_asset(project, root, name, spec) for name, spec in catalog.image_folders.items()]
    jobs = []
    if assets:
        jobs.append(
            define_asset_job(
                DATASETS_JOB,
                selection=AssetSelection.assets(*assets),
                executor_def=in_process_executor,
                description=f"Parse and profile the datasets, and import the image folders, of project {project.name!r}.",
                tags={"dataplat/project": project.name},
            )
        )
    embeddings = [embeddings_asset(project, root, name, spec) for name, spec in catalog.embeddings.items()]
    if embeddings:
        jobs.append(embeddings_job(project, embeddings))
    resources = {
        IO_MANAGER_KEY: DatasetIOManager(project=project.name),
        IMAGE_FOLDERS_IO_MANAGER_KEY: ImageFolderIOManager(project=project.name),
        EMBEDDINGS_IO_MANAGER_KEY: EmbeddingsIOManager(project=project.name),
    }
    # Each connector is a resource under its own name; secrets stay EnvVar references.
    for name, spec in catalog.connectors.items():
        resources[name] = build_connector(name, spec, project.dir)
    # Each exporter is an IO manager under its own name, writing through its connector.
    for name, spec in catalog.exporters.items():
        connector = catalog.connectors[spec.connector]
        uri_prefix = connector.file_uri("") if spec.path else ""
        resources[name] = ExporterIOManager.from_spec(name, spec, resources[spec.connector], uri_prefix)
    if catalog.exporters:
        jobs.append(export_dataset_job(project, {name: resources[name] for name in catalog.exporters}))
    exports = [
        export_target_spec(project, name, spec, catalog.connectors[spec.connector], [d for d in spec.datasets if d in catalog.datasets])
        for name, spec in catalog.exporters.items()
    ]
    if catalog.connectors:
        jobs.append(connector_check_job(project.name, list(catalog.connectors)))
    sources = [
        datasource_source_spec(project, name, spec, catalog.connectors[spec.connector])
        for name, spec in catalog.datasources.items()
    ]
    snapshot_jobs, schedules, sensors = datasource_automation(project.name, catalog.datasources, _datasets_by_source(catalog))
    # Importing from the UI: the import_file job, and the drop-zone sensor that launches it.
    jobs.append(import_file_job(project, root))
    sensors.append(dropzone_sensor(project, root, jobs[-1], catalog.dropzone))
    jobs.append(rollback_job(project))  # `dataplat dataset rollback`: an earlier version made current again
    # Each dataset's data-quality checks; pipeline datasets' ones target the pipeline's assets.
    checks = {name: catalog.dataset_checks(name) for name in catalog.checks if name in catalog.datasets}
    asset_checks = [dataset_checks_definition(project.name, root, name, specs) for name, specs in checks.items() if specs]
    if asset_checks:
        jobs.append(checks_job(project.name, asset_checks))
    # Jobs that set no executor of their own (users' jobs too) honour the connectors' limits.
    executor = connector_executor(catalog.connectors)
    return Definitions(
        assets=[*sources, *assets, *embeddings, *exports],
        asset_checks=asset_checks,
        jobs=[*jobs, *snapshot_jobs],
        schedules=schedules,
        sensors=sensors,
        resources=resources,
        executor=executor,
    )


def _datasets_by_source(catalog) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, spec in catalog.datasets.items():
        if spec.datasource:
            found.setdefault(spec.datasource, []).append(name)
    return found
