"""The two kinds of stage a chain is made of.

A `Segmenter` turns RGB frames into label maps of its `label_space`. A `Synthesizer`
turns label maps of its `label_space` into RGB frames, or (``consumes == "frames"``, an
autoencoder for instance) turns frames into frames. The chain converts label maps between
spaces, applies the user's remapping, and moves data between stages as numpy arrays:
frames ``(B, H, W, 3)`` uint8, label maps ``(B, H, W)`` in the space's dtype.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

import numpy as np

from chain.labels import LabelSpace


class Segmenter(ABC):
    """RGB frames → label maps."""

    label_space: LabelSpace
    #: A short human description for summaries, e.g. "torchvision DeepLabV3 ResNet-50 (COCO-VOC weights)".
    description: str = ""

    def reset(self) -> None:
        """Forget any state carried between frames; called at the start of every run."""

    @abstractmethod
    def segment(self, frames: np.ndarray, *, indices: np.ndarray) -> np.ndarray:
        """Label maps ``(B, H, W)`` at the frames' size for frames ``(B, H, W, 3)`` uint8.

        ``indices`` are the frames' output indices (a stage reading saved labels needs them).
        """


class Synthesizer(ABC):
    """Label maps (or frames) → RGB frames."""

    consumes: Literal["labels", "frames"] = "labels"
    #: The space of the label maps it takes; None for a synthesizer that consumes frames.
    label_space: LabelSpace | None = None
    #: The class the segmenter's catch-all class (VOC "background") becomes in this space,
    #: unless the user says otherwise with ``--background``; None keeps the space's fallback.
    default_background: str | None = None
    description: str = ""

    def reset(self) -> None:
        """Forget any state carried between frames; called at the start of every run."""

    def bind(self, label_space: LabelSpace) -> None:
        """Adopt the segmenter's space; the chain calls this only when `label_space` is None."""
        self.label_space = label_space

    @abstractmethod
    def synthesize(self, *, labels: np.ndarray | None, frames: np.ndarray) -> np.ndarray:
        """RGB frames ``(B, h, w, 3)`` uint8; the chain resizes them to the output size.

        ``labels`` are ``(B, H, W)`` in `label_space` (None when ``consumes == "frames"``);
        ``frames`` are the input frames, which label synthesizers may ignore.
        """
