"""Create the demo's labelled image set: ``external/shapes/``, one folder per label (circle,
square, triangle), 12 small PNG and JPEG images each, drawn with Pillow.

Deterministic (a fixed seed): every `make demo` imports the same images as the image folder
``shapes``, which an image experiment would train a classifier on.
"""

import random
from pathlib import Path

from PIL import Image, ImageDraw

FOLDER = Path(__file__).parent / "external" / "shapes"
PER_LABEL = 12
SIZE = 64


def draw(label: str, rng: random.Random) -> Image.Image:
    background = tuple(rng.randint(200, 255) for _ in range(3))
    colour = tuple(rng.randint(0, 150) for _ in range(3))
    image = Image.new("RGB", (SIZE, SIZE), background)
    pen = ImageDraw.Draw(image)
    r = rng.randint(12, 24)
    x, y = rng.randint(r + 2, SIZE - r - 2), rng.randint(r + 2, SIZE - r - 2)
    if label == "circle":
        pen.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    elif label == "square":
        pen.rectangle((x - r, y - r, x + r, y + r), fill=colour)
    else:
        pen.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=colour)
    return image


def main() -> None:
    rng = random.Random(11)
    for label in ("circle", "square", "triangle"):
        folder = FOLDER / label
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(PER_LABEL):
            image = draw(label, rng)
            # Both formats, as a real photo set mixes them.
            image.save(folder / f"{label}_{k:02d}.png") if k % 2 else image.save(folder / f"{label}_{k:02d}.jpg", quality=90)
    print(f"Wrote {3 * PER_LABEL} images under {FOLDER}.")


if __name__ == "__main__":
    main()
