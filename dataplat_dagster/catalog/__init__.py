"""The project catalog: declarative YAML validated by pydantic models."""

from dataplat_dagster.catalog.models import DatasetSpec, FileSource, ProjectCatalog
from dataplat_dagster.catalog.store import edit_catalog, load_catalog

__all__ = ["DatasetSpec", "FileSource", "ProjectCatalog", "edit_catalog", "load_catalog"]
