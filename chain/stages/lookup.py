"""Stages that look labels up instead of computing them: the ``palette`` segmenter (nearest palette
colour), the ``labels`` segmenter (label maps saved by ``--save-labels``) and the ``colorize``
synthesizer (each label's palette colour)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from chain.errors import ChainError, first_line
from chain.labels import LabelSpace, get_label_space
from chain.labels.resize import resize_labels
from chain.labels.saved import LABELS_META_FILE, space_from_meta
from chain.media.images import open_image
from chain.stages.base import Segmenter, Synthesizer, as_label_tensor
from chain.stages.spec import StageContext
from chain.weights.folder import read_json

_COLOURS = 1 << 24  # every 8-bit RGB colour, packed as 0xRRGGBB
_UNKNOWN = np.iinfo(np.uint16).max  # a colour whose nearest class is not looked up yet
# (colours × palette) float64 distances a chunk at a time: 4096 x 183 classes is 6 MB, which stays in
# the cache (4x faster than 1 << 17 colours a chunk, measured on 162,754 colours).
_COLOURS_PER_CHUNK = 1 << 12


class PaletteSegmenter(Segmenter):
    """Each pixel takes the class whose palette colour is nearest (cartoons, 8-bit games, painted maps).

    Frames painted from the space's own palette map back to exactly their labels, since the
    built-in palettes have one colour per class.

    A lookup, not a per-pixel search: pixels are packed to 24-bit colours, and the nearest class
    is computed once per distinct colour not seen before, into a table kept across frames (32 MB,
    made on first use), which every pixel then indexes. A 1280x720 frame of Big Buck Bunny has
    about 160,000 distinct colours among its 921,600 pixels, and the next frames mostly the same
    ones (benchmarks/palette_speed.py). The lookup runs on the host, where the frames are.
    """

    def __init__(self, label_space: LabelSpace, device: torch.device = torch.device("cpu")) -> None:
        if len(label_space) >= _UNKNOWN:
            raise ChainError(f"the palette segmenter takes spaces of up to {_UNKNOWN - 1} classes, "
                             f"not {label_space.name} ({len(label_space)})")
        self.label_space = label_space
        self.device = device
        self.description = f"nearest {label_space.name} palette colour"
        # float64 holds every squared distance between 8-bit colours exactly, so ties (a colour
        # halfway between two class colours) always go to the lower id (argmin's first minimum).
        palette = label_space.palette.astype(np.float64)
        self._palette_norms = (palette ** 2).sum(axis=1)
        self._minus_twice_palette = -2 * palette.T
        self._table: np.ndarray | None = None  # packed colour -> class id, _UNKNOWN until looked up

    def segment(self, frames: np.ndarray, *, indices: np.ndarray,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        # A pixel's label depends on that pixel alone: sampling the frame first is the same as
        # sampling its labels, and cheaper.
        if size is not None:
            frames = resize_labels(frames, size)
        rgb = frames.reshape(-1, 3).astype(np.uint32)
        colours = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
        if self._table is None:
            self._table = np.full(_COLOURS, _UNKNOWN, dtype=np.uint16)
        labels = self._table[colours]
        unknown = labels == _UNKNOWN
        if unknown.any():
            new, inverse = np.unique(colours[unknown], return_inverse=True)
            self._table[new] = nearest = self._nearest(new)
            labels[unknown] = nearest[inverse]
        return torch.from_numpy(labels.astype(np.int64).reshape(frames.shape[:3])).to(self.device)

    def segment_sizes(self, frames: np.ndarray, *, indices: np.ndarray,
                      sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
        # A pixel's label is its own, so sampling the frame-size labels to a size gives exactly what
        # labelling the frame sampled to that size would: look up once at the frame size when it
        # is asked for. (Sampling labels of one resized size to another would not always agree.)
        frame_size = tuple(frames.shape[1:3])
        if frame_size not in {tuple(size) for size in sizes}:
            return super().segment_sizes(frames, indices=indices, sizes=sizes)
        labels = self.segment(frames, indices=indices, size=frame_size)
        return [resize_labels(labels, tuple(size)) for size in sizes]

    def _nearest(self, colours: np.ndarray) -> np.ndarray:
        """The nearest palette class of each packed colour (ties to the lower id)."""
        rgb = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], axis=1).astype(np.float64)
        nearest = np.empty(len(colours), dtype=np.uint16)
        for start in range(0, len(colours), _COLOURS_PER_CHUNK):
            chunk = rgb[start:start + _COLOURS_PER_CHUNK]
            # |p - c|² without |p|², which is the same for every class of a colour.
            distances = chunk @ self._minus_twice_palette
            distances += self._palette_norms
            nearest[start:start + _COLOURS_PER_CHUNK] = distances.argmin(axis=1)
        return nearest


class SavedLabelsSegmenter(Segmenter):
    """Reads label maps written earlier by ``--save-labels DIR``, by output frame index.

    Every map is checked: one channel of 8- or 16-bit ids, each an id of the folder's label space
    (a value past the space would otherwise be painted as some other class, or wrap modulo 256).
    """

    def __init__(self, folder: Path) -> None:
        meta_path = folder / LABELS_META_FILE
        if not meta_path.is_file():
            raise ChainError(f"{folder} has no {LABELS_META_FILE}; point --seg labels:DIR at a folder "
                             "written by --save-labels")
        meta = read_json(meta_path)
        name = meta.get("label_space") if isinstance(meta, dict) else None
        if not isinstance(name, str):
            raise ChainError(f'{meta_path} names no label space (--save-labels writes {{"label_space": "voc"}} '
                             "or another space)")
        try:
            self.label_space = space_from_meta(meta)
        except ChainError as error:
            raise ChainError(f"{meta_path}: {error}") from None
        except (KeyError, TypeError, ValueError) as error:
            raise ChainError(f"{meta_path} describes no usable label space ({first_line(error)})") from None
        self.folder = folder
        self.description = f"label maps from {folder}"

    def segment(self, frames: np.ndarray, *, indices: np.ndarray,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        return self.segment_sizes(frames, indices=indices, sizes=[size or frames.shape[1:3]])[0]

    def segment_sizes(self, frames: np.ndarray, *, indices: np.ndarray,
                      sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
        saved = []
        for index in indices:  # each map read once, whatever the sizes
            path = self.folder / f"{int(index):06d}.png"
            if not path.is_file():
                raise ChainError(f"no saved label map for frame {int(index)} ({path}); the folder holds fewer "
                                 "frames than the input — use --max-frames or the same --start")
            saved.append(self._read(path))
        # Maps saved at another size are sampled straight to each size wanted (one nearest step).
        return [torch.from_numpy(np.stack([resize_labels(labels[None], tuple(size))[0] for labels in saved])
                                 .astype(np.int64)) for size in sizes]

    def _read(self, path: Path) -> np.ndarray:
        try:
            with open_image(path) as image:
                labels = np.asarray(image)
                self._check(path, labels, image.mode)
        except (OSError, SyntaxError, ValueError) as error:  # PIL's errors for damaged or foreign files
            raise ChainError(f"{path} is not a readable label map ({first_line(error)})") from None
        return labels.astype(self.label_space.dtype)

    def _check(self, path: Path, labels: np.ndarray, mode: str) -> None:
        if labels.ndim != 2 or labels.dtype.kind not in "ui":
            raise ChainError(f"{path} is not a label map: expected one channel of 8- or 16-bit class ids, "
                             f"not a {mode} image")
        count = len(self.label_space)
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= count:
            value = high if high >= count else low
            raise ChainError(f"{path} holds label {value}, outside {self.label_space.name} (ids 0-{count - 1}); "
                             f"it was not saved in that label space")


class ColorizeSynthesizer(Synthesizer):
    """Paints label maps with their space's palette. Without a variant it takes the segmenter's space."""

    paints_labels = True

    def __init__(self, label_space: LabelSpace | None) -> None:
        self.label_space = label_space
        self.description = f"palette colours ({label_space.name if label_space else 'segmenter space'})"
        self._palette: torch.Tensor | None = None  # (len(space), 3) uint8, on the labels' device

    def synthesize(self, *, labels: torch.Tensor | np.ndarray | None, frames: np.ndarray) -> torch.Tensor:
        """The palette colour of each label, ``(B, H, W, 3)`` uint8 on the labels' device."""
        device = labels.device if isinstance(labels, torch.Tensor) else torch.device("cpu")
        if self._palette is None or self._palette.device != device:
            self._palette = torch.from_numpy(self.label_space.palette.copy()).to(device)
        ids = as_label_tensor(labels, device).clamp(0, len(self.label_space) - 1)  # as LabelSpace.colorize
        return self._palette[ids]


def _space_or_error(variant: str | None) -> LabelSpace:
    return get_label_space(variant or "coco-stuff")


def build_saved_labels(variant: str | None, context: StageContext) -> SavedLabelsSegmenter:
    if not variant:
        raise ChainError("the labels segmenter needs a folder: --seg labels:DIR (a folder written by --save-labels)")
    folder = Path(variant)
    if not folder.is_dir():
        raise ChainError(f"label folder not found: {folder}")
    return SavedLabelsSegmenter(folder)


def build_palette(variant: str | None, context: StageContext) -> PaletteSegmenter:
    """``palette[:SPACE]``: nearest palette colour of a label space (default COCO-Stuff)."""
    return PaletteSegmenter(_space_or_error(variant), context.device)


def build_colorize(variant: str | None, context: StageContext) -> ColorizeSynthesizer:
    """``colorize[:SPACE]``: paints labels with a space's palette (default: the segmenter's space)."""
    return ColorizeSynthesizer(get_label_space(variant) if variant else None)
