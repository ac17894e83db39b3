"""What each output of a run receives for a batch: the painting, masks, overlay, compare, label maps."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import torch

from chain.engine.render import MaskRenderer, side_by_side
from chain.labels import LabelSpace
from chain.stages.base import labels_to_numpy


class Views:
    """Renders a batch's outputs. Labels come to the host here, once, for the outputs that draw or
    save them.

    Args:
        source_space: the segmenter's labels (masks, saved label maps).
        target_space: the synthesizer's, after ``--remap`` (the overlay and the compare's label
            panel: what will be painted); None without labels.
        notes: class id → a note for those legends (``"was person"``).
        painted_labels: the synthesizer paints the label colours (``colorize``): the compare shows
            that panel once, not twice.
        target_ids: the ids the target labels can hold (the conversion and remap's values), which
            size the legends; None: any id of the target space.
    """

    def __init__(self, source_space: LabelSpace | None, target_space: LabelSpace | None, *,
                 notes: dict[int, str] | None = None, painted_labels: bool = False,
                 target_ids: np.ndarray | None = None) -> None:
        self.source_space = source_space
        self.target_space = target_space
        self.painted_labels = painted_labels
        self.compare_renderer = (MaskRenderer(target_space, notes=notes, possible=target_ids)
                                 if target_space is not None else None)
        self.overlay_renderer = (MaskRenderer(target_space, notes=notes, possible=target_ids)
                                 if target_space is not None else None)

    def __call__(self, frames: np.ndarray, labels: torch.Tensor | None, target: torch.Tensor | None,
                 synthesized: np.ndarray | None, *, wanted: Collection[str]) -> dict[str, list[np.ndarray]]:
        """The images of each output in ``wanted`` (video, masks, overlay, compare, labels) for ``frames``."""
        views: dict[str, list[np.ndarray]] = {}
        if "video" in wanted:
            views["video"] = list(synthesized)
        host_labels = labels_to_numpy(labels, self.source_space) if {"masks", "labels"} & set(wanted) else None
        if "masks" in wanted:
            renderer = MaskRenderer(self.source_space)
            views["masks"] = [renderer(frame_labels) for frame_labels in host_labels]
        if "overlay" in wanted:  # the colours that will be painted, over the input, with their legend
            host_target = labels_to_numpy(target, self.target_space)
            views["overlay"] = [self.overlay_renderer(frame_labels, under=frame)
                                for frame, frame_labels in zip(frames, host_target)]
        if "compare" in wanted:
            views["compare"] = self._compare(frames, target, synthesized)
        if "labels" in wanted:
            views["labels"] = list(host_labels)
        return views

    def _compare(self, frames: np.ndarray, target: torch.Tensor | None,
                 synthesized: np.ndarray | None) -> list[np.ndarray]:
        host_target = labels_to_numpy(target, self.target_space) if target is not None else None
        painted_labels = self.painted_labels and target is not None
        images = []
        for i, frame in enumerate(frames):
            panels, captions = [frame], ["input"]
            if host_target is not None:
                panels.append(self.compare_renderer(host_target[i]))
                captions.append(f"labels ({self.target_space.name})" + (" = synthesized" if painted_labels else ""))
            if synthesized is not None and not painted_labels:
                panels.append(synthesized[i])
                captions.append("synthesized")
            images.append(side_by_side(panels, captions))
        return images
