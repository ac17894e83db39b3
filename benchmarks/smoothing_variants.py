"""Alternatives to `--smooth flow` tried for issue 19, on every shared clip (none is in chain).

Longer-memory ``ema`` rows show what lagging behind the motion buys and costs.

`FlowVariant` is `chain.stages.smoothing.Smoother` in ``flow`` mode (same MotionEstimator, warp
and fallback) with one change at a time:

- ``preset``: a finer DIS preset (MEDIUM) than FAST;
- ``alpha``: a longer memory (0.9, 0.95) where the flow is trusted;
- ``confidence``: past and current probabilities weighted also by their confidence (top-1 minus
  top-2 probability), so an unsure frame moves a sure state less and vice versa;
- ``margin``: label hysteresis: a pixel keeps the label its trusted flow brings from the previous
  frame unless another class beats it by ``margin`` in probability.

Figures at the working size (257x257; `smoothing_flicker.py` measures at the frame size, which
differs by a hundredth or so): flicker ratio to the per-frame labels, agreement with them,
mc-flicker (changes motion does not explain), and the median ms of a step in this harness, the
variants interleaved frame by frame (compare them with each other only: the harness takes an
argmax per step and allocates where chain's Smoother works in place).

    python benchmarks/smoothing_variants.py [--frames 80]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from chain.importers.tflite import save_imported
from chain.media import Trim, open_source
from chain.stages import StageContext, build_stage
from chain.stages.flow import MotionEstimator, gray_at, warp

SHARED = Path(os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")


class FlowVariant:
    """Flow smoothing with one of the options above; ``ema=True`` averages in place instead."""

    def __init__(self, alpha: float = 0.85, *, preset: int = cv2.DISOPTICAL_FLOW_PRESET_FAST, margin: float = 0.0,
                 confidence: bool = False, ema: bool = False) -> None:
        self.alpha, self.margin, self.confidence, self.ema = alpha, margin, confidence, ema
        self.motion = MotionEstimator(preset=preset)
        self.state: torch.Tensor | None = None

    def step(self, frame: np.ndarray, current: torch.Tensor) -> torch.Tensor:
        gray = None if self.ema else gray_at(frame, tuple(current.shape[-2:]))
        motion = None if self.state is None or self.ema else self.motion.compare(self.gray, gray)
        if self.state is None or (motion is not None and motion.cut):
            self.state, output = current.clone(), current
        elif self.ema:
            self.state = self.alpha * self.state + (1 - self.alpha) * current
            output = self.state
        else:
            past, reliable = warp(self.state, motion.flow), torch.from_numpy(motion.reliable)
            past_weight, current_weight = torch.tensor(self.alpha), torch.tensor(1 - self.alpha)
            if self.confidence:
                past_weight = past_weight * confidence(past)
                current_weight = current_weight * confidence(current)
            blended = (past_weight * past + current_weight * current) / (past_weight + current_weight)
            self.state = torch.where(reliable, blended, current)
            output = self.state
            if self.margin > 0:  # the previous label, moved along the flow, gets a head start
                previous = warp(self.label[None].float(), np.rint(motion.flow))[0].long()
                bonus = torch.zeros_like(output).scatter_(0, previous[None], self.margin)
                output = output + bonus * reliable
        self.gray, self.label = gray, output.argmax(0)
        return output


def confidence(probabilities: torch.Tensor) -> torch.Tensor:
    """Top-1 minus top-2 probability per pixel, at least 0.05 (no pixel's vote drops to nothing)."""
    top = probabilities.topk(2, dim=0).values
    return (top[0] - top[1]).clamp_min(0.05)


VARIANTS = {
    "ema:0.8": lambda: FlowVariant(0.8, ema=True),
    "ema:0.9": lambda: FlowVariant(0.9, ema=True),
    "ema:0.95": lambda: FlowVariant(0.95, ema=True),
    "flow (chain's)": lambda: FlowVariant(),
    "flow, DIS medium": lambda: FlowVariant(preset=cv2.DISOPTICAL_FLOW_PRESET_MEDIUM),
    "flow:0.9": lambda: FlowVariant(0.9),
    "flow:0.95": lambda: FlowVariant(0.95),
    "flow + confidence": lambda: FlowVariant(confidence=True),
    "flow + hysteresis 0.1": lambda: FlowVariant(margin=0.1),
    "flow + hysteresis 0.2": lambda: FlowVariant(margin=0.2),
}


def measure(rgb: list[np.ndarray], probabilities: list[torch.Tensor]) -> dict[str, dict[str, float]]:
    """Flicker ratio, agreement, mc-flicker and median ms/step of every variant on one clip.

    The variants step frame by frame in turn, so each step's time is taken under the same load.
    """
    variants, judge = {name: make() for name, make in VARIANTS.items()}, MotionEstimator()
    size = tuple(probabilities[0].shape[-2:])
    labels: dict[str, list[torch.Tensor]] = {name: [] for name in variants}
    times: dict[str, list[float]] = {name: [] for name in variants}
    unexplained: dict[str, list[float]] = {name: [] for name in variants}
    previous_gray = None
    for frame, current in zip(rgb, probabilities):
        for name, variant in variants.items():
            start = time.perf_counter()
            labels[name].append(variant.step(frame, current).argmax(0))
            times[name].append(time.perf_counter() - start)
        gray = gray_at(frame, size)
        if previous_gray is not None:
            motion = judge.compare(previous_gray, gray)
            reliable = torch.from_numpy(motion.reliable)
            for name, series in labels.items():
                moved = warp(series[-2][None].float(), np.rint(motion.flow))[0].long()
                unexplained[name].append(float((series[-1] != moved)[reliable].float().mean()))
        previous_gray = gray
    per_frame = torch.stack([p.argmax(0) for p in probabilities])
    base = float((per_frame[1:] != per_frame[:-1]).float().mean())
    results = {}
    for name, series in labels.items():
        smoothed = torch.stack(series)
        results[name] = {"ratio": float((smoothed[1:] != smoothed[:-1]).float().mean()) / base,
                         "agree": float((smoothed == per_frame).float().mean()), "mc": float(np.mean(unexplained[name])),
                         "ms": 1000 * float(np.median(times[name][1:]))}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=80)
    args = parser.parse_args()
    results: dict[str, dict[str, dict[str, float]]] = {name: {} for name in VARIANTS}
    clips = sorted((SHARED / "data" / "videos").glob("*.mp4"))
    print(f"load average {os.getloadavg()[0]:.2f}; cells: flicker ratio / agreement / mc-flicker; "
          f"target met = ratio <= 0.5 at >= 95 % agreement")
    with tempfile.TemporaryDirectory() as workdir:
        checkpoint = save_imported(SHARED / "weights" / "deeplabv3_mnv2_voc_257.tflite", Path(workdir) / "ckpt",
                                   label_space="voc")
        segmenter = build_stage("segmenter", "deeplab-mnv2:voc", StageContext(weights=str(checkpoint)))
        for clip in clips:
            with open_source(clip, trim=Trim(max_frames=args.frames), size="240") as source:
                rgb = [frame.rgb for frame in source]
            probabilities = [segmenter.probabilities(frame[None], indices=np.array([0]))[0] for frame in rgb]
            for name, row in measure(rgb, probabilities).items():
                results[name][clip.stem] = row
    print(f"{'variant':24s} " + " ".join(f"{clip.stem[:17]:>19s}" for clip in clips) + "  met  ms/step")
    for name, rows in results.items():
        met = sum(r["ratio"] <= 0.5 and r["agree"] >= 0.95 for r in rows.values())
        print(f"{name:24s} " + " ".join(f"{r['ratio']:.2f}/{100 * r['agree']:.1f}/{100 * r['mc']:.2f}".rjust(19)
                                        for r in rows.values())
              + f"  {met}/{len(rows)}  {np.median([r['ms'] for r in rows.values()]):6.1f}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    main()
