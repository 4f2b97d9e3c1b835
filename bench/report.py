"""Printing a benchmark's results: aligned tables and PASS/MISS verdicts (standard library
only, so that a bench script importing it stays light)."""

from __future__ import annotations


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(headers: list[str], rows: list[list]) -> None:
    """Figures right-aligned; the first column and a last ``notes`` column left-aligned."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    left = {0} | ({len(headers) - 1} if headers[-1] == "notes" else set())

    def line(values: list[str]) -> str:
        return "  " + "  ".join(v.ljust(w) if i in left else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths)))

    print(line(headers).rstrip())
    for r in cells:
        print(line(r).rstrip(), flush=True)
