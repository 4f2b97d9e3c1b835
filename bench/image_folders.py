"""Benchmark: importing an image folder (a zip of labelled images), against a bare loop.

The images are made by this script with Pillow and numpy (fixed seeds: the same count
always yields the same zip) and kept under ``bench/data/`` (git-ignored):

  small  ``--images`` (default 10,000) JPEGs of about 256 x 256 (224 to 288 pixels a side,
         a smooth random field plus noise, quality 90, 15-25 KB each), 5 labels, in one top
         folder, deflated (what ``zip -r`` writes);
  large  random-noise PNGs of 2000 x 1500 (9 MB each, incompressible), 2 labels, stored,
         until the zip reaches ``--zip-mib`` (default 2,048 MiB).

On the small zip, best of ``--repeat`` (default 3), the contenders taking turns (each one
first in its round) so that a burst of load hits them alike:

  bare  a child process running the loop a user could write: ``zipfile``, and for each
        member Pillow's ``Image.open(...).verify()``, a second ``Image.open(...)`` +
        ``load()``, then the member's bytes written to a folder under its path;
  (b)   ours, the run's work alone, in a child process: ``images.assets._import`` (the
        body of the asset) with a stub context (``.log``, ``.run_id``) in a fresh
        workspace, i.e. ``extract_images`` (every member checked, streamed to disk while
        hashed, decoded in full), ``manifest_table``, ``_render`` (manifest.parquet,
        summary.json, label chart, contact sheet) and ``publish_version``;
  (a)   ours end to end: ``dataplat image-folder import ZIP --name N`` in a fresh
        workspace (``dataplat init`` + ``project create``): the CLI, the copy of the zip
        into storage, the Dagster run and its records. The first import of the
        workspace also creates the instance's databases; each round imports a new image
        folder.

bare and (b) are timed inside the child, interpreter start and imports apart (printed);
(a) is the child's wall time. Every contender starts after an ``os.sync()``, so that none
pays for the writeback of the files the one before wrote. Peak RSS is the ``ru_maxrss``
that ``os.wait4`` reports for each child (its process tree), CPU seconds its user + system
time; a child's ``ru_maxrss`` starts from this process's peak, so this one stays small
(the data is made in a child too; its own peak is printed at the end). What the
contenders write is removed only at the end (see ``SCRATCH``).

On the large zip (read once beforehand, as the small one, so both come from the page
cache), (b) once, and bare once for information: peak RSS and time.

Targets: (b) / bare <= 1.5 on the small zip ((a) / bare is printed for information); peak
RSS of (b) on the 2 GiB zip under 500 MB (the zip is streamed, never held in memory).
``--quick``: 1,000 images and a 200 MiB zip, one round: a check in under a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA_DIR = HERE / "data"
BIN = Path(sys.executable).parent
DATAPLAT = BIN / "dataplat"
PROJECT = "bench"
VERSION = 1
DEFAULT_IMAGES, QUICK_IMAGES = 10_000, 1_000
DEFAULT_ZIP_MIB, QUICK_ZIP_MIB = 2048, 200
SMALL_LABELS = ("boots", "dresses", "hats", "shirts", "shoes")
LARGE_LABELS = ("noise_a", "noise_b")
LARGE_SIZE = (2000, 1500)
RATIO_TARGET = 1.5
RSS_TARGET_MB = 500
ZIP_DATE = (2026, 1, 1, 0, 0, 0)


# --- Data: made in a child process, so that this one stays small ------------------------------


def small_zip_path(images: int) -> Path:
    return DATA_DIR / f"images_small_{images}_v{VERSION}.zip"


def large_zip_path(mib: int) -> Path:
    return DATA_DIR / f"images_large_{mib}mib_v{VERSION}.zip"


def ensure_data(kind: str, amount: int) -> Path:
    path = small_zip_path(amount) if kind == "small" else large_zip_path(amount)
    if not path.exists():
        subprocess.run([sys.executable, __file__, "--make", kind, str(amount)], check=True)
    return path


def make_data(kind: str, amount: int) -> None:
    import zipfile

    sys.path.insert(0, str(HERE))
    import benchdata

    def write_small(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for k in range(amount):
                label = SMALL_LABELS[k % len(SMALL_LABELS)]
                info = zipfile.ZipInfo(f"catalog/{label}/{label}_{k:05d}.jpg", ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, _small_jpeg(k))

    def write_large(tmp: Path) -> None:
        target, written, k = amount << 20, 0, 0
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            while written < target:
                label = LARGE_LABELS[k % len(LARGE_LABELS)]
                data = _noise_png(k)
                info = zipfile.ZipInfo(f"scans/{label}/{label}_{k:04d}.png", ZIP_DATE)
                archive.writestr(info, data)
                written, k = written + len(data), k + 1

    if kind == "small":
        benchdata._write_atomically(small_zip_path(amount), write_small, f"{amount:,} JPEGs of about 256 x 256")
    else:
        benchdata._write_atomically(large_zip_path(amount), write_large, f"{amount:,} MiB of 2000 x 1500 noise PNGs")


def _small_jpeg(k: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(1_000_000 + k)
    width, height = (int(v) for v in rng.integers(224, 289, 2))
    field = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((width, height), Image.BICUBIC)
    pixels = np.asarray(field, dtype=np.int16) + rng.normal(0, 6, (height, width, 3)).astype(np.int16)
    out = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(out, "JPEG", quality=90)
    return out.getvalue()


def _noise_png(k: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(2_000_000 + k)
    width, height = LARGE_SIZE
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(out, "PNG", compress_level=1)
    return out.getvalue()


# --- The contenders inside their child process ---------------------------------------------------


def work_bare(zip_path: Path, out: Path) -> dict:
    """The loop a user would write: check, decode, write each member."""
    started = time.perf_counter()
    import io
    import zipfile

    from PIL import Image

    imported = time.perf_counter()
    steps = dict.fromkeys(("read", "verify", "load", "write"), 0.0)
    count = 0
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            t0 = time.perf_counter()
            data = archive.read(info)
            t1 = time.perf_counter()
            with Image.open(io.BytesIO(data)) as image:
                image.verify()
            t2 = time.perf_counter()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
            t3 = time.perf_counter()
            target = out / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            t4 = time.perf_counter()
            for step, seconds in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                steps[step] += seconds
            count += 1
    done = time.perf_counter()
    return {"seconds": done - imported, "imports_s": imported - started, "images": count, "steps": steps}


def work_ours(zip_path: Path, out: Path) -> dict:
    """The run's work: ``_import`` as the asset calls it, each stage timed on the way."""
    started = time.perf_counter()
    import logging
    from types import SimpleNamespace

    # What the step imports when it starts (the asset's module imports them inside the run).
    import PIL.Image  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    from dataplat_dagster.catalog.registry import project_catalog
    from dataplat_dagster.datasets.storage import DatasetStore, project_root
    from dataplat_dagster.images import archive, assets
    from dataplat_dagster.workspace import Workspace

    imported = time.perf_counter()
    rss_imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    project = Workspace.init(out).create_project(PROJECT)
    store = assets.image_folder_store(project_root(project.dir, project_catalog(project)), "bench_images")
    steps: dict[str, float] = {}

    def timed(step, function):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                steps[step] = steps.get(step, 0.0) + time.perf_counter() - t0
        return wrapper

    archive.extract_images = timed("extract_images", archive.extract_images)
    archive.manifest_table = timed("manifest_table", archive.manifest_table)
    assets._render = timed("_render", assets._render)
    DatasetStore.publish_version = timed("publish_version", DatasetStore.publish_version)
    logging.basicConfig(level=logging.WARNING)
    context = SimpleNamespace(log=logging.getLogger("bench"), run_id="bench")
    ready = time.perf_counter()
    metadata = assets._import(context, project, store, zip_path, False)
    done = time.perf_counter()
    return {"seconds": done - ready, "imports_s": imported - started, "setup_s": ready - imported,
            "images": metadata["images"].value, "steps": steps, "rss_imported_mib": rss_imported}


# --- Measuring a child process -------------------------------------------------------------------


@dataclass
class Measure:
    wall_s: float  # the child's wall time, start-up included
    cpu_s: float  # user + system of the child's process tree
    rss_mib: float  # its peak RSS (ru_maxrss)
    seconds: float | None = None  # the work alone, as the child timed it
    report: dict | None = None


def run_measured(command: list[str], *, env: dict | None = None, cwd: Path | None = None) -> Measure:
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=env, cwd=cwd or tempfile.gettempdir())
        _, status, usage = os.wait4(child.pid, 0)  # reaps it: Popen.wait would lose its rusage
        wall = time.perf_counter() - started
        out.seek(0)
        output = out.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} exited {os.waitstatus_to_exitcode(status)}:\n{output[-3000:]}")
    measure = Measure(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)
    for line in reversed(output.strip().splitlines()):
        if line.startswith("{"):
            measure.report = json.loads(line)
            measure.seconds = measure.report["seconds"]
            break
    return measure


# Every folder the contenders write, removed only when the bench ends: ext4 skips inodes
# freed in the last 60 s (up to 360 s while their inode table block is unwritten) when it
# allocates one (``recently_deleted`` in ``find_inode_bit``), so 10,000 files created just
# after 10,000 were deleted cost about 5 s of kernel time instead of 0.5 s. Removing each
# output at once would slow down whichever contender comes next.
SCRATCH: list[Path] = []


def scratch_folder(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=DATA_DIR))
    SCRATCH.append(folder)
    return folder


def run_worker(contender: str, zip_path: Path) -> Measure:
    """One run of bare or (b) in a child process, into a scratch folder of its own."""
    scratch = scratch_folder(f"images-{contender}-")
    os.sync()  # no contender pays for the writeback of the one before
    return run_measured([sys.executable, __file__, "--worker", contender, str(zip_path), str(scratch / "out")],
                        env=dict(os.environ, DAGSTER_HOME=str(scratch)))


class CliWorkspace:
    """``dataplat init`` + ``dataplat project create`` in a fresh folder under bench/data/."""

    def __init__(self) -> None:
        self.dir = scratch_folder("workspace-images-")
        self.env = dict(os.environ, DAGSTER_HOME=str(self.dir))  # runs are recorded in this workspace
        self.count = 0
        self._cli("init", str(self.dir))
        self._cli("--workspace", str(self.dir), "project", "create", PROJECT)

    def import_zip(self, zip_path: Path) -> Measure:
        self.count += 1
        name = f"bench_{self.count}"
        os.sync()
        return run_measured([str(DATAPLAT), "--workspace", str(self.dir), "--project", PROJECT,
                             "image-folder", "import", str(zip_path), "--name", name], env=self.env, cwd=self.dir)

    def _cli(self, *args: str) -> None:
        subprocess.run([str(DATAPLAT), *args], env=self.env, cwd=self.dir, check=True, capture_output=True)


def warm_page_cache(path: Path) -> None:
    """Read the zip once (1 MiB at a time: this process's peak RSS is every child's floor)."""
    buffer = bytearray(1 << 20)
    with open(path, "rb", buffering=0) as stream:
        while stream.readinto(buffer):
            pass


def best(measures: list[Measure], key) -> Measure:
    """The fastest round; the highest peak RSS of all rounds (RSS is not noise)."""
    fastest = min(measures, key=key)
    return Measure(fastest.wall_s, fastest.cpu_s, max(m.rss_mib for m in measures), fastest.seconds, fastest.report)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def steps_text(report: dict) -> str:
    return ", ".join(f"{step} {seconds:.2f}" for step, seconds in report["steps"].items())


# --- The report ----------------------------------------------------------------------------------


def small_round(args: argparse.Namespace) -> tuple[Measure, Measure, Measure]:
    path = ensure_data("small", args.images)
    warm_page_cache(path)
    print(f"\nSmall zip: {path.name}, {args.images:,} JPEGs, {path.stat().st_size / 2**20:,.0f} MiB (deflated); "
          f"best of {args.repeat}, taking turns")
    rounds = {"bare": [], "b": [], "a": []}
    workspace = CliWorkspace()
    contenders = {"bare": lambda: run_worker("bare", path), "b": lambda: run_worker("ours", path),
                  "a": lambda: workspace.import_zip(path)}
    order = list(contenders)
    for k in range(args.repeat):
        turn = order[k % 3:] + order[:k % 3]  # each contender comes first in its turn
        for contender in turn:
            rounds[contender].append(contenders[contender]())
        print(f"  round {k + 1} ({', '.join(turn)}): bare {rounds['bare'][-1].seconds:.2f} s, "
              f"(b) {rounds['b'][-1].seconds:.2f} s, (a) {rounds['a'][-1].wall_s:.2f} s", flush=True)
    bare = best(rounds["bare"], key=lambda m: m.seconds)
    ours = best(rounds["b"], key=lambda m: m.seconds)
    cli = best(rounds["a"], key=lambda m: m.wall_s)
    for images in (bare.report["images"], ours.report["images"]):
        assert images == args.images, f"{images} images imported, {args.images} expected"
    per_image = 1000 / args.images
    print(f"  bare  {bare.seconds:6.2f} s work ({bare.seconds * per_image:.2f} ms/image; {bare.wall_s:.2f} s wall, "
          f"imports {bare.report['imports_s']:.2f} s; CPU {bare.cpu_s:.2f} s; peak RSS {bare.rss_mib:,.0f} MiB)")
    print(f"        {steps_text(bare.report)}")
    print(f"  (b)   {ours.seconds:6.2f} s work ({ours.seconds * per_image:.2f} ms/image; {ours.wall_s:.2f} s wall, "
          f"imports {ours.report['imports_s']:.2f} s; CPU {ours.cpu_s:.2f} s; peak RSS {ours.rss_mib:,.0f} MiB, "
          f"{ours.report['rss_imported_mib']:,.0f} MiB after the imports)")
    print(f"        {steps_text(ours.report)}")
    print(f"  (a)   {cli.wall_s:6.2f} s wall (CPU {cli.cpu_s:.2f} s; peak RSS {cli.rss_mib:,.0f} MiB); "
          f"rounds: {', '.join(f'{m.wall_s:.2f}' for m in rounds['a'])} s (the first creates the instance's databases)")
    ratio = ours.seconds / bare.seconds
    print(f"  (b) / bare  {ratio:.2f}  {verdict(ratio <= RATIO_TARGET)} (<= {RATIO_TARGET})")
    print(f"  (a) / bare  {cli.wall_s / bare.seconds:.2f}  (for information; (a) - (b) = "
          f"{cli.wall_s - ours.seconds:.2f} s of CLI, run and copy)")
    return bare, ours, cli


def large_round(args: argparse.Namespace) -> None:
    path = ensure_data("large", args.zip_mib)
    warm_page_cache(path)
    size = path.stat().st_size
    print(f"\nLarge zip: {path.name}, {size / 2**20:,.0f} MiB ({size / 1e9:.2f} GB), stored, "
          f"{LARGE_SIZE[0]} x {LARGE_SIZE[1]} noise PNGs; one run each")
    ours = run_worker("ours", path)
    print(f"  (b)   {ours.seconds:6.2f} s work ({size / 2**20 / ours.seconds:,.0f} MiB/s; {ours.wall_s:.2f} s wall; "
          f"CPU {ours.cpu_s:.2f} s), {ours.report['images']:,} images; peak RSS {ours.rss_mib:,.0f} MiB "
          f"({ours.rss_mib * 2**20 / 1e6:,.0f} MB; {ours.report['rss_imported_mib']:,.0f} MiB once its modules "
          "were imported)")
    print(f"        {steps_text(ours.report)}")
    bare = run_worker("bare", path)
    print(f"  bare  {bare.seconds:6.2f} s work ({bare.wall_s:.2f} s wall; CPU {bare.cpu_s:.2f} s); "
          f"peak RSS {bare.rss_mib:,.0f} MiB  (for information: it holds one member at a time)")
    print(f"        {steps_text(bare.report)}")
    rss_mb = ours.rss_mib * 2**20 / 1e6
    print(f"  peak RSS of (b)  {rss_mb:,.0f} MB  {verdict(rss_mb < RSS_TARGET_MB)} (< {RSS_TARGET_MB} MB); "
          f"(b) / bare {ours.seconds / bare.seconds:.2f} (for information)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_IMAGES:,} images and a {QUICK_ZIP_MIB} MiB zip, one round")
    parser.add_argument("--images", type=int, help=f"small JPEGs (default {DEFAULT_IMAGES:,})")
    parser.add_argument("--zip-mib", type=int, help=f"size of the large zip in MiB (default {DEFAULT_ZIP_MIB:,})")
    parser.add_argument("--repeat", type=int, help="rounds on the small zip; the best counts (default 3; 1 with --quick)")
    parser.add_argument("--part", choices=("all", "small", "large"), default="all")
    parser.add_argument("--make", nargs=2, metavar=("KIND", "AMOUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=3, metavar=("CONTENDER", "ZIP", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        make_data(args.make[0], int(args.make[1]))
        return
    if args.worker:
        contender, zip_path, out = args.worker
        work = work_bare if contender == "bare" else work_ours
        print(json.dumps(work(Path(zip_path), Path(out))))
        return
    args.images = args.images or (QUICK_IMAGES if args.quick else DEFAULT_IMAGES)
    args.zip_mib = args.zip_mib or (QUICK_ZIP_MIB if args.quick else DEFAULT_ZIP_MIB)
    args.repeat = args.repeat or (1 if args.quick else 3)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    import PIL

    print(f"bench/image_folders.py  {time.strftime('%Y-%m-%d %H:%M')}  {platform.node()}")
    print(f"  machine: {os.cpu_count()} cores; load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"Python {platform.python_version()}, Pillow {PIL.__version__}")
    try:
        if args.part in ("all", "small"):
            small_round(args)
        if args.part in ("all", "large"):
            large_round(args)
    finally:
        for folder in SCRATCH:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\n  load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; this script's own peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
