"""The file-store half of ``bench/connectors.py``: 100 MB up and down, ours vs the bare client.

For each store the same random file is uploaded and downloaded through our ``FileStore``
(``upload`` / ``download``, with its atomic write and its retries) and through the bare
client with its usual high-level calls:

  - S3: boto3 ``upload_file`` / ``download_file`` (its managed, multi-threaded transfer);
  - GCS: google-cloud-storage ``upload_from_filename`` / ``download_to_filename``;
  - FTP: ftplib ``storbinary`` / ``retrbinary`` with 1 MiB blocks;
  - SFTP: paramiko ``SFTPClient.put`` / ``get`` (``get`` prefetches; paramiko's default window
    and packet sizes).

Each pair does one untimed round first (a fresh server's first transfer is slower), then
``repeat`` interleaved rounds; the best time of each counts. The ratio printed is the bare client's time / ours: 1.0 means the same throughput, and the
target is at least 0.9. Every server runs on 127.0.0.1 from the tests' fixtures, so the
figures measure the client side and the local server, not a network.
"""

from __future__ import annotations

import ftplib
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from dataplat_dagster.connectors.models import FtpConnectorSpec, GcsConnectorSpec, S3ConnectorSpec, SftpConnectorSpec
from dataplat_dagster.connectors.registry import open_connector
from dataplat_dagster_tests.servers.ftp import start_ftp
from dataplat_dagster_tests.servers.gcs import start_gcs
from dataplat_dagster_tests.servers.s3 import start_s3
from dataplat_dagster_tests.servers.sftp import start_sftp


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def bench_stores(megabytes: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-stores-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        source = work / "payload.bin"
        with open(source, "wb") as handle:
            for _ in range(megabytes):
                handle.write(os.urandom(1 << 20))
        expected = digest(source)
        print(f"File stores, {megabytes} MB up and down, best of {repeat} (ratio = bare client's time / ours, target >= 0.9):")

        contenders = {
            "s3": _s3(stack, work),
            "gcs": _gcs(stack, work),
            "ftp": _ftp(stack, work),
            "sftp": _sftp(stack, work),
        }
        for name, (ours, bare) in contenders.items():
            # One untimed round each first: the servers' first transfer pays their warm-up.
            for who, client in (("ours", ours), ("bare", bare)):
                client.upload(source, f"bench/warm-{who}.bin")
                client.download(f"bench/warm-{who}.bin", work / "warm.bin")
            # Rounds interleave the two, so that a noisy moment costs both alike.
            times = {key: [] for key in ("ours up", "bare up", "ours down", "bare down")}
            for _ in range(repeat):
                for who, client in (("ours", ours), ("bare", bare)):
                    times[f"{who} up"].append(timed(lambda: client.upload(source, f"bench/{who}.bin")))
                for who, client in (("ours", ours), ("bare", bare)):
                    target = work / f"{name}-{who}.bin"
                    times[f"{who} down"].append(timed(lambda: client.download(f"bench/{who}.bin", target)))
                    assert digest(target) == expected, f"{name} {who}: the downloaded file differs"
                    target.unlink()
            best = {key: min(values) for key, values in times.items()}
            results = {"ours": (best["ours up"], best["ours down"]), "bare": (best["bare up"], best["bare down"])}
            (ours_up, ours_down), (bare_up, bare_down) = results["ours"], results["bare"]
            for direction, mine, theirs in (("upload", ours_up, bare_up), ("download", ours_down, bare_down)):
                ratio = theirs / mine
                verdict = "PASS" if ratio >= 0.9 else "MISS"
                print(f"  {name:<4} {direction:<8}  ours {megabytes / mine:7.1f} MB/s  bare {megabytes / theirs:7.1f} MB/s  ratio {ratio:5.2f}  {verdict}")


class _Ours:
    """Our store behind the same two calls as the bare clients."""

    def __init__(self, store):
        self.store = store

    def upload(self, local: Path, path: str) -> None:
        self.store.upload(local, path)

    def download(self, path: str, local: Path) -> None:
        self.store.download(path, local)


def _open_store(stack: ExitStack, name: str, spec, env: dict[str, str], work: Path):
    os.environ.update(env)
    connector = stack.enter_context(open_connector(name, spec, work))
    return _Ours(stack.enter_context(connector.open_store()))


def _s3(stack: ExitStack, work: Path):
    import boto3

    server = stack.enter_context(start_s3(work / "s3"))
    spec = S3ConnectorSpec(bucket=server.bucket, endpoint_url=server.endpoint_url, region=server.region,
                           access_key_env="BENCH_S3_KEY", secret_key_env="BENCH_S3_SECRET")
    ours = _open_store(stack, "s3", spec, {"BENCH_S3_KEY": server.access_key, "BENCH_S3_SECRET": server.secret_key}, work)
    client = boto3.client("s3", endpoint_url=server.endpoint_url, region_name=server.region,
                          aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key)

    class Bare:
        def upload(self, local, path):
            client.upload_file(str(local), server.bucket, path)

        def download(self, path, local):
            client.download_file(server.bucket, path, str(local))

    return ours, Bare()


def _gcs(stack: ExitStack, work: Path):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    server = stack.enter_context(start_gcs(work / "gcs"))
    spec = GcsConnectorSpec(bucket=server.bucket, gcp_project=server.project, endpoint_url=server.endpoint_url)
    ours = _open_store(stack, "gcs", spec, {}, work)
    bucket = storage.Client(project=server.project, credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": server.endpoint_url}).bucket(server.bucket)

    class Bare:
        def upload(self, local, path):
            bucket.blob(path).upload_from_filename(str(local))

        def download(self, path, local):
            bucket.blob(path).download_to_filename(str(local))

    return ours, Bare()


def _ftp(stack: ExitStack, work: Path):
    server = stack.enter_context(start_ftp(work / "ftp"))
    spec = FtpConnectorSpec(host=server.host, port=server.port, username=server.username, password_env="BENCH_FTP_PASSWORD")
    ours = _open_store(stack, "ftp", spec, {"BENCH_FTP_PASSWORD": server.password}, work)
    ftp = ftplib.FTP()
    ftp.connect(server.host, server.port)
    ftp.login(server.username, server.password)
    stack.callback(ftp.close)

    class Bare:
        def upload(self, local, path):
            try:
                ftp.mkd(os.path.dirname(path))
            except ftplib.error_perm:
                pass  # the folder exists
            with open(local, "rb") as handle:
                ftp.storbinary(f"STOR {path}", handle, blocksize=1 << 20)

        def download(self, path, local):
            with open(local, "wb") as handle:
                ftp.retrbinary(f"RETR {path}", handle.write, blocksize=1 << 20)

    return ours, Bare()


def _sftp(stack: ExitStack, work: Path):
    import paramiko

    server = stack.enter_context(start_sftp(work / "sftp"))
    spec = SftpConnectorSpec(host=server.host, port=server.port, username=server.username, password_env="BENCH_SFTP_PASSWORD",
                             known_hosts=str(server.known_hosts))
    ours = _open_store(stack, "sftp", spec, {"BENCH_SFTP_PASSWORD": server.password}, work)
    ssh = paramiko.SSHClient()
    ssh.load_host_keys(str(server.known_hosts))
    ssh.connect(server.host, server.port, username=server.username, password=server.password, allow_agent=False, look_for_keys=False)
    stack.callback(ssh.close)
    sftp = ssh.open_sftp()

    class Bare:
        def upload(self, local, path):
            try:
                sftp.mkdir(os.path.dirname(path))
            except OSError:
                pass  # the folder exists
            sftp.put(str(local), path)

        def download(self, path, local):
            sftp.get(path, str(local))

    return ours, Bare()

