"""Output flicker of the ``controlnet`` synthesizer under each coherence setting, on one clip.

Runs the clip through ``--seg SEG --synth controlnet`` once per setting (same noise, fresh
noise, either with cross-frame attention, img2img) and prints the run summary's output
flicker: mean |difference| between consecutive output frames over the same for the input
(1 = the output changes as much as the input does).

    python benchmarks/controlnet_flicker.py [--clip FILE] [--frames 8] [--size 512] [--steps 20] [--tiny]

Without ``--tiny`` it needs Stable Diffusion 1.5 and the segmentation ControlNet in the Hugging
Face cache (see README) and a GPU to be quick. ``--tiny`` builds the random-weight miniature of
support/tiny_diffusion.py instead: its numbers only show that the settings do what they say,
not what real weights look like.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import chain  # noqa: E402

SHARED = Path(os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
SETTINGS = {
    "same noise": {},
    "fresh noise": {"noise": "fresh"},
    "same noise + cross-frame": {"cross_frame": "on"},
    "fresh noise + cross-frame": {"noise": "fresh", "cross_frame": "on"},
    "same noise + img2img 0.5": {"img2img": "0.5"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=SHARED / "data/videos/carphone_pristine.mp4")
    parser.add_argument("--seg", default="palette:ade20k", help="segmenter (default: nearest ADE20K colour)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", default=None, help="controlnet size= (default 512; 64 with --tiny)")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default 20; 4 with --tiny)")
    parser.add_argument("--prompt", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tiny", action="store_true", help="random-weight miniature models (no download)")
    args = parser.parse_args()

    base_options = {"size": args.size or ("64" if args.tiny else "512"),
                    "steps": str(args.steps or (4 if args.tiny else 20))}
    if args.prompt:
        base_options["prompt"] = args.prompt
    with tempfile.TemporaryDirectory() as scratch:
        if args.tiny:
            from support.tiny_diffusion import write_tiny_controlnet

            torch.set_num_threads(1)  # networks this small only lose time to threads
            base, controlnet = write_tiny_controlnet(Path(scratch) / "tiny")
            base_options.update(base=str(base), controlnet=str(controlnet))
        print(f"{args.clip.name}, {args.frames} frames, {base_options['steps']} steps, size {base_options['size']}"
              + (", tiny random weights" if args.tiny else ""))
        for name, options in SETTINGS.items():
            summary = chain.run(args.clip, Path(scratch) / "out", seg=args.seg, synth="controlnet",
                                synth_options={**base_options, **options}, max_frames=args.frames,
                                batch_size=args.batch, device=args.device)
            print(f"{name:28s} output flicker {summary.output_flicker:6.3f}  (mean |Δ| {summary.output_change:6.2f} "
                  f"vs input {summary.input_change:5.2f} levels)  {summary.frames_per_second:5.2f} frames/s")


if __name__ == "__main__":
    main()
