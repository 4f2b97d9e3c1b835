"""open_clip loading and encoding (``embeddings/clip.py``) on the tiny random-weight model:
both --checkpoint forms load the same weights, batching and decoding workers change no
vector, and refusals name what is wrong."""

import io

import numpy as np
import pytest
from PIL import Image

from dataplat_dagster.errors import DataplatError
from dataplat_dagster_tests.embeddings.tiny_clip import TINY_MODEL, save_tiny_clip

pytest.importorskip("open_clip")


def pngs(count: int) -> dict[str, bytes]:
    found = {}
    for i in range(count):
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (20 + i, 30, 3), dtype="uint8")).save(buffer, "PNG")
        found[f"{i}.png"] = buffer.getvalue()
    return found


def test_a_checkpoint_file_and_a_local_dir_load_the_same_weights(tmp_path):
    from dataplat_dagster.embeddings.clip import load_model

    weights = save_tiny_clip(tmp_path / "tiny")
    from_file = load_model(TINY_MODEL, None, str(weights), "cpu")
    from_dir = load_model("ViT-B-32", "ignored", f"local-dir:{tmp_path / 'tiny'}", "cpu")
    assert from_file.weights == f"{TINY_MODEL} from open_clip_pytorch_model.bin"
    texts = ["a red car", "a dog on a beach"]
    a, b = from_file.encode_text(texts), from_dir.encode_text(texts)
    assert a.shape == (2, 32) and a.dtype == np.float32
    assert np.allclose(a, b, atol=1e-6) and np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_batches_and_workers_change_no_vector(tmp_path):
    from dataplat_dagster.embeddings.clip import image_batches, load_model

    save_tiny_clip(tmp_path / "tiny")
    clip = load_model("ViT-B-32", None, f"local-dir:{tmp_path / 'tiny'}", "cpu")
    images = pngs(11)
    paths = list(images)
    one_by_one = np.vstack(list(image_batches(clip, paths, images.__getitem__, batch_size=1, workers=0)))
    batched = np.vstack(list(image_batches(clip, paths, images.__getitem__, batch_size=4, workers=2)))
    assert one_by_one.shape == (11, 32)
    assert np.allclose(one_by_one, batched, atol=1e-5)
    again = np.vstack(list(image_batches(clip, paths, images.__getitem__, batch_size=4, workers=0)))
    assert np.array_equal(batched, again)  # deterministic


def test_refusals_name_what_is_wrong(tmp_path):
    from dataplat_dagster.embeddings.clip import load_model

    with pytest.raises(DataplatError, match="no such file"):
        load_model("ViT-B-32", None, str(tmp_path / "missing.pt"), "cpu")
    with pytest.raises(DataplatError, match="no folder"):
        load_model("ViT-B-32", None, f"local-dir:{tmp_path / 'nowhere'}", "cpu")
    with pytest.raises(DataplatError, match="open_clip has no model 'ViT-Z-99'"):
        load_model("ViT-Z-99", "laion2b_s34b_b79k", None, "cpu")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(DataplatError, match="torch sees no CUDA device"):
            load_model("ViT-B-32", None, None, "cuda")
