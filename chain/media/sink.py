"""Frame sinks: a video file, a folder of PNG frames, or one image, written atomically.

Every sink writes under a temporary name beside its target (`chain.media.targets.staging_path`)
and moves it into place in `commit`; `abort` removes it. A run that fails or is interrupted
therefore never leaves a half-written file that looks finished, and an existing path is
replaced only if chain wrote it (`chain.media.targets`).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from chain.errors import ChainError
from chain.media.audio import AudioPassthrough
from chain.media.sizes import Size, even_size
from chain.media.targets import (
    FOLDER_MARKER,
    OWNER_TAG,
    Staged,
    discard,
    publish_all,
    remove_stale_staging,
    staging_path,
)
from chain.version import __version__

if TYPE_CHECKING:
    import av

IMAGE_OUTPUT_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})

# Encoder settings by output extension: (container format, codec, pixel format, options).
# CRF 18 with x264 is visually lossless for most footage; "medium" costs ~5 ms a frame at
# 256x144 here, nothing next to the networks.
_VIDEO_FORMATS: dict[str, tuple[str, str, str, dict[str, str]]] = {
    ".mp4": ("mp4", "libx264", "yuv420p", {"crf": "18", "preset": "medium"}),
    ".m4v": ("mp4", "libx264", "yuv420p", {"crf": "18", "preset": "medium"}),
    ".mov": ("mov", "libx264", "yuv420p", {"crf": "18", "preset": "medium"}),
    ".mkv": ("matroska", "libx264", "yuv420p", {"crf": "18", "preset": "medium"}),
    ".webm": ("webm", "libvpx-vp9", "yuv420p", {"crf": "32", "b": "0", "row-mt": "1"}),
    ".avi": ("avi", "mpeg4", "yuv420p", {"qscale": "3"}),
}
VIDEO_OUTPUT_EXTENSIONS = frozenset(_VIDEO_FORMATS)
# Video timestamps count tenths of a frame, so frames keep their own times (variable frame rate)
# to within 1/20 of a frame while constant-rate frames land exactly on the rate's grid. AVI has no
# timestamps (frame n plays at n/rate; gaps are filled by repeating a frame), so it counts frames.
_TICKS_PER_FRAME = 10
# libx264's preset names (x264.h, x264_preset_names), which FFmpeg's "preset" option passes on.
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")


def check_preset(preset: str | None) -> None:
    """A `ChainError` unless ``preset`` is None or one of libx264's presets (FFmpeg would only fail
    when the encoder opens, after the networks have loaded)."""
    if preset is not None and preset not in X264_PRESETS:
        raise ChainError(f"--preset {preset!r} is not an x264 preset; choose one of {', '.join(X264_PRESETS)}")


class FrameSink(ABC):
    """Somewhere frames go. Write frames in order, then `commit` (or `abort` on failure)."""

    kind = "file"  # a `chain.media.targets` kind: what may be replaced at the target

    def __init__(self, target: Path) -> None:
        self.target = target
        self.frames_written = 0
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(target)
        self.staging = staging_path(target)

    @abstractmethod
    def write(self, image: np.ndarray, time: float) -> None:
        """Append one frame (``(H, W, 3)`` uint8 RGB, or ``(H, W)`` integer labels where supported)."""

    @abstractmethod
    def _close(self) -> None:
        """Finish writing the staging file or folder."""

    def finish(self) -> None:
        """Finish writing; the output stays under its temporary name until `publish`."""
        self._close()
        if self.frames_written == 0:
            self._remove_staging()
            raise ChainError(f"no frames were written to {self.target}")

    def staged(self, option: str = "output") -> Staged:
        """The finished output, for `chain.media.targets.publish_all` (with the run's other outputs)."""
        return Staged(self.staging, self.target, self.kind, option)

    def publish(self) -> Path:
        """Move the finished output into place, replacing an older one that chain wrote."""
        publish_all([self.staged()])
        return self.target

    def commit(self) -> Path:
        """`finish`, then `publish`."""
        self.finish()
        return self.publish()

    def abort(self) -> None:
        """Drop the partial output."""
        try:
            self._close()
        except Exception:  # the output is being thrown away; its flush errors do not matter
            pass
        self._remove_staging()

    def _remove_staging(self) -> None:
        discard(self.staging)


class VideoFileSink(FrameSink):
    """Encode frames into a video file (H.264/yuv420p for .mp4/.mov/.mkv), audio alongside."""

    kind = "video"

    def __init__(self, target: Path, *, fps: Fraction, audio: AudioPassthrough | None = None,
                 crf: int | None = None, preset: str | None = None) -> None:
        import av  # FFmpeg is loaded on first use, so importing chain stays light
        super().__init__(target)
        container_format, codec, pix_fmt, options = _VIDEO_FORMATS[target.suffix.lower()]
        options = dict(options)
        if crf is not None and "crf" in options:
            options["crf"] = str(crf)
        check_preset(preset)
        if preset is not None and "preset" in options:
            options["preset"] = preset
        self._fps = fps
        self._codec, self._pix_fmt, self._options = codec, pix_fmt, options
        self._output = av.open(str(self.staging), "w", format=container_format)
        self._output.metadata["comment"] = f"{OWNER_TAG} {__version__}"  # so a later run may replace it
        self._stream: av.video.stream.VideoStream | None = None
        self._audio = audio
        self._closed = False
        self._last_pts = -1
        self.audio_copied: bool | None = None

    def _open_stream(self, height: int, width: int) -> None:
        stream = self._output.add_stream(self._codec, rate=self._fps, options=self._options)
        stream.width, stream.height = even_size(Size(width, height))
        stream.pix_fmt = self._pix_fmt
        # FFmpeg's own threads (frame and slice; libx264 and libvpx take the count as theirs): the
        # encoder runs behind the networks (`chain.engine.overlap`) on whatever cores they leave.
        stream.codec_context.thread_type = "AUTO"
        stream.codec_context.thread_count = 0
        ticks = 1 if self._output.format.name == "avi" else _TICKS_PER_FRAME
        stream.codec_context.time_base = 1 / (self._fps * ticks)
        self._stream = stream
        if self._audio is not None:
            self._audio.attach(self._output)
            self.audio_copied = self._audio.copied

    def write(self, image: np.ndarray, time: float) -> None:
        if self._stream is None:
            self._open_stream(*image.shape[:2])
        if image.shape[0] % 2 or image.shape[1] % 2:
            # yuv420p needs even sides: repeat the last row/column rather than rescale.
            image = np.pad(image, ((0, image.shape[0] % 2), (0, image.shape[1] % 2), (0, 0)), mode="edge")
        import av  # FFmpeg is loaded on first use, so importing chain stays light

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        time_base = self._stream.codec_context.time_base
        # The frame's own time; strictly after the previous one, which damaged input may not be.
        frame.pts = self._last_pts = max(round(time / time_base), self._last_pts + 1)
        frame.time_base = time_base
        self._output.mux(self._stream.encode(frame))
        self.frames_written += 1
        if self._audio is not None:
            self._audio.pump(self._output, time)

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._stream is not None:
                self._output.mux(self._stream.encode(None))
                if self._audio is not None:
                    self._audio.finish(self._output)
        finally:
            self._output.close()
            if self._audio is not None:
                self._audio.close()


class ImageFolderSink(FrameSink):
    """Save each frame as ``000000.png``, ``000001.png``, … by output frame index.

    2-D integer arrays are saved as lossless 8- or 16-bit grey PNGs (label maps).
    """

    kind = "folder"

    def __init__(self, target: Path) -> None:
        super().__init__(target)
        self.staging.mkdir()
        (self.staging / FOLDER_MARKER).write_text(json.dumps({"written_by": f"chain {__version__}"}) + "\n")

    def write(self, image: np.ndarray, time: float) -> None:
        save_png(image, self.staging / f"{self.frames_written:06d}.png")
        self.frames_written += 1

    def add_file(self, name: str, text: str) -> None:
        """Write a side file (e.g. ``labels.json``) into the folder."""
        (self.staging / name).write_text(text)

    def _close(self) -> None:
        pass


class ImageFileSink(FrameSink):
    """Save exactly one frame as an image file (for a single-image input)."""

    kind = "image"

    def write(self, image: np.ndarray, time: float) -> None:
        if self.frames_written:
            raise ChainError(f"{self.target} is an image file but the input has more than one frame; "
                             "write to a video file or a folder instead")
        save_png(image, self.staging, format=_pil_format(self.target), tag=True)
        self.frames_written += 1

    def _close(self) -> None:
        pass


def _pil_format(path: Path) -> str:
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}.get(path.suffix.lower(),
                                                                               path.suffix[1:].upper())


def save_png(image: np.ndarray, path: Path, *, format: str = "PNG", tag: bool = False) -> None:
    """Save RGB uint8, or a uint8/uint16 label map as 8/16-bit grey, without loss.

    ``tag`` marks the file as chain's (a PNG text chunk or a JPEG comment), so that a later run
    may replace it.
    """
    if image.ndim == 2 and image.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"label maps are saved as uint8 or uint16, not {image.dtype}")
    options: dict[str, object] = {}
    if tag and format == "PNG":
        from PIL.PngImagePlugin import PngInfo

        options["pnginfo"] = PngInfo()
        options["pnginfo"].add_text("Software", f"{OWNER_TAG} {__version__}")
    elif tag and format == "JPEG":
        options["comment"] = f"{OWNER_TAG} {__version__}"
    Image.fromarray(image).save(path, format=format, **options)


def open_sink(path: str | Path, *, fps: Fraction, audio: AudioPassthrough | None = None,
              crf: int | None = None, preset: str | None = None, kind: str | None = None) -> FrameSink:
    """A sink for ``path``: a video file by extension, an image file, or else a PNG folder
    (``kind`` "folder" makes it a folder whatever its name)."""
    path = Path(path)
    kind = kind or output_kind(path)
    if kind == "video":
        return VideoFileSink(path, fps=fps, audio=audio, crf=crf, preset=preset)
    if kind == "image":
        return ImageFileSink(path)
    return ImageFolderSink(path)


def output_kind(path: Path) -> str:
    """``"video"``, ``"image"`` or ``"folder"`` by extension; a `ChainError` for unknown ones."""
    suffix = path.suffix.lower()
    if suffix in VIDEO_OUTPUT_EXTENSIONS:
        return "video"
    if suffix in IMAGE_OUTPUT_EXTENSIONS:
        return "image"
    if suffix and not path.is_dir():
        known = ", ".join(sorted(VIDEO_OUTPUT_EXTENSIONS | IMAGE_OUTPUT_EXTENSIONS))
        raise ChainError(f"cannot write {path}: unknown extension {suffix!r}; use one of {known}, "
                         "or end the name with / for a folder of PNG frames")
    return "folder"
