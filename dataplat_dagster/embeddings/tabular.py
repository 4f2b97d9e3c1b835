"""Tabular rows as vectors: a deterministic embedding that needs no torch.

Each embedded column becomes a block of features, and every block weighs the same, so that
no column dominates because of its unit or its number of values:

- numbers, dates, timestamps and durations are z-scored (mean and standard deviation over
  the whole dataset) and clipped to ±5 standard deviations, so that one outlier moves its
  own row and not the whole space; a null sits at the mean;
- booleans and strings with at most ``ONE_HOT_MAX`` distinct values are one-hot encoded,
  scaled by 1/√2 so that two different values lie 1 apart, as one standard deviation does;
- other strings (free text, codes) are a signed hashed bag of their lower-case words in
  ``TEXT_BUCKETS`` buckets, normalized to length 1/√2: rows sharing words are close;
- a column with nulls adds a null flag of the same weight;
- identifiers are left out unless ``--columns`` names them: a text column whose first
  ``IDENTIFIER_SAMPLE`` values are single words and nearly all distinct (an order number says
  nothing about which rows are alike, and its hashed words would only add noise).

The features are then rotated onto their principal components (the covariance is summed in
one streaming pass, in float64) and the first ``dimension`` kept, with each component's sign
fixed so that a run gives the same vectors as the last. The distances between rows are those
of the feature space as far as ``dimension`` components carry them (all of them when there
are fewer features). Three passes over the Parquet file (statistics, covariance, vectors),
one batch at a time: memory does not grow with the rows.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataplat_dagster.errors import DataplatError

DEFAULT_DIMENSION = 32
ONE_HOT_MAX = 32
TEXT_BUCKETS = 64
CLIP_SIGMAS = 5.0
BATCH_ROWS = 65_536
IDENTIFIER_SAMPLE = 10_000
_WEIGHT = 1 / math.sqrt(2)
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class _Column:
    name: str
    kind: str  # "number", "category" or "text"
    count: int = 0
    total: float = 0.0
    squares: float = 0.0
    nulls: int = 0
    values: Counter = field(default_factory=Counter)
    categories: list = field(default_factory=list)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    @property
    def std(self) -> float:
        if self.count < 2:
            return 1.0
        variance = max(self.squares / self.count - self.mean**2, 0.0)
        return math.sqrt(variance) or 1.0

    @property
    def width(self) -> int:
        body = 1 if self.kind == "number" else len(self.categories) if self.kind == "category" else TEXT_BUCKETS
        return body + (1 if self.nulls else 0)

    def describe(self) -> str:
        if self.kind == "number":
            return f"{self.name}: number, z-scored (mean {self.mean:.6g}, std {self.std:.6g})"
        if self.kind == "category":
            return f"{self.name}: category, one-hot over {len(self.categories)} values"
        return f"{self.name}: text, hashed words in {TEXT_BUCKETS} buckets"


def column_kind(arrow_type: pa.DataType) -> str | None:
    """How a column of this type is embedded, or None when it cannot be (binary, nested)."""
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "number"
    if pa.types.is_temporal(arrow_type):
        return "number"
    if pa.types.is_boolean(arrow_type):
        return "category"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "text"  # a category once its distinct values are counted
    return None


def is_text(arrow_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def check_columns(schema: pa.Schema, columns: list[str] | None, kind: str) -> list[str]:
    """The columns to embed (all embeddable ones when ``columns`` is None), or a DataplatError
    that says which are missing or of the wrong type, and what there is."""
    missing = [name for name in columns or [] if name not in schema.names]
    if missing:
        raise DataplatError(
            f"No column {', '.join(map(repr, missing))} in the dataset (its columns: {', '.join(schema.names)}); "
            "fix --columns."
        )
    if kind == "text":
        texts = [f.name for f in schema if is_text(f.type)]
        chosen = columns or texts
        wrong = [name for name in chosen if name not in texts]
        if not chosen or wrong:
            raise DataplatError(
                f"Text embeddings take text columns; {', '.join(map(repr, wrong)) or 'the dataset has none'}"
                f"{' is not' if len(wrong) == 1 else ' are not' if wrong else ''} (text columns: {', '.join(texts) or 'none'})."
            )
        return chosen
    chosen = columns or schema.names
    usable = [name for name in chosen if column_kind(schema.field(name).type) is not None]
    if not usable:
        raise DataplatError(
            "None of the chosen columns can be embedded (numbers, dates, booleans and text can; "
            f"{', '.join(chosen)} cannot): choose others with --columns."
        )
    return chosen


class TabularEncoder:
    """Fitted on a Parquet file's columns; then turns its batches into vectors."""

    def __init__(self, path, columns: list[str] | None = None, dimension: int = DEFAULT_DIMENSION):
        self.path = path
        schema = pq.read_schema(path)
        names = check_columns(schema, columns, "tabular")
        self.skipped = [name for name in names if column_kind(schema.field(name).type) is None]
        if columns is None:
            self.skipped += _identifiers(path, [n for n in names if n not in self.skipped and is_text(schema.field(n).type)])
        self.columns = [_Column(name, column_kind(schema.field(name).type)) for name in names if name not in self.skipped]
        if not self.columns:
            raise DataplatError(f"Only identifiers to embed ({', '.join(self.skipped)}): choose columns with --columns.")
        self.dimension = dimension
        self.rows = pq.read_metadata(path).num_rows
        self._fit()

    # -- fitting -------------------------------------------------------------------------

    def batches(self) -> Iterator[pa.RecordBatch]:
        file = pq.ParquetFile(self.path)
        yield from file.iter_batches(batch_size=BATCH_ROWS, columns=[c.name for c in self.columns])

    def _fit(self) -> None:
        for batch in self.batches():
            for column in self.columns:
                _observe(column, batch.column(column.name))
        for column in self.columns:
            if column.kind == "text" and column.values is not None and len(column.values) <= ONE_HOT_MAX:
                column.kind = "category"
            if column.kind == "category":
                column.categories = sorted(column.values, key=lambda value: (-column.values[value], str(value)))
            column.values = Counter()
        self.features = sum(column.width for column in self.columns)
        covariance = np.zeros((self.features, self.features))
        total = np.zeros(self.features)
        for batch in self.batches():
            block = self.features_of(batch)
            covariance += block.T @ block
            total += block.sum(axis=0)
        n = max(self.rows, 1)
        self.center = total / n
        covariance = covariance / n - np.outer(self.center, self.center)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        order = np.argsort(eigenvalues)[::-1][: min(self.dimension, self.features)]
        components = eigenvectors[:, order]
        # eigh may return either sign of a vector: make the largest loading positive.
        signs = np.sign(components[np.abs(components).argmax(axis=0), np.arange(components.shape[1])])
        self.components = (components * np.where(signs == 0, 1, signs)).astype(np.float64)
        explained = eigenvalues[order].clip(min=0).sum() / max(eigenvalues.clip(min=0).sum(), 1e-12)
        self.explained_variance = float(explained)

    # -- encoding ------------------------------------------------------------------------

    def features_of(self, batch: pa.RecordBatch) -> np.ndarray:
        """The weighted features of a batch's rows (before the rotation), float64."""
        blocks = [_features(column, batch.column(column.name)) for column in self.columns]
        return np.hstack(blocks) if blocks else np.zeros((batch.num_rows, 0))

    def encode(self, batch: pa.RecordBatch) -> np.ndarray:
        """The vectors of a batch's rows: float32, ``(rows, dimension)``."""
        return ((self.features_of(batch) - self.center) @ self.components).astype(np.float32)

    @property
    def output_dimension(self) -> int:
        return self.components.shape[1]

    def description(self) -> dict:
        return {
            "method": "z-scored numbers, one-hot categories, hashed text words, weighted per column, then PCA",
            "features": self.features,
            "dimension": self.output_dimension,
            "explained_variance": round(self.explained_variance, 4),
            "columns": [column.describe() for column in self.columns],
            "skipped_columns": self.skipped,
        }


def _identifiers(path, names: list[str]) -> list[str]:
    """The text columns among ``names`` that look like identifiers (see the module's docstring)."""
    if not names:
        return []
    sample = next(pq.ParquetFile(path).iter_batches(batch_size=IDENTIFIER_SAMPLE, columns=names), None)
    found = []
    for name in names if sample is not None else []:
        values = [v for v in _plain_array(sample.column(name)).to_pylist() if v is not None]
        if len(values) >= 20 and len(set(values)) >= 0.95 * len(values) and all(len(_WORD.findall(v)) <= 1 for v in values):
            found.append(name)
    return found


def _observe(column: _Column, array: pa.Array) -> None:
    array = _plain_array(array)
    column.nulls += array.null_count
    if column.kind == "number":
        values = _numbers(array)
        finite = values[np.isfinite(values)]
        column.count += finite.size
        column.total += float(finite.sum())
        column.squares += float((finite**2).sum())
        return
    if column.values is None:  # more distinct values than one-hot takes: text
        return
    for item in pc.value_counts(array.drop_null()).to_pylist():
        column.values[item["values"]] += item["counts"]
    if column.kind == "text" and len(column.values) > ONE_HOT_MAX:
        column.values = None


def _plain_array(array) -> pa.Array:
    """One contiguous array, dictionary-decoded."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.dictionary_decode() if pa.types.is_dictionary(array.type) else array


def _numbers(array: pa.Array) -> np.ndarray:
    """A numeric, temporal or decimal column as float64, NaN for nulls."""
    kind = array.type
    if pa.types.is_temporal(kind):
        if pa.types.is_date32(kind):
            array = array.cast(pa.int32())
        elif pa.types.is_date64(kind):
            array = array.cast(pa.int64())
        else:
            array = array.view(pa.int64()) if pa.types.is_timestamp(kind) or pa.types.is_duration(kind) else array.cast(pa.int64())
    return array.cast(pa.float64()).to_numpy(zero_copy_only=False)


def _features(column: _Column, array: pa.Array) -> np.ndarray:
    array = _plain_array(array)
    rows = len(array)
    nulls = array.is_null().to_numpy(zero_copy_only=False) if column.nulls else None
    if column.kind == "number":
        values = (_numbers(array) - column.mean) / column.std
        values = np.nan_to_num(values, nan=0.0, posinf=CLIP_SIGMAS, neginf=-CLIP_SIGMAS).clip(-CLIP_SIGMAS, CLIP_SIGMAS)
        body = values[:, None]
    elif column.kind == "category":
        body = np.zeros((rows, len(column.categories)))
        codes = pc.index_in(array, value_set=pa.array(column.categories, type=array.type)).fill_null(-1).to_numpy()
        found = codes >= 0
        body[np.nonzero(found)[0], codes[found]] = _WEIGHT
    else:
        body = _hashed_words(array)
    if nulls is not None:
        return np.hstack([body, nulls[:, None] * _WEIGHT])
    return body


def _hashed_words(array: pa.Array) -> np.ndarray:
    """A signed hashed bag of lower-case words per text, normalized to length 1/√2 (CRC32:
    the same buckets in every process, unlike Python's salted ``hash``).

    The words are ``_WORD``'s in ``str.lower()``'s text. ASCII texts are lower-cased and split
    by pyarrow (where a word is ``[0-9a-z_]+``), each distinct word hashed once; other texts go
    through Python's ``lower`` and ``re`` once per distinct text, as Unicode's case and word
    rules are Python's to keep. Word counts are small integers: summed in any order, the
    float64 result is the same."""
    array = _plain_array(array)
    rows = len(array)
    out = np.zeros((rows, TEXT_BUCKETS))
    ascii_rows = pc.fill_null(pc.string_is_ascii(array), True).to_numpy(zero_copy_only=False)
    where = np.flatnonzero(ascii_rows)
    words = pc.split_pattern_regex(pc.ascii_lower(array.filter(pa.array(ascii_rows))), r"[^0-9a-z_]+")
    parents = where[pc.list_parent_indices(words).to_numpy()]
    flat = pc.list_flatten(words)
    present = pc.greater(pc.binary_length(flat), 0).to_numpy(zero_copy_only=False)
    if present.any():
        encoded = pc.dictionary_encode(flat.filter(pa.array(present)))
        bucket, sign = _buckets(encoded.dictionary.to_pylist())
        codes = encoded.indices.to_numpy()
        cells = parents[present] * TEXT_BUCKETS + bucket[codes]
        out = np.bincount(cells, weights=sign[codes], minlength=rows * TEXT_BUCKETS).reshape(rows, TEXT_BUCKETS)
    others = np.flatnonzero(~ascii_rows)
    if others.size:
        encoded = pc.dictionary_encode(array.filter(pa.array(~ascii_rows)))
        distinct = np.zeros((len(encoded.dictionary), TEXT_BUCKETS))
        for position, text in enumerate(encoded.dictionary.to_pylist()):
            bucket, sign = _buckets(_WORD.findall(text.lower()))
            np.add.at(distinct[position], bucket, sign)
        out[others] = distinct[encoded.indices.to_numpy()]
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0) * _WEIGHT


def _buckets(words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each word's bucket and sign (+1 when CRC32's top bit is set, else -1)."""
    codes = np.array([zlib.crc32(word.encode()) for word in words], dtype=np.uint32)
    return (codes % TEXT_BUCKETS).astype(np.int64), np.where(codes & 0x80000000, 1.0, -1.0)
