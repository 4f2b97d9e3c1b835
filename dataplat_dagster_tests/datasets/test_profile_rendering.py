import base64
import datetime as dt
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import MetadataValue, TableRecord

from dataplat_dagster.datasets.metadata import markdown_description, profile_metadata
from dataplat_dagster.datasets.plots import correlation_heatmap_png, distribution_grid_png
from dataplat_dagster.datasets.profile import profile_parquet
from dataplat_dagster.datasets.report import html_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOSTILE = "<script>alert(1)</script>|*$x$"


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    path = tmp_path_factory.mktemp("profile") / "data.parquet"
    rows = 300
    pq.write_table(pa.table({
        "amount": [float(i % 97) for i in range(rows)],
        "double": [2.0 * (i % 97) for i in range(rows)],
        "count": [i % 7 for i in range(rows)],
        HOSTILE: [["a", "b", "<b>c</b>"][i % 3] for i in range(rows)],
        "flag": [i % 4 == 0 for i in range(rows)],
        "day": [dt.date(2024, 1, 1) + dt.timedelta(days=i % 40) for i in range(rows)],
        "tags": [[i % 2, 1] for i in range(rows)],
    }), path)
    return profile_parquet(path, sample_rows=5)


@pytest.fixture(scope="module")
def images(profile):
    return {"distributions": distribution_grid_png(profile), "correlations": correlation_heatmap_png(profile)}


def test_images_are_small_pngs(images):
    for png in images.values():
        assert png.startswith(PNG_SIGNATURE)
        assert len(png) <= 150_000


def test_no_images_without_columns_to_draw(tmp_path):
    path = tmp_path / "one.parquet"
    pq.write_table(pa.table({"n": pa.array([None, None], pa.int64())}), path)
    empty = profile_parquet(path)
    assert distribution_grid_png(empty) is None
    assert correlation_heatmap_png(empty) is None


def test_loading_the_package_does_not_import_matplotlib():
    code = (
        "import sys, dataplat_dagster.datasets.plots, dataplat_dagster.datasets.metadata, "
        "dataplat_dagster.datasets.report, dataplat_dagster.datasets.profile; "
        "print('matplotlib' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_html_report_escapes_data_and_inlines_images(profile, images):
    page = html_report("<shop>", profile, images, dialect_description="CSV; delimiter ';'")
    assert "<script>" not in page and "<b>c</b>" not in page and "<shop>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;c&lt;/b&gt;" in page
    assert "CSV; delimiter &#x27;;&#x27;" in page
    assert page.count("data:image/png;base64,") == 2
    assert base64.b64encode(images["correlations"]).decode() in page
    for section in ("Summary", "Columns", "Column details", "Plots", "Correlations", "Sample"):
        assert f"<h2>{section}</h2>" in page


def test_html_report_without_images_has_no_plot_section(profile):
    page = html_report("shop", profile, {})
    assert "<h2>Plots</h2>" not in page and "data:image" not in page


def test_metadata_entries_and_kinds(profile, images):
    metadata = profile_metadata(profile, images)
    assert set(metadata) == {
        "dagster/row_count", "dagster/column_schema", "summary", "columns", "sample",
        "distributions", "correlations", "profile",
    }
    assert metadata["dagster/row_count"] == MetadataValue.int(300)
    schema = metadata["dagster/column_schema"].schema
    assert [c.name for c in schema.columns] == [c["name"] for c in profile["columns"]]
    assert schema.columns[0].type == "double"
    assert schema.columns[0].description == "float; 0 missing (0.0%); 97 distinct"
    assert "sample" not in metadata["profile"].data
    assert metadata["profile"].data["summary"]["rows"] == 300


def test_sample_records_hold_only_scalars(profile, images):
    sample = profile_metadata(profile, images)["sample"]
    assert len(sample.records) == 5
    first = sample.records[0]
    assert isinstance(first, TableRecord)
    assert first.data["day"] == "2024-01-01"
    assert first.data["tags"] == "[0, 1]"
    assert first.data["flag"] is True
    assert [c.name for c in sample.schema.columns][:2] == ["amount", "double"]


def test_markdown_escapes_data_and_embeds_images(profile, images):
    metadata = profile_metadata(profile, images)
    columns = metadata["columns"].md_str
    assert "<script>" not in columns
    assert r"&lt;script&gt;alert(1)&lt;/script&gt;\|\*$x$" in columns
    assert "| amount | float | 0 (0.0%) | 97 | 0 | 96 | 46.68 | 28.63 |" in columns
    summary = metadata["summary"].md_str
    assert "| 300 | 7 | 0 (0.0%) | 0 (0.0%) |" in summary
    encoded = base64.b64encode(images["distributions"]).decode()
    assert metadata["distributions"].md_str == f"![Distributions](data:image/png;base64,{encoded})"


def test_images_keyed_by_file_name_are_accepted(profile, images):
    by_file = {f"{key}.png": png for key, png in images.items()}
    assert profile_metadata(profile, by_file)["correlations"] == profile_metadata(profile, images)["correlations"]
    assert html_report("shop", profile, by_file).count("data:image/png;base64,") == 2


def test_markdown_description_holds_summary_and_both_images(profile, images):
    text = markdown_description(profile, images)
    assert text.startswith("| Rows | Columns |")
    assert text.count("](data:image/png;base64,") == 2
    assert markdown_description(profile, {}).count("data:image") == 0
