"""Frame sources: what every input (a video file, a folder of images, or one image) is read as.

`chain.media.inputs.open_source` opens one; every source yields `Frame`s one at a time (RGB uint8, already at the working size, upright), so a
two-hour film costs no more memory than a two-second clip. Damaged video is decoded past its bad
packets; what was lost is counted in the source's `InputDamage`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from chain import bounds
from chain.errors import ChainError
from chain.media.sizes import Size
from chain.options import option

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
    kind: str  # "video", "animation" (an animated or multi-page image), "images" (a folder) or "image"
    width: int
    height: int
    source_width: int  # as shown: upright, in square pixels
    source_height: int
    fps: Fraction
    frame_count: int | None  # None when the container does not say
    start: float
    duration: float | None
    audio_codec: str | None
    rotation: int = 0  # degrees counter-clockwise applied on decode (phone video's display matrix)
    exact_count: bool = False  # frame_count is the container's own count, not a duration estimate
    #: The stored pixels' shape (width / height of one pixel); frames are scaled to square pixels on decode.
    sample_aspect_ratio: Fraction = Fraction(1)

    @property
    def size(self) -> Size:
        return Size(self.width, self.height)


@dataclass
class InputDamage:
    """What a video source lost while decoding: frames that would not decode, and a short input.

    Damage is judged on what the container promises for the input's own frames, before any
    --fps retiming: its frame count (``expected``, when it has one) and where its video stream
    ends (``end``). A file is short only when every promise it makes is broken: AVI counts the
    empty placeholders of variable-rate video as frames, and MP4's stream duration can end before
    its last frame's time, so one promise alone is not trusted against the other. A long pause
    in variable-rate video breaks neither. Updated while the source is iterated; read it once
    iteration is over.
    """

    skipped_frames: int = 0  # packets the decoder rejected (each one a frame)
    expected: int | None = None  # input frames the container promised for the part read (see ``exact``)
    decoded: int = 0  # input frames decoded (before --fps drops or repeats any)
    exact: bool = False  # ``expected`` is the container's frame count (else an estimate, not judged)
    finished: bool = False  # reading reached the end of the input (not a --max-frames/--duration limit)
    first_error: str | None = None  # FFmpeg's words for the first failure
    end: float | None = None  # where the container says the video ends (seconds of input time)
    reached: float | None = None  # where the last decoded frame ends (its time plus its duration)
    slack: float = 0.0  # how far short of ``end`` still counts as reaching it (timestamp rounding)

    @property
    def short(self) -> bool:
        """Fewer frames than promised, and an end short of the promised one: a truncated file."""
        if not self.finished:
            return False
        broken = []
        if self.expected is not None and self.exact:
            broken.append(self.decoded + self.skipped_frames < self.expected)
        if self.end is not None:
            broken.append((self.reached or 0.0) < self.end - self.slack)
        return bool(broken) and all(broken)

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
            if self.expected is not None and self.exact:
                parts.append(f"decoded {self.decoded} of the {self.expected} frames the file promised "
                             "(it ends early: truncated?)")
            else:
                parts.append(f"decoded {self.decoded} frames, up to {self.reached or 0.0:.2f}s of the "
                             f"{self.end:.2f}s the file promised (it ends early: truncated?)")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, int | None]:
        return {"skipped_frames": self.skipped_frames, "expected": self.expected, "decoded": self.decoded}


@dataclass(frozen=True)
class Trim:
    """Which part of the input to read: seconds from the start, and how much."""

    # The command line's options (`chain.options`).
    start: float = option("Start this many seconds into the input.", float, default=0.0,
                          parser=bounds.seconds("--start"), metavar="SECONDS", page=False)
    duration: float | None = option("Process at most this many seconds.", float | None, default=None,
                                    parser=bounds.seconds("--duration", positive=True), metavar="SECONDS", page=False)
    max_frames: int | None = option("Process at most this many frames.", int | None, default=None,
                                    parser=bounds.FRAMES, metavar="N")
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


def retime(timed: Iterable[tuple[float, np.ndarray]], rate: Fraction, limit: int | None,
           ended: Callable[[], bool] = lambda: True, end: float | None = None) -> Iterator[Frame]:
    """Frames at a constant ``rate`` from frames that carry their own times (seconds from the start).

    Each output tick shows the latest frame at or before it (within half a tick), which repeats
    frames when slowing down and drops them when speeding up. The last frame is shown once more
    at the end only when ``ended()`` says the input ended there (not at a --duration cut), and
    held for every tick up to ``end`` (where its own duration ends, when the input says: an
    animation's last frame), as if a frame followed at ``end``.
    """
    period = 1 / float(rate)
    index = 0
    previous: np.ndarray | None = None
    for time, rgb in timed:
        # Emit every output tick that falls before this frame with the previous frame.
        while previous is not None and index / rate <= time - 0.5 * period:
            if limit is not None and index >= limit:
                return
            yield Frame(index, index * period, previous)
            index += 1
        previous = rgb
        if limit is not None and index >= limit:
            return
    if previous is not None and (limit is None or index < limit) and ended():
        yield Frame(index, index * period, previous)
        index += 1
        while end is not None and index / rate <= end - 0.5 * period + 1e-9 and (limit is None or index < limit):
            yield Frame(index, index * period, previous)
            index += 1


def check_rate(rate: Fraction, path: Path, what: str) -> Fraction:
    """``rate`` (the input's own, which the output would keep) if an output can be written at it.

    A container can claim any rate (10⁶ fps, 1/10⁶ fps); outside `MIN_FPS`…`MAX_FPS` the
    encoders' time bases break (a 10⁶ fps MP4 decodes to no frames), so --fps must choose one.
    """
    if not MIN_FPS <= rate <= MAX_FPS:
        shown = f"{float(rate):,.0f}" if rate >= 1 else f"{float(rate):.9f}".rstrip("0")
        raise ChainError(f"{path} {what} {shown} frames per second; chain writes between {float(MIN_FPS)} "
                         f"and {MAX_FPS}: give --fps (e.g. --fps 25) to retime it")
    return rate


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
