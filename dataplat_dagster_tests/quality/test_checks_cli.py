"""Data-quality checks through the real `dataplat` CLI: declared, refused, listed, run as
Dagster asset checks after every import and on demand, suggested from the profile, shown
in the dataset list, and following a rename."""

import subprocess
import sys

from dagster import AssetCheckKey, AssetKey

ORDERS = "id,amount,status,code\n" + "".join(
    f"{i},{-5 if i in (3, 8) else i * 10}.5,{'open' if i % 2 else 'done'},C{i:04d}\n" for i in range(1, 41))
GOOD_ORDERS = ORDERS.replace("-5.5", "5.5")


def _import(ws, tmp_path, text: str, *extra: str) -> None:
    source = tmp_path / "orders.csv"
    source.write_text(text)
    ws.run("dataset", "import", str(source), "--name", "orders", *extra)


def _evaluation(ws, name: str):
    """The last evaluation of check ``name`` of dataset orders, from the instance."""
    with ws.instance() as instance:
        key = AssetCheckKey(AssetKey(["shop", "datasets", "orders"]), name)
        records = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
        return records[0] if records else None


def test_checks_declared_refused_run_and_listed(cli_workspace, tmp_path):
    ws = cli_workspace
    _import(ws, tmp_path, ORDERS)

    # Refused when declared, with GX's own words and the close names; nothing is added.
    typo = ws.run("check", "add", "orders", "expect_column_values_to_be_betwen", "--column", "amount", check=False)
    assert typo.code == 1 and "Traceback" not in typo.stderr
    assert "Great Expectations has no expectation 'expect_column_values_to_be_betwen'" in typo.stderr
    assert "Close names: expect_column_values_to_be_between" in typo.stderr
    wrong = ws.run("check", "add", "orders", "expect_column_values_to_be_in_set", "--column", "status", check=False)
    assert wrong.code == 1 and "value_set: field required" in wrong.stderr
    extra = ws.run("check", "add", "orders", "expect_column_values_to_not_be_null", "--column", "id", "--arg", "colour=red",
                   check=False)
    assert extra.code == 1 and "colour: extra fields not permitted" in extra.stderr
    missing = ws.run("check", "add", "orders", "expect_column_values_to_not_be_null", "--column", "amont", check=False)
    assert missing.code == 1 and "Dataset 'orders' has no column 'amont' (its columns: id, amount, status, code)" in missing.stderr
    unknown = ws.run("check", "add", "nope", "expect_column_values_to_not_be_null", "--column", "id", check=False)
    assert unknown.code == 1 and "has no dataset 'nope'" in unknown.stderr
    assert ws.run("check", "list", "--json").json() == []

    added = ws.run("check", "add", "orders", "expect_column_values_to_be_between", "--column", "amount",
                   "--arg", "min_value=0", "--severity", "error", "--json").json()
    assert added == {"dataset": "orders", "name": "amount_be_between", "expectation": "expect_column_values_to_be_between",
                     "kwargs": {"column": "amount", "min_value": 0}, "severity": "error"}
    ws.run("check", "add", "orders", "expect_column_values_to_be_in_set", "--column", "status",
           "--arg", "value_set=[open, done]")
    ws.run("check", "add", "orders", "expect_column_values_to_match_regex", "--column", "code", "--arg", r"regex=^C\d{4}$",
           "--name", "code_format")
    taken = ws.run("check", "add", "orders", "expect_column_values_to_be_unique", "--column", "id", "--name", "code_format",
                   check=False)
    assert taken.code == 1 and "already has a check named 'code_format'" in taken.stderr

    listed = ws.run("check", "list", "orders", "--json").json()
    assert [(c["name"], c["expectation"], c["severity"], c["last_result"]) for c in listed] == [
        ("amount_be_between", "expect_column_values_to_be_between", "error", None),
        ("status_be_in_set", "expect_column_values_to_be_in_set", "warn", None),
        ("code_format", "expect_column_values_to_match_regex", "warn", None),
    ]
    assert listed[1]["kwargs"] == {"column": "status", "value_set": ["open", "done"]}
    assert {c["dataset"] for c in listed} == {"orders"}

    # On demand: a Dagster run of the checks alone; an error check's failure exits 1.
    ran = ws.run("check", "run", "orders", "--json", check=False)
    assert ran.code == 1 and "failed its error check(s) amount_be_between" in ran.stderr
    report = ran.json()
    assert report["passed"] is False
    results = {r["name"]: r for r in report["results"]}
    assert {name: r["passed"] for name, r in results.items()} == {
        "amount_be_between": False, "status_be_in_set": True, "code_format": True}
    metadata = results["amount_be_between"]["metadata"]
    assert (metadata["unexpected_count"], metadata["element_count"]) == (2, 40)
    assert metadata["unexpected_percent"] == 5.0
    assert metadata["unexpected_sample"] == [-5.5, -5.5]
    with ws.instance() as instance:
        run = instance.get_run_by_id(report["run_id"])
        assert run.job_name == "quality_checks" and not run.asset_selection
        assert {key.name for key in run.asset_check_selection} == set(results)

    # The dataset's status says so, in the list and in show.
    orders = ws.datasets()["orders"]
    assert orders["status"] == "ready"
    assert orders["checks"] == {"count": 3, "passed": 2, "failed": 1, "not_run": 0, "failed_checks": ["amount_be_between"]}
    assert "ready, 1 check failed" in ws.run("dataset", "list").stdout
    shown = ws.run("dataset", "show", "orders").stdout
    assert "Dataset orders (file_upload, ready, 1 check failed)" in shown
    assert "checks: 2 of 3 passed (failed: amount_be_between)" in shown
    table = ws.run("check", "list").stdout
    assert "FAILED: 2 unexpected of 40 rows (5%)" in table

    # One check only.
    one = ws.run("check", "run", "orders", "--check", "code_format", "--json").json()
    assert [r["name"] for r in one["results"]] == ["code_format"] and one["passed"] is True

    # After every materialization: a new import runs the checks in its own run.
    _import(ws, tmp_path, GOOD_ORDERS, "--replace")
    evaluation = _evaluation(ws, "amount_be_between")
    with ws.instance() as instance:
        assert instance.get_run_by_id(evaluation.run_id).job_name != "quality_checks"
    assert evaluation.event.asset_check_evaluation.passed is True
    assert ws.datasets()["orders"]["checks"]["failed"] == 0
    assert ws.run("check", "run", "orders").code == 0

    # A new version failing an error check is published (no quality_policy on an upload),
    # and the import says so, exiting 1: the steps downstream of it will not run.
    source = tmp_path / "orders.csv"
    source.write_text(ORDERS)
    bad = ws.run("dataset", "import", str(source), "--name", "orders", "--replace", check=False)
    assert bad.code == 1
    assert "Dataset 'orders' is published, but it failed its error check(s) amount_be_between" in bad.stderr
    assert "Dataset 'orders' is ready: 40 rows" in bad.stdout
    assert ws.datasets()["orders"]["checks"]["failed_checks"] == ["amount_be_between"]

    # Delete: gone from the list and from the code location.
    ws.run("check", "delete", "orders", "status_be_in_set")
    assert [c["name"] for c in ws.run("check", "list", "orders", "--json").json()] == ["amount_be_between", "code_format"]
    gone = ws.run("check", "delete", "orders", "status_be_in_set", check=False)
    assert gone.code == 1 and "has no check 'status_be_in_set' (its checks: amount_be_between, code_format)" in gone.stderr


def test_declared_checks_rename_and_lazy_import(cli_workspace, tmp_path):
    ws = cli_workspace
    _import(ws, tmp_path, GOOD_ORDERS)
    catalog = ws.project_dir / "dataplat.yaml"
    catalog.write_text(catalog.read_text() + (
        "checks:\n"
        "  orders:\n"
        "    - expectation: expect_table_row_count_to_be_between\n"
        "      kwargs: {min_value: 30, max_value: 50}\n"
        "      severity: error\n"
        "    - expectation: expect_column_values_to_be_unique\n"
        "      kwargs: {column: id}\n"))
    declared = ws.run("check", "list", "orders", "--json").json()
    assert [(c["name"], c["declared_in"]) for c in declared] == [
        ("row_count_to_be_between", "dataplat.yaml"), ("id_be_unique", "dataplat.yaml")]
    refused = ws.run("check", "delete", "orders", "id_be_unique", check=False)
    assert refused.code == 1 and "is declared in dataplat.yaml: remove it there" in refused.stderr
    ran = ws.run("check", "run", "orders", "--json").json()
    assert {r["name"]: (r["passed"], r["metadata"].get("observed_value")) for r in ran["results"]} == {
        "row_count_to_be_between": (True, 40), "id_be_unique": (True, None)}
    ws.run("check", "add", "orders", "expect_column_values_to_not_be_null", "--column", "id")
    assert ws.run("check", "validate").stdout.strip() == "All 3 check(s) are valid."

    # A hand edit GX refuses: `check validate` says so (for CI), and the check's run reports it.
    valid = catalog.read_text()
    catalog.write_text(valid + "    - expectation: expect_column_values_to_be_uniqe\n      kwargs: {column: id}\n")
    refused = ws.run("check", "validate", "orders", check=False)
    assert refused.code == 1 and "orders/id_be_uniqe: Great Expectations has no expectation " in refused.stderr
    assert "Close names: expect_column_values_to_be_unique" in refused.stderr
    catalog.write_text(valid)

    # Loading the code location (and listing datasets) never imports Great Expectations.
    probe = ("import sys; from dataplat_dagster.definitions import project_definitions; "
             f"defs = project_definitions({str(ws.project_dir)!r}); "
             "checks = [k.name for c in defs.asset_checks for k in c.check_keys]; "
             "print(sorted(checks), 'great_expectations' in sys.modules)")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ws.root,
                            env={"DAGSTER_HOME": str(ws.root), "PATH": "/usr/bin:/bin"})
    assert loaded.stdout.strip() == "['id_be_unique', 'id_not_be_null', 'row_count_to_be_between'] False"

    # A rename carries the declared and the added checks to the new name.
    ws.run("dataset", "rename", "orders", "purchases")
    moved = ws.run("check", "list", "purchases", "--json").json()
    assert sorted(c["name"] for c in moved) == ["id_be_unique", "id_not_be_null", "row_count_to_be_between"]
    assert "purchases:" in catalog.read_text() and "  orders:" not in catalog.read_text().split("checks:")[1]
    assert ws.run("check", "run", "purchases", "--json").json()["passed"] is True


def test_suggest_from_the_profile(cli_workspace, tmp_path):
    ws = cli_workspace
    _import(ws, tmp_path, GOOD_ORDERS)
    suggested = ws.run("check", "suggest", "orders").stdout
    assert suggested.startswith("checks:\n  orders:\n")
    assert "expect_column_values_to_be_unique" in suggested and "value_set:" in suggested
    assert ws.run("check", "list", "orders", "--json").json() == []  # printed only
    applied = ws.run("check", "suggest", "orders", "--apply").stdout
    assert "Added" in applied
    names = {c["name"] for c in ws.run("check", "list", "orders", "--json").json()}
    assert {"row_count_to_be_between", "id_be_unique", "id_not_be_null", "status_be_in_set", "amount_be_between"} <= names
    assert ws.run("check", "run", "orders", "--json").json()["passed"] is True
    again = ws.run("check", "suggest", "orders").stdout
    assert "Nothing to suggest" in again
    # The suggestion fails on a corrupted version: a new status and a duplicated id.
    _import(ws, tmp_path, GOOD_ORDERS.replace(",done,", ",lost,", 1).replace("\n2,", "\n1,", 1), "--replace")
    failed = ws.datasets()["orders"]["checks"]["failed_checks"]
    assert sorted(failed) == ["id_be_unique", "status_be_in_set"]
