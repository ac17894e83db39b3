"""Optical flow for motion-compensated smoothing: where each pixel was in the previous frame.

OpenCV's DIS (Kroeger et al. 2016) needs no learned weights and runs in a few milliseconds at
a segmenter's working size. `MotionEstimator.compare` returns the backward flow (for each pixel
of the current frame, its offset into the previous one), which pixels that flow can be trusted
at, and whether the two frames are a scene cut.

A pixel's flow is trusted when (a) it lands inside the previous frame, (b) the forward flow
from where it lands leads back to it (the forward-backward check of Sundaram et al. 2010:
occluded and disoccluded pixels fail it), and (c) the previous frame, warped, looks like the
current one there (what the consistency check misses where both flows are equally wrong).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F

#: The most channels `cv2.remap` takes at once (CV_CN_MAX).
_MAX_CHANNELS = 512
#: DIS refuses images under 12 pixels; under this short side, assume no motion.
_MIN_FLOW_SIDE = 16


@dataclass(frozen=True)
class Motion:
    """The result of comparing two consecutive frames at working size ``(h, w)``."""

    #: ``(h, w, 2)`` float32 (x, y) offsets: current(p) ≈ previous(p + flow(p)).
    flow: np.ndarray
    #: ``(h, w)`` bool: pixels whose flow passed every check.
    reliable: np.ndarray
    #: The frames show different scenes: whatever was carried over should be dropped.
    cut: bool
    #: With ``compare(both_ways=True)``: ``(h, w, 2)`` offsets the other way, previous(p) ≈
    #: current(p + forward(p)), and which of them passed every check.
    forward: np.ndarray | None = None
    forward_reliable: np.ndarray | None = None


#: The short side steadiness is measured and paintings steadied at (`chain.steadiness`,
#: `chain.stages.deflicker`): a few milliseconds a frame.
WORKING_SIDE = 256


def working_size(height: int, width: int, side: int = WORKING_SIDE) -> tuple[int, int]:
    """``(h, w)`` with the short side at most ``side``, the aspect kept (frames are never enlarged)."""
    scale = min(1.0, side / min(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def gray_at(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An RGB frame ``(H, W, 3)`` uint8 as grayscale resized (area) to ``size`` ``(h, w)``."""
    gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    if gray.shape != tuple(size):
        gray = cv2.resize(gray, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return gray


class MotionEstimator:
    """DIS flow with reliability checks and a scene-cut test, all on grayscale frames.

    Args:
        consistency: forward-backward tolerance in pixels (squared error allowed on top of
            1 % of the squared flow lengths, as Sundaram et al.).
        warp_error: largest gray-level difference (0-255) between the current frame and the
            warped previous one, after a light blur, that still counts as the same surface.
        cut_histogram: total-variation distance (0-1) between the frames' 32-bin gray
            histograms above which the frames are a cut.
        cut_unreliable: share of unreliable pixels above which the frames are a cut.
        preset: OpenCV's DIS preset (``cv2.DISOPTICAL_FLOW_PRESET_*``).
        method: ``"dis"`` (chain's), or ``"farneback"`` (Farneback 2003, a polynomial-expansion
            flow that shares nothing with DIS): a second opinion for judging chain's steadiness.
    """

    def __init__(self, *, consistency: float = 0.5, warp_error: float = 24.0, cut_histogram: float = 0.3,
                 cut_unreliable: float = 0.7, preset: int = cv2.DISOPTICAL_FLOW_PRESET_FAST,
                 method: str = "dis") -> None:
        if method not in ("dis", "farneback"):
            raise ValueError(f"unknown flow method {method!r}")
        # FAST: 2 ms at 257x257 here, and far better than ULTRAFAST on slow-moving texture.
        self._dis = cv2.DISOpticalFlow_create(preset) if method == "dis" else None
        self.consistency = consistency
        self.warp_error = warp_error
        self.cut_histogram = cut_histogram
        self.cut_unreliable = cut_unreliable

    def compare(self, previous: np.ndarray, current: np.ndarray, *, both_ways: bool = False) -> Motion:
        """Backward flow from ``current`` to ``previous`` (grayscale uint8, same size), checked.

        With ``both_ways``, the forward flow (from ``previous`` into ``current``) comes checked
        too, as ``forward`` and ``forward_reliable``: what looking ahead needs.
        """
        height, width = current.shape
        if min(height, width) < _MIN_FLOW_SIDE:
            backward = forward = np.zeros((height, width, 2), np.float32)
        else:
            backward, forward = self._flow(current, previous), self._flow(previous, current)
        reliable = self._reliable(backward, forward, current, previous)
        cut = self._is_cut(previous, current, reliable)
        if not both_ways:
            return Motion(backward, reliable, cut)
        return Motion(backward, reliable, cut, forward, self._reliable(forward, backward, previous, current))

    def _reliable(self, flow: np.ndarray, reverse: np.ndarray, image: np.ndarray, other: np.ndarray) -> np.ndarray:
        """Pixels of ``image`` whose ``flow`` into ``other`` passes every check (``reverse``: back)."""
        height, width = image.shape
        grid_x, grid_y = _pixel_grid(height, width)
        flow_x, flow_y = flow[..., 0], flow[..., 1]
        map_x, map_y = grid_x + flow_x, grid_y + flow_y
        inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
        # The reverse flow and the other frame (blurred 3x3 first: bilinear sampling of fine texture alone
        # would fail the warp check) in one 4-channel remap: OpenCV's fast path takes 1 or 4 float channels.
        blurred_other = cv2.blur(other, (3, 3)).astype(np.float32)
        there = cv2.remap(cv2.merge([reverse[..., 0], reverse[..., 1], blurred_other, blurred_other]),
                          map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        back_x, back_y, warped = there[..., 0], there[..., 1], there[..., 2]
        # Written out: numpy's sum over a last axis of 2 is several times slower.
        round_trip = (flow_x + back_x) ** 2 + (flow_y + back_y) ** 2
        lengths = flow_x ** 2 + flow_y ** 2 + back_x ** 2 + back_y ** 2
        consistent = round_trip <= 0.01 * lengths + self.consistency
        similar = np.abs(warped - cv2.blur(image, (3, 3)).astype(np.float32)) <= self.warp_error
        return inside & consistent & similar

    def _flow(self, to: np.ndarray, back_to: np.ndarray) -> np.ndarray:
        """For each pixel of ``to``, its offset into ``back_to``."""
        if self._dis is not None:
            try:
                return self._dis.calc(to, back_to, None)
            except cv2.error:  # its pyramid cannot shrink some shapes (16x8192): assume no motion
                return np.zeros((*to.shape, 2), np.float32)
        # OpenCV's recommended settings (pyramid 0.5 x 3, window 15, 3 iterations, poly_n 5).
        return cv2.calcOpticalFlowFarneback(to, back_to, None, 0.5, 3, 15, 3, 5, 1.2, 0)

    def _is_cut(self, previous: np.ndarray, current: np.ndarray, reliable: np.ndarray) -> bool:
        # Motion keeps a scene's histogram (objects move, they do not change colour); a cut
        # changes it, or leaves a scene the flow cannot explain.
        return (histogram_cut(previous, current, self.cut_histogram)
                or 1 - np.count_nonzero(reliable) / reliable.size > self.cut_unreliable)


def histogram_cut(previous: np.ndarray, current: np.ndarray, threshold: float = 0.3) -> bool:
    """Whether two grayscale frames' 32-bin histograms differ by more than ``threshold`` (total
    variation, 0-1): a scene cut, without any flow."""
    histograms = [cv2.calcHist([image], [0], None, [32], [0, 256]).ravel() / image.size for image in (previous, current)]
    return 0.5 * float(np.abs(histograms[0] - histograms[1]).sum()) > threshold


def warp(values: torch.Tensor, flow: np.ndarray) -> torch.Tensor:
    """``values`` ``(C, h, w)`` sampled (bilinear, edges repeated) at ``p + flow(p)``."""
    height, width = flow.shape[:2]
    offsets = torch.from_numpy(flow).to(values.device)
    grid_y, grid_x = torch.meshgrid(torch.arange(height, device=values.device, dtype=torch.float32),
                                    torch.arange(width, device=values.device, dtype=torch.float32), indexing="ij")
    # grid_sample takes positions in -1..1 (align_corners: -1 and 1 are the outer pixel centres).
    x = (grid_x + offsets[..., 0]) * (2 / max(1, width - 1)) - 1
    y = (grid_y + offsets[..., 1]) * (2 / max(1, height - 1)) - 1
    grid = torch.stack((x, y), dim=-1)[None]
    return F.grid_sample(values[None].float(), grid, mode="bilinear", padding_mode="border",
                         align_corners=True)[0].to(values.dtype)


#: A frame's checked flow to a neighbour, from this frame's pixels: ``(h, w, 4)`` float32, the flow's x
#: and y, 1 where it is reliable (else 0) and an unused 0 (one array, and four channels: carrying samples
#: it in one pass, on OpenCV's fast path); None across a cut.
Link = np.ndarray | None


class Linked(Protocol):
    """A frame of a window: its checked flows to the frame before (``links[-1]``) and after (``links[+1]``)."""

    links: dict[int, Link]


def link(motion: MotionEstimator, earlier_gray: np.ndarray, later_gray: np.ndarray,
         earlier: Linked, later: Linked) -> None:
    """Compare two consecutive frames both ways and store the checked flows on each; none across a cut."""
    compared = motion.compare(earlier_gray, later_gray, both_ways=True)
    later.links[-1] = None if compared.cut else _packed(compared.flow, compared.reliable)
    earlier.links[+1] = None if compared.cut else _packed(compared.forward, compared.forward_reliable)


def _packed(flow: np.ndarray, reliable: np.ndarray) -> np.ndarray:
    reliable = reliable.astype(np.float32)
    return cv2.merge([flow[..., 0], flow[..., 1], reliable, np.zeros_like(reliable)])


def carried(frames: Mapping[int, Linked], index: int, radius: int,
            size: tuple[int, int]) -> Iterator[tuple[int, Carry]]:
    """For each neighbour of frame ``index`` up to ``radius`` frames away on either side, in turn:
    ``(its index, how to carry it to frame index)``.

    Consecutive flows are chained: a pixel is followed frame by frame, and its trust is the product
    of every link's reliability where it passes (and zero once it leaves the frame), so an occluded
    or newly revealed pixel takes nothing from a neighbour. The chain stops at a cut, or where a
    frame is missing.
    """
    height, width = size
    grid_x, grid_y = _pixel_grid(height, width)
    for step in (-1, +1):
        map_x, map_y = grid_x, grid_y
        trust = np.ones((height, width), np.float32)
        current, here = frames[index], None
        for distance in range(1, radius + 1):
            checked = current.links.get(step)
            neighbour = frames.get(index + step * distance)
            if checked is None or neighbour is None:
                break
            # The flow and its reliability where the pixel is (the first link is where it starts: no sampling).
            moved = checked if here is None else here.sample(checked)
            trust = trust * moved[..., 2]
            map_x, map_y = map_x + moved[..., 0], map_y + moved[..., 1]
            trust *= (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
            here = Carry(map_x, map_y, trust)
            yield index + step * distance, here
            current = neighbour


@dataclass
class Carry:
    """Where each pixel of a frame was in a neighbour (``map_x``, ``map_y``, ``(h, w)`` float32) and how far
    that can be trusted (``trust``, 0 to 1)."""

    map_x: np.ndarray
    map_y: np.ndarray
    trust: np.ndarray

    def sample(self, values: np.ndarray) -> np.ndarray:
        """The neighbour's ``values`` ``(h, w[, C])`` float32 at those places: bilinear, edges repeated.

        One or four channels take OpenCV's vectorised path (four times faster than three at 256x256);
        the float maps are used as they are (fixed-point maps save nothing for float values).
        """
        if values.ndim == 3 and values.shape[2] > _MAX_CHANNELS:  # OpenCV's limit: a few at a time
            return np.concatenate([self.sample(np.ascontiguousarray(values[..., start:start + _MAX_CHANNELS]))
                                   for start in range(0, values.shape[2], _MAX_CHANNELS)], axis=-1)
        carried = cv2.remap(values, self.map_x, self.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return carried[..., None] if values.ndim == 3 and carried.ndim == 2 else carried


@functools.lru_cache(maxsize=4)
def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    grid_x.flags.writeable = grid_y.flags.writeable = False  # shared by every call
    return grid_x, grid_y
