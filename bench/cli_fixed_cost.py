"""The 10-row import through the CLI (bench/ingest.py's (e)) in two checkouts, taking turns.

    python bench/cli_fixed_cost.py OTHER_CHECKOUT [ROUNDS]

OTHER_CHECKOUT is another checkout of this repository (for example
`git worktree add /tmp/base <commit>`), run with this venv's Python. Each round imports the
same 10-row file once in a fresh workspace of each checkout, so that the machine's noise
hits both alike. Prints the best and median wall times and their ratio (this checkout over
the other).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROWS = 10


def cli(checkout: str, workspace: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DAGSTER_HOME=str(workspace), PYTHONPATH=checkout)
    command = [sys.executable, "-c", "from dataplat_dagster.cli.main import main; main()", "--workspace", str(workspace), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True)


def new_workspace(checkout: str) -> Path:
    workspace = Path(tempfile.mkdtemp(prefix="fixed-cost-ws-"))
    shutil.rmtree(workspace)
    cli(checkout, workspace, "init", str(workspace))
    cli(checkout, workspace, "project", "create", "bench")
    return workspace


def timed_import(checkout: str, workspace: Path, csv: Path, name: str) -> float:
    start = time.perf_counter()
    result = cli(checkout, workspace, "dataset", "import", str(csv), "--name", name)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"import failed in {checkout}: {result.stderr}")
    cli(checkout, workspace, "dataset", "delete", name, "--yes")
    return seconds


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    checkouts = {"other": str(Path(sys.argv[1]).resolve()), "this": str(HERE.parent)}
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    csv = Path(tempfile.mkdtemp(prefix="fixed-cost-")) / "tiny.csv"
    csv.write_text("id,name,amount\n" + "".join(f"{i},n{i},{i * 1.5}\n" for i in range(ROWS)))
    workspaces = {key: new_workspace(path) for key, path in checkouts.items()}
    times: dict[str, list[float]] = {key: [] for key in checkouts}
    for round_ in range(rounds):
        for key, path in checkouts.items():
            times[key].append(timed_import(path, workspaces[key], csv, f"t{round_}"))
    for key, values in times.items():
        print(f"{key} ({checkouts[key]}): best {min(values):.2f} s, median {median(values):.2f} s "
              f"({', '.join(f'{v:.2f}' for v in values)})")
    print(f"this / other: best {min(times['this']) / min(times['other']):.3f}, "
          f"median {median(times['this']) / median(times['other']):.3f}")
    for workspace in workspaces.values():
        shutil.rmtree(workspace, ignore_errors=True)


if __name__ == "__main__":
    main()
