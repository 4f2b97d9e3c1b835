"""One of the processes of the concurrent-edits test: ``python -m ... ROLE ROOT N``.

Each command is a process of its own, as a user's or a script's would be; one that fails
stops the worker with its output.
"""

import subprocess
import sys
from pathlib import Path

DATAPLAT = str(Path(sys.executable).parent / "dataplat")


def dataplat(*args: str) -> None:
    done = subprocess.run([DATAPLAT, "--project", "shop", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode:
        raise SystemExit(f"dataplat {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")


def main(role: str, root: Path, count: int) -> None:
    for i in range(count):
        if role == "create":
            dataplat("connector", "create", "sql", f"made_{i}", "--dialect", "sqlite", "--database", f"made_{i}.db")
        elif role == "delete":
            dataplat("connector", "delete", f"doomed_{i}", "--yes")
        elif role == "rename":
            dataplat("dataset", "rename", f"moving_{i}", f"moving_{i + 1}")
        elif role == "import":
            dataplat("dataset", "import", str(root / "tiny.csv"), "--name", f"imported_{i}", "--no-profile")
        else:
            raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]))
