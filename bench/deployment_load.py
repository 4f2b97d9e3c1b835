"""Benchmark: the deployed shape under load, 20 imports from 4 shells at once.

    .venv/bin/python bench/deployment_load.py [--shells 4] [--per-shell 5] [--rows 2000]

Starts the deployment the tests use (dataplat_dagster_tests/deploy: PostgreSQL, moto as the
bucket, `dagster code-server start` for projects/demo, `dagster-webserver`, `dagster-daemon
run` with deploy/dagster.yaml's QueuedRunCoordinator, max_concurrent_runs 4), and a client
folder (a copy of the workspace, the deployment's dagster.yaml and environment) whose
`dataplat` CLI submits through the webserver.

1. Peer, measured first in the same run: 3 seed imports one after the other, each waited
   for (`dataplat dataset import F --name seed_N`). Their mean wall time t1 gives the ideal
   time of the burst on 4 slots: 20 × t1 / 4.
2. The burst: 4 shells (4 concurrent subprocess loops) each start 5 imports with
   `--no-wait` (the CLI returns once the run is queued, so the shells do not wait for the
   runs); among them shell 0 and shell 1 each rename a seed dataset and shell 2
   deletes one. Then wait until every run has finished.
3. Checks (exit 1 if one fails): every burst import is `ready` with its row count, `dataset
   list --json` holds exactly the declared datasets, the burst's, the renamed seeds and not
   the deleted one; PostgreSQL's runs table holds exactly 20 import runs of the burst, all
   SUCCESS; the peak of concurrent runs is at most max_concurrent_runs.
4. The replace burst (skip it with --no-replace-round): the same 20 datasets again, with
   `--replace --no-wait`, 5 per shell. A new version of a known dataset changes no
   definitions, so no code location reload: here the queue's limit is what holds the runs.
   Same checks.

Prints, for each burst, its wall time (first submission to last run finished), the peak
number of runs in progress (STARTING or STARTED, sampled from the instance every 0.2 s, and
computed from the run records' start/end times), and the ratio of its time to the ideal.
No timing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Tests and benches only reach loopback servers, never the cloud's metadata address.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import yaml  # noqa: E402
from dagster import DagsterRunStatus, RunsFilter  # noqa: E402

from dataplat_dagster_tests.deploy.client import DeploymentClient  # noqa: E402
from dataplat_dagster_tests.deploy.compose import INSTANCE_FILE  # noqa: E402
from dataplat_dagster_tests.deploy.conftest import start_deployment  # noqa: E402
from dataplat_dagster_tests.servers.postgres import start_postgres  # noqa: E402
from dataplat_dagster_tests.servers.s3 import start_s3  # noqa: E402

SEEDS = 3
IN_PROGRESS = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
UNFINISHED = IN_PROGRESS + [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.CANCELING]
# What `dagster code-server start` logs for each new process serving the definitions.
CODE_SERVER_START = "Starting Dagster code server for file"
DECLARED = {"customers", "sales", "orders_raw", "orders_valid", "orders_enriched", "orders_scored"}


def write_csv(path: Path, rows: int) -> Path:
    path.write_text("id,name,amount,day\n" + "".join(f"{i},name {i},{i * 1.25:.2f},2024-01-{1 + i % 28:02d}\n" for i in range(rows)))
    return path


class Sampler(threading.Thread):
    """Counts the runs in progress every 0.2 s; `peak` is the highest count seen."""

    def __init__(self, instance, interval: float = 0.2):
        super().__init__(daemon=True)
        self.instance, self.interval = instance, interval
        self.peak, self.samples = 0, 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            count = self.instance.get_runs_count(RunsFilter(statuses=IN_PROGRESS))
            self.peak, self.samples = max(self.peak, count), self.samples + 1
            self.stop.wait(self.interval)


def peak_from_records(runs: list[dict]) -> int:
    """The most runs whose [start_time, end_time] overlap, from the runs table."""
    edges = sorted([(row["start_time"], 1) for row in runs] + [(row["end_time"], -1) for row in runs],
                   key=lambda edge: (edge[0], edge[1]))
    current = peak = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def shell(client: DeploymentClient, index: int, jobs: list[tuple], results: list, errors: list) -> None:
    """One shell: its commands in order, each waited for before the next."""
    for args in jobs:
        result = client.run(*args, check=False, timeout=600)
        results.append((index, result))
        if result.code != 0:
            errors.append(f"shell {index}: dataplat {' '.join(args)} exited {result.code}: {result.stderr.strip()}")


@dataclass
class Burst:
    submitted_s: float  # until every shell had run its commands
    wall_s: float  # first submission to the last run finished
    sampled_peak: int
    samples: int
    cli_times: list[float]
    run_ids: set[str]
    errors: list[str]
    reloads: int  # code server processes started (a reload of the code location each)


def run_burst(deployment, client: DeploymentClient, plans: list[list[tuple]], imports: int) -> Burst:
    """Each plan in its own shell, all at once; then wait for every run they submitted."""
    results: list = []
    errors: list[str] = []
    code_server_log = deployment.services["code_server"].log_path
    reloads = code_server_log.read_text().count(CODE_SERVER_START)
    with deployment.instance() as instance:
        before = {run.run_id for run in instance.get_runs()}
        sampler = Sampler(instance)
        sampler.start()
        start = time.monotonic()
        threads = [threading.Thread(target=shell, args=(client, s, jobs, results, errors)) for s, jobs in enumerate(plans)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        submitted = time.monotonic() - start
        expected = imports - sum("import" in error for error in errors)
        deadline = time.monotonic() + 900
        while True:
            new = [run for run in instance.get_runs() if run.run_id not in before]
            pending = [run for run in new if run.status in UNFINISHED]
            if not pending and len(new) >= expected:
                break
            if time.monotonic() > deadline:
                errors.append(f"{len(pending)} runs still unfinished after 900 s")
                break
            time.sleep(0.2)
        wall = time.monotonic() - start
        sampler.stop.set()
        sampler.join()
    cli_times = [result.wall_s for _, result in results if result.args[1] == "import"]
    reloads = code_server_log.read_text().count(CODE_SERVER_START) - reloads
    return Burst(submitted, wall, sampler.peak, sampler.samples, cli_times, {run.run_id for run in new}, errors, reloads)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shells", type=int, default=4)
    parser.add_argument("--per-shell", type=int, default=5)
    parser.add_argument("--rows", type=int, default=2000, help="rows of the first file; file k has rows + k")
    parser.add_argument("--no-replace-round", dest="replace_round", action="store_false",
                        help="skip the second burst (the same 20 datasets again with --replace)")
    args = parser.parse_args()
    limit = yaml.safe_load(INSTANCE_FILE.read_text())["run_coordinator"]["config"]["max_concurrent_runs"]
    total = args.shells * args.per_shell
    print(f"machine: {os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}")
    print(f"deployment: max_concurrent_runs {limit}; burst: {total} imports from {args.shells} shells, --no-wait")

    base = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    failures: list[str] = []
    with start_postgres(base / "postgres") as pg, start_s3(base / "s3") as s3:
        started = time.monotonic()
        (base / "deployment").mkdir()
        with start_deployment(base / "deployment", pg, s3) as deployment:
            print(f"deployment up in {time.monotonic() - started:.1f} s ({base})")
            client = DeploymentClient(deployment, base / "client")
            files = base / "files"
            files.mkdir()

            # 1. The peer: one import at a time, waited for.
            seed_times = []
            for n in range(SEEDS):
                csv = write_csv(files / f"seed_{n}.csv", args.rows)
                result = client.run("dataset", "import", str(csv), "--name", f"seed_{n}", "--json")
                seed_times.append(result.wall_s)
            single = sum(seed_times) / len(seed_times)
            print(f"one import through the deployment (waited, mean of {SEEDS}): {single:.1f} s "
                  f"({', '.join(f'{t:.1f}' for t in seed_times)})")

            # 2. The burst.
            expected_rows = {}
            plans: list[list[tuple]] = []
            for s in range(args.shells):
                jobs = []
                for k in range(args.per_shell):
                    number = s * args.per_shell + k
                    name = f"load_{s}_{k}"
                    rows = args.rows + number
                    expected_rows[name] = rows
                    jobs.append(("dataset", "import", str(write_csv(files / f"{name}.csv", rows)), "--name", name, "--no-wait", "--json"))
                plans.append(jobs)
            # Among the imports: two renames and a delete of seed datasets (already imported).
            plans[0].insert(2, ("dataset", "rename", "seed_0", "seed_0_renamed"))
            plans[1 % args.shells].insert(3, ("dataset", "rename", "seed_1", "seed_1_renamed"))
            plans[2 % args.shells].insert(1, ("dataset", "delete", "seed_2", "--yes"))

            first = run_burst(deployment, client, plans, total)
            failures += first.errors

            # 3. Checks.
            renamed = {"seed_0_renamed": args.rows, "seed_1_renamed": args.rows}
            listed = check_catalog(client, expected_rows, renamed, failures)
            first_peak = check_runs(client, first, expected_rows, total, limit, "burst", failures)
            report("burst", first, first_peak, total, single, limit, "+ 2 renames + 1 delete")

            # 4. The same 20 datasets again (--replace): no new definitions, so no code location
            #    reload; what holds the runs back is the queue.
            if args.replace_round:
                plans = [[(*job[:5], "--replace", *job[5:]) for job in jobs if job[1] == "import"] for jobs in plans]
                again = run_burst(deployment, client, plans, total)
                failures += again.errors
                check_catalog(client, expected_rows, renamed, failures)
                again_peak = check_runs(client, again, expected_rows, total, limit, "replace burst", failures)
                report("replace burst", again, again_peak, total, single, limit, "--replace")

            if failures:
                print("\nFAILED:\n  " + "\n  ".join(failures))
                print(deployment.logs(30))
                return 1
            print(f"\nchecks: every import ready with its rows, catalog exact ({len(listed)} datasets), {total} import "
                  f"runs per burst in PostgreSQL all SUCCESS, peak <= {limit}: PASS")
    return 0


def check_catalog(client: DeploymentClient, expected_rows: dict, renamed: dict, failures: list[str]) -> dict:
    listed = {item["name"]: item for item in client.run("dataset", "list", "--json").json()}
    expected = DECLARED | set(expected_rows) | set(renamed)
    if set(listed) != expected:
        failures.append(f"catalog: missing {sorted(expected - set(listed))}, unexpected {sorted(set(listed) - expected)}")
    for name, rows in {**expected_rows, **renamed}.items():
        item = listed.get(name) or {}
        if (item.get("status"), item.get("rows")) != ("ready", rows):
            failures.append(f"{name}: {item.get('status')} {item.get('error') or ''} rows {item.get('rows')} (expected ready, {rows})")
    return listed


def check_runs(client: DeploymentClient, burst: Burst, expected_rows: dict, total: int, limit: int, label: str,
               failures: list[str]) -> int:
    """PostgreSQL's record of the burst's runs: exactly one import run per import, all
    SUCCESS, nothing else; returns the peak of overlapping runs from their start/end times."""
    runs = [row for row in client.runs_table() if row["run_id"] in burst.run_ids]
    imports = [row for row in runs if row.get("tags", {}).get("dataplat/action") == "import"
               and row.get("tags", {}).get("dataplat/dataset") in expected_rows]
    statuses = sorted({row["status"] for row in imports})
    if len(imports) != total or statuses != ["SUCCESS"] or len({r["tags"]["dataplat/dataset"] for r in imports}) != total:
        failures.append(f"{label}: {len(imports)} import runs in PostgreSQL (expected {total}, one per dataset), statuses {statuses}")
    if len(runs) != len(imports):
        failures.append(f"{label}: other runs {[(r['pipeline_name'], r['status']) for r in runs if r not in imports]}")
    peak = peak_from_records([row for row in runs if row["start_time"] and row["end_time"]])
    if max(peak, burst.sampled_peak) > limit:
        failures.append(f"{label}: peak of {max(peak, burst.sampled_peak)} runs in progress, above max_concurrent_runs {limit}")
    return peak


def report(label: str, burst: Burst, recorded_peak: int, total: int, single: float, limit: int, extra: str) -> None:
    ideal = total * single / limit
    print()
    print(f"{label}: {total} imports {extra}, all submitted after {burst.submitted_s:.1f} s "
          f"(each --no-wait import {min(burst.cli_times):.1f}-{max(burst.cli_times):.1f} s in its shell)")
    print(f"  wall time, first submission to last run finished: {burst.wall_s:.1f} s; "
          f"code location reloads (new code server processes): {burst.reloads}")
    print(f"  peak runs in progress: {burst.sampled_peak} sampled ({burst.samples} samples every 0.2 s), "
          f"{recorded_peak} from the run records' start/end times (limit {limit})")
    print(f"  ideal on {limit} slots ({total} x one import / {limit}): {ideal:.1f} s; burst / ideal = {burst.wall_s / ideal:.2f}x; "
          f"sequential peer ({total} x one import) {total * single:.1f} s: speed-up {total * single / burst.wall_s:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
