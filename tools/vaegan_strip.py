"""The README's autoencoder picture: frames of the shared Big Buck Bunny clip (CC-BY 3.0, Blender
Foundation) over their reconstructions by a trained VAE-GAN, at the model's size, enlarged.

    python tools/vaegan_strip.py --weights runs/vaegan-example [--out docs/images/bunny_vaegan.png]

The weights are a `chain train vaegan` run (``examples/vaegan_film.py`` makes one). The frames are
picked evenly over the clip; each is read at the model's size, as `chain run` feeds the stage.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from chain.engine.render import caption_layout
from chain.media import open_source
from chain.media.sizes import Size
from chain.weights.vaegan import load_vaegan

SHARED = Path(os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
CLIP = SHARED / "data" / "videos" / "bigbuckbunny.mp4"


def strip(weights: Path, clip: Path, *, count: int = 6, scale: int = 3) -> Image.Image:
    """Two rows of ``count`` frames (real, reconstructed), each enlarged ``scale`` times (nearest)."""
    model, _ = load_vaegan(weights)
    size = Size(model.config.width, model.config.height)
    with open_source(clip, size=size) as source:
        frames = np.stack([frame.rgb for frame in source])
    picked = frames[np.linspace(0, len(frames) - 1, count).round().astype(int)]
    with torch.no_grad():
        x = torch.from_numpy(picked).permute(0, 3, 1, 2).float() / 127.5 - 1
        recon = ((model.reconstruct(x) + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    rows = [np.concatenate(list(images), axis=1) for images in (picked, recon)]
    grid = np.concatenate(rows, axis=0).repeat(scale, axis=0).repeat(scale, axis=1)
    # Row names in a margin to the left, never over a frame.
    font_size, _ = caption_layout(size.height * scale)
    margin = 64
    image = Image.new("RGB", (grid.shape[1] + margin, grid.shape[0]), (0, 0, 0))
    image.paste(Image.fromarray(grid), (margin, 0))
    draw = ImageDraw.Draw(image)
    for row, name in enumerate(("real", "VAE-GAN")):
        draw.text((4, row * size.height * scale + 4), name, fill=(255, 255, 255))
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, required=True, help="a chain train vaegan run folder")
    parser.add_argument("--clip", type=Path, default=CLIP)
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("docs/images/bunny_vaegan.png"))
    args = parser.parse_args()
    strip(args.weights, args.clip, count=args.count).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
