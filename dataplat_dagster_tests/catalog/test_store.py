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


def test_edit_keeps_comments_order_and_unwritten_defaults(tmp_path):
    path = tmp_path / "dataplat.yaml"
    path.write_text(
        "# my notes\n"
        "storage_root: storage\n"
        "connectors:\n"
        "  # the shop's database, read only\n"
        "  shop: {type: sql, dialect: sqlite, database: shop.db}   # flow style, kept\n"
        "  archive:\n"
        "    type: sql\n"
        "    dialect: sqlite\n"
        "    database: archive.db  # moved every year\n"
        "datasets: {}\n"
    )
    with edit_catalog(path) as catalog:
        catalog.datasets["sales"] = DatasetSpec(source=FileSource(path="raw/a.csv"))
        del catalog.connectors["archive"]
    text = path.read_text()
    assert text.startswith("# my notes\nstorage_root: storage\nconnectors:\n  # the shop's database, read only\n")
    assert "  shop: {type: sql, dialect: sqlite, database: shop.db}   # flow style, kept\n" in text
    assert "archive" not in text
    # The defaults the file does not spell out (timeout_s, retries, ...) stay unwritten.
    assert "timeout_s" not in text and "retries" not in text
    assert list(load_catalog(path).datasets) == ["sales"]
    assert text.index("connectors:") < text.index("datasets:")


def test_a_held_lock_times_out_naming_its_holder(tmp_path, monkeypatch):
    import multiprocessing

    from dataplat_dagster.catalog.yaml_file import file_lock

    path = tmp_path / "dataplat.yaml"
    path.write_text("datasets: {}\n")
    ready, release = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.get_context("fork").Process(target=_hold_lock, args=(path, ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        monkeypatch.setenv("DATAPLAT_LOCK_TIMEOUT", "0.5")
        with pytest.raises(CatalogError) as caught:
            with edit_catalog(path):
                pass
        message = str(caught.value)
        assert f"{path} is being edited by process {holder.pid} on " in message
        assert "waited 0.5 s" in message and "DATAPLAT_LOCK_TIMEOUT" in message
    finally:
        release.set()
        holder.join(30)
    with file_lock(path):  # released with its holder
        pass


def _hold_lock(path, ready, release):
    from dataplat_dagster.catalog.yaml_file import file_lock

    with file_lock(path):
        ready.set()
        release.wait(60)
