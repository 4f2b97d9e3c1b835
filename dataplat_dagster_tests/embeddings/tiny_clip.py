"""A tiny open_clip model with random weights, saved as users' local weights are.

No weights can be downloaded in the tests: this model goes through the same ``--checkpoint``
paths as a pretrained one (``local-dir:FOLDER`` with ``open_clip_config.json``, or a file
loaded into a registered architecture). Its vectors mean nothing; their shapes,
determinism and batching do.
"""

import json
from pathlib import Path

TINY_MODEL = "dataplat-tiny-clip"
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
PREPROCESS = {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}


def save_tiny_clip(folder: Path, seed: int = 0) -> Path:
    """Write the model's config and random weights into ``folder``; returns the weights file."""
    import open_clip
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    config_file = folder / f"{TINY_MODEL}.json"
    config_file.write_text(json.dumps(TINY_CONFIG))
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CONFIG, "preprocess_cfg": PREPROCESS}))
    open_clip.add_model_config(config_file)
    torch.manual_seed(seed)
    model = open_clip.create_model(TINY_MODEL)
    weights = folder / "open_clip_pytorch_model.bin"
    torch.save(model.state_dict(), weights)
    return weights
