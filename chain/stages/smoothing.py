"""Temporal smoothing: labels that hold still where the scene does.

A segmenter decides each frame afresh, so a background it is unsure of flips between
classes from frame to frame ("the salt flat is snow, then sand, then pavement").
`SmoothedSegmenter` keeps a causal exponential moving average of class probabilities,
``p_t = alpha * p_(t-1) + (1 - alpha) * q_t``, and labels each frame by its argmax.

``ema`` averages each pixel's history in place, which smears whatever moves. ``flow`` first
moves the running probabilities along the optical flow between the frames (`chain.stages.flow`),
so they follow the objects; where the flow cannot be trusted (occlusions, new content) a pixel
starts afresh from the current frame, and a scene cut drops the whole state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from chain.errors import ChainError
from chain.stages.base import Segmenter, labels_from_scores
from chain.stages.flow import MotionEstimator, gray_at, warp

_SPEC = re.compile(r"^(ema|flow)(?::(0(?:\.\d+)?|1(?:\.0*)?))?$")
_WINDOW = re.compile(r"^window(?::(\d+))?$")
#: ALPHA of a bare ``flow``: tuned on the shared clips (benchmarks/smoothing_flicker.py).
DEFAULT_FLOW_ALPHA = 0.85


@dataclass(frozen=True)
class Smoothing:
    """A parsed ``--smooth``: the mode and the weight of the past."""

    mode: Literal["ema", "flow", "window"]
    alpha: float
    #: ``window``: how many frames before and after each frame are fused with it.
    radius: int = 0

    def __str__(self) -> str:
        return f"window ±{self.radius}" if self.mode == "window" else f"{self.mode} {self.alpha}"


def parse_smoothing(text: str | None) -> Smoothing | None:
    """``"ema:0.6"``, ``"flow"``, ``"flow:0.7"``, ``"window:2"`` → a `Smoothing`; None/"none"/ALPHA 0 → None."""
    if text is None or text.strip() in ("", "none"):
        return None
    window = _WINDOW.match(text.strip())
    if window:
        from chain.stages.window import DEFAULT_WINDOW_RADIUS, MAX_WINDOW_RADIUS

        radius = int(window.group(1)) if window.group(1) is not None else DEFAULT_WINDOW_RADIUS
        if not 1 <= radius <= MAX_WINDOW_RADIUS:
            raise ChainError(f"--smooth {text!r}: window:K takes K from 1 to {MAX_WINDOW_RADIUS} frames")
        return Smoothing("window", 0.0, radius)
    match = _SPEC.match(text.strip())
    if match and match.group(2) is None and match.group(1) == "flow":
        return Smoothing("flow", DEFAULT_FLOW_ALPHA)
    alpha = float(match.group(2)) if match and match.group(2) is not None else None
    if alpha is None or not 0 <= alpha < 1:
        raise ChainError(f"--smooth {text!r}: use ema:ALPHA or flow[:ALPHA] with 0 <= ALPHA < 1 "
                         f"(e.g. ema:0.6, flow), window[:K], or none")
    return Smoothing(match.group(1), alpha) if alpha > 0 else None


class Smoother:
    """The causal state of one smoothing, fed one frame at a time.

    Args:
        smoothing: the mode and ALPHA.
        motion: flow estimation and its checks (``flow`` mode; defaults to `MotionEstimator()`).
    """

    def __init__(self, smoothing: Smoothing, motion: MotionEstimator | None = None) -> None:
        self.smoothing = smoothing
        self.motion = (motion or MotionEstimator()) if smoothing.mode == "flow" else None
        self.reset()

    def reset(self) -> None:
        """Forget the past; the next frame starts the average afresh."""
        self._state: torch.Tensor | None = None
        self._gray: np.ndarray | None = None
        self._frames = 0
        #: Positions (frames since the last reset) where a scene cut dropped the state.
        self.cuts: list[int] = []

    def step(self, frame: np.ndarray, current: torch.Tensor) -> torch.Tensor:
        """Smoothed probabilities ``(C, h, w)`` for ``frame`` ``(H, W, 3)`` and its ``current`` ones."""
        alpha = self.smoothing.alpha
        gray = gray_at(frame, tuple(current.shape[-2:])) if self.motion is not None else None
        carried = self._state is not None and self._state.shape == current.shape
        if carried and gray is not None:
            motion = self.motion.compare(self._gray, gray)
            if motion.cut:
                self.cuts.append(self._frames)
                carried = False
        if not carried:
            self._state = current.clone()
        elif gray is None:
            self._state.mul_(alpha).add_(current, alpha=1 - alpha)
        else:
            blended = warp(self._state, motion.flow).mul_(alpha).add_(current, alpha=1 - alpha)
            reliable = torch.from_numpy(motion.reliable).to(current.device)
            self._state = torch.where(reliable, blended, current)
        self._gray = gray
        self._frames += 1
        return self._state


class SmoothedSegmenter(Segmenter):
    """Wraps any segmenter with a causal moving average of its class probabilities.

    The state runs across calls one frame at a time, so labels do not depend on how frames
    are batched; `reset` (every run, and later every shard) starts it afresh.

    Args:
        inner: the segmenter whose probabilities are smoothed.
        smoothing: ``ema`` or ``flow`` and ALPHA, the weight of the past (0.8 ≈ a 5-frame memory).
    """

    def __init__(self, inner: Segmenter, smoothing: Smoothing) -> None:
        self.inner = inner
        self.smoother = Smoother(smoothing)
        self.label_space = inner.label_space
        self.description = f"{inner.description}, smoothed ({smoothing})"

    def reset(self) -> None:
        self.inner.reset()
        self.smoother.reset()

    def compile(self) -> bool:
        return self.inner.compile()

    @torch.inference_mode()
    def probabilities(self, frames: np.ndarray, *, indices: np.ndarray) -> torch.Tensor:
        current = self.inner.probabilities(frames, indices=indices)
        return torch.stack([self.smoother.step(frame, probabilities).clone()
                            for frame, probabilities in zip(frames, current)])

    def segment(self, frames: np.ndarray, *, indices: np.ndarray,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        return labels_from_scores(self.probabilities(frames, indices=indices), size or frames.shape[1:3])

    def segment_sizes(self, frames: np.ndarray, *, indices: np.ndarray,
                      sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
        smoothed = self.probabilities(frames, indices=indices)  # one step of the state, whatever the sizes
        return [labels_from_scores(smoothed, size) for size in sizes]
