"""Benchmark: a dataset's data-quality checks (``quality/engine.py`` ``evaluate``), against
the same checks written as one DuckDB SQL query over the Parquet file.

The data (``bench/data/checks_{rows}_v1.parquet``, made once in a child process, seeded):
default 10 million rows in row groups of 131,072 rows (snappy), 7 columns: ``id`` (int64,
unique), ``category`` (text, 4 values), ``amount`` (float, normal: mean 100, sd 30),
``code`` (text like ``C000123``; 0.05% malformed, half of them of another length), ``qty``
(int64, 1 to 99), ``day`` (date) and ``discount`` (float, 5% null).

The suite: 10 expectations, one of each family (``SUITE`` below), 4 failing and 6 passing:
not null, unique, in set, between, regex match (with ``mostly``: it passes with unexpected
rows), value lengths, row count between, of type, mean between, max between.

Every contender runs in a child process of this script (``--worker``), which prints one line
of JSON; peak RSS is the ``ru_maxrss`` that ``os.wait4`` reports for the child. This process
imports nothing heavy, so that no child's ``ru_maxrss`` starts from its own.

  DuckDB     the peer: one SQL statement over ``read_parquet(FILE)`` (a CTE for the
             duplicated ids) computing every check's unexpected count or observed value,
             on a fresh in-memory connection with DuckDB's default settings; the verdicts
             are derived from them as GX derives its own (``mostly``, nulls not considered).
  ours       ``evaluate(FILE, named_checks(SUITE))``: GX's pandas engine, the row-wise
             expectations on batches of ``BATCH_ROWS`` (1M) rows, the others on their
             columns whole. Its verdicts and unexpected counts must equal DuckDB's.
  batch 250k, batch 4M   the same with ``engine.BATCH_ROWS`` set in the child.
  GX whole   GX's pandas engine on the whole file read at once (``pd.read_parquet``), the 10
             expectations in one suite: what the engine would do without batches.
  GX SQL     GX's SQL data source on DuckDB (``duckdb_engine``, a view over the Parquet):
             "SQL through DuckDB where GX supports it"; it is shown failing or not.

Each child reports its time without the imports (``work``) besides its wall time (the
interpreter's start and ``import great_expectations`` included). Target: peak RSS under
1.5 GB (1,431 MiB) for ours at 10M rows. ``--quick``: 1M rows.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from report import table, verdict

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA_DIR = HERE / "data"
VERSION = 1
DEFAULT_ROWS = 10_000_000
QUICK_ROWS = 1_000_000
ROW_GROUP = 131_072
CHUNK_ROWS = ROW_GROUP * 8
RSS_LIMIT_MIB = 1431  # 1.5 GB
CATEGORIES = ["north", "south", "east", "west"]
CODE_REGEX = r"^C\d{6}$"
BAD_CODES = ["C12345", "X000123"]  # 6 characters (fails both), 7 (fails the regex only)

# (expectation, kwargs): one of each family.
SUITE = [
    ("expect_column_values_to_not_be_null", {"column": "discount"}),
    ("expect_column_values_to_be_unique", {"column": "id"}),
    ("expect_column_values_to_be_in_set", {"column": "category", "value_set": CATEGORIES}),
    ("expect_column_values_to_be_between", {"column": "amount", "min_value": 0, "max_value": 200}),
    ("expect_column_values_to_match_regex", {"column": "code", "regex": CODE_REGEX, "mostly": 0.999}),
    ("expect_column_value_lengths_to_be_between", {"column": "code", "min_value": 7, "max_value": 7}),
    ("expect_table_row_count_to_be_between", {"min_value": 1, "max_value": 100_000_000}),
    ("expect_column_values_to_be_of_type", {"column": "qty", "type_": "int64"}),
    ("expect_column_mean_to_be_between", {"column": "amount", "min_value": 99, "max_value": 101}),
    ("expect_column_max_to_be_between", {"column": "qty", "min_value": 1, "max_value": 90}),
]


def parquet_path(rows: int) -> Path:
    return DATA_DIR / f"checks_{rows}_v{VERSION}.parquet"


# --- The data (in a child) ---------------------------------------------------------------------


def make_parquet(rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = parquet_path(rows)
    partial = path.with_suffix(".partial")
    categories = pa.array(CATEGORIES)
    writer = None
    for index, start in enumerate(range(0, rows, CHUNK_ROWS)):
        n = min(CHUNK_ROWS, rows - start)
        rng = np.random.default_rng(index)
        digits = pc.utf8_lpad(pa.array(rng.integers(0, 1_000_000, n)).cast(pa.string()), 6, "0")
        code = pc.binary_join_element_wise("C", digits, "")
        bad = rng.random(n) < 0.0005
        which = rng.integers(0, 2, n)
        code = pc.if_else(pa.array(bad), pa.array(np.array(BAD_CODES, dtype=object)[which]), code)
        table = pa.table({
            "id": pa.array(np.arange(start, start + n, dtype=np.int64)),
            "category": pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 4, n), pa.int32()),
                                                       categories).cast(pa.string()),
            "amount": pa.array(rng.normal(100.0, 30.0, n)),
            "code": code,
            "qty": pa.array(rng.integers(1, 100, n, dtype=np.int64)),
            "day": pa.array(np.datetime64("2015-01-01", "D") + rng.integers(0, 3650, n)).cast(pa.date32()),
            "discount": pa.array(rng.uniform(0, 0.5, n), mask=rng.random(n) < 0.05),
        })
        writer = writer or pq.ParquetWriter(partial, table.schema, compression="snappy")
        writer.write_table(table, row_group_size=ROW_GROUP)
    writer.close()
    partial.rename(path)


# --- The contenders (each in a child) ----------------------------------------------------------


def _rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _checks():
    from dataplat_dagster.catalog.models import CheckSpec, named_checks

    return named_checks([CheckSpec(expectation=e, kwargs=k) for e, k in SUITE])


def _outcomes(outcomes: dict) -> dict:
    return {name: {"success": o.success, "unexpected_count": o.unexpected_count, "element_count": o.element_count,
                   "observed": o.observed_value, "error": o.error} for name, o in outcomes.items()}


def work_ours(spec: dict) -> dict:
    """``evaluate`` with ``BATCH_ROWS`` as given, timing where the time goes."""
    started = time.perf_counter()
    from dataplat_dagster.quality import engine

    engine._gx()
    import_s = time.perf_counter() - started
    imports_rss = _rss_mib()
    if spec.get("batch_rows"):
        engine.BATCH_ROWS = spec["batch_rows"]
    phases = {"whole": 0.0, "batches": 0.0, "gx_validate_batches": 0.0}
    whole, in_batches, validate = engine._whole, engine._in_batches, engine._Validator.validate
    per_check: dict[str, float] = {}
    inside_batches = [False]

    def timed_whole(validator, file, expectation, columns):
        began = time.perf_counter()
        try:
            return whole(validator, file, expectation, columns)
        finally:
            took = time.perf_counter() - began
            phases["whole"] += took
            per_check[expectation.expectation_type] = per_check.get(expectation.expectation_type, 0.0) + took

    def timed_batches(*args):
        began = time.perf_counter()
        inside_batches[0] = True
        try:
            return in_batches(*args)
        finally:
            inside_batches[0] = False
            phases["batches"] += time.perf_counter() - began

    def timed_validate(self, frame, expectations):
        began = time.perf_counter()
        try:
            return validate(self, frame, expectations)
        finally:
            if inside_batches[0]:
                phases["gx_validate_batches"] += time.perf_counter() - began

    engine._whole, engine._in_batches, engine._Validator.validate = timed_whole, timed_batches, timed_validate
    checks = _checks()
    if spec.get("only"):
        checks = {spec["only"]: checks[spec["only"]]}
    began = time.perf_counter()
    outcomes = engine.evaluate(Path(spec["path"]), checks)
    work_s = time.perf_counter() - began
    return {"import_s": import_s, "work_s": work_s, "imports_rss_mib": imports_rss, "phases": phases,
            "per_check": per_check, "batch_rows": engine.BATCH_ROWS, "outcomes": _outcomes(outcomes)}


def work_gx_whole(spec: dict) -> dict:
    """GX's pandas engine on the whole frame, the suite in one validation."""
    started = time.perf_counter()
    import pandas as pd

    from dataplat_dagster.quality import engine

    engine._gx()
    import_s = time.perf_counter() - started
    imports_rss = _rss_mib()
    checks = _checks()
    began = time.perf_counter()
    frame = pd.read_parquet(spec["path"])
    read_s = time.perf_counter() - began
    read_rss = _rss_mib()
    results = engine._Validator().validate(frame, {name: engine.build_expectation(s) for name, s in checks.items()})
    work_s = time.perf_counter() - began
    return {"import_s": import_s, "work_s": work_s, "read_s": read_s, "imports_rss_mib": imports_rss,
            "read_rss_mib": read_rss, "outcomes": _outcomes({n: engine._outcome(r) for n, r in results.items()})}


def work_gx_sql(spec: dict) -> dict:
    """GX's SQL data source on DuckDB: a database file holding one view over the Parquet."""
    started = time.perf_counter()
    import duckdb

    from dataplat_dagster.quality import engine

    gx = engine._gx()
    import_s = time.perf_counter() - started
    imports_rss = _rss_mib()
    checks = _checks()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=DATA_DIR) as folder:
        database = Path(folder) / "view.duckdb"
        with duckdb.connect(str(database)) as con:
            con.execute(f"CREATE VIEW data AS SELECT * FROM read_parquet({_quoted(spec['path'])})")
        context = gx.get_context(mode="ephemeral")
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = context.data_sources.add_sql("duck", connection_string=f"duckdb:///{database}")
        batch = source.add_table_asset("data", table_name="data").add_batch_definition_whole_table("whole").get_batch()
        suite = gx.ExpectationSuite(name="bench")
        for name, check in checks.items():
            expectation = engine.build_expectation(check)
            expectation.meta = {"name": name}
            suite.add_expectation(expectation)
        result = batch.validate(suite, result_format={"result_format": "SUMMARY"})
        outcomes = {item.expectation_config.meta["name"]: engine._outcome(item) for item in result.results}
    work_s = time.perf_counter() - began
    return {"import_s": import_s, "work_s": work_s, "imports_rss_mib": imports_rss, "outcomes": _outcomes(outcomes)}


def _quoted(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def duckdb_query(path: str) -> tuple[str, dict]:
    """The one SQL statement, and for each check the expression(s) it selects."""
    in_set = ", ".join(_quoted(c) for c in CATEGORIES)
    columns = {
        "rows": "count(*)",
        "discount_nonnull": "count(discount)",
        "id_nonnull": "count(id)",
        "id_duplicated": "(SELECT coalesce(sum(n), 0) FROM dup)",
        "category_nonnull": "count(category)",
        "category_unexpected": f"count_if(category NOT IN ({in_set}))",
        "amount_nonnull": "count(amount)",
        "amount_unexpected": "count_if(amount < 0 OR amount > 200)",
        "code_nonnull": "count(code)",
        "code_regex_unexpected": f"count_if(NOT regexp_matches(code, {_quoted(CODE_REGEX)}))",
        "code_length_unexpected": "count_if(length(code) < 7 OR length(code) > 7)",
        "qty_type": "typeof(any_value(qty))",
        "amount_mean": "avg(amount)",
        "qty_max": "max(qty)",
    }
    source = f"read_parquet({_quoted(path)})"
    select = ", ".join(f"{expression} AS {name}" for name, expression in columns.items())
    sql = (f"WITH dup AS (SELECT count(*) AS n FROM {source} GROUP BY id HAVING count(*) > 1) "
           f"SELECT {select} FROM {source}")
    return sql, columns


def work_duckdb(spec: dict) -> dict:
    started = time.perf_counter()
    import duckdb

    import_s = time.perf_counter() - started
    imports_rss = _rss_mib()
    sql, columns = duckdb_query(spec["path"])
    began = time.perf_counter()
    with duckdb.connect(":memory:") as con:
        row = con.execute(sql).fetchone()
    work_s = time.perf_counter() - began
    v = dict(zip(columns, row))
    rows = v["rows"]

    def row_wise(unexpected, considered, elements=None, mostly=1.0):
        success = considered == 0 or (considered - unexpected) / considered >= mostly
        return {"success": success, "unexpected_count": int(unexpected), "element_count": int(elements or rows),
                "observed": None, "error": None}

    def aggregate(observed, low, high):
        return {"success": low <= observed <= high, "unexpected_count": None, "element_count": None,
                "observed": observed, "error": None}

    found = [
        row_wise(rows - v["discount_nonnull"], rows),
        row_wise(v["id_duplicated"], v["id_nonnull"]),
        row_wise(v["category_unexpected"], v["category_nonnull"]),
        row_wise(v["amount_unexpected"], v["amount_nonnull"]),
        row_wise(v["code_regex_unexpected"], v["code_nonnull"], mostly=SUITE[4][1]["mostly"]),
        row_wise(v["code_length_unexpected"], v["code_nonnull"]),
        aggregate(rows, 1, 100_000_000),
        {"success": v["qty_type"] == "BIGINT", "unexpected_count": None, "element_count": None,
         "observed": v["qty_type"], "error": None},
        aggregate(float(v["amount_mean"]), 99, 101),
        aggregate(int(v["qty_max"]), 1, 90),
    ]
    return {"import_s": import_s, "work_s": work_s, "imports_rss_mib": imports_rss,
            "outcomes": dict(zip(_checks(), found))}


WORKERS = {"ours": work_ours, "gx_whole": work_gx_whole, "gx_sql": work_gx_sql, "duckdb": work_duckdb}


# --- Measuring a child process -----------------------------------------------------------------


@dataclass
class Measure:
    wall_s: float  # the child's wall time, start-up and imports included
    cpu_s: float  # user + system of the child's process tree
    rss_mib: float  # its peak RSS (ru_maxrss)
    report: dict
    problem: str = ""

    @property
    def work_s(self) -> float:
        return self.report.get("work_s", float("nan"))


def run_worker(name: str, spec: dict, timeout_s: float) -> Measure:
    command = [sys.executable, __file__, "--worker", name, json.dumps(spec)]
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", GX_ANALYTICS_ENABLED="False")
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                                 cwd=tempfile.gettempdir())
        timer = threading.Timer(timeout_s, child.kill)  # wait4 reaps it: Popen.wait would lose its rusage
        timer.start()
        _, status, usage = os.wait4(child.pid, 0)
        timer.cancel()
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        output, errors = out.read().strip(), err.read().strip()
    code = os.waitstatus_to_exitcode(status)
    measure = Measure(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, {})
    if code != 0:
        last = (errors or output or "no output").splitlines()[-1]
        measure.problem = f"exited {code}: {last[:300]}"
    else:
        measure.report = json.loads(output.splitlines()[-1])
    return measure


def warm_page_cache(path: Path) -> None:
    buffer = bytearray(1 << 20)
    with open(path, "rb", buffering=0) as stream:
        while stream.readinto(buffer):
            pass


# --- Report ------------------------------------------------------------------------------------


def compare(name: str, found: dict, peer: dict) -> list[str]:
    """Differences in verdicts, unexpected counts and numeric observed values."""
    problems = []
    for check, theirs in peer.items():
        mine = found.get(check)
        if mine is None:
            problems.append(f"{check}: no outcome")
            continue
        if mine["error"]:
            problems.append(f"{check}: could not be evaluated: {mine['error']}")
            continue
        if mine["success"] != theirs["success"]:
            problems.append(f"{check}: verdict {mine['success']} against DuckDB's {theirs['success']}")
        if theirs["unexpected_count"] is not None and mine["unexpected_count"] != theirs["unexpected_count"]:
            problems.append(f"{check}: {mine['unexpected_count']} unexpected against DuckDB's {theirs['unexpected_count']}")
        observed, number = theirs["observed"], (int, float)
        if isinstance(observed, number) and (not isinstance(mine["observed"], number)
                                             or abs(mine["observed"] - observed) > 1e-9 * max(1.0, abs(observed))):
            problems.append(f"{check}: observed {mine['observed']!r} against DuckDB's {observed!r}")
    return problems


def per_check(path: Path, names: list[str], timeout_s: float) -> None:
    """Ours on each check alone: what each costs, and which one sets the peak."""
    print("\nOurs on each check alone (a child each; the imports apart):")
    lines = []
    for name in names:
        m = run_worker("ours", {"path": str(path), "only": name}, timeout_s)
        if m.problem:
            lines.append([name, "", "", "", m.problem[:100]])
            continue
        baseline = m.report["imports_rss_mib"]
        how = "whole" if m.report["per_check"] else f"batches of {m.report['batch_rows']:,}"
        lines.append([name, f"{m.work_s:.1f}", f"{m.rss_mib:,.0f}", f"{m.rss_mib - baseline:,.0f}", how])
    table(["check", "work s", "peak RSS MiB", "above the imports", "notes"], lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, help=f"rows of the file (default {DEFAULT_ROWS:,})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows")
    parser.add_argument("--repeat", type=int, default=1, help="rounds, the contenders taking turns; the best counts")
    parser.add_argument("--skip", default="", help="contenders to leave out, comma-separated: "
                                                    "batch250k,batch4m,gx_whole,gx_sql")
    parser.add_argument("--per-check", action="store_true",
                        help="also ours on each check alone (a child each): the time and peak RSS of each")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per child (default %(default)s)")
    parser.add_argument("--make", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=2, metavar=("NAME", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        make_parquet(args.make)
        return
    if args.worker:
        print(json.dumps(WORKERS[args.worker[0]](json.loads(args.worker[1])), default=str))
        return
    rows = args.rows or (QUICK_ROWS if args.quick else DEFAULT_ROWS)
    started = time.perf_counter()
    print(f"bench/checks.py  {time.strftime('%Y-%m-%d %H:%M')}  {platform.node()}")
    print(f"  machine: {os.cpu_count()} cores; load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"Python {platform.python_version()}; {rows:,} rows, {len(SUITE)} expectations; best of {args.repeat}; "
          "each contender a child process")
    path = parquet_path(rows)
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--make", str(rows)], check=True)
        print(f"  made {path.name} in {time.perf_counter() - began:.1f} s")
    warm_page_cache(path)
    print(f"  {path.relative_to(REPO)}: {path.stat().st_size / 2**20:.0f} MiB, row groups of {ROW_GROUP:,} rows")

    skip = set(filter(None, args.skip.split(",")))
    if "gx_sql" not in skip and importlib.util.find_spec("duckdb_engine") is None:
        skip.add("gx_sql")  # a bench-only peer, not a dependency of the package
        print("  GX SQL on DuckDB left out: `pip install duckdb-engine` to measure it")
    contenders = [("DuckDB (one SQL query)", "duckdb", {}), ("ours: evaluate, batches of 1M", "ours", {})]
    optional = [("batch250k", "evaluate, batches of 250k", "ours", {"batch_rows": 250_000}),
                ("batch4m", "evaluate, batches of 4M", "ours", {"batch_rows": 4_000_000}),
                ("gx_whole", "GX pandas, whole frame", "gx_whole", {}),
                ("gx_sql", "GX SQL on DuckDB", "gx_sql", {})]
    contenders += [(label, worker, spec) for key, label, worker, spec in optional if key not in skip]
    rounds: dict[str, list[Measure]] = {label: [] for label, _, _ in contenders}
    for index in range(args.repeat):
        for label, worker, spec in contenders:
            measure = run_worker(worker, dict(spec, path=str(path)), args.timeout)
            rounds[label].append(measure)
            shown = measure.problem[:200] if measure.problem else f"{measure.wall_s:.1f} s, {measure.rss_mib:,.0f} MiB"
            print(f"  round {index + 1}: {label}: {shown}", flush=True)

    def best(label: str) -> Measure:
        done = [m for m in rounds[label] if not m.problem] or rounds[label]
        fastest = min(done, key=lambda m: m.report.get("work_s", m.wall_s))
        fastest.rss_mib = max(m.rss_mib for m in rounds[label])
        return fastest

    results = {label: best(label) for label in rounds}
    duck = results["DuckDB (one SQL query)"]
    if duck.problem:
        raise SystemExit(f"DuckDB failed: {duck.problem}")
    peer = duck.report["outcomes"]

    print(f"\nThe {len(SUITE)} checks (DuckDB's verdicts and counts; every GX contender must agree):")
    table(["check", "verdict", "unexpected", "observed"],
          [[name, "pass" if o["success"] else "FAIL", "" if o["unexpected_count"] is None else f"{o['unexpected_count']:,}",
            "" if o["observed"] is None else o["observed"]] for name, o in peer.items()])

    print(f"\n{rows:,} rows: wall = the child process (start-up and imports included); work = without the imports")
    lines = []
    for label, m in results.items():
        if m.problem:
            lines.append([label, "", "", "", "", "", "", "", "", m.problem[:120]])
            continue
        report = m.report
        problems = compare(label, report["outcomes"], peer) if label != "DuckDB (one SQL query)" else []
        errors = {o["error"] for o in report["outcomes"].values() if o["error"]}
        agree = "agree" if not problems else f"{len(problems)} MISMATCHES"
        if errors:
            failed = sum(1 for o in report["outcomes"].values() if o["error"])
            agree += f"; GX could not evaluate {failed} of {len(peer)}: " + "; ".join(sorted(errors))[:80]
        lines.append([label, f"{m.wall_s:.1f}", f"{m.work_s:.1f}", f"{report['import_s']:.1f}", f"{m.cpu_s:.1f}",
                      f"{m.rss_mib:,.0f}", f"{m.work_s / duck.work_s:.2f}", f"{m.rss_mib / duck.rss_mib:.2f}",
                      f"{verdict(m.rss_mib < RSS_LIMIT_MIB)}", agree])
    table(["contender", "wall s", "work s", "imports s", "CPU s", "peak RSS MiB", "work / DuckDB",
           "RSS / DuckDB", "RSS < 1.5 GB", "notes"], lines)

    for label, m in results.items():
        if m.problem or label == "DuckDB (one SQL query)":
            continue
        problems = compare(label, m.report["outcomes"], peer)
        if problems:
            print(f"\n  !!! {label} DOES NOT AGREE WITH DuckDB:")
            for problem in problems:
                print(f"  !!!   {problem}")

    ours = results["ours: evaluate, batches of 1M"]
    if not ours.problem:
        r = ours.report
        phases = r["phases"]
        print(f"\nWhere ours spends its {r['work_s']:.1f} s (imports {r['import_s']:.1f} s apart; "
              f"{r['imports_rss_mib']:.0f} MiB after them):")
        print(f"  row-wise checks on batches: {phases['batches']:.1f} s, of which GX's validation "
              f"{phases['gx_validate_batches']:.1f} s and reading + to_pandas "
              f"{phases['batches'] - phases['gx_validate_batches']:.1f} s")
        for expectation, seconds in sorted(r["per_check"].items(), key=lambda item: -item[1]):
            print(f"  {expectation} on its column(s) whole: {seconds:.1f} s")
        print(f"  the rest (building the expectations, the context): "
              f"{r['work_s'] - phases['batches'] - phases['whole']:.1f} s")
        print(f"\n  ours peak RSS {ours.rss_mib:,.0f} MiB  {verdict(ours.rss_mib < RSS_LIMIT_MIB)} "
              f"(< {RSS_LIMIT_MIB:,} MiB = 1.5 GB)")
        print(f"  ours / DuckDB: work {ours.work_s / duck.work_s:.2f}, wall {ours.wall_s / duck.wall_s:.2f}, "
              f"peak RSS {ours.rss_mib / duck.rss_mib:.2f}")
    whole = results.get("GX pandas, whole frame")
    if whole and not whole.problem:
        print(f"  GX whole frame: pd.read_parquet {whole.report['read_s']:.1f} s, "
              f"{whole.report['read_rss_mib']:,.0f} MiB after it")
    if args.per_check:
        per_check(path, list(peer), args.timeout)
    print(f"\n  {time.perf_counter() - started:,.0f} s in all; load average at the end: "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
