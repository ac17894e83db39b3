"""One frame through the chain, for trying swaps by eye: input, masks, remapped labels, painting.

Stages are built once per name, weights and options, and each frame's segmentation is kept,
so a new remap rule or synthesizer option repaints without segmenting again.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chain.config import NO_STAGE, parse_options
from chain.device import resolve_device
from chain.engine.pipeline import Chain
from chain.engine.render import MaskRenderer, class_shares, resize_frames
from chain.errors import ChainError
from chain.media import SourceInfo, Trim, open_source
from chain.stages import StageContext, build_stage
from chain.stages.base import Segmenter, Synthesizer, labels_to_numpy
from chain.stages.spec import StageKind
from chain.ui.settings import Settings

_KEPT_SEGMENTATIONS = 64  # label maps are small (H × W bytes): keep the frames one scrubs between
_KEPT_STAGES = 2          # networks are large: the current one, and the one just switched from
_KEPT_FRAMES = 8          # decoded frames (a 720p frame is 2.7 MB): a remap does not decode again


@dataclass
class FramePreview:
    """The page's pictures for one frame, and what it took to make them."""

    index: int
    frame: np.ndarray                    # the input at the working size
    masks: np.ndarray | None             # segmenter labels with names and a legend
    labels: np.ndarray | None            # converted + remapped labels, the synthesizer's space, with a legend
    painting: np.ndarray | None          # the synthesizer's output at the working size
    classes: list[tuple[str, float]]     # classes found, in the synthesizer's space before remapping, by share
    source_space: str | None
    target_space: str | None
    segmented: bool                      # False when the segmentation came from the cache
    seconds: dict[str, float] = field(default_factory=dict)
    key: tuple = ()                      # the frame and segmenter: equal keys, equal input and masks


def read_info(source: str | Path, size: str | None = None) -> SourceInfo:
    """What `chain info` says about ``source`` (at the working ``size``)."""
    with open_source(source, size=size) as frames:
        return frames.info


def read_frame(source: str | Path, index: int, size: str | None = None) -> np.ndarray:
    """Frame ``index`` of ``source`` at the working ``size``: the frame at time index / fps, as ``--start`` seeks
    (an animation's frames keep their own uneven times: its ``index``-th frame, counted)."""
    info = read_info(source, size)
    if info.kind == "animation" and info.exact_count:
        with open_source(source, trim=Trim(max_frames=index + 1), size=size) as frames:
            for frame in frames:
                if frame.index == index:
                    return frame.rgb
        raise ChainError(f"{source} has no frame {index}")
    with open_source(source, trim=Trim(start=index / float(info.fps), max_frames=1), size=size) as frames:
        for frame in frames:
            return frame.rgb
    raise ChainError(f"{source} has no frame {index}")


class _LRU(OrderedDict):
    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def put(self, key: object, value: object) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.capacity:
            self.popitem(last=False)

    def take(self, key: object) -> object | None:
        if key in self:
            self.move_to_end(key)
            return self[key]
        return None


class Previewer:
    """Builds previews, keeping stages and segmentations between calls (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._segmenters = _LRU(_KEPT_STAGES)
        self._synthesizers = _LRU(_KEPT_STAGES)
        self._labels = _LRU(_KEPT_SEGMENTATIONS)
        self._frames = _LRU(_KEPT_FRAMES)

    def preview(self, settings: Settings, index: int) -> FramePreview:
        """Run ``settings``' chain on frame ``index``; only the painting is redone when only remap/synth changed."""
        with self._lock:
            return self._preview(settings, index)

    def _preview(self, settings: Settings, index: int) -> FramePreview:
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        path = Path(settings.source)
        if not path.exists():
            raise ChainError(f"input not found: {path}")
        frame_key = (str(path.resolve()), path.stat().st_mtime_ns, index, settings.size)
        frame = self._frames.take(frame_key)
        if frame is None:
            frame = read_frame(path, index, settings.size)
            seconds["decode"] = time.perf_counter() - started
            self._frames.put(frame_key, frame)
        segmenter = self._segmenter(settings)
        synthesizer = self._synthesizer(settings, segmenter)
        chain = Chain(segmenter=segmenter, synthesizer=synthesizer, remap=settings.remap,
                      background=settings.background)  # converts and remaps as a run does
        labels = painted_labels = None
        segmented = False
        if segmenter is not None:
            # Labels at the frame size (the masks, the label panel, the class shares) and, as a run
            # makes them, at the synthesizer's grid for its painting (`Chain.painted_label_size`):
            # labels sampled down from the frame size would paint another picture than the run's.
            frame_size = frame.shape[:2]
            grid = chain.painted_label_size(*frame_size)
            key = (*frame_key, self._seg_key(settings))
            maps: dict[tuple[int, int], np.ndarray] = dict(self._labels.take(key) or {})
            missing = [size for size in dict.fromkeys([frame_size, grid]) if size not in maps]
            if missing:
                started = time.perf_counter()
                segmenter.reset()
                found = segmenter.segment_sizes(frame[None], indices=np.array([index]), sizes=missing)
                maps.update({size: labels_to_numpy(size_labels[0], segmenter.label_space)
                             for size, size_labels in zip(missing, found)})
                seconds["segment"] = time.perf_counter() - started
                self._labels.put(key, maps)
                segmented = True
            labels, painted_labels = maps[frame_size], maps[grid]
        started = time.perf_counter()
        masks = target_view = painting = None
        classes: list[tuple[str, float]] = []
        target = None
        if labels is not None:
            masks = MaskRenderer(chain.source_space)(labels)
            converted = chain.conversion.apply(labels)
            shares = class_shares(converted, chain.target_space)
            classes = [(chain.target_space.names[i], float(shares[i])) for i in np.argsort(-shares) if shares[i] > 0]
            target = chain.remapped(converted)
            legend = chain.views.compare_renderer  # its notes ("bear (was bird)") and the ids it can show
            target_view = MaskRenderer(chain.target_space, notes=legend.notes, possible=legend.possible)(target)
        if synthesizer is not None:
            synthesizer.reset()
            given = None
            if synthesizer.consumes == "labels":
                given = (target if painted_labels is labels else chain.target_labels(painted_labels))[None]
            painted = synthesizer.synthesize(labels=given, frames=frame[None])
            painting = resize_frames(painted, *frame.shape[:2])[0]
        seconds["paint"] = time.perf_counter() - started
        return FramePreview(index, frame, masks, target_view, painting, classes,
                            chain.source_space.name if chain.source_space else None,
                            chain.target_space.name if chain.target_space else None, segmented, seconds,
                            key=(*frame_key, self._seg_key(settings)))

    @staticmethod
    def _seg_key(settings: Settings) -> tuple:
        return settings.seg, settings.seg_weights, settings.seg_options, settings.device

    def _segmenter(self, settings: Settings) -> Segmenter | None:
        if not settings.seg or settings.seg == NO_STAGE:
            return None
        return self._cached(self._segmenters, self._seg_key(settings), "segmenter", settings.seg,
                            settings.seg_weights, settings.seg_options, settings.device)

    def _synthesizer(self, settings: Settings, segmenter: Segmenter | None) -> Synthesizer | None:
        if not settings.synth or settings.synth == NO_STAGE:
            if segmenter is None:
                raise ChainError("--seg none and --synth none leave nothing to run")
            return None
        # A synthesizer without a space of its own adopts the segmenter's: one per segmenter space.
        space = segmenter.label_space.name if segmenter is not None else None
        key = (settings.synth, settings.synth_weights, settings.synth_options, settings.device, space)
        return self._cached(self._synthesizers, key, "synthesizer", settings.synth, settings.synth_weights,
                            settings.synth_options, settings.device)

    @staticmethod
    def _cached(cache: _LRU, key: tuple, kind: StageKind, name: str, weights: str | None, options: tuple[str, ...],
                device: str) -> Segmenter | Synthesizer:
        """The stage built for ``key`` before, or a new one (kept for the next preview)."""
        stage = cache.take(key)
        if stage is None:
            stage = build_stage(kind, name, StageContext(weights, resolve_device(device), parse_options(options)))
            cache.put(key, stage)
        return stage
