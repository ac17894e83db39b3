"""Hostile inputs: damaged and truncated video, rotated phone video, variable frame rate, animated
GIFs, names FFmpeg would read as URLs, and sizes and rates no run can use."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from tests.bad_inputs import case, make_video

RUN = ["run", "--seg", "palette:voc", "--synth", "colorize", "-q"]


def video_times(path: Path) -> list[float]:
    """Presentation times of every frame of ``path``'s video, in seconds."""
    with av.open(str(path)) as container:
        return [frame.time for frame in container.decode(video=0)]


def corrupt_packets(path: Path, which: list[int]) -> Path:
    """Invert the bytes of the given video packets in place: the decoder rejects them."""
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    data = bytearray(path.read_bytes())
    for index in which:
        position, size = packets[index]
        data[position:position + size] = bytes(255 - b for b in data[position:position + size])
    path.write_bytes(bytes(data))
    return path


def make_faststart_video(path: Path, frames: int) -> Path:
    """An MP4 with its index first (as phones and web encoders write it), so a truncated copy opens."""
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        noise = np.random.default_rng(0)  # noise: every frame costs about the same bytes
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(noise.integers(0, 255, (48, 64, 3), dtype=np.uint8), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def make_rotated_video(path: Path, rotation: int, frames: int = 3) -> Path:
    """A 64x48 clip stored sideways with a display matrix (as phones write portrait video).

    Each stored frame is white in its top-left 8x8 corner, black elsewhere.
    """
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(rotation)
        for i in range(frames):
            rgb = np.zeros((48, 64, 3), np.uint8)
            rgb[:8, :8] = 255
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


GIF_DELAYS_MS = [100, 200, 100, 300, 100]


def make_gif(path: Path) -> Path:
    """An animated GIF of five grey levels with uneven delays (GIF frames carry their own)."""
    frames = [Image.fromarray(np.full((30, 40, 3), 40 * i, np.uint8)) for i in range(len(GIF_DELAYS_MS))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=GIF_DELAYS_MS, loop=0)
    return path


# --- 4. damaged input ------------------------------------------------------------------------

def _damaged(folder: Path) -> str:
    corrupt_packets(make_video(folder / "in.mp4", frames=120, fps=24), [40, 41, 42])
    return "in.mp4"


def _check_damaged(folder: Path) -> None:
    assert len(video_times(folder / "out.mp4")) == 117  # 120 less the three corrupt packets


@case("damaged-packets", "warning", message=r"^warning: in\.mp4: skipped 3 damaged frames .*117 frames",
      outputs=("out.mp4",), check=_check_damaged)
def _(folder: Path) -> list[str]:
    return [*RUN, _damaged(folder), "out.mp4"]


def _nothing_written(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == ["in.mp4"], list(folder.iterdir())


@case("damaged-packets-strict", "error", message=r"in\.mp4 is damaged: skipped 3 damaged frames.*--strict",
      check=_nothing_written)
def _(folder: Path) -> list[str]:
    return [*RUN, "--strict", _damaged(folder), "out.mp4", "--summary", "run.json"]


def _truncated(folder: Path) -> str:
    whole = make_faststart_video(folder / "whole.mp4", frames=132).read_bytes()
    (folder / "whole.mp4").unlink()
    (folder / "in.mp4").write_bytes(whole[: len(whole) // 2])
    return "in.mp4"


def _check_truncated(folder: Path) -> None:
    import json
    damage = json.loads((folder / "run.json").read_text())["run"]["input_damage"]
    assert damage["expected"] == 132 and 50 < damage["decoded"] < 80, damage
    assert len(video_times(folder / "out.mp4")) == damage["decoded"]


@case("truncated-at-half", "warning", message=r"^warning: in\.mp4: .*decoded \d+ of the 132 frames",
      outputs=("out.mp4", "run.json"), check=_check_truncated)
def _(folder: Path) -> list[str]:
    return [*RUN, _truncated(folder), "out.mp4", "--summary", "run.json"]


@case("truncated-at-half-strict", "error", message=r"in\.mp4 is damaged: .*of the 132 frames", check=_nothing_written)
def _(folder: Path) -> list[str]:
    return [*RUN, "--strict", _truncated(folder), "out.mp4"]


@case("every-packet-damaged", "error", message=r"cannot decode any frame of in\.mp4")
def _(folder: Path) -> list[str]:
    corrupt_packets(make_video(folder / "in.mp4", frames=4), [0, 1, 2, 3])
    return [*RUN, "in.mp4", "out.mp4"]


# --- 5. rotated phone video ------------------------------------------------------------------

def _check_upright(folder: Path) -> None:
    with av.open(str(folder / "out.mp4")) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (48, 64)  # stored 64x48, shown portrait
        assert frame.rotation == 0  # turned on decode: the output needs no display matrix
        rgb = frame.to_ndarray(format="rgb24")
    # 90° counter-clockwise: the stored top-left corner (white, painted in a class colour) is now
    # bottom-left; everywhere else is black (VOC background).
    corner, elsewhere = rgb[-4, 3].astype(int).sum(), max(rgb[3, 3].sum(), rgb[3, -4].sum(), rgb[-4, -4].sum())
    assert corner > elsewhere + 150, (rgb[-4, 3], rgb[3, 3], rgb[3, -4], rgb[-4, -4])


@case("rotated-phone-video", "output", outputs=("out.mp4",), check=_check_upright)
def _(folder: Path) -> list[str]:
    make_rotated_video(folder / "in.mp4", 90)
    return [*RUN, "in.mp4", "out.mp4"]


# --- 6. variable frame rate ------------------------------------------------------------------

VFR_TIMES = [0.0, 0.1, 0.15, 0.2, 0.6, 0.65, 0.7, 1.5, 1.55, 1.6]


def _check_vfr(folder: Path) -> None:
    times = video_times(folder / "out.mp4")
    assert len(times) == len(VFR_TIMES)
    assert max(abs(a - b) for a, b in zip(times, VFR_TIMES)) < 0.01, times  # each frame at its own time


@case("variable-frame-rate", "output", outputs=("out.mp4",), check=_check_vfr)
def _(folder: Path) -> list[str]:
    make_video(folder / "in.mp4", frames=len(VFR_TIMES), times=VFR_TIMES)
    return [*RUN, "in.mp4", "out.mp4"]


# --- 8. info on images -----------------------------------------------------------------------

@case("info-image", "output")
def _(folder: Path) -> list[str]:
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(folder / "in.png")
    return ["info", "in.png"]


@case("info-image-folder", "output")
def _(folder: Path) -> list[str]:
    (folder / "frames").mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(folder / "frames" / f"{i}.png")
    return ["info", "frames"]


# --- 9. animated GIF -------------------------------------------------------------------------

def _check_gif(folder: Path) -> None:
    times = video_times(folder / "out.mp4")
    starts = np.cumsum([0, *GIF_DELAYS_MS[:-1]]) / 1000
    rate = Fraction(len(GIF_DELAYS_MS) * 1000, sum(GIF_DELAYS_MS))  # the GIF's average rate
    assert len(times) == len(GIF_DELAYS_MS)
    assert max(abs(a - b) for a, b in zip(times, starts)) <= 0.25 / rate, times


@case("animated-gif", "output", outputs=("out.mp4",), check=_check_gif)
def _(folder: Path) -> list[str]:
    make_gif(folder / "in.gif")
    return [*RUN, "in.gif", "out.mp4"]


@case("animated-gif-to-frames", "output", outputs=("frames/000004.png",))
def _(folder: Path) -> list[str]:
    make_gif(folder / "in.gif")
    return [*RUN, "in.gif", "frames"]


# --- 14. names FFmpeg reads as URLs ----------------------------------------------------------

CONCAT_NAME = "concat:in.mp4|in.mp4"


@case("concat-url-name-of-a-text-file", "error", message=r"cannot read concat:in\.mp4\|in\.mp4")
def _(folder: Path) -> list[str]:
    make_video(folder / "in.mp4")
    (folder / CONCAT_NAME).write_text("not a video: FFmpeg must not read in.mp4 twice instead")
    return [*RUN, CONCAT_NAME, "out.mp4"]


def _check_concat_read_as_itself(folder: Path) -> None:
    assert len(video_times(folder / "out.mp4")) == 3  # the named file's 3 frames, not in.mp4's 12 twice


@case("concat-url-name-of-a-video", "output", outputs=("out.mp4",), check=_check_concat_read_as_itself)
def _(folder: Path) -> list[str]:
    make_video(folder / "in.mp4", frames=12)
    make_video(folder / CONCAT_NAME, frames=3)
    return [*RUN, CONCAT_NAME, "out.mp4"]


# --- 13. sizes and rates no run can use ------------------------------------------------------

@case("size-100000", "error", message=r"--size 100000 is too large: at most 16384 pixels a side")
def _(folder: Path) -> list[str]:
    return [*RUN, "--size", "100000", make_video(folder / "in.mp4").name, "out.mp4"]


@case("size-wxh-too-large", "error", message=r"--size 20000x100 is too large.*6 MiB of memory")
def _(folder: Path) -> list[str]:
    return [*RUN, "--size", "20000x100", make_video(folder / "in.mp4").name, "out.mp4"]


@case("size-short-side-makes-long-side-too-large", "error", message=r"--size 16000 makes 21334x16000 frames")
def _(folder: Path) -> list[str]:
    return [*RUN, "--size", "16000", make_video(folder / "in.mp4").name, "out.mp4"]


@case("fps-too-small", "error", message=r"--fps 0\.0001 is out of range: give a number of frames per second from 0\.001 to 1000")
def _(folder: Path) -> list[str]:
    return [*RUN, "--fps", "0.0001", make_video(folder / "in.mp4").name, "out.mp4"]


@case("fps-nan", "error", message=r"--fps nan is not a finite number: give a number of frames per second")
def _(folder: Path) -> list[str]:
    return [*RUN, "--fps", "nan", make_video(folder / "in.mp4").name, "out.mp4"]


@case("fps-inf", "error", message=r"--fps inf is not a finite number: give a number of frames per second")
def _(folder: Path) -> list[str]:
    return [*RUN, "--fps", "inf", make_video(folder / "in.mp4").name, "out.mp4"]


@case("duration-nan", "error", message=r"--duration nan is not a finite number: give a number of seconds")
def _(folder: Path) -> list[str]:
    return [*RUN, "--duration", "nan", make_video(folder / "in.mp4").name, "out.mp4"]



# --- issue 24: what a container claims (pixel shape, rate, frames, cover art) --------------------

def make_clip(path: Path, *, frames: int = 3, size: tuple[int, int] = (64, 48), fps: Fraction | int = 10,
              sar: Fraction | None = None, codec: str = "libx264") -> Path:
    """A clip of ``frames`` grey levels; ``sar`` sets the stored pixels' shape (anamorphic video).

    No B-frames: at extreme rates the MP4 muxer mis-times reordered frames.
    """
    width, height = size
    options = {"bf": "0"} if codec == "libx264" else {}
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if sar is not None:
            stream.codec_context.sample_aspect_ratio = sar
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 60 * i % 256, np.uint8), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def add_tone(container: av.container.OutputContainer, codec: str, rate: int = 48000,
             first: av.Packet | None = None) -> None:
    """A second of 440 Hz in a new audio stream of ``container`` (``first``: a packet muxed before it)."""
    audio = container.add_stream(codec, rate=rate, layout="mono")
    container.start_encoding()
    if first is not None:
        container.mux(first)
    size = audio.codec_context.frame_size or 1024
    fmt = audio.codec_context.format.name
    tone = (0.3 * np.sin(np.arange(rate) * 2 * np.pi * 440 / rate)).astype(np.float32)[None]
    for start in range(0, tone.shape[1] - size, size):
        chunk = tone[:, start:start + size]
        if fmt.startswith("s"):  # integer samples: s16 (FLAC), s32p (LAME)
            bits = 16 if fmt.startswith("s16") else 32
            chunk = (chunk * (2 ** (bits - 1) - 1)).astype(np.int16 if bits == 16 else np.int32)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=fmt, layout="mono")
        frame.sample_rate, frame.pts = rate, start
        container.mux(audio.encode(frame))
    container.mux(audio.encode(None))


def make_cover_art_audio(path: Path) -> Path:
    """An audio file (mp3 or flac) with a PNG cover: an attached-picture video stream of one packet."""
    import io

    cover = io.BytesIO()
    Image.fromarray(np.full((50, 60, 3), 128, np.uint8)).save(cover, "PNG")
    codec, rate = {".mp3": ("libmp3lame", 44100), ".flac": ("flac", 48000)}[path.suffix]
    with av.open(str(path), "w") as container:
        art = container.add_stream("png", rate=1)
        art.width, art.height, art.pix_fmt = 60, 50, "rgb24"
        art.disposition = av.stream.Disposition.attached_pic
        packet = av.Packet(cover.getvalue())
        packet.stream, packet.pts, packet.dts = art, 0, 0
        add_tone(container, codec, rate, first=packet)
    return path


def make_empty_video(path: Path) -> Path:
    """A video stream with no frames beside a second of sound (a recording that never got a picture)."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libvpx-vp9" if path.suffix == ".webm" else "libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        add_tone(container, "libopus" if path.suffix == ".webm" else "aac")
        container.mux(video.encode(None))
    return path


def _check_size(width: int, height: int, frames: int | None = None) -> callable:
    def check(folder: Path) -> None:
        with av.open(str(folder / "out.mp4")) as container:
            decoded = [f for f in container.decode(video=0)]
        assert (decoded[0].width, decoded[0].height) == (width, height), (decoded[0].width, decoded[0].height)
        assert frames is None or len(decoded) == frames, len(decoded)

    return check


# Non-square pixels are scaled square on decode, one side stretched (players show them so); within
# 10 % of square (BT.601's 12:11, 10:11) they are taken as square.
for _sar, _shown in ((Fraction(2), (128, 48)), (Fraction(1, 2), (64, 96)), (Fraction(4, 3), (86, 48)),
                     (Fraction(16, 11), (94, 48)), (Fraction(40, 33), (78, 48)), (Fraction(12, 11), (64, 48)),
                     (Fraction(10, 11), (64, 48))):
    for _ext in ("mp4", "mkv", "avi"):
        @case(f"sar-{_sar.numerator}-{_sar.denominator}-{_ext}", "output", outputs=("out.mp4",),
              check=_check_size(*_shown, frames=3))
        def _(folder: Path, sar: Fraction = _sar, ext: str = _ext) -> list[str]:
            make_clip(folder / f"in.{ext}", sar=sar, codec="mpeg4" if ext == "avi" else "libx264")
            return [*RUN, f"in.{ext}", "out.mp4"]


@case("sar-17-1-needs-size", "error", message=r"in\.mp4 is 17408x1024: .*16384 pixels a side; give --size")
def _(folder: Path) -> list[str]:
    make_clip(folder / "in.mp4", sar=Fraction(17), size=(1024, 1024), frames=1)
    return [*RUN, "in.mp4", "out.mp4"]


@case("sar-2-1-with-short-side", "output", outputs=("out.mp4",), check=_check_size(96, 36))
def _(folder: Path) -> list[str]:
    make_clip(folder / "in.mp4", sar=Fraction(2))  # shown 128x48: --size 36 keeps that shape
    return [*RUN, "--size", "36", "in.mp4", "out.mp4"]


@case("video-20000x2-needs-size", "error", message=r"in\.webm is 20000x2: .*e\.g\. --size 16384x2")
def _(folder: Path) -> list[str]:
    make_clip(folder / "in.webm", size=(20000, 2), codec="libvpx-vp9", frames=2)
    return [*RUN, "in.webm", "out.mp4"]


# Rates no output can be written at are refused unless --fps retimes them; the bounds themselves work.
for _rate, _name in ((Fraction(10**6), "1000000"), (Fraction(1, 10**4), "0.0001"), (Fraction(1001), "1001")):
    @case(f"input-rate-{_name}-fps", "error", message=r"in\.mp4 plays at [\d,.]+ frames per second; .*give --fps")
    def _(folder: Path, rate: Fraction = _rate) -> list[str]:
        return [*RUN, make_clip(folder / "in.mp4", fps=rate, frames=12).name, "out.mp4"]


@case("input-rate-1000000-fps-retimed", "output", outputs=("out.mp4",), check=_check_size(64, 48, frames=1))
def _(folder: Path) -> list[str]:
    make_clip(folder / "in.mp4", fps=Fraction(10**6), frames=12)  # 12 µs: one frame at 25 fps
    return [*RUN, "--fps", "25", "--strict", "in.mp4", "out.mp4"]


@case("input-rate-1000-fps", "output", outputs=("out.mp4",), check=_check_size(64, 48, frames=12))
def _(folder: Path) -> list[str]:
    return [*RUN, make_clip(folder / "in.mp4", fps=1000, frames=12).name, "out.mp4"]


# Audio files: cover art is not video.
for _ext in ("mp3", "flac"):
    for _command in ("run", "info"):
        @case(f"cover-art-{_ext}-{_command}", "error", exit_code=2,
              message=rf"in\.{_ext} has no video stream, only cover art, an audio file")
        def _(folder: Path, ext: str = _ext, command: str = _command) -> list[str]:
            make_cover_art_audio(folder / f"in.{ext}")
            return [*RUN, f"in.{ext}", "out.mp4"] if command == "run" else ["info", f"in.{ext}"]


# A stream with no frames says so, and never blames a --start nobody gave.
for _ext in ("mkv", "webm"):
    for _command in ("run", "info"):
        @case(f"no-frames-{_ext}-{_command}", "error", message=rf"^error: in\.{_ext} has no frames: its video stream is empty")
        def _(folder: Path, ext: str = _ext, command: str = _command) -> list[str]:
            make_empty_video(folder / f"in.{ext}")
            return [*RUN, f"in.{ext}", "out.mp4"] if command == "run" else ["info", f"in.{ext}"]


# False damage: intact input is judged on what its container promises, before --fps retimes it.
_CODECS = {"mp4": "libx264", "mkv": "libx264", "webm": "libvpx-vp9", "avi": "mpeg4", "mov": "libx264"}
for _ext, _codec in _CODECS.items():
    for _fps in ("30", "4"):
        @case(f"intact-10fps-{_ext}-at-fps-{_fps}-strict", "output", outputs=("out.mp4",))
        def _(folder: Path, ext: str = _ext, codec: str = _codec, fps: str = _fps) -> list[str]:
            make_video(folder / f"in.{ext}", frames=12, fps=10, codec=codec)
            return [*RUN, "--fps", fps, "--strict", f"in.{ext}", "out.mp4"]

PAUSE_TIMES = [0.0, 0.1, 0.2, 30.2, 30.3, 30.4]  # 30 s without a new frame (a dashcam parked)
for _ext, _codec in (*_CODECS.items(), ("ts", "libx264")):
    for _fps in (None, "30"):
        @case(f"intact-pause-30s-{_ext}{'-at-fps-' + _fps if _fps else ''}-strict", "output", outputs=("out.mp4",))
        def _(folder: Path, ext: str = _ext, codec: str = _codec, fps: str | None = _fps) -> list[str]:
            make_video(folder / f"in.{ext}", frames=len(PAUSE_TIMES), times=PAUSE_TIMES, codec=codec)
            return [*RUN, *(["--fps", fps] if fps else []), "--strict", f"in.{ext}", "out.mp4"]


def _truncated_matroska(folder: Path, ext: str) -> str:
    """A Matroska file cut at half: it has no frame count, only a duration to break."""
    whole = make_video(folder / f"whole.{ext}", frames=120, fps=24,
                       codec="libvpx-vp9" if ext == "webm" else "libx264").read_bytes()
    (folder / f"whole.{ext}").unlink()
    (folder / f"in.{ext}").write_bytes(whole[: len(whole) // 2])
    return f"in.{ext}"


for _ext in ("mkv", "webm"):
    for _fps in (None, "30"):
        @case(f"truncated-{_ext}{'-at-fps-' + _fps if _fps else ''}", "warning",
              message=rf"^warning: in\.{_ext}: decoded \d+ frames, up to [\d.]+s of the 5\.00s the file promised")
        def _(folder: Path, ext: str = _ext, fps: str | None = _fps) -> list[str]:
            return [*RUN, *(["--fps", fps] if fps else []), _truncated_matroska(folder, ext), "out.mp4"]


@case("truncated-at-half-at-fps-strict", "error", message=r"in\.mp4 is damaged: .*of the 132 frames")
def _(folder: Path) -> list[str]:
    return [*RUN, "--fps", "30", "--strict", _truncated(folder), "out.mp4"]


# AVI's MPEG-4 Part 2 encoder codes at most 8191 pixels a side: refused before any work, not at the first frame.
for _width, _suffix, _expect in ((8190, ".avi", "output"), (8192, ".avi", "error"), (8192, ".mp4", "output"),
                                 (12000, ".avi", "error"), (12000, ".mkv", "output")):
    def _build(folder: Path, width: int = _width, suffix: str = _suffix) -> list[str]:
        make_video(folder / "wide.mp4", frames=2, size=(width, 16))
        return ["run", "wide.mp4", f"out{suffix}", "--seg", "palette:voc", "--synth", "colorize", "-q"]

    case(f"a-{_width}-wide-video-into-{_suffix.strip('.')}", _expect, outputs=(f"out{_suffix}",) if _expect == "output" else (),
         message=r"AVI's MPEG-4 encoder takes at most 8191 pixels a side" if _expect == "error" else None)(_build)
