"""Label flicker on the shared clips with and without temporal smoothing, and the drift it costs.

For each clip, the DeepLabV3-MobileNetV2 port (imported from ../shared/weights into a
temporary folder) runs once per frame; every smoothing setting is computed from the same
probabilities, exactly as `SmoothedSegmenter` does. Reported per clip and setting:

- flicker: mean share of pixels whose label changes between consecutive frames;
- agreement: share of pixels where the smoothed label equals the per-frame label.

    python benchmarks/smoothing_flicker.py [--frames 40] [--network voc|ade20k] [--alphas 0.5,0.8]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from chain.importers.tflite import save_imported
from chain.media import Trim, open_source
from chain.stages import StageContext, build_stage
from chain.stages.base import labels_from_scores

SHARED = Path(os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
FILES = {"voc": "deeplabv3_mnv2_voc_257.tflite", "ade20k": "deeplabv3_mnv2_ade20k_513.tflite"}


def measure(segmenter, clip: Path, frames: int, alphas: list[float], size: str) -> dict[str, tuple[float, float]]:
    settings = ["none"] + [f"ema:{a}" for a in alphas]
    previous: dict[str, np.ndarray | None] = {s: None for s in settings}
    changes = {s: 0.0 for s in settings}
    agreement = {s: 0.0 for s in settings}
    states: dict[float, torch.Tensor | None] = {a: None for a in alphas}
    count = 0
    with open_source(clip, trim=Trim(max_frames=frames), size=size) as source:
        for frame in source:
            batch = frame.rgb[None]
            probabilities = segmenter.probabilities(batch, indices=np.array([frame.index]))
            labels = {"none": labels_from_scores(probabilities, batch.shape[1:3], segmenter.label_space)[0]}
            for alpha in alphas:
                state = states[alpha]
                states[alpha] = probabilities.clone() if state is None else state * alpha + probabilities * (1 - alpha)
                labels[f"ema:{alpha}"] = labels_from_scores(states[alpha], batch.shape[1:3], segmenter.label_space)[0]
            for setting, current in labels.items():
                if previous[setting] is not None:
                    changes[setting] += float(np.mean(previous[setting] != current))
                agreement[setting] += float(np.mean(current == labels["none"]))
                previous[setting] = current
            count += 1
    return {s: (changes[s] / max(1, count - 1), agreement[s] / count) for s in settings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--network", choices=sorted(FILES), default="voc")
    parser.add_argument("--alphas", default="0.5,0.8")
    parser.add_argument("--size", default="240", help="working size of the frames (short side)")
    args = parser.parse_args()
    alphas = [float(a) for a in args.alphas.split(",")]
    with tempfile.TemporaryDirectory() as workdir:
        checkpoint = save_imported(SHARED / "weights" / FILES[args.network], Path(workdir) / "ckpt",
                                   label_space=args.network)
        segmenter = build_stage("segmenter", f"deeplab-mnv2:{args.network}", StageContext(weights=str(checkpoint)))
        totals: dict[str, list[tuple[float, float]]] = {}
        print(f"{args.network} port, {args.frames} frames per clip at short side {args.size}")
        for clip in sorted((SHARED / "data" / "videos").glob("*.mp4")):
            results = measure(segmenter, clip, args.frames, alphas, args.size)
            for setting, figures in results.items():
                totals.setdefault(setting, []).append(figures)
            print(f"{clip.name:36s} " + "  ".join(f"{s}: flicker {100 * f:5.2f} % agree {100 * a:6.2f} %"
                                                  for s, (f, a) in results.items()))
        print("mean over clips                      " + "  ".join(
            f"{s}: flicker {100 * np.mean([f for f, _ in v]):5.2f} % agree {100 * np.mean([a for _, a in v]):6.2f} %"
            for s, v in totals.items()))


if __name__ == "__main__":
    main()
