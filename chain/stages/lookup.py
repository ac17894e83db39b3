"""Stages that look labels up instead of computing them: the ``palette`` segmenter (nearest palette
colour), the ``labels`` segmenter (label maps saved by ``--save-labels``) and the ``colorize``
synthesizer (each label's palette colour)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from chain.errors import ChainError, first_line
from chain.labels import LabelSpace, get_label_space
from chain.labels.resize import resize_labels
from chain.labels.saved import LABELS_META_FILE, space_from_meta
from chain.stages.base import LABEL_DTYPE, Segmenter, Synthesizer, as_label_tensor
from chain.stages.spec import StageContext, StageSpec
from chain.weights.folder import read_json

_PIXELS_PER_CHUNK = 1 << 17  # bounds the (pixels × palette) float64 distances to ~190 MB for 183 classes


class PaletteSegmenter(Segmenter):
    """Each pixel takes the class whose palette colour is nearest (cartoons, 8-bit games, painted maps).

    Frames painted from the space's own palette map back to exactly their labels, since the
    built-in palettes have one colour per class.
    """

    def __init__(self, label_space: LabelSpace, device: torch.device = torch.device("cpu")) -> None:
        self.label_space = label_space
        self.device = device
        self.description = f"nearest {label_space.name} palette colour"
        # float64 holds every squared distance between 8-bit colours exactly, so ties (a pixel
        # halfway between two class colours) always go to the lower id, run after run;
        # torch.cdist's float32 matmul path would round them differently with memory layout.
        self._palette = torch.from_numpy(label_space.palette.astype(np.float64)).to(device)
        self._palette_norms = (self._palette ** 2).sum(dim=1)

    @torch.inference_mode()
    def segment(self, frames: np.ndarray, *, indices: np.ndarray,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        # A pixel's label depends on that pixel alone: sampling the frame first is the same as
        # sampling its labels, and cheaper.
        frames = torch.from_numpy(frames).to(self.device)
        if size is not None:
            frames = resize_labels(frames, size)
        pixels = frames.reshape(-1, 3)
        labels = torch.empty(pixels.shape[0], dtype=LABEL_DTYPE, device=self.device)
        for start in range(0, pixels.shape[0], _PIXELS_PER_CHUNK):
            chunk = pixels[start:start + _PIXELS_PER_CHUNK].double()
            # |p - c|² without |p|², which is the same for every class of a pixel.
            distances = self._palette_norms - 2 * chunk @ self._palette.T
            labels[start:start + _PIXELS_PER_CHUNK] = distances.argmin(dim=1)
        return labels.reshape(frames.shape[:3])


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
        maps = []
        for index in indices:
            path = self.folder / f"{int(index):06d}.png"
            if not path.is_file():
                raise ChainError(f"no saved label map for frame {int(index)} ({path}); the folder holds fewer "
                                 "frames than the input — use --max-frames or the same --start")
            # Maps saved at another size are sampled straight to the size wanted (one nearest step).
            maps.append(resize_labels(self._read(path)[None], size or frames.shape[1:3])[0])
        return torch.from_numpy(np.stack(maps).astype(np.int64))

    def _read(self, path: Path) -> np.ndarray:
        try:
            with Image.open(path) as image:
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


def _build_saved_labels(variant: str | None, context: StageContext) -> SavedLabelsSegmenter:
    if not variant:
        raise ChainError("the labels segmenter needs a folder: --seg labels:DIR (a folder written by --save-labels)")
    folder = Path(variant)
    if not folder.is_dir():
        raise ChainError(f"label folder not found: {folder}")
    return SavedLabelsSegmenter(folder)


PALETTE = StageSpec(
    name="palette",
    kind="segmenter",
    build=lambda variant, context: PaletteSegmenter(_space_or_error(variant), context.device),
    summary="nearest palette colour of a label space (variant: any space; feed cartoons and 8-bit games in)",
    default_variant="coco-stuff",
    label_space=lambda variant: _space_or_error(variant).name,
)
SAVED_LABELS = StageSpec(
    name="labels",
    kind="segmenter",
    build=_build_saved_labels,
    summary="label maps saved earlier with --save-labels (variant: the folder, --seg labels:DIR)",
    label_space=lambda variant: None,
)
COLORIZE = StageSpec(
    name="colorize",
    kind="synthesizer",
    build=lambda variant, context: ColorizeSynthesizer(get_label_space(variant) if variant else None),
    summary="paint label maps with their palette (variant: a label space; default: the segmenter's)",
    variants=(),
    label_space=lambda variant: variant or "(segmenter's)",
)
