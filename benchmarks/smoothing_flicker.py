"""Label flicker on the shared clips with and without temporal smoothing, and the drift it costs.

For each clip, the DeepLabV3-MobileNetV2 port (imported from ../shared/weights into a
temporary folder) runs once per frame; every smoothing setting is fed the same frames and
probabilities through `chain.stages.smoothing.Smoother`, the state `SmoothedSegmenter` keeps.
Reported per clip and setting:

- flicker: mean share of pixels whose label changes between consecutive frames, and its
  ratio to the per-frame labels' flicker;
- agreement: share of pixels where the smoothed label equals the per-frame label;
- ms/frame: median time of one smoothing step at the segmenter's working size (for ``flow``:
  two DIS flows, the checks and the warp of the class probabilities), settings interleaved
  frame by frame; and the scene cuts found.

The issue's target for ``flow``: flicker at most 0.5x the per-frame flicker at no less than
95 % agreement.

    python benchmarks/smoothing_flicker.py [--frames 80] [--network voc|ade20k] [--smooth ema:0.5,ema:0.8,flow]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from chain.importers.tflite import save_imported
from chain.media import Trim, open_source
from chain.stages import StageContext, build_stage
from chain.stages.base import labels_from_scores
from chain.stages.smoothing import Smoother, parse_smoothing

SHARED = Path(os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
FILES = {"voc": "deeplabv3_mnv2_voc_257.tflite", "ade20k": "deeplabv3_mnv2_ade20k_513.tflite"}


def measure(segmenter, clip: Path, frames: int, settings: list[str], size: str) -> dict[str, dict[str, float]]:
    """Flicker, agreement, median ms/frame and cuts of each setting (and "none") on one clip."""
    smoothers = {s: Smoother(parse_smoothing(s)) for s in settings}
    previous: dict[str, np.ndarray | None] = {s: None for s in ["none", *settings]}
    changes = {s: 0.0 for s in previous}
    agreement = {s: 0.0 for s in previous}
    times: dict[str, list[float]] = {s: [] for s in settings}
    count = 0
    with open_source(clip, trim=Trim(max_frames=frames), size=size) as source:
        for frame in source:
            batch = frame.rgb[None]
            probabilities = segmenter.probabilities(batch, indices=np.array([frame.index]))
            labels = {"none": labels_from_scores(probabilities, batch.shape[1:3], segmenter.label_space)[0]}
            for setting, smoother in smoothers.items():
                start = time.perf_counter()
                smoothed = smoother.step(frame.rgb, probabilities[0])
                times[setting].append(time.perf_counter() - start)
                labels[setting] = labels_from_scores(smoothed[None], batch.shape[1:3], segmenter.label_space)[0]
            for setting, current in labels.items():
                if previous[setting] is not None:
                    changes[setting] += float(np.mean(previous[setting] != current))
                agreement[setting] += float(np.mean(current == labels["none"]))
                previous[setting] = current
            count += 1
    base = changes["none"] / max(1, count - 1)
    results = {}
    for setting in previous:
        flicker = changes[setting] / max(1, count - 1)
        results[setting] = {"flicker": flicker, "ratio": flicker / base if base else float("nan"),
                            "agree": agreement[setting] / count,
                            "ms": 1000 * float(np.median(times[setting][1:])) if setting in times else 0.0,
                            "cuts": len(smoothers[setting].cuts) if setting in smoothers else 0}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=80)
    parser.add_argument("--network", choices=sorted(FILES), default="voc")
    parser.add_argument("--smooth", default="ema:0.5,ema:0.8,flow", help="comma-separated --smooth settings")
    parser.add_argument("--size", default="240", help="working size of the frames (short side)")
    args = parser.parse_args()
    settings = args.smooth.split(",")
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as workdir:
        checkpoint = save_imported(SHARED / "weights" / FILES[args.network], Path(workdir) / "ckpt",
                                   label_space=args.network)
        segmenter = build_stage("segmenter", f"deeplab-mnv2:{args.network}", StageContext(weights=str(checkpoint)))
        print(f"{args.network} port, up to {args.frames} frames per clip at short side {args.size}; "
              f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        print(f"{'clip':32s} {'setting':9s} {'flicker':>8s} {'ratio':>6s} {'agree':>8s} {'ms/frame':>8s} cuts")
        totals: dict[str, list[dict[str, float]]] = {}
        for clip in sorted((SHARED / "data" / "videos").glob("*.mp4")):
            for setting, r in measure(segmenter, clip, args.frames, settings, args.size).items():
                totals.setdefault(setting, []).append(r)
                target = ("  target met" if r["ratio"] <= 0.5 and r["agree"] >= 0.95 else "  target missed") \
                    if setting.startswith("flow") else ""
                print(f"{clip.stem[:32]:32s} {setting:9s} {100 * r['flicker']:7.2f}% {r['ratio']:6.2f} "
                      f"{100 * r['agree']:7.2f}% {r['ms']:8.2f} {r['cuts']:4d}{target}")
        print("mean over clips:")
        for setting, rows in totals.items():
            print(f"{'':32s} {setting:9s} {100 * np.mean([r['flicker'] for r in rows]):7.2f}% "
                  f"{np.mean([r['ratio'] for r in rows]):6.2f} {100 * np.mean([r['agree'] for r in rows]):7.2f}% "
                  f"{np.median([r['ms'] for r in rows]):8.2f}")
        print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
