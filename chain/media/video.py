"""Video input through PyAV: files opened as files only, decoded past damage, upright, in time.

A corrupt packet is skipped and counted; a file that ends before what its container promises is
read to its end and reported (`InputDamage`). Phone video's display-matrix rotation and
anamorphic video's non-square pixels are undone on decode, so frames come out as players show
them. Frames keep their own timestamps unless --fps asks for a constant rate. Cover art (an
attached picture) is not video.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from chain.errors import ChainError
from chain.media.sizes import Size, resolve_size
from chain.media.source import Frame, FrameSource, InputDamage, SourceInfo, Trim, check_rate, retime

if TYPE_CHECKING:
    import av

#: Without --fps a frame keeps its own timestamp, except that one within the input's timestamp
#: rounding (its time base, at least this many seconds; at most a quarter frame) of the
#: constant-rate grid is put on it: constant-rate input stored with rounded times (Matroska counts
#: milliseconds) then comes out exactly constant-rate, as before, and variable-rate input keeps its times.
GRID_SNAP_SECONDS = 0.001
#: Pixels within this much of square are taken as square: the BT.601 family (12:11, 10:11, 128:117,
#: the carphone clip's) that CIF and QCIF capture writes, a stretch of at most 9.4 %. Anamorphic
#: video (16:11, 40:33, 4:3 HDV, 2:1) is scaled to square pixels on decode, as players show it.
SQUARE_ENOUGH = Fraction(1, 10)


def open_container(path: Path) -> av.container.InputContainer:
    """Open a local file for reading with FFmpeg, as a file only.

    FFmpeg reads a bare name as a URL (``concat:a.mp4|b.mp4``, ``http:…``, ``subfile,…``); the
    ``file:`` prefix and a protocol whitelist of ``file`` make it open exactly the named file, and
    keep playlists inside the file (HLS, ffconcat) from reaching anything but local files.
    """
    import av  # FFmpeg is loaded on first use, so importing chain stays light
    return av.open(f"file:{Path(path).absolute()}", options={"protocol_whitelist": "file"})


def open_video(path: Path, trim: Trim, wanted: Size | int | None, rate: Fraction | None) -> FrameSource:
    """A lazily decoded video file; see `chain.media.inputs.open_source`.

    Everything that can be decided from the headers and the first frame is decided here, before
    any work: an audio file with only cover art, an empty stream, a rate no output can be written
    at, a size no encoder takes.
    """
    import av  # FFmpeg is loaded on first use, so importing chain stays light
    if trim.seek_frame and rate is not None:
        raise ValueError("a shard (Trim.seek_frame) keeps the input's frame times: --fps cannot be combined")
    try:
        container = open_container(path)
    except (av.FFmpegError, OSError) as error:
        raise ChainError(f"cannot read {path} as a video or image: {_reason(error)}") from None
    try:
        stream = _video_stream(path, container)
        stream.thread_type = "AUTO"  # frame + slice threads: decoding is otherwise single-core
        rotation, has_frames = _first_frame(path, stream.index)
        if has_frames is False:
            raise ChainError(f"{path} has no frames: its video stream is empty")
        in_rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        out_rate = rate or check_rate(Fraction(in_rate), path, "plays at")
        sar = _sample_aspect_ratio(stream)
        shown = _square_pixels(Size(stream.codec_context.width, stream.codec_context.height), sar)
        upright = Size(shown.height, shown.width) if rotation % 180 else shown
        out = resolve_size(upright, wanted, path)
        frame_count, exact = _estimate_frames(path, container, stream, in_rate, out_rate, trim)
        damage = _promise(container, stream, in_rate, trim)
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
    except BaseException:
        container.close()
        raise
    duration = frame_count / out_rate if frame_count is not None else trim.duration
    info = SourceInfo(path, "video", out.width, out.height, upright.width, upright.height, out_rate,
                      frame_count, trim.start, float(duration) if duration is not None else None, audio,
                      rotation=rotation, exact_count=exact, sample_aspect_ratio=sar)
    sized = Size(out.height, out.width) if rotation % 180 else out  # stored orientation, square pixels
    timed = _decode(path, container, stream, trim, sized, out_rate, rotation=rotation, damage=damage,
                    in_rate=Fraction(in_rate))
    if rate is not None:
        frames = retime(timed, out_rate, trim.frame_limit(out_rate), ended=lambda: damage.finished)
    else:
        frames = _keep_times(timed, out_rate, trim, stream.time_base)
    return FrameSource(info, frames, container.close, damage)


def _video_stream(path: Path, container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The first video stream that is not an attached picture (an audio file's cover art)."""
    import av  # FFmpeg is loaded on first use, so importing chain stays light
    covers = av.stream.Disposition.attached_pic
    videos = [s for s in container.streams.video if not s.disposition & covers]
    if videos:
        return videos[0]
    audio = ", an audio file" if container.streams.audio else ""
    if container.streams.video:
        raise ChainError(f"{path} has no video stream, only cover art{audio}: chain reads video or images")
    raise ChainError(f"{path} has no video stream{audio}: chain reads video or images")


def _first_frame(path: Path, index: int) -> tuple[int, bool | None]:
    """The display rotation of the first frame (degrees counter-clockwise, a multiple of 90), and
    whether the stream has a frame at all (None: its first packets are damaged, so who knows).

    Phones store video sideways with a display matrix that players apply; FFmpeg hands it over
    as frame side data, so one frame is decoded (in a separate open, leaving the main one at 0).
    """
    import av  # FFmpeg is loaded on first use, so importing chain stays light
    try:
        with open_container(path) as container:
            for frame in container.decode(container.streams[index]):
                return round(frame.rotation / 90) * 90 % 360, True
            return 0, False
    except av.FFmpegError:
        return 0, None  # damaged or unusual first frames: decoding proper reports what is wrong


def _sample_aspect_ratio(stream: av.video.stream.VideoStream) -> Fraction:
    """The shape of a stored pixel (width / height) that decoding undoes; 1 when the file does not
    say, says nonsense, or is within `SQUARE_ENOUGH` of square."""
    for ratio in (stream.sample_aspect_ratio, stream.codec_context.sample_aspect_ratio):
        if ratio is not None and ratio > 0:
            return Fraction(ratio) if abs(Fraction(ratio) - 1) > SQUARE_ENOUGH else Fraction(1)
    return Fraction(1)


def _square_pixels(stored: Size, sar: Fraction) -> Size:
    """The size a player shows ``stored`` pixels of shape ``sar`` at: one side stretched, none shrunk
    (anamorphic DVD and HDV are widened, as players do; no detail is thrown away)."""
    if sar > 1:
        return Size(max(1, round(stored.width * sar)), stored.height)
    if sar < 1:
        return Size(stored.width, max(1, round(stored.height / sar)))
    return stored


def _estimate_frames(path: Path, container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                     in_rate: Fraction, out_rate: Fraction, trim: Trim) -> tuple[int | None, bool]:
    """Frames the run will deliver, and whether that is the container's own count (not duration x rate)."""
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
        if trim.start > 0:
            raise ChainError(f"--start {trim.start}s is past the end of {path} ({seconds:.2f}s long)")
        remaining = 1  # shorter than one output frame (10⁶ fps input at --fps 25): its first frame
    limit = trim.frame_limit(out_rate)
    return (min(remaining, limit) if limit is not None else remaining), exact


def _promise(container: av.container.InputContainer, stream: av.video.stream.VideoStream, in_rate: Fraction,
             trim: Trim) -> InputDamage:
    """What the container promises for the input's own frames: its count, and where the video ends."""
    count = stream.frames or None
    expected = count - round(trim.start * in_rate) if count and trim.start else count
    slack = 0.5 / float(in_rate) + max(float(stream.time_base or 0), GRID_SNAP_SECONDS)
    return InputDamage(expected=expected, exact=bool(count) and trim.start == 0, end=_stream_end(container, stream),
                       slack=slack)


def _stream_end(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    """Where the video stream ends, in input seconds: its own duration, Matroska's DURATION tag, or
    the container's when the video is all it holds (else the longest stream's end is no promise)."""
    import av  # FFmpeg is loaded on first use, so importing chain stays light
    base = float(stream.time_base or 0)
    start = stream.start_time * base if stream.start_time is not None else media_origin(container)
    if stream.duration and base:
        return start + stream.duration * base
    tag = _DURATION_TAG.match(stream.metadata.get("DURATION", ""))
    if tag:
        hours, minutes, seconds = tag.groups()
        return start + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    if len(container.streams) == 1 and container.duration:
        return media_origin(container) + container.duration / av.time_base
    return None


_DURATION_TAG = re.compile(r"^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$")


def _decode(path: Path, container: av.container.InputContainer, stream: av.video.stream.VideoStream, trim: Trim,
            sized: Size, out_rate: Fraction, *, rotation: int, damage: InputDamage,
            in_rate: Fraction) -> Iterator[tuple[float, np.ndarray]]:
    """The input's frames from ``trim.start`` on, resized (to ``sized``, square pixels) and turned
    upright, each with its time in seconds from ``trim.start``; counted in ``damage``.

    Stops after the first frame at or past ``trim.duration``; --max-frames is the caller's.
    """
    origin = media_origin(container)
    period = 1 / float(out_rate)
    damage.decoded = trim.seek_frame  # a shard (`Trim.seek_frame`) counts the frames before it as read
    # A shard seeks a quarter frame past its keyframe (landing on it, not the one before, despite
    # float rounding); a whole run to --start (the seek lands on the keyframe before it).
    seek = origin + trim.start + (trim.seek_time + 0.25 * period if trim.seek_frame else -0.5 * period)
    previous_time: float | None = None
    for frame in _frames_from(container, stream, seek, damage):
        if frame.time is None:
            continue
        # Where this frame ends: its own duration, else the gap before it, else one frame.
        shown = (float(frame.duration * frame.time_base) if frame.duration and frame.time_base
                 else frame.time - previous_time if previous_time is not None and frame.time > previous_time
                 else 1 / float(in_rate))
        previous_time = frame.time
        damage.reached = max(damage.reached or 0.0, frame.time + shown)
        time = frame.time - origin - trim.start
        if time < trim.seek_time - 0.5 * period:
            continue  # before --start (or the shard's keyframe): the seek lands on the keyframe before it
        rgb = frame.to_ndarray(format="rgb24", width=sized.width, height=sized.height, interpolation="BILINEAR")
        if rotation:
            rgb = np.ascontiguousarray(np.rot90(rgb, rotation // 90))
        damage.decoded += 1
        yield time, rgb
        if trim.duration is not None and time >= trim.duration:
            return
    damage.finished = True
    if damage.decoded == trim.seek_frame and damage.first_error is not None:
        raise ChainError(f"cannot decode any frame of {path}: {damage.first_error}")


def _keep_times(timed: Iterator[tuple[float, np.ndarray]], out_rate: Fraction, trim: Trim,
                time_base: Fraction | None) -> Iterator[Frame]:
    """Frames numbered from ``trim.seek_frame``, each at its own time, or on the ``out_rate`` grid
    when within the input's timestamp rounding of it (see `GRID_SNAP_SECONDS`)."""
    period = 1 / float(out_rate)
    snap = min(0.25 * period, max(GRID_SNAP_SECONDS, float(time_base or 0)))
    limit = trim.frame_limit(out_rate)
    index = trim.seek_frame
    for time, rgb in timed:
        grid = index * period
        yield Frame(index, grid if abs(time - grid) <= snap else max(time, 0.0), rgb)
        index += 1
        if limit is not None and index >= limit:
            return


def _frames_from(container: av.container.InputContainer, stream: av.video.stream.VideoStream, start: float,
                 damage: InputDamage) -> Iterator[av.VideoFrame]:
    """Decoded frames from the keyframe at or before ``start`` seconds (input time) on."""
    if start <= 0:
        yield from _frames_past_damage(container, stream, damage)
        return
    container.seek(int(start / stream.time_base), stream=stream, backward=True)
    frames = _frames_past_damage(container, stream, damage)
    first = next(frames, None)
    if first is None or (first.time is not None and first.time > start):
        # Files without an index (MPEG-TS) can land past the target, or past the last frame when
        # their times are uneven (a long pause): read from the start instead.
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
