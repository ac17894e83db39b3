"""How well a label→image generator paints: the standard SPADE test.

Synthesize images from held-out label maps, segment them with a real segmenter, and score
the segmentation against the label maps the images were painted from (mIoU and pixel
accuracy), next to the same scores for the real held-out images, which bound what the
segmenter can reach. The segmenter's classes are mapped into the generator's label space
by name (`chain.labels.conversion`), e.g. ADE20K → CamVid.

Scoring follows the usual convention (Cityscapes scripts, mmsegmentation): pixels whose
true class is the space's void class (``void``, ``unlabeled``) are ignored; a prediction of
the void class is simply wrong; mIoU averages IoU = TP / (TP + FP + FN) over the classes
that occur in the ground truth.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chain.datasets.frames import training_size
from chain.datasets.pairs import IMAGE_SUFFIXES, DatasetLayout, dataset_layout, iter_dataset
from chain.device import resolve_device
from chain.engine.batches import batches as frame_batches
from chain.engine.render import resize_frames
from chain.engine.summary import ClassShareTracker, FrameChangeTracker, StageTimer
from chain.errors import ChainError
from chain.labels import LabelSpace, conversion
from chain.media import Trim, open_source, save_png
from chain.media.ledger import absolute
from chain.media.sizes import Size
from chain.media.targets import Staged, check_target, discard, publish_all, remove_stale_staging, staging_path
from chain.signals import deferred_signals
from chain.stages.base import labels_to_numpy
from chain.stages.registry import build_stage
from chain.stages.spec import StageContext

IGNORED_CLASS_NAMES = ("void", "unlabeled", "ignore")


def ignored_ids(space: LabelSpace) -> frozenset[int]:
    """The ids scoring skips in ground truth: the space's void-like classes."""
    return frozenset(i for i, name in enumerate(space.names) if name in IGNORED_CLASS_NAMES)


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` int64 counts, rows = true class, columns = predicted class."""
    if truth.shape != predicted.shape:
        raise ValueError(f"truth {truth.shape} and prediction {predicted.shape} differ in shape")
    pairs = truth.astype(np.int64).ravel() * num_classes + predicted.astype(np.int64).ravel()
    return np.bincount(pairs, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


@dataclass(frozen=True)
class SegmentationScores:
    """mIoU and pixel accuracy, with the IoU of each class that occurs in the ground truth."""

    miou: float
    pixel_accuracy: float
    class_iou: dict[str, float]
    pixels: int

    @classmethod
    def from_confusion(cls, confusion: np.ndarray, space: LabelSpace) -> SegmentationScores:
        kept = np.array([i not in ignored_ids(space) for i in range(len(space))])
        counted = confusion[kept]  # ignored truth rows dropped; predictions of them stay wrong
        pixels = int(counted.sum())
        true_positive = np.diag(confusion)
        class_iou = {}
        for label_id in np.flatnonzero(kept):
            truth_pixels = confusion[label_id].sum()
            if truth_pixels == 0:
                continue
            false_positive = confusion[kept, label_id].sum() - true_positive[label_id]
            union = truth_pixels + false_positive
            class_iou[space.names[label_id]] = float(true_positive[label_id] / union)
        miou = float(np.mean(list(class_iou.values()))) if class_iou else math.nan
        accuracy = float(true_positive[kept].sum() / pixels) if pixels else math.nan
        return cls(miou, accuracy, class_iou, pixels)

    def to_dict(self) -> dict[str, Any]:
        return {"miou": self.miou, "pixel_accuracy": self.pixel_accuracy, "pixels": self.pixels,
                "class_iou": self.class_iou}


def evaluate_spade(
    weights: str | os.PathLike,
    data: str | os.PathLike,
    *,
    seg: str = "deeplab-mnv2:ade20k",
    seg_weights: str | None = None,
    seg_options: dict[str, str] | None = None,
    label_seg: str | None = None,
    label_seg_weights: str | None = None,
    split: str = "val",
    size: str | None = None,
    max_items: int | None = None,
    batch: int = 4,
    trim: Trim = Trim(),
    device: str | None = "auto",
    samples: str | os.PathLike | None = None,
    report: str | os.PathLike | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> dict[str, Any]:
    """Score a SPADE generator on held-out labels; returns (and optionally writes) the report.

    ``data`` is a dataset folder (CamVid or NVlabs COCO-Stuff layout, `chain.datasets.pairs`)
    whose ``split`` gives the label maps, or a video whose frames ``label_seg`` (default:
    ``seg``) labels. ``seg`` judges the synthesized and the real images.
    """
    started = time.perf_counter()
    written = _check_written(samples, report, inputs=(Path(weights), Path(data)))
    resolved = resolve_device(device)
    # 1. The generator (as the `spade` stage runs it) and the judge.
    synthesizer = build_stage("synthesizer", "spade", StageContext(weights=str(weights), device=resolved))
    space = synthesizer.label_space
    generator_size = synthesizer.generator.config.output_size
    judge = build_stage("segmenter", seg, StageContext(weights=seg_weights, device=resolved,
                                                       options=seg_options or {}))
    judge_to_space = conversion(judge.label_space, space)
    working = _working_size(size, generator_size)

    # 2. Held-out (label map, real image) batches in the generator's space.
    layout = _dataset_layout(Path(data), split) if label_seg is None else None
    is_dataset = layout is not None
    if layout is not None:
        batches = _dataset_batches(layout, working, space, max_items, batch)
    else:
        labeller = judge if label_seg is None or label_seg == seg else build_stage(
            "segmenter", label_seg, StageContext(weights=label_seg_weights, device=resolved))
        batches = _video_batches(Path(data), working, labeller, space, trim, max_items, batch)

    # 3. Synthesize, segment both, accumulate confusions (and flicker for videos).
    confusions = {kind: np.zeros((len(space), len(space)), np.int64) for kind in ("synthesized", "real")}
    image_changes = FrameChangeTracker()
    label_changes = {"synthesized": ClassShareTracker(space, None), "real": ClassShareTracker(space, None)}
    sample_rows: list[np.ndarray] = []
    items = 0
    judge.reset()
    synthesizer.reset()
    for truth, real in batches:
        painted = synthesizer.synthesize(labels=truth, frames=real)
        painted = resize_frames(painted, working.height, working.width)
        indices = np.arange(items, items + len(truth))
        predictions = {kind: labels_to_numpy(judge_to_space.apply(judge.segment(images, indices=indices)), space)
                       for kind, images in (("synthesized", painted), ("real", real))}
        for kind, predicted in predictions.items():
            confusions[kind] += confusion_matrix(truth, predicted, len(space))
        if not is_dataset:
            image_changes.add_batch(painted, real)
            for kind, predicted in predictions.items():
                label_changes[kind].add_batch(indices, np.zeros(len(indices)), predicted)
        if samples is not None and len(sample_rows) < 6:
            for i in range(min(len(truth), 6 - len(sample_rows))):
                sample_rows.append(np.concatenate([space.colorize(truth[i]), real[i], painted[i],
                                                   space.colorize(predictions["synthesized"][i])], axis=1))
        items += len(truth)
        if progress is not None:
            progress(items, max_items)
    if items == 0:
        raise ChainError(f"no held-out items found in {data}")

    # 4. Scores, flicker and the report.
    result: dict[str, Any] = {
        "generator": str(weights), "label_space": space.name, "data": str(data),
        "split": split if is_dataset else None, "items": items, "size": str(working),
        "segmenter": seg, "segmenter_classes_unmapped": list(judge_to_space.unmapped),
        "synthesized": SegmentationScores.from_confusion(confusions["synthesized"], space).to_dict(),
        "real": SegmentationScores.from_confusion(confusions["real"], space).to_dict(),
        "seconds": round(time.perf_counter() - started, 2),
    }
    if not is_dataset:
        result["flicker"] = {
            "synthesized_mean_abs_diff": image_changes.output_change,
            "real_mean_abs_diff": image_changes.input_change,
            "relative": image_changes.flicker,
            "label_flicker_synthesized": label_changes["synthesized"].mean_flicker,
            "label_flicker_real": label_changes["real"].mean_flicker,
        }
    if samples is not None and sample_rows:
        result["samples"] = str(samples)
    else:
        written.pop("samples", None)
    _publish(written, sample_rows, result)
    return result


def _working_size(size: str | None, generator_size: tuple[int, int]) -> Size:
    if size is None:
        return Size(generator_size[1], generator_size[0])
    return training_size(size)


def _dataset_layout(root: Path, split: str) -> DatasetLayout | None:
    """``root``'s `DatasetLayout` for ``split``; None for a video or a folder of frames."""
    if not root.is_dir():
        return None
    try:
        return dataset_layout(root, split)
    except ChainError:
        if any(path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") for path in root.iterdir()):
            return None  # a folder of frames: labelled by the judge, like a video
        raise  # a dataset folder without this split: say what was expected


def _dataset_batches(layout: DatasetLayout, size: Size, space: LabelSpace, max_items: int | None,
                     batch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    to_space = conversion(layout.label_space, space)
    labels, images = [], []
    for image, label in iter_dataset(layout, size, limit=max_items):
        labels.append(to_space.apply(label))
        images.append(image)
        if len(labels) == batch:
            yield np.stack(labels), np.stack(images)
            labels, images = [], []
    if labels:
        yield np.stack(labels), np.stack(images)


def _video_batches(path: Path, size: Size, labeller: Any, space: LabelSpace, trim: Trim, max_items: int | None,
                   batch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    to_space = conversion(labeller.label_space, space)
    if max_items is not None:
        trim = Trim(start=trim.start, duration=trim.duration,
                    max_frames=min(max_items, trim.max_frames or max_items))
    labeller.reset()
    with open_source(path, trim=trim, size=size) as source:
        for chunk in frame_batches(source, batch, StageTimer()):
            labels = labeller.segment(chunk.frames, indices=chunk.indices)
            yield labels_to_numpy(to_space.apply(labels), space), chunk.frames


def _check_written(samples: str | os.PathLike | None, report: str | os.PathLike | None, *,
                   inputs: tuple[Path, ...]) -> dict[str, Staged]:
    """Refuse, before any work, a --samples or --report path chain may not write (or one of the
    ``inputs``, or inside one); their staging names."""
    written = {}
    for name, path, kind in (("samples", samples, "image"), ("report", report, "summary")):
        if path is not None:
            for source in inputs:
                if absolute(Path(path)) == absolute(source) or absolute(source) in absolute(Path(path)).parents:
                    raise ChainError(f"the --{name} file {path} would overwrite or sit inside the input {source}; "
                                     "give another path")
            check_target(Path(path), kind, option=f"--{name} file")
            written[name] = Staged(staging_path(Path(path)), Path(path), kind, f"--{name} file")
    if len(written) == 2 and absolute(written["samples"].target) == absolute(written["report"].target):
        raise ChainError("--samples and --report name the same file; give each its own")
    return written


def _publish(written: dict[str, Staged], sample_rows: list[np.ndarray], result: dict[str, Any]) -> None:
    """Write the sample grid and the report under their staging names, then publish both or neither."""
    try:
        for item in written.values():
            item.target.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_staging(item.target)
        if "samples" in written:
            save_png(np.concatenate(sample_rows, axis=0), written["samples"].staging)
        if "report" in written:
            written["report"].staging.write_text(json.dumps(result, indent=2) + "\n")
        with deferred_signals():
            publish_all(list(written.values()))
    finally:
        for item in written.values():
            discard(item.staging)
