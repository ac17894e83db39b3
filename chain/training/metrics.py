"""How good is a reconstruction: PSNR, the mean-frame baseline, and loss-curve plots.

PSNR over a clip is computed from the mean squared error over all its pixels (not the mean
of per-frame PSNRs), in 0..255 units: ``10 * log10(255^2 / MSE)``. The baseline a
reconstruction must beat is predicting every frame as the clip's mean frame: an autoencoder
that has learnt nothing about individual frames lands there.

Every clip function streams: a film costs one frame of memory (plus one float64 frame).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from chain.errors import ChainError
from chain.media import Size, Trim, open_source

PEAK = 255.0


def psnr(reference: np.ndarray, test: np.ndarray, *, peak: float = PEAK) -> float:
    """Peak signal-to-noise ratio in dB of ``test`` against ``reference`` (same shape); inf if equal."""
    reference, test = np.asarray(reference), np.asarray(test)
    if reference.shape != test.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {test.shape}")
    return mse_to_psnr(float(np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2)), peak=peak)


def mse_to_psnr(mse: float, *, peak: float = PEAK) -> float:
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def mean_frame(clip: str | os.PathLike, *, size: str | Size | None = None, trim: Trim = Trim()) -> np.ndarray:
    """The clip's per-pixel mean frame ``(H, W, 3)`` float64, one pass."""
    total: np.ndarray | None = None
    count = 0
    with open_source(clip, trim=trim, size=size) as source:
        for frame in source:
            total = frame.rgb.astype(np.float64) if total is None else total + frame.rgb
            count += 1
    if total is None:
        raise ChainError(f"{clip} yielded no frames")
    return total / count


def mean_frame_baseline(clip: str | os.PathLike, *, size: str | Size | None = None, trim: Trim = Trim()) -> float:
    """PSNR (dB) of predicting every frame of ``clip`` as its mean frame: two streaming passes."""
    mean = mean_frame(clip, size=size, trim=trim)
    squared, values = 0.0, 0
    with open_source(clip, trim=trim, size=size) as source:
        for frame in source:
            squared += float(np.sum((frame.rgb - mean) ** 2))
            values += frame.rgb.size
    return mse_to_psnr(squared / values)


def clip_psnr(reference: str | os.PathLike, test: str | os.PathLike, *, size: str | Size | None = None,
              trim: Trim = Trim()) -> float:
    """PSNR (dB) of clip ``test`` against clip ``reference``, frame by frame, both read at ``size``.

    Without ``size`` the reference's own size is used and ``test`` is resized to it. The
    clips must have the same number of frames (``trim`` applies to both).
    """
    squared, values, frames = 0.0, 0, 0
    with open_source(reference, trim=trim, size=size) as ref:
        wanted = Size(ref.info.width, ref.info.height)
        with open_source(test, trim=trim, size=wanted) as other:
            ref_frames, test_frames = iter(ref), iter(other)
            while True:
                a, b = next(ref_frames, None), next(test_frames, None)
                if a is None or b is None:
                    if a is not b:
                        longer = reference if b is None else test
                        raise ChainError(f"{reference} and {test} differ in length: {longer} has more than "
                                         f"{frames} frames")
                    break
                squared += float(np.sum((a.rgb.astype(np.float64) - b.rgb) ** 2))
                values += a.rgb.size
                frames += 1
    if frames == 0:
        raise ChainError(f"{reference} yielded no frames")
    return mse_to_psnr(squared / values)


# -----------------------------------------------------------------------------
# Loss curves


def read_loss_log(path: str | os.PathLike) -> list[dict]:
    """The records of a JSON-lines loss log (one object per line)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_losses(log: str | os.PathLike, png: str | os.PathLike, keys: Sequence[str], *,
                title: str = "", smooth: int = 1) -> Path:
    """Plot ``keys`` of a JSON-lines loss log against ``step``, one panel each, into ``png``.

    Uses matplotlib when it is installed and a plain PIL drawing otherwise. ``smooth``
    averages over that many steps (a running mean), which GAN losses need to be readable.
    """
    records = read_loss_log(log)
    steps = np.array([r["step"] for r in records], dtype=np.float64)
    series = {k: _running_mean(np.array([r.get(k, np.nan) for r in records], dtype=np.float64), smooth)
              for k in keys}
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    staging = png.with_name(f".{png.stem}.partial{png.suffix}")
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        _plot_with_pil(steps, series, staging, title)
    else:
        figure, axes = plt.subplots(len(keys), 1, figsize=(8, 1.8 * len(keys)), sharex=True, squeeze=False)
        for axis, (key, values) in zip(axes[:, 0], series.items()):
            axis.plot(steps, values, linewidth=1)
            axis.set_ylabel(key, fontsize=8)
            axis.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("step")
        if title:
            figure.suptitle(title, fontsize=10)
        figure.tight_layout()
        figure.savefig(staging, dpi=80, format="png")
        plt.close(figure)
    os.replace(staging, png)
    return png


def _running_mean(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < 2:
        return values
    window = min(window, len(values))
    cumulative = np.cumsum(np.insert(np.nan_to_num(values), 0, 0.0))
    out = np.empty_like(values)
    for i in range(len(values)):
        low = max(0, i - window + 1)
        out[i] = (cumulative[i + 1] - cumulative[low]) / (i + 1 - low)
    return out


def _plot_with_pil(steps: np.ndarray, series: dict[str, np.ndarray], png: Path, title: str) -> None:
    from PIL import Image, ImageDraw

    width, panel, margin = 640, 120, 48
    image = Image.new("RGB", (width, panel * len(series) + 24), "white")
    draw = ImageDraw.Draw(image)
    draw.text((margin, 4), title, fill="black")
    for row, (key, values) in enumerate(series.items()):
        top = 24 + row * panel
        box = (margin, top + 8, width - 8, top + panel - 16)
        draw.rectangle(box, outline=(180, 180, 180))
        finite = np.isfinite(values)
        if finite.sum() >= 1:
            low, high = float(values[finite].min()), float(values[finite].max())
            high = high if high > low else low + 1.0
            x0, x1 = float(steps.min()), float(max(steps.max(), steps.min() + 1))
            points = [(box[0] + (s - x0) / (x1 - x0) * (box[2] - box[0]),
                       box[3] - (v - low) / (high - low) * (box[3] - box[1]))
                      for s, v in zip(steps[finite], values[finite])]
            if len(points) > 1:
                draw.line(points, fill=(31, 119, 180), width=1)
            draw.text((4, box[1]), f"{high:.3g}", fill="black")
            draw.text((4, box[3] - 10), f"{low:.3g}", fill="black")
        draw.text((box[0] + 4, box[1] + 2), key, fill="black")
    image.save(png, format="PNG")
