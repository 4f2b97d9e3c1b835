"""Pearson coefficients of every pair of numeric columns, from batches.

Like DuckDB's ``corr(a, b)``, a pair is computed over the rows where both columns have a
value, and a NaN or an infinity among them makes the coefficient NaN. Each batch yields,
per pair, the row count, each side's mean and sum of squared deviations and the
co-moment; batches merge with Chan's formulas, which stay exact for constant columns.
Within a batch without missing or non-finite values every column is centred on its mean
and each pair's sums are one dot product. Otherwise the sums come from products of
matrices over slices of rows (a row counts for a pair where both columns have a value),
with every column centred on its mean first; a pair whose deviations cancel out there (a
column constant on the rows the pair shares) is computed again on its own rows. The
products are written with ``einsum``: numpy's BLAS spreads even a dot product over threads,
which on a busy machine made it a hundred times slower.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

SLICE_ROWS = 1 << 16
# Below this share of the sum of squares, a pair's deviations are computed again directly.
ILL_CONDITIONED = 1e-9


@dataclass(frozen=True)
class PairInput:
    """One numeric column of a batch: its values (anything where missing), where it has a
    value and where that value is finite (None: everywhere)."""

    values: np.ndarray
    valid: np.ndarray | None
    finite: np.ndarray | None
    # Where complete: a value of the column, the mean's offset from it, and the deviations
    # from the mean (``Moments.of``'s).
    centred: tuple[float, float, np.ndarray] | None = None

    def rows(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        size = min(stop, len(self.values)) - start
        valid = np.ones(size, bool) if self.valid is None else self.valid[start:stop]
        finite = np.ones(size, bool) if self.finite is None else self.finite[start:stop]
        # As float64: arithmetic with a float32 array would stay in single precision.
        return np.asarray(self.values[start:stop], np.float64), valid, finite


class PairMoments:
    """Per pair (a, b), over the rows where both have a value: ``n``, a's mean (as an offset
    from the column's ``shift``, one of its values, so that the means of large values
    differ by exact offsets) and ``m2`` (b's are the transposes), the co-moment ``co``,
    and ``broken`` where a was NaN or infinite on such a row. All are square arrays over
    the numeric columns."""

    def __init__(self, k: int) -> None:
        self.shift: np.ndarray | None = None
        self.n = np.zeros((k, k))
        self.offset = np.zeros((k, k))
        self.m2 = np.zeros((k, k))
        self.co = np.zeros((k, k))
        self.broken = np.zeros((k, k), bool)

    @staticmethod
    def of(columns: list[PairInput]) -> PairMoments:
        result = PairMoments(len(columns))
        if len(columns) < 2:
            return result
        # Huge values overflow to infinity, as in DuckDB: the coefficient is then not finite.
        with np.errstate(over="ignore", invalid="ignore"):
            if all(c.valid is None and c.finite is None for c in columns):
                return _complete(columns)
            for start in range(0, len(columns[0].values), SLICE_ROWS):
                result.merge(_slice(columns, start, start + SLICE_ROWS))
        return result

    def merge(self, other: PairMoments) -> None:
        if other.shift is None:
            return
        if self.shift is None:
            self.shift = other.shift
        n = self.n + other.n
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            weight = np.where(n > 0, other.n / n, 0.0)
            both = np.where(n > 0, self.n * other.n / n, 0.0)
            delta = np.where(other.n > 0, (other.shift - self.shift)[:, None] + other.offset - self.offset, 0.0)
            self.co += other.co + delta * delta.T * both
            self.m2 += other.m2 + delta * delta * both
            self.offset += delta * weight
        self.n = n
        self.broken |= other.broken

    def correlations(self, indices: list[int]) -> dict:
        """``{("corr", i, j): r}`` for the columns at ``indices`` (in this order), NaN
        where DuckDB's ``corr`` is NaN or NULL."""
        result = {}
        broken = self.broken | self.broken.T
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            r = self.co / np.sqrt(self.m2 * self.m2.T)
        for a, b in itertools.combinations(range(len(indices)), 2):
            usable = self.n[a, b] > 0 and not broken[a, b]
            result[("corr", indices[a], indices[b])] = float(r[a, b]) if usable else float("nan")
        return result


def _complete(columns: list[PairInput]) -> PairMoments:
    """The moments of a batch where every column has a finite value on every row."""
    shifts, offsets, centred = zip(*(c.centred for c in columns))
    result = PairMoments(len(columns))
    result.shift = np.asarray(shifts, np.float64)
    result.offset[:] = np.asarray(offsets)[:, None]
    result.n[:] = len(centred[0])
    for a, b in itertools.combinations_with_replacement(range(len(columns)), 2):
        product = _dot(centred[a], centred[b])
        if a == b:
            result.m2[a, :] = product
        else:
            result.co[a, b] = result.co[b, a] = product
    return result


def _slice(columns: list[PairInput], start: int, stop: int) -> PairMoments:
    rows = [column.rows(start, stop) for column in columns]
    centred, present, broken, shifts = [], [], [], []
    for values, valid, finite in rows:
        usable = valid & finite
        shift = _mean(values[usable])
        centred.append(np.where(usable, values - shift, 0.0))
        present.append(valid.astype(np.float64))
        broken.append((valid & ~finite).astype(np.float64))
        shifts.append(shift)
    z, w = np.stack(centred), np.stack(present)
    n, s = _products(w, w), _products(z, w)
    result = PairMoments(len(columns))
    result.n = n
    with np.errstate(invalid="ignore", divide="ignore"):
        offset = np.where(n > 0, s / n, 0.0)
    squares = _products(z * z, w)
    result.shift = np.asarray(shifts, np.float64)
    result.offset = offset
    result.m2 = np.where(n > 0, squares - s * offset, 0.0)
    result.co = np.where(n > 0, _products(z, z) - s * offset.T, 0.0)
    result.broken = _products(np.stack(broken), w) > 0
    _recompute_ill_conditioned(result, squares, rows)
    return result


def _products(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``left @ right.T`` for arrays of one row per column."""
    return np.einsum("ai,bi->ab", left, right)


def _mean(values: np.ndarray) -> float:
    """The mean, as the first value plus the mean deviation from it: exactly the value for
    a constant column (a plain sum divided by the count may be off in the last bit)."""
    if not len(values):
        return 0.0
    return float(values[0] + (values - values[0]).mean())


def _recompute_ill_conditioned(result: PairMoments, squares: np.ndarray, rows: list) -> None:
    suspect = (squares > 0) & (result.m2 <= ILL_CONDITIONED * squares)
    for a, b in zip(*np.nonzero(suspect | suspect.T)):
        if a < b:
            _direct(result, a, b, rows[a], rows[b])


def _direct(result: PairMoments, a: int, b: int, left: tuple, right: tuple) -> None:
    """The pair's moments computed on its own rows, each side centred on its own mean."""
    shared = left[1] & right[1] & left[2] & right[2]
    x, y = left[0][shared] - result.shift[a], right[0][shared] - result.shift[b]
    mean_x, mean_y = _mean(x), _mean(y)
    dx, dy = x - mean_x, y - mean_y
    result.offset[a, b], result.offset[b, a] = mean_x, mean_y
    result.m2[a, b], result.m2[b, a] = _dot(dx, dx), _dot(dy, dy)
    result.co[a, b] = result.co[b, a] = _dot(dx, dy)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.einsum("i,i->", a, b))
