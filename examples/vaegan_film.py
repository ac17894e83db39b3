#!/usr/bin/env python
"""Autoencode films: train a VAE-GAN on one clip, reconstruct it and an unseen clip, score both.

    python examples/vaegan_film.py                       # the shared clips, 64x36, ~15 min on 1-2 CPU cores
    python examples/vaegan_film.py --size 128x72 --epochs 10 --out runs/vaegan-128

It runs these `chain` commands (each can be run by hand), then measures PSNR:

    chain train vaegan TRAIN --size 64x36 --latent 200 --epochs 40 --batch 12 --out OUT
    chain run TRAIN OUT/recon-train --seg none --synth vaegan --synth-weights OUT --size 64x36 \\
        --compare OUT/compare-train.mp4
    chain run OTHER OUT/recon-other --seg none --synth vaegan --synth-weights OUT --size 64x36 \\
        --compare OUT/compare-other.mp4

Reconstructions are written as PNG folders so the score is not blurred by video compression.
Each clip's PSNR is compared with the baseline of predicting every frame as that clip's mean
frame (for the unseen clip that baseline even knows the clip's mean, which the model does not).
Running the script again continues the training run in OUT (``--resume``) if it was stopped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from chain.training.metrics import clip_psnr, mean_frame_baseline

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"


def chain(*args: str) -> None:
    command = [sys.executable, "-m", "chain", *args]
    print("$ chain " + " ".join(args), flush=True)
    subprocess.run(command, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, default=VIDEOS / "pexels-koolshooters-7322716.mp4",
                        help="the clip to learn (default: the shared pexels clip, 231 frames)")
    parser.add_argument("--other", type=Path, default=VIDEOS / "bigbuckbunny.mp4",
                        help="an unseen clip to reconstruct (default: the shared Big Buck Bunny clip)")
    parser.add_argument("--size", default="64x36", help="training size WxH (default 64x36)")
    parser.add_argument("--latent", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path("runs/vaegan-example"))
    parser.add_argument("--train-arg", action="append", default=[],
                        help="extra argument for `chain train vaegan` (repeatable), e.g. --train-arg=--seed=1")
    args = parser.parse_args()

    out: Path = args.out
    train = ["train", "vaegan", str(args.train), "--size", args.size, "--latent", str(args.latent),
             "--epochs", str(args.epochs), "--batch", str(args.batch), "--out", str(out), *args.train_arg]
    if (out / "checkpoint" / "config.json").is_file():
        train.append("--resume")
    chain(*train)

    scores = {}
    for name, clip in (("train", args.train), ("other", args.other)):
        chain("run", str(clip), str(out / f"recon-{name}"), "--seg", "none", "--synth", "vaegan",
              "--synth-weights", str(out), "--size", args.size, "--batch", "32",
              "--compare", str(out / f"compare-{name}.mp4"), "--quiet")
        scores[name] = {
            "clip": str(clip),
            "reconstruction_psnr": round(clip_psnr(clip, out / f"recon-{name}", size=args.size), 2),
            "mean_frame_psnr": round(mean_frame_baseline(clip, size=args.size), 2),
        }

    print(f"\nPSNR at {args.size} (dB, higher is better)")
    print(f"{'clip':<8} {'VAE-GAN':>8} {'mean frame':>11}  file")
    for name, score in scores.items():
        print(f"{name:<8} {score['reconstruction_psnr']:>8.2f} {score['mean_frame_psnr']:>11.2f}  {score['clip']}")
    (out / "psnr.json").write_text(json.dumps(scores, indent=2) + "\n")
    print(f"\nwrote {out / 'psnr.json'}; side by side: {out / 'compare-train.mp4'}, {out / 'compare-other.mp4'}; "
          f"training curves: {out / 'losses.png'}; samples: {out / 'samples'}")


if __name__ == "__main__":
    main()
