"""Arrow arrays as numpy arrays and back, through their buffers.

pyarrow 26 imports pandas (0.3 s, a third of a small import's run) the first time an
array meets numpy its own way: ``Array.to_numpy``, ``np.asarray(array)``, ``pa.array``
of a numpy array or a list, and ``take`` with numpy indices. The profile only needs
fixed-width values, validity bitmaps and index arrays, which these helpers read and build
from the buffers directly (without a copy where the layout allows).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def fixed_width_values(array: pa.Array) -> np.ndarray:
    """The values buffer of a fixed-width array, without a copy (anything in missing slots)."""
    arrow_type = array.type
    if pa.types.is_date32(arrow_type):
        dtype = np.dtype(np.int32)
    elif pa.types.is_timestamp(arrow_type):
        dtype = np.dtype(np.int64)
    else:
        dtype = np.dtype(arrow_type.to_pandas_dtype())
    if not len(array):
        return np.empty(0, dtype)
    return np.frombuffer(array.buffers()[1], dtype, len(array), array.offset * dtype.itemsize)


def bits(buffer: pa.Buffer | None, offset: int, length: int) -> np.ndarray:
    """A bitmap (validity or boolean values) as a bool array of ``length`` (a new array);
    no buffer means every bit is set."""
    if buffer is None:
        return np.ones(length, bool)
    packed = np.frombuffer(buffer, np.uint8, (offset + length + 7) // 8)
    return np.unpackbits(packed, bitorder="little")[offset:offset + length].view(bool)


def valid_mask(array: pa.Array) -> np.ndarray:
    """Where the array has a value."""
    return bits(array.buffers()[0] if array.null_count else None, array.offset, len(array))


def boolean_values(array: pa.BooleanArray) -> np.ndarray:
    """The values of a boolean array (anything in missing slots)."""
    return bits(array.buffers()[1], array.offset, len(array))


def floats_with_nan(array: pa.Array) -> np.ndarray:
    """A floating-point array's values, NaN where missing (a copy only when some are)."""
    values = fixed_width_values(array)
    if not array.null_count:
        return values
    values = values.copy()
    values[~valid_mask(array)] = np.nan
    return values


def int64_array(values: np.ndarray) -> pa.Array:
    """Integers (positions for ``take``, counts) as an int64 Arrow array."""
    values = np.ascontiguousarray(values, np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])
