"""What a run of an embeddings asset does: encode, find neighbours, draw the map, publish.

The input is the current version of the dataset or image folder of the embeddings' name.
Vectors are encoded batch by batch into a memory-mapped file in the staging folder (rows
and images are never all in memory; the vectors are paged by the OS), then every point's
nearest neighbours are found (``neighbors``), the 2D map drawn (``maps``), and one new
version published as a dataset's is (``DatasetStore``): ``embeddings.parquet`` (``id``,
``vector`` as a fixed-size float32 list, ``x``, ``y``, the stored neighbours, ``uniqueness``,
``content_hash``), the approximate index when there is one, the map's picture, the explorer
page and ``embeddings.json`` (how they were computed). Nothing is published if a step fails.
"""

from __future__ import annotations

import base64
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dataplat_dagster.catalog.models import EmbeddingsSpec
from dataplat_dagster.datasets import storage
from dataplat_dagster.embeddings.layout import EXPLORER_PAGE, INDEX_FILE, INFO_FILE, MAP_PICTURE, VECTORS_TABLE, input_store
from dataplat_dagster.errors import DataplatError

EXPLORER_NEIGHBORS = 10
EXPLORER_POINTS = 200_000  # above, the page draws a fixed sample (said on the page): it stays a page, not a dump
EXPLORER_COLUMNS = 12
THUMBNAILS = 5_000
THUMBNAIL_PX = 64
WRITE_ROWS = 65_536


@dataclass
class Encoded:
    """What the encoding step produced, for the rest of the run."""

    ids: list[str]
    vectors: np.ndarray
    hashes: list[str]
    metric: str
    model: str
    details: dict = field(default_factory=dict)
    columns: dict[str, list] = field(default_factory=dict)  # values shown in the explorer
    color_by: str | None = None
    thumbnails: dict[int, str] = field(default_factory=dict)
    # The encoding loop alone (batches in, vectors out): what throughput_per_s divides by, as a
    # bare loop over the model would be timed; model loading, thumbnails and columns apart.
    loop_seconds: float = 0.0


def compute(log, root, name: str, spec: EmbeddingsSpec, staging: Path) -> tuple[dict, dict[str, Path], int, str]:
    """Encode the input's current version into ``staging``; returns the info, the staged files
    to publish, the point count, and the input version's id."""
    source = input_store(root, name, spec).current()
    what = "dataset" if spec.input == "dataset" else "image folder"
    if source is None:
        raise DataplatError(f"The {what} {name!r} has no stored data yet: import it first, then compute its embeddings.")
    if source.manifest.get("rows") == 0:
        raise DataplatError(f"The {what} {name!r} is empty: there is nothing to embed.")
    started = time.perf_counter()
    if spec.kind == "image":
        encoded = _encode_images(log, source, spec, staging)
    else:
        encoded = _encode_rows(log, source, spec, staging)
    encode_seconds = time.perf_counter() - started
    count = len(encoded.ids)
    throughput = count / max(encoded.loop_seconds or encode_seconds, 1e-9)
    log.info(f"Encoded {count:,} points in {encode_seconds:.1f} s ({throughput:,.0f}/s in the encoding loop); finding neighbours.")

    from dataplat_dagster.embeddings.maps import map_2d, map_png
    from dataplat_dagster.embeddings.neighbors import NeighborIndex, all_neighbors, graph_index, uniqueness

    index = NeighborIndex.build(encoded.vectors, encoded.metric)  # single queries: stored if approximate
    graph = graph_index(index, encoded.vectors)
    positions, distances = all_neighbors(graph, encoded.vectors)
    log.info(f"Neighbours found ({'approximate index' if graph.approximate else 'exact search'}); drawing the {spec.map.upper()} map.")
    coordinates, map_params = map_2d(encoded.vectors, spec.map, encoded.metric, positions, distances)
    scores = uniqueness(distances)
    files = {VECTORS_TABLE: staging / VECTORS_TABLE, MAP_PICTURE: staging / MAP_PICTURE,
             EXPLORER_PAGE: staging / EXPLORER_PAGE, INFO_FILE: staging / INFO_FILE}
    _write_table(files[VECTORS_TABLE], encoded, coordinates, positions, distances, scores)
    if index.approximate:
        files[INDEX_FILE] = staging / INDEX_FILE
        index.save(files[INDEX_FILE])
    labels = encoded.columns.get(encoded.color_by) if encoded.color_by else None
    drawn = _explorer_sample(count)  # the explorer's points, whose values ``encoded.columns`` holds
    files[MAP_PICTURE].write_bytes(map_png(coordinates if drawn is None else coordinates[drawn], labels))
    seconds = time.perf_counter() - started
    info = {
        "name": name, "input": spec.input, "kind": spec.kind, "columns": spec.columns, "model": encoded.model,
        "dimension": int(encoded.vectors.shape[1]), "count": count, "metric": encoded.metric,
        "index": "faiss IVF (approximate)" if index.approximate else "exact",
        "stored_neighbors": "faiss IVF (approximate)" if graph.approximate else "exact",
        "map": map_params, "encode_seconds": round(encode_seconds, 3), "seconds": round(seconds, 3),
        "encode_loop_seconds": round(encoded.loop_seconds, 3), "throughput_per_s": round(throughput, 1),
        "input_version": source.id,
        "color_by": encoded.color_by, **encoded.details,
    }
    if spec.kind != "tabular":  # what `embeddings search` loads to put a text in the same space
        info["model_args"] = {"model": spec.model, "pretrained": spec.pretrained, "checkpoint": spec.checkpoint}
    _write_explorer(files[EXPLORER_PAGE], name, spec, encoded, coordinates, positions, distances, info)
    files[INFO_FILE].write_text(json.dumps(info, indent=1, default=str))
    return info, files, count, source.id


# -- encoding -------------------------------------------------------------------------------


def _memmap(staging: Path, rows: int, dimension: int) -> np.ndarray:
    return np.lib.format.open_memmap(staging / "vectors.npy", mode="w+", dtype=np.float32, shape=(rows, dimension))


def _encode_rows(log, source, spec: EmbeddingsSpec, staging: Path) -> Encoded:
    import pyarrow.parquet as pq

    with source.local_file(storage.DATA_FILE) as path:
        schema = pq.read_schema(path)
        rows = pq.read_metadata(path).num_rows
        if spec.kind == "text":
            encoded = _encode_text(log, path, spec, staging, rows, schema)
        else:
            from dataplat_dagster.embeddings.tabular import TabularEncoder

            started = time.perf_counter()  # the fit's passes are the encoder's work: counted
            encoder = TabularEncoder(path, spec.columns)
            vectors = _memmap(staging, rows, encoder.output_dimension)
            hashes: list[str] = []
            at = 0
            for batch in encoder.batches():
                vectors[at:at + batch.num_rows] = encoder.encode(batch)
                hashes += _row_hashes(batch)
                at += batch.num_rows
            encoded = Encoded([str(i) for i in range(rows)], vectors, hashes, "euclidean", "tabular",
                              details={"tabular": encoder.description()}, loop_seconds=time.perf_counter() - started)
        _explorer_columns(encoded, path, schema, spec)
    return encoded


def _encode_text(log, path, spec: EmbeddingsSpec, staging: Path, rows: int, schema) -> Encoded:
    import pyarrow.parquet as pq

    from dataplat_dagster.embeddings.clip import load_model
    from dataplat_dagster.embeddings.tabular import check_columns

    columns = check_columns(schema, spec.columns, "text")
    clip = load_model(spec.model, spec.pretrained, spec.checkpoint, spec.device)
    log.info(f"Text of {', '.join(columns)} through {clip.weights} on {clip.device}.")
    vectors = None
    hashes: list[str] = []
    at = 0
    started = time.perf_counter()
    for batch in pq.ParquetFile(path).iter_batches(batch_size=spec.batch_size, columns=columns):
        values = [batch.column(c).to_pylist() for c in columns]
        texts = [" ".join(str(v) for v in row if v is not None) for row in zip(*values)]
        block = clip.encode_text(texts)
        if vectors is None:
            vectors = _memmap(staging, rows, block.shape[1])
        vectors[at:at + len(block)] = block
        hashes += _row_hashes(batch)
        at += len(block)
    if vectors is None:
        vectors = np.zeros((0, 1), dtype=np.float32)
    return Encoded([str(i) for i in range(rows)], vectors, hashes, "cosine", clip.weights,
                   details={"device": clip.device, "batch_size": spec.batch_size, "text_columns": columns},
                   loop_seconds=time.perf_counter() - started)


def _row_hashes(batch) -> list[str]:
    """A hash of each row's values: equal rows, equal hashes (exact duplicates)."""
    import pandas as pd

    return [format(h, "016x") for h in pd.util.hash_pandas_object(batch.to_pandas(), index=False).to_numpy()]


def _explorer_columns(encoded: Encoded, path, schema, spec: EmbeddingsSpec) -> None:
    """The values the explorer colours by and shows: the embedded columns first, at most 12."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    chosen = list(spec.columns or [])
    names = chosen + [n for n in schema.names if n not in chosen]
    names = [n for n in names if _showable(schema.field(n).type)][:EXPLORER_COLUMNS]
    table = pq.read_table(path, columns=names)
    picked = _explorer_sample(len(encoded.ids))
    for name in names:
        column = table.column(name)
        if picked is not None:
            column = column.take(pa.array(picked))
        values = column.to_pylist()
        encoded.columns[name] = [v if isinstance(v, (str, int, float, bool)) or v is None else str(v) for v in values]
    categorical = [n for n in names if n in encoded.columns and 1 < len(set(encoded.columns[n])) <= 20]
    encoded.color_by = next((n for n in ("label", "class", "category") if n in categorical), categorical[0] if categorical else None)


def _showable(arrow_type) -> bool:
    import pyarrow as pa

    return not (pa.types.is_nested(arrow_type) or pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type))


def _encode_images(log, source, spec: EmbeddingsSpec, staging: Path) -> Encoded:
    import pyarrow.parquet as pq

    from dataplat_dagster.embeddings.clip import image_batches, load_model, loader_workers
    from dataplat_dagster.images.store import IMAGES_FOLDER, MANIFEST_TABLE

    with source.local_file(MANIFEST_TABLE) as path:
        manifest = pq.read_table(path, columns=["path", "label", "width", "height", "sha256"]).to_pydict()
    paths = manifest["path"]
    clip = load_model(spec.model, spec.pretrained, spec.checkpoint, spec.device)
    workers = loader_workers()
    log.info(f"{len(paths):,} images through {clip.weights} on {clip.device}, batches of {spec.batch_size}, "
             f"{workers} decoding workers.")
    images = source.path(IMAGES_FOLDER)
    vectors = None
    at = 0
    started = time.perf_counter()
    for block in image_batches(clip, paths, _Reader(images), spec.batch_size, workers):
        if vectors is None:
            vectors = _memmap(staging, len(paths), block.shape[1])
        vectors[at:at + len(block)] = block
        at += len(block)
    loop_seconds = time.perf_counter() - started
    if vectors is None:
        vectors = np.zeros((0, 1), dtype=np.float32)
    encoded = Encoded(list(paths), vectors, list(manifest["sha256"]), "cosine", clip.weights,
                      details={"device": clip.device, "batch_size": spec.batch_size, "loader_workers": workers},
                      loop_seconds=loop_seconds)
    picked = _explorer_sample(len(paths))
    rows = picked if picked is not None else range(len(paths))
    encoded.columns = {key: [manifest[key][i] for i in rows] for key in ("label", "path", "width", "height")}
    encoded.color_by = "label" if any(v is not None for v in encoded.columns["label"]) else None
    encoded.thumbnails = _thumbnails(images, [paths[i] for i in rows][:THUMBNAILS])
    return encoded


class _Reader:
    """Reads one stored image by its path; picklable, for the loader's worker processes."""

    def __init__(self, images):
        self.images = images

    def __call__(self, path: str) -> bytes:
        return (self.images / path).read_bytes()


def _thumbnails(images, paths: list[str]) -> dict[int, str]:
    from PIL import Image

    found = {}
    for i, path in enumerate(paths):
        try:
            with Image.open(io.BytesIO((images / path).read_bytes())) as image:
                image = image.convert("RGB")
                image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
                buffer = io.BytesIO()
                image.save(buffer, format="JPEG", quality=70)
        except OSError:  # a thumbnail is a nicety: a point without one shows its path
            continue
        found[i] = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return found


# -- writing --------------------------------------------------------------------------------


def _explorer_sample(count: int) -> np.ndarray | None:
    """The points the explorer draws: all of them up to ``EXPLORER_POINTS``, else a fixed sample."""
    if count <= EXPLORER_POINTS:
        return None
    return np.sort(np.random.default_rng(0).choice(count, size=EXPLORER_POINTS, replace=False))


def _write_table(path: Path, encoded: Encoded, coordinates, positions, distances, scores) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    dimension, k = encoded.vectors.shape[1], positions.shape[1]
    schema = pa.schema([
        pa.field("id", pa.string(), nullable=False),
        pa.field("vector", pa.list_(pa.float32(), dimension), nullable=False),
        pa.field("x", pa.float32(), nullable=False),
        pa.field("y", pa.float32(), nullable=False),
        pa.field("neighbors", pa.list_(pa.int32(), k)),
        pa.field("distances", pa.list_(pa.float32(), k)),
        pa.field("uniqueness", pa.float32()),
        pa.field("content_hash", pa.string()),
    ], metadata={"dataplat/metric": encoded.metric, "dataplat/model": encoded.model})
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, len(encoded.ids), WRITE_ROWS):
            stop = min(len(encoded.ids), start + WRITE_ROWS)
            rows = stop - start
            writer.write_table(pa.table([
                pa.array(encoded.ids[start:stop], pa.string()),
                pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(encoded.vectors[start:stop]).reshape(-1)), dimension),
                pa.array(coordinates[start:stop, 0]), pa.array(coordinates[start:stop, 1]),
                pa.FixedSizeListArray.from_arrays(pa.array(positions[start:stop].reshape(-1)), k),
                pa.FixedSizeListArray.from_arrays(pa.array(distances[start:stop].reshape(-1)), k),
                pa.array(scores[start:stop]),
                pa.array(encoded.hashes[start:stop] if encoded.hashes else [None] * rows, pa.string()),
            ], schema=schema))


def _write_explorer(path: Path, name: str, spec: EmbeddingsSpec, encoded: Encoded, coordinates, positions, distances,
                    info: dict) -> None:
    from dataplat_dagster.embeddings.explorer import ExplorerData, write_explorer

    picked = _explorer_sample(len(encoded.ids))
    what = "dataset" if spec.input == "dataset" else "image folder"
    header = {
        "model": encoded.model, "dimension": str(info["dimension"]), "points": f"{info['count']:,}",
        "metric": encoded.metric, "map": ", ".join(f"{k}={v}" for k, v in info["map"].items()),
        "neighbours": "approximate (faiss IVF)" if info["stored_neighbors"] != "exact" else "exact",
    }
    if picked is None:
        ids, x, y = encoded.ids, coordinates[:, 0], coordinates[:, 1]
        near, far = positions[:, :EXPLORER_NEIGHBORS], distances[:, :EXPLORER_NEIGHBORS]
    else:
        header["sample"] = f"{len(picked):,} of {info['count']:,} points drawn (a fixed sample); neighbours within it"
        # Neighbours are shown among the drawn points only: map each stored neighbour into the sample.
        where = np.full(len(encoded.ids), -1, dtype=np.int64)
        where[picked] = np.arange(len(picked))
        stored = positions[picked, :EXPLORER_NEIGHBORS]
        near = np.where(stored >= 0, where[stored], -1)
        far = np.where(near >= 0, distances[picked, :EXPLORER_NEIGHBORS], np.inf)
        ids, x, y = [encoded.ids[i] for i in picked], coordinates[picked, 0], coordinates[picked, 1]
    data = ExplorerData(
        title=f"Embeddings of {what} {name!r}", ids=list(ids), x=np.asarray(x, np.float32), y=np.asarray(y, np.float32),
        columns=encoded.columns, neighbors=np.asarray(near, np.int32), distances=np.asarray(far, np.float32),
        color_by=encoded.color_by, thumbnails=encoded.thumbnails or None, info=header,
    )
    write_explorer(data, path)
