"""The README's steadiness picture: consecutive frames of the shared Big Buck Bunny clip (CC-BY 3.0,
Blender Foundation), as the input, painted frame by frame, and painted with ``--smooth window
--deflicker``.

    python tools/steadiness_figure.py [--out docs/images/bunny_steadiness.png]

It imports the DeepLabV3-MobileNetV2 VOC port from ../shared into a temporary folder and paints
with the default synthesizer (COCO-Stuff colours), so every flip of a label shows as a colour.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import chain
from chain.importers.tflite import save_imported
from chain.media import Trim, open_source

SHARED = Path(os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
ROWS = (("input", None), ("frame by frame", {}), ("--smooth window --deflicker", {"smooth": "window", "deflicker": "on"}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images/bunny_steadiness.png"))
    parser.add_argument("--first", type=int, default=60, help="the first frame shown")
    parser.add_argument("--count", type=int, default=5, help="consecutive frames shown")
    args = parser.parse_args()
    clip = SHARED / "data" / "videos" / "bigbuckbunny.mp4"
    frames = args.first + args.count + 8  # the window looks ahead: paint a few past the last shown
    with tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        os.environ["CHAIN_STATE"] = str(work / "state")
        checkpoint = save_imported(SHARED / "weights" / "deeplabv3_mnv2_voc_257.tflite", work / "voc", label_space="voc")
        rows = []
        for title, options in ROWS:
            folder = work / title.replace(" ", "_")
            if options is None:
                with open_source(clip, trim=Trim(max_frames=frames), size="192") as source:
                    images = [frame.rgb for frame in source]
            else:
                chain.run(clip, f"{folder}/", seg="deeplab-mnv2:voc", seg_weights=str(checkpoint), size="192",
                          max_frames=frames, **options)
                images = [np.asarray(Image.open(path).convert("RGB")) for path in sorted(folder.glob("*.png"))]
            rows.append((title, images[args.first:args.first + args.count]))
    height, width = rows[0][1][0].shape[:2]
    gap, label = 4, 18
    sheet = Image.new("RGB", (args.count * (width + gap) - gap, len(rows) * (height + label + gap)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (title, images) in enumerate(rows):
        top = row * (height + label + gap)
        draw.text((2, top + 3), f"{title} (frames {args.first}-{args.first + args.count - 1})", fill="black")
        for column, image in enumerate(images):
            sheet.paste(Image.fromarray(image), (column * (width + gap), top + label))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height})")


if __name__ == "__main__":
    main()
