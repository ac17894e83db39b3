"""What `--smooth window` and `--deflicker` cost per frame at 256x256 on one core.

Both run on a textured 256x256 scene panning 2 pixels a frame: the window fuses 21-class
probabilities made from it (a VOC-sized label space; the segmenter's own time, here handing out
precomputed scores, is timed apart and not counted), the deflicker steadies a painting of it with
per-frame noise. torch and OpenCV get one thread each.
The two are interleaved, repeated, and the median of the repeats is printed with the load.

    python benchmarks/steadiness_cost.py [--frames 40] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import cv2
import numpy as np
import torch

from chain.bounds import DEFAULT_WINDOW_RADIUS
from chain.labels import VOC
from chain.stages.base import Segmenter, labels_from_scores
from chain.stages.deflicker import Deflicker, DeflickerSettings
from chain.stages.window import WindowSmoothedSegmenter

SIDE = 256


class _Scores(Segmenter):
    """21-class probabilities computed beforehand: only the smoothing's own work is timed."""

    label_space = VOC
    description = "precomputed"

    def __init__(self, scores: torch.Tensor) -> None:
        self.scores = scores
        self.seconds = 0.0  # spent handing out scores: the segmenter's time, taken off the window's

    def probabilities(self, frames: np.ndarray, *, indices: np.ndarray) -> torch.Tensor:
        started = time.perf_counter()
        scores = self.scores[torch.as_tensor(indices)]
        self.seconds += time.perf_counter() - started
        return scores

    def segment(self, frames: np.ndarray, *, indices: np.ndarray, size: tuple[int, int] | None = None) -> torch.Tensor:
        return labels_from_scores(self.probabilities(frames, indices=indices), size or frames.shape[1:3])


def scene(frames: int) -> tuple[np.ndarray, torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(0)
    wide = cv2.GaussianBlur(rng.uniform(0, 255, (SIDE, SIDE + 2 * frames, 3)).astype(np.float32), (0, 0), 3)
    wide = (wide - wide.mean()) / wide.std() * 40 + 128
    clip = np.stack([wide[:, 2 * t:2 * t + SIDE] for t in range(frames)]).clip(0, 255).astype(np.uint8)
    logits = torch.from_numpy(clip[..., :1].astype(np.float32)).permute(0, 3, 1, 2) / 16
    scores = torch.cat([logits * k / 21 for k in range(21)], dim=1).softmax(dim=1)
    painted = (clip + rng.normal(0, 8, clip.shape)).clip(0, 255).astype(np.uint8)
    return clip, scores, painted


def time_window(clip: np.ndarray, scores: torch.Tensor) -> float:
    inner = _Scores(scores)
    segmenter = WindowSmoothedSegmenter(inner, DEFAULT_WINDOW_RADIUS)
    started = time.perf_counter()
    for t in range(len(clip)):
        ahead = np.arange(t + 1, min(t + 1 + segmenter.radius, len(clip)))
        if len(ahead):
            segmenter.look(clip[ahead], indices=ahead)
        segmenter.probabilities(clip[t:t + 1], indices=np.array([t]))
    return (time.perf_counter() - started - inner.seconds) / len(clip) * 1000


def time_deflicker(clip: np.ndarray, painted: np.ndarray) -> float:
    deflicker: Deflicker[int] = Deflicker(DeflickerSettings())
    started = time.perf_counter()
    for t in range(len(clip)):
        deflicker.push(np.array([t]), clip[t:t + 1], painted[t:t + 1], t)
    deflicker.drain()
    return (time.perf_counter() - started) / len(clip) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    clip, scores, painted = scene(args.frames)
    window, deflicker = [], []
    for _ in range(args.repeats):  # interleaved: the machine's load falls on both alike
        window.append(time_window(clip, scores))
        deflicker.append(time_deflicker(clip, painted))
    print(f"{SIDE}x{SIDE}, one thread, {args.frames} frames x {args.repeats} repeats (median; min-max); "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    for name, times in ((f"--smooth window:{DEFAULT_WINDOW_RADIUS} (fusion and flow)", window),
                        ("--deflicker", deflicker)):
        print(f"  {name:38s} {statistics.median(times):6.1f} ms/frame ({min(times):.1f}-{max(times):.1f})")


if __name__ == "__main__":
    main()
