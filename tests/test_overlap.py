"""The pipelined run (`chain.engine.overlap`): the same frames as the serial loop, bounded queues, and a
failure in any thread (or Ctrl-C) ends it with one line and nothing on disk."""

from __future__ import annotations

import json
import os
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import chain
from chain.engine.overlap import Lanes
from chain.entry import main
from chain.media import Trim
from chain.media.outputs import Outputs
from tests.bad_inputs import make_video
from tests.conftest import shared_file


def outputs_in(folder: Path) -> Outputs:
    """Every kind of output, video frames as lossless PNGs so that frames compare exactly."""
    return Outputs.of(video=folder / "out", masks=folder / "masks", compare=folder / "compare",
                      labels=folder / "labels", summary=folder / "run.json")


def assert_same_outputs(first: Path, second: Path) -> None:
    for name in ("out", "masks", "compare", "labels"):
        names = sorted(os.listdir(first / name))
        assert names == sorted(os.listdir(second / name)) and len(names) > 1, name
        for png in (n for n in names if n.endswith(".png")):
            a, b = (np.asarray(Image.open(folder / name / png)) for folder in (first, second))
            assert a.dtype == b.dtype and np.array_equal(a, b), f"{name}/{png} differs"
    records = [json.loads((folder / "run.json").read_text())["per_frame"] for folder in (first, second)]
    assert records[0] == records[1] and len(records[0]) > 1


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("smooth", [None, "ema:0.5"])
def test_pipelined_and_serial_runs_write_the_same_frames(carphone: Path, voc_checkpoint: Path, tmp_path: Path,
                                                         batch: int, smooth: str | None) -> None:
    spade = shared_file("fixtures/spade_reference/coco_ngf8_G.pth")
    pipeline = chain.build_chain(seg="deeplab-mnv2:voc", seg_weights=str(voc_checkpoint), synth="spade",
                                 synth_weights=str(spade), synth_options={"size": "64"}, smooth=smooth,
                                 remap=["person=bear"], device="cpu")
    for overlap in (True, False):
        summary = pipeline(carphone, outputs_in(tmp_path / str(overlap)), trim=Trim(max_frames=11),
                           batch_size=batch, overlap=overlap)
        assert summary.frames == 11  # 11: batch 8 ends with a short batch
    assert_same_outputs(tmp_path / "True", tmp_path / "False")


def test_lanes_keep_order_and_stay_at_most_a_few_batches_ahead() -> None:
    produced: list[int] = []
    written: list[int] = []
    lead: list[int] = []

    def items() -> Iterator[int]:
        for i in range(40):
            produced.append(i)
            yield i

    lanes = Lanes(depth=2)
    for item in lanes.ahead(items()):
        time.sleep(0.002)  # the consumer is the slow one: the producer would race ahead unbounded
        lead.append(len(produced) - item)
        lanes.behind(written.append, item)
    lanes.finish()
    assert written == list(range(40))
    # waiting in the queue (2), being put (1), and the one the consumer holds
    assert max(lead) <= 2 + 2, lead


def test_a_writer_failure_reaches_the_caller_and_threads_end() -> None:
    before = threading.active_count()
    lanes = Lanes(depth=1)

    def fail(item: int) -> None:
        if item == 3:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        for item in lanes.ahead(iter(range(1000))):
            lanes.behind(fail, item)
        lanes.finish()
    lanes.stop()
    assert threading.active_count() == before


#: The thread each injected failure was raised in.
raised_in: list[str] = []


def _fail_on_call(original, call: int, error: BaseException):
    """``original`` wrapped to raise ``error`` on its ``call``-th call (1-based)."""
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(None)
        if len(calls) == call:
            raised_in.append(threading.current_thread().name)
            raise error
        return original(*args, **kwargs)
    return wrapper


def _failing_iteration(original):
    def iterate(self):
        for number, frame in enumerate(original(self)):
            if number == 5:
                raised_in.append(threading.current_thread().name)
                raise RuntimeError("injected decoder failure")
            yield frame
    return iterate


@pytest.mark.parametrize("where", ["decoder", "segmenter", "synthesizer", "encoder"])
def test_a_failure_in_any_thread_is_one_line_and_leaves_nothing(where: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from chain.media.sink import VideoFileSink
    from chain.media.source import FrameSource
    from chain.stages.lookup import ColorizeSynthesizer, PaletteSegmenter

    make_video(tmp_path / "in.mp4", frames=24)
    monkeypatch.chdir(tmp_path)
    error = RuntimeError(f"injected {where} failure")
    if where == "decoder":  # raised inside the decoder thread, from FrameSource iteration
        monkeypatch.setattr(FrameSource, "__iter__", _failing_iteration(FrameSource.__iter__))
    elif where == "segmenter":
        monkeypatch.setattr(PaletteSegmenter, "segment", _fail_on_call(PaletteSegmenter.segment, 3, error))
    elif where == "synthesizer":
        monkeypatch.setattr(ColorizeSynthesizer, "synthesize", _fail_on_call(ColorizeSynthesizer.synthesize, 3, error))
    else:  # raised inside the writer thread, after frames were encoded
        monkeypatch.setattr(VideoFileSink, "write", _fail_on_call(VideoFileSink.write, 5, error))
    before = threading.active_count()
    raised_in.clear()
    with pytest.raises(SystemExit) as done:
        main(["run", "in.mp4", "out.mp4", "--seg", "palette:voc", "--synth", "colorize", "--masks", "masks.mp4",
              "--save-labels", "labels", "--summary", "run.json", "--batch", "2", "-q"])
    assert done.value.code == 1  # an internal error: the exit code of an unexpected exception
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"injected {where} failure" in lines[0] and "Traceback" not in lines[0], lines
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"], "a failed run left files behind"
    assert threading.active_count() == before, "a lane's thread outlived the run"
    assert raised_in == [{"decoder": "chain-decode", "encoder": "chain-write"}.get(where, "MainThread")]


def test_ctrl_c_in_the_networks_stops_the_lanes_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from chain.stages.lookup import PaletteSegmenter

    make_video(tmp_path / "in.mp4", frames=24)
    monkeypatch.chdir(tmp_path)
    # KeyboardInterrupt is what a SIGINT raises in the main thread, where the networks run
    # (tests/test_signals.py sends real signals to a pipelined run in a subprocess).
    monkeypatch.setattr(PaletteSegmenter, "segment", _fail_on_call(PaletteSegmenter.segment, 4, KeyboardInterrupt()))
    before = threading.active_count()
    with pytest.raises(SystemExit) as done:
        main(["run", "in.mp4", "out.mp4", "--seg", "palette:voc", "--synth", "colorize", "--save-labels", "labels",
              "-q"])
    assert done.value.code == 130
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0], lines
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]
    assert threading.active_count() == before


def _peak_bytes(pipeline: chain.engine.pipeline.Chain, clip: Path, folder: Path, frames: int) -> int:
    """Peak bytes that Python and numpy allocated during one run, above what was held before it."""
    tracemalloc.reset_peak()
    held = tracemalloc.get_traced_memory()[0]
    summary = pipeline(clip, Outputs.of(video=folder / f"{frames}.mp4", summary=folder / f"{frames}.json"),
                       trim=Trim(max_frames=frames), batch_size=4)
    assert summary.frames == frames
    return tracemalloc.get_traced_memory()[1] - held


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_films_length(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A decoder that ran ahead unbounded would hold most of the 2,000 frames (18 MB of frames
    # alone, against under 1 MB in flight). The writer is made the slow lane (as --masks makes it
    # on a real run), so the queues are full from the first batches on: both runs see their worst case.
    from chain.media.sink import VideoFileSink

    write = VideoFileSink.write

    def slow_write(self: VideoFileSink, image: np.ndarray, time_s: float) -> None:
        time.sleep(0.001)
        write(self, image, time_s)

    monkeypatch.setattr(VideoFileSink, "write", slow_write)
    clip = make_video(tmp_path / "long.mp4", frames=2000, size=(64, 48), fps=25)
    pipeline = chain.build_chain(seg="palette:voc", synth="colorize", device="cpu")
    tracemalloc.start()
    try:
        _peak_bytes(pipeline, clip, tmp_path, 20)  # first-use allocations (caches, lazy imports) out of the way
        short, long = (_peak_bytes(pipeline, clip, tmp_path, frames) for frames in (200, 2000))
    finally:
        tracemalloc.stop()
    assert long <= 1.3 * short, f"peak {long / 2**20:.2f} MiB for 2,000 frames, {short / 2**20:.2f} MiB for 200"


@pytest.mark.slow
def test_the_painting_does_not_depend_on_which_label_outputs_are_asked(carphone: Path, voc_checkpoint: Path,
                                                                       tmp_path: Path) -> None:
    # SPADE paints from labels at its own grid; masks need them at frame size too. Both come from
    # one look at the frames, so asking for masks must not move a single painted pixel.
    spade = shared_file("fixtures/spade_reference/coco_ngf8_G.pth")
    pipeline = chain.build_chain(seg="deeplab-mnv2:voc", seg_weights=str(voc_checkpoint), synth="spade",
                                 synth_weights=str(spade), synth_options={"size": "64"}, device="cpu")
    pipeline(carphone, Outputs.of(video=tmp_path / "alone"), trim=Trim(max_frames=3))
    pipeline(carphone, Outputs.of(video=tmp_path / "with", masks=tmp_path / "masks"), trim=Trim(max_frames=3))
    names = sorted(n for n in os.listdir(tmp_path / "alone") if n.endswith(".png"))
    assert len(names) == 3 and (tmp_path / "masks" / names[0]).is_file()
    assert (np.asarray(Image.open(tmp_path / "masks" / names[0])).shape[:2]
            != (64, 64))  # the masks are at frame size, not the grid
    for name in names:
        assert np.array_equal(np.asarray(Image.open(tmp_path / "alone" / name)),
                              np.asarray(Image.open(tmp_path / "with" / name))), name
