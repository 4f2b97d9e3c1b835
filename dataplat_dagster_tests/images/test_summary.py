"""The image folder's detail page: summary, label chart, contact sheet, Dagster metadata, CLI text."""
import base64
import io
import json
import subprocess
import sys

import pyarrow as pa
import pytest
from dagster import MetadataValue
from dagster._core.definitions.metadata import PathMetadataValue, TableMetadataValue
from PIL import Image

from dataplat_dagster.images import summary as folder
from dataplat_dagster.images.summary import (
    contact_sheet_png,
    image_folder_metadata,
    label_chart_png,
    summarize,
    summary_text,
)
from dataplat_dagster.profile import plots
from dataplat_dagster_tests.profile.test_rendering import (
    bar_runs,
    near,
    pixels,
    png_size,
)

RED, BLUE, GREEN, YELLOW = (255, 0, 0), (0, 0, 255), (0, 160, 0), (255, 220, 0)

MANIFEST_SCHEMA = pa.schema([
    ("path", pa.string()), ("label", pa.string()), ("label_index", pa.int32()),
    ("width", pa.int32()), ("height", pa.int32()), ("format", pa.string()), ("mode", pa.string()),
    ("bytes", pa.int64()), ("sha256", pa.string()), ("duplicate", pa.bool_()), ("duplicate_of", pa.string()),
])


def make_manifest(rows: list[dict]) -> pa.Table:
    """A manifest from partial rows: a label's index follows the order labels first appear."""
    indexes: dict[str, int] = {}
    full = []
    for k, row in enumerate(rows):
        label = row.get("label")
        if label is not None:
            indexes.setdefault(label, len(indexes))
        full.append({
            "path": row["path"], "label": label, "label_index": row.get("label_index", indexes.get(label)),
            "width": row.get("width", 32), "height": row.get("height", 32),
            "format": row.get("format", "PNG"), "mode": row.get("mode", "RGB"),
            "bytes": row.get("bytes", 1000), "sha256": row.get("sha256", f"{k:064x}"),
            "duplicate": row.get("duplicate_of") is not None, "duplicate_of": row.get("duplicate_of"),
        })
    return pa.Table.from_pylist(full, schema=MANIFEST_SCHEMA)


def solid(colour, size=(30, 30)) -> Image.Image:
    return Image.new("RGB", size, colour)


@pytest.fixture(scope="module")
def folder_summary():
    rows = [
        {"path": "cat/1.jpg", "label": "cat", "width": 100, "height": 50, "format": "JPEG", "bytes": 400},
        {"path": "cat/2.jpg", "label": "cat", "width": 200, "height": 70, "format": "JPEG", "bytes": 600},
        {"path": "cat/3.jpg", "label": "cat", "width": 300, "height": 90, "format": "JPEG", "bytes": 600,
         "duplicate_of": "cat/2.jpg"},
        {"path": "dog/1.png", "label": "dog", "width": 400, "height": 60, "mode": "RGBA", "bytes": 5000},
        {"path": "cover.gif", "width": 10, "height": 80, "format": "GIF", "mode": "P", "bytes": 100,
         "duplicate_of": "cat/1.jpg"},
    ]
    skipped = [{"member": f"notes/{k}.txt", "reason": "not an image"} for k in range(150)]
    return summarize(make_manifest(rows), skipped, debris=3)


def test_summary_counts_and_statistics(folder_summary):
    summary = folder_summary
    assert summary["images"] == 5
    assert summary["labels"] == [
        {"label": "cat", "index": 0, "images": 3},
        {"label": "dog", "index": 1, "images": 1},
        {"label": None, "index": None, "images": 1},
    ]
    # Most frequent first, ties by name.
    assert list(summary["formats"].items()) == [("JPEG", 3), ("GIF", 1), ("PNG", 1)]
    assert summary["modes"] == {"RGB": 3, "P": 1, "RGBA": 1}
    assert summary["bytes"] == {"total": 6700, "min": 100, "mean": 1340, "max": 5000}
    # Five widths: the middle one; heights 50..90 give 70.
    assert summary["width"] == {"min": 10, "median": 200, "max": 400}
    assert summary["height"] == {"min": 50, "median": 70, "max": 90}
    assert summary["duplicates"] == {"count": 2, "examples": [
        {"path": "cat/3.jpg", "duplicate_of": "cat/2.jpg"},
        {"path": "cover.gif", "duplicate_of": "cat/1.jpg"},
    ]}
    assert summary["skipped"]["count"] == 150
    assert summary["skipped"]["members"][:2] == [{"member": "notes/0.txt", "reason": "not an image"},
                                                 {"member": "notes/1.txt", "reason": "not an image"}]
    assert len(summary["skipped"]["members"]) == folder.SKIPPED_MEMBERS
    assert summary["debris"] == 3
    assert json.loads(json.dumps(summary)) == summary


def test_median_of_an_even_count_and_label_order():
    rows = [{"path": f"{label}/{k}.png", "label": label, "label_index": index, "width": width, "height": 10}
            for k, (label, index, width) in enumerate([("b", 1, 10), ("a", 0, 15), ("b", 1, 40), ("a", 0, 20)])]
    summary = summarize(make_manifest(rows), [], 0)
    assert summary["width"] == {"min": 10, "median": 17.5, "max": 40}
    assert summary["height"]["median"] == 10
    # By label index, not by first appearance or by count.
    assert [item["label"] for item in summary["labels"]] == ["a", "b"]
    many = [{"path": f"x/{k}.png", "label": "x", "duplicate_of": "x/0.png"} for k in range(30)]
    examples = summarize(make_manifest(many), [], 0)["duplicates"]["examples"]
    assert len(examples) == folder.DUPLICATE_EXAMPLES and examples[0]["path"] == "x/0.png"


def test_an_empty_folder_has_a_summary_but_no_images():
    empty = make_manifest([])
    summary = summarize(empty, [{"member": "a.txt", "reason": "not an image"}], 1)
    assert summary["images"] == 0 and summary["labels"] == [] and summary["formats"] == {}
    assert summary["bytes"] == {"total": 0, "min": None, "mean": None, "max": None}
    assert summary["width"] == {"min": None, "median": None, "max": None}
    assert label_chart_png(summary) is None
    assert contact_sheet_png(empty, lambda path: pytest.fail("nothing to open")) is None
    metadata = image_folder_metadata(summary, label_chart=None, contact_sheet=None)
    assert metadata["dagster/row_count"] == MetadataValue.int(0)
    assert "label_chart" not in metadata and "contact_sheet" not in metadata
    assert "Images      0 (0 B)" in summary_text(summary)


# -- label chart --------------------------------------------------------------------


def counted(counts: list[int], root: int = 0) -> dict:
    rows = [{"path": f"c{index:03d}/{k}.png", "label": f"c{index:03d}"}
            for index, count in enumerate(counts) for k in range(count)]
    rows += [{"path": f"{k}.png"} for k in range(root)]
    return summarize(make_manifest(rows), [], 0)


def test_label_bars_are_as_long_as_the_counts():
    png = label_chart_png(counted([40, 10, 25], root=5))
    width, height = png_size(png)
    assert width == folder.CHART_WIDTH
    assert height == folder.CHART_TITLE_HEIGHT + 4 * folder.CHART_ROW_HEIGHT + folder.CHART_MARGIN
    bars = bar_runs(pixels(png), "y")
    # One bar per label in index order, the root images last.
    assert len(bars) == 4
    lengths = [length for _, _, length in bars]
    assert lengths[0] > 300
    for length, count in zip(lengths, [40, 10, 25, 5]):
        assert length == pytest.approx(lengths[0] * count / 40, abs=2)
    # Bars one row apart, each about the bar height thick.
    assert all(abs((end - start + 1) - folder.CHART_BAR_HEIGHT) <= 1 for start, end, _ in bars)
    assert bars[1][0] - bars[0][0] == folder.CHART_ROW_HEIGHT


def test_label_chart_caps_the_number_of_bars():
    labels = folder.MAX_CHART_LABELS + 10
    png = label_chart_png(counted([1 + k % 3 for k in range(labels)]))
    assert len(bar_runs(pixels(png), "y")) == folder.MAX_CHART_LABELS
    rows = folder.MAX_CHART_LABELS * folder.CHART_ROW_HEIGHT
    expected = folder.CHART_TITLE_HEIGHT + folder.CHART_NOTE_HEIGHT + rows + folder.CHART_MARGIN
    assert png_size(png)[1] == expected
    assert len(png) <= 150_000


# -- contact sheet ------------------------------------------------------------------


def open_from(images: dict[str, Image.Image]):
    return lambda path: images[path].copy()


def cell_pixel(image: Image.Image, row: int, column: int, thumb: int, dx: float = 0.5, dy: float = 0.5):
    left, top = folder.cell_origin(row, column, thumb)
    return image.getpixel((int(left + dx * (thumb - 1)), int(top + dy * (thumb - 1))))


def test_contact_sheet_rows_hold_the_first_images_of_each_label():
    images = {f"red/{k}.png": solid(RED) for k in range(3)}
    images |= {f"blue/{k}.png": solid(BLUE) for k in range(4)}
    # Fifth in path order: past per_label, so it must not be shown.
    images["blue/9.png"] = solid(YELLOW)
    images["root.png"] = solid(GREEN)
    # Manifest rows out of path order; labels indexed red 0, blue 1.
    paths = ["blue/9.png", "red/2.png", "blue/3.png", "red/0.png", "blue/0.png", "root.png",
             "blue/1.png", "red/1.png", "blue/2.png"]
    indexes = {"red": 0, "blue": 1}
    manifest = make_manifest([
        {"path": p, "label": p.split("/")[0] if "/" in p else None, "label_index": indexes.get(p.split("/")[0])}
        for p in paths
    ])
    thumb = 40
    sheet = pixels(contact_sheet_png(manifest, open_from(images), per_label=4, thumb=thumb))
    assert sheet.size == folder.sheet_size(3, 4, thumb)
    assert [near(cell_pixel(sheet, 0, c, thumb), RED) for c in range(4)] == [True, True, True, False]
    # Past a label's last image: the page background, no cell.
    assert near(cell_pixel(sheet, 0, 3, thumb), plots.BACKGROUND)
    assert all(near(cell_pixel(sheet, 1, c, thumb), BLUE) for c in range(4))
    assert near(cell_pixel(sheet, 2, 0, thumb), GREEN)
    # The label names and counts are written in the left column.
    label_column = sheet.crop((0, 0, folder.SHEET_LABEL_COLUMN, sheet.height)).convert("L")
    assert label_column.getextrema()[0] < 100


def test_thumbnails_keep_their_aspect_ratio_centred_in_the_cell():
    manifest = make_manifest([{"path": "a/wide.png", "label": "a"}])
    thumb = 60
    sheet = pixels(contact_sheet_png(manifest, open_from({"a/wide.png": solid(RED, (90, 30))}), thumb=thumb))
    assert sheet.size == folder.sheet_size(1, 1, thumb)
    # Fitted to 60 x 20 in the middle of the cell, the cell background above and below.
    assert near(cell_pixel(sheet, 0, 0, thumb), RED)
    assert near(cell_pixel(sheet, 0, 0, thumb, dy=0.1), folder.CELL_BACKGROUND)
    assert near(cell_pixel(sheet, 0, 0, thumb, dx=0.02), RED)


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display.
    solid(RED, (40, 20)).save(path, format="JPEG", exif=exif, quality=95)
    manifest = make_manifest([{"path": "a/rotated.jpg", "label": "a", "format": "JPEG"}])
    thumb = 96
    sheet = pixels(contact_sheet_png(manifest, lambda _: Image.open(path), thumb=thumb))
    left, top = folder.cell_origin(0, 0, thumb)
    cell = sheet.crop((left, top, left + thumb, top + thumb))
    red = [(x, y) for x in range(thumb) for y in range(thumb) if near(cell.getpixel((x, y)), RED, 40)]
    xs, ys = {x for x, _ in red}, {y for _, y in red}
    # Upright it is 20 x 40: fitted to 48 x 96.
    assert len(ys) == thumb and len(xs) == pytest.approx(thumb / 2, abs=2)


def test_unreadable_images_get_a_grey_cell(tmp_path):
    truncated = tmp_path / "cut.png"
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 60).save(buffer, format="PNG")
    truncated.write_bytes(buffer.getvalue()[:200])

    def open_image(path):
        if path == "a/missing.png":
            raise FileNotFoundError(path)
        if path == "a/truncated.png":
            return Image.open(truncated)
        return solid(BLUE)

    manifest = make_manifest([{"path": p, "label": "a"} for p in ("a/missing.png", "a/ok.png", "a/truncated.png")])
    thumb = 48
    sheet = pixels(contact_sheet_png(manifest, open_image, thumb=thumb))
    for column in (0, 2):
        # Grey in the corners, the X's ink through the middle.
        assert near(cell_pixel(sheet, 0, column, thumb, dx=0.05, dy=0.5), folder.FAILED_CELL)
        assert near(cell_pixel(sheet, 0, column, thumb), folder.FAILED_MARK, 30)
    assert near(cell_pixel(sheet, 0, 1, thumb), BLUE)


def test_transparency_and_16_bit_images_are_shown():
    clear = Image.new("RGBA", (30, 30), (0, 0, 0, 0))
    ramp = Image.new("I;16", (30, 30))
    ramp.putdata([1000 + 30 * x for y in range(30) for x in range(30)])
    manifest = make_manifest([{"path": "a/clear.png", "label": "a"}, {"path": "a/ramp.png", "label": "a"}])
    thumb = 30
    sheet = pixels(contact_sheet_png(manifest, open_from({"a/clear.png": clear, "a/ramp.png": ramp}), thumb=thumb))
    # Transparent pixels show the cell background, not black.
    assert near(cell_pixel(sheet, 0, 0, thumb), folder.CELL_BACKGROUND)
    # A 16-bit ramp from 1000 to 1870 is stretched over black to white, not clipped to white.
    dark, light = cell_pixel(sheet, 0, 1, thumb, dx=0), cell_pixel(sheet, 0, 1, thumb, dx=1)
    assert dark[0] < 30 and light[0] > 220


def test_contact_sheet_rows_are_capped_with_a_note():
    manifest = make_manifest([{"path": f"l{k}/{n}.png", "label": f"l{k}"} for k in range(5) for n in range(2)])
    thumb = 32
    png = contact_sheet_png(manifest, lambda _: solid(RED), max_labels=2, thumb=thumb)
    sheet = pixels(png)
    assert sheet.size == folder.sheet_size(2, 2, thumb, note=True)
    assert sheet.height == folder.sheet_size(2, 2, thumb)[1] + folder.SHEET_NOTE_HEIGHT
    note = sheet.crop((0, sheet.height - folder.SHEET_NOTE_HEIGHT, sheet.width, sheet.height)).convert("L")
    assert note.getextrema()[0] < 160
    uncapped = pixels(contact_sheet_png(manifest, lambda _: solid(RED), thumb=thumb))
    assert uncapped.size == folder.sheet_size(5, 2, thumb)


# -- metadata and text --------------------------------------------------------------


def test_metadata_entries_and_kinds(folder_summary):
    chart = label_chart_png(folder_summary)
    sheet = contact_sheet_png(make_manifest([{"path": "a/1.png", "label": "a"}]), lambda _: solid(RED))
    metadata = image_folder_metadata(folder_summary, label_chart=chart, contact_sheet=sheet, uri="s3://bucket/cats.zip")
    assert set(metadata) == {
        "dagster/row_count", "images", "labels", "label_counts", "formats", "modes", "size", "dimensions",
        "duplicates", "duplicate_examples", "skipped", "skipped_members", "debris_skipped",
        "label_chart", "contact_sheet", "dagster/uri",
    }
    assert metadata["dagster/row_count"] == MetadataValue.int(5)
    assert metadata["images"] == MetadataValue.int(5)
    # The root images are counted as images, not as a label.
    assert metadata["labels"] == MetadataValue.int(2)
    table = metadata["label_counts"]
    assert isinstance(table, TableMetadataValue)
    assert [c.name for c in table.schema.columns] == ["label", "index", "images"]
    assert [r.data for r in table.records] == [
        {"label": "cat", "index": 0, "images": 3}, {"label": "dog", "index": 1, "images": 1},
        {"label": None, "index": None, "images": 1},
    ]
    assert metadata["formats"] == MetadataValue.json({"JPEG": 3, "GIF": 1, "PNG": 1})
    assert "| 6.5 KB | 100 B | 1.3 KB | 4.9 KB |" in metadata["size"].md_str
    assert "| Width (px) | 10 | 200 | 400 |" in metadata["dimensions"].md_str
    assert metadata["duplicates"] == MetadataValue.int(2)
    assert metadata["duplicate_examples"].data[0] == {"path": "cat/3.jpg", "duplicate_of": "cat/2.jpg"}
    assert metadata["skipped"] == MetadataValue.int(150)
    assert len(metadata["skipped_members"].data) == 100
    assert metadata["debris_skipped"] == MetadataValue.int(3)
    assert metadata["label_chart"].md_str == f"![Labels](data:image/png;base64,{base64.b64encode(chart).decode()})"
    encoded = metadata["contact_sheet"].md_str.split("base64,")[1].rstrip(")")
    assert base64.b64decode(encoded) == sheet
    assert isinstance(metadata["dagster/uri"], PathMetadataValue)
    assert metadata["dagster/uri"].path == "s3://bucket/cats.zip"
    without = image_folder_metadata(folder_summary, label_chart=None, contact_sheet=None)
    assert not {"label_chart", "contact_sheet", "dagster/uri"} & set(without)


def test_summary_text_lists_labels_and_counts(folder_summary):
    text = summary_text(folder_summary)
    lines = text.splitlines()
    assert lines[0] == "Images      5 (6.5 KB)"
    assert lines[1] == "Labels      2"
    assert lines[2].split() == ["INDEX", "LABEL", "IMAGES"]
    assert [line.split() for line in lines[3:6]] == [["0", "cat", "3"], ["1", "dog", "1"], ["-", "(no", "label)", "1"]]
    assert "Formats     JPEG 3, GIF 1, PNG 1" in lines
    assert "Size        min 100 B, mean 1.3 KB, max 4.9 KB" in lines
    assert "Width       min 10, median 200, max 400 px" in lines
    assert "Duplicates  2" in lines and "  cat/3.jpg = cat/2.jpg" in lines
    assert "Skipped     150" in lines and "  notes/0.txt: not an image" in lines
    assert "  … and 50 more" in lines
    assert lines[-1] == "Debris      3 system files left out"


def test_loading_the_module_does_not_load_pillow():
    code = "import sys, dataplat_dagster.images.summary\nprint('PIL' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
