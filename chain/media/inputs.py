"""Opening an input: a video file (`chain.media.video`), a folder of images, one image, or an
animated or multi-page image.

Every input becomes a `chain.media.source.FrameSource` that decodes lazily; images are read by
`chain.media.images` (the one image reader), videos through PyAV. What cannot be read is refused
here, in one line, before any work: a named pipe, a device or a socket is never opened.
"""

from __future__ import annotations

import math
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
    MAX_FPS,
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
    size: str | Size | int | None = None,
    fps: float | Fraction | None = None,
) -> FrameSource:
    """Open ``path`` for lazy decoding.

    Args:
        path: a video file FFmpeg can read, a folder of images (sorted by name), or an image.
        trim: which part to read.
        size: ``"WxH"``, a short side (``"256"``), either parsed (a `Size`, an int: a `RunConfig`'s)
            or None to keep the input's size.
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


def _open_image_folder(folder: Path, trim: Trim, wanted: Size | int | None, rate: Fraction | None) -> FrameSource:
    # Hidden names are not frames: macOS's ``._`` resource forks and thumbnail caches are named like
    # images (and are other sizes), and chain's own staging parts are hidden while they are written.
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
    if not files:
        raise ChainError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in folder {folder}")
    for file in files:  # a pipe named like an image would block the run half-way; a stat is cheap
        check_regular_file(file)
    return _open_images(files, folder, "images", trim, wanted, rate)


def _open_images(files: list[Path], path: Path, kind: str, trim: Trim, wanted: Size | int | None, rate: Fraction | None,
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


def _open_animation(probe: ImageProbe, trim: Trim, wanted: Size | int | None, rate: Fraction | None) -> FrameSource:
    """Every frame of an animated or multi-page image: at its own time (GIF, WebP and PNG say how
    long each frame shows), or one after another at ``rate`` (default 25 fps) where the format has
    no timing (TIFF pages); with --fps, retimed to it like a video.

    A timed animation lasts until its last frame's own duration ends, and plays at the rate of its
    time grid (`_grid_rate`), so that a video written at that rate keeps every frame's time exactly.
    --start begins with the frame shown at that moment.
    """
    path = probe.path
    if probe.durations is not None:
        own_rate = _grid_rate(probe.durations)
        ends = list(accumulate(probe.durations))
        first = next((i for i, end in enumerate(ends) if end > trim.start + 1e-6), None)
    else:  # pages: frames one after another, --start rounded to a frame as in an image folder
        own_rate = rate or DEFAULT_IMAGE_FPS
        ends = [(index + 1) / float(own_rate) for index in range(probe.frames)]
        first = round(trim.start * own_rate)
        first = first if first < probe.frames else None
    total = ends[-1]
    starts = [0.0, *ends[:-1]]
    out_rate = rate or check_rate(own_rate, path, "plays at")
    if first is None:
        raise ChainError(f"--start {trim.start}s is past the end of {path} ({total:.2f}s long)")
    origin = trim.start if probe.durations is not None else starts[first]
    # Each frame's time from the start of the output; one at or past a --duration cut ends the
    # input there (with --fps it still marks where the frame before it stops showing).
    times: list[float] = []
    for start in starts[first:]:
        times.append(start - origin)
        if trim.duration is not None and start - origin >= trim.duration:
            break
    out = resolve_size(Size(*probe.size), wanted, path)
    limit = trim.frame_limit(out_rate)
    end = total - origin

    def timed() -> Iterator[tuple[float, np.ndarray]]:
        yield from zip(times, (_fit(rgb, out) for rgb in read_frames(path, probe.pages[first:first + len(times)])))

    if rate is not None:
        marker = np.empty(0, np.uint8)
        count = sum(1 for _ in retime(((time, marker) for time in times), out_rate, limit, end=end))
        frames = retime(timed(), out_rate, limit, end=end)
        duration = float(count / out_rate)
    else:
        shown = [time for time in times if trim.duration is None or time < trim.duration] or times[:1]
        count = min(len(shown), trim.max_frames or len(shown))  # --duration: cut by time above
        last = first + count - 1
        duration = ends[last] - origin
        if trim.duration is not None:
            duration = min(duration, trim.duration)

        def own_times() -> Iterator[Frame]:
            for index, (time, rgb) in enumerate(timed()):
                if index >= count:
                    return
                yield Frame(index, max(time, 0.0), rgb)

        frames = own_times()
    info = SourceInfo(path, "animation", out.width, out.height, probe.width, probe.height, out_rate, count,
                      trim.start, duration, None, exact_count=rate is None)
    return FrameSource(info, frames)


def _grid_rate(durations: tuple[float, ...]) -> Fraction:
    """The rate whose ticks every frame of a timed animation starts on: one over the greatest
    common divisor of its durations (GIF's are hundredths, WebP's milliseconds): 20 fps for
    frames of 0.2, 0.05 and 1 s. Where that would pass `MAX_FPS` (APNG's odd fractions), the
    average rate, on whose ticks the frames' times are rounded."""
    exact = [Fraction(seconds).limit_denominator(10**6) for seconds in durations]
    denominator = math.lcm(*(value.denominator for value in exact))
    step = Fraction(math.gcd(*(int(value * denominator) for value in exact)), denominator)
    if step > 0 and 1 / step <= MAX_FPS:
        return 1 / step
    return Fraction(len(durations) / sum(durations)).limit_denominator(1001)


def _fit(rgb: np.ndarray, out: Size) -> np.ndarray:
    """``rgb`` at the working size ``out`` (bilinear, as video frames are scaled)."""
    if (rgb.shape[1], rgb.shape[0]) == out:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize(out, Image.Resampling.BILINEAR))
