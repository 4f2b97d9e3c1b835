"""Images and text through open_clip's towers, so that both land in one space.

The model is ``--model`` with ``--pretrained`` weights (downloaded through Hugging Face's hub
at first use and cached, as open_clip does), or local weights from ``--checkpoint``: a file
(loaded into ``--model``'s architecture) or ``local-dir:FOLDER`` (``open_clip_config.json``
and the weights, architecture included). Images are decoded and preprocessed by a
``DataLoader``'s worker processes while the model encodes the batch before, under
``torch.inference_mode()``, with autocast on a GPU. Vectors are L2-normalized: distances
are cosine distances.

torch, torchvision and open_clip are imported here only, when a run computes embeddings.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from dataplat_dagster.errors import DataplatError

EXTRA_HINT = "install the extra: pip install 'dataplat-dagster[embeddings]' (torch, torchvision, open-clip-torch)"


def require_torch(what: str):
    """open_clip, or a DataplatError that names the extra to install."""
    try:
        import open_clip  # noqa: F401
        import torch  # noqa: F401
    except ImportError as error:
        raise DataplatError(f"Embeddings of {what} need open_clip and torch ({error.name} is missing): {EXTRA_HINT}.") from None
    return open_clip


@dataclass
class ClipModel:
    model: object
    preprocess: Callable
    tokenizer: Callable
    device: str
    weights: str  # what was loaded, as metadata says it

    @property
    def dimension(self) -> int:
        import torch

        with torch.inference_mode():
            return int(self.encode_text(["a"]).shape[1])

    def _autocast(self):
        import torch

        return torch.autocast("cuda", dtype=torch.float16) if self.device.startswith("cuda") else nullcontext()

    def encode_images(self, pixels) -> np.ndarray:
        import torch

        with torch.inference_mode(), self._autocast():
            features = self.model.encode_image(pixels.to(self.device, non_blocking=True))
            return _normalized(features)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode(), self._autocast():
            features = self.model.encode_text(self.tokenizer(texts).to(self.device))
            return _normalized(features)


def _normalized(features) -> np.ndarray:
    features = features.float()
    features = features / features.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    return features.cpu().numpy().astype(np.float32)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise DataplatError("--device cuda was asked, but torch sees no CUDA device here: use --device cpu or auto.")
    return device


def load_model(model: str, pretrained: str | None, checkpoint: str | None, device: str = "auto") -> ClipModel:
    """The open_clip model, its image preprocessing and tokenizer, in eval mode on ``device``."""
    open_clip = require_torch("images and text")
    device = resolve_device(device)
    if checkpoint and checkpoint.startswith("local-dir:"):
        folder = checkpoint[len("local-dir:"):]
        if not os.path.isdir(folder):
            raise DataplatError(f"--checkpoint {checkpoint}: no folder {folder} (it holds open_clip_config.json and the weights).")
        name, weights, described = checkpoint, None, checkpoint
    elif checkpoint:
        if not os.path.isfile(checkpoint):
            raise DataplatError(f"--checkpoint {checkpoint}: no such file. Give a checkpoint file, or local-dir:FOLDER.")
        name, weights, described = model, checkpoint, f"{model} from {os.path.basename(checkpoint)}"
    else:
        name, weights, described = model, pretrained, f"{model} ({pretrained})" if pretrained else f"{model} (random weights)"
    if not checkpoint and model not in open_clip.list_models():
        raise DataplatError(f"open_clip has no model {model!r}; see open_clip.list_models() (for example ViT-B-32).")
    try:
        clip, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=weights, device=device)
    except RuntimeError as error:
        if "download" in str(error).lower() or "hub" in str(error).lower():
            raise DataplatError(weights_hint(model, pretrained, error)) from None
        raise DataplatError(f"open_clip could not load {described}: {error}") from None
    except (OSError, ValueError, KeyError) as error:
        raise DataplatError(f"open_clip could not load {described}: {error}") from None
    clip.eval()
    tokenizer = open_clip.get_tokenizer(name)
    return ClipModel(clip, preprocess, tokenizer, device, described)


def weights_hint(model: str, pretrained: str | None, error: BaseException | None = None) -> str:
    """One line: the weights could not be had, and how to get them."""
    reason = f" ({str(error).splitlines()[0][:160]})" if error else ""
    return (
        f"The weights of {model} ({pretrained}) are not cached and could not be downloaded{reason}. "
        f"On a machine with internet run `python -c \"import open_clip; open_clip.create_model_and_transforms('{model}', "
        f"pretrained='{pretrained}')\"` and copy ~/.cache/huggingface here, or pass --checkpoint FILE|local-dir:FOLDER."
    )


def weights_available(model: str, pretrained: str) -> bool:
    """Whether ``pretrained`` weights are in Hugging Face's cache, or the hub answers and they
    download. The hub is asked once, with a short connection timeout: offline, the answer
    comes in seconds rather than after huggingface_hub's retries."""
    import socket

    open_clip = require_torch("images")
    config = open_clip.get_pretrained_cfg(model, pretrained) or {}
    repo = (config.get("hf_hub") or "").strip("/")
    if not repo:
        return False
    from huggingface_hub import try_to_load_from_cache

    for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
        if isinstance(try_to_load_from_cache(repo, filename), str):
            return True
    if os.environ.get("HF_HUB_OFFLINE"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=3).close()
        open_clip.download_pretrained(config)
        return True
    except Exception:  # offline, or the hub refusing: the caller says how to get them
        return False


# -- images -------------------------------------------------------------------------------


class _Images:
    """A map-style dataset over stored images: decoded and preprocessed in the loader's workers."""

    def __init__(self, paths: list[str], read: Callable[[str], bytes], preprocess: Callable):
        self.paths, self.read, self.preprocess = paths, read, preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        from PIL import Image

        with Image.open(io.BytesIO(self.read(self.paths[index]))) as image:
            return self.preprocess(image.convert("RGB"))


def image_batches(clip: ClipModel, paths: list[str], read: Callable[[str], bytes], batch_size: int,
                  workers: int | None = None) -> Iterator[np.ndarray]:
    """The normalized vectors of the images at ``paths``, one array per batch, in order."""
    from torch.utils.data import DataLoader

    workers = loader_workers() if workers is None else workers
    loader = DataLoader(_Images(paths, read, clip.preprocess), batch_size=batch_size, shuffle=False, num_workers=workers,
                        pin_memory=clip.device.startswith("cuda"), prefetch_factor=4 if workers else None)
    for pixels in loader:
        yield clip.encode_images(pixels)


def loader_workers() -> int:
    """Decoding workers: as many as the cores but one, at least one, at most 8."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def text_batches(clip: ClipModel, texts: Iterator[list[str]]) -> Iterator[np.ndarray]:
    for batch in texts:
        yield clip.encode_text(batch)
