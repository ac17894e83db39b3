#!/usr/bin/env python
"""Autoencode films: train a VAE-GAN on one clip (or several), reconstruct them and an unseen clip, score all.

    python examples/vaegan_film.py                       # the shared clips, 64x36, under 20 min on 2 CPU cores
    python examples/vaegan_film.py --size 128x72 --epochs 10 --out runs/vaegan-128
    python examples/vaegan_film.py --train A.mp4 --train B.mp4 --other C.mp4   # learn two films, try a third

It runs these `chain` commands (each can be run by hand; E makes about 950 steps, ``--steps``:
50 epochs for the pexels clip), then measures PSNR:

    chain train vaegan TRAIN [TRAIN...] --size 64x36 --latent 200 --epochs E --batch 12 \\
        --filters 32,64,128,256 --pixel-weight 10 --lr-schedule cosine --threads 1 --out OUT
    chain run TRAIN OUT/recon-train --seg none --synth vaegan --synth-weights OUT --size 64x36 \\
        --compare OUT/compare-train.mp4
    chain run OTHER OUT/recon-other --seg none --synth vaegan --synth-weights OUT --size 64x36 \\
        --compare OUT/compare-other.mp4

Reconstructions are written as PNG folders so the score is not blurred by video compression.
Each clip's PSNR is compared with the baseline of predicting every frame as that clip's mean
frame (for the unseen clip that baseline even knows the clip's mean, which the model does not).
Running the script again continues the training run in OUT (``--resume``) if it was stopped.

Why these settings (issue 26, measured on 2 busy CPU cores, docs/results/vaegan_cpu.json): at 64x36
Broad's 80..640 filters cost 2.3 s a step; 32..256 cost a fifth of that. The decoder's
resize-convolutions (chain's default) reached 20.96 dB in 200 steps where transposed ones reached
16.13. ``--pixel-weight 10`` adds the plain VAE's pixel likelihood to the learned similarity: the
discriminator wins early, so the similarity alone gives the decoder little to go on. The cosine
learning rate (chain's default) ends on settled weights: 26.02 dB against 21.75 with a constant
rate. One thread: beside other busy processes two threads stalled each other (4 s a step against
0.7 s). The defaults took 16.8 minutes on two shared cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from chain.media import open_source
from chain.training.metrics import clip_psnr, mean_frame_baseline

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"


def chain(*args: str) -> None:
    command = [sys.executable, "-m", "chain", *args]
    print("$ chain " + " ".join(args), flush=True)
    subprocess.run(command, check=True)


def epochs_for(films: list[Path], steps: int, batch: int) -> int:
    """Epochs that make about ``steps`` steps over ``films`` (their containers' frame counts): a short
    clip gets as many steps as a long one (pexels, 231 frames: 50 epochs of 19 steps)."""
    frames = 0
    for film in films:
        with open_source(film) as source:
            frames += source.info.frame_count or 0
    per_epoch = frames // batch
    return max(1, round(steps / per_epoch)) if per_epoch else 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, action="append",
                        help="a clip to learn, repeatable (default: the shared pexels clip, 231 frames)")
    parser.add_argument("--other", type=Path, default=VIDEOS / "bigbuckbunny.mp4",
                        help="an unseen clip to reconstruct (default: the shared Big Buck Bunny clip)")
    parser.add_argument("--size", default="64x36", help="training size WxH (default 64x36)")
    parser.add_argument("--latent", type=int, default=200)
    parser.add_argument("--steps", type=int, default=950,
                        help="training steps, whatever the clip's length: the epochs are set to match (default 950)")
    parser.add_argument("--epochs", type=int, help="passes over the clips (default: from --steps)")
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--filters", default="32,64,128,256", help="channels of the stride-2 convolutions")
    parser.add_argument("--pixel-weight", default="10", help="pixel likelihood added to the learned similarity")
    parser.add_argument("--threads", default="1", help="CPU threads for training")
    parser.add_argument("--lr-schedule", default="cosine", help="constant or cosine")
    parser.add_argument("--out", type=Path, default=Path("runs/vaegan-example"))
    parser.add_argument("--train-arg", action="append", default=[],
                        help="extra argument for `chain train vaegan` (repeatable), e.g. --train-arg=--seed=1")
    args = parser.parse_args()

    out: Path = args.out
    films: list[Path] = args.train or [VIDEOS / "pexels-koolshooters-7322716.mp4"]
    epochs = args.epochs or epochs_for(films, args.steps, args.batch)
    train = ["train", "vaegan", *map(str, films), "--size", args.size, "--latent", str(args.latent),
             "--epochs", str(epochs), "--batch", str(args.batch), "--filters", args.filters,
             "--pixel-weight", args.pixel_weight, "--lr-schedule", args.lr_schedule, "--threads", args.threads,
             "--out", str(out), *args.train_arg]
    if (out / "checkpoint" / "config.json").is_file():
        train.append("--resume")
    started, load_at_start = time.perf_counter(), [round(x, 2) for x in os.getloadavg()]
    chain(*train)
    trained = time.perf_counter()

    scores: dict[str, dict] = {}
    named = [("train", films[0])] if len(films) == 1 else [(f"train-{i + 1}", film) for i, film in enumerate(films)]
    for name, clip in (*named, ("other", args.other)):
        chain("run", str(clip), str(out / f"recon-{name}"), "--seg", "none", "--synth", "vaegan",
              "--synth-weights", str(out), "--size", args.size, "--batch", "32",
              "--compare", str(out / f"compare-{name}.mp4"), "--quiet")
        scores[name] = {
            "clip": str(clip),
            "reconstruction_psnr": round(clip_psnr(clip, out / f"recon-{name}", size=args.size), 2),
            "mean_frame_psnr": round(mean_frame_baseline(clip, size=args.size), 2),
        }

    meta = json.loads((out / "checkpoint" / "config.json").read_text())["meta"]
    scores["run"] = {"steps": meta["step"], "train_minutes": round((trained - started) / 60, 2),
                     "total_minutes": round((time.perf_counter() - started) / 60, 2),
                     "load_average_1_5_15": {"start": load_at_start, "end": [round(x, 2) for x in os.getloadavg()]},
                     "cpus": os.cpu_count(),
                     "command": "chain " + " ".join(train)}

    print(f"\nPSNR at {args.size} (dB, higher is better)")
    print(f"{'clip':<8} {'VAE-GAN':>8} {'mean frame':>11}  file")
    for name, score in scores.items():
        if name == "run":
            continue
        print(f"{name:<8} {score['reconstruction_psnr']:>8.2f} {score['mean_frame_psnr']:>11.2f}  {score['clip']}")
    (out / "psnr.json").write_text(json.dumps(scores, indent=2) + "\n")
    print(f"{scores['run']['steps']} steps; training {scores['run']['train_minutes']} min, all "
          f"{scores['run']['total_minutes']} min; load average {scores['run']['load_average_1_5_15']}")
    print(f"\nwrote {out / 'psnr.json'}; side by side: {out / 'compare-*.mp4'}; "
          f"training curves: {out / 'losses.png'}; samples: {out / 'samples'}")


if __name__ == "__main__":
    main()
