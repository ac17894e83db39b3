"""How much of a clip's label flicker is real motion? (issue 19, fresco-car-turn)

Plain flicker (share of pixels whose label changes between consecutive frames) counts a
correctly tracked moving edge as change. This measures the part that motion alone makes: the
labels of frame t-1 moved along the optical flow to frame t, compared in place with themselves
(and, the other way, frame t's labels moved back along the forward flow: the two err at the two
kinds of occlusion, so their mean is reported). A labelling that follows the objects cannot
flicker less than this, whatever the smoothing.

The estimate is made with several flows, to see whether a noisy flow inflates it: DIS at the
segmenter's working size (fast, medium, and a fine setting with dense patches down to full
resolution and long variational refinement), DIS-fine and Farneback on the frames at their own
resolution (the flow resized to the working size); the flow's quality is shown as the mean
gray-level error of the previous frame warped onto the current one. And with several labellings:
the per-frame labels, `--smooth flow`, `--smooth ema:0.8`. Two flow-free checks: the change of
each class's area (a hard lower bound: no labelling whose class areas follow the scene changes
fewer pixels; shown also for the areas' running mean, as the per-frame areas jitter), and the
foreground mask moved by its best shift and scale.

    python benchmarks/smoothing_motion.py [--clip fresco-car-turn] [--frames 80]
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

from chain.bounds import parse_smoothing
from chain.importers.tflite import save_imported
from chain.media import Trim, open_source
from chain.stages import StageContext, build_stage
from chain.stages.flow import gray_at
from chain.stages.smoothing import Smoother

SHARED = Path(os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")


def dis(preset: int, **params: int):
    """A DIS flow function ``(current, previous) -> backward flow`` with ``set<Param>`` overrides."""
    estimator = cv2.DISOpticalFlow_create(preset)
    for name, value in params.items():
        getattr(estimator, f"set{name}")(value)
    return lambda a, b: estimator.calc(a, b, None)


def fine_dis():
    # What newer OpenCV calls ULTRAFINE (not in this build): patches every 2 px down to full resolution.
    return dis(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, FinestScale=0, PatchSize=8, PatchStride=2,
               GradientDescentIterations=50, VariationalRefinementIterations=20)


def farneback(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 5, 15, 5, 7, 1.5, cv2.OPTFLOW_FARNEBACK_GAUSSIAN)


def resized_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A flow field resized to ``size`` ``(h, w)``, its vectors scaled with it."""
    height, width = flow.shape[:2]
    out = cv2.resize(flow, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    out[..., 0] *= size[1] / width
    out[..., 1] *= size[0] / height
    return out


def moved(values: np.ndarray, flow: np.ndarray, nearest: bool = True) -> np.ndarray:
    """``values`` ``(h, w)`` sampled at ``p + flow(p)`` (edges repeated)."""
    height, width = values.shape
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(values.astype(np.float32), grid_x + flow[..., 0], grid_y + flow[..., 1],
                     cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def best_shift_scale(previous: np.ndarray, current: np.ndarray) -> float:
    """Share of pixels the mask ``previous`` changes when moved by the shift and scale that best fit ``current``."""
    ys, xs = np.nonzero(previous)
    if len(ys) == 0:
        return 0.0
    cy, cx = ys.mean(), xs.mean()
    height, width = previous.shape
    best = None
    for scale in np.linspace(0.94, 1.08, 15):
        for dy in range(-6, 7):
            for dx in range(-16, 17):
                matrix = np.float32([[scale, 0, cx - scale * cx + dx], [0, scale, cy - scale * cy + dy]])
                mask = cv2.warpAffine(previous, matrix, (width, height), flags=cv2.INTER_NEAREST)
                miss = np.count_nonzero(mask != current)
                if best is None or miss < best[0]:
                    best = (miss, float(np.mean(mask != previous)))
    return best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default="fresco-car-turn")
    parser.add_argument("--frames", type=int, default=80)
    args = parser.parse_args()
    clip = SHARED / "data" / "videos" / f"{args.clip}.mp4"
    with tempfile.TemporaryDirectory() as workdir:
        checkpoint = save_imported(SHARED / "weights" / "deeplabv3_mnv2_voc_257.tflite", Path(workdir) / "ckpt",
                                   label_space="voc")
        segmenter = build_stage("segmenter", "deeplab-mnv2:voc", StageContext(weights=str(checkpoint)))
        with open_source(clip, trim=Trim(max_frames=args.frames), size="240") as source:
            rgb = [frame.rgb for frame in source]
        with open_source(clip, trim=Trim(max_frames=args.frames)) as source:
            native = [cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2GRAY) for frame in source]
        probabilities = [segmenter.probabilities(frame[None], indices=np.array([0]))[0] for frame in rgb]
    size = tuple(probabilities[0].shape[-2:])
    gray = [gray_at(frame, size) for frame in rgb]
    labellings = {"per-frame": np.stack([p.argmax(0).numpy() for p in probabilities])}
    for spec in ("flow", "ema:0.8"):
        smoother = Smoother(parse_smoothing(spec))
        labellings[spec] = np.stack([smoother.step(f, p).argmax(0).numpy() for f, p in zip(rgb, probabilities)])
    at_working = {"DIS fast": dis(cv2.DISOPTICAL_FLOW_PRESET_FAST), "DIS medium": dis(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM),
                  "DIS fine": fine_dis(), "Farneback": farneback}
    flows = {f"{name} @{size[1]}x{size[0]}": (method, False) for name, method in at_working.items()}
    flows.update({f"{name} @{native[0].shape[1]}x{native[0].shape[0]}": (method, True)
                  for name, method in (("DIS fine", fine_dis()), ("Farneback", farneback))})
    per_frame = labellings["per-frame"]
    base = float(np.mean(per_frame[1:] != per_frame[:-1]))
    print(f"{clip.name}: {len(rgb)} frames, working size {size[1]}x{size[0]}, deeplab-mnv2:voc; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"per-frame flicker {100 * base:.3f} %; the issue's target (0.5x) {50 * base:.3f} %")
    print("plain flicker of each labelling: " + ", ".join(
        f"{name} {100 * np.mean(labels[1:] != labels[:-1]):.3f} %" for name, labels in labellings.items()))
    print("\nchange that motion alone makes to each labelling (% of pixels per frame):")
    print(f"{'flow':24s} {'gray err':>8s} {'ms/pair':>8s} " + " ".join(f"{name:>10s}" for name in labellings))
    for name, (method, full) in flows.items():
        errors, explained, times = [], {label: [] for label in labellings}, []
        for t in range(1, len(rgb)):
            start = time.perf_counter()
            if full:
                backward = resized_flow(method(native[t], native[t - 1]), size)
                forward = resized_flow(method(native[t - 1], native[t]), size)
            else:
                backward, forward = method(gray[t], gray[t - 1]), method(gray[t - 1], gray[t])
            times.append((time.perf_counter() - start) / 2)
            errors.append(np.mean(np.abs(moved(gray[t - 1], backward, nearest=False) - gray[t])))
            for label, labels in labellings.items():
                explained[label].append((np.mean(moved(labels[t - 1], backward) != labels[t - 1])
                                         + np.mean(moved(labels[t], forward) != labels[t])) / 2)
        print(f"{name:24s} {np.mean(errors):8.2f} {1000 * np.median(times):8.1f} "
              + " ".join(f"{100 * np.mean(values):9.3f}%" for values in explained.values()), flush=True)
    classes = np.unique(per_frame)
    shares = np.stack([(per_frame == c).mean(axis=(1, 2)) for c in classes], axis=1)
    area_bound = 0.5 * np.abs(np.diff(shares, axis=0)).sum(axis=1)
    # The per-frame shares also jitter with the segmenter's noise; their 9-frame running mean keeps the trend only.
    trend = np.stack([np.convolve(shares[:, i], np.ones(9) / 9, mode="valid") for i in range(len(classes))], axis=1)
    trend_bound = 0.5 * np.abs(np.diff(trend, axis=0)).sum(axis=1)
    foreground = (per_frame > 0).astype(np.uint8)  # VOC 0 = background
    shift_scale = [best_shift_scale(foreground[t - 1], foreground[t]) for t in range(1, len(rgb))]
    print("\nflow-free, per-frame labels (% of pixels per frame):")
    print(f"  class areas' change (lower bound for any labelling with these areas): {100 * np.mean(area_bound):.3f} %")
    print(f"  the same for the areas' 9-frame running mean (their trend, without the jitter): {100 * np.mean(trend_bound):.3f} %")
    print(f"  foreground mask moved by its best shift and scale: {100 * np.mean(shift_scale):.3f} %")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    main()
