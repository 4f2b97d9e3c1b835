"""OpenSSH's sshd on 127.0.0.1 serving SFTP only, for a real non-root user.

Root bypasses file permissions, so the SFTP login is a throwaway system user,
`dataplat-sftp`, shared by every server on the machine (each pytest-xdist worker, each
concurrent pytest session): creating it is idempotent and serialised by a lock file,
and its password is a constant for the same reason. Its passwd home is /nonexistent;
each server sends it to its own home with `internal-sftp -d`. The home and
authorized_keys live in a /tmp directory the user can reach (see `reachable_dir`);
host and client keys, known_hosts files and the log stay in `workdir`.
"""

import base64
import fcntl
import hashlib
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from dataplat_dagster_tests.servers.ports import HOST, free_port
from dataplat_dagster_tests.servers.process import ServerHandle, ServerProcess, reachable_dir

SFTP_USER = "dataplat-sftp"
SFTP_PASSWORD = "dataplat-sftp-password"
USER_LOCK = Path("/tmp/dataplat-sftp-user.lock")
KEY_PASSPHRASE = "dataplat-key-passphrase"
LOCKED_DIR = "locked"

SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {pid_file}
UsePAM no
StrictModes no
UseDNS no
PermitRootLogin no
AllowUsers {user}
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile {authorized_keys}
AllowTcpForwarding no
X11Forwarding no
PrintMotd no
LogLevel VERBOSE
Subsystem sftp internal-sftp
ForceCommand internal-sftp -d {home}
"""


@dataclass
class SftpServer(ServerHandle):
    """How to reach the server and what to check it with.

    `home` is the user's SFTP "." (owned by the user; files root writes there are
    readable but root-owned). Both `private_key` (ed25519, unencrypted) and
    `encrypted_private_key` (RSA, `key_passphrase`) are authorised. `known_hosts`
    holds the server's real host key for [127.0.0.1]:port, `wrong_known_hosts` a
    different ed25519 key for the same name; `host_key_fingerprint` is written as
    `ssh-keygen -lf` prints it. `locked_dir` is a folder in `home` that belongs to
    root with mode 700, so the user gets "permission denied" inside it.
    """

    host: str
    port: int
    username: str
    password: str
    home: Path
    private_key: Path
    encrypted_private_key: Path
    key_passphrase: str
    known_hosts: Path
    host_key_fingerprint: str
    wrong_known_hosts: Path
    locked_dir: str
    _runtime_dir: Path = field(repr=False)
    _process: ServerProcess = field(repr=False)

    def _cleanup(self) -> None:
        shutil.rmtree(self._runtime_dir, ignore_errors=True)


def start_sftp(workdir: Path, timeout: float = 30.0) -> SftpServer:
    """Generate keys, start sshd on a free port, wait until it sends its banner."""
    workdir.mkdir(parents=True, exist_ok=True)
    user = _ensure_sftp_user()
    host_key = _keygen(workdir / "ssh_host_ed25519_key", "ed25519")
    other_host_key = _keygen(workdir / "other_host_ed25519_key", "ed25519")
    private_key = _keygen(workdir / "id_ed25519", "ed25519")
    encrypted_private_key = _keygen(workdir / "id_rsa_encrypted", "rsa", KEY_PASSPHRASE)

    runtime = reachable_dir("sftp")
    home = runtime / "home"
    (home / LOCKED_DIR).mkdir(parents=True)
    (home / LOCKED_DIR / "secret.txt").write_text("root only\n")
    (home / LOCKED_DIR).chmod(0o700)
    shutil.chown(home, user.pw_uid, user.pw_gid)
    authorized_keys = runtime / "authorized_keys"
    authorized_keys.write_text(_public_key(private_key) + "\n" + _public_key(encrypted_private_key) + "\n")
    authorized_keys.chmod(0o644)

    port = free_port()
    known_hosts, wrong_known_hosts = workdir / "known_hosts", workdir / "wrong_known_hosts"
    known_hosts.write_text(_known_hosts_line(port, host_key))
    wrong_known_hosts.write_text(_known_hosts_line(port, other_host_key))
    config = workdir / "sshd_config"
    config.write_text(SSHD_CONFIG.format(
        port=port, host_key=host_key, pid_file=workdir / "sshd.pid", user=SFTP_USER,
        authorized_keys=authorized_keys, home=home,
    ))

    # sshd's privilege separation chroots into /run/sshd, which a fresh container lacks.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    process = ServerProcess("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], workdir / "sshd.log")
    server = SftpServer(
        host=HOST, port=port, username=SFTP_USER, password=SFTP_PASSWORD, home=home,
        private_key=private_key, encrypted_private_key=encrypted_private_key, key_passphrase=KEY_PASSPHRASE,
        known_hosts=known_hosts, host_key_fingerprint=_fingerprint(host_key),
        wrong_known_hosts=wrong_known_hosts, locked_dir=LOCKED_DIR,
        _runtime_dir=runtime, _process=process,
    )
    with process.starting(on_failure=server._cleanup):
        process.wait_ready(lambda: _sends_ssh_banner(port), timeout)
    return server


def _ensure_sftp_user() -> pwd.struct_passwd:
    """Create the shared SFTP user if it is missing and (re)set its password."""
    with open(USER_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            pwd.getpwnam(SFTP_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                 "--comment", "dataplat SFTP tests", SFTP_USER],
                check=True, capture_output=True,
            )
        subprocess.run(["chpasswd"], input=f"{SFTP_USER}:{SFTP_PASSWORD}\n", text=True, check=True, capture_output=True)
        return pwd.getpwnam(SFTP_USER)


def _keygen(path: Path, kind: str, passphrase: str = "") -> Path:
    extra = ["-b", "2048"] if kind == "rsa" else []
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, *extra, "-N", passphrase, "-C", f"dataplat-test-{path.name}", "-f", str(path)],
        check=True, capture_output=True,
    )
    return path


def _public_key(private_key: Path) -> str:
    return Path(f"{private_key}.pub").read_text().strip()


def _known_hosts_line(port: int, host_key: Path) -> str:
    key_type, key_base64 = _public_key(host_key).split()[:2]
    return f"[{HOST}]:{port} {key_type} {key_base64}\n"


def _fingerprint(host_key: Path) -> str:
    """SHA256:<base64 of the key blob's SHA-256, unpadded>, as `ssh-keygen -lf` writes it."""
    blob = base64.b64decode(_public_key(host_key).split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _sends_ssh_banner(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False
