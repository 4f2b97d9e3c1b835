"""Helpers that the file store tests share (FTP, SFTP, S3, GCS): test data made on demand,
and the steps of the tests that every store passes the same way. Assertions stay in the
tests, which hold each store's own limits."""

import hashlib
import tracemalloc
from pathlib import Path
from typing import NamedTuple

MB = 1024 * 1024


def failure(report):
    """The failed step of a check report, and its message."""
    failed = report.failed_step
    assert failed is not None, report.to_json()
    return failed.step, failed.message


def chunks(count: int, size: int = MB):
    """``count`` pseudo-random chunks made on demand (never all in memory), and their digest."""
    digest = hashlib.sha256()

    def generate():
        for index in range(count):
            chunk = hashlib.shake_256(index.to_bytes(4, "big")).digest(size)
            digest.update(chunk)
            yield chunk

    return generate(), digest


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(MB):
            digest.update(block)
    return digest.hexdigest()


class RoundTrip(NamedTuple):
    sent: str  # the digests of what was written and what was read back
    received: str
    size: int  # bytes read back
    upload_peak: int  # the most memory traced while writing, then while reading
    download_peak: int


def stream_up_and_down(store, path: str, count: int) -> RoundTrip:
    """Write ``count`` MB to ``path`` and read it back, tracing the memory either takes."""
    source, sent = chunks(count)
    received = hashlib.sha256()
    size = 0
    tracemalloc.start()
    try:
        with store.write(path) as target:
            for chunk in source:
                target.write(chunk)
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with store.open_read(path) as stream:
            while block := stream.read(MB):
                received.update(block)
                size += len(block)
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return RoundTrip(sent.hexdigest(), received.hexdigest(), size, upload_peak, download_peak)


def write_then_fail_halfway(store, path: str) -> None:
    """Write ``path`` whole, then raise RuntimeError("halfway") inside a second write of it."""
    with store.write(path) as stream:
        stream.write(b"old content\n")
    with store.write(path) as stream:
        stream.write(b"new content that never completes" * 100_000)
        raise RuntimeError("halfway")


def write_killing_the_server(store, server, path: str) -> None:
    """Write 200 MB to ``path``, killing ``server`` once 6 MB are in the stream."""
    source, _ = chunks(200)
    with store.write(path) as stream:
        for index, chunk in enumerate(source):
            stream.write(chunk)
            if index == 5:
                server.kill()
