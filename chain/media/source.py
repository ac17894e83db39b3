"""Frame sources: what every input (a video file, a folder of images, or one image) is read as.

`chain.media.inputs.open_source` opens one; every source yields `Frame`s one at a time (RGB uint8, already at the working size, upright), so a
two-hour film costs no more memory than a two-second clip. Damaged video is decoded past its bad
packets; what was lost is counted in the source's `InputDamage`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from chain.errors import ChainError
from chain.media.sizes import Size

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"})
DEFAULT_IMAGE_FPS = Fraction(25)
#: --fps bounds: rates are kept as fractions with denominators up to 1001 (NTSC's 30000/1001), so
#: the slowest rate is one frame in 1000 s; above 1000 fps every input frame repeats pointlessly.
MIN_FPS, MAX_FPS = Fraction(1, 1000), Fraction(1000)


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
    rotation: int = 0  # degrees counter-clockwise applied on decode (phone video's display matrix)
    exact_count: bool = False  # frame_count is the container's own count, not a duration estimate

    @property
    def size(self) -> Size:
        return Size(self.width, self.height)


@dataclass
class InputDamage:
    """What a video source lost while decoding: frames that would not decode, and a short input.

    Updated while the source is iterated; read it once iteration is over.
    """

    skipped_frames: int = 0  # packets the decoder rejected (each one a frame)
    expected: int | None = None  # frames the container promised for the part read
    decoded: int = 0  # frames delivered
    exact: bool = False  # ``expected`` is a frame count rather than duration x rate
    finished: bool = False  # reading reached the end of the input (not a --max-frames/--duration limit)
    first_error: str | None = None  # FFmpeg's words for the first failure

    @property
    def short(self) -> bool:
        """Fewer frames than promised: a truncated file (estimates from a duration get 2 % slack)."""
        if not self.finished or self.expected is None:
            return False
        slack = 0 if self.exact else max(1, self.expected // 50)
        return self.decoded + self.skipped_frames < self.expected - slack

    @property
    def damaged(self) -> bool:
        return self.skipped_frames > 0 or self.short

    def describe(self) -> str:
        """One clause for a warning or an error: what was skipped and what is missing."""
        parts = []
        if self.skipped_frames:
            parts.append(f"skipped {self.skipped_frames} damaged frame{'s' if self.skipped_frames > 1 else ''}"
                         f" ({self.first_error})")
        if self.short:
            parts.append(f"decoded {self.decoded} of the {self.expected} frames the file promised "
                         "(it ends early: truncated?)")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, int | None]:
        return {"skipped_frames": self.skipped_frames, "expected": self.expected, "decoded": self.decoded}


@dataclass(frozen=True)
class Trim:
    """Which part of the input to read: seconds from the start, and how much."""

    start: float = 0.0
    duration: float | None = None
    max_frames: int | None = None
    #: A shard of a run (`chain.cluster`): decoding starts at the run's frame ``seek_frame``, a
    #: keyframe ``seek_time`` seconds after ``start``, and frames are numbered and timed as if read
    #: from ``start`` (so ``max_frames`` counts from ``start`` too). Video files only.
    seek_frame: int = 0
    seek_time: float = 0.0

    def __post_init__(self) -> None:
        for name, value in (("--start", self.start), ("--duration", self.duration)):
            if value is not None and not math.isfinite(value):
                raise ChainError(f"{name} must be a finite number of seconds, got {value}")
        if self.start < 0:
            raise ChainError(f"--start must be >= 0 seconds, got {self.start}")
        if self.duration is not None and self.duration <= 0:
            raise ChainError(f"--duration must be > 0 seconds, got {self.duration}")
        if self.max_frames is not None and self.max_frames <= 0:
            raise ChainError(f"--max-frames must be > 0, got {self.max_frames}")
        if self.seek_frame < 0 or self.seek_time < 0:
            raise ValueError(f"a shard starts at a frame and time >= 0, got {self.seek_frame}, {self.seek_time}")

    def frame_limit(self, fps: Fraction) -> int | None:
        limits = [self.max_frames] if self.max_frames is not None else []
        if self.duration is not None:
            limits.append(max(1, math.ceil(self.duration * fps - 1e-6)))
        return min(limits) if limits else None


class FrameSource:
    """Iterate frames of a video file, an image folder or a single image.

    Use `open_source`; iterate once; `close` (or a ``with`` block) releases the file.
    """

    def __init__(self, info: SourceInfo, frames: Iterator[Frame], closer: callable | None = None,
                 damage: InputDamage | None = None) -> None:
        self.info = info
        self._frames = frames
        self._closer = closer
        self.damage = damage or InputDamage(expected=info.frame_count)

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


def parse_fps(fps: float | Fraction | None) -> Fraction | None:
    """``--fps`` as a fraction, checked against `MIN_FPS`/`MAX_FPS`; None stays None."""
    if fps is None:
        return None
    if isinstance(fps, float) and not math.isfinite(fps):
        raise ChainError(f"--fps must be a number of frames per second, got {fps}")
    rate = Fraction(fps).limit_denominator(1001)
    if not MIN_FPS <= rate <= MAX_FPS:
        raise ChainError(f"--fps must be between {float(MIN_FPS)} and {MAX_FPS} frames per second, got {fps}")
    return rate
