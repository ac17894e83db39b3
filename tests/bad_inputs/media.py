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
