"""Pictures for looking inside a run: labelled masks with a legend, overlays, side-by-sides."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from chain.labels import LabelSpace

_LABEL_GRID = 8          # class names are placed on an 8× coarser grid: cheap, and plenty precise
_MAX_EROSIONS = 12       # how deep into a region we look for the spot farthest from its edges
_LEGEND_SHARE = 0.005    # classes below this share round to 0 %: the legend counts them instead of listing them
_LEGEND_MARGIN = 6
_LEGEND_BACKGROUND = (24, 24, 24)
_SWATCH_EDGE = (200, 200, 200)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _text_colour(rgb: np.ndarray) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(fill, outline) that read well on a background of colour ``rgb``."""
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return ((0, 0, 0), (255, 255, 255)) if luminance > 140 else ((255, 255, 255), (0, 0, 0))


def class_shares(labels: np.ndarray, space: LabelSpace) -> np.ndarray:
    """The share of pixels of each id, ``(len(space),)`` floats summing to 1."""
    counts = np.bincount(labels.ravel(), minlength=len(space))[: len(space)]
    return counts / max(1, labels.size)


def region_anchors(labels: np.ndarray, ids: list[int]) -> dict[int, tuple[int, int]]:
    """For each id, an (x, y) deep inside its largest mass: the point farthest from its edges.

    Erodes each class mask on a coarse grid and keeps the point that survives the most
    erosions (a cheap stand-in for a distance transform), nearest the surviving centroid.
    """
    coarse = torch.from_numpy(labels[::_LABEL_GRID, ::_LABEL_GRID].astype(np.int64))
    anchors: dict[int, tuple[int, int]] = {}
    for label_id in ids:
        mask = (coarse == label_id).float()[None, None]
        depth = torch.zeros_like(mask)
        eroded = mask
        for _ in range(_MAX_EROSIONS):
            depth += eroded
            eroded = -F.max_pool2d(-eroded, 3, stride=1, padding=1)
            if not eroded.any():
                break
        deepest = depth[0, 0] == depth.max()
        ys, xs = torch.nonzero(deepest, as_tuple=True)
        if len(ys) == 0:
            continue
        cy, cx = ys.float().mean(), xs.float().mean()
        nearest = torch.argmin((ys - cy) ** 2 + (xs - cx) ** 2)
        anchors[label_id] = (int(xs[nearest]) * _LABEL_GRID + _LABEL_GRID // 2,
                             int(ys[nearest]) * _LABEL_GRID + _LABEL_GRID // 2)
    return anchors


class MaskRenderer:
    """Colourised labels (or labels blended over the frame) with class names written on the larger
    regions and a legend panel.

    Args:
        space: the label space of the maps it draws.
        min_share: regions covering less of the frame than this get no name on them.
        notes: id → a note written after the class name in the legend, e.g. ``{bear_id: "was person"}``
            for the classes a ``--remap`` made.
        possible: the ids the maps can hold (a converted and remapped segmentation reaches few of
            its space's classes); the legend is as wide as the longest of their lines, so that a
            video's frames keep one size. Default: every id of ``space``.

    ``legend`` holds the legend lines of the last frame drawn (class name, note, share), so
    callers and tests can read what the picture says without OCR. A class under 1 % of the frame
    is left out of the legend (a line would say 0 %), unless it has a note.
    """

    def __init__(self, space: LabelSpace, *, min_share: float = 0.015, notes: dict[int, str] | None = None,
                 possible: Iterable[int] | None = None) -> None:
        self.space = space
        self.min_share = min_share
        self.notes = dict(notes or {})
        self.possible = sorted({int(i) for i in possible}) if possible is not None else range(len(space))
        self.legend: list[str] = []
        self._widths: dict[int, int] = {}

    def legend_text(self, label_id: int, share: float) -> str:
        """One legend line: ``"bear (was person) 23%"`` (``"<1%"`` for a noted class under 1 %)."""
        note = self.notes.get(label_id)
        name = self.space.names[label_id] + (f" ({note})" if note else "")
        return f"{name} {100 * share:.0f}%" if share >= _LEGEND_SHARE else f"{name} <1%"

    @staticmethod
    def font_size(height: int) -> int:
        """The legend's text size: readable when the picture is shown small (a web page's panel)."""
        return max(11, height // 18)

    def legend_width(self, height: int) -> int:
        """The legend panel's width: its longest possible line, a swatch and margins."""
        if height not in self._widths:
            font, size = _font(self.font_size(height)), self.font_size(height)
            widest = max(font.getlength(self.legend_text(i, 1.0)) for i in self.possible)
            self._widths[height] = int(np.ceil(widest)) + size + 4 + 2 * _LEGEND_MARGIN
        return self._widths[height]

    def __call__(self, labels: np.ndarray, *, under: np.ndarray | None = None, alpha: float = 0.5) -> np.ndarray:
        """The labels in their colours (blended over ``under``, the frame, when given), named, with the legend."""
        height, width = labels.shape
        shares = class_shares(labels, self.space)
        present = [int(i) for i in np.argsort(-shares) if shares[i] > 0]
        canvas = Image.new("RGB", (width + self.legend_width(height), height), _LEGEND_BACKGROUND)
        picture = self.space.colorize(labels) if under is None else overlay(under, labels, self.space, alpha=alpha)
        canvas.paste(Image.fromarray(picture), (0, 0))
        draw = ImageDraw.Draw(canvas)
        font_size = max(9, height // 28)
        named = [i for i in present if shares[i] >= self.min_share]
        stroke = max(1, font_size // 8)
        for label_id, (x, y) in region_anchors(labels, named).items():
            fill, outline = _text_colour(self.space.palette[label_id])
            name = self.space.names[label_id]
            left, top, right, bottom = draw.textbbox((0, 0), name, font=_font(font_size), anchor="mm",
                                                     stroke_width=stroke)
            # Keep the name inside the frame (it would otherwise spill into the legend).
            x = min(max(x, -left), width - right)
            y = min(max(y, -top), height - bottom)
            draw.text((x, y), name, font=_font(font_size), fill=fill, anchor="mm", stroke_width=stroke,
                      stroke_fill=outline)
        self._draw_legend(draw, present, shares, x0=width + _LEGEND_MARGIN, height=height,
                          font_size=self.font_size(height))
        return np.asarray(canvas)

    def _draw_legend(self, draw: ImageDraw.ImageDraw, present: list[int], shares: np.ndarray, *, x0: int,
                     height: int, font_size: int) -> None:
        row = font_size + 4
        rows = max(1, (height - 4) // row)
        listed = [i for i in present if shares[i] >= _LEGEND_SHARE or i in self.notes]
        small = len(present) - len(listed)
        shown = listed if len(listed) + (small > 0) <= rows else listed[: rows - 1]
        self.legend = [self.legend_text(label_id, shares[label_id]) for label_id in shown]
        for slot, (label_id, text) in enumerate(zip(shown, self.legend)):
            y = 4 + slot * row
            # A light edge: black (COCO-Stuff's "unlabeled") and dark swatches stay visible on the panel.
            draw.rectangle((x0, y, x0 + font_size, y + font_size), outline=_SWATCH_EDGE,
                           fill=tuple(int(c) for c in self.space.palette[label_id]))
            draw.text((x0 + font_size + 4, y), text, font=_font(font_size), fill=(235, 235, 235))
        rest = [f"+{len(listed) - len(shown)} more"] if len(shown) < len(listed) else []
        rest += [f"+{small} under 1%"] if small else []
        if rest:
            more = ", ".join(rest)
            self.legend.append(more)
            draw.text((x0, 4 + len(shown) * row), more, font=_font(font_size), fill=(170, 170, 170))


def overlay(frame: np.ndarray, labels: np.ndarray, space: LabelSpace, *, alpha: float = 0.5) -> np.ndarray:
    """Label colours blended over the frame."""
    colours = space.colorize(labels).astype(np.float32)
    return (frame.astype(np.float32) * (1 - alpha) + colours * alpha).round().astype(np.uint8)


_CAPTION_SHARE = 0.1  # a caption drawn on a panel may be at most this share of the panel's height
_MIN_CAPTION_FONT = 9  # pixels: smaller default-font text stops being readable


def caption_layout(height: int) -> tuple[int, int]:
    """(font size, band height) of the captions over panels ``height`` pixels tall.

    The font scales with the frame (1/24 of its height, at least 9 px). Where that would cover
    more than a tenth of the panel (frames under 90 px: a 64x36 frame's caption hid half of it),
    the captions go in a band of their own above the panels (band height > 0), leaving every
    panel's pixels as they are.
    """
    font_size = max(_MIN_CAPTION_FONT, height // 24)
    if font_size <= height * _CAPTION_SHARE:
        return font_size, 0
    band = font_size + 4
    return font_size, band + band % 2  # even, so the compare video keeps an even height


def side_by_side(panels: list[np.ndarray], captions: list[str]) -> np.ndarray:
    """Panels of one height placed left to right, each with a small caption (`caption_layout`: on
    the panel's corner, or in a band above small frames)."""
    row = np.concatenate(panels, axis=1)
    font_size, band = caption_layout(row.shape[0])
    if band:
        image = Image.new("RGB", (row.shape[1], row.shape[0] + band), (0, 0, 0))
        image.paste(Image.fromarray(row), (0, band))
    else:
        image = Image.fromarray(row)
    draw = ImageDraw.Draw(image)
    x = 0
    for panel, caption in zip(panels, captions):
        if band:
            # Shrink a caption wider than its panel (down to 6 px) so it never runs into the next one.
            size = font_size
            while size > 6 and draw.textlength(caption, font=_font(size)) > panel.shape[1] - 4:
                size -= 1
            draw.text((x + 2, (band - size) // 2), caption, font=_font(size), fill=(255, 255, 255))
        else:
            draw.text((x + 4, 3), caption, font=_font(font_size), fill=(255, 255, 255), stroke_width=1,
                      stroke_fill=(0, 0, 0))
        x += panel.shape[1]
    return np.asarray(image)


def resize_frames(frames: np.ndarray | torch.Tensor, height: int, width: int) -> np.ndarray:
    """A batch ``(B, h, w, 3)`` uint8 resized to ``(B, height, width, 3)`` (antialiased bilinear), on the host.

    A tensor is resized where it lives and reaches the host once, as uint8 (through pinned
    memory on CUDA, so the copy is one DMA rather than a staged one); numpy is resized on the CPU.
    """
    tensor = torch.from_numpy(frames) if isinstance(frames, np.ndarray) else frames
    if tuple(tensor.shape[1:3]) != (height, width):
        pixels = tensor.permute(0, 3, 1, 2).float()
        resized = F.interpolate(pixels, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
        tensor = resized.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    elif isinstance(frames, np.ndarray):
        return frames
    return _to_host(tensor)


def _to_host(tensor: torch.Tensor) -> np.ndarray:
    """A device tensor → numpy, through a pinned buffer on CUDA (the one synchronisation of the batch)."""
    if tensor.device.type != "cuda":
        return tensor.cpu().numpy()
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    host.copy_(tensor, non_blocking=True)
    torch.cuda.current_stream(tensor.device).synchronize()
    return host.numpy()
