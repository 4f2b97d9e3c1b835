"""The demo's image embeddings: image folder ``shapes`` through open_clip's ViT-B-32 with its
pretrained weights (laion2b_s34b_b79k), where they can be had: in Hugging Face's cache, or
downloadable. Offline, one line says how to get them, and the demo goes on (its tabular
embeddings need no weights)."""

import subprocess
import sys
from pathlib import Path

from dataplat_dagster.catalog.models import DEFAULT_CLIP_MODEL, DEFAULT_CLIP_WEIGHTS
from dataplat_dagster.embeddings.clip import weights_available, weights_hint

WORKSPACE = Path(__file__).resolve().parents[2]

if __name__ == "__main__":
    if not weights_available(DEFAULT_CLIP_MODEL, DEFAULT_CLIP_WEIGHTS):
        print(f"Skipping the image embeddings of 'shapes': {weights_hint(DEFAULT_CLIP_MODEL, DEFAULT_CLIP_WEIGHTS)}")
        sys.exit(0)
    dataplat = [str(Path(sys.executable).with_name("dataplat")), "--workspace", str(WORKSPACE), "--project", "demo", "embeddings"]
    subprocess.run([*dataplat, "compute", "shapes"], check=True)
    page = Path(__file__).parent / "explorer" / "shapes.html"
    page.parent.mkdir(exist_ok=True)
    subprocess.run([*dataplat, "explore", "shapes", "--output", str(page)], check=True)
