"""``dataplat embeddings ...``: compute, explore, neighbors, search, duplicates, outliers."""

from __future__ import annotations

import os
from pathlib import Path

import click

from dataplat_dagster.cli.context import CliContext, pass_context
from dataplat_dagster.cli.output import plural, print_json, print_table, report, wait_for_run, warn
from dataplat_dagster.errors import DataplatError


@click.group("embeddings")
def embeddings() -> None:
    """Embeddings of datasets and image folders: vectors, neighbours, a 2D map, an explorer page."""


@embeddings.command("compute")
@click.argument("name")
@click.option("--columns", help="The dataset's columns to embed, comma-separated (default: all).")
@click.option("--kind", type=click.Choice(["tabular", "text", "image"]),
              help="tabular (a dataset's default), text (text columns through open_clip's text tower), image (image folders).")
@click.option("--model", help="The open_clip model (default ViT-B-32).")
@click.option("--pretrained", help="open_clip's pretrained tag (default laion2b_s34b_b79k), downloaded at first use and cached.")
@click.option("--checkpoint", help="Local weights instead: a checkpoint file, or local-dir:FOLDER.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Where the model runs (default auto).")
@click.option("--batch-size", type=click.IntRange(1, 4096), help="Images or texts per batch (default 64).")
@click.option("--map", "map_method", type=click.Choice(["umap", "pca", "tsne"]), help="The 2D map (default umap).")
@click.option("--no-wait", is_flag=True, help="Return as soon as the run is submitted.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def embeddings_compute(ctx: CliContext, name: str, columns: str | None, kind: str | None, model: str | None,
                       pretrained: str | None, checkpoint: str | None, device: str | None, batch_size: int | None,
                       map_method: str | None, no_wait: bool, as_json: bool) -> None:
    """Compute the embeddings of dataset or image folder NAME, as a Dagster run of its asset."""
    from dataplat_dagster.embeddings.manage import start_compute

    if pretrained and checkpoint:
        raise click.UsageError("Give --pretrained or --checkpoint, not both.")
    if checkpoint and not checkpoint.startswith("local-dir:"):
        checkpoint = os.path.abspath(checkpoint)  # the run reads it, from wherever it runs
    elif checkpoint:
        checkpoint = "local-dir:" + os.path.abspath(checkpoint[len("local-dir:"):])
    options = {"columns": [c.strip() for c in columns.split(",") if c.strip()] if columns else None, "kind": kind,
               "model": model, "pretrained": pretrained, "checkpoint": checkpoint, "device": device,
               "batch_size": batch_size, "map": map_method}
    instance = ctx.instance()
    run_id, spec, warning = start_compute(instance, ctx.workspace, ctx.project, name, options, wait=not no_wait)
    if warning:
        warn(warning)
    if no_wait:
        report(as_json, {"name": name, "run_id": run_id, "status": "computing"},
                f"Submitted run {run_id}; the embeddings of {name!r} are computing.")
        return
    outcome = wait_for_run(instance, run_id, f"Computing the {spec.kind} embeddings of {name!r} in run {run_id} ...",
                           as_json=as_json, label=f"  {name}:")
    if outcome.error is not None or outcome.status.value != "SUCCESS":
        raise DataplatError(f"Computing the embeddings of {name!r} failed (run {outcome.run_id}): {outcome.error or outcome.status.value}")
    stored = _stored(ctx, name)
    info = stored.info
    result = {"name": name, "run_id": run_id, "status": "ready", "kind": info.get("kind"), "model": info.get("model"),
              "count": info.get("count"), "dimension": info.get("dimension"), "metric": info.get("metric"),
              "map": info.get("map"), "seconds": info.get("seconds"), "throughput_per_s": info.get("throughput_per_s"),
              "explorer": _explorer_location(stored)}
    report(as_json, result,
            f"Embeddings of {name!r} are ready: {plural(info.get('count'), 'point')} × {info.get('dimension')} "
            f"({info.get('model')}), {info.get('throughput_per_s'):,.0f}/s; map {info['map']['method']}. "
            f"Explore: dataplat embeddings explore {name}")


@embeddings.command("explore")
@click.argument("name")
@click.option("--output", type=click.Path(path_type=Path), help="Where to write the page (default NAME-embeddings.html), or a folder for --format projector.")
@click.option("--format", "fmt", type=click.Choice(["html", "projector"]), default="html", show_default=True,
              help="html: the interactive page; projector: tensors.tsv and metadata.tsv for TensorFlow's Embedding Projector.")
@pass_context
def embeddings_explore(ctx: CliContext, name: str, output: Path | None, fmt: str) -> None:
    """Write the explorer page of NAME's embeddings (self-contained, works offline)."""
    from dataplat_dagster.embeddings.layout import EXPLORER_PAGE

    stored = _stored(ctx, name)
    if fmt == "projector":
        from dataplat_dagster.embeddings.projector import write_projector

        folder = output or Path(f"{name}-projector")
        tensors, metadata = write_projector(ctx.project, stored, folder)
        click.echo(f"Wrote {tensors} and {metadata} ({plural(len(stored), 'point')}): load both in the Embedding Projector.")
        return
    target = output or Path(f"{name}-embeddings.html")
    page = stored.version.read_bytes(EXPLORER_PAGE)
    if page is None:
        raise DataplatError(f"The embeddings of {name!r} have no explorer page: compute them again.")
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(page)
    os.replace(tmp, target)
    click.echo(f"Wrote {target} ({plural(len(stored), 'point')}): open it in a browser.")


@embeddings.command("neighbors")
@click.argument("name")
@click.option("--id", "point", required=True, help="A row's 0-based position, or an image's path in the image folder.")
@click.option("--k", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: a list of {id, distance, values|path}, nearest first.")
@pass_context
def embeddings_neighbors(ctx: CliContext, name: str, point: str, k: int, as_json: bool) -> None:
    """The K nearest neighbours of one point of NAME's embeddings."""
    stored = _stored(ctx, name)
    found = stored.neighbors_of(point, k)
    _print_points(ctx, stored, found, as_json, "distance")


@embeddings.command("search")
@click.argument("name")
@click.option("--text", required=True, help="What to look for, in words (open_clip's text tower).")
@click.option("--k", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def embeddings_search(ctx: CliContext, name: str, text: str, k: int, as_json: bool) -> None:
    """The K points of NAME's image or text embeddings nearest to TEXT."""
    from dataplat_dagster.embeddings.queries import text_vector

    stored = _stored(ctx, name)
    found = stored.nearest_to(text_vector(stored, text), k)
    _print_points(ctx, stored, found, as_json, "distance")


@embeddings.command("duplicates")
@click.argument("name")
@click.option("--threshold", type=float, help="The largest distance between near duplicates (default: 0.05 cosine, 0.1 Euclidean).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: exact groups (same content) and near groups.")
@pass_context
def embeddings_duplicates(ctx: CliContext, name: str, threshold: float | None, as_json: bool) -> None:
    """Groups of exact duplicates (same content) and of near duplicates (close vectors) in NAME."""
    from dataplat_dagster.embeddings.queries import duplicates

    stored = _stored(ctx, name)
    result = duplicates(stored, threshold)
    if as_json:
        print_json(result)
        return
    click.echo(f"{plural(len(result['exact']), 'group')} of exact duplicates, {plural(len(result['near']), 'group')} "
               f"of near duplicates (distance ≤ {result['threshold']:g}, {result['metric']}).")
    for group in result["exact"][:20]:
        click.echo(f"  exact: {', '.join(group['ids'][:10])}{' ...' if len(group['ids']) > 10 else ''}")
    for group in result["near"][:20]:
        click.echo(f"  near ({group['max_distance']:.4g}): {', '.join(group['ids'][:10])}{' ...' if len(group['ids']) > 10 else ''}")


@embeddings.command("outliers")
@click.argument("name")
@click.option("--k", type=click.IntRange(1, 100_000), default=10, show_default=True, help="How many to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def embeddings_outliers(ctx: CliContext, name: str, k: int, as_json: bool) -> None:
    """The K least typical points of NAME: uniqueness in [0, 1], FiftyOne-style (1: the most unusual)."""
    import numpy as np

    stored = _stored(ctx, name)
    order = np.argsort(-stored.uniqueness, kind="stable")[:k]
    _print_points(ctx, stored, [(int(i), float(stored.uniqueness[i])) for i in order], as_json, "uniqueness")


def _stored(ctx: CliContext, name: str):
    from dataplat_dagster.embeddings.loading import current_embeddings

    return current_embeddings(ctx.project, name)


def _explorer_location(stored) -> str:
    from dataplat_dagster.embeddings.layout import EXPLORER_PAGE

    return stored.version.uri(EXPLORER_PAGE)


def _print_points(ctx: CliContext, stored, found: list[tuple[int, float]], as_json: bool, score: str) -> None:
    from dataplat_dagster.embeddings.queries import describe_points

    points = describe_points(ctx.project, stored, found, score)
    if as_json:
        print_json(points)
        return
    if not points:
        click.echo("No points.")
        return
    what = "path" if stored.info.get("input") == "image_folder" else "values"
    print_table(["id", score, what], [[p["id"], f"{p[score]:.4f}", p.get("path") or _short(p.get("values"))] for p in points])


def _short(values: dict | None) -> str:
    text = ", ".join(f"{k}={v}" for k, v in (values or {}).items())
    return text if len(text) <= 100 else text[:99] + "…"
