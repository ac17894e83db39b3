"""Label flicker on the shared clips with and without temporal smoothing, and the drift it costs.

For each clip, the DeepLabV3-MobileNetV2 port (imported from ../shared/weights into a
temporary folder) runs once per frame; every smoothing setting is fed the same frames and
probabilities through `chain.stages.smoothing.Smoother`, the state `SmoothedSegmenter` keeps.
Reported per clip and setting:

- flicker: mean share of pixels whose label changes between consecutive frames, and its
  ratio to the per-frame labels' flicker;
- mc-flicker: the same after moving the previous labels along the optical flow, over the
  pixels where the flow passes its checks (at the working size): the changes that motion does
  not explain. Plain flicker counts a correctly tracked moving edge as change;
- agreement: share of pixels where the smoothed label equals the per-frame label;
- ms/frame: median time of one smoothing step at the segmenter's working size (for ``flow``:
  two DIS flows, the checks and the warp of the class probabilities), settings interleaved
  frame by frame; and the scene cuts found.

The issue's target for ``flow``: flicker at most 0.5x the per-frame flicker at no less than
95 % agreement.

    python benchmarks/smoothing_flicker.py [--frames 80] [--network voc|ade20k] [--smooth ema:0.5,ema:0.8,flow]
    python benchmarks/smoothing_flicker.py --cost-only   # the flow step's parts in ms/frame
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from chain.bounds import parse_smoothing
from chain.importers.tflite import save_imported
from chain.media import Trim, open_source
from chain.stages import StageContext, build_stage
from chain.stages.base import labels_from_scores
from chain.stages.flow import MotionEstimator, gray_at, warp
from chain.stages.smoothing import Smoother

SHARED = Path(os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
FILES = {"voc": "deeplabv3_mnv2_voc_257.tflite", "ade20k": "deeplabv3_mnv2_ade20k_513.tflite"}


def measure(segmenter, clip: Path, frames: int, settings: list[str], size: str) -> dict[str, dict[str, float]]:
    """Flicker, agreement, median ms/frame and cuts of each setting (and "none") on one clip."""
    smoothers = {s: Smoother(parse_smoothing(s)) for s in settings}
    judge = MotionEstimator()  # its own flow, for mc-flicker only
    previous: dict[str, np.ndarray | None] = {s: None for s in ["none", *settings]}
    previous_working: dict[str, torch.Tensor] = {}
    changes = {s: 0.0 for s in previous}
    unexplained = {s: 0.0 for s in previous}
    agreement = {s: 0.0 for s in previous}
    times: dict[str, list[float]] = {s: [] for s in settings}
    segment_times: list[float] = []
    count, previous_gray = 0, None
    with open_source(clip, trim=Trim(max_frames=frames), size=size) as source:
        for frame in source:
            batch = frame.rgb[None]
            start = time.perf_counter()
            probabilities = segmenter.probabilities(batch, indices=np.array([frame.index]))
            segment_times.append(time.perf_counter() - start)
            scores = {"none": probabilities[0]}
            for setting, smoother in smoothers.items():
                start = time.perf_counter()
                scores[setting] = smoother.step(frame.rgb, probabilities[0]).clone()
                times[setting].append(time.perf_counter() - start)
            gray = gray_at(frame.rgb, tuple(probabilities.shape[-2:]))
            motion = judge.compare(previous_gray, gray) if previous_gray is not None else None
            labels = {s: labels_from_scores(p[None], batch.shape[1:3])[0].numpy() for s, p in scores.items()}
            for setting, current in labels.items():
                working = scores[setting].argmax(0)
                if previous[setting] is not None:
                    changes[setting] += float(np.mean(previous[setting] != current))
                    # nearest-neighbour warp of the previous labels (one-hot through bilinear would blend ids)
                    moved = warp(previous_working[setting][None].float(), np.rint(motion.flow))[0].long()
                    unexplained[setting] += float((working != moved)[torch.from_numpy(motion.reliable)].float().mean())
                agreement[setting] += float(np.mean(current == labels["none"]))
                previous[setting], previous_working[setting] = current, working
            previous_gray = gray
            count += 1
    base = changes["none"] / max(1, count - 1)
    results = {}
    for setting in previous:
        flicker = changes[setting] / max(1, count - 1)
        results[setting] = {"flicker": flicker, "ratio": flicker / base if base else float("nan"),
                            "mc": unexplained[setting] / max(1, count - 1), "agree": agreement[setting] / count,
                            "segment_ms": 1000 * float(np.median(segment_times)),
                            "ms": 1000 * float(np.median(times[setting][1:])) if setting in times else 0.0,
                            "cuts": len(smoothers[setting].cuts) if setting in smoothers else 0}
    return results


def cost(segmenter, clip: Path, frames: int = 20, repeats: int = 5) -> dict[str, float]:
    """Median ms per frame of the flow step's parts at the working size, interleaved and repeated."""
    with open_source(clip, trim=Trim(max_frames=frames), size="240") as source:
        rgb = [frame.rgb for frame in source]
    probabilities = [segmenter.probabilities(frame[None], indices=np.array([0]))[0] for frame in rgb]
    size = tuple(probabilities[0].shape[-2:])
    estimator, ema, flow = MotionEstimator(), Smoother(parse_smoothing("ema:0.85")), Smoother(parse_smoothing("flow"))
    grays = [gray_at(frame, size) for frame in rgb]
    motion = estimator.compare(grays[0], grays[1])
    parts = {
        "flow + checks (2 DIS flows)": lambda i: estimator.compare(grays[i - 1], grays[i]),
        f"warp {probabilities[0].shape[0]} class maps": lambda i: warp(probabilities[i - 1], motion.flow),
        "whole flow step": lambda i: flow.step(rgb[i], probabilities[i]),
        "whole ema step": lambda i: ema.step(rgb[i], probabilities[i]),
    }
    times: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(repeats):
        for i in range(1, len(rgb)):
            for name, part in parts.items():  # interleaved: the same load for every part
                start = time.perf_counter()
                part(i)
                times[name].append(time.perf_counter() - start)
    print(f"cost at the working size {size[1]}x{size[0]}, {clip.name}, {repeats}x{len(rgb) - 1} frames "
          f"(load average {os.getloadavg()[0]:.2f}):")
    for name, values in times.items():
        print(f"  {name:30s} {1000 * np.median(values):6.2f} ms/frame (median)")
    return {name: 1000 * float(np.median(values)) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=80)
    parser.add_argument("--network", choices=sorted(FILES), default="voc")
    parser.add_argument("--smooth", default="ema:0.5,ema:0.8,flow", help="comma-separated --smooth settings")
    parser.add_argument("--size", default="240", help="working size of the frames (short side)")
    parser.add_argument("--cost-only", action="store_true", help="only time the flow step's parts")
    args = parser.parse_args()
    settings = args.smooth.split(",")
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as workdir:
        checkpoint = save_imported(SHARED / "weights" / FILES[args.network], Path(workdir) / "ckpt",
                                   label_space=args.network)
        segmenter = build_stage("segmenter", f"deeplab-mnv2:{args.network}", StageContext(weights=str(checkpoint)))
        clips = sorted((SHARED / "data" / "videos").glob("*.mp4"))
        if args.cost_only:
            cost(segmenter, clips[0])
            return
        print(f"{args.network} port, up to {args.frames} frames per clip at short side {args.size}; "
              f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        print(f"{'clip':32s} {'setting':9s} {'flicker':>8s} {'ratio':>6s} {'mc-flick':>8s} {'agree':>8s} "
              f"{'ms/frame':>8s} cuts")
        totals: dict[str, list[dict[str, float]]] = {}
        for clip in clips:
            for setting, r in measure(segmenter, clip, args.frames, settings, args.size).items():
                totals.setdefault(setting, []).append(r)
                target = ("  target met" if r["ratio"] <= 0.5 and r["agree"] >= 0.95 else "  target missed") \
                    if setting.startswith("flow") else ""
                print(f"{clip.stem[:32]:32s} {setting:9s} {100 * r['flicker']:7.2f}% {r['ratio']:6.2f} "
                      f"{100 * r['mc']:7.2f}% {100 * r['agree']:7.2f}% {r['ms']:8.2f} {r['cuts']:4d}{target}")
        print("mean over clips:")
        for setting, rows in totals.items():
            print(f"{'':32s} {setting:9s} {100 * np.mean([r['flicker'] for r in rows]):7.2f}% "
                  f"{np.mean([r['ratio'] for r in rows]):6.2f} {100 * np.mean([r['mc'] for r in rows]):7.2f}% "
                  f"{100 * np.mean([r['agree'] for r in rows]):7.2f}% {np.median([r['ms'] for r in rows]):8.2f}")
        print(f"segmenter: {np.median([r['segment_ms'] for r in totals['none']]):.1f} ms/frame (median of clip medians)")
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
        cost(segmenter, clips[0])


if __name__ == "__main__":
    main()
