"""Image folders end to end through the real `dataplat` CLI: import as a Dagster run, list,
show, download (the same paths and bytes), rename, delete; refusals; the stored image folder
read back as an input; on a local storage root and on S3 (moto)."""

import hashlib
import io
import zipfile

import pytest
from PIL import Image

from dataplat_dagster_tests.storage.conftest import s3_keys
from dataplat_dagster_tests.storage.roundtrip import use_storage


def png(colour: tuple[int, int, int], size=(24, 16)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def jpeg(colour: tuple[int, int, int], size=(20, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


# Zipped as a person zips the folder "animals/": one top folder, labels below it, a nested
# folder, an image at the root of the labels, debris, and one exact duplicate.
MEMBERS = {
    "animals/cats/tabby.png": png((200, 120, 40)),
    "animals/cats/black.jpg": jpeg((10, 10, 10)),
    "animals/dogs/puppies/small.png": png((240, 240, 240), (8, 8)),
    "animals/dogs/hound.jpg": jpeg((120, 80, 40)),
    "animals/dogs/hound copy.jpg": None,  # the same bytes as hound.jpg
    "animals/unsorted.png": png((0, 0, 255)),
    "animals/.DS_Store": b"\x00\x00\x00\x01Bud1",
    "__MACOSX/animals/._tabby.png": b"\x00\x05\x16\x07",
}
MEMBERS["animals/dogs/hound copy.jpg"] = MEMBERS["animals/dogs/hound.jpg"]
IMAGES = {name: data for name, data in MEMBERS.items() if name.endswith((".png", ".jpg")) and "__MACOSX" not in name}


def make_zip(path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def zipped(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def round_trip(ws, tmp_path, env=None):
    source = tmp_path / "animals.zip"
    make_zip(source, MEMBERS)
    imported = ws.run("image-folder", "import", str(source), "--name", "animals", "--json", env=env).json()
    assert (imported["status"], imported["images"], imported["labels"]) == ("ready", 6, 2)
    assert imported["asset_key"] == ["shop", "image_folders", "animals"]

    listed = ws.run("image-folder", "list", "--json", env=env).json()
    assert [(i["name"], i["status"], i["images"], i["labels"]) for i in listed] == [("animals", "ready", 6, 2)]
    assert set(listed[0]) >= {"name", "status", "images", "labels", "size_bytes", "created_at"}
    assert listed[0]["size_bytes"] == sum(len(data) for data in IMAGES.values())

    shown = ws.run("image-folder", "show", "animals", "--json", env=env).json()["summary"]
    assert shown["images"] == 6 and shown["debris"] == 2 and shown["stripped_folder"] == "animals"
    labels = {entry["label"]: (entry["index"], entry["images"]) for entry in shown["labels"]}
    assert labels == {"cats": (0, 2), "dogs": (1, 3), None: (None, 1)}
    assert shown["formats"] == {"JPEG": 3, "PNG": 3}
    assert shown["duplicates"]["count"] == 1
    text = ws.run("image-folder", "show", "animals", env=env).stdout
    assert "cats" in text and "dogs" in text

    # Download: the same paths (the top folder put back) and bytes, debris left out.
    out = tmp_path / "out" / "animals.zip"
    ws.run("image-folder", "download", "animals", "--output", str(out), env=env)
    assert zipped(out) == IMAGES

    ws.run("image-folder", "rename", "animals", "pets", env=env)
    listed = ws.run("image-folder", "list", "--json", env=env).json()
    assert [(i["name"], i["status"], i["images"]) for i in listed] == [("pets", "ready", 6)]
    ws.run("image-folder", "download", "pets", "--output", str(tmp_path / "pets.zip"), env=env)
    assert zipped(tmp_path / "pets.zip") == IMAGES
    check_torch_dataset(ws)
    return source


def check_torch_dataset(ws):
    """The image folder as a torch Dataset: (image, label index) in ImageFolder's numbering."""
    import torch.utils.data

    from dataplat_dagster import image_folder

    dataset = image_folder("pets", ws.project_dir, transform=lambda image: image.size)
    assert isinstance(dataset, torch.utils.data.Dataset) and dataset.classes == ["cats", "dogs"]
    items = {path: dataset[k] for k, (path, _) in enumerate(dataset.samples)}
    assert items == {"cats/black.jpg": ((20, 30), 0), "cats/tabby.png": ((24, 16), 0), "dogs/hound copy.jpg": ((20, 30), 1),
                     "dogs/hound.jpg": ((20, 30), 1), "dogs/puppies/small.png": ((8, 8), 1)}  # the root image has no label
    everything = image_folder("pets", ws.project_dir, unlabelled=True)
    assert len(everything) == 6 and everything[[p for p, _ in everything.samples].index("unsorted.png")][1] == -1
    image, label = next(iter(torch.utils.data.DataLoader(everything, batch_size=None)))
    assert image.mode == "RGB" and label in (-1, 0, 1)


def test_an_image_folder_round_trip_on_local_storage(cli_workspace, tmp_path):
    ws = cli_workspace
    round_trip(ws, tmp_path)
    stored = ws.project_dir / "storage" / "image_folders" / "pets"
    [version] = (stored / "versions").iterdir()
    assert sorted(p.relative_to(version / "images").as_posix() for p in (version / "images").rglob("*") if p.is_file()) == [
        "cats/black.jpg", "cats/tabby.png", "dogs/hound copy.jpg", "dogs/hound.jpg", "dogs/puppies/small.png", "unsorted.png"]
    assert not (stored / "raw").exists() or not any((stored / "raw").iterdir())  # the staged zip is gone

    # An asset of the project reads it as an input: its manifest and each image's bytes.
    from dataplat_dagster import load_image_folder

    folder = load_image_folder("pets", ws.project_dir)
    assert folder.labels == ["cats", "dogs"]
    rows = folder.manifest.set_index("path")
    assert (rows.loc["dogs/puppies/small.png", "label"], rows.loc["dogs/puppies/small.png", "width"]) == ("dogs", 8)
    # In path order "hound copy.jpg" comes first: the other one is its duplicate.
    assert rows.loc["dogs/hound.jpg", "duplicate_of"] == "dogs/hound copy.jpg"
    assert hashlib.sha256(folder.read_bytes("cats/tabby.png")).hexdigest() == rows.loc["cats/tabby.png", "sha256"]
    assert folder.open("unsorted.png").getpixel((0, 0)) == (0, 0, 255)

    ws.run("image-folder", "delete", "pets", "--yes")
    assert ws.run("image-folder", "list", "--json").json() == []
    assert not stored.exists()


def test_an_image_folder_round_trip_on_s3(cli_workspace, s3_server, tmp_path, monkeypatch):
    s3 = s3_server
    s3.reset()
    env = {"LAKE_KEY": s3.access_key, "LAKE_SECRET": s3.secret_key}
    for variable, value in env.items():  # for the torch Dataset, read in this process
        monkeypatch.setenv(variable, value)
    cli_workspace.run(
        "connector", "create", "s3", "lake", "--bucket", s3.bucket, "--region", s3.region,
        "--endpoint-url", s3.endpoint_url, "--access-key-env", "LAKE_KEY", "--secret-key-env", "LAKE_SECRET", env=env,
    )
    use_storage(cli_workspace, f"s3://{s3.bucket}/shop", "lake")
    round_trip(cli_workspace, tmp_path, env)
    keys = s3_keys(s3, "shop/image_folders/pets/")
    images = sorted(key.split("/images/", 1)[1] for key in keys if "/images/" in key)
    assert images == ["cats/black.jpg", "cats/tabby.png", "dogs/hound copy.jpg", "dogs/hound.jpg", "dogs/puppies/small.png", "unsorted.png"]
    assert s3_keys(s3, "shop/_registry/image_folders/") == ["shop/_registry/image_folders/pets.json"]
    cli_workspace.run("image-folder", "delete", "pets", "--yes", env=env)
    assert s3_keys(s3, "shop/image_folders/") == [] and s3_keys(s3, "shop/_registry/image_folders/") == []
    assert not (cli_workspace.project_dir / "storage").exists()


def test_a_folder_is_imported_as_its_zip_would_be(cli_workspace, tmp_path):
    folder = tmp_path / "shapes"
    for name, data in {"circles/a.png": png((255, 0, 0)), "squares/b.jpg": jpeg((0, 255, 0))}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    imported = cli_workspace.run("image-folder", "import", str(folder), "--name", "shapes", "--json").json()
    assert (imported["status"], imported["images"], imported["labels"]) == ("ready", 2, 2)


def test_a_zip_with_a_file_that_is_not_an_image_registers_nothing(cli_workspace, tmp_path):
    source = tmp_path / "mixed.zip"
    make_zip(source, {"cats/a.png": png((1, 2, 3)), "cats/notes.txt": b"not an image\n", "dogs/b.png": png((4, 5, 6))})
    refused = cli_workspace.run("image-folder", "import", str(source), "--name", "mixed", check=False)
    assert refused.code == 1 and "Traceback" not in refused.stderr
    assert "cats/notes.txt" in refused.stderr and "Nothing was registered" in refused.stderr
    assert cli_workspace.run("image-folder", "list", "--json").json() == []
    assert not (cli_workspace.project_dir / "storage" / "image_folders" / "mixed").exists()

    # --skip-invalid imports the rest and lists what it skipped.
    imported = cli_workspace.run("image-folder", "import", str(source), "--name", "mixed", "--skip-invalid", "--json").json()
    assert (imported["status"], imported["images"]) == ("ready", 2)
    skipped = cli_workspace.run("image-folder", "show", "mixed", "--json").json()["summary"]["skipped"]
    assert skipped["count"] == 1 and skipped["members"][0]["member"] == "cats/notes.txt"


@pytest.mark.parametrize("args, expected", [
    (["image-folder", "import", "missing.zip", "--name", "x"], "missing.zip does not exist"),
    (["image-folder", "import", "plain.txt", "--name", "x"], "is not a zip file"),
    (["image-folder", "import", "animals.zip", "--name", "x", "--datasource", "orders"], "cannot use a datasource or a connector"),
    (["image-folder", "import", "animals.zip", "--name", "bad name"], "is not a valid image folder name"),
    (["dataset", "import", "animals.zip", "--name", "x"], "dataplat image-folder import animals.zip"),
])
def test_what_an_image_folder_cannot_do_is_refused_with_the_reason(cli_workspace, args, expected):
    make_zip(cli_workspace.root / "animals.zip", MEMBERS)
    (cli_workspace.root / "plain.txt").write_text("hello\n")
    refused = cli_workspace.run(*args, check=False)
    assert refused.code != 0 and "Traceback" not in refused.stderr
    assert expected in refused.stderr
    assert cli_workspace.run("image-folder", "list", "--json").json() == []


def test_an_image_folder_is_not_exported(cli_workspace, tmp_path):
    ws = cli_workspace
    make_zip(tmp_path / "animals.zip", MEMBERS)
    ws.run("image-folder", "import", str(tmp_path / "animals.zip"), "--name", "animals")
    ws.run("connector", "create", "sql", "db", "--dialect", "sqlite", "--database", "out.db")
    ws.run("exporter", "create", "out", "--connector", "db", "--mode", "overwrite", "--table", "images")
    refused = ws.run("dataset", "export", "animals", "--exporter", "out", check=False)
    assert refused.code == 1 and "image folders cannot be exported" in refused.stderr


def test_an_asset_of_the_project_takes_an_image_folder_as_input(cli_workspace, tmp_path):
    from dagster import AssetIn, DagsterInstance, Definitions, asset

    from dataplat_dagster import project_definitions
    from dataplat_dagster.images.loading import StoredImageFolder

    ws = cli_workspace
    make_zip(tmp_path / "animals.zip", MEMBERS)
    ws.run("image-folder", "import", str(tmp_path / "animals.zip"), "--name", "animals")

    @asset(ins={"animals": AssetIn(key=["shop", "image_folders", "animals"])})
    def images_per_label(animals: StoredImageFolder) -> dict:
        widths = {path: animals.open(path).size[0] for path in animals.manifest["path"]}
        return {"labels": animals.labels, "counts": animals.manifest.groupby("label").size().to_dict(), "widths": widths}

    defs = Definitions.merge(project_definitions(ws.project_dir), Definitions(assets=[images_per_label]))
    with DagsterInstance.ephemeral() as instance:
        result = defs.get_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=[images_per_label.key])
    assert result.success
    value = result.output_for_node("images_per_label")
    assert value["labels"] == ["cats", "dogs"] and value["counts"] == {"cats": 2, "dogs": 3}
    assert value["widths"]["dogs/puppies/small.png"] == 8 and len(value["widths"]) == 6
