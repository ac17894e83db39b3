"""Frame sources: a video file, a folder of images, or one image, decoded lazily.

Every source yields `Frame`s one at a time (RGB uint8, already at the working size), so a
two-hour film costs no more memory than a two-second clip.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from chain.errors import ChainError
from chain.media.sizes import Size, parse_size, resolve_size

if TYPE_CHECKING:
    import av

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"})
DEFAULT_IMAGE_FPS = Fraction(25)


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its output index, presentation time in seconds, and RGB pixels."""

    index: int
    time: float
    rgb: np.ndarray  # (H, W, 3) uint8


@dataclass(frozen=True)
class SourceInfo:
    """What a source will deliver, after --start/--duration/--max-frames/--size/--fps."""

    path: Path
    kind: str  # "video", "images" or "image"
    width: int
    height: int
    source_width: int
    source_height: int
    fps: Fraction
    frame_count: int | None  # None when the container does not say
    start: float
    duration: float | None
    audio_codec: str | None

    @property
    def size(self) -> Size:
        return Size(self.width, self.height)


@dataclass(frozen=True)
class Trim:
    """Which part of the input to read: seconds from the start, and how much."""

    start: float = 0.0
    duration: float | None = None
    max_frames: int | None = None

    def __post_init__(self) -> None:
        if self.start < 0:
            raise ChainError(f"--start must be >= 0 seconds, got {self.start}")
        if self.duration is not None and self.duration <= 0:
            raise ChainError(f"--duration must be > 0 seconds, got {self.duration}")
        if self.max_frames is not None and self.max_frames <= 0:
            raise ChainError(f"--max-frames must be > 0, got {self.max_frames}")

    def frame_limit(self, fps: Fraction) -> int | None:
        limits = [self.max_frames] if self.max_frames is not None else []
        if self.duration is not None:
            limits.append(max(1, math.ceil(self.duration * fps - 1e-6)))
        return min(limits) if limits else None


class FrameSource:
    """Iterate frames of a video file, an image folder or a single image.

    Use `open_source`; iterate once; `close` (or a ``with`` block) releases the file.
    """

    def __init__(self, info: SourceInfo, frames: Iterator[Frame], closer: callable | None = None) -> None:
        self.info = info
        self._frames = frames
        self._closer = closer

    def __iter__(self) -> Iterator[Frame]:
        return self._frames

    def close(self) -> None:
        if self._closer is not None:
            self._closer()
            self._closer = None

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
            folders it is simply the rate the frames are played at (default 25).
    """
    path = Path(path)
    if not path.exists():
        raise ChainError(f"input not found: {path}")
    wanted = parse_size(size) if isinstance(size, str) else size
    rate = Fraction(fps).limit_denominator(1001) if fps is not None else None
    if rate is not None and rate <= 0:
        raise ChainError(f"--fps must be > 0, got {fps}")
    if path.is_dir():
        return _open_image_folder(path, trim, wanted, rate)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return _open_images([path], path, "image", trim, wanted, rate)
    return _open_video(path, trim, wanted, rate)


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
                      len(selected) / fps, None)
    return FrameSource(info, frames())


def _read_image(file: Path) -> Image.Image:
    try:
        with Image.open(file) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as error:
        raise ChainError(f"cannot read image {file}: {error}") from None


def _open_video(path: Path, trim: Trim, wanted: Size | None, rate: Fraction | None) -> FrameSource:
    import av  # FFmpeg is loaded on first use, so importing chain stays light
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as error:
        raise ChainError(f"cannot read {path} as a video or image: {error}") from None
    if not container.streams.video:
        container.close()
        raise ChainError(f"{path} has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame + slice threads: decoding is otherwise single-core
    in_rate = stream.average_rate or stream.guessed_rate or Fraction(25)
    out_rate = rate or Fraction(in_rate)
    source_size = Size(stream.codec_context.width, stream.codec_context.height)
    out = resolve_size(source_size, wanted)
    frame_count = _estimate_frames(container, stream, in_rate, out_rate, trim)
    audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
    duration = frame_count / out_rate if frame_count is not None else trim.duration
    info = SourceInfo(path, "video", out.width, out.height, source_size.width, source_size.height, out_rate,
                      frame_count, trim.start, float(duration) if duration is not None else None, audio)
    frames = _decode(container, stream, trim, out, out_rate, resample=rate is not None)
    return FrameSource(info, frames, container.close)


def _estimate_frames(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                     in_rate: Fraction, out_rate: Fraction, trim: Trim) -> int | None:
    import av  # FFmpeg is loaded on first use, so importing chain stays light
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / av.time_base
    else:
        return trim.frame_limit(out_rate)
    total = stream.frames if stream.frames and out_rate == in_rate else round(seconds * out_rate)
    remaining = total - round(trim.start * out_rate)
    if remaining <= 0:
        raise ChainError(f"--start {trim.start}s is past the end of {container.name} ({seconds:.2f}s long)")
    limit = trim.frame_limit(out_rate)
    return min(remaining, limit) if limit is not None else remaining


def _decode(container: av.container.InputContainer, stream: av.video.stream.VideoStream, trim: Trim,
            out: Size, out_rate: Fraction, *, resample: bool) -> Iterator[Frame]:
    """Decode from ``trim.start``, resize, and (with ``resample``) retime to ``out_rate``."""
    import av  # FFmpeg is loaded on first use, so importing chain stays light
    if trim.start > 0:
        container.seek(int(trim.start / stream.time_base), stream=stream, backward=True)
    limit = trim.frame_limit(out_rate)
    index = 0
    previous: np.ndarray | None = None
    try:
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            time = frame.time - trim.start
            if time < -0.5 / float(out_rate):
                continue  # before --start: the seek lands on the keyframe before it
            rgb = frame.to_ndarray(format="rgb24", width=out.width, height=out.height, interpolation="BILINEAR")
            if not resample:
                yield Frame(index, index / float(out_rate), rgb)
                index += 1
            else:
                # Emit every output tick that falls before this frame with the previous frame,
                # which repeats frames when slowing down and drops them when speeding up.
                while previous is not None and index / out_rate <= time - 0.5 / float(out_rate):
                    if limit is not None and index >= limit:
                        return
                    yield Frame(index, index / float(out_rate), previous)
                    index += 1
                previous = rgb
            if limit is not None and index >= limit:
                return
            if trim.duration is not None and time >= trim.duration:
                return
        if resample and previous is not None and (limit is None or index < limit):
            yield Frame(index, index / float(out_rate), previous)
    except av.FFmpegError as error:
        raise ChainError(f"decoding {container.name} failed at frame {index}: {error}") from None
