"""Decoded frames in batches, and the shard of a run a batch may belong to (`chain.cluster`)."""

from __future__ import annotations

import dataclasses
import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from chain.engine.summary import ClassShareTracker, FrameChangeTracker, StageTimer
from chain.media import Frame, FrameSource
from chain.steadiness import SteadinessTracker


@dataclass(frozen=True)
class Batch:
    """Frames moving through the chain together."""

    indices: np.ndarray
    times: np.ndarray
    frames: np.ndarray  # (B, H, W, 3) uint8
    #: The frames right after these, for a segmenter that looks ahead (`looking_ahead`); else None.
    ahead: Batch | None = None


@dataclass
class Part:
    """One shard of a longer run (`chain.cluster`): the frames from the run's frame ``first`` on.

    The source is opened at a keyframe (`Trim.seek_frame`) at or before ``first - warmup``; frames
    before ``first - warmup`` are decoded and dropped, the ``warmup`` frames before ``first`` go
    through the segmenter only (``--smooth`` state), and ``anchor``, the run's first frame, is
    painted unwritten first where the synthesizer anchors on it. Outputs carry no audio: the
    driver muxes it once over the joined parts. With a ``margin``, the frames within it on either
    side are painted but not written (``--deflicker`` steadies a painting with its neighbours'). The run leaves its trackers in ``labels`` and
    ``changes`` so that summaries join across boundaries.
    """

    first: int
    warmup: int = 0
    #: The run frame after the shard's last: frames from here on are only looked ahead at (None: to the end).
    stop: int | None = None
    #: ``--deflicker``'s reach: this many frames before ``first`` (the last of the warm-up) and after
    #: ``stop`` are painted, unwritten, for the paintings written next to them.
    margin: int = 0
    anchor: np.ndarray | None = None  # (H, W, 3) uint8
    labels: ClassShareTracker | None = None
    changes: FrameChangeTracker | None = None
    steadiness: SteadinessTracker | None = None

    @property
    def painted_from(self) -> int:
        """The first frame painted: earlier warm-up frames go through the segmenter only."""
        return max(0, self.first - self.margin)

    @property
    def painted_until(self) -> int | None:
        """The frame after the last painted (None: to the end); later frames are only looked ahead at."""
        return None if self.stop is None else self.stop + self.margin

    def written(self, index: int) -> bool:
        """Whether run frame ``index`` is this part's to write."""
        return self.first <= index and (self.stop is None or index < self.stop)


def batches(frames: FrameSource, batch_size: int, timer: StageTimer, part: Part | None = None) -> Iterator[Batch]:
    """Batches of frames; for a `Part`, without the frames before its warm-up, and none straddling
    its edges: where painting starts and ends, and where writing starts and ends."""
    iterator = iter(frames)
    if part is not None:
        iterator = itertools.dropwhile(lambda frame: frame.index < part.first - part.warmup, iterator)
    pending: list[Frame] = []
    while True:
        with timer("decode"):
            chunk = pending + list(itertools.islice(iterator, batch_size - len(pending)))
        pending = []
        edges = (part.painted_from, part.first, part.stop, part.painted_until) if part is not None else ()
        for edge in edges:
            if edge is not None and chunk and chunk[0].index < edge <= chunk[-1].index:
                split = next(i for i, frame in enumerate(chunk) if frame.index >= edge)
                chunk, pending = chunk[:split], chunk[split:] + pending
        if not chunk:
            return
        yield Batch(indices=np.array([f.index for f in chunk]), times=np.array([f.time for f in chunk]),
                    frames=np.stack([f.rgb for f in chunk]))


def looking_ahead(batches: Iterator[Batch], count: int, stop: int | None = None) -> Iterator[Batch]:
    """``batches``, each with the ``count`` frames after it as its ``ahead`` (fewer at the end).

    Frames from run frame ``stop`` on (a shard reads past its end to look ahead) are only ever
    ``ahead``, never a batch. Holds the batches that ``count`` frames span, not the video.
    """
    if count <= 0:
        yield from batches
        return
    waiting: deque[Batch] = deque()
    for batch in batches:
        waiting.append(batch)
        while len(waiting) > 1 and sum(len(later.indices) for later in itertools.islice(waiting, 1, None)) >= count:
            yield from _with_ahead(waiting, count, stop)
    while waiting:
        yield from _with_ahead(waiting, count, stop)


def _with_ahead(waiting: deque[Batch], count: int, stop: int | None) -> Iterator[Batch]:
    batch = waiting.popleft()
    if stop is not None and batch.indices[0] >= stop:
        return
    later = list(waiting)
    ahead = None
    if later:
        ahead = Batch(indices=np.concatenate([b.indices for b in later])[:count],
                      times=np.concatenate([b.times for b in later])[:count],
                      frames=np.concatenate([b.frames for b in later])[:count])
    yield dataclasses.replace(batch, ahead=ahead)

