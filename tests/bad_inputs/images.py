"""Hostile images, generated in loops (see tests/bad_inputs/__init__.py): every PIL mode each format
can hold (1-bit to 16-bit and float), alpha, EXIF orientations 1-8, animated GIF/WebP/PNG and
multi-page TIFF, decompression bombs claimed by the header of every format, extreme sizes, and
files that are not files (a named pipe, a device, a socket).

The oracle for a picture case: the palette segmenter and colorize synthesizer paint every pixel
with its nearest VOC colour, so the output of the hostile file must equal the output of a plain
8-bit RGB PNG of what the file shows (written beside it as ``ref.png``).
"""

from __future__ import annotations

import socket
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.bad_inputs import case

RUN = ["run", "--seg", "palette:voc", "--synth", "colorize", "-q"]
#: VOC palette colours (background, aeroplane, bicycle, bird, boat, bottle): each maps to itself.
VOC_COLOURS = np.array([[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128], [128, 0, 128]], np.uint8)
GREYS = (0, 128, 255)


def blocks(values: np.ndarray, size: tuple[int, int] = (64, 48), block: int = 16) -> np.ndarray:
    """A ``(H, W, ...)`` picture of ``block``-pixel squares cycling through ``values`` (asymmetric:
    no turn or flip of it is itself)."""
    width, height = size
    y, x = np.mgrid[:height, :width]
    index = (x // block + 2 * (y // block) + (y // block) ** 2) % len(values)
    return values[index]


def colour_picture(size: tuple[int, int] = (64, 48)) -> np.ndarray:
    return blocks(VOC_COLOURS, size)


def grey_picture(size: tuple[int, int] = (64, 48), greys: tuple[int, ...] = GREYS) -> np.ndarray:
    return blocks(np.array(greys, np.uint8), size)


def claim_size(path: Path, width: int, height: int) -> Path:
    """Rewrite ``path``'s header to claim ``width`` x ``height`` pixels (a decompression bomb: the
    data stays a few bytes). PNG, BMP, GIF, JPEG, TIFF (little-endian) and WebP (VP8X canvas)."""
    data = bytearray(path.read_bytes())
    with Image.open(path) as image:
        fmt = image.format
    if fmt == "PNG":
        data[16:24] = struct.pack(">II", width, height)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    elif fmt == "BMP":
        data[18:26] = struct.pack("<ii", width, height)
    elif fmt == "GIF":
        data[6:10] = struct.pack("<HH", width, height)
        at = data.index(0x2C, 13 + 3 * 2 ** ((data[10] & 7) + 1) if data[10] & 0x80 else 13)
        data[at + 5:at + 9] = struct.pack("<HH", width, height)
    elif fmt == "JPEG":
        at = data.index(b"\xff\xc0")
        data[at + 5:at + 9] = struct.pack(">HH", height, width)
    elif fmt == "TIFF":
        (ifd,) = struct.unpack("<I", data[4:8])
        (count,) = struct.unpack("<H", data[ifd:ifd + 2])
        for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
            tag, kind = struct.unpack("<HH", data[entry:entry + 4])
            if tag in (256, 257):
                value = width if tag == 256 else height
                data[entry + 8:entry + 12] = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
    elif fmt == "WEBP":
        at = data.index(b"VP8X")
        data[at + 12:at + 18] = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    else:
        raise ValueError(fmt)
    path.write_bytes(bytes(data))
    return path


# --- every mode each format holds -----------------------------------------------------------------

def in_mode(mode: str) -> tuple[Image.Image, np.ndarray]:
    """An image in PIL ``mode`` and the 8-bit RGB picture it shows (alpha over white)."""
    grey = grey_picture(greys=(0, 255) if mode == "1" else GREYS)
    colour = colour_picture()
    if mode in ("I;16", "I;16B", "I"):
        dtype = {"I;16": "<u2", "I;16B": ">u2", "I": "<i4"}[mode]
        image = Image.fromarray((grey.astype(np.int32) * 257).astype(dtype))  # 16-bit samples, as PNG and TIFF store them
        assert image.mode == mode, image.mode
        return image, np.repeat(grey[..., None], 3, axis=2)
    if mode in ("L+transparency", "I;16+transparency"):  # a grey tRNS: one transparent value, stored 7 (shown white)
        values = grey.astype(np.uint16) * 257 if mode.startswith("I;16") else grey.copy()
        values[:, :20] = 7
        image = Image.fromarray(values)
        image.info["transparency"] = 7
        shown = np.repeat(grey[..., None], 3, axis=2)
        shown[:, :20] = 255
        return image, shown
    if mode == "F":
        return Image.fromarray(grey.astype(np.float32) / 255, "F"), np.repeat(grey[..., None], 3, axis=2)
    if mode in ("1", "L"):
        return Image.fromarray(grey).convert(mode), np.repeat(grey[..., None], 3, axis=2)
    if mode == "P+transparency":  # a palette with one transparent index (GIF's and PNG's tRNS)
        indices = blocks(np.arange(len(VOC_COLOURS), dtype=np.uint8))
        indices[:, :20] = len(VOC_COLOURS)  # stored red, shown white
        image = Image.fromarray(indices, "P")
        image.putpalette([*VOC_COLOURS.ravel().tolist(), 255, 0, 0])
        image.info["transparency"] = len(VOC_COLOURS)
        shown = colour.copy()
        shown[:, :20] = 255
        return image, shown
    if mode in ("LA", "RGBA", "PA"):
        # the left third transparent, stored red (shown white), a half-transparent band (blended)
        rgba = np.dstack([colour, np.full(colour.shape[:2], 255, np.uint8)])
        rgba[:, :20, :3], rgba[:, :20, 3] = (255, 0, 0), 0
        rgba[:, 20:24, 3] = 128
        base = Image.fromarray(rgba, "RGBA")
        image = base.convert(mode) if mode != "RGBA" else base
        shown = image.convert("RGBA")
        white = Image.new("RGBA", shown.size, (255, 255, 255, 255))
        return image, np.asarray(Image.alpha_composite(white, shown).convert("RGB"))
    image = Image.fromarray(colour).convert(mode)
    return image, np.asarray(image.convert("RGB"))


#: (mode, formats that store it as such) — what PIL writes; the rest it cannot.
MODE_FORMATS = {
    "1": ("png", "tif", "bmp"), "L": ("png", "tif", "jpg", "bmp", "gif", "webp"), "LA": ("png", "tif"),
    "P": ("png", "tif", "bmp", "gif"), "PA": ("tif",), "P+transparency": ("png", "gif"), "L+transparency": ("png",),
    "I;16+transparency": ("png",), "I": ("tif",),
    "I;16": ("png", "tif"), "I;16B": ("png", "tif"), "F": ("tif",),
    "RGB": ("png", "tif", "jpg", "bmp", "gif", "webp"), "RGBA": ("png", "tif", "webp"),
    "CMYK": ("tif", "jpg"), "YCbCr": ("jpg",), "LAB": ("tif",),
}
LOSSY = ("jpg", "webp")


def same_output(reference: str = "ref.png", output: str = "out.png", tolerance: float = 0.0) -> Callable[[Path], None]:
    """A check: ``output`` equals chain's output for ``reference`` (at most ``tolerance`` of pixels differ)."""

    def check(folder: Path) -> None:
        from chain.entry import main

        main([*RUN, str(folder / reference), str(folder / "ref-out.png")])
        got, want = (np.asarray(Image.open(folder / name).convert("RGB")) for name in (output, "ref-out.png"))
        assert got.shape == want.shape, (got.shape, want.shape)
        differ = np.any(got != want, axis=2).mean()
        assert differ <= tolerance, f"{differ:.1%} of pixels differ from the 8-bit reference"

    return check


def _mode_case(mode: str, ext: str) -> None:
    @case(f"image-mode-{mode.replace(';', '')}-{ext}", "output", outputs=("out.png",),
          check=same_output(tolerance=0.05 if ext in LOSSY else 0.0))
    def _(folder: Path) -> list[str]:
        image, shown = in_mode(mode)
        image.save(folder / f"in.{ext}", quality=95) if ext in LOSSY else image.save(folder / f"in.{ext}")
        Image.fromarray(shown).save(folder / "ref.png")
        return [*RUN, f"in.{ext}", "out.png"]


for _mode, _formats in MODE_FORMATS.items():
    for _ext in _formats:
        _mode_case(_mode, _ext)


# --- EXIF orientation 1-8 -------------------------------------------------------------------------

def stored_for(upright: np.ndarray, orientation: int) -> np.ndarray:
    """How a camera stores ``upright`` under EXIF ``orientation`` (the turn a viewer undoes)."""
    return {
        1: lambda a: a, 2: np.fliplr, 3: lambda a: np.rot90(a, 2), 4: np.flipud,
        5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, 1), 7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
        8: lambda a: np.rot90(a, -1),
    }[orientation](upright)


def save_oriented(path: Path, upright: np.ndarray, orientation: int) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = Image.fromarray(np.ascontiguousarray(stored_for(upright, orientation)))
    stored.save(path, exif=exif, **({"quality": 95} if path.suffix in (".jpg", ".webp") else {}))
    return path


def save_late_exif_png(path: Path, upright: np.ndarray, orientation: int) -> Path:
    """A PNG whose eXIf chunk comes after its pixel data (IDAT), just before IEND: legal, and
    missed by a reader that looks at the header alone."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    payload = exif.tobytes()
    payload = payload[6:] if payload.startswith(b"Exif\x00\x00") else payload
    Image.fromarray(np.ascontiguousarray(stored_for(upright, orientation))).save(path)
    data = path.read_bytes()
    chunk = struct.pack(">I", len(payload)) + b"eXIf" + payload + struct.pack(">I", zlib.crc32(b"eXIf" + payload))
    end = data.rindex(b"IEND") - 4
    path.write_bytes(data[:end] + chunk + data[end:])
    return path


def _orientation_case(orientation: int, ext: str) -> None:
    @case(f"exif-orientation-{orientation}-{ext}", "output", outputs=("out.png",),
          check=same_output(tolerance=0.05 if ext in LOSSY else 0.0))
    def _(folder: Path) -> list[str]:
        upright = colour_picture((64, 48))
        save_oriented(folder / f"in.{ext}", upright, orientation)
        Image.fromarray(upright).save(folder / "ref.png")
        return [*RUN, f"in.{ext}", "out.png"]


for _orientation in range(1, 9):
    for _ext in ("jpg", "png", "webp", "tif"):
        _orientation_case(_orientation, _ext)


def _late_exif_case(orientation: int) -> None:
    @case(f"exif-orientation-{orientation}-png-late", "output", outputs=("out.png",), check=same_output())
    def _(folder: Path) -> list[str]:
        upright = colour_picture((64, 48))
        save_late_exif_png(folder / "in.png", upright, orientation)  # turned, never stretched
        Image.fromarray(upright).save(folder / "ref.png")
        return [*RUN, "in.png", "out.png"]


for _orientation in range(1, 9):
    _late_exif_case(_orientation)


# --- animated and multi-page images -------------------------------------------------------------

FRAME_MS = [100, 200, 0, 300]  # 0 ms plays for 100 ms, as browsers do


#: Uneven durations ending on a long frame: 1.45 s, on a 50 ms grid (20 fps).
UNEVEN_MS = [200, 200, 50, 1000]


def save_animation(path: Path, frames: int | None = None, durations: list[int] = FRAME_MS,
                   default_image: bool = False) -> Path:
    """Frames of one VOC colour each (frame i: colour i + 1), with ``durations`` (ms) where the format keeps time.

    ``default_image``: an APNG whose first image (colour 5, the last VOC colour) is the one shown
    by viewers that do not animate, not a frame."""
    frames = len(durations) if frames is None else frames
    images = [Image.fromarray(np.broadcast_to(VOC_COLOURS[i + 1], (48, 64, 3)).copy()) for i in range(frames)]
    lossless = {"lossless": True} if path.suffix == ".webp" else {}
    if default_image:
        images.insert(0, Image.fromarray(np.broadcast_to(VOC_COLOURS[5], (48, 64, 3)).copy()))
        lossless = {"default_image": True}
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations[:frames], loop=0, **lossless)
    return path


def _frame_colours(folder: Path) -> list[tuple[int, ...]]:
    import av

    with av.open(str(folder / "out.mp4")) as container:
        return [tuple(int(v) for v in f.to_ndarray(format="rgb24")[24, 32]) for f in container.decode(video=0)]


def _check_animation(timed: bool) -> Callable[[Path], None]:
    def check(folder: Path) -> None:
        import av

        colours = _frame_colours(folder)
        assert len(colours) == len(FRAME_MS), colours  # every frame, not the first one alone
        assert [int(np.argmin(np.abs(VOC_COLOURS.astype(int) - c).sum(1))) for c in colours] == [1, 2, 3, 4]
        with av.open(str(folder / "out.mp4")) as container:
            times = [f.time for f in container.decode(video=0)]
        expected = [0.0, 0.1, 0.3, 0.4] if timed else [0.0, 0.04, 0.08, 0.12]  # TIFF pages: 25 fps
        assert max(abs(a - b) for a, b in zip(times, expected)) < 0.02, times

    return check


for _ext, _timed in (("gif", True), ("webp", True), ("png", True), ("tif", False)):
    @case(f"animated-{_ext}-every-frame", "output", outputs=("out.mp4",), check=_check_animation(_timed))
    def _(folder: Path, ext: str = _ext) -> list[str]:
        save_animation(folder / f"in.{ext}")
        return [*RUN, f"in.{ext}", "out.mp4"]


def _check_retimed(folder: Path) -> None:
    names = sorted(p.name for p in (folder / "frames").glob("*.png"))
    assert names == [f"{i:06d}.png" for i in range(7)], names  # ticks 0-0.6 s: the last frame shows for its 0.3 s


@case("animated-webp-to-frames-at-fps", "output", outputs=("frames/000006.png",), check=_check_retimed)
def _(folder: Path) -> list[str]:
    save_animation(folder / "in.webp")  # frames at 0, 0.1, 0.3 and 0.4 s, retimed to 10 fps
    return [*RUN, "--fps", "10", "in.webp", "frames"]


def _check_uneven(retimed: bool) -> Callable[[Path], None]:
    def check(folder: Path) -> None:
        import av

        with av.open(str(folder / "out.mp4")) as container:
            times = [f.time for f in container.decode(video=0)]
        colours = [int(np.argmin(np.abs(VOC_COLOURS.astype(int) - c).sum(1))) for c in _frame_colours(folder)]
        if retimed:  # 10 fps over the whole 1.45 s: the last frame held for its second
            assert len(times) == 15 and colours == [1, 1, 2, 2, 3] + [4] * 10, colours
        else:  # each frame at its own time, exactly (not rounded to an average rate's ticks)
            assert times == [0.0, 0.2, 0.4, 0.45] and colours == [1, 2, 3, 4], (times, colours)

    return check


for _ext in ("gif", "webp", "png"):
    for _retimed in (False, True):
        @case(f"animated-{_ext}-uneven-{'fps' if _retimed else 'own-times'}", "output", outputs=("out.mp4",),
              check=_check_uneven(_retimed))
        def _(folder: Path, ext: str = _ext, retimed: bool = _retimed) -> list[str]:
            save_animation(folder / f"in.{ext}", durations=UNEVEN_MS)
            return [*RUN, *(["--fps", "10"] if retimed else []), f"in.{ext}", "out.mp4"]


#: A GIF whose first frame asks for 0 ms (PIL leaves its duration out): it plays for 100 ms as
#: browsers play it, and the others keep theirs (10 ms is 100 ms too): 1.25 s, not 25 fps throughout.
FIRST_DELAY_0_MS = [0, 10, 50, 1000]


def _check_held_second(times: list[float]) -> Callable[[Path], None]:
    def check(folder: Path) -> None:
        import av

        with av.open(str(folder / "out.mp4")) as container:
            got = [f.time for f in container.decode(video=0)]
        colours = [int(np.argmin(np.abs(VOC_COLOURS.astype(int) - c).sum(1))) for c in _frame_colours(folder)]
        assert got == pytest.approx(times, abs=1e-6) and colours == [1, 2, 3, 4][:len(times)], (got, colours)

    return check


@case("animated-gif-first-delay-0", "output", outputs=("out.mp4",), check=_check_held_second([0.0, 0.1, 0.2, 0.25]))
def _(folder: Path) -> list[str]:
    save_animation(folder / "in.gif", durations=FIRST_DELAY_0_MS)
    return [*RUN, "in.gif", "out.mp4"]


def _check_13_frames(folder: Path) -> None:
    assert len(list((folder / "frames").glob("*.png"))) == 13


@case("animated-gif-first-delay-0-at-fps", "output", outputs=("frames/000012.png",), check=_check_13_frames)
def _(folder: Path) -> list[str]:
    save_animation(folder / "in.gif", durations=FIRST_DELAY_0_MS)  # 1.25 s at 10 fps: 13 frames, the 1 s one held
    return [*RUN, "--fps", "10", "in.gif", "frames"]


@case("apng-with-default-image", "output", outputs=("out.mp4",), check=_check_held_second([0.0, 0.1, 0.2]))
def _(folder: Path) -> list[str]:
    save_animation(folder / "in.png", durations=[100] * 3, default_image=True)  # the default image is no frame
    return [*RUN, "in.png", "out.mp4"]


# --- image folders: hidden files are not frames -------------------------------------------------

#: What hides among a folder's frames: a macOS resource fork (not an image at all), a thumbnail
#: cache of another size, a hidden image named to sort first.
HIDDEN_FILES = {"apple-double": "._001.png", "thumbnail": ".thumb.jpg", "dot-first": ".000.png"}


def _check_hidden(folder: Path) -> None:
    names = sorted(p.name for p in (folder / "out").glob("*.png"))
    assert names == [f"{i:06d}.png" for i in range(2)], names  # the two frames, not the hidden file
    with Image.open(folder / "out" / names[0]) as first:
        assert first.size == (64, 48), first.size  # the first visible frame sets the size


for _kind, _hidden in HIDDEN_FILES.items():
    @case(f"image-folder-hidden-{_kind}", "output", outputs=("out/000001.png",), check=_check_hidden)
    def _(folder: Path, hidden: str = _hidden, kind: str = _kind) -> list[str]:
        (folder / "frames").mkdir()
        for name in ("001.png", "002.png"):
            Image.fromarray(colour_picture()).save(folder / "frames" / name)
        if kind == "apple-double":
            (folder / "frames" / hidden).write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
        else:
            Image.fromarray(colour_picture((20, 40))).save(folder / "frames" / hidden)
        return [*RUN, "frames", "out"]


# --- decompression bombs: the header's claim is refused before decoding -------------------------

BOMB = r"says it is .*pixels\)?: chain decodes images of at most 134,217,728 pixels"


def _bomb_case(ext: str, size: tuple[int, int], where: str) -> None:
    @case(f"bomb-{ext}-{size[0]}x{size[1]}-{where}", "error", message=BOMB)
    def _(folder: Path) -> list[str]:
        path = folder / (f"frames/001.{ext}" if where == "folder" else f"in.{ext}")
        path.parent.mkdir(exist_ok=True)
        if ext == "webp":
            save_animation(path, 2)  # an animated WebP has the VP8X canvas header
        else:
            Image.fromarray(colour_picture()).save(path)
        claim_size(path, *size)
        if where == "info":
            return ["info", path.name]
        return [*RUN, "frames" if where == "folder" else path.name, "out.png"]


for _ext in ("png", "bmp", "gif", "jpg", "tif"):
    _bomb_case(_ext, (20000, 10000), "run")  # over PIL's own limit too
    _bomb_case(_ext, (12000, 12000), "info")  # under PIL's error, over chain's: refused by chain's check
_bomb_case("webp", (16000, 16000), "run")
_bomb_case("png", (20000, 10000), "folder")


@case("film-scan-8k-still-reads", "output", outputs=("out.png",))
def _(folder: Path) -> list[str]:
    Image.new("L", (8192, 4320), 128).save(folder / "in.png")  # 35 M pixels: far under the limit
    return [*RUN, "--size", "256", "in.png", "out.png"]


# --- extreme sizes -------------------------------------------------------------------------------

@case("image-20000x2-needs-size", "error", message=r"in\.png is 20000x2: .*16384 pixels a side; give --size, "
                                                    r"e\.g\. --size 16384x2")
def _(folder: Path) -> list[str]:
    Image.new("RGB", (20000, 2)).save(folder / "in.png")
    return [*RUN, "in.png", "out.mp4"]


@case("image-2x20000-needs-size", "error", message=r"in\.png is 2x20000: .*e\.g\. --size 2x16384")
def _(folder: Path) -> list[str]:
    Image.new("RGB", (2, 20000)).save(folder / "in.png")
    return [*RUN, "in.png", "out.png"]


@case("image-20000x2-with-size", "output", outputs=("out.mp4",))
def _(folder: Path) -> list[str]:
    Image.new("RGB", (20000, 2)).save(folder / "in.png")
    return [*RUN, "--size", "16384x2", "in.png", "out.mp4"]


for _w, _h, _out in ((1, 1, "out.png"), (1, 1, "out.mp4"), (3, 1, "out.mp4"), (1, 5, "out.webm"),
                     (16384, 2, "out.mp4")):
    @case(f"image-{_w}x{_h}-to-{_out}", "output", outputs=(_out,))
    def _(folder: Path, w: int = _w, h: int = _h, out: str = _out) -> list[str]:
        Image.fromarray(blocks(VOC_COLOURS, (w, h), 1)).save(folder / "in.png")
        return [*RUN, "in.png", out]


# --- not files: never opened ----------------------------------------------------------------------

def _fifo(folder: Path, name: str) -> None:
    import os

    os.mkfifo(folder / name)


for _name in ("in.mp4", "in.png", "in.gif"):
    @case(f"named-pipe-{_name}", "error", message=rf"{_name.replace('.', '[.]')} is a named pipe \(FIFO\), not a file")
    def _(folder: Path, name: str = _name) -> list[str]:
        _fifo(folder, name)
        return [*RUN, name, "out.mp4"]


@case("named-pipe-in-image-folder", "error", message=r"frames/002\.png is a named pipe")
def _(folder: Path) -> list[str]:
    (folder / "frames").mkdir()
    Image.fromarray(colour_picture()).save(folder / "frames" / "001.png")
    _fifo(folder / "frames", "002.png")
    return [*RUN, "frames", "out.mp4"]


@case("char-device-as-input", "error", message=r"in\.mp4 is a character device, not a file")
def _(folder: Path) -> list[str]:
    (folder / "in.mp4").symlink_to("/dev/zero")  # endless: reading it would never finish
    return [*RUN, "in.mp4", "out.mp4"]


@case("socket-as-input", "error", message=r"in\.mp4 is a socket, not a file")
def _(folder: Path) -> list[str]:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "in.mp4"))  # the file stays after the socket closes
    server.close()
    return [*RUN, "in.mp4", "out.mp4"]
