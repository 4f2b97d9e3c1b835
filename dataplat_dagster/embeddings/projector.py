"""The Embedding Projector's files: ``tensors.tsv`` (one vector per line) and
``metadata.tsv`` (a header, then each point's id and values), to load in TensorFlow's
Embedding Projector (projector.tensorflow.org, "Load")."""

from __future__ import annotations

import os
from pathlib import Path


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def write_projector(project, stored, folder: Path) -> tuple[Path, Path]:
    from dataplat_dagster.embeddings.queries import describe_points

    folder.mkdir(parents=True, exist_ok=True)
    tensors, metadata = folder / "tensors.tsv", folder / "metadata.tsv"
    chunk = 10_000
    with open(tensors.with_suffix(".tmp"), "w") as out:
        for start in range(0, len(stored), chunk):
            for vector in stored.vectors[start:start + chunk]:
                out.write("\t".join(f"{v:.6g}" for v in vector) + "\n")
    with open(metadata.with_suffix(".tmp"), "w", encoding="utf-8") as out:
        header = None
        for start in range(0, len(stored), chunk):
            found = [(i, 0.0) for i in range(start, min(len(stored), start + chunk))]
            for point in describe_points(project, stored, found, "score"):
                values = point.get("values") or {"path": point.get("path")}
                if header is None:
                    header = ["id", *values]
                    out.write("\t".join(_cell(h) for h in header) + "\n")
                out.write("\t".join([_cell(point["id"]), *(_cell(values.get(h)) for h in header[1:])]) + "\n")
    os.replace(tensors.with_suffix(".tmp"), tensors)
    os.replace(metadata.with_suffix(".tmp"), metadata)
    return tensors, metadata
