"""The two kinds of stage a chain is made of.

A `Segmenter` turns RGB frames into label maps of its `label_space`. A `Synthesizer`
turns label maps of its `label_space` into RGB frames, or (``consumes == "frames"``, an
autoencoder for instance) turns frames into frames. The chain converts label maps between
spaces, applies the user's remapping, and moves data between stages as numpy arrays:
frames ``(B, H, W, 3)`` uint8, label maps ``(B, H, W)`` in the space's dtype.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from chain.labels import LabelSpace
from chain.stages.label_resize import resized_argmax

_CHANNELS_PER_CHUNK = 16     # upsampling 151 class maps to 720p at once would take ~0.5 GB
_ONE_HOT_VALUES = 32 << 20   # one-hot "probabilities" stay at full size up to 32M values (128 MB)


def labels_from_scores(scores: torch.Tensor, size: tuple[int, int], space: LabelSpace) -> np.ndarray:
    """Argmax over classes of ``scores`` ``(B, C, h, w)`` resized (bilinear) to ``size``.

    On the CPU `resized_argmax` interpolates scores only near class boundaries. Elsewhere it
    works through the classes a chunk at a time with a running maximum, so memory stays
    ``chunk × H × W`` whatever the number of classes.
    """
    if tuple(scores.shape[-2:]) == tuple(size):
        return scores.argmax(dim=1).to(torch.int32).cpu().numpy().astype(space.dtype)
    if scores.device.type == "cpu":  # resizes scores only near class boundaries: 14x faster at 720p
        return resized_argmax(scores, [(tuple(size), False)]).astype(space.dtype)
    best_value = best_label = None
    for start in range(0, scores.shape[1], _CHANNELS_PER_CHUNK):
        chunk = F.interpolate(scores[:, start:start + _CHANNELS_PER_CHUNK], size=size, mode="bilinear",
                              align_corners=False)
        value, label = chunk.max(dim=1)
        label += start
        if best_value is None:
            best_value, best_label = value, label
        else:
            better = value > best_value  # ties keep the lower id, as argmax does
            best_value = torch.where(better, value, best_value)
            best_label = torch.where(better, label, best_label)
    return best_label.to(torch.int32).cpu().numpy().astype(space.dtype)


class Segmenter(ABC):
    """RGB frames → label maps."""

    label_space: LabelSpace
    #: A short human description for summaries, e.g. "torchvision DeepLabV3 ResNet-50 (COCO-VOC weights)".
    description: str = ""

    def reset(self) -> None:  # noqa: B027 (an optional hook: stateless stages need nothing)
        """Forget any state carried between frames; called at the start of every run."""

    @abstractmethod
    def segment(self, frames: np.ndarray, *, indices: np.ndarray) -> np.ndarray:
        """Label maps ``(B, H, W)`` at the frames' size for frames ``(B, H, W, 3)`` uint8.

        ``indices`` are the frames' output indices (a stage reading saved labels needs them).
        """

    def probabilities(self, frames: np.ndarray, *, indices: np.ndarray) -> torch.Tensor:
        """Class probabilities ``(B, C, h, w)`` at any resolution, for temporal smoothing.

        Network segmenters return their softmax; the default is the one-hot of `segment`,
        at full size where it fits in 32M values per frame, else area-pooled just enough
        (the share of each class in each cell).
        """
        labels = torch.from_numpy(self.segment(frames, indices=indices).astype(np.int64))
        pooling = math.ceil(math.sqrt(len(self.label_space) * labels[0].numel() / _ONE_HOT_VALUES))
        frames_one_hot = []
        for frame_labels in labels:  # one frame at a time: a batch of 720p COCO one-hots is GBs
            one_hot = F.one_hot(frame_labels, len(self.label_space)).permute(2, 0, 1).float()[None]
            frames_one_hot.append(F.avg_pool2d(one_hot, pooling, ceil_mode=True) if pooling > 1 else one_hot)
        return torch.cat(frames_one_hot)


class Synthesizer(ABC):
    """Label maps (or frames) → RGB frames."""

    consumes: Literal["labels", "frames"] = "labels"
    #: The space of the label maps it takes; None for a synthesizer that consumes frames.
    label_space: LabelSpace | None = None
    #: The class the segmenter's catch-all class (VOC "background") becomes in this space,
    #: unless the user says otherwise with ``--background``; None keeps the space's fallback.
    default_background: str | None = None
    description: str = ""
    #: True when the painting is the label map in its space's palette (``colorize``): the compare
    #: video then shows that panel once, not twice.
    paints_labels: bool = False

    #: Frame-to-frame state anchored on the run's first frame (ControlNet's cross-frame attention):
    #: a shard of the run (`chain.cluster`) first paints that frame, unwritten.
    anchored_on_first_frame: bool = False

    def reset(self) -> None:  # noqa: B027 (an optional hook: stateless stages need nothing)
        """Forget any state carried between frames; called at the start of every run."""

    def seek(self, index: int) -> None:  # noqa: B027 (an optional hook)
        """The next frame given is the run's frame ``index`` (a shard of a run starts past 0)."""

    def unshardable(self) -> str | None:
        """Why this synthesizer cannot run in shards (`chain.cluster`), or None when it can."""
        return None

    def bind(self, label_space: LabelSpace) -> None:
        """Adopt the segmenter's space; the chain calls this only when `label_space` is None."""
        self.label_space = label_space

    @abstractmethod
    def synthesize(self, *, labels: np.ndarray | None, frames: np.ndarray) -> np.ndarray:
        """RGB frames ``(B, h, w, 3)`` uint8; the chain resizes them to the output size.

        ``labels`` are ``(B, H, W)`` in `label_space` (None when ``consumes == "frames"``);
        ``frames`` are the input frames, which label synthesizers may ignore.
        """
