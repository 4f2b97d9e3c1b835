"""Printing for the CLI: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import click


def print_json(data) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    click.echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths)).rstrip())
    for row in cells:
        click.echo("  ".join(value.ljust(w) for value, w in zip(row, widths)).rstrip())


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def human_count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def plural(count: int | None, noun: str) -> str:
    return f"{human_count(count)} {noun}{'' if count == 1 else 's'}"


def confirm_delete(what: str, question: str, yes: bool) -> None:
    """Ask on a terminal; elsewhere, without ``--yes``, refuse: a script never deletes by accident."""
    if yes:
        return
    if not click.get_text_stream("stdin").isatty():
        from dataplat_dagster.errors import DataplatError

        raise DataplatError(f"Deleting {what} needs confirmation: pass --yes.")
    click.confirm(question, abort=True)


def report(as_json: bool, data: dict, text: str) -> None:
    """A command's result: ``data`` as JSON with --json, else ``text``."""
    if as_json:
        print_json(data)
    else:
        click.echo(text)


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


@contextmanager
def elapsed(label: str) -> Iterator[None]:
    """On a terminal, a line on stderr counting the seconds while the body runs."""
    if not sys.stderr.isatty():
        yield
        return
    done = threading.Event()

    def tick() -> None:
        start = time.monotonic()
        while not done.wait(0.25):
            sys.stderr.write(f"\r{label} {time.monotonic() - start:6.1f} s")
            sys.stderr.flush()
        sys.stderr.write("\r" + " " * (len(label) + 10) + "\r")

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()


def wait_for_run(instance, run_id: str, starting: str, *, as_json: bool, label: str):
    """Wait for a run the command started: ``starting`` said first (not with --json), the
    seconds counted under ``label`` on a terminal; returns the run's outcome."""
    from dataplat_dagster import runs

    if not as_json:
        click.echo(starting)
    with elapsed(label):
        return runs.wait_for(instance, run_id, notice=warn)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."
