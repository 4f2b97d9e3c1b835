"""What the detail page of an image folder shows: counts, a label chart, a contact sheet.

An image folder is a zip of labelled images; its manifest (one row per image: path,
label, size, format, checksum, duplicate flag) is the input here. ``summarize`` turns it
into a small JSON-serialisable dict, which the charts, the Dagster metadata and the CLI's
``image-folder show`` all read, so they cannot disagree.

Design choices:

* The charts follow the dataset profile's (``profile/plots.py``): drawn with Pillow,
  same fonts, palette and text fitting, imported from there rather than copied, and
  Pillow and Dagster are imported inside the functions so loading this module is cheap.
* Every image is bounded whatever the folder holds: the label chart shows at most
  ``MAX_CHART_LABELS`` bars, the contact sheet at most ``max_labels`` rows of
  ``per_label`` thumbnails, each with a note saying what was left out.
* The contact sheet shows the first images of each label in path order, not a random
  sample: the same folder always renders the same sheet, and a reader can find a
  thumbnail's file from its position.
* A thumbnail never breaks the sheet: an image that fails to open or decode becomes a
  grey cell with an X, since one corrupt file must not hide the other hundred.
"""

from __future__ import annotations

import base64
import contextlib

from dataplat_dagster.cli.output import human_size

# The dataset profile's drawing helpers and palette, so both kinds of asset page match.
from dataplat_dagster.profile import plots
from dataplat_dagster.profile.plots import (
    BACKGROUND,
    BAR,
    INK,
    MISSING_CELL,
    MUTED,
    _Box,
)

NO_LABEL = "(no label)"
DUPLICATE_EXAMPLES = 20
SKIPPED_MEMBERS = 100

# Label chart: about as wide as one profile grid row of two panels; one bar per label.
CHART_WIDTH = 720
CHART_TITLE_HEIGHT = 34
CHART_NOTE_HEIGHT = 24
CHART_ROW_HEIGHT = 22
CHART_BAR_HEIGHT = 14
CHART_MARGIN = 12
MAX_CHART_LABELS = 60
# At most this share of the chart width goes to the label names.
CHART_LABEL_SHARE = 0.38

# Contact sheet: label name and count in a left column, then one row of thumbnails.
SHEET_LABEL_COLUMN = 170
SHEET_GAP = 6
SHEET_NOTE_HEIGHT = 30
NAME_SIZE, COUNT_SIZE = 13, 12
# Dark enough that the 256-colour quantization of the PNG does not merge it with the
# page's white: a thumbnail narrower than its cell keeps a visible frame.
CELL_BACKGROUND = (236, 236, 236)
FAILED_CELL = MISSING_CELL
FAILED_MARK = MUTED

IMAGE_ALT = {"label_chart": "Labels", "contact_sheet": "Contact sheet"}


# --- summary -----------------------------------------------------------------------


def summarize(manifest, skipped: list[dict], debris: int) -> dict:
    """Counts and statistics of an image folder's manifest (a ``pyarrow.Table``).

    ``skipped`` lists the zip members that were not taken as images (``{"member",
    "reason"}``), ``debris`` how many files were dropped as system clutter.
    """
    import pyarrow.compute as pc

    duplicates = manifest.filter(pc.fill_null(manifest["duplicate"], False))
    examples = duplicates.sort_by("path").slice(0, DUPLICATE_EXAMPLES)
    mean_bytes = pc.mean(manifest["bytes"]).as_py()
    return {
        "images": manifest.num_rows,
        "labels": _label_counts(manifest),
        "formats": _value_counts(manifest["format"]),
        "modes": _value_counts(manifest["mode"]),
        "bytes": {
            "total": pc.sum(manifest["bytes"]).as_py() or 0,
            "min": pc.min(manifest["bytes"]).as_py(),
            # Whole bytes: a fraction of one says nothing about file sizes.
            "mean": None if mean_bytes is None else round(mean_bytes),
            "max": pc.max(manifest["bytes"]).as_py(),
        },
        "width": _spread(manifest["width"]),
        "height": _spread(manifest["height"]),
        "duplicates": {
            "count": duplicates.num_rows,
            "examples": [
                {"path": row["path"], "duplicate_of": row["duplicate_of"]}
                for row in examples.select(["path", "duplicate_of"]).to_pylist()
            ],
        },
        "skipped": {
            "count": len(skipped),
            "members": [{"member": s["member"], "reason": s["reason"]} for s in skipped[:SKIPPED_MEMBERS]],
        },
        "debris": int(debris),
    }


def _label_counts(manifest) -> list[dict]:
    """Images per label, by label index; the images at the zip's root (no label) last."""
    if manifest.num_rows == 0:
        return []
    grouped = manifest.group_by(["label", "label_index"]).aggregate([("path", "count")])
    rows = [
        {"label": label, "index": index, "images": count}
        for label, index, count in zip(
            grouped["label"].to_pylist(), grouped["label_index"].to_pylist(), grouped["path_count"].to_pylist()
        )
    ]
    rows.sort(key=lambda r: (r["label"] is None, r["index"] is None, r["index"] or 0, r["label"] or ""))
    return rows


def _value_counts(column) -> dict[str, int]:
    """Counts per value, the most frequent first (a missing value counts as "unknown")."""
    import pyarrow.compute as pc

    counts = pc.value_counts(column).to_pylist()
    pairs = [("unknown" if item["values"] is None else item["values"], item["counts"]) for item in counts]
    return dict(sorted(pairs, key=lambda pair: (-pair[1], pair[0])))


def _spread(column) -> dict:
    """min, median and max; the median of an even count is the mean of the middle two."""
    import pyarrow.compute as pc

    if pc.count(column).as_py() == 0:
        return {"min": None, "median": None, "max": None}
    median = pc.quantile(column, q=0.5, interpolation="midpoint")[0].as_py()
    return {
        "min": pc.min(column).as_py(),
        "median": int(median) if float(median).is_integer() else median,
        "max": pc.max(column).as_py(),
    }


# --- label chart -------------------------------------------------------------------


def label_chart_png(summary: dict) -> bytes | None:
    """Horizontal bars, one per label in label order, as long as its image count."""
    labels = summary["labels"]
    if not summary["images"] or not labels:
        return None
    from PIL import Image, ImageDraw

    shown = labels[:MAX_CHART_LABELS]
    note = CHART_NOTE_HEIGHT if len(labels) > len(shown) else 0
    size = (CHART_WIDTH, CHART_TITLE_HEIGHT + note + CHART_ROW_HEIGHT * len(shown) + CHART_MARGIN)
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    named = named_label_count(summary)
    title = f"Images per label ({summary['images']:,} images, {named:,} label{'' if named == 1 else 's'})"
    plots._text(draw, (CHART_WIDTH / 2, CHART_TITLE_HEIGHT / 2), title,
                plots._font(plots.TITLE_SIZE, bold=True), "center", "middle")
    if note:
        plots._text(draw, (CHART_WIDTH / 2, CHART_TITLE_HEIGHT + note / 2),
                    f"First {len(shown)} of {len(labels)} labels", plots._font(plots.NOTE_SIZE),
                    "center", "middle", fill=MUTED)
    top = CHART_TITLE_HEIGHT + note
    _draw_label_bars(draw, _Box(CHART_MARGIN, top, CHART_WIDTH - CHART_MARGIN, size[1] - CHART_MARGIN), shown)
    return plots._png(image)


def _draw_label_bars(draw, box: _Box, labels: list[dict]) -> None:
    font = plots._font(plots.TICK_SIZE)
    names = [NO_LABEL if item["label"] is None else plots._label(item["label"]) for item in labels]
    name_width = min(max(plots._width(name, font) for name in names), box.width * CHART_LABEL_SHARE)
    names = plots._distinguishing(names, font, name_width)
    counts = [f"{item['images']:,}" for item in labels]
    # Room after the longest bar for its count, so the longest bar sets the scale.
    count_room = max(plots._width(count, font) for count in counts) + 8
    plot = box.inset(left=name_width + 8, right=count_room)
    highest = max(item["images"] for item in labels)
    for k, (item, name, count) in enumerate(zip(labels, names, counts)):
        middle = plot.top + (k + 0.5) * CHART_ROW_HEIGHT
        end = plot.left + max(item["images"] / highest * plot.width, 1)
        draw.rectangle([plot.left, middle - CHART_BAR_HEIGHT / 2, end, middle + CHART_BAR_HEIGHT / 2], fill=BAR)
        colour = MUTED if item["label"] is None else INK
        plots._text(draw, (plot.left - 6, middle), name, font, "right", "middle", fill=colour)
        plots._text(draw, (end + 5, middle), count, font, "left", "middle")
    draw.line([(plot.left, plot.top), (plot.left, plot.top + CHART_ROW_HEIGHT * len(labels))], fill=INK)


def named_label_count(summary: dict) -> int:
    return sum(1 for item in summary["labels"] if item["label"] is not None)


# --- contact sheet -----------------------------------------------------------------


def contact_sheet_png(manifest, open_image, *, per_label: int = 8, max_labels: int = 24,
                      thumb: int = 96) -> bytes | None:
    """One row per label: its name and count, then its first ``per_label`` images.

    ``open_image(path)`` returns a ``PIL.Image.Image`` for a manifest path (the caller
    reads from local disk or object storage). Rows follow the label index, the images
    without a label last as "(no label)"; past ``max_labels`` rows a note says how many
    labels were left out. None for an empty manifest.
    """
    rows = _sheet_rows(manifest, per_label)
    if not rows:
        return None
    from PIL import Image, ImageDraw

    shown = rows[:max_labels]
    columns = max(len(row["paths"]) for row in shown)
    note = SHEET_NOTE_HEIGHT if len(rows) > len(shown) else 0
    size = sheet_size(len(shown), columns, thumb, note=bool(note))
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    for r, row in enumerate(shown):
        _draw_row_label(draw, row, cell_origin(r, 0, thumb)[1], thumb)
        for c, path in enumerate(row["paths"]):
            left, top = cell_origin(r, c, thumb)
            draw.rectangle([left, top, left + thumb - 1, top + thumb - 1], fill=CELL_BACKGROUND)
            picture = _thumbnail(open_image, path, thumb)
            if picture is None:
                _draw_failed_cell(draw, left, top, thumb)
            else:
                image.paste(picture, (left + (thumb - picture.width) // 2, top + (thumb - picture.height) // 2))
    if note:
        hidden = len(rows) - len(shown)
        text = f"and {hidden:,} more label{'' if hidden == 1 else 's'}"
        plots._text(draw, (size[0] / 2, size[1] - note / 2), text, plots._font(plots.NOTE_SIZE),
                    "center", "middle", fill=MUTED)
    # The charts' 256-colour palette PNG: a quarter of a full-colour one's size, and at
    # thumbnail size photos lose little to it (it is inlined as base64 in the metadata).
    return plots._png(image)


def sheet_size(rows: int, columns: int, thumb: int, *, note: bool = False) -> tuple[int, int]:
    """The contact sheet's pixel size for this many rows and thumbnail columns."""
    width = SHEET_LABEL_COLUMN + columns * (thumb + SHEET_GAP) + SHEET_GAP
    height = SHEET_GAP + rows * (thumb + SHEET_GAP) + (SHEET_NOTE_HEIGHT if note else 0)
    return width, height


def cell_origin(row: int, column: int, thumb: int) -> tuple[int, int]:
    """The top-left pixel of a thumbnail cell of the contact sheet."""
    return (SHEET_LABEL_COLUMN + SHEET_GAP + column * (thumb + SHEET_GAP),
            SHEET_GAP + row * (thumb + SHEET_GAP))


def _sheet_rows(manifest, per_label: int) -> list[dict]:
    """Each label's count and first ``per_label`` paths, in the order of ``_label_counts``."""
    if manifest.num_rows == 0:
        return []
    ordered = manifest.sort_by("path")
    paths: dict[tuple, list[str]] = {}
    for path, label, index in zip(ordered["path"].to_pylist(), ordered["label"].to_pylist(),
                                  ordered["label_index"].to_pylist()):
        kept = paths.setdefault((label, index), [])
        if len(kept) < per_label:
            kept.append(path)
    return [{**item, "paths": paths[(item["label"], item["index"])]} for item in _label_counts(manifest)]


def _draw_row_label(draw, row: dict, top: int, thumb: int) -> None:
    name_font = plots._font(NAME_SIZE, bold=True)
    count_font = plots._font(COUNT_SIZE)
    room = SHEET_LABEL_COLUMN - 2 * SHEET_GAP
    name = NO_LABEL if row["label"] is None else plots._fit(plots._label(row["label"]), name_font, room)
    middle = top + thumb / 2
    plots._text(draw, (SHEET_GAP, middle - 9), name, name_font, "left", "middle",
                fill=MUTED if row["label"] is None else INK)
    count = f"{row['images']:,} image{'' if row['images'] == 1 else 's'}"
    plots._text(draw, (SHEET_GAP, middle + 9), count, count_font, "left", "middle", fill=MUTED)


def _thumbnail(open_image, path: str, thumb: int):
    """The image at ``path`` upright, in RGB, fitted in ``thumb`` x ``thumb``; None if unreadable."""
    from PIL import Image, ImageOps

    # Any failure (missing object, unknown format, truncated or hostile file) costs one
    # cell, whatever the caller's storage or Pillow's decoders raise.
    try:
        original = open_image(path)
    except Exception:  # noqa: BLE001
        return None
    try:
        # JPEG decoders can scale by 1/2..1/8 while decoding: a 24-megapixel photo then
        # costs a fraction of a full decode. A square request suits either orientation.
        original.draft(None, (thumb, thumb))
        upright = ImageOps.exif_transpose(original)
        rgb = _as_rgb(upright)
        enlarge = rgb.width < thumb and rgb.height < thumb
        # Tiny images (28 px digits) are enlarged with sharp pixels rather than blurred.
        resample = Image.Resampling.NEAREST if enlarge else Image.Resampling.LANCZOS
        return ImageOps.contain(rgb, (thumb, thumb), method=resample)
    except Exception:  # noqa: BLE001
        return None
    finally:
        # The thumbnail is a copy: the source file or stream can go now.
        with contextlib.suppress(OSError):
            original.close()


def _as_rgb(image):
    """RGB for display: transparency over the cell background, 16-bit and float stretched."""
    from PIL import Image

    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        # Pillow clips these to 8 bits (a 16-bit depth map or scan turns white): stretch
        # the image's own range over 0..255 instead, as image viewers do.
        wide = image.convert("F" if image.mode == "F" else "I")
        low, high = wide.getextrema()
        scale = 255 / (high - low) if high > low else 0
        return wide.point(lambda v: (v - low) * scale).convert("L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, CELL_BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def _draw_failed_cell(draw, left: int, top: int, thumb: int) -> None:
    right, bottom = left + thumb - 1, top + thumb - 1
    draw.rectangle([left, top, right, bottom], fill=FAILED_CELL)
    inset = thumb // 4
    draw.line([(left + inset, top + inset), (right - inset, bottom - inset)], fill=FAILED_MARK, width=3)
    draw.line([(left + inset, bottom - inset), (right - inset, top + inset)], fill=FAILED_MARK, width=3)


# --- Dagster metadata --------------------------------------------------------------


def image_folder_metadata(summary: dict, *, label_chart: bytes | None, contact_sheet: bytes | None,
                          uri: str | None = None) -> dict:
    """Metadata for the image folder's materialization (its asset detail page)."""
    from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

    from dataplat_dagster.profile.metadata import _markdown_table

    schema = TableSchema(columns=[
        TableColumn(name="label", type="string", description="empty for the images at the folder's root"),
        TableColumn(name="index", type="int"),
        TableColumn(name="images", type="int"),
    ])
    records = [TableRecord(data={"label": item["label"], "index": item["index"], "images": item["images"]})
               for item in summary["labels"]]
    size, width, height = summary["bytes"], summary["width"], summary["height"]
    metadata = {
        "dagster/row_count": MetadataValue.int(summary["images"]),
        "images": MetadataValue.int(summary["images"]),
        "labels": MetadataValue.int(named_label_count(summary)),
        "label_counts": MetadataValue.table(records=records, schema=schema),
        "formats": MetadataValue.json(summary["formats"]),
        "modes": MetadataValue.json(summary["modes"]),
        "size": MetadataValue.md(_markdown_table(
            ["Total", "Min", "Mean", "Max"],
            [[human_size(size[key]) for key in ("total", "min", "mean", "max")]])),
        "dimensions": MetadataValue.md(_markdown_table(
            ["", "Min", "Median", "Max"],
            [["Width (px)", *_cells(width)], ["Height (px)", *_cells(height)]])),
        "duplicates": MetadataValue.int(summary["duplicates"]["count"]),
        "duplicate_examples": MetadataValue.json(summary["duplicates"]["examples"]),
        "skipped": MetadataValue.int(summary["skipped"]["count"]),
        "skipped_members": MetadataValue.json(summary["skipped"]["members"]),
        "debris_skipped": MetadataValue.int(summary["debris"]),
    }
    for key, png in (("label_chart", label_chart), ("contact_sheet", contact_sheet)):
        if png:
            metadata[key] = MetadataValue.md(image_markdown(key, png))
    if uri:
        metadata["dagster/uri"] = MetadataValue.path(uri)
    return metadata


def image_markdown(key: str, png: bytes) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    return f"![{IMAGE_ALT[key]}](data:image/png;base64,{encoded})"


def _cells(spread: dict) -> list[str]:
    return [_number(spread[key]) for key in ("min", "median", "max")]


# --- text --------------------------------------------------------------------------


def summary_text(summary: dict) -> str:
    """The summary as aligned plain text, for ``image-folder show``."""
    size, duplicates, skipped = summary["bytes"], summary["duplicates"], summary["skipped"]
    lines = [
        _line("Images", f"{summary['images']:,} ({human_size(size['total'])})"),
        _line("Labels", f"{named_label_count(summary):,}"),
    ]
    if summary["labels"]:
        names = [NO_LABEL if item["label"] is None else item["label"] for item in summary["labels"]]
        indexes = ["-" if item["index"] is None else str(item["index"]) for item in summary["labels"]]
        counts = [f"{item['images']:,}" for item in summary["labels"]]
        name_width = max(len("LABEL"), *map(len, names))
        index_width = max(len("INDEX"), *map(len, indexes))
        count_width = max(len("IMAGES"), *map(len, counts))
        lines.append(f"  {'INDEX'.rjust(index_width)}  {'LABEL'.ljust(name_width)}  {'IMAGES'.rjust(count_width)}")
        lines += [f"  {i.rjust(index_width)}  {n.ljust(name_width)}  {c.rjust(count_width)}".rstrip()
                  for n, i, c in zip(names, indexes, counts)]
    lines += [
        _line("Formats", _counts_text(summary["formats"])),
        _line("Modes", _counts_text(summary["modes"])),
        _line("Size", ", ".join(f"{key} {human_size(size[key])}" for key in ("min", "mean", "max"))),
        _line("Width", _spread_text(summary["width"])),
        _line("Height", _spread_text(summary["height"])),
        _line("Duplicates", f"{duplicates['count']:,}"),
    ]
    lines += [f"  {d['path']} = {d['duplicate_of']}" for d in duplicates["examples"]]
    if duplicates["count"] > len(duplicates["examples"]):
        lines.append(f"  … and {duplicates['count'] - len(duplicates['examples']):,} more")
    lines.append(_line("Skipped", f"{skipped['count']:,}"))
    lines += [f"  {s['member']}: {s['reason']}" for s in skipped["members"]]
    if skipped["count"] > len(skipped["members"]):
        lines.append(f"  … and {skipped['count'] - len(skipped['members']):,} more")
    lines.append(_line("Debris", f"{summary['debris']:,} system files left out"))
    return "\n".join(lines)


def _line(name: str, value: str) -> str:
    return f"{name:<12}{value}".rstrip()


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in counts.items()) or "-"


def _spread_text(spread: dict) -> str:
    if spread["min"] is None:
        return "-"
    return f"min {_number(spread['min'])}, median {_number(spread['median'])}, max {_number(spread['max'])} px"


def _number(value) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"
