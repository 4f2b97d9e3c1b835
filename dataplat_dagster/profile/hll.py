"""DuckDB's HyperLogLog, over value hashes computed by DuckDB's ``hash()``.

``approx_count_distinct(x)`` in DuckDB hashes each non-null ``x`` with ``hash()``, keeps
the register sketch below and estimates with Otmar Ertl's improved estimator ("New
cardinality estimation algorithms for HyperLogLog sketches", arXiv:1702.01284, algorithm
6). Building the same registers from the same hashes gives the same estimate, so the
profile's distinct counts do not depend on which of its passes computed them. Registers
are a plain ``uint8`` array: sketches of parts of a table merge by ``np.maximum``.
"""

from __future__ import annotations

import math

import numpy as np

# 2^10 registers: the precision of DuckDB 2.0's approx_count_distinct (a test checks that
# the estimates agree, so a DuckDB that changes it is noticed).
P = 10
Q = 64 - P
M = 1 << P
ALPHA = 0.721347520444481703680  # 1 / (2 ln 2)


def empty() -> np.ndarray:
    return np.zeros(M, np.uint8)


def registers(hashes: np.ndarray, floor: int = 0) -> np.ndarray:
    """The registers of a sketch of ``hashes`` (uint64): the low ``P`` bits pick the
    register, which keeps the most trailing zeros (plus one) seen in the other bits. With
    ``floor`` (the smallest register of a sketch this one will be merged into), hashes
    that cannot raise a register above it are skipped first, in one cheap pass."""
    hashes = np.asarray(hashes, np.uint64)
    if floor > 0:
        rank_bits = np.uint64(((1 << min(floor, Q)) - 1) << P)
        hashes = hashes[(hashes & rank_bits) == 0]
    # In place, on one copy: a batch's hashes are a few MB, and each pass is memory-bound.
    rest = hashes >> np.uint64(P)
    rest |= np.uint64(1 << Q)  # the guard bit caps the count at Q
    lowest = np.negative(rest)
    lowest &= rest
    lowest -= np.uint64(1)
    rank = np.bitwise_count(lowest)
    rank += np.uint8(1)
    result = empty()
    np.maximum.at(result, (hashes & np.uint64(M - 1)).astype(np.intp), rank)
    return result


def estimate(sketch: np.ndarray) -> int:
    """The cardinality estimate of a sketch, rounded as DuckDB rounds it."""
    counts = np.bincount(sketch, minlength=Q + 2)
    z = M * _tau((M - counts[Q]) / M)
    for k in range(Q, 0, -1):
        z = (z + counts[k]) * 0.5
    z += M * _sigma(counts[0] / M)
    return math.floor(ALPHA * M * M / z + 0.5)


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous, z = z, z + x * y
        y += y
        if z == previous:
            return z


def _tau(x: float) -> float:
    if x in (0.0, 1.0):
        return 0.0
    y, z = 1.0, 1.0 - x
    while True:
        x = math.sqrt(x)
        y *= 0.5
        previous, z = z, z - (1.0 - x) ** 2 * y
        if z == previous:
            return z / 3
