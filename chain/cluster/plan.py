"""Split a run into shards, from packet flags alone (nothing is decoded): each starts on any frame,
decoded from the keyframe before it."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from chain.bounds import Smoothing
from chain.errors import ChainError, ChainWarning
from chain.media import Trim
from chain.media.video import media_origin, open_container

#: Smoothing warms up on this many frames before a shard: the past's weight (alpha ** frames) falls
#: below float32's resolution at 1, so the state matches a one-machine run's.
_WARMUP_RESIDUE = 2.0 ** -24


@dataclass(frozen=True)
class Shard:
    """Frames ``first`` to ``stop - 1`` of the run, decoded from the keyframe at run frame ``seek_frame``."""

    number: int
    seek_frame: int  # 0: the run's own start (--start), else a keyframe at or before first - warm-up
    seek_time: float  # seconds after --start
    first: int
    stop: int

    def trim(self, trim: Trim, *, read_past: int = 0) -> Trim:
        """The `Trim` that reads this shard (frame numbers and times stay the run's), and
        ``read_past`` frames after it (``--smooth window`` looks ahead; the run's end still ends it)."""
        return Trim(trim.start, None, self.stop + read_past, seek_frame=self.seek_frame, seek_time=self.seek_time)

    def describe(self, count: int) -> str:
        return f"shard {self.number + 1} of {count} (frames {self.first}-{self.stop - 1})"


@dataclass(frozen=True)
class RunFrames:
    """The frames a one-machine run reads: their times after --start, and which may start a shard."""

    times: list[float]
    keyframes: list[int]  # run indices of keyframes a shard can seek to (never 0)
    fps: Fraction


def look_ahead_frames(smoothing: Smoothing | None) -> int:
    """Frames after a shard its last frames' labels depend on: ``--smooth window:K``'s K, else 0."""
    return smoothing.radius if smoothing is not None and smoothing.mode == "window" else 0


def warmup_frames(smoothing: Smoothing | float | None) -> int:
    """Frames of warm-up before a shard for ``--smooth ema:ALPHA`` or ``flow:ALPHA`` (0 without
    smoothing): enough for the weight of the frames before the warm-up to fall below the residue."""
    if isinstance(smoothing, Smoothing) and smoothing.mode == "window":
        return smoothing.radius  # a frame's labels reach back this far, and no further
    alpha = smoothing.alpha if isinstance(smoothing, Smoothing) else smoothing
    if not alpha:
        return 0
    return math.ceil(math.log(_WARMUP_RESIDUE) / math.log(alpha))


def run_frames(path: Path, trim: Trim) -> RunFrames:
    """Demux ``path`` (no decoding) and list the frames a run with ``trim`` reads, as the decoder does."""
    import av  # FFmpeg is loaded on first use, so importing chain stays light
    try:
        with open_container(path) as container:
            stream = container.streams.video[0]
            fps = Fraction(stream.average_rate or stream.guessed_rate or 25)
            origin = media_origin(container)
            packets = sorted((float(packet.pts * packet.time_base), packet.is_keyframe)
                             for packet in container.demux(stream) if packet.pts is not None and packet.size)
    except (av.FFmpegError, OSError, IndexError) as error:
        raise ChainError(f"cannot read the packets of {path} to split it: {error}") from None
    period = 1 / float(fps)
    limit = trim.frame_limit(fps)
    times: list[float] = []
    keyframes: list[int] = []
    previous = -math.inf
    for pts, keyframe in packets:
        time = pts - origin - trim.start
        if time >= -0.5 * period:  # what `chain.media.video` keeps
            # A shard seeking here skips frames more than half a frame before it: the frame
            # before must be that far back, or the shard would read it too.
            if keyframe and times and previous < time - 0.5 * period - 1e-9:
                keyframes.append(len(times))
            times.append(time)
            if (limit is not None and len(times) >= limit) or (trim.duration is not None and time >= trim.duration):
                break
        previous = time
    if not times:
        raise ChainError(f"{path} yielded no frames (check --start/--duration)")
    return RunFrames(times, keyframes, fps)


def check_shard_seconds(shard_seconds: float | None) -> None:
    """A `ChainError` unless ``--shard-seconds`` is absent or positive (checked before Ray starts too)."""
    if shard_seconds is not None and not shard_seconds > 0:
        raise ChainError(f"--shard-seconds must be > 0, got {shard_seconds}")


def plan_shards(frames: RunFrames, *, shards: int | None = None, shard_seconds: float | None = None,
                warmup: int = 0) -> list[Shard]:
    """Shards of equal length (``shards`` of them, or ``shard_seconds`` each), starting on any frame.

    A shard that starts between keyframes is decoded from the keyframe at or before its warm-up and
    drops the frames before it. Fewer shards come out only when the run has fewer frames than that
    (a `ChainWarning` says so).
    """
    total = len(frames.times)
    if shard_seconds is not None:
        check_shard_seconds(shard_seconds)
        wanted = max(1, math.ceil((frames.times[-1] + 1 / float(frames.fps)) / shard_seconds))
    else:
        wanted = shards or 1
        if wanted < 1:
            raise ChainError(f"--shards must be >= 1, got {wanted}")
    if wanted > total:
        warnings.warn(f"{wanted} shards asked for, but the run has {total} frame{'s' if total != 1 else ''}: "
                      f"running {total} shard{'s' if total != 1 else ''} of one frame", ChainWarning, stacklevel=2)
        wanted = total
    starts = [round(i * total / wanted) for i in range(wanted)]
    plan = []
    for number, (first, stop) in enumerate(zip(starts, starts[1:] + [total])):
        seek = max((k for k in frames.keyframes if k <= first - warmup), default=0) if first else 0
        plan.append(Shard(number, seek, frames.times[seek] if seek else 0.0, first, stop))
    return plan
