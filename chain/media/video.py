"""Video input through PyAV: files opened as files only, decoded past damage, upright, in time.

A corrupt packet is skipped and counted; a file that ends before its container's frame count is
read to its end and reported (`InputDamage`). Phone video's display-matrix rotation is applied on
decode. Frames keep their own timestamps unless --fps asks for a constant rate.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from chain.errors import ChainError
from chain.media.sizes import Size, resolve_size
from chain.media.source import Frame, FrameSource, InputDamage, SourceInfo, Trim

if TYPE_CHECKING:
    import av

#: Without --fps a frame keeps its own timestamp, except that one within the input's timestamp
#: rounding (its time base, at least this many seconds; at most a quarter frame) of the
#: constant-rate grid is put on it: constant-rate input stored with rounded times (Matroska counts
#: milliseconds) then comes out exactly constant-rate, as before, and variable-rate input keeps its times.
GRID_SNAP_SECONDS = 0.001


def open_container(path: Path) -> av.container.InputContainer:
    """Open a local file for reading with FFmpeg, as a file only.

    FFmpeg reads a bare name as a URL (``concat:a.mp4|b.mp4``, ``http:…``, ``subfile,…``); the
    ``file:`` prefix and a protocol whitelist of ``file`` make it open exactly the named file, and
    keep playlists inside the file (HLS, ffconcat) from reaching anything but local files.
    """
    import av  # FFmpeg is loaded on first use, so importing chain stays light
    return av.open(f"file:{Path(path).absolute()}", options={"protocol_whitelist": "file"})


def open_video(path: Path, trim: Trim, wanted: Size | None, rate: Fraction | None) -> FrameSource:
    """A lazily decoded video file (or animated GIF); see `chain.media.inputs.open_source`."""
    import av  # FFmpeg is loaded on first use, so importing chain stays light
    try:
        container = open_container(path)
    except (av.FFmpegError, OSError) as error:
        raise ChainError(f"cannot read {path} as a video or image: {_reason(error)}") from None
    try:
        if not container.streams.video:
            raise ChainError(f"{path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads: decoding is otherwise single-core
        in_rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        out_rate = rate or Fraction(in_rate)
        rotation = _rotation(path)
        stored = Size(stream.codec_context.width, stream.codec_context.height)
        upright = Size(stored.height, stored.width) if rotation % 180 else stored
        out = resolve_size(upright, wanted)
        frame_count, exact = _estimate_frames(path, container, stream, in_rate, out_rate, trim)
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
    except BaseException:
        container.close()
        raise
    duration = frame_count / out_rate if frame_count is not None else trim.duration
    info = SourceInfo(path, "video", out.width, out.height, upright.width, upright.height, out_rate,
                      frame_count, trim.start, float(duration) if duration is not None else None, audio,
                      rotation=rotation, exact_count=exact)
    damage = InputDamage(expected=frame_count, exact=exact)
    frames = _decode(path, container, stream, trim, out, out_rate, resample=rate is not None, rotation=rotation,
                     damage=damage)
    return FrameSource(info, frames, container.close, damage)


def _rotation(path: Path) -> int:
    """The display rotation of the first frame (degrees counter-clockwise, a multiple of 90).

    Phones store video sideways with a display matrix that players apply; FFmpeg hands it over
    as frame side data, so one frame is decoded (in a separate open, leaving the main one at 0).
    """
    import av  # FFmpeg is loaded on first use, so importing chain stays light
    try:
        with open_container(path) as container:
            for frame in container.decode(video=0):
                return round(frame.rotation / 90) * 90 % 360
    except av.FFmpegError:
        pass  # damaged or unusual first frames: decoding proper reports what is wrong
    return 0


def _estimate_frames(path: Path, container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                     in_rate: Fraction, out_rate: Fraction, trim: Trim) -> tuple[int | None, bool]:
    """Frames the run will read, and whether that is the container's own count (not duration x rate)."""
    import av  # FFmpeg is loaded on first use, so importing chain stays light
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / av.time_base
    else:
        return trim.frame_limit(out_rate), False
    exact = bool(stream.frames) and out_rate == in_rate and trim.start == 0
    total = stream.frames if stream.frames and out_rate == in_rate else round(seconds * out_rate)
    remaining = total - round(trim.start * out_rate)
    if remaining <= 0:
        raise ChainError(f"--start {trim.start}s is past the end of {path} ({seconds:.2f}s long)")
    limit = trim.frame_limit(out_rate)
    return (min(remaining, limit) if limit is not None else remaining), exact


def _decode(path: Path, container: av.container.InputContainer, stream: av.video.stream.VideoStream, trim: Trim,
            out: Size, out_rate: Fraction, *, resample: bool, rotation: int, damage: InputDamage) -> Iterator[Frame]:
    """Decode from ``trim.start``, resize, turn upright, and (with ``resample``) retime to ``out_rate``.

    Without ``resample`` each frame keeps its own time from the input's start (snapped to the
    ``out_rate`` grid when within the input's timestamp rounding of it, see `GRID_SNAP_SECONDS`).
    """
    origin = media_origin(container)
    limit = trim.frame_limit(out_rate)
    period = 1 / float(out_rate)
    snap = min(0.25 * period, max(GRID_SNAP_SECONDS, float(stream.time_base or 0)))
    sized = Size(out.height, out.width) if rotation % 180 else out  # stored orientation
    index = trim.seek_frame
    damage.decoded = trim.seek_frame  # a shard (`Trim.seek_frame`) counts the frames before it as read
    previous: np.ndarray | None = None
    if trim.seek_frame and resample:
        raise ValueError("a shard (Trim.seek_frame) keeps the input's frame times: --fps cannot be combined")
    # A shard seeks a quarter frame past its keyframe (landing on it, not the one before, despite
    # float rounding); a whole run to --start (the seek lands on the keyframe before it).
    seek = origin + trim.start + (trim.seek_time + 0.25 * period if trim.seek_frame else -0.5 * period)
    for frame in _frames_from(container, stream, seek, damage):
        if frame.time is None:
            continue
        time = frame.time - origin - trim.start
        if time < trim.seek_time - 0.5 * period:
            continue  # before --start (or the shard's keyframe): the seek lands on the keyframe before it
        rgb = frame.to_ndarray(format="rgb24", width=sized.width, height=sized.height, interpolation="BILINEAR")
        if rotation:
            rgb = np.ascontiguousarray(np.rot90(rgb, rotation // 90))
        if not resample:
            grid = index * period
            damage.decoded += 1
            yield Frame(index, grid if abs(time - grid) <= snap else max(time, 0.0), rgb)
            index += 1
        else:
            # Emit every output tick that falls before this frame with the previous frame,
            # which repeats frames when slowing down and drops them when speeding up.
            while previous is not None and index / out_rate <= time - 0.5 * period:
                if limit is not None and index >= limit:
                    return
                damage.decoded += 1
                yield Frame(index, index * period, previous)
                index += 1
            previous = rgb
        if limit is not None and index >= limit:
            return
        if trim.duration is not None and time >= trim.duration:
            return
    damage.finished = True
    if resample and previous is not None and (limit is None or index < limit):
        damage.decoded += 1
        yield Frame(index, index * period, previous)
    if damage.decoded == 0 and damage.first_error is not None:
        raise ChainError(f"cannot decode any frame of {path}: {damage.first_error}")


def _frames_from(container: av.container.InputContainer, stream: av.video.stream.VideoStream, start: float,
                 damage: InputDamage) -> Iterator[av.VideoFrame]:
    """Decoded frames from the keyframe at or before ``start`` seconds (input time) on."""
    if start <= 0:
        yield from _frames_past_damage(container, stream, damage)
        return
    container.seek(int(start / stream.time_base), stream=stream, backward=True)
    frames = _frames_past_damage(container, stream, damage)
    first = next(frames, None)
    if first is not None and first.time is not None and first.time > start:
        # Files without an index (MPEG-TS) can land past the target: read from the start instead.
        frames.close()
        container.seek(0)
        frames = _frames_past_damage(container, stream, damage)
    elif first is not None:
        yield first
    yield from frames


def _frames_past_damage(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                        damage: InputDamage) -> Iterator[av.VideoFrame]:
    """Decoded frames, packet by packet: a packet the decoder rejects is counted and skipped.

    A failure of the container itself (unreadable data past some point) ends the input there;
    the frame count then falls short of what the container promised.
    """
    import av  # FFmpeg is loaded on first use, so importing chain stays light
    try:
        for packet in container.demux(stream):
            try:
                frames = stream.decode(packet)
            except av.FFmpegError as error:
                damage.skipped_frames += 1
                damage.first_error = damage.first_error or _reason(error)
                continue
            yield from frames
    except av.FFmpegError as error:
        damage.first_error = damage.first_error or _reason(error)
        try:
            yield from stream.decode(None)  # the frames still inside the decoder
        except av.FFmpegError:
            pass


def _reason(error: Exception) -> str:
    """FFmpeg's message without the errno and the C function name."""
    return getattr(error, "strerror", None) or str(error)


def media_origin(container: av.container.InputContainer) -> float:
    """The input's time zero in seconds: where its earliest stream starts (MPEG-TS starts at ~1.4 s).

    Video and audio are both read against it, so sound and pictures keep their offset.
    """
    import av  # FFmpeg is loaded on first use, so importing chain stays light
    return container.start_time / av.time_base if container.start_time is not None else 0.0
