"""Frame order for the autoencoder: what ``--synth-opt smooth=K`` (the latents averaged along time) and
``--deflicker`` (the reconstructions steadied along the input's motion) do to a reconstruction's
steadiness and to its fidelity.

For a trained ``chain train vaegan`` run and a clip, it reconstructs the clip (lossless PNGs) with
each K, then measures, against the input at the model's size: the reconstruction's warping error
(E_warp, Lai et al. 2018, judged with Farneback's flow, which chain does not use) over the per-frame
reconstruction's, and the PSNR of the reconstruction against the input.

    python benchmarks/frame_order.py RUN CLIP [--size 64x36] [--smooth 0,2,4,8,12] [--deflicker 0.8:3,1:14]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import chain
from chain.media import open_source
from chain.steadiness import SteadinessTracker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a `chain train vaegan` run folder")
    parser.add_argument("clip", type=Path)
    parser.add_argument("--size", default="64x36", help="the model's size (the input is judged there)")
    parser.add_argument("--smooth", default="0,2,4,8,12")
    parser.add_argument("--deflicker", default="0.8:3,1:14", help="--deflicker settings to compare too (after smooth 0)")
    args = parser.parse_args()
    with open_source(args.clip, size=args.size) as source:
        inputs = np.stack([frame.rgb for frame in source])
    print(f"{args.clip.name}: {len(inputs)} frames at {args.size}, model {args.run}; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    base = None
    with tempfile.TemporaryDirectory() as workdir:
        os.environ["CHAIN_STATE"] = str(Path(workdir) / "state")
        settings = [("smooth", text) for text in args.smooth.split(",")]
        settings += [("deflicker", text) for text in args.deflicker.split(",") if text]
        for kind, value in settings:
            folder = Path(workdir) / f"{kind}-{value}"
            options = {"synth_options": {"smooth": value}} if kind == "smooth" else {"deflicker": value}
            chain.run(args.clip, f"{folder}/", seg="none", synth="vaegan", synth_weights=str(args.run),
                      size=args.size, batch_size=16, **options)
            painted = np.stack([np.asarray(Image.open(path).convert("RGB")) for path in sorted(folder.glob("*.png"))])
            tracker = SteadinessTracker(flow="farneback")
            tracker.add_batch(inputs, None, painted)
            psnr = 10 * np.log10(255 ** 2 / np.mean((painted.astype(np.float64) - inputs) ** 2))
            base = base or (tracker.painted_warp_error, psnr)
            print(f"  {kind} {value}: E_warp {tracker.painted_warp_error / base[0]:.3f}x the per-frame "
                  f"reconstruction's ({tracker.painted_warp_error / tracker.input_warp_error:.2f}x the input's), "
                  f"PSNR against the input {psnr:.2f} dB ({psnr - base[1]:+.2f})")

if __name__ == "__main__":
    main()
