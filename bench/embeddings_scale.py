"""Benchmark: the peak memory of computing embeddings at scale, end to end through the CLI.

Issue 13 asks that a 1M-row dataset and a 100k-image folder run with a peak RSS that is
measured and stated: vectors are written in batches, and no run holds all the rows or all
the images. This script measures the 100k-image folder (``bench/embeddings.py`` measures
the 1M-row dataset, part 2 (a)):

  images   ``--images`` (default 100,000) JPEGs of 64 x 64 (a colour field per label plus
           noise, 10 labels, fixed seed), zipped stored, imported with ``dataplat
           image-folder import`` (timed, for information) into a fresh workspace;
  compute  ``dataplat embeddings compute NAME --checkpoint local-dir:TINY --batch-size 256
           --json`` with the default UMAP map: the tests' tiny open_clip model (random
           weights, 32-pixel input, 32 dimensions), so that the run's time goes to what the
           package does around the model (decoding in the loader's workers, the vectors'
           memory map, the 15 neighbours of every point, UMAP, the explorer with 5,000
           thumbnails, the Parquet) rather than to ViT-B-32, which would take 2.3 hours on
           2 cores (12 images/s). A ViT-B-32 run adds its model's ~600 MB and 512-dimensional
           vectors (100k x 512 x 4 B = 205 MB, memory-mapped).

Peak RSS is the ``ru_maxrss`` that ``os.wait4`` reports for the CLI's process, which waits
for the run's process and that for its loader's workers: the largest of them. The inputs
are kept under ``bench/data/`` (git-ignored); the workspace is removed at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "embeddings_scale"
DATAPLAT = str(Path(sys.executable).with_name("dataplat"))
LABELS = 10


def make_zip(images: int) -> Path:
    import numpy as np
    from PIL import Image

    path = DATA / f"images-{images}.zip"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 255, (LABELS, 3))
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        for i in range(images):
            label = i % LABELS
            pixels = np.clip(colours[label] + rng.integers(-40, 41, (64, 64, 3)), 0, 255).astype("uint8")
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=85)
            archive.writestr(f"images/label_{label}/{i:06d}.jpg", buffer.getvalue())
    os.replace(tmp, path)
    return path


def measured(command: list[str], env: dict) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB, and the output of ``command``."""
    started = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        out.seek(0)
        output = out.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{output[-3000:]}")
    return wall, usage.ru_maxrss / 1024, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    args = parser.parse_args()
    # bench/profile.py would shadow the standard library's profile, which torch imports.
    sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]
    from dataplat_dagster_tests.embeddings.tiny_clip import save_tiny_clip

    started = time.perf_counter()
    archive = make_zip(args.images)
    print(f"{args.images:,} images: {archive.stat().st_size / 2**20:,.0f} MiB zip ({time.perf_counter() - started:.0f} s to make or find)")
    workspace = Path(tempfile.mkdtemp(prefix="dataplat-embeddings-scale-", dir=DATA))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATAPLAT_")} | {"DAGSTER_HOME": str(workspace)}
        subprocess.run([DATAPLAT, "init", str(workspace)], check=True, capture_output=True, env=env)
        cli = [DATAPLAT, "--workspace", str(workspace), "--project", "scale"]
        subprocess.run([*cli[:3], "project", "create", "scale"], check=True, capture_output=True, env=env)
        save_tiny_clip(workspace / "tiny")
        wall, rss, _ = measured([*cli, "image-folder", "import", str(archive), "--name", "pics"], env)
        print(f"import    {wall:8.1f} s   peak RSS {rss:7.0f} MB   (for information)")
        wall, rss, output = measured([*cli, "embeddings", "compute", "pics", "--checkpoint", f"local-dir:{workspace / 'tiny'}",
                                      "--batch-size", "256", "--device", "cpu", "--json"], env)
        report = json.loads(output[output.index("{"):])
        print(f"compute   {wall:8.1f} s   peak RSS {rss:7.0f} MB   {report['count']:,} images, encoding "
              f"{report['throughput_per_s']:,.0f} images/s, run {report['seconds']:.1f} s, map {report['map']['method']}")
        print(f"Target: peak RSS of the 100k-image run stated (no target given); it is {rss / 1024:.2f} GB.")
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


if __name__ == "__main__":
    main()
