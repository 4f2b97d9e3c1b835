"""Dagster metadata and asset description for a dataset profile.

The entries use Dagster's own kinds where one exists (row count, column schema, a table
for the sample) so the asset page renders them natively; the rest is markdown, with the
PNGs from ``plots.py`` inlined as base64 data URIs.
"""

from __future__ import annotations

import base64
import json

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from dataplat_dagster.profile.report import (
    COLUMN_HEADERS,
    column_cells,
    format_value,
    named_images,
    summary_items,
)

IMAGE_ALT = {"distributions": "Distributions", "correlations": "Pearson correlation"}
_MARKDOWN_SPECIALS = "\\`*_[]|#"


def profile_metadata(profile: dict, images: dict[str, bytes]) -> dict[str, MetadataValue]:
    """Metadata for the asset detail page.

    ``images`` holds PNG bytes under ``"distributions"`` / ``"correlations"`` (a file
    extension is allowed: ``"distributions.png"``); a missing one leaves its entry out.
    """
    images = named_images(images)
    metadata = {
        "dagster/row_count": MetadataValue.int(profile["summary"]["rows"]),
        "dagster/column_schema": MetadataValue.table_schema(column_schema(profile)),
        "summary": MetadataValue.md(summary_markdown(profile)),
        "columns": MetadataValue.md(columns_markdown(profile)),
        "sample": sample_table(profile),
        "profile": MetadataValue.json({k: v for k, v in profile.items() if k != "sample"}),
    }
    for key in IMAGE_ALT:
        if key in images:
            metadata[key] = MetadataValue.md(image_markdown(key, images[key]))
    return metadata


def markdown_description(profile: dict, images: dict[str, bytes]) -> str:
    """An asset description (rendered inline on the overview page): summary and plots."""
    images = named_images(images)
    parts = [summary_markdown(profile)]
    parts += [image_markdown(key, images[key]) for key in IMAGE_ALT if key in images]
    return "\n\n".join(parts)


def column_schema(profile: dict) -> TableSchema:
    columns = [
        TableColumn(name=c["name"], type=c["arrow_type"], description=_column_description(c))
        for c in profile["columns"]
    ]
    return TableSchema(columns=columns)


def summary_markdown(profile: dict) -> str:
    items = summary_items(profile["summary"])
    return _markdown_table([label for label, _ in items], [[value for _, value in items]])


def columns_markdown(profile: dict) -> str:
    return _markdown_table(COLUMN_HEADERS, [column_cells(c) for c in profile["columns"]])


def sample_table(profile: dict) -> MetadataValue:
    sample = profile["sample"]
    types = {c["name"]: c["type"] for c in profile["columns"]}
    schema = TableSchema(columns=[TableColumn(name=n, type=types.get(n, "text")) for n in sample["columns"]])
    records = [
        TableRecord(data={name: _record_value(v) for name, v in zip(sample["columns"], row)})
        for row in sample["rows"]
    ]
    return MetadataValue.table(records=records, schema=schema)


def image_markdown(key: str, png: bytes) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    return f"![{IMAGE_ALT[key]}](data:image/png;base64,{encoded})"


def _column_description(column: dict) -> str:
    missing = f"{column['missing']:,} missing ({column['missing_pct']:.1f}%)"
    approx = "≈" if column["distinct_is_approximate"] else ""
    return f"{column['type']}; {missing}; {approx}{format_value(column['distinct'])} distinct"


def _record_value(value):
    """TableRecord takes only scalars: nested values become JSON text."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return value


def _markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = [
        "| " + " | ".join(_md(h) for h in headers) + " |",
        "|" + "---|" * len(headers),
    ]
    lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _md(text: str) -> str:
    """Text safe inside a markdown table cell: no markup, no HTML, one line."""
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = " ".join(text.split())
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIALS else ch for ch in text)
