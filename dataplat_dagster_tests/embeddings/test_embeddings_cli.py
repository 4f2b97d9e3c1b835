"""Embeddings end to end through the real `dataplat` CLI: computed by a Dagster run of the
asset ``[project, "embeddings", NAME]``, their status in the lists, the queries, the explorer
and projector files, and the refusals; tabular rows on labelled data the test makes, and an
image folder through a tiny open_clip model with random weights (loaded as users' local
weights are, with --checkpoint local-dir:FOLDER)."""

import csv
import io
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from dataplat_dagster_tests.embeddings.test_explorer import Opened, browser  # noqa: F401  (the fixture)
from dataplat_dagster_tests.embeddings.tiny_clip import save_tiny_clip

CLASSES = ("red", "green", "blue")


def labelled_csv(path, rows_per_class=60, seed=0, duplicate_row=True):
    """Three classes of rows apart in their numbers, category and words; the class is not embedded."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["height", "weight", "colour", "note", "seen", "label"])
        for index, label in enumerate(CLASSES):
            for _ in range(rows_per_class):
                colour = label if rng.random() < 0.8 else CLASSES[(index + 1) % 3]
                writer.writerow([round(rng.normal(10 * index, 2), 3), round(rng.normal(50 - 15 * index, 4), 3), colour,
                                 f"{['tall tree', 'quick fox', 'calm lake'][index]} number {rng.integers(1000)}",
                                 f"2024-0{index + 1}-{rng.integers(1, 28):02d}", label])
        if duplicate_row:
            writer.writerow([1.5, 2.5, "red", "exact copy", "2024-01-01", "red"])
            writer.writerow([1.5, 2.5, "red", "exact copy", "2024-01-01", "red"])


def test_tabular_embeddings_end_to_end(cli_workspace, tmp_path):
    ws = cli_workspace
    source = tmp_path / "things.csv"
    labelled_csv(source)
    ws.run("dataset", "import", str(source), "--name", "things")
    assert ws.datasets()["things"]["embeddings"] == "none"

    computed = ws.run("embeddings", "compute", "things", "--columns", "height,weight,colour,note,seen", "--map", "pca",
                      "--json").json()
    assert (computed["status"], computed["kind"], computed["model"], computed["count"]) == ("ready", "tabular", "tabular", 182)
    assert computed["metric"] == "euclidean" and computed["map"]["method"] == "pca"
    assert ws.datasets()["things"]["embeddings"] == "ready"
    listed = ws.run("dataset", "list").stdout
    assert "EMBEDDINGS" in listed and "ready" in listed

    # The asset, downstream of the dataset, materialized with its metadata.
    with ws.instance() as instance:
        from dagster import AssetKey

        event = instance.get_latest_materialization_event(AssetKey(["shop", "embeddings", "things"]))
        metadata = event.asset_materialization.metadata
        assert metadata["dagster/row_count"].value == 182
        assert metadata["dimension"].value == computed["dimension"] <= 32
        assert metadata["map_picture"].value.startswith("![2D map (pca)](data:image/png;base64,")
        assert metadata["explorer"].value.endswith("embeddings/things/versions/" + metadata["dataplat/version"].value + "/explorer.html")

    # Stored as Parquet: id, a fixed-size float32 vector, the 2D map.
    stored = pq.read_table(ws.project_dir / "storage" / metadata["explorer"].value.split("storage/", 1)[1].replace("explorer.html", "embeddings.parquet"))
    assert stored.column("id").to_pylist()[:3] == ["0", "1", "2"]
    vector_type = stored.schema.field("vector").type
    assert (vector_type.list_size, vector_type.value_type) == (computed["dimension"], pa.float32())
    assert {"x", "y", "neighbors", "distances", "uniqueness"} <= set(stored.column_names)

    # Same class rows are mostly each other's nearest neighbours (the label was not embedded).
    labels = [row["label"] for row in csv.DictReader(open(source))]
    neighbours = stored.column("neighbors").to_pylist()
    same = [labels[n] == labels[point] for point in range(180) for n in neighbours[point][:10]]
    assert sum(same) / len(same) > 0.85
    for point in (0, 95):
        found = ws.run("embeddings", "neighbors", "things", "--id", str(point), "--k", "10", "--json").json()
        assert [int(p["id"]) for p in found] == neighbours[point][:10]
        assert [p["distance"] for p in found] == sorted(p["distance"] for p in found)
        assert all(set(p) == {"id", "distance", "values"} for p in found)
        assert found[0]["values"]["label"] == labels[int(found[0]["id"])]

    # More neighbours than stored: asked of the index.
    many = ws.run("embeddings", "neighbors", "things", "--id", "0", "--k", "40", "--json").json()
    assert len(many) == 40 and "0" not in [p["id"] for p in many]

    dupes = ws.run("embeddings", "duplicates", "things", "--json").json()
    assert dupes["exact"] == [{"ids": ["180", "181"]}]
    assert all("180" not in group["ids"] or "181" not in group["ids"] for group in dupes["near"])

    outliers = ws.run("embeddings", "outliers", "things", "--k", "5", "--json").json()
    assert len(outliers) == 5 and outliers[0]["uniqueness"] == 1.0
    assert [p["uniqueness"] for p in outliers] == sorted((p["uniqueness"] for p in outliers), reverse=True)

    page = tmp_path / "things.html"
    ws.run("embeddings", "explore", "things", "--output", str(page))
    html = page.read_text()
    assert "Embeddings of dataset &#x27;things&#x27;" in html or "Embeddings of dataset 'things'" in html
    assert "<script src=" not in html  # self-contained: works offline
    projector = tmp_path / "projector"
    ws.run("embeddings", "explore", "things", "--format", "projector", "--output", str(projector))
    tensors = (projector / "tensors.tsv").read_text().splitlines()
    metadata_lines = (projector / "metadata.tsv").read_text().splitlines()
    assert len(tensors) == 182 and len(tensors[0].split("\t")) == computed["dimension"]
    assert metadata_lines[0].split("\t")[:3] == ["id", "height", "weight"] and len(metadata_lines) == 183

    # A new version of the dataset makes them stale; computing again makes them ready.
    labelled_csv(source, seed=1)
    ws.run("dataset", "import", str(source), "--name", "things", "--replace")
    assert ws.datasets()["things"]["embeddings"] == "stale"
    ws.run("embeddings", "compute", "things", "--map", "pca")  # the recorded options: same columns
    assert ws.datasets()["things"]["embeddings"] == "ready"


def test_tabular_embeddings_are_deterministic_and_refusals_are_clear(cli_workspace, tmp_path):
    ws = cli_workspace
    source = tmp_path / "things.csv"
    labelled_csv(source, rows_per_class=20, duplicate_row=False)
    ws.run("dataset", "import", str(source), "--name", "things")
    ws.run("embeddings", "compute", "things", "--map", "umap")
    first = _vectors(ws, "things")
    ws.run("embeddings", "compute", "things")
    second = _vectors(ws, "things")
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])  # vectors and the UMAP map

    missing = ws.run("embeddings", "compute", "things", "--columns", "height,nope", check=False)
    assert missing.code != 0 and "Traceback" not in missing.stderr
    assert "No column 'nope' in the dataset" in missing.stderr and "fix --columns" in missing.stderr
    not_text = ws.run("embeddings", "compute", "things", "--kind", "text", "--columns", "height", check=False)
    assert not_text.code != 0 and "Text embeddings take text columns; 'height' is not" in not_text.stderr
    assert ws.datasets()["things"]["embeddings"] == "ready"  # refused before any run: the embeddings stand

    # Offline, the pretrained weights cannot be had: the run fails saying how to get them.
    offline = ws.run("embeddings", "compute", "things", "--kind", "text", "--columns", "note", check=False,
                     env={"HF_HUB_OFFLINE": "1"})
    assert offline.code != 0 and "Traceback" not in offline.stderr
    assert "The weights of ViT-B-32 (laion2b_s34b_b79k) are not cached and could not be downloaded" in offline.stderr
    assert "--checkpoint" in offline.stderr
    assert ws.datasets()["things"]["embeddings"].startswith("failed: The weights of ViT-B-32")

    unknown = ws.run("embeddings", "compute", "nothing", check=False)
    assert unknown.code != 0 and "has no dataset or image folder 'nothing'" in unknown.stderr
    no_point = ws.run("embeddings", "neighbors", "things", "--id", "999", check=False)
    assert no_point.code != 0 and "No point '999'" in no_point.stderr and "0 to 59" in no_point.stderr
    text = ws.run("embeddings", "search", "things", "--text", "a tree", check=False)
    assert text.code != 0 and "are tabular: search by text needs image or text embeddings" in text.stderr
    not_computed = ws.run("embeddings", "outliers", "other", check=False)
    assert not_computed.code != 0 and "has no embeddings" in not_computed.stderr


def _vectors(ws, name):
    with ws.instance() as instance:
        from dagster import AssetKey

        event = instance.get_latest_materialization_event(AssetKey(["shop", "embeddings", name]))
        version = event.asset_materialization.metadata["dataplat/version"].value
    table = pq.read_table(ws.project_dir / "storage" / "embeddings" / name / "versions" / version / "embeddings.parquet")
    vectors = np.vstack(table.column("vector").to_numpy(zero_copy_only=False))
    return vectors, np.column_stack([table.column("x").to_numpy(), table.column("y").to_numpy()])


def _image(colour, size=(40, 30), noise=0):
    rng = np.random.default_rng(noise)
    pixels = np.clip(np.array(colour, dtype=int) + rng.integers(-noise, noise + 1, (size[1], size[0], 3)), 0, 255)
    out = io.BytesIO()
    Image.fromarray(pixels.astype("uint8")).save(out, "PNG")
    return out.getvalue()


def test_image_embeddings_through_a_local_checkpoint(cli_workspace, tmp_path, browser):
    pytest.importorskip("open_clip")
    ws = cli_workspace
    members = {f"shapes/{label}/{i}.png": _image(colour, noise=i + 1)
               for label, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))) for i in range(6)}
    members["shapes/red/copy.png"] = members["shapes/red/0.png"]
    archive = tmp_path / "shapes.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for name, data in members.items():
            out.writestr(name, data)
    ws.run("image-folder", "import", str(archive), "--name", "shapes")
    assert ws.run("image-folder", "list", "--json").json()[0]["embeddings"] == "none"

    save_tiny_clip(tmp_path / "tiny")
    computed = ws.run("embeddings", "compute", "shapes", "--checkpoint", f"local-dir:{tmp_path / 'tiny'}", "--batch-size", "4",
                      "--device", "cpu", "--map", "pca", "--json").json()
    assert (computed["kind"], computed["count"], computed["dimension"], computed["metric"]) == ("image", 13, 32, "cosine")
    assert computed["model"] == f"local-dir:{tmp_path / 'tiny'}"
    assert ws.run("image-folder", "list", "--json").json()[0]["embeddings"] == "ready"

    found = ws.run("embeddings", "neighbors", "shapes", "--id", "red/0.png", "--k", "3", "--json").json()
    assert found[0] == {"id": "red/copy.png", "distance": pytest.approx(0.0, abs=1e-5), "path": "red/copy.png"}
    searched = ws.run("embeddings", "search", "shapes", "--text", "a red square", "--k", "5", "--json").json()
    assert len(searched) == 5 and len({p["id"] for p in searched}) == 5
    dupes = ws.run("embeddings", "duplicates", "shapes", "--json").json()
    assert dupes["exact"] == [{"ids": ["red/0.png", "red/copy.png"]}]

    # The vectors equal the tiny model's own, one image at a time (batching changes nothing).
    import open_clip
    import torch

    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{tmp_path / 'tiny'}")
    model.eval()
    with torch.inference_mode():
        alone = model.encode_image(preprocess(Image.open(io.BytesIO(members["shapes/blue/3.png"])).convert("RGB")).unsqueeze(0))
    alone = (alone / alone.norm(dim=-1, keepdim=True)).numpy()[0]
    vectors, _ = _vectors(ws, "shapes")
    ids = ws.run("embeddings", "outliers", "shapes", "--k", "13", "--json").json()
    assert len(ids) == 13
    table_ids = pq.read_table(next((ws.project_dir / "storage" / "embeddings" / "shapes" / "versions").glob("*/embeddings.parquet"))).column("id").to_pylist()
    assert np.allclose(vectors[table_ids.index("blue/3.png")], alone, atol=1e-5)

    # The explorer of the run, in Chromium: every image drawn, a thumbnail on hover, the
    # stored neighbours listed on click.
    page = tmp_path / "shapes.html"
    ws.run("embeddings", "explore", "shapes", "--output", str(page))
    opened = Opened(browser, page)
    assert opened.js("window.explorer.drawnPoints") == 13 and opened.errors == []
    point = table_ids.index("red/0.png")
    opened.page.mouse.move(*opened.at(point))
    tooltip = opened.page.locator("#tooltip")
    tooltip.wait_for(state="visible")
    assert "red/0.png" in tooltip.text_content()
    assert tooltip.locator("img").get_attribute("src").startswith("data:image/jpeg;base64,")
    opened.page.mouse.click(*opened.at(point))
    listed = opened.texts("#neighbors li .nid")
    expected = [p["id"] for p in ws.run("embeddings", "neighbors", "shapes", "--id", "red/0.png", "--k", "10", "--json").json()]
    assert listed == expected
    assert all(url.startswith(("file:", "data:", "blob:")) for url in opened.requests)

    refused = ws.run("embeddings", "compute", "shapes", "--columns", "a", check=False)
    assert refused.code != 0 and "is an image folder: --columns applies to datasets only" in refused.stderr
    bad = ws.run("embeddings", "compute", "shapes", "--checkpoint", str(tmp_path / "none.pt"), check=False)
    assert bad.code != 0 and "no such file" in bad.stderr and "Traceback" not in bad.stderr


def test_image_embeddings_on_s3_storage(cli_workspace, s3_server, tmp_path):
    """The run reads the images from the bucket (in the loader's worker processes) and
    publishes the vectors, the map and the explorer page there; queries read them back."""
    pytest.importorskip("open_clip")
    from dataplat_dagster_tests.storage.conftest import s3_keys
    from dataplat_dagster_tests.storage.roundtrip import use_storage

    ws, s3 = cli_workspace, s3_server
    s3.reset()
    env = {"LAKE_KEY": s3.access_key, "LAKE_SECRET": s3.secret_key}
    ws.run("connector", "create", "s3", "lake", "--bucket", s3.bucket, "--region", s3.region, "--endpoint-url",
           s3.endpoint_url, "--access-key-env", "LAKE_KEY", "--secret-key-env", "LAKE_SECRET", env=env)
    use_storage(ws, f"s3://{s3.bucket}/shop", "lake")
    archive = tmp_path / "dots.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for i in range(10):
            out.writestr(f"dots/{'warm' if i % 2 else 'cold'}/{i}.png", _image((30 * i, 100, 200 - 15 * i), noise=i + 1))
    ws.run("image-folder", "import", str(archive), "--name", "dots", env=env)
    save_tiny_clip(tmp_path / "tiny")
    computed = ws.run("embeddings", "compute", "dots", "--checkpoint", f"local-dir:{tmp_path / 'tiny'}", "--map", "pca",
                      "--json", env=env).json()
    assert (computed["count"], computed["explorer"].startswith(f"s3://{s3.bucket}/shop/embeddings/dots/versions/")) == (10, True)
    stored = {key.rsplit("/", 1)[-1] for key in s3_keys(s3, "shop/embeddings/dots/")}
    assert {"embeddings.parquet", "explorer.html", "map.png", "embeddings.json", "current.json"} <= stored
    found = ws.run("embeddings", "neighbors", "dots", "--id", "cold/0.png", "--k", "9", "--json", env=env).json()
    assert sorted(p["id"] for p in found) == sorted(f"{'warm' if i % 2 else 'cold'}/{i}.png" for i in range(1, 10))
    assert not (ws.project_dir / "storage").exists()


def test_image_embeddings_without_the_extra_name_it(cli_workspace, tmp_path):
    """Where open_clip is not installed (a finder refuses it here), computing image embeddings
    says which extra to install; tabular ones need none of it."""
    ws = cli_workspace
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoClip:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('open_clip', 'torch', 'torchvision'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, _NoClip())\n"
    )
    env = {"PYTHONPATH": str(shim)}
    archive = tmp_path / "one.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("a/1.png", _image((1, 2, 3)))
    ws.run("image-folder", "import", str(archive), "--name", "one", env=env)
    refused = ws.run("embeddings", "compute", "one", env=env, check=False)
    assert refused.code != 0 and "Traceback" not in refused.stderr
    assert "install the extra: pip install 'dataplat-dagster[embeddings]'" in refused.stderr
    source = tmp_path / "few.csv"
    labelled_csv(source, rows_per_class=5, duplicate_row=False)
    ws.run("dataset", "import", str(source), "--name", "few", env=env)
    done = ws.run("embeddings", "compute", "few", "--map", "pca", "--json", env=env).json()
    assert (done["status"], done["count"]) == ("ready", 15)


def test_text_columns_through_the_text_tower(cli_workspace, tmp_path):
    """A dataset's text column through the same model's text tower as images: one space, so
    a search by text ranks the rows; equal texts are exact duplicates at distance 0."""
    pytest.importorskip("open_clip")
    ws = cli_workspace
    source = tmp_path / "notes.csv"
    source.write_text("note,stars\n" + "".join(f"{text},{i % 5}\n" for i, text in enumerate(
        ["a red car", "a blue bird", "a green tree", "a red car", "an old house", "a fast train", "a calm lake", "a tall tower"])))
    ws.run("dataset", "import", str(source), "--name", "notes")
    save_tiny_clip(tmp_path / "tiny")
    done = ws.run("embeddings", "compute", "notes", "--columns", "note", "--checkpoint", f"local-dir:{tmp_path / 'tiny'}",
                  "--map", "pca", "--json").json()
    assert (done["kind"], done["count"], done["dimension"], done["metric"]) == ("text", 8, 32, "cosine")
    found = ws.run("embeddings", "search", "notes", "--text", "a red car", "--k", "3", "--json").json()
    assert len(found) == 3 and {p["id"] for p in found[:2]} == {"0", "3"}  # the same text: distance 0
    assert found[0]["distance"] == pytest.approx(0.0, abs=1e-5) and found[0]["values"]["note"] == "a red car"
    assert ws.run("embeddings", "duplicates", "notes", "--json").json()["exact"] == [{"ids": ["0", "3"]}]  # on the embedded column


def test_embeddings_follow_a_rename_and_go_with_a_delete(cli_workspace, tmp_path):
    ws = cli_workspace
    source = tmp_path / "things.csv"
    labelled_csv(source, rows_per_class=10, duplicate_row=False)
    ws.run("dataset", "import", str(source), "--name", "things")
    ws.run("embeddings", "compute", "things", "--map", "pca")
    before = ws.run("embeddings", "neighbors", "things", "--id", "3", "--json").json()

    ws.run("dataset", "rename", "things", "items")
    assert ws.datasets()["items"]["embeddings"] == "ready"
    assert ws.run("embeddings", "neighbors", "items", "--id", "3", "--json").json() == before
    assert not (ws.project_dir / "storage" / "embeddings" / "things").exists()
    gone = ws.run("embeddings", "neighbors", "things", "--id", "3", check=False)
    assert gone.code != 0 and "'things' has no embeddings" in gone.stderr

    ws.run("dataset", "delete", "items", "--yes")
    assert not (ws.project_dir / "storage" / "embeddings" / "items").exists()
    assert not (ws.project_dir / "storage" / "_registry" / "embeddings" / "items.json").exists()
    with ws.instance() as instance:
        from dagster import AssetKey

        assert instance.get_latest_materialization_event(AssetKey(["shop", "embeddings", "items"])) is None
