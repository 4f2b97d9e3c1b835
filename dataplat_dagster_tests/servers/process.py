"""What every server handle shares: its subprocess, its log, stop(), kill(), `with`.

Each server runs in its own session (process group) so that signals sent to it never
reach pytest. `kill()` SIGKILLs the server's whole process tree, not just its first
process: PostgreSQL backends and sshd's per-connection children make themselves
session leaders and would otherwise keep serving an open connection after their parent
died, so a test that kills the server half-way through a transfer would see nothing.
"""

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


class ServerStartError(RuntimeError):
    """A server did not come up; the message ends with the tail of its log."""


def reachable_dir(kind: str) -> Path:
    """A fresh directory under /tmp that non-root users can traverse (mode 755).

    pytest's tmp dirs sit under /tmp/pytest-of-root, which is mode 700 and which every
    new pytest session resets to 700, so the `postgres` user and the SFTP test user
    could not reach files there. The server handle removes this directory on stop().
    """
    path = Path(tempfile.mkdtemp(prefix=f"dataplat-{kind}-", dir="/tmp"))
    path.chmod(0o755)
    return path


def _process_tree(root: int) -> list[int]:
    """`root` and all its descendants, parents first, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


class ServerProcess:
    """One server subprocess with its output in `log_path`.

    `stop_signal` is the server's own "shut down cleanly" signal (PostgreSQL: SIGINT
    for a fast shutdown; the others: SIGTERM).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
    ):
        self.name = name
        self.log_path = log_path
        self.stop_signal = stop_signal
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=cwd, env=env, start_new_session=True,
                user=user, group=user, extra_groups=[] if user else None,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def failed(self, why: str) -> ServerStartError:
        """Kill what is left of the server; the error to raise, with the log's tail."""
        self.kill()
        return ServerStartError(f"{self.name} did not start: {why}\n--- {self.log_path} ---\n{self.log_tail()}")

    def wait_ready(self, ready: Callable[[], bool], timeout: float) -> None:
        """Poll `ready()` until it is true; raise if the server exits or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise self.failed(f"it exited with code {self.popen.returncode}")
            if ready():
                return
            if time.monotonic() > deadline:
                raise self.failed(f"not ready after {timeout:.0f} s")
            time.sleep(0.05)

    @contextmanager
    def starting(self, on_failure: Callable[[], None] | None = None) -> Iterator[None]:
        """Wrap the wait for readiness and the setup that follows it.

        Whatever goes wrong inside kills the server and runs `on_failure` (the handle's
        cleanup); an ordinary error comes out as ServerStartError with the log's tail.
        """
        try:
            yield
        except BaseException as error:
            self.kill()
            if on_failure is not None:
                on_failure()
            if isinstance(error, Exception) and not isinstance(error, ServerStartError):
                raise self.failed(f"setup failed: {error!r}") from error
            raise

    def stop(self, timeout: float = 20.0) -> None:
        """Ask the server to shut down; SIGKILL it if it has not after `timeout` s.

        Children still running once the server has exited are killed too: sshd's
        listener leaves open sessions running when it gets SIGTERM.
        """
        if not self.alive():
            return
        tree = _process_tree(self.pid)
        os.kill(self.pid, self.stop_signal)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self._kill_all(tree)

    def kill(self) -> None:
        """SIGKILL the server and every process it started, at once."""
        if self.alive():
            self._kill_all(_process_tree(self.pid))

    def _kill_all(self, pids: list[int]) -> None:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.popen.wait()


class ServerHandle:
    """Base of the dataclass handles: a context manager that stops the server on exit.

    Subclasses hold their `ServerProcess` in `_process` and override `_cleanup()` to
    remove what the server leaves behind once it is down.
    """

    _process: ServerProcess

    def stop(self) -> None:
        """Shut the server down cleanly and remove its files (safe to call twice)."""
        self._process.stop()
        self._cleanup()

    def kill(self) -> None:
        """SIGKILL the server now, cutting every open connection; stop() still cleans up."""
        self._process.kill()

    def _cleanup(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
