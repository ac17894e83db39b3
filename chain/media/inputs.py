"""Opening an input: a video file (`chain.media.video`), a folder of images, or one image.

Every input becomes a `chain.media.source.FrameSource` that decodes lazily; images are read here,
videos and animated GIFs through PyAV.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from chain.errors import ChainError
from chain.media.sizes import Size, parse_size, resolve_size
from chain.media.source import DEFAULT_IMAGE_FPS, IMAGE_EXTENSIONS, Frame, FrameSource, SourceInfo, Trim, parse_fps
from chain.media.video import open_video


def open_source(
    path: str | Path,
    *,
    trim: Trim = Trim(),
    size: str | Size | None = None,
    fps: float | Fraction | None = None,
) -> FrameSource:
    """Open ``path`` for lazy decoding.

    Args:
        path: a video file FFmpeg can read, a folder of images (sorted by name), or an image.
        trim: which part to read.
        size: ``"WxH"``, a short side (``"256"``) or None to keep the input's size.
        fps: output frame rate; frames are dropped or repeated to reach it. For image
            folders it is simply the rate the frames are played at (default 25). Without it a
            video's frames keep their own timestamps (variable frame rate stays in sync).

    An animated GIF is read as a video, with its frames' timing.
    """
    path = Path(path)
    if not path.exists():
        raise ChainError(f"input not found: {path}")
    wanted = parse_size(size) if isinstance(size, str) else size
    rate = parse_fps(fps)
    if path.is_dir():
        return _open_image_folder(path, trim, wanted, rate)
    if path.suffix.lower() in IMAGE_EXTENSIONS and not _is_animated(path):
        return _open_images([path], path, "image", trim, wanted, rate)
    return open_video(path, trim, wanted, rate)


def _is_animated(path: Path) -> bool:
    """A GIF with more than one frame (read as a video; FFmpeg keeps each frame's delay)."""
    if path.suffix.lower() != ".gif":
        return False
    try:
        with Image.open(path) as image:
            return getattr(image, "n_frames", 1) > 1
    except (OSError, ValueError) as error:
        raise ChainError(f"cannot read image {path}: {error}") from None


def _open_image_folder(folder: Path, trim: Trim, wanted: Size | None, rate: Fraction | None) -> FrameSource:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ChainError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in folder {folder}")
    return _open_images(files, folder, "images", trim, wanted, rate)


def _open_images(
    files: list[Path], path: Path, kind: str, trim: Trim, wanted: Size | None, rate: Fraction | None
) -> FrameSource:
    fps = rate or DEFAULT_IMAGE_FPS
    first_index = round(trim.start * fps)
    limit = trim.frame_limit(fps)
    selected = files[first_index:][:limit] if limit is not None else files[first_index:]
    if not selected:
        raise ChainError(f"--start {trim.start}s is past the end of {path} ({len(files)} images at {fps} fps)")
    width, height = _read_image(selected[0]).size
    out = resolve_size(Size(width, height), wanted)

    def frames() -> Iterator[Frame]:
        for index, file in enumerate(selected):
            image = _read_image(file)
            if image.size != out:
                image = image.resize(out, Image.Resampling.BILINEAR)
            yield Frame(index, index / fps, np.asarray(image))

    info = SourceInfo(path, kind, out.width, out.height, width, height, fps, len(selected), trim.start,
                      float(len(selected) / fps), None, exact_count=True)
    return FrameSource(info, frames())


def _read_image(file: Path) -> Image.Image:
    try:
        with Image.open(file) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as error:
        raise ChainError(f"cannot read image {file}: {error}") from None
