"""The two kinds of stage a chain is made of.

A `Segmenter` turns RGB frames into label maps of its `label_space`. A `Synthesizer`
turns label maps of its `label_space` into RGB frames, or (``consumes == "frames"``, an
autoencoder for instance) turns frames into frames. The chain converts label maps between
spaces and applies the user's remapping on the device. Frames come in as numpy ``(B, H, W, 3)``
uint8; label maps travel as torch tensors ``(B, H, W)`` of `LABEL_DTYPE` (int64) on the
segmenter's device, and become numpy (in the space's dtype, `labels_to_numpy`) only where an
output needs them on the host.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from chain.errors import ChainError
from chain.labels import LabelSpace
from chain.stages.resized_argmax import resized_argmax

#: The dtype of label tensors between stages: what indexing, ``one_hot`` and ``bincount`` take
#: without a cast (a 1080p frame is 16 MB of int64, small beside the logits it comes from).
LABEL_DTYPE = torch.int64

_CHANNELS_PER_CHUNK = 16     # upsampling 151 class maps to 720p at once would take ~0.5 GB
_ONE_HOT_VALUES = 32 << 20   # one-hot "probabilities" stay at full size up to 32M values (128 MB)


def as_label_tensor(labels: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """Label maps given as a numpy array or a tensor → a `LABEL_DTYPE` tensor on ``device``."""
    if isinstance(labels, np.ndarray):
        labels = torch.from_numpy(labels.astype(np.int64, copy=False))
    return labels.to(device=device, dtype=LABEL_DTYPE)


def labels_to_numpy(labels: torch.Tensor | np.ndarray, space: LabelSpace) -> np.ndarray:
    """Label maps → numpy in ``space.dtype``, narrowed on the device before the copy to the host."""
    if isinstance(labels, torch.Tensor):
        narrow = torch.uint8 if space.dtype == np.uint8 else torch.int32
        labels = labels.to(narrow).cpu().numpy()
    return labels.astype(space.dtype, copy=False)


def labels_from_scores(scores: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Argmax over classes of ``scores`` ``(B, C, h, w)`` resized (bilinear) to ``size``.

    Returns `LABEL_DTYPE` labels ``(B, *size)`` on the scores' device. ``size`` is what the
    next consumer needs (the synthesizer's grid, or the frame size for outputs that show labels),
    so the logits are never upsampled further than that. On the CPU `resized_argmax` interpolates
    scores only near class boundaries; elsewhere it works through the classes a chunk at a time
    with a running maximum, so memory stays ``chunk × h × w`` whatever the number of classes.
    """
    if tuple(scores.shape[-2:]) == tuple(size):
        return scores.argmax(dim=1)
    if scores.device.type == "cpu":  # resizes scores only near class boundaries: 14x faster at 720p
        return torch.from_numpy(resized_argmax(scores, [(tuple(size), False)]).astype(np.int64))
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
    return best_label


class Segmenter(ABC):
    """RGB frames → label maps."""

    label_space: LabelSpace
    #: A short human description for summaries, e.g. "torchvision DeepLabV3 ResNet-50 (COCO-VOC weights)".
    description: str = ""
    #: Frames after a batch that its labels depend on (``--smooth window``): the chain shows them
    #: with `look` before each batch. 0 for segmenters that label frames as they come.
    look_ahead: int = 0

    def reset(self) -> None:  # noqa: B027 (an optional hook: stateless stages need nothing)
        """Forget any state carried between frames; called at the start of every run."""

    def look(self, frames: np.ndarray, *, indices: np.ndarray) -> None:  # noqa: B027 (optional, as reset)
        """The (up to `look_ahead`) frames that follow the next batch, shown before it is segmented."""

    def compile(self) -> bool:
        """``--compile``: put this stage's torch network through ``torch.compile``; False when it has none.

        Compilation itself happens on the first call (the chain's warm-up, timed as "compile").
        """
        return False

    @abstractmethod
    def segment(self, frames: np.ndarray, *, indices: np.ndarray,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        """Label maps for frames ``(B, H, W, 3)`` uint8: a `LABEL_DTYPE` tensor ``(B, h, w)``
        on the stage's device.

        ``size`` ``(h, w)`` is the size the labels are wanted at (default: the frames' own);
        network segmenters upsample their scores only that far, others sample their
        frame-size labels by `chain.labels.resize.resize_labels`. ``indices`` are the frames'
        output indices (a stage reading saved labels needs them).
        """

    def segment_sizes(self, frames: np.ndarray, *, indices: np.ndarray,
                      sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
        """Label maps at each of ``sizes`` from one look at the frames (one step of any state).

        Labels at a size are exactly what `segment` gives at that size, so what a synthesizer is
        given does not depend on which other outputs a run asks for. Network segmenters upsample
        their scores once per size; the default segments once per size (stateless stages only).
        """
        return [self.segment(frames, indices=indices, size=size) for size in sizes]

    def probabilities(self, frames: np.ndarray, *, indices: np.ndarray) -> torch.Tensor:
        """Class probabilities ``(B, C, h, w)`` at any resolution, for temporal smoothing.

        Network segmenters return their softmax; the default is the one-hot of `segment`,
        at full size where it fits in 32M values per frame, else area-pooled just enough
        (the share of each class in each cell).
        """
        labels = self.segment(frames, indices=indices)
        pooling = math.ceil(math.sqrt(len(self.label_space) * labels[0].numel() / _ONE_HOT_VALUES))
        frames_one_hot = []
        for frame_labels in labels:  # one frame at a time: a batch of 720p COCO one-hots is GBs
            one_hot = F.one_hot(frame_labels, len(self.label_space)).permute(2, 0, 1).float()[None]
            frames_one_hot.append(F.avg_pool2d(one_hot, pooling, ceil_mode=True) if pooling > 1 else one_hot)
        return torch.cat(frames_one_hot)


def check_segmenter(segmenter: Segmenter) -> None:
    """Refuse, in one line, a segmenter written for the old contract (``segment(frames, indices)``
    returning numpy labels at the frame size): it would fail mid-run with a TypeError."""
    inner = getattr(segmenter, "inner", None)  # a wrapper (`--smooth`) calls its segmenter's methods
    if isinstance(inner, Segmenter):
        check_segmenter(inner)
    parameters = inspect.signature(segmenter.segment).parameters
    if "size" not in parameters and not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        raise ChainError(f"the segmenter {segmenter.description or type(segmenter).__name__!r} implements "
                         "segment(frames, indices) without size=: a segmenter now returns int64 label tensors at "
                         "the size asked for (see 'Adding things' in docs/architecture.md)")


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

    def compile(self) -> bool:
        """``--compile``: put this stage's torch network through ``torch.compile``; False when it has none.

        Compilation itself happens on the first call (the chain's warm-up, timed as "compile").
        """
        return False

    #: Frames after a batch that its paintings depend on (``vaegan``'s ``smooth``): the chain shows
    #: them with `look` before each batch. 0 for synthesizers that paint frames as they come.
    look_ahead: int = 0

    def seek(self, index: int) -> None:  # noqa: B027 (an optional hook)
        """The next frame given is the run's frame ``index`` (a shard of a run starts past 0)."""

    def look(self, frames: np.ndarray, *, indices: np.ndarray) -> None:  # noqa: B027 (optional, as seek)
        """The (up to `look_ahead`) input frames that follow the next batch, shown before it is painted."""

    def unshardable(self) -> str | None:
        """Why this synthesizer cannot run in shards (`chain.cluster`), or None when it can."""
        return None

    def label_size(self, height: int, width: int) -> tuple[int, int] | None:
        """The label-map size it paints from for frames of ``height × width`` (its grid), or None for
        the frame size. The chain asks the segmenter for labels at this size when no output shows
        labels at frame size."""
        return None

    def bind(self, label_space: LabelSpace) -> None:
        """Adopt the segmenter's space; the chain calls this only when `label_space` is None."""
        self.label_space = label_space

    @abstractmethod
    def synthesize(self, *, labels: torch.Tensor | np.ndarray | None,
                   frames: np.ndarray) -> torch.Tensor | np.ndarray:
        """RGB frames ``(B, h, w, 3)`` uint8: a tensor on the stage's device (a stage that paints
        on the host may return numpy); the chain resizes them to the output size on that device
        and copies them to the host once.

        ``labels`` are ``(B, H, W)`` ids of `label_space` (None when ``consumes == "frames"``): a
        `LABEL_DTYPE` tensor from the chain, numpy from other callers (`as_label_tensor` takes
        both), at any size; a stage samples them to its grid by `chain.labels.resize.resize_labels`.
        ``frames`` are the input frames, which label synthesizers may ignore.
        """
