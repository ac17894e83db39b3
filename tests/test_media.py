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


@pytest.mark.slow
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
    # the hidden marker lets a later run replace the folder (chain.media.targets)
    assert names == [".chain-output", "000000.png", "000001.png", "000002.png", "000003.png"]
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


# --- issue 11: damaged, rotated, variable-rate and animated input -----------------------------

from chain.media.sizes import MAX_SIDE  # noqa: E402
from chain.media.source import MAX_FPS, MIN_FPS, parse_fps  # noqa: E402
from tests.bad_inputs import make_video  # noqa: E402
from tests.bad_inputs.media import corrupt_packets, make_faststart_video, make_gif, make_rotated_video, video_times  # noqa: E402


def test_damaged_packets_are_skipped_and_later_frames_keep_their_times(tmp_path: Path) -> None:
    clip = corrupt_packets(make_video(tmp_path / "in.mp4", frames=120, fps=24), [40, 41, 42])
    with open_source(clip) as source:
        frames = list(source)
        damage = source.damage
    assert (len(frames), damage.skipped_frames, damage.expected, damage.decoded) == (117, 3, 120, 117)
    assert damage.damaged and not damage.short and "Invalid data" in damage.first_error
    # Frames after the hole keep their own times, not moved up three frames (the sound would drift).
    ticks = [f.time * 24 for f in frames]
    assert ticks == pytest.approx([round(t) for t in ticks]) and len(set(map(round, ticks))) == 117
    assert frames[-1].time == pytest.approx(119 / 24)


def test_truncated_input_is_short_but_a_limit_before_the_cut_is_not(tmp_path: Path) -> None:
    whole = make_faststart_video(tmp_path / "whole.mp4", frames=132).read_bytes()
    (tmp_path / "half.mp4").write_bytes(whole[: len(whole) // 2])
    with open_source(tmp_path / "half.mp4") as source:
        decoded = len(list(source))
        assert source.damage.short and source.damage.expected == 132 and source.damage.decoded == decoded < 80
    with open_source(tmp_path / "half.mp4", trim=Trim(max_frames=20)) as source:
        assert len(list(source)) == 20 and not source.damage.damaged


@pytest.mark.parametrize("rotation, turns", [(90, 1), (-90, 3), (180, 2)])
def test_rotated_video_is_decoded_upright(rotation: int, turns: int, tmp_path: Path) -> None:
    clip = make_rotated_video(tmp_path / "in.mp4", rotation)
    with open_source(clip) as source:
        info, frame = source.info, next(iter(source)).rgb
    stored = np.zeros((48, 64, 3), np.uint8)
    stored[:8, :8] = 255
    upright = np.rot90(stored, turns)  # what a player shows: the display matrix turns it counter-clockwise
    assert (info.width, info.height) == (upright.shape[1], upright.shape[0]) == (frame.shape[1], frame.shape[0])
    assert info.rotation == rotation % 360
    assert np.abs(frame.astype(int) - upright).mean() < 8  # x264's loss only
    with open_source(clip, size="24") as source:  # --size applies to the upright frame
        assert next(iter(source)).rgb.shape[:2] == ((32, 24) if turns % 2 else (24, 32))


def test_info_shows_upright_size_of_rotated_video(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from chain.entry import main

    main(["info", str(make_rotated_video(tmp_path / "in.mp4", 90))])
    assert "video, 48x64, stored rotated (turned 90° upright on decode)" in capsys.readouterr().out


def _vfr_clip_with_audio(path: Path, times: list[float]) -> Path:
    """H.264 at the given frame times (ms time base) with a second of AAC tone, as a phone writes."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.codec_context.time_base = Fraction(1, 1000)
        audio = container.add_stream("aac", rate=48000, layout="mono")
        for i, time in enumerate(times):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 10 * i % 256, np.uint8), format="rgb24")
            frame.pts, frame.time_base = round(time * 1000), Fraction(1, 1000)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        tone = (0.3 * np.sin(np.arange(48000 * 2) * 2 * np.pi * 440 / 48000)).astype(np.float32)[None]
        for start in range(0, tone.shape[1], 1024):
            chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start:start + 1024]), format="fltp",
                                               layout="mono")
            chunk.sample_rate, chunk.pts = 48000, start
            container.mux(audio.encode(chunk))
        container.mux(audio.encode(None))
    return path


def test_variable_frame_rate_keeps_each_frames_time_next_to_the_audio(tmp_path: Path) -> None:
    # 30 fps, then a stall of 0.5 s (a phone's camera slowing down in the dark), then 30 fps again.
    times = [i / 30 for i in range(15)] + [1.0 + i / 30 for i in range(15)]
    clip = _vfr_clip_with_audio(tmp_path / "vfr.mp4", times)
    with open_source(clip) as source:
        average = float(source.info.fps)
    assert max(abs(t - i / average) for i, t in enumerate(times)) > 1 / average  # retiming would drift
    copy_through(clip, tmp_path / "out.mp4")
    out = video_times(tmp_path / "out.mp4")
    assert len(out) == len(times)
    assert max(abs(a - b) for a, b in zip(out, times)) < 0.1 / average  # a tenth of a frame: within one
    with av.open(str(tmp_path / "out.mp4")) as container:
        audio = container.streams.audio[0]
        first = next(p for p in container.demux(audio) if p.pts is not None)
        assert float(first.pts * first.time_base) == pytest.approx(0.0, abs=0.03)  # the sound starts with frame 0


def test_constant_rate_input_with_rounded_times_comes_out_exactly_constant(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "in.mkv", frames=30, fps=Fraction(30000, 1001))  # Matroska: ms timestamps
    assert any(abs(t - i * 1001 / 30000) > 1e-4 for i, t in enumerate(video_times(clip)))
    copy_through(clip, tmp_path / "out.mp4")
    out = video_times(tmp_path / "out.mp4")
    assert out == pytest.approx([i * 1001 / 30000 for i in range(30)], abs=1e-9)
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.video[0].average_rate == Fraction(30000, 1001)


def test_animated_gif_is_an_animation_with_its_own_timing(tmp_path: Path) -> None:
    with open_source(make_gif(tmp_path / "in.gif")) as source:
        assert source.info.kind == "animation" and source.info.frame_count == 5
        frames = list(source)
    assert [f.time for f in frames] == pytest.approx([0.0, 0.1, 0.3, 0.4, 0.7], abs=0.011)
    assert [int(f.rgb[0, 0, 0]) for f in frames] == [0, 40, 80, 120, 160]
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "still.gif")
    with open_source(tmp_path / "still.gif") as source:
        assert source.info.kind == "image"


def test_input_names_are_files_not_ffmpeg_urls(tmp_path: Path) -> None:
    make_video(tmp_path / "a.mp4", frames=12)
    named = make_video(tmp_path / "concat:a.mp4|a.mp4", frames=3)
    with open_source(named) as source:
        assert len(list(source)) == 3
    (tmp_path / "subfile,,start,0,end,0,,:a.mp4").write_text("text")
    with pytest.raises(ChainError, match="cannot read"):
        open_source(tmp_path / "subfile,,start,0,end,0,,:a.mp4")


def test_size_and_fps_bounds() -> None:
    assert parse_size(str(MAX_SIDE)) == MAX_SIDE
    with pytest.raises(ChainError, match="at most 16384 pixels a side"):
        parse_size(str(MAX_SIDE + 1))
    with pytest.raises(ChainError, match=r"30000x100 frame would take 9 MiB"):
        parse_size("30000x100")
    with pytest.raises(ChainError, match=r"20000x20000 frame would take 1\.1 GiB"):
        parse_size("20000x20000")
    with pytest.raises(ChainError, match="makes 21334x16000 frames"):
        resolve_size(Size(64, 48), 16000)
    assert parse_fps(0.001) == MIN_FPS and parse_fps(1000) == MAX_FPS and parse_fps(30000 / 1001) == Fraction(30000, 1001)
    for bad in (0.0001, 0.0, -5.0, 1001.0, float("nan"), float("inf")):
        with pytest.raises(ChainError, match="--fps"):
            parse_fps(bad)


def test_start_in_mpeg_ts_reads_the_frame_at_that_time(tmp_path: Path) -> None:
    # MPEG-TS has no index: FFmpeg's seek lands past the target, and the input's clock starts late.
    clip = _vfr_clip_with_audio(tmp_path / "in.mp4", [i / 30 for i in range(60)])
    with av.open(str(clip)) as source, av.open(str(tmp_path / "in.ts"), "w") as target:
        streams = {s.index: target.add_stream_from_template(s) for s in source.streams}
        for packet in source.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                target.mux(packet)
    with av.open(str(tmp_path / "in.ts")) as container:  # the video starts after the audio (AAC priming)
        video = container.streams.video[0]
        offset = float(video.start_time * video.time_base) - container.start_time / av.time_base
    first = round((0.5 - offset) * 30)  # the frame shown at 0.5 s on the file's clock
    assert 10 < first < 20
    with open_source(tmp_path / "in.ts", trim=Trim(start=0.5, max_frames=3)) as frames:
        grey = [int(f.rgb[0, 0, 0]) for f in frames]
    assert grey == pytest.approx([10 * first, 10 * first + 10, 10 * first + 20], abs=3)
