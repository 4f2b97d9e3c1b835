"""``dataplat check ...``: data-quality checks (Great Expectations) of datasets."""

from __future__ import annotations

import click

from dataplat_dagster.catalog.models import describe_arguments
from dataplat_dagster.cli.catalog_entries import catalog_changed
from dataplat_dagster.cli.context import CliContext, pass_context
from dataplat_dagster.cli.output import print_json, print_table, report, wait_for_run
from dataplat_dagster.errors import DataplatError


@click.group("check")
def check() -> None:
    """Data-quality checks of datasets: Great Expectations expectations run as Dagster asset checks."""


@check.command("add")
@click.argument("dataset")
@click.argument("expectation")
@click.option("--column", help="The column the expectation is about (its `column` argument).")
@click.option("--arg", "args", multiple=True, metavar="KEY=VALUE",
              help="An argument of the expectation, repeatable; the value is read as YAML: --arg min_value=0 "
              "--arg value_set='[a, b]' --arg mostly=0.95.")
@click.option("--severity", type=click.Choice(["warn", "error"]), default="warn", show_default=True,
              help="error: a failure blocks the steps downstream of the dataset; warn: it is reported only.")
@click.option("--name", help="The check's name (default: from the column and the expectation, e.g. id_not_be_null).")
@click.option("--json", "as_json", is_flag=True, help="Print the check as JSON.")
@pass_context
def check_add(ctx: CliContext, dataset: str, expectation: str, column: str | None, args: tuple[str, ...], severity: str,
              name: str | None, as_json: bool) -> None:
    """Add the check EXPECTATION (a GX expectation type, e.g. expect_column_values_to_not_be_null) to DATASET.

    GX checks the type and the arguments now: an unknown type or a wrong argument is refused
    with GX's message. The check runs after every materialization of the dataset, and with
    `dataplat check run`.
    """
    from dataplat_dagster.quality.declare import parse_args
    from dataplat_dagster.quality.manage import add_check, new_check

    kwargs = parse_args(list(args))
    if column is not None:
        if "column" in kwargs and kwargs["column"] != column:
            raise click.UsageError("Give the column once: --column C or --arg column=C.")
        kwargs = {"column": column, **kwargs}
    spec = new_check(ctx.project, dataset, expectation, kwargs, severity, name)
    add_check(ctx.project, dataset, spec)
    catalog_changed(ctx.project)
    report(as_json, _spec_json(dataset, spec),
           f"Added check {spec.name!r} to dataset {dataset!r}: {spec.describe()}. Run it: dataplat check run {dataset}")


@check.command("list")
@click.argument("dataset", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: a list of {dataset, name, expectation, kwargs, severity, last_result}.")
@pass_context
def check_list(ctx: CliContext, dataset: str | None, as_json: bool) -> None:
    """List the checks of DATASET (default: of every dataset) with their last results."""
    from dataplat_dagster.quality.manage import list_checks

    found = list_checks(ctx.instance, ctx.project, dataset)
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo(f"No checks yet: `dataplat check add {dataset or 'DATASET'} EXPECTATION ...` or "
                   f"`dataplat check suggest {dataset or 'DATASET'}`.")
        return
    print_table(["dataset", "name", "expectation", "arguments", "severity", "last result"],
                [[c["dataset"], c["name"], c["expectation"], describe_arguments(c["kwargs"]), c["severity"], _last(c["last_result"])]
                 for c in found])


@check.command("validate")
@click.argument("dataset", required=False)
@pass_context
def check_validate(ctx: CliContext, dataset: str | None) -> None:
    """Ask GX about every check of DATASET (default: of every dataset), those declared in
    dataplat.yaml included: exit 1, with GX's message, if it refuses one (for CI, after an edit)."""
    from dataplat_dagster.quality.manage import validate_checks

    checked, refused = validate_checks(ctx.project, dataset)
    for where, message in refused:
        click.echo(f"{where}: {message}", err=True)
    if refused:
        raise DataplatError(f"{len(refused)} of {checked} check(s) are refused by Great Expectations (above).")
    click.echo(f"All {checked} check(s) are valid.")


@check.command("delete")
@click.argument("dataset")
@click.argument("name")
@pass_context
def check_delete(ctx: CliContext, dataset: str, name: str) -> None:
    """Delete check NAME of DATASET (one added with `check add`; a declared one is removed from dataplat.yaml)."""
    from dataplat_dagster.quality.manage import delete_check

    delete_check(ctx.project, dataset, name)
    catalog_changed(ctx.project)
    click.echo(f"Deleted check {name!r} of dataset {dataset!r}.")


@check.command("run")
@click.argument("dataset")
@click.option("--check", "names", multiple=True, metavar="NAME", help="Run only this check (repeatable).")
@click.option("--no-wait", is_flag=True, help="Return as soon as the run is submitted.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@pass_context
def check_run(ctx: CliContext, dataset: str, names: tuple[str, ...], no_wait: bool, as_json: bool) -> None:
    """Run the checks of DATASET on its current version, as a Dagster run.

    Exits with status 1 when a check of severity error fails (a warn failure is printed, and
    the exit status stays 0), so that a script or CI step can gate on it.
    """
    from dataplat_dagster.quality.checks import instance_results
    from dataplat_dagster.quality.manage import start_check_run

    instance = ctx.instance()
    run_id, chosen = start_check_run(
        instance, ctx.workspace, ctx.project, dataset, list(names) or None, wait=not no_wait)
    if no_wait:
        report(as_json, {"dataset": dataset, "run_id": run_id, "checks": chosen, "status": "running"},
               f"Submitted run {run_id} of {len(chosen)} check(s) of {dataset!r}.")
        return
    outcome = wait_for_run(instance, run_id, f"Running {len(chosen)} check(s) of {dataset!r} in run {run_id} ...",
                           as_json=as_json, label=f"  {dataset}:")
    results = instance_results(instance, ctx.project.name, dataset, chosen)
    ran = {name: result for name, result in results.items() if result and result["run_id"] == run_id}
    if not ran:
        raise DataplatError(f"The checks of {dataset!r} did not run (run {run_id}): {outcome.error or outcome.status.value}")
    blocking = [name for name, result in ran.items() if not result["passed"] and result["severity"] == "error"]
    failed = [name for name, result in ran.items() if not result["passed"]]
    if as_json:
        print_json({"dataset": dataset, "run_id": run_id, "passed": not failed,
                    "results": [{"name": name, **result} for name, result in ran.items()]})
    else:
        print_table(["check", "severity", "result", "details"],
                    [[name, result["severity"], "passed" if result["passed"] else "FAILED", result["description"]]
                     for name, result in ran.items()])
        click.echo(f"{len(ran) - len(failed)} of {len(ran)} checks passed" + (f"; failed: {', '.join(failed)}." if failed else "."))
    if blocking:
        raise DataplatError(f"Dataset {dataset!r} failed its error check(s) {', '.join(blocking)}: steps downstream of it "
                            "will not run until the data is fixed, or the checks changed.")


@check.command("suggest")
@click.argument("dataset")
@click.option("--apply", "apply", is_flag=True, help="Add the suggested checks to the dataset.")
@pass_context
def check_suggest(ctx: CliContext, dataset: str, apply: bool) -> None:
    """Suggest checks for DATASET from its stored profile, printed as dataplat.yaml's `checks:` YAML."""
    from dataplat_dagster.quality.manage import add_check, suggested_checks
    from dataplat_dagster.quality.suggest import suggestion_yaml

    specs = suggested_checks(ctx.project, dataset)
    if not specs:
        click.echo(f"Nothing to suggest for {dataset!r}: its checks already cover what its profile shows.")
        return
    click.echo(suggestion_yaml(dataset, specs), nl=False)
    if apply:
        for spec in specs:
            add_check(ctx.project, dataset, spec)
        catalog_changed(ctx.project)
        click.echo(f"Added {len(specs)} check(s) to dataset {dataset!r}. Run them: dataplat check run {dataset}")


def _spec_json(dataset: str, spec) -> dict:
    return {"dataset": dataset, "name": spec.name, "expectation": spec.expectation, "kwargs": spec.kwargs,
            "severity": spec.severity}


def _last(result: dict | None) -> str:
    if result is None:
        return "not run"
    if result["passed"]:
        return "passed"
    return f"FAILED: {result['description']}"
