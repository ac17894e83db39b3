"""``--smooth window[:K]``: each frame's labels from the K frames before it and the K after it.

chain works on files, so it can look ahead. A frame's class probabilities are fused with those of
its neighbours up to K frames away on either side, each carried to it along the input's optical
flow (consecutive flows chained, `chain.stages.flow`), weighted by

- the flow's reliability all along the chain (forward-backward consistent, not occluded, the
  frames alike there: an occluded or newly revealed pixel takes nothing from the neighbour), and
- the neighbour's confidence there (its top probability), so a sure frame outweighs unsure ones,

and the chain stops at a scene cut. Unlike the causal ``ema`` and ``flow``, a moving object gets
no trail (the future pulls as much as the past) and the result of a frame depends only on the
2K + 1 frames around it: batch sizes and shards (which warm up on K frames before their start and
read K past their end) give the same labels as one pass. Only those frames are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from chain.bounds import DEFAULT_WINDOW_RADIUS
from chain.stages.base import Segmenter, labels_from_scores
from chain.stages.flow import Link, MotionEstimator, carried, gray_at, link, working_size

#: The short side the fusion works at: a segmenter's scores hold no finer detail (DeepLab's come
#: from a grid 8 times coarser than its input), and the fusion's cost grows with its area.
WORKING_SIDE = 128


@dataclass
class _Seen:
    """A frame the window holds: its probabilities, and the checked flows to its neighbours."""

    gray: np.ndarray
    probabilities: np.ndarray  # (h, w, C) float32
    confidence: np.ndarray  # (h, w): the top probability
    #: Towards the previous / next frame (`chain.stages.flow.link`); absent at the ends.
    links: dict[int, Link] = field(default_factory=dict)


class WindowSmoothedSegmenter(Segmenter):
    """Wraps any segmenter with a motion-compensated fusion over ±``radius`` frames.

    The chain shows it the ``radius`` frames after each batch first (`look`); frames are
    segmented once each, whichever call first brings them.
    """

    def __init__(self, inner: Segmenter, radius: int = DEFAULT_WINDOW_RADIUS) -> None:
        self.inner = inner
        self.look_ahead = self.radius = radius
        self.label_space = inner.label_space
        self.description = f"{inner.description}, smoothed (window ±{radius} frames along the motion)"
        self._motion = MotionEstimator()
        self.working_side = WORKING_SIDE
        self.reset()

    def reset(self) -> None:
        self.inner.reset()
        self._seen: dict[int, _Seen] = {}

    def compile(self) -> bool:
        return self.inner.compile()

    def look(self, frames: np.ndarray, *, indices: np.ndarray) -> None:
        """The frames after the next batch (up to ``radius``), which its labels depend on."""
        self._see(frames, indices)

    @torch.inference_mode()
    def probabilities(self, frames: np.ndarray, *, indices: np.ndarray) -> torch.Tensor:
        self._see(frames, indices)
        fused = torch.stack([self._fuse(int(index)) for index in indices])
        oldest = int(indices[-1]) - self.radius  # what the next frames can still reach back to
        for index in [i for i in self._seen if i < oldest]:
            del self._seen[index]
        return fused

    def segment(self, frames: np.ndarray, *, indices: np.ndarray,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        return labels_from_scores(self.probabilities(frames, indices=indices), size or frames.shape[1:3])

    def segment_sizes(self, frames: np.ndarray, *, indices: np.ndarray,
                      sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
        fused = self.probabilities(frames, indices=indices)
        return [labels_from_scores(fused, size) for size in sizes]

    def _see(self, frames: np.ndarray, indices: np.ndarray) -> None:
        """Segment the frames not seen yet (as one batch) and link each to the frame before it."""
        new = [i for i, index in enumerate(indices) if int(index) not in self._seen]
        if not new:
            return
        scores = self.inner.probabilities(frames[new], indices=indices[new]).float()
        for position, probabilities in zip(new, scores):
            index = int(indices[position])
            probabilities = _shrunk(probabilities.cpu().numpy(), working_size(*probabilities.shape[-2:], self.working_side))
            seen = _Seen(gray_at(frames[position], probabilities.shape[1:]), _channels_last(probabilities),
                         probabilities.max(axis=0))
            self._seen[index] = seen
            # The frames after a batch are shown before it: a frame's neighbour may come first.
            for earlier, later in ((self._seen.get(index - 1), seen), (seen, self._seen.get(index + 1))):
                if earlier is not None and later is not None:
                    link(self._motion, earlier.gray, later.gray, earlier, later)

    def _fuse(self, index: int) -> torch.Tensor:
        """The frame's probabilities averaged with its neighbours' carried to it, weighted."""
        centre = self._seen[index]
        total = torch.from_numpy(centre.probabilities * centre.confidence[..., None])
        weights = centre.confidence.copy()
        for neighbour, carry in carried(self._seen, index, self.radius, centre.confidence.shape):
            seen = self._seen[neighbour]
            weight = carry.trust * carry.sample(seen.confidence)
            total.addcmul_(torch.from_numpy(carry.sample(seen.probabilities)), torch.from_numpy(weight)[..., None])
            weights += weight
        return torch.from_numpy(_channels_first(total.numpy() / weights[..., None]))


def _shrunk(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(C, H, W)`` scaled down to ``size`` ``(h, w)``, channel by channel, by halvings then one bilinear
    step: each step averages the pixels it drops (one channel at a time: OpenCV's area filter takes 4
    channels at most, and transposing the full-size scores to channels last costs more than this)."""
    if values.shape[1:] == tuple(size):
        return values

    def one(channel: np.ndarray) -> np.ndarray:
        while channel.shape[0] >= 2 * size[0] and channel.shape[1] >= 2 * size[1]:
            channel = cv2.resize(channel, (channel.shape[1] // 2, channel.shape[0] // 2), interpolation=cv2.INTER_LINEAR)
        if channel.shape != tuple(size):
            channel = cv2.resize(channel, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        return channel

    return np.stack([one(channel) for channel in values])


def _channels_last(values: np.ndarray) -> np.ndarray:
    """``(C, h, w)`` as ``(h, w, C)``, contiguous: OpenCV carries all of a pixel's classes in one pass
    (5 times faster than torch here); `cv2.transpose` makes the copy 6 times faster than numpy's."""
    channels, height, width = values.shape
    return cv2.transpose(np.ascontiguousarray(values).reshape(channels, -1)).reshape(height, width, channels)


def _channels_first(values: np.ndarray) -> np.ndarray:
    """``(h, w, C)`` as ``(C, h, w)``, contiguous: `_channels_last` undone, by the same fast copy."""
    height, width, channels = values.shape
    return cv2.transpose(values.reshape(-1, channels)).reshape(channels, height, width)
