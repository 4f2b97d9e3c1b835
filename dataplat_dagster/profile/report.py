"""A self-contained HTML page for a dataset profile, and the text cells it shares with
the Dagster metadata (``metadata.py``).

Every value shown comes from a user's file, so all of it goes through ``html.escape``;
the images are inlined as base64 data URIs, the CSS in a ``<style>`` block.
"""

from __future__ import annotations

import base64
import html
import json
import math

NUMBER_KINDS = ("integer", "float", "decimal")
TIME_KINDS = ("date", "timestamp")
COLUMN_HEADERS = ["Column", "Type", "Missing", "Distinct", "Min", "Max", "Mean", "Std",
                  "5% / 25% / 50% / 75% / 95%", "Top values"]
TOP_VALUES_IN_TABLE = 5
IMAGE_TITLES = {"distributions": "Distributions", "correlations": "Correlations"}

CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 80rem; }
h1 { margin-bottom: 0.2rem; } .dialect { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; } details { margin: 0.4rem 0; } summary { cursor: pointer; font-weight: 600; }
.bar { background: #4c78a8; height: 0.8rem; display: inline-block; }
img { max-width: 100%; border: 1px solid #eee; }
"""


def html_report(
    name: str, profile: dict, images: dict[str, bytes], dialect_description: str | None = None
) -> str:
    """The whole page: summary, column table, per-column details, plots, correlations, sample.

    ``images`` holds PNG bytes under ``"distributions"`` / ``"correlations"`` (see
    ``named_images``; either may be missing); ``dialect_description`` says how the
    source file was read, if known.
    """
    dialect = f'<p class="dialect">{_e(dialect_description)}</p>' if dialect_description else ""
    sections = [
        f"<h1>{_e(name)}</h1>{dialect}",
        _section("Summary", _pairs_table(summary_items(profile["summary"]))),
        _section("Columns", _table(COLUMN_HEADERS, [column_cells(c) for c in profile["columns"]])),
        _section("Column details", "".join(_column_details(c) for c in profile["columns"])),
        _images(named_images(images)),
        _correlations(profile.get("correlations") or {}),
        _section("Sample", _table(profile["sample"]["columns"], _sample_cells(profile["sample"]))),
    ]
    body = "\n".join(s for s in sections if s)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(name)} profile</title><style>{CSS}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def named_images(images: dict[str, bytes]) -> dict[str, bytes]:
    """The non-empty images by name, a file extension dropped (``distributions.png``)."""
    return {key.rsplit(".", 1)[0]: png for key, png in images.items() if png}


def format_value(value) -> str:
    """A short, human text for one statistic or cell ('' for missing)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def summary_items(summary: dict) -> list[tuple[str, str]]:
    types = ", ".join(f"{kind} {count}" for kind, count in summary["column_types"].items())
    return [
        ("Rows", format_value(summary["rows"])),
        ("Columns", format_value(summary["columns"])),
        ("Missing cells", _count_pct(summary["missing_cells"], summary["missing_pct"])),
        ("Duplicate rows", _count_pct(summary["duplicate_rows"], _share(summary, "duplicate_rows"))),
        ("Column types", types),
    ]


def column_cells(column: dict) -> list[str]:
    """The cells of one row under ``COLUMN_HEADERS``, as plain text."""
    kind = column["type"]
    approx = "≈" if column["distinct_is_approximate"] else ""
    cells = [column["name"], kind, _count_pct(column["missing"], column["missing_pct"]),
             approx + format_value(column["distinct"])]
    has_range = kind in NUMBER_KINDS or kind in TIME_KINDS
    cells += [format_value(column.get("min")), format_value(column.get("max"))] if has_range else ["", ""]
    if kind in NUMBER_KINDS:
        quantiles = " / ".join(format_value(q) for q in column["quantiles"].values())
        cells += [format_value(column["mean"]), format_value(column["std"]), quantiles]
    else:
        cells += ["", "", ""]
    cells.append(top_values_text(column.get("top_values") or [], TOP_VALUES_IN_TABLE))
    return cells


def top_values_text(top_values: list[dict], limit: int) -> str:
    shown = ", ".join(f"{t['value']} ({t['count']:,})" for t in top_values[:limit])
    return shown + (", …" if len(top_values) > limit else "")


def _count_pct(count: int, pct: float) -> str:
    return f"{count:,} ({pct:.1f}%)"


def _share(summary: dict, key: str) -> float:
    return 100.0 * summary[key] / summary["rows"] if summary["rows"] else 0.0


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _section(title: str, content: str) -> str:
    return f'<section><h2>{_e(title)}</h2><div class="scroll">{content}</div></section>'


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pairs_table(pairs: list[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>"


def _column_details(column: dict) -> str:
    stats = [(h, c) for h, c in zip(COLUMN_HEADERS[1:], column_cells(column)[1:]) if c]
    stats.insert(1, ("Arrow type", column["arrow_type"]))
    if column.get("non_finite"):
        stats.append(("NaN / infinite", format_value(column["non_finite"])))
    parts = [_pairs_table(stats)]
    if column.get("histogram"):
        parts.append(_histogram_bars(column["histogram"]))
    if column.get("top_values"):
        rows = [(t["value"], t["count"]) for t in column["top_values"]]
        parts.append(_bars_table(["Value", "Rows"], rows))
    return f"<details><summary>{_e(column['name'])}</summary>{''.join(parts)}</details>"


def _histogram_bars(histogram: dict) -> str:
    edges = [format_value(edge) for edge in histogram["edges"]]
    rows = [(f"{a} – {b}", count) for a, b, count in zip(edges, edges[1:], histogram["counts"])]
    return _bars_table(["Bin", "Rows"], rows)


def _bars_table(headers: list[str], rows: list[tuple[str, int]]) -> str:
    """A table whose count column carries a CSS bar, so it reads as a chart."""
    most = max((count for _, count in rows), default=0) or 1
    body = "".join(
        f'<tr><td>{_e(label)}</td><td class="num">{count:,}</td>'
        f'<td><span class="bar" style="width:{12 * count / most:.2f}rem"></span></td></tr>'
        for label, count in rows
    )
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}<th></th></tr></thead><tbody>{body}</tbody></table>"


def _images(images: dict[str, bytes]) -> str:
    figures = [
        f'<figure><img alt="{_e(title)}" src="data:image/png;base64,'
        f'{base64.b64encode(images[key]).decode("ascii")}"></figure>'
        for key, title in IMAGE_TITLES.items()
        if images.get(key)
    ]
    return _section("Plots", "".join(figures)) if figures else ""


def _correlations(correlations: dict) -> str:
    titles = {"pearson": "Pearson correlation (numbers)", "cramers_v": "Cramér's V (categories)"}
    tables = [
        f"<h3>{_e(title)}</h3>{_matrix_table(correlations[key])}"
        for key, title in titles.items()
        if correlations.get(key)
    ]
    return _section("Correlations", "".join(tables)) if tables else ""


def _matrix_table(matrix: dict) -> str:
    names = matrix["columns"]
    head = "<th></th>" + "".join(f"<th>{_e(n)}</th>" for n in names)
    rows = "".join(
        f"<tr><th>{_e(name)}</th>" + "".join(_matrix_cell(v) for v in values) + "</tr>"
        for name, values in zip(names, matrix["matrix"])
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _matrix_cell(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return '<td class="num"></td>'
    # Red for positive, blue for negative, stronger with |value|.
    hue = 0 if value >= 0 else 220
    light = 100 - 45 * min(abs(value), 1.0)
    return f'<td class="num" style="background:hsl({hue},70%,{light:.0f}%)">{value:.2f}</td>'


def _sample_cells(sample: dict) -> list[list[str]]:
    return [[format_value(value) for value in row] for row in sample["rows"]]
