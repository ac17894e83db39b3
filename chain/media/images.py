"""The one image reader: every picture chain reads from an image file comes through here.

Single images, image folders, animated and multi-page images and dataset images are all read
by `read_frames` (or `read_image` for the first frame), after `probe_image` has read the header.
What users bring is turned into upright RGB uint8 frames, the same way everywhere:

- **Bit depth.** 16-bit samples (``I;16*``, and ``I``: PIL opens 16-bit PNG and TIFF grey as 32-bit
  integers) are scaled by 255/65535, clipped to 0…65535; 32-bit float samples (``F``) are taken
  as 0…1, clipped (the float convention of imaging libraries; per pixel, so frames of a folder
  never flicker as a per-image min-max would). Every other mode (1, L, P, RGB, CMYK, YCbCr, LAB,
  HSV…) is converted by PIL; CMYK with an embedded ICC profile through that profile.
- **Alpha** (RGBA, LA, PA, palette, grey or RGB transparency, 16-bit grey's too) is composited
  over `ALPHA_BACKGROUND`.
- **EXIF orientation** is applied (`PIL.ImageOps.exif_transpose`): a phone photo comes out upright.
- **Frames.** Animated GIF, WebP and PNG and multi-page TIFF have every frame read, with their
  durations where the format has them (`ImageProbe.durations`); reduced-resolution TIFF pages
  (thumbnails) are skipped. JPEG's MPO extras (a camera's preview or depth image) are not frames.
- **Decompression bombs.** The header's size is checked before any pixel is decoded: at most
  `MAX_IMAGE_PIXELS` a frame (a 16K x 8K frame; an 8K film scan is a quarter of it).
- **PIL's warnings** (bombs, odd EXIF or palettes) are silenced; what matters becomes a ChainError.
"""

from __future__ import annotations

import io
import re
import stat
import struct
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from chain.errors import ChainError

#: The most pixels one frame may have: 16384 x 8192, 384 MiB as RGB. Larger frames are refused
#: from their header, before decoding (PIL's own guard refuses only twice its 89 M pixels).
MAX_IMAGE_PIXELS = 16384 * 8192
#: What transparent pixels are composited on: white, as viewers and browsers show them.
ALPHA_BACKGROUND = (255, 255, 255)
#: Browsers show a frame that asks for less than 20 ms (GIF's common 0 and 10 ms) for 100 ms.
MIN_FRAME_SECONDS, SHORT_FRAME_SECONDS = 0.02, 0.1
#: Formats whose extra frames are frames of an animation or pages of a document.
_MULTI_FRAME_FORMATS = frozenset({"GIF", "PNG", "WEBP", "TIFF"})
_REDUCED_RESOLUTION = 1  # TIFF NewSubfileType bit: a thumbnail of another page
_ORIENTATION_TAG = 0x0112
_BOMB_SIZE = re.compile(r"\((\d+) pixels\)")


@dataclass(frozen=True)
class ImageProbe:
    """What an image file holds, read from its headers only."""

    path: Path
    width: int  # upright, after EXIF orientation
    height: int
    format: str  # PIL's name: PNG, JPEG, GIF, WEBP, TIFF, BMP…
    mode: str  # PIL's mode of the first frame
    pages: tuple[int, ...]  # the frames read, as PIL frame numbers
    durations: tuple[float, ...] | None  # seconds each frame is shown, where the format says

    @property
    def frames(self) -> int:
        return len(self.pages)

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def check_regular_file(path: Path) -> None:
    """A `ChainError` unless ``path`` is a regular file (or a link to one).

    A named pipe would block the reader forever (opening a FIFO waits for a writer), and a
    device or socket has no end or cannot be read again; none is opened.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ChainError(f"input not found: {path}") from None
    if stat.S_ISREG(mode):
        return
    kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode)
            else "a folder" if stat.S_ISDIR(mode) else "not a regular file")
    raise ChainError(f"{path} is {kind}, not a file: chain reads files it can open again and seek in; "
                     "save the stream to a file first")


def probe_image(path: str | Path) -> ImageProbe:
    """The header of ``path``: upright size, frames and durations; ChainError if it cannot be read."""
    path = Path(path)
    with _open(path) as image:
        fmt, mode = image.format or "?", image.mode
        width, height = _upright_size(image, path)
        with _reading(path):
            pages, durations = [0], [_duration(image)]
            if fmt in _MULTI_FRAME_FORMATS and getattr(image, "n_frames", 1) > 1:
                if fmt == "PNG" and image.info.get("default_image"):
                    # An APNG's default image, shown by viewers that do not animate: not a frame
                    # (PIL counts it as frame 0, without a duration).
                    pages, durations = [], []
                for page in range(1, image.n_frames):
                    image.seek(page)
                    if fmt == "TIFF" and int(image.tag_v2.get(254, 0)) & _REDUCED_RESOLUTION:
                        continue
                    _check_pixels(path, image.size)
                    pages.append(page)
                    durations.append(_duration(image))
    if all(d is None for d in durations):
        timed = None
    else:  # a frame without one (a GIF's first frame of delay 0: PIL leaves it out) plays as browsers play it
        timed = tuple(SHORT_FRAME_SECONDS if d is None else d for d in durations)
    return ImageProbe(path, width, height, fmt, mode, tuple(pages), timed)


def read_image(path: str | Path) -> np.ndarray:
    """The first frame of ``path``: ``(H, W, 3)`` RGB uint8, upright (see the module's notes)."""
    frames = read_frames(path, pages=(0,))
    try:
        return next(frames)
    finally:
        frames.close()  # closes the file now, not when the generator is collected


def read_frames(path: str | Path, pages: tuple[int, ...] | None = None) -> Iterator[np.ndarray]:
    """Every frame of ``path`` (or the given PIL frame numbers, from `ImageProbe.pages`), decoded one
    at a time: ``(H, W, 3)`` RGB uint8, upright."""
    path = Path(path)
    with _open(path) as image:
        for page in pages if pages is not None else probe_image(path).pages:
            with _reading(path):
                if page:
                    image.seek(page)
                    _check_pixels(path, image.size)
                rgb = to_rgb(ImageOps.exif_transpose(image))
            yield rgb  # outside `_reading`: an error in the consumer is not this file's


def to_rgb(image: Image.Image) -> np.ndarray:
    """``image`` (any PIL mode) as ``(H, W, 3)`` RGB uint8; see the module's notes for the rules."""
    mode = image.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        values = np.asarray(image)
        if mode == "F":
            grey = np.round(np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0) * 255)
        else:
            grey = np.round(np.clip(values.astype(np.float64), 0, 65535) / 257)
        rgb = np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2)
        transparent = image.info.get("transparency")
        if mode != "F" and isinstance(transparent, int):  # a 16-bit grey PNG's tRNS: one fully transparent value
            rgb[values == transparent] = ALPHA_BACKGROUND
        return rgb
    if mode == "CMYK" and image.info.get("icc_profile"):
        from PIL import ImageCms  # Little CMS, loaded for the files that need it

        try:
            srgb = ImageCms.createProfile("sRGB")
            profile = ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
            return np.asarray(ImageCms.profileToProfile(image, profile, srgb, outputMode="RGB"))
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a damaged or foreign profile: PIL's plain conversion below
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


@contextmanager
def _open(path: Path) -> Iterator[Image.Image]:
    """``path`` opened by PIL (header only), checked against `MAX_IMAGE_PIXELS`."""
    check_regular_file(path)
    with _reading(path):
        try:
            image = Image.open(path)
        except Image.DecompressionBombError as error:
            match = _BOMB_SIZE.search(str(error))
            _refuse_bomb(path, int(match.group(1)) if match else None)
        _check_pixels(path, image.size)
    try:
        yield image
    finally:
        image.close()


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """PIL's failures on ``path`` as one-line ChainErrors; its warnings silenced."""
    _silence_pil_warnings()
    try:
        yield
    except ChainError:
        raise
    except UnidentifiedImageError:
        raise ChainError(f"cannot read image {path}: not an image format PIL knows, or damaged") from None
    except (OSError, ValueError, SyntaxError, EOFError, KeyError, IndexError, TypeError,
            ZeroDivisionError, struct.error) as error:  # PIL's plugins raise all of these on damaged files
        if isinstance(error, OSError) and error.errno is not None:
            raise  # the system refused (permissions, I/O): chain.entry names it
        raise ChainError(f"cannot read image {path}: {str(error).strip() or type(error).__name__}") from None


def _silence_pil_warnings() -> None:
    """Drop PIL's warnings: each is about metadata chain does not use, or a bomb `_open` refuses.

    Filters, not ``catch_warnings``: frames are read in a decoder thread, and swapping the
    process's filters there could swallow another thread's warning. Added again before each
    read (filters are de-duplicated) because the CLI and pytest restore the filter list.
    """
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    warnings.filterwarnings("ignore", module=r"PIL\.")
    warnings.filterwarnings("ignore", module=re.escape(__name__) + "$")  # PIL's, pointed at its caller


def _check_pixels(path: Path, size: tuple[int, int]) -> None:
    if size[0] * size[1] > MAX_IMAGE_PIXELS:
        _refuse_bomb(path, size[0] * size[1], size)


def _refuse_bomb(path: Path, pixels: int | None, size: tuple[int, int] | None = None) -> None:
    claimed = f"{size[0]}x{size[1]} ({pixels:,} pixels)" if size else f"{pixels:,} pixels" if pixels else "too large"
    raise ChainError(f"{path} says it is {claimed}: chain decodes images of at most {MAX_IMAGE_PIXELS:,} pixels "
                     "(16384x8192), a guard against decompression bombs; shrink it first")


def _upright_size(image: Image.Image, path: Path) -> tuple[int, int]:
    """The size after EXIF orientation: orientations 5 to 8 turn the image a quarter (PIL's TIFF
    reader reports the upright size itself, and turns the pixels on load)."""
    if image.format == "TIFF":
        return image.size
    with _reading(path):
        if image.format == "PNG":
            # PIL's getexif() decodes a whole PNG looking for an eXIf chunk after the pixels, and
            # reading applies such a late one: its chunk is found by walking the chunk headers.
            exif = Image.Exif()
            data = image.info.get("exif") or _late_png_exif(path)
            if data:
                exif.load(data)
            orientation = exif.get(_ORIENTATION_TAG, 1)
        else:
            orientation = image.getexif().get(_ORIENTATION_TAG, 1)
    width, height = image.size
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _late_png_exif(path: Path) -> bytes | None:
    """The eXIf chunk of the PNG ``path`` found after its pixel data (which PIL's header reading
    does not see), read by skipping from chunk header to chunk header: nothing is decoded."""
    with path.open("rb") as file:
        if file.read(8) != b"\x89PNG\r\n\x1a\n":
            return None
        while len(header := file.read(8)) == 8:
            length, kind = struct.unpack(">I4s", header)
            if kind == b"eXIf":
                data = file.read(length)
                return data if len(data) == length else None
            if kind == b"IEND":
                return None
            file.seek(length + 4, io.SEEK_CUR)  # the data and its CRC
    return None


def _duration(image: Image.Image) -> float | None:
    """Seconds the current frame is shown (None when the format does not say), as browsers play it."""
    if image.format == "WEBP":
        image.load()  # PIL learns a WebP frame's duration by decoding it
    milliseconds = image.info.get("duration")
    if image.format == "TIFF" or not isinstance(milliseconds, int | float):
        return None
    seconds = float(milliseconds) / 1000
    return SHORT_FRAME_SECONDS if seconds < MIN_FRAME_SECONDS else seconds


def open_image(path: str | Path) -> AbstractContextManager[Image.Image]:
    """``path`` opened by PIL as stored (label maps: no conversion), with the reader's guards: a
    regular file only, the pixel limit checked from the header, PIL's failures as one line."""
    return _open(Path(path))
