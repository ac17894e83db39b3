"""How steady can any output of a painted clip be, for how much change? The exact answer, beside
`--deflicker`'s.

For a clip and its plain painting (a PNG folder, e.g. `chain run … --synth vaegan OUT/`), this
solves, for each weight mu, the least-squares problem over every pixel of every frame

    minimise  MSE(out, painting) + mu * E_warp(out)

where E_warp is the warping error exactly as the judge of `benchmarks/steadiness.py` measures it
(Farneback's flow on the input, its forward-backward-checked pixels, mean over pairs of the mean
over pixels). Both terms are sums of squares of linear functions of ``out``, so conjugate
gradients find the global optimum: no method, however clever, can be steadier (by that judge) at
the same PSNR against the painting. It then runs `--deflicker`'s filter (`chain.stages.deflicker`,
with chain's own DIS flow) at several strengths and prints both curves.

    python benchmarks/deflicker_frontier.py CLIP PAINTED_DIR --size 64x36 [--frames 231]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spl
from PIL import Image

from chain.media import Trim, open_source
from chain.stages.deflicker import Deflicker, DeflickerSettings
from chain.stages.flow import MotionEstimator
from chain.steadiness import SteadinessTracker


def warp_rows(inputs: np.ndarray) -> tuple[sp.csr_matrix, int]:
    """A sparse matrix whose squared norm applied to a clip (frames flattened) is the judge's
    E_warp times the number of pairs: one row per tracked pixel, bilinear weights into the frame before."""
    frames, height, width = inputs.shape[:3]
    pixels = height * width
    judge = MotionEstimator(method="farneback")
    rows, columns, values = [], [], []
    count = pairs = 0
    for t in range(1, frames):
        before, now = (cv2.cvtColor(inputs[k], cv2.COLOR_RGB2GRAY) for k in (t - 1, t))
        motion = judge.compare(before, now)
        if motion.cut or not motion.reliable.any():
            continue
        pairs += 1
        ys, xs = np.nonzero(motion.reliable)
        fx = np.clip(xs + motion.flow[ys, xs, 0], 0, width - 1)
        fy = np.clip(ys + motion.flow[ys, xs, 1], 0, height - 1)
        x0, y0 = np.floor(fx).astype(int), np.floor(fy).astype(int)
        x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
        ax, ay = fx - x0, fy - y0
        row = np.arange(len(ys)) + count
        weight = 1 / np.sqrt(len(ys))  # the mean over this pair's tracked pixels
        rows.append(row)
        columns.append(t * pixels + ys * width + xs)
        values.append(np.full(len(ys), weight))
        for yy, xx, share in ((y0, x0, (1 - ax) * (1 - ay)), (y0, x1, ax * (1 - ay)), (y1, x0, (1 - ax) * ay),
                              (y1, x1, ax * ay)):
            rows.append(row)
            columns.append((t - 1) * pixels + yy * width + xx)
            values.append(-weight * share)
        count += len(ys)
    matrix = sp.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))),
                           shape=(count, frames * pixels))
    return matrix, pairs


def figures(inputs: np.ndarray, painted: np.ndarray, out: np.ndarray) -> tuple[float, float]:
    """(E_warp of ``out`` over the painting's, by the judge; PSNR of ``out`` against the painting)."""
    def warp_error(frames: np.ndarray) -> float:
        tracker = SteadinessTracker(flow="farneback")
        tracker.add_batch(inputs, None, frames)
        return tracker.painted_warp_error

    squared = np.mean((out.astype(np.float64) - painted) ** 2)
    return warp_error(out) / warp_error(painted), float(10 * np.log10(255 ** 2 / squared))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clip", type=Path)
    parser.add_argument("painted", type=Path, help="the plain painting's PNG folder (000000.png …)")
    parser.add_argument("--size", required=True, help="the size the painting was made at, e.g. 64x36")
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--mu", default="0.15,0.4,1,2.5,5")
    parser.add_argument("--strengths", default="0.4,0.6,0.8,1")
    args = parser.parse_args()
    with open_source(args.clip, trim=Trim(max_frames=args.frames), size=args.size) as source:
        inputs = np.stack([frame.rgb for frame in source])
    painted = np.stack([np.asarray(Image.open(path).convert("RGB"))
                        for path in sorted(args.painted.glob("[0-9]*.png"))[:len(inputs)]])
    print(f"{args.clip.name}: {len(inputs)} frames at {args.size}; load average {os.getloadavg()[0]:.2f}")
    matrix, pairs = warp_rows(inputs)
    total = painted.size  # MSE's denominator (every channel of every pixel)
    gram = (matrix.T @ matrix).tocsr()
    target = painted.reshape(len(inputs) * inputs.shape[1] * inputs.shape[2], 3).astype(np.float64) / 255
    print("the exact optimum (any output):")
    for mu in (float(text) for text in args.mu.split(",")):
        system = sp.identity(gram.shape[0], format="csr") / total + gram * (mu / pairs)
        solved = np.stack([spl.cg(system, target[:, c] / total, x0=target[:, c], rtol=1e-6, maxiter=500)[0]
                           for c in range(3)], axis=-1)
        out = (solved.reshape(painted.shape) * 255 + 0.5).clip(0, 255).astype(np.uint8)
        ratio, psnr = figures(inputs, painted, out)
        print(f"  mu {mu:5.2f}: E_warp {ratio:.2f}x the painting's, PSNR {psnr:.1f} dB")
    print("--deflicker (chain's DIS flow, ±3 frames):")
    for strength in (float(text) for text in args.strengths.split(",")):
        deflicker: Deflicker[int] = Deflicker(DeflickerSettings(strength=strength))
        steady = []
        for t in range(len(inputs)):
            steady += [frames for _, frames in deflicker.push(np.array([t]), inputs[t:t + 1], painted[t:t + 1], t)]
        steady += [frames for _, frames in deflicker.drain()]
        ratio, psnr = figures(inputs, painted, np.concatenate(steady))
        print(f"  strength {strength:.1f}: E_warp {ratio:.2f}x the painting's, PSNR {psnr:.1f} dB")


if __name__ == "__main__":
    main()
