"""``dataplat dataset show``: the stored profile of a dataset, as text or JSON (never recomputed)."""

from __future__ import annotations

import click

from dataplat_dagster.cli.output import human_count, human_size, print_json, print_table
from dataplat_dagster.datasets import storage
from dataplat_dagster.errors import DataplatError
from dataplat_dagster.workspace import Project


def show_profile(project: Project, info, view: str | None, *, column: str | None, sample: int | None, as_json: bool) -> None:
    from dataplat_dagster.datasets.lookup import dataset_store, require_data

    _, store = dataset_store(project, info.name)
    require_data(store)
    store = store.current()  # every file shown is of this one version, whatever is published meanwhile
    profile = store.read_json(storage.PROFILE_FILE)
    if profile is None:
        raise DataplatError(
            f"Dataset {info.name!r} was imported without a profile (--no-profile). Import it again with "
            f"`dataplat dataset import FILE --name {info.name} --replace` to compute one."
        )
    if view == "columns":
        _emit(as_json, profile["columns"], lambda: _print_columns(profile["columns"]))
    elif view == "column":
        found = _column(profile, column)
        _emit(as_json, found, lambda: _print_column(found))
    elif view == "sample":
        rows = _sample(store, profile, sample)
        _emit(as_json, rows, lambda: print_table(rows["columns"], rows["rows"]))
    else:
        data = {**info.to_json(), "dialect": store.read_json(storage.DIALECT_FILE), **profile,
                "report": store.uri(storage.REPORT_FILE)}
        _emit(as_json, data, lambda: _print_overview(info, profile, store))


def _emit(as_json: bool, data, print_text) -> None:
    print_json(data) if as_json else print_text()


def _print_overview(info, profile: dict, store) -> None:
    summary = profile["summary"]
    types = ", ".join(f"{count} {kind}" for kind, count in summary["column_types"].items())
    click.echo(f"Dataset {info.name} ({info.origin}, {info.status_text()})")
    click.echo(f"  rows: {human_count(summary['rows'])}    columns: {summary['columns']} ({types})")
    click.echo(f"  missing cells: {human_count(summary['missing_cells'])} ({summary['missing_pct']:.2f}%)"
               f"    duplicate rows: {human_count(summary['duplicate_rows'])}")
    click.echo(f"  size: {human_size(info.size_bytes)}    report: {store.uri(storage.REPORT_FILE)}")
    if info.checks:
        checks = info.checks
        failed = f" (failed: {', '.join(checks['failed_checks'])})" if checks["failed"] else ""
        not_run = f", {checks['not_run']} not run yet" if checks["not_run"] else ""
        click.echo(f"  checks: {checks['passed']} of {checks['count']} passed{failed}{not_run}: `dataplat check list {info.name}`")
    click.echo()
    _print_columns(profile["columns"])
    pairs = _strongest_correlations(profile)
    if pairs:
        click.echo("\nStrongest correlations (Pearson):")
        for a, b, value in pairs:
            click.echo(f"  {a} ~ {b}: {value:+.3f}")


def _print_columns(columns: list[dict]) -> None:
    print_table(
        ["column", "type", "missing", "distinct", "min", "max", "mean", "top value"],
        [[c["name"], c["type"], human_count(c["missing"]), human_count(c["distinct"]), _fmt(c.get("min")),
          _fmt(c.get("max")), _fmt(c.get("mean")), _top(c)] for c in columns],
    )


def _print_column(column: dict) -> None:
    click.echo(f"Column {column['name']} ({column['type']}, stored as {column['arrow_type']})")
    click.echo(f"  missing: {human_count(column['missing'])} ({column['missing_pct']:.2f}%)"
               f"    distinct: {human_count(column['distinct'])}{' (approx.)' if column.get('distinct_is_approximate') else ''}")
    for key in ("min", "max", "mean", "std"):
        if column.get(key) is not None:
            click.echo(f"  {key}: {_fmt(column[key])}")
    for label, value in (column.get("quantiles") or {}).items():
        click.echo(f"  {label}: {_fmt(value)}")
    histogram = column.get("histogram")
    if histogram:
        click.echo("  distribution:")
        peak = max(histogram["counts"]) or 1
        for i, count in enumerate(histogram["counts"]):
            bar = "#" * round(30 * count / peak)
            click.echo(f"    {_fmt(histogram['edges'][i]):>14} .. {_fmt(histogram['edges'][i + 1]):<14} {bar} {count:,}")
    if column.get("top_values"):
        click.echo("  top values:")
        for item in column["top_values"]:
            click.echo(f"    {item['value']!s:<30} {item['count']:,}")


def _column(profile: dict, name: str) -> dict:
    for column in profile["columns"]:
        if column["name"] == name:
            return column
    names = ", ".join(c["name"] for c in profile["columns"])
    raise DataplatError(f"No column {name!r} in this dataset (columns: {names}).")


def _sample(store, profile: dict, count: int) -> dict:
    stored = profile["sample"]
    if count <= len(stored["rows"]):
        return {"columns": stored["columns"], "rows": stored["rows"][:count]}
    # More rows than the stored sample: read them from the Parquet head (no statistics recomputed).
    from dataplat_dagster.profile.stats import read_sample

    with store.local_file(storage.DATA_FILE) as parquet:
        return read_sample(parquet, count)


def _strongest_correlations(profile: dict, limit: int = 5) -> list[tuple[str, str, float]]:
    pearson = (profile.get("correlations") or {}).get("pearson")
    if not pearson:
        return []
    names, matrix = pearson["columns"], pearson["matrix"]
    pairs = [(names[i], names[j], matrix[i][j]) for i in range(len(names)) for j in range(i + 1, len(names))
             if matrix[i][j] is not None]
    return sorted(pairs, key=lambda p: -abs(p[2]))[:limit]


def _top(column: dict) -> str | None:
    top = column.get("top_values")
    return f"{top[0]['value']} ({top[0]['count']:,})" if top else None


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
