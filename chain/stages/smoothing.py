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

import numpy as np
import torch

from chain.bounds import Smoothing
from chain.stages.base import Segmenter, labels_from_scores
from chain.stages.flow import MotionEstimator, gray_at, warp


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
