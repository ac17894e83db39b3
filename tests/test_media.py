"""Streaming decode/encode with PyAV: frame counts, rates, audio, sizes, atomic outputs."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from chain.errors import ChainError
from chain.media import Size, Trim, open_audio, open_sink, open_source, parse_size, resolve_size


def copy_through(source: Path, target: Path, **kwargs) -> int:
    """Decode ``source`` and encode every frame (with its audio) into ``target``; frames written."""
    trim = kwargs.pop("trim", Trim())
    with open_source(source, trim=trim, **kwargs) as frames:
        audio = open_audio(source, start=trim.start, duration=frames.info.duration) if frames.info.kind == "video" \
            else None
        sink = open_sink(target, fps=frames.info.fps, audio=audio)
        for frame in frames:
            sink.write(frame.rgb, frame.time)
        sink.commit()
    return sink.frames_written


def probe(path: Path) -> tuple[int, Fraction, list[str], tuple[int, int]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames, stream.average_rate, [a.codec_context.name for a in container.streams.audio], \
            (stream.codec_context.width, stream.codec_context.height)


@pytest.mark.parametrize("clip", ["carphone", "bunny"])
def test_round_trip_keeps_frame_count_rate_and_audio(clip: str, request: pytest.FixtureRequest,
                                                     tmp_path: Path) -> None:
    source = request.getfixturevalue(clip)
    source_frames, source_rate, source_audio, source_size = probe(source)
    written = copy_through(source, tmp_path / "out.mp4")
    frames, rate, audio, size = probe(tmp_path / "out.mp4")
    assert written == frames == source_frames
    assert rate == source_rate
    assert size == source_size
    assert audio == source_audio  # bigbuckbunny: AAC copied into MP4; carphone: none
    assert not list(tmp_path.glob(".*partial*")), "staging files left behind"


def test_audio_is_reencoded_when_container_cannot_copy_it(bunny: Path, tmp_path: Path) -> None:
    copy_through(bunny, tmp_path / "out.webm", trim=Trim(max_frames=10), size="64")
    with av.open(str(tmp_path / "out.webm")) as container:
        assert [s.codec_context.name for s in container.streams.audio] == ["opus"]


def test_trim_size_and_fps(bunny: Path, tmp_path: Path) -> None:
    written = copy_through(bunny, tmp_path / "out.mkv", trim=Trim(start=1.0, duration=2.0), size="144", fps=10)
    frames, rate, audio, size = probe(tmp_path / "out.mkv")
    assert written == frames == 20
    assert rate == 10
    assert size == (256, 144)
    assert audio == ["aac"]
    with av.open(str(tmp_path / "out.mkv")) as container:
        assert container.duration / av.time_base == pytest.approx(2.0, abs=0.1)


def test_max_frames_and_info_frame_count(carphone: Path) -> None:
    with open_source(carphone, trim=Trim(max_frames=7)) as frames:
        assert frames.info.frame_count == 7
        assert len(list(frames)) == 7
    with open_source(carphone) as frames:
        assert frames.info.frame_count == 120
        assert frames.info.fps == Fraction(30000, 1001)


def test_odd_sizes_are_padded_to_even_for_h264(carphone: Path, tmp_path: Path) -> None:
    written = copy_through(carphone, tmp_path / "odd.mp4", trim=Trim(max_frames=5), size="75x47")
    frames, _, _, size = probe(tmp_path / "odd.mp4")
    assert written == frames == 5
    assert size == (76, 48)


def test_png_folder_output_then_folder_input(carphone: Path, tmp_path: Path) -> None:
    copy_through(carphone, tmp_path / "frames", trim=Trim(max_frames=4))
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert names == ["000000.png", "000001.png", "000002.png", "000003.png"]
    with open_source(tmp_path / "frames", fps=12) as frames:
        assert frames.info.kind == "images" and frames.info.fps == 12 and frames.info.frame_count == 4
        first = next(iter(frames))
    assert first.rgb.shape == (144, 176, 3)
    assert np.array_equal(first.rgb, np.asarray(Image.open(tmp_path / "frames" / "000000.png")))


def test_single_image_in_and_out(tmp_path: Path) -> None:
    image = np.random.default_rng(0).integers(0, 255, (31, 40, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "in.png")
    copy_through(tmp_path / "in.png", tmp_path / "out.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), image)


def test_failed_write_leaves_no_output(carphone: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    with open_source(carphone, trim=Trim(max_frames=3)) as frames:
        sink = open_sink(target, fps=frames.info.fps)
        for frame in frames:
            sink.write(frame.rgb, frame.time)
        sink.abort()
    assert list(tmp_path.iterdir()) == []


def test_sizes() -> None:
    assert parse_size("256x144") == Size(256, 144)
    assert parse_size("256") == 256
    assert resolve_size(Size(1280, 720), 144) == Size(256, 144)
    assert resolve_size(Size(720, 1280), 144) == Size(144, 256)
    with pytest.raises(ChainError, match="WIDTHxHEIGHT"):
        parse_size("big")


@pytest.mark.parametrize("bad, message", [
    ("missing.mp4", "input not found"),
    ("notavideo.mp4", "cannot read"),
])
def test_bad_inputs_give_chain_errors(bad: str, message: str, tmp_path: Path) -> None:
    (tmp_path / "notavideo.mp4").write_text("hello")
    with pytest.raises(ChainError, match=message):
        open_source(tmp_path / bad)


def test_start_past_end_is_an_error(carphone: Path) -> None:
    with pytest.raises(ChainError, match="past the end"):
        open_source(carphone, trim=Trim(start=100.0))
