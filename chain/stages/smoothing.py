"""Temporal smoothing: labels that hold still where the scene does.

A segmenter decides each frame afresh, so a background it is unsure of flips between
classes from frame to frame ("the salt flat is snow, then sand, then pavement").
`SmoothedSegmenter` keeps a causal exponential moving average of class probabilities,
``p_t = alpha * p_(t-1) + (1 - alpha) * q_t``, and labels each frame by its argmax.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from chain.errors import ChainError
from chain.stages.base import Segmenter, labels_from_scores

_SPEC = re.compile(r"^ema:(0(\.\d+)?|1(\.0*)?)$")


def parse_smoothing(text: str | None) -> float | None:
    """``"ema:0.6"`` → 0.6 (the weight of the past); None/"none" → None."""
    if text is None or text in ("", "none"):
        return None
    match = _SPEC.match(text.strip())
    alpha = float(match.group(1)) if match else None
    if alpha is None or not 0 <= alpha < 1:
        raise ChainError(f"--smooth {text!r}: use ema:ALPHA with 0 <= ALPHA < 1 (e.g. ema:0.6), or none")
    return alpha


class SmoothedSegmenter(Segmenter):
    """Wraps any segmenter with a causal exponential moving average of its class probabilities.

    Args:
        inner: the segmenter whose probabilities are smoothed.
        alpha: weight of the past (0 = no smoothing; 0.8 ≈ a 5-frame memory).
    """

    def __init__(self, inner: Segmenter, alpha: float) -> None:
        self.inner = inner
        self.alpha = alpha
        self.label_space = inner.label_space
        self.description = f"{inner.description}, smoothed (ema {alpha})"
        self._state: torch.Tensor | None = None

    def reset(self) -> None:
        self.inner.reset()
        self._state = None

    @torch.inference_mode()
    def segment(self, frames: np.ndarray, *, indices: np.ndarray) -> np.ndarray:
        probabilities = self.inner.probabilities(frames, indices=indices)
        smoothed = torch.empty_like(probabilities)
        for i, current in enumerate(probabilities):
            if self._state is None or self._state.shape != current.shape:
                self._state = current.clone()
            else:
                self._state.mul_(self.alpha).add_(current, alpha=1 - self.alpha)
            smoothed[i] = self._state
        return labels_from_scores(smoothed, frames.shape[1:3], self.label_space)
