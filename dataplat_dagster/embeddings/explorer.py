"""The explorer page: one self-contained HTML file to look at a set of embeddings, like
TensorFlow's Embedding Projector but offline and without a server.

Each point of the 2D map is drawn on a canvas; the page colours points by a column, shows a
point's values (and thumbnail) on hover, lists its nearest neighbours on click, and selects
points with a box or a lasso. Everything it needs is inside the file: the script and style
(``explorer_page.js``, ``explorer_page.html``, beside this module) and the data, so it opens
from a laptop, an object store or a mail attachment alike, and requests nothing.

The data stays small at 100,000 points: arrays travel as base64 of their little-endian bytes
(decoded in the page with typed arrays), text columns as a dictionary of their values plus
one code per point, numeric columns as float32. The data sits in a
``<script type="application/json">`` with ``<``, ``>`` and ``&`` escaped, and the page
renders values as text only, so no value can turn into markup or script.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# A categorical column gets one palette colour per value for its most frequent values; the
# rest share "other". Integer columns with at most this many values are colored as
# categories too (a class number, a year), not along a scale.
TOP_CATEGORIES = 20

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@dataclass
class ExplorerData:
    title: str                      # e.g. "Embeddings of dataset 'sales' (project shop)"
    ids: list[str]                  # one per point: a row's 0-based position as text, or an image's path
    x: np.ndarray                   # float32, shape (n,), the 2D map coordinates
    y: np.ndarray                   # float32, shape (n,)
    columns: dict[str, list]        # values per point to colour by and to show on hover
    neighbors: np.ndarray           # int32, shape (n, k): nearest neighbours (indexes), nearest first; -1 = none
    distances: np.ndarray           # float32, shape (n, k): their distances
    color_by: str | None = None     # the column coloured by at first (None: one colour)
    thumbnails: dict[int, str] | None = None  # point index -> "data:image/jpeg;base64,..."
    info: dict[str, str] = field(default_factory=dict)  # lines of the side panel: model, metric, map...


def explorer_html(data: ExplorerData) -> str:
    """The page of ``data``, as one HTML document."""
    payload = _payload(data)
    text = json.dumps(payload, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    # Inside a <script> element, "</script>" or "<!--" in a value would end or derail the
    # element: no "<" may appear raw. ">" and "&" follow for good measure; U+2028/2029 are
    # already \u escapes with ensure_ascii.
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    parts = {
        "TITLE": html.escape(data.title),
        "SCRIPT": _asset("explorer_page.js"),
        "DATA": text,
    }
    # One pass, so nothing substituted is searched for placeholders again.
    return _PLACEHOLDER.sub(lambda m: parts[m.group(1)], _asset("explorer_page.html"))


def write_explorer(data: ExplorerData, path) -> None:
    """Write the page of ``data`` to ``path`` (UTF-8): whole or not at all."""
    path = Path(path)
    page = explorer_html(data)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(page, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _asset(name: str) -> str:
    return (Path(__file__).parent / name).read_text(encoding="utf-8")


def _payload(data: ExplorerData) -> dict:
    import numpy as np

    n = len(data.ids)
    x = np.asarray(data.x, dtype="<f4").reshape(-1)
    y = np.asarray(data.y, dtype="<f4").reshape(-1)
    neighbors = np.asarray(data.neighbors, dtype="<i4")
    distances = np.asarray(data.distances, dtype="<f4")
    if len(x) != n or len(y) != n or neighbors.ndim != 2 or neighbors.shape[0] != n or distances.shape != neighbors.shape:
        raise ValueError(f"ExplorerData: {n} ids, but x {x.shape}, y {y.shape}, neighbors {neighbors.shape}, "
                         f"distances {distances.shape}.")
    columns = []
    for name, values in data.columns.items():
        if len(values) != n:
            raise ValueError(f"ExplorerData: column {name!r} has {len(values)} values for {n} points.")
        columns.append(_column(str(name), values))
    names = [c["name"] for c in columns]
    thumbnails = {str(int(i)): uri for i, uri in (data.thumbnails or {}).items()
                  if 0 <= int(i) < n and isinstance(uri, str) and uri.startswith("data:image/")}
    return {
        "title": str(data.title),
        "info": [[str(k), str(v)] for k, v in data.info.items()],
        "n": n,
        "k": int(neighbors.shape[1]),
        # Row positions as ids ("0", "1", ...) are rebuilt in the page rather than shipped.
        "ids": None if _row_positions(data.ids) else [str(i) for i in data.ids],
        "x": _b64(x),
        "y": _b64(y),
        "neighbors": _b64(neighbors),
        "distances": _b64(distances),
        "columns": columns,
        "colorBy": data.color_by if data.color_by in names else None,
        "thumbnails": thumbnails,
    }


def _row_positions(ids: list) -> bool:
    return all(isinstance(v, str) and v == str(i) for i, v in enumerate(ids))


def _b64(array) -> str:
    import numpy as np

    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _column(name: str, values: list) -> dict:
    """One column, encoded as numbers (float32, NaN for null) or as categories (its values,
    most frequent first, and one code per point)."""
    import numpy as np

    present = [v for v in values if v is not None]
    is_int = all(isinstance(v, int) and not isinstance(v, bool) for v in present)
    is_number = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
    if present and is_number and not (is_int and len(set(present)) <= TOP_CATEGORIES):
        numbers = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        small = numbers.astype("<f4")
        # Float32 halves the size; integers it would round (ids, large counts) keep float64.
        exact = not is_int or np.array_equal(small.astype(np.float64), numbers, equal_nan=True)
        finite = numbers[np.isfinite(numbers)]
        # The colour scale spans the bulk of the values, so one outlier does not flatten it.
        low, high = (np.percentile(finite, [2, 98]).tolist() if len(finite) else (0.0, 0.0))
        if low == high and len(finite):
            low, high = float(finite.min()), float(finite.max())
        return {"name": name, "kind": "number", "type": "f4" if exact else "f8",
                "data": _b64(small if exact else numbers.astype("<f8")),
                "low": low, "high": high, "integer": is_int}
    codes_of: dict = {}
    codes = np.fromiter((codes_of.setdefault(_text(v), len(codes_of)) for v in values), dtype=np.int64, count=len(values))
    labels = list(codes_of)
    counts = np.bincount(codes, minlength=len(labels)) if len(values) else np.zeros(len(labels), dtype=np.int64)
    # Most frequent first (ties by first appearance), null last: the palette's colours go to
    # the top values, and code >= TOP_CATEGORIES means "other".
    order = sorted(range(len(labels)), key=lambda c: (labels[c] is None, -counts[c], c))
    remap = np.empty(len(labels), dtype=np.int64)
    remap[order] = np.arange(len(labels))
    codes = remap[codes] if len(values) else codes
    small = len(labels) <= 0xFFFF
    return {"name": name, "kind": "category", "values": [labels[c] for c in order],
            "type": "u2" if small else "i4", "data": _b64(codes.astype("<u2" if small else "<i4"))}


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)
