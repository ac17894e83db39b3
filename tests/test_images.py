"""The one image reader (chain.media.images) and what chain makes of odd video containers: bit
depths, alpha, EXIF orientation, animated and multi-page images, bombs, PIL's warnings, pixel
shapes, rates, empty streams and damage judged on the container's own promises.

The CLI-level neighbours of each case are in tests/bad_inputs/images.py and media.py.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chain.errors import ChainError
from chain.media import Trim, open_source
from chain.media.images import MAX_IMAGE_PIXELS, probe_image, read_frames, read_image, to_rgb
from tests.bad_inputs import make_video
from tests.bad_inputs.images import (
    FRAME_MS,
    UNEVEN_MS,
    VOC_COLOURS,
    claim_size,
    colour_picture,
    save_animation,
    save_late_exif_png,
    save_oriented,
)
from tests.bad_inputs.media import PAUSE_TIMES, make_clip, make_empty_video, make_faststart_video


def test_16_bit_samples_are_scaled_not_clipped() -> None:
    ramp = np.arange(0, 65536, 257, dtype=np.uint16).reshape(16, 16)  # 0, 257, … 65535: 8-bit 0 … 255
    for image in (Image.fromarray(ramp), Image.fromarray(ramp.astype(">u2")), Image.fromarray(ramp.astype(np.int32))):
        rgb = to_rgb(image)
        assert rgb.shape == (16, 16, 3) and np.array_equal(rgb[..., 0], np.arange(256).reshape(16, 16)), image.mode
    # 32-bit integers beyond 16 bits are clipped, as negative ones: PNG and TIFF grey hold 16-bit data
    wide = Image.fromarray(np.array([[-5, 0, 65535, 10**6]], np.int32))
    assert to_rgb(wide)[0, :, 0].tolist() == [0, 0, 255, 255]


def test_float_samples_are_taken_as_0_to_1() -> None:
    values = np.array([[np.nan, -1.0, 0.0, 0.5, 1.0, 7.0]], np.float32)
    assert to_rgb(Image.fromarray(values, "F"))[0, :, 0].tolist() == [0, 0, 0, 128, 255, 255]


def test_alpha_is_composited_on_white() -> None:
    rgba = np.array([[[255, 0, 0, 0], [255, 0, 0, 255], [0, 0, 0, 128]]], np.uint8)
    assert to_rgb(Image.fromarray(rgba, "RGBA")).tolist() == [[[255, 255, 255], [255, 0, 0], [127, 127, 127]]]


@pytest.mark.parametrize("ext", ["jpg", "png", "webp", "tif"])
def test_probe_size_is_the_upright_size_read(ext: str, tmp_path: Path) -> None:
    upright = colour_picture((64, 32))
    for orientation in range(1, 9):
        path = save_oriented(tmp_path / f"{orientation}.{ext}", upright, orientation)
        rgb = read_image(path)
        assert probe_image(path).size == (64, 32) == (rgb.shape[1], rgb.shape[0]), orientation
        if ext in ("png", "tif"):
            assert np.array_equal(rgb, upright), orientation


@pytest.mark.parametrize("ext", ["gif", "webp", "png"])
def test_animation_keeps_each_frames_duration(ext: str, tmp_path: Path) -> None:
    path = save_animation(tmp_path / f"in.{ext}")
    probe = probe_image(path)
    assert probe.frames == len(FRAME_MS) and probe.durations == pytest.approx((0.1, 0.2, 0.1, 0.3))  # 0 ms: 100 ms
    with open_source(path) as source:
        assert source.info.kind == "animation" and source.info.frame_count == 4
        frames = list(source)
    assert [f.time for f in frames] == pytest.approx([0.0, 0.1, 0.3, 0.4])
    assert [tuple(f.rgb[0, 0]) for f in frames] == [tuple(c) for c in VOC_COLOURS[1:5]]
    with open_source(path, trim=Trim(start=0.3, max_frames=1)) as source:
        (frame,) = list(source)
    assert frame.time == pytest.approx(0.0, abs=1e-9) and tuple(frame.rgb[0, 0]) == tuple(VOC_COLOURS[3])


def test_multipage_tiff_pages_are_frames_at_the_folder_rate(tmp_path: Path) -> None:
    path = save_animation(tmp_path / "in.tif")
    with open_source(path, fps=5) as source:
        assert source.info.kind == "animation" and source.info.fps == 5
        assert [f.time for f in source] == pytest.approx([0.0, 0.2, 0.4, 0.6])
    thumbs = tmp_path / "thumbs.tif"  # every page after the first flagged a reduced-resolution copy
    pages = [Image.fromarray(colour_picture()), Image.fromarray(colour_picture((32, 24)))]
    pages[0].save(thumbs, save_all=True, append_images=pages[1:], tiffinfo={254: 1})
    assert probe_image(thumbs).frames == 1


def test_a_bomb_is_refused_from_its_header_and_a_big_header_is_only_read(tmp_path: Path) -> None:
    path = tmp_path / "in.png"
    Image.fromarray(colour_picture()).save(path)
    claim_size(path, 10000, 10000)  # over PIL's warning threshold (89 M), under chain's limit
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert probe_image(path).size == (10000, 10000)
    assert not seen, [str(w.message) for w in seen]  # PIL's DecompressionBombWarning is not shown
    with pytest.raises(ChainError, match=r"cannot read image .*in\.png"):
        read_image(path)  # the data is 64x48: one line, not PIL's traceback
    claim_size(path, 16384, 8193)
    with pytest.raises(ChainError, match=rf"16384x8193 .* at most {MAX_IMAGE_PIXELS:,} pixels"):
        probe_image(path)


def test_pil_warnings_never_reach_the_terminal(tmp_path: Path) -> None:
    path = tmp_path / "in.png"
    Image.fromarray(colour_picture()).save(path)
    claim_size(path, 10000, 10000)  # PIL warns of a decompression bomb; chain reads the header only
    info = subprocess.run([sys.executable, "-m", "chain", "info", str(path)], capture_output=True, text=True,
                          timeout=120)
    assert info.returncode == 0 and "10000x10000" in info.stdout and info.stderr == "", info.stderr


def test_a_folder_of_mixed_modes_and_sizes_reads_through_the_one_reader(tmp_path: Path) -> None:
    grey = (np.arange(48 * 64).reshape(48, 64) % 256).astype(np.uint8)
    (tmp_path / "frames").mkdir()
    Image.fromarray(grey).save(tmp_path / "frames" / "0.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "frames" / "1.png")  # 16-bit
    Image.fromarray(grey.astype(np.float32) / 255, "F").save(tmp_path / "frames" / "2.tif")
    Image.fromarray(grey).resize((128, 96)).save(tmp_path / "frames" / "3.png")
    with open_source(tmp_path / "frames") as source:
        frames = [f.rgb for f in source]
    assert all(f.shape == (48, 64, 3) for f in frames)
    for frame in frames[:3]:
        assert np.abs(frame[..., 0].astype(int) - grey).max() <= 1


def test_dataset_images_use_the_one_reader(tmp_path: Path) -> None:
    from chain.datasets.pairs import DatasetLayout, load_pair
    from chain.labels import get_label_space
    from chain.media import Size

    grey = (np.arange(48 * 64).reshape(48, 64) % 256).astype(np.uint8)
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(tmp_path / "a-label.png")
    layout = DatasetLayout("camvid", tmp_path, tmp_path, get_label_space("camvid"), np.arange(256))
    rgb, _ = load_pair(tmp_path / "a.png", tmp_path / "a-label.png", layout, Size(64, 48))
    assert np.array_equal(rgb[..., 1], grey)


# --- video: what the container claims -------------------------------------------------------------

@pytest.mark.parametrize("sar, shown", [(Fraction(2), (128, 48)), (Fraction(1, 2), (64, 96)),
                                        (Fraction(12, 11), (64, 48))])
def test_non_square_pixels_are_made_square_on_decode(sar: Fraction, shown: tuple[int, int], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from chain.entry import main

    clip = make_clip(tmp_path / "in.mp4", sar=sar)
    with open_source(clip) as source:
        info, frame = source.info, next(iter(source)).rgb
    assert (info.width, info.height) == (info.source_width, info.source_height) == shown
    assert frame.shape == (shown[1], shown[0], 3)
    main(["info", str(clip)])
    line = capsys.readouterr().out
    assert f"video, {shown[0]}x{shown[1]}" in line
    assert ("made square on decode" in line) == (shown != (64, 48))


def test_damage_is_judged_before_fps_resampling(tmp_path: Path) -> None:
    for ext in ("mp4", "mkv"):
        clip = make_video(tmp_path / f"in.{ext}", frames=12, fps=10)
        for fps in (30, 4):
            with open_source(clip, fps=fps) as source:
                frames = list(source)
                assert not source.damage.damaged, (ext, fps, source.damage)
                assert source.damage.decoded == 12  # the input's frames, not the retimed ones
            assert len(frames) == pytest.approx(1.2 * fps, abs=3)


@pytest.mark.parametrize("ext", ["mp4", "mkv", "avi", "ts"])
def test_a_long_pause_is_not_damage(ext: str, tmp_path: Path) -> None:
    clip = make_video(tmp_path / f"in.{ext}", frames=len(PAUSE_TIMES), times=PAUSE_TIMES,
                      codec="mpeg4" if ext == "avi" else "libx264")
    with open_source(clip) as source:
        frames = list(source)
        assert not source.damage.damaged, source.damage
    assert len(frames) == len(PAUSE_TIMES) and frames[3].time == pytest.approx(30.2, abs=0.01)


def test_a_truncated_file_without_a_frame_count_is_short_by_its_duration(tmp_path: Path) -> None:
    whole = make_video(tmp_path / "whole.mkv", frames=120, fps=24).read_bytes()
    (tmp_path / "half.mkv").write_bytes(whole[: len(whole) // 2])
    with open_source(tmp_path / "half.mkv") as source:
        decoded = len(list(source))
        damage = source.damage
    assert damage.short and damage.end == pytest.approx(5.0) and damage.reached < 4 and damage.decoded == decoded
    assert "the 5.00s the file promised" in damage.describe()
    whole_mp4 = make_faststart_video(tmp_path / "whole.mp4", frames=132)
    with open_source(whole_mp4, fps=10) as source:  # intact, retimed: nothing promised is missing
        list(source)
        assert not source.damage.damaged


def test_an_empty_stream_says_so_without_blaming_start(tmp_path: Path) -> None:
    clip = make_empty_video(tmp_path / "in.mkv")
    with pytest.raises(ChainError, match=r"has no frames: its video stream is empty") as caught:
        open_source(clip)
    assert "--start" not in str(caught.value)


def test_a_clip_shorter_than_one_output_frame_gives_one_frame(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.mp4", fps=Fraction(10**6), frames=12)
    with pytest.raises(ChainError, match=r"plays at 1,000,000 frames per second; .*--fps"):
        open_source(clip)
    with open_source(clip, fps=25) as source:
        assert source.info.frame_count == 1 and len(list(source)) == 1
    with pytest.raises(ChainError, match=r"--start 1\.0s is past the end"):
        open_source(clip, fps=25, trim=Trim(start=1.0))


def test_read_frames_is_lazy(tmp_path: Path) -> None:
    path = save_animation(tmp_path / "in.gif")
    frames = read_frames(path)
    assert tuple(next(frames)[0, 0]) == tuple(VOC_COLOURS[1])
    frames.close()


def test_cmyk_with_a_damaged_profile_is_converted_plainly() -> None:
    cmyk = Image.fromarray(colour_picture()).convert("CMYK")
    plain = to_rgb(cmyk)
    cmyk.info["icc_profile"] = b"not a profile"
    assert np.array_equal(to_rgb(cmyk), plain) and np.array_equal(plain, colour_picture())


def test_an_image_folder_skips_hidden_files(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for name in ("001.png", "002.png"):
        Image.fromarray(colour_picture((8, 6))).save(folder / name)
    Image.fromarray(colour_picture((20, 40))).save(folder / ".thumb.jpg")  # a thumbnail cache, another size
    (folder / "._001.png").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")  # AppleDouble: not an image
    Image.fromarray(colour_picture((20, 40))).save(folder / ".000.part.png")  # a hidden staging part
    with open_source(folder) as source:
        assert (source.info.width, source.info.height, source.info.frame_count) == (8, 6, 2)
        assert len(list(source)) == 2
    for name in ("001.png", "002.png"):
        (folder / name).unlink()
    with pytest.raises(ChainError, match="no images"):
        open_source(folder)


@pytest.mark.parametrize("ext", ["gif", "webp", "png"])
def test_an_animation_lasts_until_its_last_frame_ends(ext: str, tmp_path: Path) -> None:
    path = save_animation(tmp_path / f"in.{ext}", durations=UNEVEN_MS)  # 0.2, 0.2, 0.05 and 1 s
    assert probe_image(path).durations == pytest.approx((0.2, 0.2, 0.05, 1.0))
    with open_source(path) as source:
        assert source.info.duration == pytest.approx(1.45) and source.info.fps == 20  # its 50 ms grid
        assert [f.time for f in source] == pytest.approx([0.0, 0.2, 0.4, 0.45])
    with open_source(path, fps=10) as source:  # the 1 s frame is held for its second
        colours = [tuple(f.rgb[0, 0]) for f in source]
        assert source.info.frame_count == len(colours) == 15
    assert colours[5:] == [tuple(VOC_COLOURS[4])] * 10
    with open_source(path, fps=10, trim=Trim(start=0.3)) as source:  # from the middle of the second frame
        colours = [tuple(f.rgb[0, 0]) for f in source]
        assert source.info.frame_count == len(colours) == 12
    assert colours[:2] == [tuple(VOC_COLOURS[2]), tuple(VOC_COLOURS[3])] and colours[-1] == tuple(VOC_COLOURS[4])
    with open_source(path, trim=Trim(start=0.3)) as source:
        assert source.info.duration == pytest.approx(1.15)
        assert [f.time for f in source] == pytest.approx([0.0, 0.1, 0.15])
    with open_source(path, trim=Trim(duration=0.3)) as source:
        assert source.info.frame_count == 2 and [f.time for f in source] == pytest.approx([0.0, 0.2])


def test_a_frame_without_a_duration_plays_as_browsers_play_it(tmp_path: Path) -> None:
    path = save_animation(tmp_path / "in.gif", durations=[0, 10, 50, 1000])  # PIL leaves frame 0's out
    assert probe_image(path).durations == pytest.approx((0.1, 0.1, 0.05, 1.0))  # not None: 25 fps throughout
    with open_source(path) as source:
        assert source.info.duration == pytest.approx(1.25)
        assert [f.time for f in source] == pytest.approx([0.0, 0.1, 0.2, 0.25])


def test_an_apng_default_image_is_not_a_frame(tmp_path: Path) -> None:
    path = save_animation(tmp_path / "in.png", durations=[100] * 3, default_image=True)
    with Image.open(path) as image:
        assert image.info.get("default_image") and image.n_frames == 4  # PIL counts it as a frame
    probe = probe_image(path)
    assert probe.pages == (1, 2, 3) and probe.durations == pytest.approx((0.1, 0.1, 0.1))
    with open_source(path) as source:
        frames = list(source)
    assert [f.time for f in frames] == pytest.approx([0.0, 0.1, 0.2])
    assert [tuple(f.rgb[0, 0]) for f in frames] == [tuple(c) for c in VOC_COLOURS[1:4]]


def test_a_png_with_its_exif_after_the_pixels_is_turned_not_stretched(tmp_path: Path) -> None:
    upright = colour_picture((64, 32))
    for orientation in range(1, 9):
        path = save_late_exif_png(tmp_path / f"{orientation}.png", upright, orientation)
        with Image.open(path) as image:
            assert "exif" not in image.info  # the header alone does not say
        assert probe_image(path).size == (64, 32), orientation
        with open_source(path) as source:
            assert source.info.size == (64, 32)
            (frame,) = [f.rgb for f in source]
        assert np.array_equal(frame, upright), orientation


@pytest.mark.parametrize("bits", [8, 16])
def test_a_grey_png_transparent_colour_is_composited_on_white(bits: int, tmp_path: Path) -> None:
    grey = np.array([[0, 128, 255]], np.uint8)
    values = grey.astype(np.uint16) * 257 if bits == 16 else grey
    Image.fromarray(values).save(tmp_path / "in.png", transparency=0)  # tRNS: black is transparent
    with Image.open(tmp_path / "in.png") as image:
        assert image.info.get("transparency") == 0, image.info
    assert read_image(tmp_path / "in.png")[0, :, 0].tolist() == [255, 128, 255]
