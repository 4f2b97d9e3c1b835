"""The catalog file: validation errors name the file, the object and the field; edits are atomic."""

import pytest

from dataplat_dagster.catalog import DatasetSpec, FileSource, edit_catalog, load_catalog
from dataplat_dagster.errors import CatalogError


def test_error_names_file_dataset_and_field(tmp_path):
    path = tmp_path / "dataplat.yaml"
    path.write_text("datasets:\n  sales:\n    origin: upload\n    source:\n      path: a.csv\n      options: {decimal: ';'}\n")
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert str(path) in message
    assert "dataset 'sales', field origin" in message and "file_upload" in message
    assert "dataset 'sales', field source.options.decimal" in message


def test_unknown_field_and_bad_yaml_are_reported(tmp_path):
    path = tmp_path / "dataplat.yaml"
    path.write_text("storage_rot: x\n")
    with pytest.raises(CatalogError, match="field storage_rot: Extra inputs are not permitted"):
        load_catalog(path)
    path.write_text("datasets: [unclosed\n")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(path)


def test_edit_keeps_header_comments_and_saves_nothing_on_error(tmp_path):
    path = tmp_path / "dataplat.yaml"
    path.write_text("# my notes\nstorage_root: storage\ndatasets: {}\n")
    with edit_catalog(path) as catalog:
        catalog.datasets["sales"] = DatasetSpec(source=FileSource(path="raw/a.csv"))
    assert path.read_text().startswith("# my notes\n")
    assert load_catalog(path).datasets["sales"].source.path == "raw/a.csv"
    with pytest.raises(RuntimeError):
        with edit_catalog(path) as catalog:
            catalog.datasets.pop("sales")
            raise RuntimeError("interrupted")
    assert "sales" in load_catalog(path).datasets
