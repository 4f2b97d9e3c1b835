"""64-bit hashes of values and rows, as DuckDB's ``hash()`` computes them.

DuckDB hashes a fixed-width value with a murmur-style mix of its bits (a narrower signed
integer or date widened to 32 bits with its sign, then to 64 without; -0.0 as 0.0 and
every NaN as one NaN), NULL to one constant, and folds the hashes of several columns into
a row's. ``value_hashes`` does the same in numpy, several times faster than a query per
batch; text and decimals are hashed by DuckDB itself. A test checks both against DuckDB,
whose distinct counts and sketches the profile reproduces.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dataplat_dagster.profile.buffers import boolean_values, fixed_width_values, valid_mask

_MULTIPLIER = np.uint64(0xD6E8FEB86659FD93)
_NULL_HASH = np.uint64(0xBF58476D1CE4E5B9)
_SHIFT = np.uint64(32)


def value_hashes(array: pa.Array) -> np.ndarray | None:
    """DuckDB's ``hash()`` of each value of a fixed-width column; None for other types."""
    bits = _bits(array)
    if bits is None:
        return None
    bits ^= bits >> _SHIFT
    bits *= _MULTIPLIER
    bits ^= bits >> _SHIFT
    bits *= _MULTIPLIER
    bits ^= bits >> _SHIFT
    if array.null_count:
        bits[~valid_mask(array)] = _NULL_HASH
    return bits


def _bits(array: pa.Array) -> np.ndarray | None:
    """The bits DuckDB hashes, as uint64 (a new array)."""
    arrow_type = array.type
    if pa.types.is_boolean(arrow_type):
        return (boolean_values(array) & valid_mask(array)).astype(np.uint64)
    if pa.types.is_floating(arrow_type) and arrow_type.bit_width in (32, 64):
        values = fixed_width_values(array)
        values = np.where(np.isnan(values), values.dtype.type("nan"), values + values.dtype.type(0))
        return values.view(f"uint{arrow_type.bit_width}").astype(np.uint64)
    if pa.types.is_integer(arrow_type) or pa.types.is_date32(arrow_type) or pa.types.is_timestamp(arrow_type):
        values = fixed_width_values(array)
        if arrow_type.bit_width == 64 or pa.types.is_unsigned_integer(arrow_type):
            return values.astype(np.uint64)
        # Narrower signed values are widened to 32 bits with their sign, then to 64 without.
        return values.astype(np.int32).view(np.uint32).astype(np.uint64)
    return None


def unique_sorted(hashes: np.ndarray) -> np.ndarray:
    """The distinct values of ``hashes``, sorted. (``np.unique`` is several times slower
    on large uint64 arrays than a sort and a comparison of neighbours.)"""
    ordered = np.sort(hashes)
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def fold_row_hashes(column_hashes: list[np.ndarray]) -> np.ndarray:
    """The hash of each row, from the hashes of its columns' values, as DuckDB's
    ``hash(a, b, ...)`` computes it."""
    result = column_hashes[0].copy()
    for hashes in column_hashes[1:]:
        result ^= result >> _SHIFT
        result *= _MULTIPLIER
        result ^= hashes
    return result
