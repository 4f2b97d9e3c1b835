"""Benchmark: embeddings (images through open_clip, tabular rows, nearest neighbours),
against what a user could write or use instead.

Every contender runs in a child process of this script (``--worker``), which prints one
line of JSON; peak RSS is the ``ru_maxrss`` that ``os.wait4`` reports for the child (its
process tree), CPU seconds its user + system time. This process imports nothing heavy, so
that no child's ``ru_maxrss`` starts from its peak. Inputs are made in child processes too,
with fixed seeds, and kept under ``bench/data/`` (git-ignored); what the contenders write
goes to scratch folders there, removed at the end.

1. Images (``--images``, default 512 JPEGs of about 256 x 256: the small zip of
   ``bench/image_folders.py``, extracted once beside it for the contenders that read files).
   The model is open_clip's ViT-B-32 architecture with random weights (seed 0), saved as
   ``local-dir:`` weights are (``open_clip_config.json`` + ``open_clip_pytorch_model.bin``):
   no weights can be downloaded here, and random weights cost what real ones do. Batches
   of ``--batch-size`` (64), torch's default threads (as many as the cores) everywhere.

   bare     the loop a user writes: ``create_model_and_transforms``, then for each batch
            ``Image.open`` + ``convert("RGB")`` + ``preprocess`` of each file in the main
            process, ``torch.stack``, ``model.encode_image`` under ``torch.inference_mode()``,
            L2 normalization. Its images/s count the loop alone (the model's loading apart).
   (a)      ours end to end: ``dataplat embeddings compute NAME --checkpoint local-dir:MODEL
            --batch-size 64 --device cpu --json`` on the image folder imported from the zip
            (``dataplat image-folder import``, untimed) in a fresh workspace; its map is the
            default (UMAP). images/s is the run's ``throughput_per_s``: points over the
            loader's loop alone, as bare's (model loading and thumbnails apart).
   (b)      ours, the encoding phase alone, in a child: ``clip.load_model``, then
            ``clip.image_batches`` (the ``DataLoader`` with ``loader_workers()`` decoding
            processes, as the run uses it), then ``compute._thumbnails``, each timed; images/s
            count the loop.
   (b0)     (b) with the loader's workers forced to 0 (decoding in the main process, as bare
            does): the package has no setting for it, so this calls ``image_batches(...,
            workers=0)``.

   Target: (a) images/s / bare images/s >= 0.9. (b) / bare and (b0) / bare are printed to
   tell the loop from what the run adds around it. The vectors of (a) and (b) are checked
   against bare's (the same model and images must give the same vectors).

2. Tabular: ``--rows`` (default 1M) x 8 columns: 4 floats (one log-normal up to ~10^5, one
   pure noise, one with 2% nulls and 0.5% outliers at 10^4), an int (Poisson), a category
   (10 values), a date, a short text (1-4 words from 200), plus a ``label`` column (4
   classes, which drive the other columns' distributions) that is never embedded. Parquet
   for the children, CSV for ``dataplat dataset import`` (the CLI takes text tables).

   encode   ``TabularEncoder(path, the 8 columns)`` (fit: three passes) then ``.encode`` of
            every batch into a memory-mapped file, as ``compute`` does; also its
            ``_row_hashes`` per batch (part of the run's encoding phase), timed apart.
   nbrs     ``NeighborIndex.build`` + ``all_neighbors`` (15 per point) on those vectors.
   pca      ``map_2d(..., "pca")``.
   umap     ``map_2d(..., "umap", ...)`` with the precomputed neighbour graph, after a
            2,000-point warm-up that pays numba's compilation (timed apart): above
            ``maps.UMAP_SAMPLE`` (100k) points, fitted on a sample and the rest placed. At
            ``--umap-rows`` (default 200k: the first rows, with their own IVF neighbours) twice:
            UMAP on every point (``UMAP_SAMPLE`` raised) and as the package draws it; then at
            the full size with the stored neighbours, as the package draws it (on every point
            with ``--umap-full``: at 1M rows 29 minutes and 9.5 GB here). Each reports the
            neighbourhoods kept: for 20,000 sampled points, the share of their 10 nearest
            neighbours on the map that are among their 15 stored neighbours.
   peer     sklearn in memory: ``pandas.read_parquet`` of the 8 columns, a
            ``ColumnTransformer`` (``SimpleImputer`` + ``StandardScaler`` on the numbers and
            the date as days, ``OneHotEncoder`` on the category, ``HashingVectorizer`` with 64
            features on the text) and ``PCA(32)``: the same kind of output as ours (its first
            two components are its PCA map).
   (a)      ours end to end: ``dataplat dataset import CSV --no-profile`` (for information),
            then ``dataplat embeddings compute NAME --columns (the 8) --map pca --json``.
   quality  on the labelled rows: for 2,000 sampled points, the share of their 10 nearest
            neighbours (exact search) that have the same label, in our vectors and in the
            peer's; also in the neighbours the CLI run stored (IVF above 20M elements), and
            those neighbours' recall@10 against exact search. Chance is sum of p(label)^2.

3. Nearest neighbours, one child per dimension (32, 512): ``--vectors`` (default 1M) points
   of a mixture of 1,000 gaussian clusters (each spread on a shared 16-dimensional subspace
   plus isotropic noise), L2-normalized (cosine). ``--queries`` (200) queries are data points
   moved by a small random vector and normalized again. Each query is asked alone (the
   latency a user clicking a point sees), three times (once if it takes over 20 ms), its
   fastest try kept (the slower ones measure the other load of a shared machine); median
   and 95th percentile over the queries; recall@10 against exact search of the same queries.

   exact    faiss ``IndexFlatIP``.
   ours     ``NeighborIndex.build(vectors, "cosine")``: exact up to ``INDEX_ABOVE`` (20M)
            elements, ``IndexIVFFlat`` (4·√n lists, nprobe 16) above; nprobe 32 and 64 for
            information.
   faiss HNSW  ``IndexHNSWFlat(d, 16)``, efConstruction 64, efSearch 64.
   usearch  ``Index(metric="ip", connectivity=16, expansion_add=64, expansion_search=64)``,
            added with one thread per core.
   The HNSW builds run on ``--hnsw-vectors`` points (default: all at d=32, 100k at d=512,
   whose 1M build would take longer than this whole benchmark), with ours and exact again
   at that size beside them. Crossover: exact single-query latency at n·d = 5M, 20M and 50M
   elements. All-neighbours: one block of 8,192 queries (k=16) timed and scaled to every
   point, exact just under ``INDEX_ABOVE`` and ours (IVF) at the full size.

3b. All-neighbours crossover (``--part crossover``): at 20k, 50k, 100k and 200k vectors of the
   same mixture (d = 32 and 512), every point's 15 neighbours exact against IVF (IVF's build
   counted whole), each scaled from one block of 8,192 queries, and IVF's recall@10 there:
   what ``neighbors.ALL_EXACT_UP_TO`` was chosen from.

4. FiftyOne's brain, on the images of 1. and bare's vectors: ``compute_uniqueness`` and
   ``compute_similarity`` (sklearn backend) with ``embeddings=`` given, then
   ``sort_by_similarity(k=10)`` per query; against ours on the same vectors
   (``NeighborIndex`` + ``all_neighbors`` + ``uniqueness``, then ``search``). FiftyOne runs
   from its own virtual environment (``--fiftyone-python``; see bench/README.md for how to
   make one offline: its ``fiftyone-db`` downloads MongoDB when it builds, which fails
   here), never from the project's. Its database lives in a scratch folder.

``--quick``: 64 images without (b), 20k rows (UMAP at that size only), 50k vectors (HNSW on
10k at d=512), 100 queries, all-neighbours scaled from 1,024 queries: a check in about 3
minutes (its ratios are not the figures: 64 images are one batch beside a model's loading). ``--part`` runs one part.
Timings are ratios between contenders of the same run: nothing here asserts a time.
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
import zipfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# bench/profile.py would shadow the standard library's ``profile`` (torch imports cProfile):
# this folder goes last on the path, for benchdata, image_folders and report only.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]
from report import table, verdict  # noqa: E402
DATA_DIR = HERE / "data"
BIN = Path(sys.executable).parent
DATAPLAT = BIN / "dataplat"
PROJECT = "bench"
VERSION = 1
SEED = 0

DEFAULT_IMAGES, QUICK_IMAGES = 512, 64
BATCH_SIZE = 64
MODEL_DIR = DATA_DIR / f"vit_b32_random_v{VERSION}"
PREPROCESS = {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}
IMAGE_RATIO_TARGET = 0.9

DEFAULT_ROWS, QUICK_ROWS = 1_000_000, 20_000
DEFAULT_UMAP_ROWS, QUICK_UMAP_ROWS = "200000", ""
TABLE_COLUMNS = ["length", "weight", "score", "ratio", "visits", "segment", "day", "note"]
NUMBER_COLUMNS = ["length", "weight", "score", "ratio", "visits"]
CLASSES = 4
SEGMENTS = 10
QUALITY_QUERIES = 2_000

DEFAULT_VECTORS, QUICK_VECTORS = 1_000_000, 50_000
DEFAULT_HNSW_512, QUICK_HNSW_512 = 100_000, 10_000
DEFAULT_QUERIES, QUICK_QUERIES = 200, 100
CLUSTERS = 1_000
SUBSPACE = 16
CROSSOVER_ELEMENTS = (5_000_000, 20_000_000, 50_000_000)
ALL_NEIGHBORS_BLOCK, QUICK_ALL_NEIGHBORS_BLOCK = 8_192, 1_024
CROSSOVER_VECTORS = (20_000, 50_000, 100_000, 200_000)  # all-neighbours, exact against IVF
LATENCY_TARGET_MS = 50.0
QUERY_TRIES = 3

FIFTYONE_PYTHON = os.environ.get("FIFTYONE_PYTHON", "/tmp/fo/venv/bin/python")


# --- Data: made in child processes ----------------------------------------------------------------


def images_folder(images: int) -> Path:
    return DATA_DIR / f"embed_images_{images}_v{VERSION}"


def table_path(rows: int, suffix: str) -> Path:
    return DATA_DIR / f"embed_table_{rows}_v{VERSION}.{suffix}"


def ensure_images(images: int) -> tuple[Path, Path]:
    """The small zip of bench/image_folders.py, and its images extracted beside it."""
    import image_folders

    zip_path = image_folders.ensure_data("small", images)
    folder = images_folder(images)
    if not folder.exists():
        tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(tmp)
        os.replace(tmp, folder)
    return zip_path, folder


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.jpg"))


def ensure_model() -> Path:
    if not (MODEL_DIR / "open_clip_pytorch_model.bin").exists():
        subprocess.run([sys.executable, __file__, "--make", "model", "0"], check=True)
    return MODEL_DIR


def make_model() -> None:
    """ViT-B-32's architecture with random weights (seed 0), saved as local weights are."""
    import open_clip
    import torch

    tmp = MODEL_DIR.with_name(f".{MODEL_DIR.name}.{os.getpid()}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    config = open_clip.get_model_config("ViT-B-32")
    (tmp / "open_clip_config.json").write_text(json.dumps({"model_cfg": config, "preprocess_cfg": PREPROCESS}))
    torch.manual_seed(SEED)
    model = open_clip.create_model("ViT-B-32")
    torch.save(model.state_dict(), tmp / "open_clip_pytorch_model.bin")
    os.replace(tmp, MODEL_DIR)
    print(f"  saved ViT-B-32 with random weights: {MODEL_DIR.name}")


def ensure_table(rows: int) -> tuple[Path, Path]:
    parquet, csv = table_path(rows, "parquet"), table_path(rows, "csv")
    if not (parquet.exists() and csv.exists()):
        subprocess.run([sys.executable, __file__, "--make", "table", str(rows)], check=True)
    return parquet, csv


def make_table(rows: int) -> None:
    import benchdata
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    def write(tmp: Path, kind: str) -> None:
        writer = None
        try:
            for start in range(0, rows, benchdata.CHUNK_ROWS):
                chunk = _table_chunk(start // benchdata.CHUNK_ROWS, min(benchdata.CHUNK_ROWS, rows - start))
                if writer is None:
                    writer = (pq.ParquetWriter(tmp, chunk.schema, compression="snappy") if kind == "parquet"
                              else pa_csv.CSVWriter(tmp, chunk.schema))
                writer.write_table(chunk)
        finally:
            if writer is not None:
                writer.close()

    for kind in ("parquet", "csv"):
        path = table_path(rows, kind)
        if not path.exists():
            benchdata._write_atomically(path, lambda tmp, kind=kind: write(tmp, kind), f"{rows:,}-row labelled table ({kind})")


def _words() -> list[str]:
    first = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pu"]
    second = ["ra", "ta", "ni", "lo", "ve", "mu", "so", "ki", "do", "be",
              "za", "fe", "gu", "hi", "jo", "py", "qu", "wu", "xe", "yo"]
    return [a + b + "n" for a in first for b in second]


def _table_chunk(index: int, n: int):
    """One chunk of the labelled table: the label drives every column but ``score``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    fixed = np.random.default_rng(SEED)  # per-class parameters: the same in every chunk
    segment_mix = fixed.dirichlet(np.full(SEGMENTS, 0.5), CLASSES)
    words = _words()
    class_words = [fixed.choice(len(words), 40, replace=False) for _ in range(CLASSES)]
    rng = np.random.default_rng(1_000 + index)
    label = rng.integers(0, CLASSES, n)
    length = rng.normal(np.array([0.0, 2.0, 0.0, 2.0])[label], 1.5)
    weight = np.exp(rng.normal(np.array([3.0, 3.0, 4.0, 4.0])[label], 1.0)) * 10
    score = rng.uniform(0, 100, n)
    ratio = rng.normal(np.array([0.0, 0.8, -0.8, 0.0])[label], 1.0)
    ratio[rng.random(n) < 0.005] *= 1e4
    visits = rng.poisson(np.array([2.0, 5.0, 3.0, 8.0])[label])
    cumulative = segment_mix.cumsum(axis=1)[label]
    segment = (rng.random(n)[:, None] > cumulative).sum(axis=1).clip(0, SEGMENTS - 1)
    days = rng.normal(np.array([400, 900, 1400, 1900])[label], 500).clip(0, 3649).astype(np.int64)
    count = rng.integers(1, 5, n)
    own = rng.random((n, 4)) < 0.6
    picked = np.where(own, np.stack([class_words[c] for c in range(CLASSES)])[label[:, None], rng.integers(0, 40, (n, 4))],
                      rng.integers(0, len(words), (n, 4)))
    vocabulary = pa.array(words)
    parts = [pc.if_else(pa.array(count > j), vocabulary.take(pa.array(picked[:, j])), pa.scalar(None, pa.string()))
             for j in range(4)]
    note = pc.binary_join_element_wise(*parts, " ", null_handling="skip")
    note = pc.if_else(pa.array(rng.random(n) < 0.02), pa.scalar(None, pa.string()), note)
    ratio_nulls = rng.random(n) < 0.02
    return pa.table({
        "length": pa.array(length.round(3)),
        "weight": pa.array(weight.round(2)),
        "score": pa.array(score.round(2)),
        "ratio": pa.array(ratio.round(4), mask=ratio_nulls),
        "visits": pa.array(visits.astype(np.int64)),
        "segment": pa.array([f"segment_{s}" for s in range(SEGMENTS)]).take(pa.array(segment)),
        "day": pa.array(np.datetime64("2015-01-01", "D") + days.astype("timedelta64[D]")),
        "note": note,
        "label": pa.array([f"class_{c}" for c in range(CLASSES)]).take(pa.array(label)),
    })


# --- Workers: images -------------------------------------------------------------------------------


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def work_bare_clip(spec: dict) -> dict:
    """The loop a user writes: decode and preprocess in the main process, batch, encode."""
    started = time.perf_counter()
    import numpy as np
    import open_clip
    import torch
    from PIL import Image

    imported = time.perf_counter()
    model, _, preprocess = open_clip.create_model_and_transforms("local-dir:" + spec["model"])
    model.eval()
    loaded = time.perf_counter()
    paths = image_files(Path(spec["images"]))
    out = []
    decode = encode = 0.0
    for start in range(0, len(paths), spec["batch_size"]):
        t0 = time.perf_counter()
        pixels = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths[start:start + spec["batch_size"]]])
        t1 = time.perf_counter()
        with torch.inference_mode():
            features = model.encode_image(pixels)
            features = features / features.norm(dim=-1, keepdim=True)
        out.append(features.numpy())
        encode += time.perf_counter() - t1
        decode += t1 - t0
    done = time.perf_counter()
    vectors = np.concatenate(out)
    np.save(spec["out"], vectors)
    return {"seconds": done - loaded, "imports_s": imported - started, "load_s": loaded - imported,
            "decode_s": decode, "encode_s": encode, "images": len(paths), "threads": torch.get_num_threads(),
            "ids": [p.name for p in paths]}


def work_ours_clip(spec: dict) -> dict:
    """The run's encoding phase, each stage timed: load_model, image_batches, thumbnails."""
    started = time.perf_counter()
    import numpy as np
    import open_clip  # noqa: F401  (imported before the clock starts, as bare's are)
    import torch

    from dataplat_dagster.embeddings.clip import image_batches, load_model
    from dataplat_dagster.embeddings.compute import THUMBNAILS, _Reader, _thumbnails

    imported = time.perf_counter()
    clip = load_model("ViT-B-32", None, "local-dir:" + spec["model"], "cpu")
    loaded = time.perf_counter()
    root = Path(spec["images"])
    paths = [str(p.relative_to(root)) for p in image_files(root)]
    blocks = list(image_batches(clip, paths, _Reader(root), spec["batch_size"], spec["workers"]))
    looped = time.perf_counter()
    _thumbnails(root, paths[:THUMBNAILS])
    done = time.perf_counter()
    np.save(spec["out"], np.concatenate(blocks))
    return {"seconds": looped - loaded, "imports_s": imported - started, "load_s": loaded - imported,
            "thumbnails_s": done - looped, "images": len(paths), "threads": torch.get_num_threads(),
            "workers": spec["workers"]}


def work_compare_vectors(spec: dict) -> dict:
    """Largest difference between bare's vectors and the others' (matched by file name)."""
    import numpy as np
    import pyarrow.parquet as pq

    bare = np.load(spec["bare"])
    ids = spec["ids"]
    found = {}
    for name, path in spec["others"].items():
        if path.endswith(".npy"):
            found[name] = float(np.abs(np.load(path) - bare).max())
        else:
            table = pq.read_table(path, columns=["id", "vector"]).to_pydict()
            where = {Path(i).name: k for k, i in enumerate(table["id"])}
            stored = np.array([table["vector"][where[i]] for i in ids], dtype=np.float32)
            found[name] = float(np.abs(stored - bare).max())
    return {"seconds": 0.0, "max_abs_difference": found}


# --- Workers: tabular ------------------------------------------------------------------------------


def work_tab_encode(spec: dict) -> dict:
    started = time.perf_counter()
    import numpy as np

    from dataplat_dagster.embeddings.compute import _row_hashes
    from dataplat_dagster.embeddings.tabular import TabularEncoder

    imported = time.perf_counter()
    rss_imported = _rss_mib()
    encoder = TabularEncoder(spec["parquet"], spec["columns"])
    fitted = time.perf_counter()
    vectors = np.lib.format.open_memmap(spec["out"], mode="w+", dtype=np.float32,
                                        shape=(encoder.rows, encoder.output_dimension))
    at, hashing = 0, 0.0
    for batch in encoder.batches():
        vectors[at:at + batch.num_rows] = encoder.encode(batch)
        t0 = time.perf_counter()
        _row_hashes(batch)
        hashing += time.perf_counter() - t0
        at += batch.num_rows
    vectors.flush()
    done = time.perf_counter()
    return {"seconds": done - imported, "imports_s": imported - started, "fit_s": fitted - imported,
            "encode_s": done - fitted - hashing, "row_hashes_s": hashing, "rows": at,
            "dimension": encoder.output_dimension, "features": encoder.features,
            "explained_variance": encoder.explained_variance, "rss_imported_mib": rss_imported}


def work_tab_neighbors(spec: dict) -> dict:
    import numpy as np

    from dataplat_dagster.embeddings.neighbors import (
        NeighborIndex,
        all_neighbors,
        graph_index,
    )

    vectors = np.load(spec["vectors"])
    rss_loaded = _rss_mib()
    t0 = time.perf_counter()
    index = graph_index(NeighborIndex.build(vectors, "euclidean"), vectors)  # as compute() finds them
    t1 = time.perf_counter()
    positions, distances = all_neighbors(index, vectors)
    t2 = time.perf_counter()
    np.save(spec["positions"], positions)
    np.save(spec["distances"], distances)
    return {"seconds": t2 - t0, "build_s": t1 - t0, "search_s": t2 - t1, "approximate": index.approximate,
            "rss_loaded_mib": rss_loaded}


def work_tab_map(spec: dict) -> dict:
    import numpy as np

    from dataplat_dagster.embeddings import maps
    from dataplat_dagster.embeddings import neighbors as nb
    from dataplat_dagster.embeddings.maps import map_2d

    vectors = np.load(spec["vectors"], mmap_mode="r")[: spec["rows"]]
    vectors = np.ascontiguousarray(vectors)
    rss_loaded = _rss_mib()
    report = {"rows": len(vectors), "rss_loaded_mib": rss_loaded}
    if spec["method"] == "pca":
        t0 = time.perf_counter()
        map_2d(vectors, "pca", "euclidean")
        report["seconds"] = time.perf_counter() - t0
        return report
    if spec.get("umap_sample"):
        maps.UMAP_SAMPLE = spec["umap_sample"]  # UMAP_SAMPLE >= rows: UMAP on every point
    t0 = time.perf_counter()
    map_2d(np.ascontiguousarray(vectors[:2_000]), "umap", "euclidean")  # numba compiles here
    report["warmup_s"] = time.perf_counter() - t0
    if spec.get("positions"):
        positions, distances = np.load(spec["positions"]), np.load(spec["distances"])
    else:
        nb.INDEX_ABOVE = 0  # the subset's neighbours as the full size finds them: IVF
        t0 = time.perf_counter()
        positions, distances = nb.all_neighbors(nb.NeighborIndex.build(vectors, "euclidean"), vectors)
        report["neighbors_s"] = time.perf_counter() - t0
    report["rss_before_map_mib"] = _rss_mib()
    t0 = time.perf_counter()
    coordinates, params = map_2d(vectors, "umap", "euclidean", positions, distances)
    report["seconds"] = time.perf_counter() - t0
    report["graph"] = params.get("neighbor_graph", "umap's own")
    report["fitted_on"] = params.get("fitted_on", "every point")
    report["kept"] = _kept_neighbours(coordinates, positions)
    return report


def _kept_neighbours(coordinates, positions, points: int = 20_000) -> float:
    """For a fixed sample of points, the share of their 10 nearest neighbours on the map that are
    among their 15 stored (high-dimensional) neighbours: how much of the neighbourhoods the
    map keeps."""
    import faiss
    import numpy as np

    picked = np.random.default_rng(SEED).choice(len(coordinates), min(points, len(coordinates)), replace=False)
    flat = faiss.IndexFlatL2(2)
    flat.add(np.ascontiguousarray(coordinates, dtype=np.float32))
    found = flat.search(np.ascontiguousarray(coordinates[picked], dtype=np.float32), 11)[1]
    kept = [len((set(row.tolist()) - {int(p)}) & set(positions[p].tolist())) / 10 for p, row in zip(picked, found)]
    return float(np.mean(kept))


def work_tab_peer(spec: dict) -> dict:
    started = time.perf_counter()
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    imported = time.perf_counter()
    frame = pd.read_parquet(spec["parquet"], columns=spec["columns"])
    read = time.perf_counter()
    frame["day"] = (pd.to_datetime(frame["day"]) - pd.Timestamp("1970-01-01")).dt.days.astype("float64")
    frame["note"] = frame["note"].fillna("")
    numbers = NUMBER_COLUMNS + ["day"]
    pipeline = make_pipeline(
        ColumnTransformer([
            ("numbers", make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()), numbers),
            ("category", OneHotEncoder(handle_unknown="ignore"), ["segment"]),
            ("text", HashingVectorizer(n_features=64, token_pattern=r"(?u)\b\w+\b"), "note"),
        ], sparse_threshold=0.0),
        PCA(n_components=32, random_state=SEED),
    )
    vectors = pipeline.fit_transform(frame).astype(np.float32)
    done = time.perf_counter()
    np.save(spec["out"], vectors)
    return {"seconds": done - imported, "imports_s": imported - started, "read_s": read - imported,
            "fit_transform_s": done - read, "dimension": int(vectors.shape[1])}


def work_tab_quality(spec: dict) -> dict:
    """Share of each sampled point's 10 nearest neighbours with its label."""
    import faiss
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    codes = pq.read_table(spec["parquet"], columns=["label"]).column("label").combine_chunks().dictionary_encode()
    codes = codes.indices.to_numpy()
    sample = np.sort(np.random.default_rng(SEED).choice(len(codes), QUALITY_QUERIES, replace=False))
    shares = np.bincount(codes) / len(codes)
    report = {"seconds": 0.0, "chance": float((shares**2).sum()), "queries": len(sample)}
    exact_ours = None
    for name, path in spec["vectors"].items():
        vectors = np.ascontiguousarray(np.load(path), dtype=np.float32)
        index = faiss.IndexFlatL2(vectors.shape[1])
        index.add(vectors)
        _, found = index.search(vectors[sample], 11)
        found = np.array([[p for p in row if p != q][:10] for row, q in zip(found, sample)])
        report[name] = float((codes[found] == codes[sample][:, None]).mean())
        if name == "ours":
            exact_ours = found
    if spec.get("stored"):
        stored = pq.read_table(spec["stored"], columns=["id", "neighbors"])
        ids = stored.column("id").combine_chunks().cast(pa.int64()).to_numpy()
        column = stored.column("neighbors").combine_chunks()
        neighbors = column.flatten().to_numpy().reshape(len(column), -1)[np.argsort(ids)][sample][:, :10]
        report["stored"] = float((codes[neighbors] == codes[sample][:, None]).mean())
        if exact_ours is not None:
            report["stored_recall"] = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(neighbors, exact_ours)]))
    return report


# --- Workers: nearest neighbours ---------------------------------------------------------------------


def _mixture(n: int, d: int):
    """A mixture of gaussian clusters on a shared low-dimensional subspace, L2-normalized."""
    import numpy as np

    rng = np.random.default_rng(SEED + d)
    centers = rng.normal(size=(CLUSTERS, d)).astype(np.float32)
    basis = (rng.normal(size=(SUBSPACE, d)) / np.sqrt(SUBSPACE)).astype(np.float32)
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        m = stop - start
        block = centers[rng.integers(0, CLUSTERS, m)]
        block += rng.normal(0, 0.5, (m, SUBSPACE)).astype(np.float32) @ basis
        block += rng.normal(0, 0.15, (m, d)).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:stop] = block
    return out


def _latencies(search, queries) -> tuple[list[float], list]:
    """Each query asked alone, ``QUERY_TRIES`` times: its fastest milliseconds (a query is
    deterministic: the slower tries measure the machine's other load), and what it found."""
    times, found = [], []
    for q in range(len(queries)):
        fastest = float("inf")
        for _ in range(QUERY_TRIES):
            t0 = time.perf_counter()
            result = search(queries[q:q + 1])
            fastest = min(fastest, (time.perf_counter() - t0) * 1000)
            if fastest > 20:  # a slow search: the machine's hiccups are small beside it
                break
        times.append(fastest)
        found.append(result)
    return times, found


def _summary(times: list[float]) -> dict:
    import numpy as np

    return {"median_ms": float(np.median(times)), "p95_ms": float(np.percentile(times, 95))}


def _recall(found, truth) -> float:
    import numpy as np

    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / truth.shape[1] for a, b in zip(found, truth)]))


def work_ann(spec: dict) -> dict:
    import faiss
    import numpy as np
    import usearch.index as usearch_index

    from dataplat_dagster.embeddings.neighbors import (
        INDEX_ABOVE,
        NeighborIndex,
        graph_index,
    )

    n, d, hnsw_n = spec["vectors"], spec["dimension"], spec["hnsw_vectors"]
    cores = os.cpu_count() or 1
    generate = max(n, max(e // d for e in CROSSOVER_ELEMENTS), INDEX_ABOVE // d)
    t0 = time.perf_counter()
    data = _mixture(generate, d)
    report = {"seconds": 0.0, "vectors": n, "dimension": d, "generate_s": time.perf_counter() - t0, "rows": []}
    rng = np.random.default_rng(SEED + 1)
    picked = rng.choice(min(n, hnsw_n), spec["queries"], replace=False)  # in every size's first rows
    queries = data[picked] + rng.normal(0, 0.05 / np.sqrt(d), (len(picked), d)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    k = 10

    def row(name, size, build_s, search, truth, memory=None):
        times, found = _latencies(search, queries)
        found = np.vstack(found)
        entry = {"name": name, "vectors": size, "build_s": build_s, **_summary(times), "recall": _recall(found, truth)}
        report["rows"].append(entry)
        print(f"    d={d} {name} n={size:,}: build {build_s:.1f} s, median {entry['median_ms']:.2f} ms, "
              f"recall@10 {entry['recall']:.3f}", file=sys.stderr, flush=True)

    def exact_and_ours(size):
        base = data[:size]
        t0 = time.perf_counter()
        flat = faiss.IndexFlatIP(d)
        flat.add(base)
        flat_s = time.perf_counter() - t0
        truth = flat.search(queries, k)[1]
        row("exact (faiss IndexFlatIP)", size, flat_s, lambda q: flat.search(q, k)[1], truth)
        t0 = time.perf_counter()
        ours = NeighborIndex.build(base, "cosine")
        ours_s = time.perf_counter() - t0
        kind = f"IVF, {ours.index.nlist} lists" if ours.approximate else "exact"
        for nprobe in ((16, 32, 64) if ours.approximate else (None,)):
            if nprobe:
                ours.index.nprobe = nprobe
            label = f"ours (NeighborIndex: {kind}{f', nprobe {nprobe}' if nprobe else ''})"
            row(label, size, ours_s, lambda q: ours.search(q, k)[0], truth)
        if ours.approximate:
            ours.index.nprobe = 16
        return ours, truth

    ours, truth = exact_and_ours(n)
    # All-neighbours as the run finds them (graph_index): one block timed, scaled to every point.
    t0 = time.perf_counter()
    graph = graph_index(ours, data[:n])
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    block = spec["block"]
    graph.search(data[:block], 16)
    report["all_neighbors_ours_s"] = built + (time.perf_counter() - t0) * n / block
    report["all_neighbors_ours_kind"] = "IVF" if graph.approximate else "exact"
    del graph
    below = INDEX_ABOVE // d
    under = faiss.IndexFlatIP(d)
    under.add(data[:below])
    t0 = time.perf_counter()
    under.search(data[:block], 16)
    report["all_neighbors_exact_below"] = {"vectors": below, "seconds": (time.perf_counter() - t0) * below / block}
    del under, ours  # freed before the HNSW builds
    if hnsw_n < n:
        truth = exact_and_ours(hnsw_n)[1]
    base = data[:hnsw_n]
    t0 = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(d, 16, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 64
    hnsw.add(base)
    hnsw.hnsw.efSearch = 64
    row("faiss HNSW (M 16, efC 64, efS 64)", hnsw_n, time.perf_counter() - t0, lambda q: hnsw.search(q, k)[1], truth)
    hnsw = None
    t0 = time.perf_counter()
    index = usearch_index.Index(ndim=d, metric="ip", dtype="f32", connectivity=16, expansion_add=64, expansion_search=64)
    index.add(np.arange(hnsw_n), base, threads=cores)
    row("usearch HNSW (conn 16, add 64, search 64)", hnsw_n, time.perf_counter() - t0,
        lambda q: np.asarray(index.search(q, k).keys).reshape(1, -1), truth)
    index = None
    report["crossover"] = []
    for elements in CROSSOVER_ELEMENTS:
        size = elements // d
        subset = faiss.IndexFlatIP(d)
        subset.add(data[:size])
        times, _ = _latencies(lambda q, subset=subset: subset.search(q, k), queries[:50])
        report["crossover"].append({"elements": elements, "vectors": size, **_summary(times)})
    report["rss_note"] = "the data, generated for the crossover too, is in this child's peak"
    return report


# --- Workers: FiftyOne and ours on the same image vectors ------------------------------------------


def work_fiftyone(spec: dict) -> dict:
    """Runs in FiftyOne's own virtual environment: numpy and fiftyone only."""
    started = time.perf_counter()
    import fiftyone as fo
    import fiftyone.brain as fob
    import numpy as np

    imported = time.perf_counter()
    paths = [str(p) for p in image_files(Path(spec["images"]))]
    vectors = np.load(spec["vectors"])
    t0 = time.perf_counter()
    dataset = fo.Dataset(f"bench-{os.getpid()}")
    dataset.add_samples([fo.Sample(filepath=p) for p in paths])
    ids = dataset.values("id")
    where = {sample_id: k for k, sample_id in enumerate(ids)}
    t1 = time.perf_counter()
    fob.compute_uniqueness(dataset, embeddings=vectors.copy())
    t2 = time.perf_counter()
    fob.compute_similarity(dataset, embeddings=vectors.copy(), brain_key="sim", backend="sklearn")
    t3 = time.perf_counter()
    scores = dataset.values("uniqueness")
    neighbors, times = [], []
    for q in range(spec["queries"]):
        s0 = time.perf_counter()
        view = dataset.sort_by_similarity(ids[q], k=11, brain_key="sim")
        found = view.values("id")
        times.append((time.perf_counter() - s0) * 1000)
        neighbors.append([where[i] for i in found if i != ids[q]][:10])
    dataset.delete()
    done = time.perf_counter()
    return {"seconds": t3 - t1, "imports_s": imported - started, "add_samples_s": t1 - t0, "uniqueness_s": t2 - t1,
            "similarity_s": t3 - t2, "query_median_ms": float(np.median(times)), "total_s": done - imported,
            "uniqueness": scores, "neighbors": neighbors, "version": fo.__version__}


def work_ours_brain(spec: dict) -> dict:
    import numpy as np

    from dataplat_dagster.embeddings.neighbors import (
        NeighborIndex,
        all_neighbors,
        uniqueness,
    )

    vectors = np.load(spec["vectors"])
    t0 = time.perf_counter()
    index = NeighborIndex.build(vectors, "cosine")
    positions, distances = all_neighbors(index, vectors)
    scores = uniqueness(distances)
    t1 = time.perf_counter()
    times = []
    for q in range(spec["queries"]):
        s0 = time.perf_counter()
        index.search(vectors[q:q + 1], 11)
        times.append((time.perf_counter() - s0) * 1000)
    report = {"seconds": t1 - t0, "query_median_ms": float(np.median(times))}
    other = json.loads(Path(spec["fiftyone"]).read_text()) if spec.get("fiftyone") else None
    if other:
        from scipy.stats import spearmanr

        # FiftyOne's sklearn backend centers the vectors (minus their mean) before its cosine
        # distances: ours again on centered, normalized vectors tells that apart.
        centered = vectors - vectors.mean(axis=0)
        centered /= np.linalg.norm(centered, axis=1, keepdims=True)
        centered_positions, centered_distances = all_neighbors(NeighborIndex.build(centered, "cosine"), centered)
        theirs = np.asarray(other["uniqueness"])
        tenth = max(1, len(scores) // 10)
        for name, mine, near in (("raw", scores, positions), ("centered", uniqueness(centered_distances), centered_positions)):
            report[f"{name}_spearman"] = float(spearmanr(mine, theirs).statistic)
            report[f"{name}_top_decile"] = len(set(np.argsort(-mine)[:tenth]) & set(np.argsort(-theirs)[:tenth])) / tenth
            report[f"{name}_neighbors"] = float(np.mean([len(set(a) & set(near[q, :10].tolist())) / 10
                                                         for q, a in enumerate(other["neighbors"])]))
    return report


def work_all_crossover(spec: dict) -> dict:
    """Every point's neighbours (k 15), exact against IVF, at one size: each timed on one block of
    queries and scaled to every point (IVF's build counted whole), recall@10 on that block."""
    import numpy as np

    from dataplat_dagster.embeddings.neighbors import NeighborIndex

    n, d, block = spec["vectors"], spec["dimension"], spec["block"]
    data = _mixture(n, d)
    queries = data[np.random.default_rng(SEED).choice(n, min(n, block), replace=False)]
    t0 = time.perf_counter()
    exact = NeighborIndex.build(data, "cosine", approximate=False)
    truth = exact.search(queries, 16)[0]
    exact_s = (time.perf_counter() - t0) * n / len(queries)
    del exact
    t0 = time.perf_counter()
    ivf = NeighborIndex.build(data, "cosine", approximate=True)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    found = ivf.search(queries, 16)[0]
    ivf_s = build_s + (time.perf_counter() - t0) * n / len(queries)
    # The first neighbour is the point itself in both: recall@10 of the next ten.
    return {"seconds": 0.0, "vectors": n, "dimension": d, "exact_s": exact_s, "ivf_s": ivf_s, "ivf_build_s": build_s,
            "recall": _recall(found[:, 1:11], truth[:, 1:11])}


WORKERS = {
    "bare_clip": work_bare_clip, "ours_clip": work_ours_clip, "compare_vectors": work_compare_vectors,
    "tab_encode": work_tab_encode, "tab_neighbors": work_tab_neighbors, "tab_map": work_tab_map,
    "tab_peer": work_tab_peer, "tab_quality": work_tab_quality, "ann": work_ann,
    "fiftyone": work_fiftyone, "ours_brain": work_ours_brain, "all_crossover": work_all_crossover,
}


# --- Measuring a child process -------------------------------------------------------------------


@dataclass
class Measure:
    wall_s: float  # the child's wall time, start-up included
    cpu_s: float  # user + system of the child's process tree
    rss_mib: float  # its peak RSS (ru_maxrss)
    report: dict
    output: str


def run_measured(command: list, *, env: dict | None = None, cwd: Path | None = None) -> Measure:
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen([str(c) for c in command], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                 env=env, cwd=cwd or tempfile.gettempdir())
        _, status, usage = os.wait4(child.pid, 0)  # reaps it: Popen.wait would lose its rusage
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        output, errors = out.read(), err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} exited {os.waitstatus_to_exitcode(status)}:\n"
                           f"{output[-2000:]}\n{errors[-3000:]}")
    report = {}
    text = output.strip()
    if text:
        last = text.splitlines()[-1]
        try:
            report = json.loads(last) if last.startswith("{") else json.loads(text[text.index("{"):])
        except ValueError:
            report = {}
    return Measure(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, report, output + errors)


def run_worker(name: str, spec: dict, *, python: str | None = None, env: dict | None = None) -> Measure:
    return run_measured([python or sys.executable, __file__, "--worker", name, json.dumps(spec)],
                        env=env or worker_env())


def worker_env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")


# Every folder the contenders write, removed only when the bench ends (see image_folders.py).
SCRATCH: list[Path] = []


def scratch_folder(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=DATA_DIR))
    SCRATCH.append(folder)
    return folder


class CliWorkspace:
    """``dataplat init`` + ``dataplat project create`` in a fresh folder under bench/data/."""

    def __init__(self) -> None:
        self.dir = scratch_folder("workspace-embeddings-")
        self.env = dict(os.environ, DAGSTER_HOME=str(self.dir))
        self._cli("init", str(self.dir))
        self._cli("--workspace", str(self.dir), "project", "create", PROJECT)

    def run(self, *args: str) -> Measure:
        os.sync()
        return run_measured([DATAPLAT, "--workspace", self.dir, "--project", PROJECT, *args], env=self.env, cwd=self.dir)

    def stored(self, name: str) -> Path:
        """The newest ``embeddings.parquet`` of ``name``."""
        return max((self.dir / "projects" / PROJECT / "storage" / "embeddings" / name).glob("versions/*/embeddings.parquet"))

    def _cli(self, *args: str) -> None:
        subprocess.run([str(DATAPLAT), *args], env=self.env, cwd=self.dir, check=True, capture_output=True)


def warm_page_cache(paths) -> None:
    buffer = bytearray(1 << 20)
    for path in paths:
        with open(path, "rb", buffering=0) as stream:
            while stream.readinto(buffer):
                pass


# --- The parts -------------------------------------------------------------------------------------


class Context:
    """What the parts share: the workspace (made once) and bare's image vectors."""

    def __init__(self) -> None:
        self._workspace = None
        self.image_vectors: Path | None = None

    @property
    def workspace(self) -> CliWorkspace:
        if self._workspace is None:
            self._workspace = CliWorkspace()
        return self._workspace


def images_part(args, ctx: Context) -> None:
    zip_path, folder = ensure_images(args.images)
    model = ensure_model()
    files = image_files(folder)
    warm_page_cache([zip_path, *files, *model.iterdir()])
    print(f"\n1. Images: {len(files):,} JPEGs ({zip_path.name}), ViT-B-32 with random weights, batches of "
          f"{args.batch_size}, {args.repeat} round(s) taking turns", flush=True)
    workspace = ctx.workspace
    imported = workspace.run("image-folder", "import", zip_path, "--name", "bench_images", "--json")
    print(f"  (image folder imported for (a) in {imported.wall_s:.1f} s, untimed below)")
    scratch = scratch_folder("images-")
    spec = {"model": str(model), "images": str(folder), "batch_size": args.batch_size}
    contenders = {
        "bare": lambda r: run_worker("bare_clip", {**spec, "out": str(scratch / f"bare_{r}.npy")}),
        "a": lambda r: workspace.run("embeddings", "compute", "bench_images", "--checkpoint", f"local-dir:{model}",
                                     "--batch-size", str(args.batch_size), "--device", "cpu", "--json"),
        "b": lambda r: run_worker("ours_clip", {**spec, "workers": None, "out": str(scratch / f"b_{r}.npy")}),
        "b0": lambda r: run_worker("ours_clip", {**spec, "workers": 0, "out": str(scratch / f"b0_{r}.npy")}),
    }
    if args.quick:
        del contenders["b"]  # (a) runs the same loader
    rounds = {name: [] for name in contenders}
    order = list(contenders)
    for r in range(args.repeat):
        turn = order[r % len(order):] + order[:r % len(order)]
        for name in turn:
            rounds[name].append(contenders[name](r))
        print(f"  round {r + 1} ({', '.join(turn)}): " + ", ".join(
            f"{name} {m[-1].wall_s if name == 'a' else m[-1].report['seconds']:.1f} s" for name, m in rounds.items()),
            flush=True)
    # The best round of each (the highest RSS of all rounds).
    best = {name: (max(m, key=lambda x: x.report["throughput_per_s"]) if name == "a"
                   else min(m, key=lambda x: x.report["seconds"])) for name, m in rounds.items()}
    rss = {name: max(x.rss_mib for x in m) for name, m in rounds.items()}
    bare, cli = best["bare"], best["a"]
    n = bare.report["images"]
    bare_ips = n / bare.report["seconds"]
    bare_with_load = n / (bare.report["seconds"] + bare.report["load_s"])
    cli_ips = cli.report["throughput_per_s"]
    encode_s = cli.report["count"] / cli_ips
    rows = [
        ["bare (loop)", f"{bare_ips:.2f}", f"{bare.report['seconds']:.1f}", f"{bare.wall_s:.1f}", f"{bare.cpu_s:.1f}",
         f"{rss['bare']:,.0f}", (f"decode {bare.report['decode_s']:.1f} s, encode {bare.report['encode_s']:.1f} s; "
                                 f"model load {bare.report['load_s']:.1f} s; {bare.report['threads']} torch threads")],
        ["(a) ours, CLI run", f"{cli_ips:.2f}", f"{encode_s:.1f}", f"{cli.wall_s:.1f}", f"{cli.cpu_s:.1f}",
         f"{rss['a']:,.0f}", (f"encoding loop {encode_s:.1f} s of a {cli.report['seconds']:.1f} s run "
                              f"({cli.report['map']['method']} map); CLI + Dagster {cli.wall_s - cli.report['seconds']:.1f} s")],
    ]
    loops = {}
    for name in ("b", "b0"):
        if name not in best:
            continue
        m = best[name]
        r = m.report
        loops[name] = n / r["seconds"]
        workers = "0 workers" if r["workers"] == 0 else "loader_workers()"
        rows.append([f"({name}) ours, image_batches ({workers})", f"{loops[name]:.2f}", f"{r['seconds']:.1f}",
                     f"{m.wall_s:.1f}", f"{m.cpu_s:.1f}", f"{rss[name]:,.0f}",
                     f"load_model {r['load_s']:.1f} s, thumbnails {r['thumbnails_s']:.1f} s"])
    table(["contender", "images/s", "timed s", "wall s", "CPU s", "peak RSS MiB", "notes"], rows)
    ratio = cli_ips / bare_ips
    print(f"  (a) / bare images/s   {ratio:.2f}  {verdict(ratio >= IMAGE_RATIO_TARGET)} (>= {IMAGE_RATIO_TARGET}); "
          f"against bare with its model loading counted ({bare_with_load:.2f}/s): {cli_ips / bare_with_load:.2f}")
    print("  " + ", ".join(f"({name}) / bare {ips / bare_ips:.2f}" for name, ips in loops.items())
          + "  (the loader's loop alone)")
    bare_index = rounds["bare"].index(bare)
    others = {"(a)": str(workspace.stored("bench_images"))}
    others.update({f"({name})": str(scratch / f"{name}_0.npy") for name in loops})
    check = run_worker("compare_vectors", {"bare": str(scratch / f"bare_{bare_index}.npy"), "ids": bare.report["ids"],
                                           "others": others})
    print("  largest |ours - bare| of a vector element: " + ", ".join(
        f"{k} {v:.1e}" for k, v in check.report["max_abs_difference"].items()))
    ctx.image_vectors = scratch / f"bare_{bare_index}.npy"


def tabular_part(args, ctx: Context) -> None:
    parquet, csv = ensure_table(args.rows)
    warm_page_cache([parquet, csv])
    print(f"\n2. Tabular: {args.rows:,} rows x {len(TABLE_COLUMNS)} columns ({parquet.name}; "
          f"{parquet.stat().st_size / 2**20:,.0f} MiB Parquet, {csv.stat().st_size / 2**20:,.0f} MiB CSV), "
          f"{CLASSES} hidden classes in 'label' (not embedded)", flush=True)
    scratch = scratch_folder("tabular-")
    vectors, peer_vectors = scratch / "vectors.npy", scratch / "peer.npy"
    positions, distances = scratch / "positions.npy", scratch / "distances.npy"
    rows = []
    encode = run_worker("tab_encode", {"parquet": str(parquet), "columns": TABLE_COLUMNS, "out": str(vectors)})
    e = encode.report
    rows.append(["encode (fit + encode)", f"{e['seconds']:.1f}", f"{encode.cpu_s:.1f}", f"{encode.rss_mib:,.0f}",
                 (f"fit {e['fit_s']:.1f} s (3 passes), encode {e['encode_s']:.1f} s, row hashes {e['row_hashes_s']:.1f} s; "
                 f"{e['features']} features -> {e['dimension']} dims, {e['explained_variance']:.0%} of the variance; "
                 f"{e['rows'] / e['seconds']:,.0f} rows/s; RSS after imports {e['rss_imported_mib']:,.0f} MiB")])
    print(f"  encode done: {e['seconds']:.1f} s", flush=True)
    peer = run_worker("tab_peer", {"parquet": str(parquet), "columns": TABLE_COLUMNS, "out": str(peer_vectors)})
    p = peer.report
    rows.append(["peer: pandas + sklearn (-> 32 dims)", f"{p['seconds']:.1f}", f"{peer.cpu_s:.1f}", f"{peer.rss_mib:,.0f}",
                 (f"read_parquet {p['read_s']:.1f} s, fit_transform {p['fit_transform_s']:.1f} s; its PCA map is "
                 "its first two components")])
    print(f"  peer done: {p['seconds']:.1f} s", flush=True)
    nbrs = run_worker("tab_neighbors", {"vectors": str(vectors), "positions": str(positions), "distances": str(distances)})
    nr = nbrs.report
    rows.append([f"all-neighbours ({'IVF' if nr['approximate'] else 'exact'}, k 15)", f"{nr['seconds']:.1f}",
                 f"{nbrs.cpu_s:.1f}", f"{nbrs.rss_mib:,.0f}",
                 f"build {nr['build_s']:.1f} s, search {nr['search_s']:.1f} s; RSS with vectors loaded {nr['rss_loaded_mib']:,.0f} MiB"])
    print(f"  neighbours done: {nr['seconds']:.1f} s", flush=True)
    pca = run_worker("tab_map", {"vectors": str(vectors), "rows": args.rows, "method": "pca"})
    rows.append(["PCA map", f"{pca.report['seconds']:.1f}", f"{pca.cpu_s:.1f}", f"{pca.rss_mib:,.0f}",
                 f"RSS with vectors loaded {pca.report['rss_loaded_mib']:,.0f} MiB"])
    # UMAP: at each --umap-rows size on every point and as the package draws it (fitted on a
    # sample above maps.UMAP_SAMPLE), then at the full size as the package draws it.
    umaps = []
    for size in [s for s in args.umap_rows if s < args.rows]:
        for sample in (size, None):
            m = run_worker("tab_map", {"vectors": str(vectors), "rows": size, "method": "umap", "umap_sample": sample})
            umaps.append((size, m))
            print(f"  UMAP at {size:,} rows, fitted on {m.report['fitted_on']}: {m.report['seconds']:.1f} s, "
                  f"neighbourhoods kept {m.report['kept']:.3f}", flush=True)
    m = run_worker("tab_map", {"vectors": str(vectors), "rows": args.rows, "method": "umap",
                               "positions": str(positions), "distances": str(distances),
                               "umap_sample": args.rows if args.umap_full else None})
    umaps.append((args.rows, m))
    for size, m in umaps:
        r = m.report
        extra = f", its IVF neighbours {r['neighbors_s']:.1f} s" if "neighbors_s" in r else ", the stored neighbours"
        rows.append([f"UMAP map, {size:,} rows, fitted on {r['fitted_on']}", f"{r['seconds']:.1f}", f"{m.cpu_s:.1f}",
                     f"{m.rss_mib:,.0f}", (f"neighbourhoods kept {r['kept']:.3f}; numba warm-up {r['warmup_s']:.1f} s "
                                           f"apart{extra}; RSS before the map {r['rss_before_map_mib']:,.0f} MiB")])
    workspace = ctx.workspace
    imported = workspace.run("dataset", "import", csv, "--name", "bench_table", "--no-profile", "--json")
    cli = workspace.run("embeddings", "compute", "bench_table", "--columns", ",".join(TABLE_COLUMNS), "--map", "pca", "--json")
    c = cli.report
    rows.append(["(a) CLI: dataset import --no-profile", f"{imported.wall_s:.1f}", f"{imported.cpu_s:.1f}",
                 f"{imported.rss_mib:,.0f}", "for information: the input of (a)"])
    rows.append(["(a) CLI: embeddings compute --map pca", f"{cli.wall_s:.1f}", f"{cli.cpu_s:.1f}", f"{cli.rss_mib:,.0f}",
                 (f"run {c['seconds']:.1f} s, encoding loop {c['count'] / c['throughput_per_s']:.1f} s "
                 f"({c['throughput_per_s']:,.0f} rows/s)")])
    print(f"  {args.rows:,} rows (seconds, CPU seconds and peak RSS of each child)")
    table(["phase", "seconds", "CPU s", "peak RSS MiB", "notes"], rows)
    ours_total = e["seconds"] + pca.report["seconds"]
    print(f"  ours (encode + PCA map) / peer: {ours_total / p['seconds']:.2f} in time, "
          f"{max(encode.rss_mib, pca.rss_mib) / peer.rss_mib:.2f} in peak RSS")
    quality = run_worker("tab_quality", {"parquet": str(parquet), "stored": str(workspace.stored("bench_table")),
                                         "vectors": {"ours": str(vectors), "peer": str(peer_vectors)}})
    q = quality.report
    print(f"  quality: share of the 10 nearest neighbours (exact) with the point's label, {q['queries']:,} points: "
          f"ours {q['ours']:.3f}, peer {q['peer']:.3f}; the neighbours the CLI run stored {q['stored']:.3f} "
          f"(their recall@10 against exact: {q['stored_recall']:.3f}); chance {q['chance']:.3f}")


def neighbors_part(args, ctx: Context) -> None:
    print(f"\n3. Nearest neighbours: {args.vectors:,} clustered, normalized vectors; {args.queries} single queries "
          "(perturbed data points)", flush=True)
    for d, hnsw_n in ((32, min(args.vectors, args.hnsw_32)), (512, min(args.vectors, args.hnsw_512))):
        m = run_worker("ann", {"vectors": args.vectors, "dimension": d, "hnsw_vectors": hnsw_n, "queries": args.queries,
                               "block": args.block})
        r = m.report
        print(f"  d = {d} (child: {m.wall_s:.0f} s wall, CPU {m.cpu_s:.0f} s, peak RSS {m.rss_mib:,.0f} MiB; "
              f"data generated in {r['generate_s']:.1f} s)")
        table(["index", "vectors", "build s", "median ms", "p95 ms", "recall@10", f"< {LATENCY_TARGET_MS:.0f} ms"],
              [[x["name"], f"{x['vectors']:,}", f"{x['build_s']:.1f}", f"{x['median_ms']:.2f}", f"{x['p95_ms']:.2f}",
                f"{x['recall']:.3f}", verdict(x["median_ms"] < LATENCY_TARGET_MS)] for x in r["rows"]])
        below = r["all_neighbors_exact_below"]
        print(f"  all-neighbours (k 16, scaled from {args.block:,} queries): ours at {args.vectors:,} "
              f"({r['all_neighbors_ours_kind']}) {r['all_neighbors_ours_s']:.0f} s; exact at {below['vectors']:,} "
              f"(just under INDEX_ABOVE: what the run did before graph_index) {below['seconds']:.0f} s")
        print("  crossover, exact single query: " + "; ".join(
            f"{c['elements'] / 1e6:.0f}M elements ({c['vectors']:,} x {d}) median {c['median_ms']:.1f} ms, "
            f"p95 {c['p95_ms']:.1f} ms" for c in r["crossover"]), flush=True)


def crossover_part(args, ctx: Context) -> None:
    """Where every point's neighbours are cheaper through IVF than exact (``ALL_EXACT_UP_TO``)."""
    print(f"\nAll-neighbours crossover (k 15, scaled from {args.block:,} queries; IVF's build counted whole)", flush=True)
    rows = []
    for d in (32, 512):
        for n in CROSSOVER_VECTORS[:2] if args.quick else CROSSOVER_VECTORS:
            m = run_worker("all_crossover", {"vectors": n, "dimension": d, "block": args.block})
            r = m.report
            rows.append([str(d), f"{n:,}", f"{n * n * d:.1e}", f"{r['exact_s']:.1f}", f"{r['ivf_s']:.1f}",
                         f"{r['ivf_build_s']:.1f}", f"{r['exact_s'] / r['ivf_s']:.2f}", f"{r['recall']:.3f}"])
    table(["d", "vectors", "n²·d", "exact s", "IVF s", "IVF build s", "exact / IVF", "IVF recall@10"], rows)


def fiftyone_part(args, ctx: Context) -> None:
    print(f"\n4. FiftyOne's brain against ours, on bare's {args.images:,} image vectors", flush=True)
    python = args.fiftyone_python
    if not Path(python).exists():
        print(f"  skipped: no FiftyOne environment at {python} (bench/README.md says how to make one offline, and "
              "what fails: fiftyone-db 1.x downloads MongoDB when it builds)")
        return
    _, folder = ensure_images(args.images)
    if ctx.image_vectors is None:
        scratch = scratch_folder("images-")
        ctx.image_vectors = scratch / "bare.npy"
        run_worker("bare_clip", {"model": str(ensure_model()), "images": str(folder), "batch_size": args.batch_size,
                                 "out": str(ctx.image_vectors)})
    database = scratch_folder("fiftyone-")
    env = dict(os.environ, FIFTYONE_DATABASE_DIR=str(database / "db"), FIFTYONE_DO_NOT_TRACK="true",
               FIFTYONE_DEFAULT_DATASET_DIR=str(database / "datasets"), PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)
    queries = min(20, args.images)
    spec = {"images": str(folder), "vectors": str(ctx.image_vectors), "queries": queries}
    try:
        fo = run_worker("fiftyone", spec, python=python, env=env)
    except RuntimeError as error:
        print(f"  FiftyOne failed: {str(error).strip().splitlines()[-1][:300]}")
        return
    results = database / "fiftyone.json"
    results.write_text(json.dumps(fo.report))
    ours = run_worker("ours_brain", {"vectors": str(ctx.image_vectors), "queries": queries, "fiftyone": str(results)})
    f, o = fo.report, ours.report
    table(["contender", "seconds", "query median ms", "wall s", "peak RSS MiB", "notes"], [
        [f"FiftyOne {f['version']} brain", f"{f['seconds']:.2f}", f"{f['query_median_ms']:.1f}", f"{fo.wall_s:.1f}",
         f"{fo.rss_mib:,.0f}", (f"uniqueness {f['uniqueness_s']:.2f} s + similarity index {f['similarity_s']:.2f} s; "
         f"imports {f['imports_s']:.1f} s, add_samples (MongoDB) {f['add_samples_s']:.1f} s; mongod's RSS not counted")],
        ["ours (NeighborIndex + all_neighbors + uniqueness)", f"{o['seconds']:.2f}", f"{o['query_median_ms']:.2f}",
         f"{ours.wall_s:.1f}", f"{ours.rss_mib:,.0f}", "index.search(vector, 11) per query"],
    ])
    for name, what in (("raw", "ours as it is"), ("centered", "ours on the vectors centered as FiftyOne does")):
        print(f"  agreement, {what}: uniqueness Spearman {o[f'{name}_spearman']:.3f}, most unique 10% in common "
              f"{o[f'{name}_top_decile']:.2f}, 10 nearest neighbours in common {o[f'{name}_neighbors']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a check in about 3 minutes")
    parser.add_argument("--part", choices=("all", "images", "tabular", "neighbors", "crossover", "fiftyone"), default="all")
    parser.add_argument("--images", type=int, help=f"JPEGs (default {DEFAULT_IMAGES}; {QUICK_IMAGES} with --quick)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the image contenders, taking turns (default 1)")
    parser.add_argument("--rows", type=int, help=f"tabular rows (default {DEFAULT_ROWS:,})")
    parser.add_argument("--umap-rows", help=f"sizes below the full one where UMAP on every point is compared with the "
                                            f"package's sampled UMAP (default {DEFAULT_UMAP_ROWS})")
    parser.add_argument("--umap-full", action="store_true",
                        help="UMAP on every point at the full size, not on a sample (1M rows: 29 min and 9.5 GB here)")
    parser.add_argument("--vectors", type=int, help=f"vectors per dimension (default {DEFAULT_VECTORS:,})")
    parser.add_argument("--hnsw-32", type=int, help="HNSW builds at d=32 on this many (default all)")
    parser.add_argument("--hnsw-512", type=int, help=f"HNSW builds at d=512 on this many (default {DEFAULT_HNSW_512:,})")
    parser.add_argument("--queries", type=int, help=f"single queries (default {DEFAULT_QUERIES})")
    parser.add_argument("--fiftyone-python", default=FIFTYONE_PYTHON, help="python of a virtual environment with fiftyone")
    parser.add_argument("--make", nargs=2, metavar=("KIND", "AMOUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=2, metavar=("NAME", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        make_model() if args.make[0] == "model" else make_table(int(args.make[1]))
        return
    if args.worker:
        print(json.dumps(WORKERS[args.worker[0]](json.loads(args.worker[1]))))
        return
    quick = args.quick
    args.images = args.images or (QUICK_IMAGES if quick else DEFAULT_IMAGES)
    args.rows = args.rows or (QUICK_ROWS if quick else DEFAULT_ROWS)
    args.umap_rows = [int(s) for s in (args.umap_rows or (QUICK_UMAP_ROWS if quick else DEFAULT_UMAP_ROWS)).split(",") if s]
    args.vectors = args.vectors or (QUICK_VECTORS if quick else DEFAULT_VECTORS)
    args.hnsw_32 = args.hnsw_32 or args.vectors
    args.hnsw_512 = args.hnsw_512 or (QUICK_HNSW_512 if quick else DEFAULT_HNSW_512)
    args.queries = args.queries or (QUICK_QUERIES if quick else DEFAULT_QUERIES)
    args.block = QUICK_ALL_NEIGHBORS_BLOCK if quick else ALL_NEIGHBORS_BLOCK
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print(f"bench/embeddings.py  {time.strftime('%Y-%m-%d %H:%M')}  {platform.node()}")
    print(f"  machine: {os.cpu_count()} cores; load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"Python {platform.python_version()}")
    ctx = Context()
    parts = {"images": images_part, "tabular": tabular_part, "neighbors": neighbors_part, "crossover": crossover_part,
             "fiftyone": fiftyone_part}
    try:
        for name, part in parts.items():
            if args.part in ("all", name):
                part(args, ctx)
    finally:
        for folder in SCRATCH:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\n  {time.perf_counter() - started:,.0f} s in all; load average at the end: "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}; this script's own peak RSS {_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
