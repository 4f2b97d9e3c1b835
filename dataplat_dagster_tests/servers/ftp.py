"""A pyftpdlib FTP server, plain or explicit FTPS, on 127.0.0.1 in its own process.

pyftpdlib could run in a thread of the test process, but then kill() could not cut
connections the way a crashed server does; `ftp_main` runs it as a subprocess. Passive
mode uses ports the kernel picks, so parallel servers never collide.
"""

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dataplat_dagster_tests.servers.ports import HOST
from dataplat_dagster_tests.servers.process import ServerHandle, ServerProcess

FULL_PERM = "elradfmwMT"
READONLY_PERM = "elr"


@dataclass
class FtpServer(ServerHandle):
    """How to reach the server.

    Both users see `root` as "/": `username` may read and write everything,
    `readonly_username` may only list and download (perm "elr"), so uploads fail with
    550. With `tls`, the server speaks explicit FTPS (AUTH TLS) and requires TLS on
    the control and the data channel (the client must call prot_p()); `cafile` is the
    self-signed certificate (subjectAltName IP:127.0.0.1) to verify it with.
    """

    host: str
    port: int
    username: str
    password: str
    root: Path
    readonly_username: str
    readonly_password: str
    tls: bool
    cafile: Path | None
    _process: ServerProcess = field(repr=False)


def start_ftp(workdir: Path, tls: bool = False, timeout: float = 30.0) -> FtpServer:
    """Start an FTP (or, with `tls`, FTPS) server whose users' home is `workdir/root`."""
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "root"
    root.mkdir(exist_ok=True)
    username, password = "dataplat", secrets.token_hex(8)
    readonly_username, readonly_password = "dataplat_readonly", secrets.token_hex(8)
    config = {
        "root": str(root),
        "users": [[username, password, FULL_PERM], [readonly_username, readonly_password, READONLY_PERM]],
        "port_file": str(workdir / "port"),
    }
    cafile = None
    if tls:
        cafile, keyfile = workdir / "cert.pem", workdir / "key.pem"
        _self_signed_certificate(cafile, keyfile)
        config.update(certfile=str(cafile), keyfile=str(keyfile))
    config_path = workdir / "ftp.json"
    config_path.write_text(json.dumps(config))

    port_file = Path(config["port_file"])
    port_file.unlink(missing_ok=True)
    process = ServerProcess(
        "ftps" if tls else "ftp",
        [sys.executable, "-m", "dataplat_dagster_tests.servers.ftp_main", str(config_path)],
        workdir / "ftp.log", cwd=workdir, env=_env_importing_this_package(),
    )
    with process.starting():
        process.wait_ready(port_file.exists, timeout)
        port = int(port_file.read_text())
    return FtpServer(
        host=HOST, port=port, username=username, password=password, root=root,
        readonly_username=readonly_username, readonly_password=readonly_password,
        tls=tls, cafile=cafile, _process=process,
    )


def _env_importing_this_package() -> dict[str, str]:
    """The environment with the repository root first on PYTHONPATH, for `-m ftp_main`."""
    repo_root = str(Path(__file__).resolve().parents[2])
    paths = [repo_root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def _self_signed_certificate(certfile: Path, keyfile: Path) -> None:
    """A certificate for IP 127.0.0.1 that clients trust by loading it as their CA."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "7",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(keyfile), "-out", str(certfile)],
        check=True, capture_output=True,
    )
