"""Opening an input: a video file (`chain.media.video`), a folder of images, one image, or an
animated or multi-page image.

Every input becomes a `chain.media.source.FrameSource` that decodes lazily; images are read by
`chain.media.images` (the one image reader), videos through PyAV. What cannot be read is refused
here, in one line, before any work: a named pipe, a device or a socket is never opened.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from itertools import accumulate
from pathlib import Path

import numpy as np
from PIL import Image

from chain.errors import ChainError
from chain.media.images import ImageProbe, check_regular_file, probe_image, read_frames, read_image
from chain.media.sizes import Size, parse_size, resolve_size
from chain.media.source import (
    DEFAULT_IMAGE_FPS,
    IMAGE_EXTENSIONS,
    Frame,
    FrameSource,
    SourceInfo,
    Trim,
    check_rate,
    parse_fps,
    retime,
)
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

    An animated GIF, WebP or PNG is read frame by frame with its frames' timing; a multi-page
    TIFF's pages are frames played like an image folder's.
    """
    path = Path(path)
    if not path.exists():
        raise ChainError(f"input not found: {path}")
    wanted = parse_size(size) if isinstance(size, str) else size
    rate = parse_fps(fps)
    if path.is_dir():
        return _open_image_folder(path, trim, wanted, rate)
    check_regular_file(path)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        probe = probe_image(path)
        if probe.frames > 1:
            return _open_animation(probe, trim, wanted, rate)
        return _open_images([path], path, "image", trim, wanted, rate, Size(*probe.size))
    return open_video(path, trim, wanted, rate)


def _open_image_folder(folder: Path, trim: Trim, wanted: Size | None, rate: Fraction | None) -> FrameSource:
    # Hidden names are not frames: macOS's ``._`` resource forks and thumbnail caches are named like
    # images (and are other sizes), and chain's own staging parts are hidden while they are written.
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
    if not files:
        raise ChainError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in folder {folder}")
    for file in files:  # a pipe named like an image would block the run half-way; a stat is cheap
        check_regular_file(file)
    return _open_images(files, folder, "images", trim, wanted, rate)


def _open_images(files: list[Path], path: Path, kind: str, trim: Trim, wanted: Size | None, rate: Fraction | None,
                 first_size: Size | None = None) -> FrameSource:
    """Image files as frames at ``rate`` (default 25 fps); each is read by `read_image` (its first
    frame, for an animated file inside a folder) and resized to the first image's working size."""
    fps = rate or DEFAULT_IMAGE_FPS
    first_index = round(trim.start * fps)
    limit = trim.frame_limit(fps)
    selected = files[first_index:][:limit] if limit is not None else files[first_index:]
    if not selected:
        raise ChainError(f"--start {trim.start}s is past the end of {path} ({len(files)} images at {fps} fps)")
    source = first_size if first_size is not None and selected[0] == files[0] else Size(*probe_image(selected[0]).size)
    out = resolve_size(source, wanted, selected[0])

    def frames() -> Iterator[Frame]:
        for index, file in enumerate(selected):
            yield Frame(index, index / fps, _fit(read_image(file), out))

    info = SourceInfo(path, kind, out.width, out.height, source.width, source.height, fps, len(selected), trim.start,
                      float(len(selected) / fps), None, exact_count=True)
    return FrameSource(info, frames())


def _open_animation(probe: ImageProbe, trim: Trim, wanted: Size | None, rate: Fraction | None) -> FrameSource:
    """Every frame of an animated or multi-page image: at its own time (GIF, WebP and PNG say how
    long each frame shows), or one after another at ``rate`` (default 25 fps) where the format has
    no timing (TIFF pages); with --fps, retimed to it like a video."""
    path = probe.path
    if probe.durations is not None:
        total = sum(probe.durations)
        own_rate = Fraction(probe.frames / total).limit_denominator(1001)
        starts = [0.0, *accumulate(probe.durations)][:-1]
    else:
        own_rate = rate or DEFAULT_IMAGE_FPS
        total = probe.frames / float(own_rate)
        starts = [index / float(own_rate) for index in range(probe.frames)]
    out_rate = rate or check_rate(own_rate, path, "plays at")
    half = 0.5 / float(own_rate)
    first = next((i for i, start in enumerate(starts) if start >= trim.start - half), None)
    if first is None:
        raise ChainError(f"--start {trim.start}s is past the end of {path} ({total:.2f}s long)")
    out = resolve_size(Size(*probe.size), wanted, path)
    limit = trim.frame_limit(out_rate)
    count = max(1, round((total - trim.start) * out_rate)) if rate is not None else probe.frames - first
    count = min(count, limit) if limit is not None else count

    def timed() -> Iterator[tuple[float, np.ndarray]]:
        for start, rgb in zip(starts[first:], read_frames(path, probe.pages[first:])):
            yield start - trim.start, _fit(rgb, out)
            if trim.duration is not None and start - trim.start >= trim.duration:
                return

    def own_times() -> Iterator[Frame]:
        for index, (time, rgb) in enumerate(timed()):
            if limit is not None and index >= limit:
                return
            yield Frame(index, max(time, 0.0), rgb)

    frames = retime(timed(), out_rate, limit) if rate is not None else own_times()
    info = SourceInfo(path, "animation", out.width, out.height, probe.width, probe.height, out_rate, count,
                      trim.start, float(count / out_rate), None, exact_count=rate is None)
    return FrameSource(info, frames)


def _fit(rgb: np.ndarray, out: Size) -> np.ndarray:
    """``rgb`` at the working size ``out`` (bilinear, as video frames are scaled)."""
    if (rgb.shape[1], rgb.shape[0]) == out:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize(out, Image.Resampling.BILINEAR))
