"""PNG charts of a dataset profile (see ``stats.profile_parquet``), drawn with Pillow.

The PNGs are embedded as base64 in Dagster metadata, so they are kept small: flat
colours, a capped number of panels. Pillow is imported inside the functions, so
loading this package costs nothing; drawing with it directly instead of through a
plotting library keeps the render to milliseconds, which matters because every dataset
import renders both charts.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import math
import os
from dataclasses import dataclass

GRID_COLUMNS = 3
MAX_PANELS = 24
# About 1000 px wide for three panels: shown at ~900 px in the Dagster UI, text stays ~12 px.
PANEL_WIDTH, PANEL_HEIGHT = 330, 240
HEADER_HEIGHT = 30
TITLE_HEIGHT = 30
AXIS_HEIGHT = 24
TITLE_SIZE, TICK_SIZE, NOTE_SIZE = 14, 12, 13
# At most this share of a bar-chart panel goes to the value labels.
LABEL_SHARE = 0.42
HEATMAP_SPAN = 560
CELL_MIN, CELL_MAX = 20, 64
ANNOTATE_MIN_CELL = 38
MAX_HEATMAP_LABEL = 170

BACKGROUND = (255, 255, 255)
INK = (38, 38, 38)
MUTED = (110, 110, 110)
GRID = (228, 228, 228)
BAR = (76, 120, 168)
MISSING_CELL = (215, 215, 215)
# ColorBrewer RdBu reversed: -1 dark blue, 0 near white, +1 dark red.
DIVERGING = [
    (5, 48, 97), (33, 102, 172), (67, 147, 195), (146, 197, 222), (209, 229, 240),
    (247, 247, 247), (253, 219, 199), (244, 165, 130), (214, 96, 77), (178, 24, 43),
    (103, 0, 31),
]

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation")
FONT_FILES = {False: ("DejaVuSans.ttf", "LiberationSans-Regular.ttf"),
              True: ("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf")}


def distribution_grid_png(profile: dict) -> bytes | None:
    """One grid: a histogram per number/date column, top values per text/boolean column."""
    columns = _drawable_columns(profile)
    if not columns:
        return None
    from PIL import Image, ImageDraw

    shown = columns[:MAX_PANELS]
    ncols = min(GRID_COLUMNS, len(shown))
    header = HEADER_HEIGHT if len(columns) > len(shown) else 0
    size = (PANEL_WIDTH * ncols, header + PANEL_HEIGHT * math.ceil(len(shown) / ncols))
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    if header:
        note = f"First {len(shown)} of {len(columns)} columns"
        _text(draw, (size[0] / 2, header / 2), note, _font(NOTE_SIZE, bold=True), "center", "middle")
    for position, column in enumerate(shown):
        row, col = divmod(position, ncols)
        left, top = col * PANEL_WIDTH, header + row * PANEL_HEIGHT
        _draw_panel(draw, _Box(left, top, left + PANEL_WIDTH, top + PANEL_HEIGHT), column)
    return _png(image)


def panel_kinds(profile: dict) -> list[str]:
    """What each panel of ``distribution_grid_png`` shows: histogram, top_values or distinct."""
    return [_panel_kind(column) for column in _drawable_columns(profile)[:MAX_PANELS]]


def correlation_heatmap_png(profile: dict) -> bytes | None:
    """A Pearson heatmap of the number columns, or None with fewer than two of them."""
    pearson = (profile.get("correlations") or {}).get("pearson")
    if not pearson or len(pearson["columns"]) < 2:
        return None
    from PIL import Image, ImageDraw

    layout = _HeatmapLayout.plan([_label(name) for name in pearson["columns"]])
    image = Image.new("RGB", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    _text(draw, (layout.matrix.center_x, layout.matrix.top / 2), "Pearson correlation",
          _font(TITLE_SIZE, bold=True), "center", "middle")
    _draw_cells(draw, layout, pearson["matrix"])
    _draw_heatmap_labels(image, draw, layout)
    _draw_color_scale(draw, layout)
    return _png(image)


@dataclass(frozen=True)
class _Box:
    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def center_x(self) -> float:
        return (self.left + self.right) / 2

    def inset(self, left: float = 0, top: float = 0, right: float = 0, bottom: float = 0) -> _Box:
        return _Box(self.left + left, self.top + top, self.right - right, self.bottom - bottom)


# --- distribution grid -------------------------------------------------------------


def _drawable_columns(profile: dict) -> list[dict]:
    return [c for c in profile["columns"] if c.get("histogram") or c.get("top_values")]


def _panel_kind(column: dict) -> str:
    if column.get("histogram"):
        return "histogram"
    # A key-like column (every value once): ten bars of height 1 would say nothing.
    if all(item["count"] == 1 for item in column["top_values"]):
        return "distinct"
    return "top_values"


def _draw_panel(draw, box: _Box, column: dict) -> None:
    title_font = _font(TITLE_SIZE, bold=True)
    suffix = f" ({column['type']})"
    name = _fit(_label(column["name"]), title_font, box.width - 16 - _width(suffix, title_font))
    _text(draw, (box.center_x, box.top + TITLE_HEIGHT / 2), name + suffix, title_font, "center", "middle")
    draw_body = {"histogram": _draw_histogram, "top_values": _draw_top_values, "distinct": _draw_all_distinct}
    draw_body[_panel_kind(column)](draw, box.inset(top=TITLE_HEIGHT), column)


def _draw_histogram(draw, box: _Box, column: dict) -> None:
    font = _font(TICK_SIZE)
    counts = column["histogram"]["counts"]
    edges = _edge_values(column)
    scale_top, ticks = _count_scale(max(counts))
    gutter = max(_width(_count_label(t), font) for t in ticks) + 10
    plot = box.inset(left=gutter, right=18, bottom=AXIS_HEIGHT)
    for tick in ticks:
        y = plot.bottom - tick / scale_top * plot.height
        draw.line([(plot.left, y), (plot.right, y)], fill=GRID)
        _text(draw, (plot.left - 5, y), _count_label(tick), font, "right", "middle")
    for (a, b), count in zip(_bar_spans(edges), counts):
        if count:
            x0, x1 = plot.left + a * plot.width, plot.left + b * plot.width
            gap = 1 if x1 - x0 >= 4 else 0
            height = max(1.0, count / scale_top * plot.height)
            draw.rectangle([x0 + gap, plot.bottom - height, max(x0 + gap, x1 - gap - 1), plot.bottom], fill=BAR)
    draw.line([(plot.left, plot.bottom), (plot.right, plot.bottom)], fill=INK)
    _draw_value_ticks(draw, plot, column, edges, font)


def _bar_spans(edges: list[float]) -> list[tuple[float, float]]:
    """Each bin as (start, end) in 0..1 of the axis; a single-value column fills it."""
    low, span = edges[0], edges[-1] - edges[0]
    if span <= 0:
        return [(0.0, 1.0)]
    return [((a - low) / span, (b - low) / span) for a, b in zip(edges, edges[1:])]


def _draw_value_ticks(draw, plot: _Box, column: dict, edges: list[float], font) -> None:
    """min, middle and max under the x axis, the outer ones aligned inwards."""
    if len(edges) <= 2 or edges[-1] == edges[0]:
        # One bin (one value, or one integer): its start is the only honest label.
        values, places = [edges[0]], [(plot.center_x, "center")]
    else:
        values = [edges[0], (edges[0] + edges[-1]) / 2, edges[-1]]
        places = [(plot.left, "left"), (plot.center_x, "center"), (plot.right, "right")]
    time_kind = column["type"] in ("date", "timestamp")
    if time_kind:
        labels = _time_labels(values, column["type"])
    elif column["type"] == "integer" and max(abs(v) for v in values) < 10_000:
        labels = [f"{round(v)}" for v in values]
    else:
        labels = _number_labels(values)
    for label, (x, align) in zip(labels, places):
        draw.line([(x, plot.bottom), (x, plot.bottom + 3)], fill=INK)
        _text(draw, (x, plot.bottom + 5), label, font, align)


def _draw_top_values(draw, box: _Box, column: dict) -> None:
    font = _font(TICK_SIZE)
    items = column["top_values"]
    label_width = box.width * LABEL_SHARE
    labels = _distinguishing([_label(item["value"]) for item in items], font, label_width)
    label_width = min(max(_width(label, font) for label in labels), label_width)
    plot = box.inset(left=10 + label_width + 6, right=18, bottom=AXIS_HEIGHT)
    scale_top, ticks = _count_scale(max(item["count"] for item in items))
    for tick in ticks:
        x = plot.left + tick / scale_top * plot.width
        draw.line([(x, plot.top), (x, plot.bottom)], fill=GRID)
        draw.line([(x, plot.bottom), (x, plot.bottom + 3)], fill=INK)
        _text(draw, (x, plot.bottom + 5), _count_label(tick), font, "center", bounds=box)
    row = plot.height / len(items)
    bar = min(row * 0.72, 24)
    for k, (item, label) in enumerate(zip(items, labels)):
        middle = plot.top + (k + 0.5) * row
        length = item["count"] / scale_top * plot.width
        if length:
            draw.rectangle([plot.left, middle - bar / 2, plot.left + max(length, 1), middle + bar / 2], fill=BAR)
        _text(draw, (plot.left - 6, middle), label, font, "right", "middle")
    draw.line([(plot.left, plot.top), (plot.left, plot.bottom)], fill=INK)


def _draw_all_distinct(draw, box: _Box, column: dict) -> None:
    approx = "≈" if column.get("distinct_is_approximate") else ""
    lines = [
        ("all values distinct", _font(NOTE_SIZE + 2, bold=True), INK),
        (f"{approx}{column['distinct']:,} distinct values", _font(NOTE_SIZE), MUTED),
    ]
    note = _font(TICK_SIZE)
    examples = [_label(item["value"]) for item in column["top_values"][:3]]
    lines += [(_fit(f"e.g. {value}" if k == 0 else value, note, box.width - 30), note, MUTED)
              for k, value in enumerate(examples)]
    heights = [28, 26] + [18] * len(examples)
    y = box.top + (box.height - sum(heights)) / 2
    for (text, font, color), height in zip(lines, heights):
        _text(draw, (box.center_x, y + height / 2), text, font, "center", "middle", fill=color)
        y += height


def _edge_values(column: dict) -> list[float]:
    """The bin edges as numbers (seconds since the epoch for dates and times)."""
    edges = column["histogram"]["edges"]
    if column["type"] in ("date", "timestamp"):
        return [_parse_time(edge).timestamp() for edge in edges]
    return [float(edge) for edge in edges]


def _count_scale(highest: int) -> tuple[float, list[int]]:
    """The axis top (a little above ``highest``) and 3 to 5 round ticks under it."""
    top = max(highest, 1) * 1.05
    magnitude = 10 ** max(0, math.floor(math.log10(top)) - 1)
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10, 20, 25, 50, 100) if top / (m * magnitude) <= 5)
    step = max(1, round(step))
    return top, list(range(0, math.floor(top) + 1, step))


def _count_label(count: float) -> str:
    return _compact(count) if count >= 1000 else f"{count:g}"


def _number_labels(values: list[float]) -> list[str]:
    biggest = max(abs(v) for v in values)
    if biggest >= 10_000:
        return [_compact(v) for v in values]
    span = values[-1] - values[0]
    if 0 < biggest < 1e-3:
        return [f"{v:.2g}" for v in values]
    decimals = 2 if span <= 0 else min(max(1 - math.floor(math.log10(span / 2)), 0), 6)
    return [f"{v + 0.0:.{decimals}f}" for v in values]


def _compact(value: float) -> str:
    """3 significant digits with a k/M/G/T suffix: 172k, 1.35M."""
    for power, suffix in ((12, "T"), (9, "G"), (6, "M"), (3, "k")):
        if abs(value) >= 10**power:
            return f"{value / 10**power:.3g}{suffix}"
    return f"{value:.3g}"


def _time_labels(seconds: list[float], kind: str) -> list[str]:
    span = seconds[-1] - seconds[0]
    if kind == "date" or span >= 3 * 86_400:
        pattern = "%Y-%m-%d"
    elif span >= 3600:
        pattern = "%m-%d %H:%M"
    else:
        pattern = "%H:%M:%S"
    return [dt.datetime.fromtimestamp(s, dt.timezone.utc).strftime(pattern) for s in seconds]


def _parse_time(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime.combine(moment, dt.time())
    # Naive values are wall-clock times: read them as UTC so labels show them unchanged.
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


# --- correlation heatmap -----------------------------------------------------------


@dataclass(frozen=True)
class _HeatmapLayout:
    names: list[str]
    cell: int
    label_width: float
    matrix: _Box
    size: tuple[int, int]

    @staticmethod
    def plan(names: list[str]) -> _HeatmapLayout:
        font = _font(TICK_SIZE)
        cell = max(CELL_MIN, min(CELL_MAX, HEATMAP_SPAN // len(names)))
        label_width = min(max(_width(name, font) for name in names), MAX_HEATMAP_LABEL)
        left, top = label_width + 16, 40
        side = cell * len(names)
        # Labels below the matrix run at 45°: their height is their width / √2.
        below = (label_width + TICK_SIZE) / math.sqrt(2) + 14
        size = (int(left + side + 90), int(top + side + below))
        return _HeatmapLayout(names, cell, label_width, _Box(left, top, left + side, top + side), size)


def _draw_cells(draw, layout: _HeatmapLayout, matrix: list[list[float | None]]) -> None:
    font = _font(TICK_SIZE)
    annotate = layout.cell >= ANNOTATE_MIN_CELL
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            x, y = layout.matrix.left + j * layout.cell, layout.matrix.top + i * layout.cell
            fill = MISSING_CELL if value is None else _diverging(value)
            draw.rectangle([x, y, x + layout.cell - 1, y + layout.cell - 1], fill=fill)
            if annotate and value is not None:
                ink = BACKGROUND if abs(value) > 0.6 else INK
                text = f"{round(value, 2) + 0.0:.2f}"
                _text(draw, (x + layout.cell / 2, y + layout.cell / 2), text, font, "center", "middle", fill=ink)
    # Near-zero cells are almost white: a frame keeps the matrix edge visible.
    matrix_box = layout.matrix
    draw.rectangle([matrix_box.left - 1, matrix_box.top - 1, matrix_box.right, matrix_box.bottom], outline=GRID)


def _draw_heatmap_labels(image, draw, layout: _HeatmapLayout) -> None:
    font = _font(TICK_SIZE)
    matrix = layout.matrix
    for k, name in enumerate(layout.names):
        label = _fit(name, font, layout.label_width)
        middle = matrix.top + (k + 0.5) * layout.cell
        _text(draw, (matrix.left - 6, middle), label, font, "right", "middle")
        _paste_diagonal_label(image, label, font, (matrix.left + (k + 0.5) * layout.cell, matrix.bottom + 6))


def _paste_diagonal_label(image, text: str, font, end: tuple[float, float]) -> None:
    """Draw ``text`` rising at 45° so that it ends at ``end`` (the column's foot)."""
    from PIL import Image, ImageDraw

    text = _drawable(text, font)
    width, height = max(1, math.ceil(_width(text, font))), TICK_SIZE + 6
    mask = Image.new("L", (width, height), 0)
    _text(ImageDraw.Draw(mask), (0, height / 2), text, font, "left", "middle", fill=255)
    rotated = mask.rotate(45, expand=True, resample=Image.BICUBIC)
    # After the rotation the text's end (right edge, mid-height) sits at these offsets.
    offset_x = (2 * width + height) / (2 * math.sqrt(2))
    offset_y = height / (2 * math.sqrt(2))
    x, y = round(end[0] - offset_x), round(end[1] - offset_y)
    image.paste(INK, (x, y, x + rotated.width, y + rotated.height), rotated)


def _draw_color_scale(draw, layout: _HeatmapLayout) -> None:
    font = _font(TICK_SIZE)
    matrix = layout.matrix
    bar = _Box(matrix.right + 18, matrix.top, matrix.right + 34, matrix.bottom)
    steps = max(1, int(bar.height))
    for k in range(steps):
        draw.line([(bar.left, bar.top + k), (bar.right, bar.top + k)], fill=_diverging(1 - 2 * k / steps))
    draw.rectangle([bar.left, bar.top, bar.right, bar.bottom], outline=MUTED)
    for value in (1, 0.5, 0, -0.5, -1):
        y = bar.top + (1 - value) / 2 * bar.height
        draw.line([(bar.right, y), (bar.right + 3, y)], fill=INK)
        _text(draw, (bar.right + 6, y), f"{value:g}", font, "left", "middle")


def _diverging(value: float) -> tuple[int, int, int]:
    position = (min(max(value, -1.0), 1.0) + 1) / 2 * (len(DIVERGING) - 1)
    k = min(int(position), len(DIVERGING) - 2)
    share = position - k
    a, b = DIVERGING[k], DIVERGING[k + 1]
    return tuple(round(x + (y - x) * share) for x, y in zip(a, b))


# --- text --------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _font(size: int, bold: bool = False):
    """A TrueType font from a known folder, else Pillow's own (scalable from Pillow 10.1)."""
    from PIL import ImageFont

    for folder in FONT_DIRS:
        for name in FONT_FILES[bold]:
            try:
                return ImageFont.truetype(f"{folder}/{name}", size)
            except OSError:
                continue
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def _is_scalable(font) -> bool:
    from PIL import ImageFont

    return isinstance(font, ImageFont.FreeTypeFont)


def _drawable(text: str, font) -> str:
    # The bitmap fallback font only covers Latin-1.
    return text if _is_scalable(font) else text.replace("…", "...").encode("latin-1", "replace").decode("latin-1")


def _width(text: str, font) -> float:
    return font.getlength(_drawable(text, font))


def _text(draw, xy, text: str, font, align: str = "left", valign: str = "top",
          fill=INK, bounds: _Box | None = None) -> None:
    """Draw one line aligned on ``xy``; with ``bounds``, shifted to stay inside them."""
    text = _drawable(text, font)
    width = font.getlength(text)
    x = xy[0] - {"left": 0, "center": width / 2, "right": width}[align]
    if bounds is not None:
        x = min(max(x, bounds.left + 2), bounds.right - 2 - width)
    if _is_scalable(font):
        draw.text((x, xy[1]), text, font=font, fill=fill, anchor="l" + {"top": "t", "middle": "m"}[valign])
    else:
        top, bottom = font.getbbox(text)[1::2]
        y = xy[1] - (0 if valign == "top" else (top + bottom) / 2)
        draw.text((x, y), text, font=font, fill=fill)


def _fit(text: str, font, width: float) -> str:
    """``text`` cut in the middle until it fits ``width`` pixels.

    The middle goes first because values often share a prefix and differ at the end.
    """
    if _width(text, font) <= width:
        return text
    low, high = 0, len(text)
    while low < high:
        keep = (low + high + 1) // 2
        if _width(_middle_cut(text, keep), font) <= width:
            low = keep
        else:
            high = keep - 1
    return _middle_cut(text, low)


def _distinguishing(labels: list[str], font, width: float) -> list[str]:
    """Labels fitted to ``width``, first dropping as much as needed of a shared prefix.

    Values like "Premium steel widget model 14 extra large" differ in the middle, which a
    plain middle cut would hide.
    """
    def fits(candidates: list[str]) -> bool:
        return all(_width(label, font) <= width for label in candidates)

    if fits(labels):
        return labels
    shared = len(os.path.commonprefix(labels)) if len(labels) > 1 else 0
    # Keep at least one character of each label after the cut.
    shared = min([shared] + [len(label) - 1 for label in labels])
    if shared >= 4:
        cuts = [cut for cut in _word_starts(labels[0], shared) if fits(_drop_prefix(labels, cut))]
        labels = _drop_prefix(labels, cuts[0] if cuts else shared)
    return [_fit(label, font, width) for label in labels]


def _word_starts(text: str, limit: int) -> list[int]:
    """Where words start in ``text[:limit]`` (and ``limit`` itself), so cuts fall between words."""
    return [k for k in range(1, limit) if text[k - 1] == " " and text[k] != " "] + [limit]


def _drop_prefix(labels: list[str], cut: int) -> list[str]:
    return ["…" + label[cut:] for label in labels]


def _middle_cut(text: str, keep: int) -> str:
    head = (keep + 1) // 2
    return text[:head] + "…" + text[len(text) - (keep - head):]


def _label(text) -> str:
    """One line of text (newlines and tabs would break the layout); blank text shows as ""."""
    return " ".join(str(text).split()) or '""'


def _png(image) -> bytes:
    from PIL import Image

    # A 256-colour palette: flat fills and anti-aliased text lose nothing visible, and
    # the PNG shrinks about threefold (it is inlined as base64 in every materialization).
    palette = image.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    # The octree averages each colour bucket; put the background back to exact white so
    # the image edge does not show on a white page.
    colors = palette.getpalette()
    entry = 3 * palette.getpixel((0, 0))
    colors[entry:entry + 3] = BACKGROUND
    palette.putpalette(colors)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    return buffer.getvalue()
