"""PNG charts of a dataset profile (see ``profile.profile_parquet``).

The PNGs are embedded as base64 in Dagster metadata, so they are kept small: a low
dpi, a capped number of panels. matplotlib is imported inside the functions, through
its object API (``Figure`` + Agg canvas), so loading this package neither imports it
nor switches the process-wide pyplot backend.
"""

from __future__ import annotations

import datetime as dt
import io
import math

DPI = 80
GRID_COLUMNS = 3
MAX_PANELS = 24
PANEL_SIZE = (4.2, 2.9)
MAX_LABEL = 22
BAR_COLOR = "#4C78A8"
BAR_STYLE = {"color": BAR_COLOR, "edgecolor": "white", "linewidth": 0.5}


def distribution_grid_png(profile: dict) -> bytes | None:
    """One grid: a histogram per number/date column, top values per text/boolean column."""
    columns = [c for c in profile["columns"] if c.get("histogram") or c.get("top_values")]
    if not columns:
        return None
    shown = columns[:MAX_PANELS]
    rows = math.ceil(len(shown) / GRID_COLUMNS)
    ncols = min(GRID_COLUMNS, len(shown))
    figure = _figure((PANEL_SIZE[0] * ncols, PANEL_SIZE[1] * rows))
    for position, column in enumerate(shown, start=1):
        axes = figure.add_subplot(rows, ncols, position)
        if column.get("histogram"):
            _draw_histogram(axes, column)
        else:
            _draw_top_values(axes, column)
        axes.set_title(f"{_label(column['name'])} ({column['type']})", fontsize=10)
    if len(columns) > len(shown):
        figure.suptitle(f"First {len(shown)} of {len(columns)} columns", fontsize=11)
    return _png(figure)


def correlation_heatmap_png(profile: dict) -> bytes | None:
    """A Pearson heatmap of the number columns, or None with fewer than two of them."""
    pearson = (profile.get("correlations") or {}).get("pearson")
    if not pearson or len(pearson["columns"]) < 2:
        return None
    names = [_label(name) for name in pearson["columns"]]
    matrix = [[math.nan if v is None else v for v in row] for row in pearson["matrix"]]
    side = min(3.0 + 0.45 * len(names), 14.0)
    figure = _figure((side + 1.5, side))
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
    axes.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=9)
    axes.set_yticks(range(len(names)), names, fontsize=9)
    if len(names) <= 12:
        _annotate(axes, matrix)
    axes.set_title("Pearson correlation", fontsize=11)
    figure.colorbar(image, ax=axes, shrink=0.8)
    return _png(figure)


def _draw_histogram(axes, column: dict) -> None:
    edges, counts = column["histogram"]["edges"], column["histogram"]["counts"]
    if column["type"] in ("date", "timestamp"):
        _draw_time_histogram(axes, edges, counts)
    else:
        widths = [b - a for a, b in zip(edges, edges[1:])]
        axes.bar(edges[:-1], counts, width=widths or None, align="edge", **BAR_STYLE)
        axes.ticklabel_format(axis="x", style="sci", scilimits=(-4, 6), useOffset=False)
    axes.set_xlabel("value", fontsize=9)
    axes.set_ylabel("rows", fontsize=9)
    _count_axis(axes.yaxis)
    axes.tick_params(labelsize=8)


def _draw_time_histogram(axes, edges: list[str], counts: list[int]) -> None:
    from matplotlib import dates as mdates

    moments = [mdates.date2num(_parse_time(edge)) for edge in edges]
    widths = [b - a for a, b in zip(moments, moments[1:])]
    axes.bar(moments[:-1], counts, width=[w or 1.0 for w in widths], align="edge", **BAR_STYLE)
    locator = mdates.AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _draw_top_values(axes, column: dict) -> None:
    top = list(reversed(column["top_values"]))
    labels = [_label(item["value"]) for item in top]
    axes.barh(range(len(top)), [item["count"] for item in top], **BAR_STYLE)
    axes.set_yticks(range(len(top)), labels, fontsize=8)
    axes.set_xlabel("rows", fontsize=9)
    _count_axis(axes.xaxis)
    axes.tick_params(axis="x", labelsize=8)


def _count_axis(axis) -> None:
    from matplotlib.ticker import EngFormatter, MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    axis.set_major_formatter(EngFormatter(sep=""))


def _annotate(axes, matrix: list[list[float]]) -> None:
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if not math.isnan(value):
                color = "white" if abs(value) > 0.6 else "black"
                axes.text(j, i, f"{round(value, 2) + 0.0:.2f}", ha="center", va="center", fontsize=8, color=color)


def _parse_time(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if isinstance(moment, dt.datetime) else dt.datetime.combine(moment, dt.time())


def _label(text: str) -> str:
    """A short label safe from matplotlib's mathtext (``$`` in user data)."""
    text = str(text)
    if len(text) > MAX_LABEL:
        # Cut the middle: values often share a prefix and differ at the end.
        keep = (MAX_LABEL - 1) // 2
        text = text[:keep] + "…" + text[-keep:]
    return text.replace("$", r"\$")


def _figure(size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
