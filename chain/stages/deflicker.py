"""``--deflicker[:STRENGTH]``: blind temporal consistency for whatever the synthesizer painted.

A synthesizer paints each frame afresh, so even a still scene shimmers: colours drift, texture
crawls, a face's shading pulses. Like Bonneel et al. 2015 ("Blind video temporal consistency"),
this pass knows nothing of the synthesizer: it is guided by the motion of the *input* video,
which is steady where the painting should be.

For each painted frame ``P`` it builds a target ``T``: ``P`` averaged with the paintings of up to
``radius`` frames before and after it, each carried to it along the input's optical flow
(`chain.stages.flow.carried`) and weighted by how far that flow can be trusted (so that an occluded
or newly revealed pixel, and everything across a scene cut, keeps the frame's own painting: no
ghost) and by ``decay`` to the power of its distance in frames. The result is ``P + strength * (T - P)``.

Why these weights: the output closest to the painting for a given steadiness (least squares of
both, along a pixel's path) is the painting filtered by a two-sided exponential along the motion;
`benchmarks/deflicker_frontier.py` solves that exactly over a whole clip, and this window comes
within about 2 dB of it. What was measured and left out (README "Steady films"): Bonneel et al.'s
gradient-domain step (taking only the coarse part of ``T - P``, keeping the frame's own fine
detail) changed nothing on a VAE-GAN's reconstructions, whose flicker is fine-grained texture;
weights that fall with the colour difference gave a worse trade.

Unlike Bonneel et al.'s recursive filter, a frame's result depends only on the ``2 * radius + 1``
frames around it: it looks ahead, as a file allows, so a moving edge is pulled as much forwards
as backwards, and batches and shards give identical frames (a shard paints ``radius`` frames on
either side of its part, unwritten). The learned methods (Lai et al. 2018, Lei et al. 2020) need
downloaded weights or per-video training: out of reach of a CPU at film scale.

The work is done at a working size (short side at most 256, as `chain.steadiness` measures); the
correction is scaled up to the painting's size, where it is smooth enough for a bilinear scale-up.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import cv2
import numpy as np

from chain.bounds import DEFAULT_DEFLICKER
from chain.stages.flow import Link, MotionEstimator, carried, gray_at, link, working_size

#: How fast a neighbour's weight falls with its distance in frames (measured on a VAE-GAN's
#: reconstructions, benchmarks/deflicker_frontier.py; a bare ``--deflicker`` is `chain.bounds.DEFAULT_DEFLICKER`).
DEFAULT_DECAY = 0.9
Item = TypeVar("Item")


@dataclass(frozen=True)
class DeflickerSettings:
    """A parsed ``--deflicker``: how far towards the steady target, and how many frames each way."""

    strength: float = DEFAULT_DEFLICKER[0]
    radius: int = DEFAULT_DEFLICKER[1]
    #: A neighbour d frames away weighs ``decay ** d`` (times the flow's trust): the two-sided
    #: exponential that the least-squares trade of steadiness against change has along a path.
    decay: float = DEFAULT_DECAY

    def __str__(self) -> str:
        return f"deflicker {self.strength:g} (±{self.radius} frames along the motion)"


@dataclass
class _Painted:
    """A frame the deflicker holds, at working size: its gray input, its painting, its flows."""

    gray: np.ndarray
    painting: np.ndarray  # (h, w, 4) float32: RGB in 0..1, then 1 (the weight's count when summed; four channels: fast to carry)
    links: dict[int, Link] = field(default_factory=dict)


class Deflicker(Generic[Item]):
    """Steadies a stream of paintings, ``radius`` frames behind it.

    Feed each batch with `push` (its input frames, paintings and an item of the caller's, such as
    the batch itself); it answers with the items whose ``radius`` following frames it has now seen,
    each with its steadied paintings. `drain` answers the rest at the end. Only the frames a
    result can still need are kept: memory does not grow with the video.
    """

    def __init__(self, settings: DeflickerSettings) -> None:
        self.settings = settings
        self.radius = settings.radius
        self._motion = MotionEstimator()
        self.reset()

    def reset(self) -> None:
        self._held: dict[int, _Painted] = {}
        self._waiting: deque[tuple[np.ndarray, np.ndarray, Item]] = deque()
        self._size: tuple[int, int] | None = None
        self._newest = -1

    def push(self, indices: np.ndarray, frames: np.ndarray, paintings: np.ndarray,
             item: Item) -> list[tuple[Item, np.ndarray]]:
        """Take run frames ``indices``: inputs ``(B, H, W, 3)`` and paintings ``(B, H', W', 3)`` uint8."""
        if self._size is None:
            self._size = working_size(*paintings.shape[1:3])
        for index, frame, painting in zip(indices, frames, paintings):
            self._hold(int(index), frame, painting)
        self._waiting.append((indices, paintings, item))
        ready = []
        while self._waiting and int(self._waiting[0][0][-1]) + self.radius <= self._newest:
            ready.append(self._answer(*self._waiting.popleft()))
        return ready

    def drain(self) -> list[tuple[Item, np.ndarray]]:
        """The items still waiting (the end of the run: they have all the frames there are)."""
        ready = [self._answer(*self._waiting.popleft()) for _ in range(len(self._waiting))]
        self.reset()
        return ready

    def _hold(self, index: int, frame: np.ndarray, painting: np.ndarray) -> None:
        size = self._size
        if painting.shape[:2] != size:
            painting = cv2.resize(np.ascontiguousarray(painting), (size[1], size[0]), interpolation=cv2.INTER_AREA)
        painting = painting.astype(np.float32) / 255
        held = _Painted(gray_at(frame, size), cv2.merge([painting, np.ones(size, np.float32)]))
        self._held[index] = held
        before = self._held.get(index - 1)
        if before is not None:
            link(self._motion, before.gray, held.gray, before, held)
        self._newest = max(self._newest, index)

    def _answer(self, indices: np.ndarray, paintings: np.ndarray, item: Item) -> tuple[Item, np.ndarray]:
        steadied = np.stack([self._steadied(int(index), painting) for index, painting in zip(indices, paintings)])
        oldest = int(indices[-1]) + 1 - self.radius  # what the frames still waiting can reach back to
        for index in [i for i in self._held if i < oldest]:
            del self._held[index]
        return item, steadied

    def _steadied(self, index: int, painting: np.ndarray) -> np.ndarray:
        correction = self.correction(index)
        if correction.shape[:2] != painting.shape[:2]:  # smooth by construction: a bilinear scale-up is enough
            correction = cv2.resize(correction, (painting.shape[1], painting.shape[0]), interpolation=cv2.INTER_LINEAR)
        return np.clip(painting + correction * 255 + 0.5, 0, 255).astype(np.uint8)

    def correction(self, index: int) -> np.ndarray:
        """What moves frame ``index``'s painting (0..1, working size, ``(h, w, 3)``) towards its steady target."""
        centre = self._held[index]
        total = centre.painting.copy()  # its fourth channel sums the weights
        for neighbour, carry in carried(self._held, index, self.radius, self._size):
            weight = carry.trust * self.settings.decay ** abs(neighbour - index)
            cv2.accumulateProduct(carry.sample(self._held[neighbour].painting), cv2.merge([weight] * 4), total)
        target = total[..., :3] / total[..., 3:]
        return self.settings.strength * (target - centre.painting[..., :3])


def steadied(deflicker: Deflicker[Item], stream: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, Item]]
             ) -> Iterator[tuple[Item, np.ndarray]]:
    """``(indices, frames, paintings, item)`` in order → ``(item, steadied paintings)`` in order, all of them."""
    for indices, frames, paintings, item in stream:
        yield from deflicker.push(indices, frames, paintings, item)
    yield from deflicker.drain()
