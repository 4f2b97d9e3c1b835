import base64
import datetime as dt
import io
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import MetadataValue, TableRecord
from PIL import Image, ImageFont

from dataplat_dagster.profile import plots
from dataplat_dagster.profile.metadata import markdown_description, profile_metadata
from dataplat_dagster.profile.plots import correlation_heatmap_png, distribution_grid_png, panel_kinds
from dataplat_dagster.profile.stats import profile_parquet
from dataplat_dagster.profile.report import html_report

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


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE)
    return Image.open(io.BytesIO(png)).size


def text_column(name: str, counts: list[int]) -> dict:
    top = [{"value": f"{name}-{k}", "count": count} for k, count in enumerate(counts)]
    return {"name": name, "type": "text", "distinct": len(counts), "top_values": top}


def number_column(name: str, bins: int = 4) -> dict:
    return {"name": name, "type": "float", "histogram": {"edges": list(range(bins + 1)), "counts": [3] * bins}}


@pytest.fixture
def fresh_fonts():
    plots._font.cache_clear()
    yield
    plots._font.cache_clear()


def test_images_are_small_pngs(images):
    width, height = png_size(images["distributions"])
    # 7 drawable columns (tags is profiled as text): three rows of three panels.
    assert (width, height) == (3 * plots.PANEL_WIDTH, 3 * plots.PANEL_HEIGHT)
    width, height = png_size(images["correlations"])
    assert 200 <= width <= 1200 and 200 <= height <= 1200
    for png in images.values():
        assert 2_000 <= len(png) <= 150_000


def test_each_column_gets_the_panel_of_its_kind(profile):
    assert panel_kinds(profile) == ["histogram", "histogram", "histogram", "top_values", "top_values", "histogram", "top_values"]


def test_key_like_column_gets_a_note_instead_of_bars():
    profile = {"columns": [text_column("id", [1] * 10), text_column("city", [5, 1, 1])]}
    assert panel_kinds(profile) == ["distinct", "top_values"]
    assert png_size(distribution_grid_png(profile)) == (2 * plots.PANEL_WIDTH, plots.PANEL_HEIGHT)


def test_grid_caps_the_number_of_panels():
    profile = {"columns": [number_column(f"n{k}") for k in range(plots.MAX_PANELS + 5)]}
    assert len(panel_kinds(profile)) == plots.MAX_PANELS
    rows = plots.MAX_PANELS // plots.GRID_COLUMNS
    assert png_size(distribution_grid_png(profile))[1] == plots.HEADER_HEIGHT + rows * plots.PANEL_HEIGHT


def test_odd_histograms_and_values_still_render():
    profile = {"columns": [
        {"name": "one", "type": "integer", "histogram": {"edges": [7.0, 8.0], "counts": [400]}},
        {"name": "zero", "type": "float", "histogram": {"edges": [0.0, 0.0], "counts": [0]}},
        {"name": "at", "type": "timestamp", "histogram": {
            "edges": ["2024-01-01T11:00:00+00:00", "2024-01-01T11:30:00+00:00", "2024-01-01T12:00:00+00:00"],
            "counts": [2, 1]}},
        {"name": "multi\nline", "type": "text", "top_values": [{"value": "a\tb\nc" * 20, "count": 2}]},
    ]}
    assert png_size(distribution_grid_png(profile)) == (3 * plots.PANEL_WIDTH, 2 * plots.PANEL_HEIGHT)


def test_heatmap_needs_two_number_columns_and_tolerates_gaps():
    one = {"columns": [], "correlations": {"pearson": {"columns": ["a"], "matrix": [[1.0]]}}}
    assert correlation_heatmap_png(one) is None
    gaps = {"columns": [], "correlations": {"pearson": {"columns": ["a", "b" * 60], "matrix": [[1.0, None], [None, None]]}}}
    assert png_size(correlation_heatmap_png(gaps))[0] > 100
    many = [f"c{k}" for k in range(30)]
    wide = {"columns": [], "correlations": {"pearson": {"columns": many, "matrix": [[0.5] * 30 for _ in many]}}}
    assert len(correlation_heatmap_png(wide)) <= 150_000


def test_labels_are_cut_in_the_middle_to_fit():
    font = plots._font(plots.TICK_SIZE)
    label = plots._fit("customer-" + "x" * 80 + "-2024", font, 120)
    assert label.startswith("cust") and label.endswith("2024") and "…" in label
    assert font.getlength(label) <= 120
    values = ["Premium steel widget model 14 large", "Premium steel widget model 2 large"]
    # The shared prefix goes, word by word, only as far as needed to fit.
    room = font.getlength("…model 14 large")
    assert plots._distinguishing(values, font, room) == ["…model 14 large", "…model 2 large"]
    room = font.getlength("…14 large")
    assert plots._distinguishing(values, font, room) == ["…14 large", "…2 large"]


def test_images_render_without_system_fonts(profile, monkeypatch, fresh_fonts):
    monkeypatch.setattr(plots, "FONT_DIRS", ())
    assert png_size(distribution_grid_png(profile))[0] == 3 * plots.PANEL_WIDTH
    plots._font.cache_clear()

    def without_freetype(size=None):
        if size is not None:
            raise ImportError("FreeType not available")
        return ImageFont.load_default_imagefont()

    monkeypatch.setattr(ImageFont, "load_default", without_freetype)
    assert isinstance(plots._font(12), ImageFont.ImageFont)
    assert distribution_grid_png(profile).startswith(PNG_SIGNATURE)
    assert correlation_heatmap_png(profile).startswith(PNG_SIGNATURE)


def test_no_images_without_columns_to_draw(tmp_path):
    path = tmp_path / "one.parquet"
    pq.write_table(pa.table({"n": pa.array([None, None], pa.int64())}), path)
    empty = profile_parquet(path)
    assert distribution_grid_png(empty) is None
    assert correlation_heatmap_png(empty) is None
    assert panel_kinds(empty) == []


def test_neither_loading_nor_rendering_imports_matplotlib():
    code = (
        "import sys, dataplat_dagster.profile.metadata, dataplat_dagster.profile.report, "
        "dataplat_dagster.profile.stats\n"
        "from dataplat_dagster.profile import plots\n"
        "column = {'name': 'n', 'type': 'integer', 'histogram': {'edges': [0, 1, 2], 'counts': [1, 2]}}\n"
        "pearson = {'columns': ['a', 'b'], 'matrix': [[1.0, 0.5], [0.5, 1.0]]}\n"
        "assert plots.distribution_grid_png({'columns': [column]})\n"
        "assert plots.correlation_heatmap_png({'columns': [], 'correlations': {'pearson': pearson}})\n"
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


# -- what the pixels say ------------------------------------------------------------


def pixels(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


def near(colour: tuple[int, int, int], expected: tuple[int, int, int], tolerance: int = 12) -> bool:
    """The palette quantization moves a flat colour by a few units at most."""
    return all(abs(a - b) <= tolerance for a, b in zip(colour, expected))


def bar_runs(image: Image.Image, axis: str) -> list[tuple[int, int, int]]:
    """The bars, as (start, end, length) along ``axis``: runs of x (vertical bars) or y
    (horizontal ones) holding bar-coloured pixels; length is the longest line of them."""
    width, height = image.size
    data = image.load()
    outer, inner = (range(width), range(height)) if axis == "x" else (range(height), range(width))
    lengths = []
    for a in outer:
        points = (data[a, b] if axis == "x" else data[b, a] for b in inner)
        lengths.append(sum(near(p, plots.BAR) for p in points))
    runs, start = [], None
    for k, length in enumerate([*lengths, 0]):
        if length and start is None:
            start = k
        elif not length and start is not None:
            runs.append((start, k - 1, max(lengths[start:k])))
            start = None
    return runs


def test_histogram_bars_stand_where_the_counts_say():
    counts = [2, 0, 8, 4, 1]
    column = {"name": "n", "type": "float", "histogram": {"edges": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "counts": counts}}
    bars = bar_runs(pixels(distribution_grid_png({"columns": [column]})), "x")
    # One bar per non-empty bin, left to right; the empty bin leaves a bin-wide gap.
    assert len(bars) == 4
    width = bars[0][1] - bars[0][0] + 1
    assert all(abs((end - start + 1) - width) <= 1 for start, end, _ in bars)
    gap = bars[1][0] - bars[0][1]
    assert abs(gap - (bars[2][0] - bars[1][1]) - width) <= 2
    # Heights in proportion to the counts (the tallest bin sets the scale).
    heights = [length for _, _, length in bars]
    tallest = heights[1]
    assert tallest > 100
    for height, count in zip(heights, [2, 8, 4, 1]):
        assert height == pytest.approx(tallest * count / 8, abs=2)


def test_top_value_bars_are_as_long_as_the_counts():
    column = text_column("city", [50, 30, 10])
    bars = bar_runs(pixels(distribution_grid_png({"columns": [column]})), "y")
    assert len(bars) == 3
    lengths = [length for _, _, length in bars]
    # Drawn top to bottom from the most frequent, lengths proportional to the counts.
    assert lengths[0] > 100
    assert lengths[1] == pytest.approx(lengths[0] * 30 / 50, abs=2)
    assert lengths[2] == pytest.approx(lengths[0] * 10 / 50, abs=2)


def test_blank_panels_have_no_bars():
    # A count of 0 draws nothing: the chart must not invent bars.
    column = {"name": "n", "type": "float", "histogram": {"edges": [0.0, 1.0, 2.0], "counts": [0, 0]}}
    assert bar_runs(pixels(distribution_grid_png({"columns": [column]})), "x") == []


def test_heatmap_cells_have_the_colour_of_their_value():
    names = ["a", "b", "c"]
    matrix = [[1.0, -0.8, None], [-0.8, 1.0, 0.0], [None, 0.0, 1.0]]
    image = pixels(correlation_heatmap_png({"columns": [], "correlations": {"pearson": {"columns": names, "matrix": matrix}}}))
    layout = plots._HeatmapLayout.plan(names)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            # Near the cell's corner: the value's annotation is written in its middle.
            x = layout.matrix.left + j * layout.cell + 4
            y = layout.matrix.top + i * layout.cell + 4
            expected = plots.MISSING_CELL if value is None else plots._diverging(value)
            assert near(image.getpixel((int(x), int(y))), expected), (i, j, image.getpixel((int(x), int(y))))
    # +1 is dark red, -0.8 blue: the scale's ends are not confused.
    red, blue = plots._diverging(1.0), plots._diverging(-0.8)
    assert red[0] > red[2] + 50 and blue[2] > blue[0] + 50
