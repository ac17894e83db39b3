"""How steady a run's labels and paintings are over time, judged along the input's own motion.

Plain frame-to-frame change punishes motion: a person walking changes labels that are right in
every frame. So both measures first carry the previous frame along the optical flow of the
*input* (chain's DIS flow, `chain.stages.flow`) and compare only where that flow is reliable
(forward-backward consistent, not occluded); pairs across a scene cut are skipped.

- **Label flicker along motion**: the share of those pixels whose label differs from the label the
  flow brings from the previous frame.
- **Warping error** (E_warp, Lai et al. 2018, "Learning Blind Video Temporal Consistency"): the mean,
  over consecutive pairs, of the squared RGB difference (values in 0..1, summed over channels)
  between a frame and its predecessor warped along the flow, averaged over the reliable pixels. It
  is measured for the painting and, at the same size, for the input itself: the input's own error
  (lighting, blur, the flow's mistakes) is the floor a painting can be judged against.

Both are measured at a working size (the frames scaled down to a short side of at most 256) to
cost a few milliseconds a frame; streaming, with only the previous frame kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from chain.stages.flow import MotionEstimator, gray_at, working_size


@dataclass
class _Frame:
    """One frame at working size: its gray (for the flow), RGB in 0..1, labels and painting."""

    gray: np.ndarray
    rgb: np.ndarray
    labels: np.ndarray | None
    painted: np.ndarray | None


class SteadinessTracker:
    """Label flicker along motion and the warping error of painting and input, over a run.

    Feed batches in order with `add_batch`; shards of one run join with `join` (the pair across
    each boundary is measured too, so the totals equal one pass over the whole run).
    """

    def __init__(self, *, flow: str = "dis") -> None:
        self.flow = flow  # `MotionEstimator`'s method: "farneback" judges chain with a flow it does not use
        self._motion: MotionEstimator | None = None
        self._previous: _Frame | None = None
        self.first: _Frame | None = None  # a shard's edge (`join`)
        self.pairs = self.cuts = self.label_pairs = self.painted_pairs = 0
        self._label_total = self._painted_total = self._input_total = 0.0
        self.size: tuple[int, int] | None = None

    def __getstate__(self) -> dict[str, Any]:  # OpenCV's flow object does not pickle (Ray sends trackers)
        return {**self.__dict__, "_motion": None}

    def add_batch(self, inputs: np.ndarray, labels: torch.Tensor | np.ndarray | None,
                  painted: np.ndarray | None) -> None:
        """The next input frames ``(B, H, W, 3)`` uint8, their labels ``(B, h, w)`` (any size) and
        paintings ``(B, H', W', 3)`` uint8 (any size), either None where the run has none."""
        if labels is not None and isinstance(labels, torch.Tensor):
            labels = labels.cpu().numpy()
        for index, frame in enumerate(inputs):
            self._add(self._at_working_size(frame, None if labels is None else labels[index],
                                            None if painted is None else painted[index]))

    def _at_working_size(self, frame: np.ndarray, labels: np.ndarray | None, painted: np.ndarray | None) -> _Frame:
        if self.size is None:
            self.size = working_size(*frame.shape[:2])
        height, width = self.size
        return _Frame(gray_at(frame, self.size), _rgb_at(frame, self.size),
                      None if labels is None else _nearest(labels, height, width),
                      None if painted is None else _rgb_at(painted, self.size))

    def _add(self, current: _Frame) -> None:
        if self._previous is not None:
            self._measure(self._previous, current)
        self._previous = current
        if self.first is None:
            self.first = current

    def _measure(self, previous: _Frame, current: _Frame) -> None:
        if self._motion is None:
            self._motion = MotionEstimator(method=self.flow)
        motion = self._motion.compare(previous.gray, current.gray)
        if motion.cut:
            self.cuts += 1
            return
        reliable = motion.reliable
        if not reliable.any():
            return
        height, width = reliable.shape
        grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        map_x, map_y = grid_x + motion.flow[..., 0], grid_y + motion.flow[..., 1]

        def carried(values: np.ndarray, interpolation: int) -> np.ndarray:
            return cv2.remap(values, map_x, map_y, interpolation, borderMode=cv2.BORDER_REPLICATE)

        self.pairs += 1
        self._input_total += _warp_error(current.rgb, carried(previous.rgb, cv2.INTER_LINEAR), reliable)
        if current.painted is not None and previous.painted is not None:
            self.painted_pairs += 1
            self._painted_total += _warp_error(current.painted, carried(previous.painted, cv2.INTER_LINEAR), reliable)
        if current.labels is not None and previous.labels is not None:
            self.label_pairs += 1
            brought = carried(previous.labels.astype(np.float32), cv2.INTER_NEAREST)
            self._label_total += float(np.mean(current.labels[reliable] != brought[reliable]))

    def join(self, later: SteadinessTracker) -> None:
        """Add the frames right after these (a later shard of the run), the pair across the boundary too."""
        if self._previous is not None and later.first is not None:
            self._measure(self._previous, later.first)
        self.pairs += later.pairs
        self.cuts += later.cuts
        self.label_pairs += later.label_pairs
        self.painted_pairs += later.painted_pairs
        self._label_total += later._label_total
        self._painted_total += later._painted_total
        self._input_total += later._input_total
        self.first = self.first if self.first is not None else later.first
        self._previous = later._previous if later._previous is not None else self._previous
        self.size = self.size or later.size

    @property
    def label_flicker(self) -> float | None:
        """Share of reliably tracked pixels whose label is not the one motion brings (None: no pair)."""
        return self._label_total / self.label_pairs if self.label_pairs else None

    @property
    def painted_warp_error(self) -> float | None:
        return self._painted_total / self.painted_pairs if self.painted_pairs else None

    @property
    def input_warp_error(self) -> float | None:
        return self._input_total / self.pairs if self.pairs else None

    def to_dict(self) -> dict[str, Any] | None:
        """The summary's ``steadiness`` entry (None for fewer than two frames)."""
        if self.size is None or self._previous is None or self.first is self._previous:
            return None

        def rounded(value: float | None, digits: int) -> float | None:
            return None if value is None else round(value, digits)

        return {"size": f"{self.size[1]}x{self.size[0]}", "pairs": self.pairs, "cuts": self.cuts,
                "label_flicker_along_motion": rounded(self.label_flicker, 5),
                "painting_warp_error": rounded(self.painted_warp_error, 6),
                "input_warp_error": rounded(self.input_warp_error, 6)}


def _rgb_at(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(H, W, 3)`` uint8 → float32 in 0..1 at ``size`` (area-averaged when smaller)."""
    if image.shape[:2] != tuple(size):
        image = cv2.resize(np.ascontiguousarray(image), (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return image.astype(np.float32) / 255


def _nearest(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Labels resampled to ``(height, width)`` by nearest pixel centre (no class is invented)."""
    rows = np.minimum((np.arange(height) + 0.5) * labels.shape[0] / height, labels.shape[0] - 1).astype(np.intp)
    columns = np.minimum((np.arange(width) + 0.5) * labels.shape[1] / width, labels.shape[1] - 1).astype(np.intp)
    return labels[rows[:, None], columns[None, :]]


def _warp_error(current: np.ndarray, carried: np.ndarray, reliable: np.ndarray) -> float:
    return float(np.sum((current - carried) ** 2, axis=-1)[reliable].mean())
