"""gcp-storage-emulator on 127.0.0.1, in memory, with one bucket.

The emulator has no authentication: clients connect with AnonymousCredentials and
`client_options={"api_endpoint": endpoint_url}`, or through STORAGE_EMULATOR_HOST
(the only way in for dagster-gcp's GCSResource). It runs with its working directory in
`workdir`, so nothing it might write lands in the repository.
"""

import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from dataplat_dagster_tests.servers.ports import HOST, free_port
from dataplat_dagster_tests.servers.process import ServerHandle, ServerProcess

PROJECT = "dataplat-test"
BUCKET = "dataplat-test"


@dataclass
class GcsServer(ServerHandle):
    """How to reach the emulator; `bucket` exists from the start."""

    endpoint_url: str
    project: str
    bucket: str
    _process: ServerProcess = field(repr=False)


def start_gcs(workdir: Path, timeout: float = 60.0) -> GcsServer:
    """Start the emulator on a free port and wait until it serves `bucket`."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    endpoint_url = f"http://{HOST}:{port}"
    emulator = Path(sys.executable).with_name("gcp-storage-emulator")
    process = ServerProcess(
        "gcs",
        [str(emulator), "start", "--host", HOST, "--port", str(port), "--in-memory",
         "--default-bucket", BUCKET, "--quiet"],
        workdir / "gcs.log", cwd=workdir,
    )
    with process.starting():
        process.wait_ready(lambda: _bucket_served(endpoint_url), timeout)
    return GcsServer(endpoint_url=endpoint_url, project=PROJECT, bucket=BUCKET, _process=process)


def _bucket_served(endpoint_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint_url}/storage/v1/b/{BUCKET}", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
