"""Benchmark: loading a project's code location with 300 datasets, storage local and on S3.

A project gets ``--datasets`` datasets (default 300) registered as imports register them
(one registry object each under the storage root), then each contender runs in a fresh
interpreter, as a code server loads the location (``workers/definitions_load.py``):

  ours  ``project_definitions(project)``: the catalog, the registry, one asset per
        dataset, the project's jobs, sensors and resources;
  bare  Dagster alone, reading no storage: one plain ``@asset`` per dataset (same keys,
        group, description) and one job selecting them: the floor for that many assets,
        measured once (it does not depend on the storage).

Each also builds the repository snapshot a code server sends to the webserver
(``RepositorySnap.from_def``, serialized), whose size is printed. This runs with the
storage root in the project's folder, then on S3 (moto on 127.0.0.1, started as the tests
start it, with request signatures enforced), where every registry object is a request.

Targets: ours loads in under 5 s (definitions and snapshot, imports apart) and its
snapshot stays under 2 MB, both storages; ours / bare is printed for information.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from dataplat_dagster.catalog.models import DatasetSpec  # noqa: E402
from dataplat_dagster.catalog.registry import project_registry  # noqa: E402
from dataplat_dagster.workspace import Workspace  # noqa: E402

WORKER = HERE / "workers" / "definitions_load.py"
DEFAULT_DATASETS = 300
LOAD_LIMIT_S = 5.0
SNAPSHOT_LIMIT_BYTES = 2_000_000
S3_ENV = ("BENCH_S3_KEY", "BENCH_S3_SECRET")


def make_project(root: Path, datasets: int, storage: dict | None = None):
    """A workspace with project ``bench`` and ``datasets`` registered imports."""
    project = Workspace.init(root).create_project("bench")
    if storage:
        catalog = yaml.safe_load(project.catalog_path.read_text())
        catalog.update(storage)
        project.catalog_path.write_text(yaml.safe_dump(catalog, sort_keys=False))
    registry = project_registry(project)
    for k in range(datasets):
        registry.add_dataset(f"sales_{k:03d}", DatasetSpec(origin="file_upload", description=f"Monthly sales export {k}."))
    return project


def measure(contender: str, project_dir: Path, env: dict[str, str], repeat: int, datasets: int) -> dict:
    """The best of ``repeat`` loads (by load + snapshot time)."""
    command = [sys.executable, str(WORKER), contender, str(project_dir)] + ([str(datasets)] if contender == "bare" else [])
    runs = []
    for _ in range(repeat):
        done = subprocess.run(command, capture_output=True,
                              text=True, env=env, cwd=tempfile.gettempdir())
        if done.returncode != 0:
            raise SystemExit(f"{contender} failed: {done.stderr.strip()[-800:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return min(runs, key=lambda r: r["load_s"] + r["snapshot_s"])


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(where: str, ours: dict, bare: dict, datasets: int) -> None:
    ours_s, bare_s = ours["load_s"] + ours["snapshot_s"], bare["load_s"] + bare["snapshot_s"]
    print(f"\n{where}: {datasets} datasets")
    for name, result in (("ours", ours), ("bare", bare)):
        print(f"  {name}  load {result['load_s']:.2f} s + snapshot {result['snapshot_s']:.2f} s "
              f"(imports {result['import_s']:.2f} s apart); snapshot {result['snapshot_bytes'] / 1e6:.2f} MB; "
              f"{result['assets']} assets")
    print(f"  ours load + snapshot {ours_s:.2f} s  {verdict(ours_s < LOAD_LIMIT_S)} (< {LOAD_LIMIT_S:g} s)")
    print(f"  ours snapshot {ours['snapshot_bytes'] / 1e6:.2f} MB  "
          f"{verdict(ours['snapshot_bytes'] < SNAPSHOT_LIMIT_BYTES)} (< {SNAPSHOT_LIMIT_BYTES / 1e6:g} MB)")
    print(f"  ours / bare: time {ours_s / bare_s:.2f}, snapshot {ours['snapshot_bytes'] / bare['snapshot_bytes']:.2f}"
          "  (for information)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=int, default=DEFAULT_DATASETS, help="datasets (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="loads of each contender; the best counts (default %(default)s)")
    parser.add_argument("--no-s3", action="store_true", help="the local storage only")
    args = parser.parse_args()
    print(f"bench/definitions_load.py  {time.strftime('%Y-%m-%d %H:%M')}  {platform.node()}")
    print(f"  machine: {os.cpu_count()} cores; load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"best of {args.repeat}; each load in a fresh interpreter")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAPLAT_", "DAGSTER_HOME"))}
    with tempfile.TemporaryDirectory(prefix="definitions-load-") as work, ExitStack() as stack:
        work = Path(work)
        local = make_project(work / "local", args.datasets)
        bare = measure("bare", local.dir, base_env, args.repeat, args.datasets)
        report("local storage", measure("ours", local.dir, base_env, args.repeat, args.datasets), bare, args.datasets)
        if args.no_s3:
            return
        from dataplat_dagster_tests.servers.s3 import start_s3

        server = stack.enter_context(start_s3(work / "moto"))
        env = base_env | dict(zip(S3_ENV, (server.access_key, server.secret_key)))
        os.environ.update(dict(zip(S3_ENV, (server.access_key, server.secret_key))))
        lake = {"type": "s3", "bucket": server.bucket, "region": server.region, "endpoint_url": server.endpoint_url,
                "access_key_env": S3_ENV[0], "secret_key_env": S3_ENV[1]}
        remote = make_project(work / "s3", args.datasets, {
            "storage_root": f"s3://{server.bucket}/bench", "storage_connector": "lake", "connectors": {"lake": lake},
        })
        report("S3 storage (moto)", measure("ours", remote.dir, env, args.repeat, args.datasets), bare, args.datasets)
    print(f"\n  load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
