"""Frame order for the autoencoder: what ``--synth-opt smooth=K`` does to a reconstruction's steadiness
and to its fidelity.

For a trained ``chain train vaegan`` run and a clip, it reconstructs the clip (lossless PNGs) with
each K, then measures, against the input at the model's size: the reconstruction's warping error
(E_warp, Lai et al. 2018, judged with Farneback's flow, which chain does not use) over the per-frame
reconstruction's, and the PSNR of the reconstruction against the input.

    python benchmarks/frame_order.py RUN CLIP [--size 64x36] [--smooth 0,1,2,3,4,6]
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
    parser.add_argument("--smooth", default="0,1,2,3,4,6")
    args = parser.parse_args()
    with open_source(args.clip, size=args.size) as source:
        inputs = np.stack([frame.rgb for frame in source])
    print(f"{args.clip.name}: {len(inputs)} frames at {args.size}, model {args.run}; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    base = None
    with tempfile.TemporaryDirectory() as workdir:
        os.environ["CHAIN_STATE"] = str(Path(workdir) / "state")
        for smooth in (int(text) for text in args.smooth.split(",")):
            folder = Path(workdir) / f"smooth-{smooth}"
            chain.run(args.clip, f"{folder}/", seg="none", synth="vaegan", synth_weights=str(args.run),
                      synth_options={"smooth": str(smooth)}, size=args.size, batch_size=16)
            painted = np.stack([np.asarray(Image.open(path).convert("RGB")) for path in sorted(folder.glob("*.png"))])
            tracker = SteadinessTracker(flow="farneback")
            tracker.add_batch(inputs, None, painted)
            psnr = 10 * np.log10(255 ** 2 / np.mean((painted.astype(np.float64) - inputs) ** 2))
            base = base or (tracker.painted_warp_error, psnr)
            print(f"  smooth {smooth}: E_warp {tracker.painted_warp_error / base[0]:.2f}x the per-frame "
                  f"reconstruction's ({tracker.painted_warp_error / tracker.input_warp_error:.2f}x the input's), "
                  f"PSNR {psnr:.2f} dB ({psnr - base[1]:+.2f})")


if __name__ == "__main__":
    main()
