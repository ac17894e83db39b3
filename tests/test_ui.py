"""`chain ui`'s library layer without a browser: stage menu, command line, cached preview, run and cancel."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image

import chain
from chain.cli import app, run_config
from chain.errors import ChainError
from chain.labels import COCO_STUFF
from chain.media import Trim
from chain.media.outputs import Outputs
from chain.ui.menu import missing_text, options_hint, stage_choices
from chain.ui.preview import Previewer
from chain.ui.runner import Runner
from chain.ui.settings import Settings, output_paths, split_list
from tests.conftest import shared_file


def test_menu_lists_usable_stages_and_says_why_others_cannot_run(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("CHAIN_WEIGHTS", str(tmp_path))
    choices = {choice.text: choice for choice in stage_choices("segmenter")}
    assert choices["palette:voc"].usable and choices["palette:voc"].label_space == "voc"
    missing = choices["deeplab-mnv2:voc"]
    assert not missing.usable and "chain import tflite deeplabv3_mnv2_voc_257.tflite" in missing.why
    assert "`deeplab-mnv2:voc`: no weights at " + str(tmp_path) in missing_text("segmenter")
    assert "type `labels:DIR" in missing_text("segmenter")  # typed stages are named, not listed
    (tmp_path / "deeplab-mnv2-voc").mkdir()
    (tmp_path / "deeplab-mnv2-voc" / "config.json").write_text("{}")
    assert {c.text: c for c in stage_choices("segmenter")}["deeplab-mnv2:voc"].usable
    assert options_hint("segmenter", "deeplab-mnv2:voc") == "deeplab-mnv2 takes: fit, size, quantization, backend"
    assert options_hint("synthesizer", "colorize:voc") == "colorize takes none"
    synths = {choice.text for choice in stage_choices("synthesizer") if choice.usable}
    assert {"colorize", "colorize:coco-stuff"} <= synths


def test_command_line_is_what_chain_run_parses(tmp_path: Path) -> None:
    settings = Settings(source="my clip.mp4", seg="deeplab-mnv2:voc", synth="colorize:coco-stuff",
                        seg_options=split_list("size=129, fit=aspect"), remap=split_list("person=bear,\ncar=boat"),
                        background="grass", smooth="ema:0.6", size="256", max_frames=10, batch=2)
    outputs = output_paths("my clip.mp4", tmp_path)
    words = shlex.split(settings.command_line(outputs))
    assert words[:2] == ["chain", "run"]
    context = typer.main.get_command(app).commands["run"].make_context("run", words[2:])
    assert run_config(context.params) == settings.run_config(outputs)  # the same run, option for option
    config = settings.run_config(outputs)
    assert config.source == Path("my clip.mp4") and config.outputs.video == tmp_path / "my clip-chain.mp4"
    assert (config.chain.seg, config.chain.synth) == ("deeplab-mnv2:voc", "colorize:coco-stuff")
    assert config.chain.seg_options == {"size": "129", "fit": "aspect"} and config.chain.remap == ("person=bear",
                                                                                                    "car=boat")
    assert (config.chain.background, config.chain.smooth, config.size, config.trim.max_frames, config.batch_size) == (
        "grass", "ema:0.6", "256", 10, 2)
    assert config.outputs.masks == tmp_path / "my clip-masks.mp4" and config.outputs.summary == tmp_path / "my clip-summary.json"


def test_settings_refuse_what_the_cli_refuses() -> None:
    with pytest.raises(ChainError, match="bad remap rule 'person'"):
        Settings(source="a.mp4", remap=("person",))
    with pytest.raises(ChainError, match="stage option 'size' is not KEY=VALUE"):
        Settings(source="a.mp4", seg_options=("size",))
    with pytest.raises(ChainError, match="ema:ALPHA"):
        Settings(source="a.mp4", smooth="sometimes")
    with pytest.raises(ChainError, match="choose a video"):
        Settings(source=" ")


def test_remap_repaints_from_the_cached_segmentation(carphone: Path) -> None:
    previewer = Previewer()
    plain = Settings(source=str(carphone), seg="palette:voc", synth="colorize:coco-stuff")
    first = previewer.preview(plain, 30)
    assert first.segmented and first.source_space == "voc" and first.target_space == "coco-stuff"
    names = [name for name, _ in first.classes]
    assert "person" in names and abs(sum(share for _, share in first.classes) - 1) < 1e-6
    # The masks and the remapped labels carry a legend to the right of the frame.
    assert first.masks.shape[1] > first.frame.shape[1] and first.labels.shape[1] > first.frame.shape[1]
    person = np.all(first.painting == COCO_STUFF.palette[COCO_STUFF.id_of("person")], axis=-1)
    assert person.mean() > 0.05

    bears = previewer.preview(Settings(source=str(carphone), seg="palette:voc", synth="colorize:coco-stuff",
                                       remap=("person=bear",)), 30)
    assert not bears.segmented and "segment" not in bears.seconds
    bear = np.all(bears.painting == COCO_STUFF.palette[COCO_STUFF.id_of("bear")], axis=-1)
    assert np.array_equal(bear, person)  # the same pixels, painted as bears
    assert bears.classes == first.classes  # found classes are listed before remapping
    assert previewer.preview(plain, 31).segmented  # another frame is segmented

    with pytest.raises(ChainError, match="unknown class 'beer' in label space 'coco-stuff'; did you mean 'bear'"):
        previewer.preview(Settings(source=str(carphone), seg="palette:voc", synth="colorize:coco-stuff",
                                   remap=("person=beer",)), 30)


def test_a_spade_preview_paints_what_the_run_paints(carphone: Path, voc_checkpoint: Path, tmp_path: Path) -> None:
    # A run gives SPADE labels made at its grid from the network's scores; the preview must too (labels
    # at frame size sampled down to the grid paint about 15 % of the pixels differently).
    spade = str(shared_file("fixtures/spade_reference/coco_ngf8_G.pth"))
    settings = Settings(source=str(carphone), seg="deeplab-mnv2:voc", seg_weights=str(voc_checkpoint), synth="spade",
                        synth_weights=spade, synth_options=("size=64",), remap=("person=bear",), device="cpu")
    previewer = Previewer()
    preview = previewer.preview(settings, 0)
    pipeline = chain.build_chain(seg="deeplab-mnv2:voc", seg_weights=str(voc_checkpoint), synth="spade",
                                 synth_weights=spade, synth_options={"size": "64"}, remap=["person=bear"],
                                 device="cpu")
    pipeline(carphone, Outputs.of(video=tmp_path / "run"), trim=Trim(max_frames=1))
    painted = np.asarray(Image.open(next((tmp_path / "run").glob("*.png"))))
    assert preview.painting.shape == painted.shape and np.array_equal(preview.painting, painted)
    assert preview.masks.shape[0] == preview.frame.shape[0]  # the masks stay at the frame's size
    again = previewer.preview(settings, 0)
    assert not again.segmented and np.array_equal(again.painting, preview.painting)


def test_run_writes_outputs_and_cancel_leaves_nothing(carphone: Path, tmp_path: Path) -> None:
    runner = Runner()
    settings = Settings(source=str(carphone), seg="palette:voc", synth="colorize:coco-stuff", remap=("person=bear",),
                        size="88", max_frames=12)
    outputs = output_paths(str(carphone), tmp_path)
    runner.start(settings, outputs)
    state = runner.wait(60)
    assert state.status == "done", state.message
    assert state.done == state.total == 12 and state.frames_per_second > 0
    # One speed on the page: the bar's figure becomes the run's own, and the message repeats none.
    assert state.frames_per_second == pytest.approx(state.summary["frames_per_second"], abs=1e-3)
    assert "frames/s" not in state.message and state.message.startswith("12 frames at ")
    assert set(state.outputs) == {"video", "masks", "compare", "summary"}
    assert state.summary["remapped"] == ["person → bear"]
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert sorted(before) == sorted(Path(p).name for p in state.outputs.values())

    slow = Settings(source=str(carphone), seg="palette:voc", synth="colorize:coco-stuff", remap=("person=bear",))
    runner.start(slow, outputs)
    with pytest.raises(ChainError, match="a run is already going"):
        runner.start(slow, outputs)
    deadline = time.monotonic() + 60
    while runner.state().done < 2 and runner.state().active and time.monotonic() < deadline:
        time.sleep(0.01)
    runner.cancel()
    state = runner.wait(60)
    assert state.status == "cancelled" and "no partial output" in state.message
    assert 0 < state.done < 120
    after = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert after == before  # no hidden partial file, and the first run's outputs untouched


def test_run_errors_are_the_cli_one_line(tmp_path: Path) -> None:
    runner = Runner()
    runner.start(Settings(source=str(tmp_path / "missing.mp4"), seg="palette:voc"), output_paths("missing", tmp_path))
    state = runner.wait(30)
    assert state.status == "failed" and state.message == f"input not found: {tmp_path / 'missing.mp4'}"


def test_preview_frames_of_an_animation_are_its_frames_counted(tmp_path: Path) -> None:
    from chain.ui.preview import read_frame
    from tests.bad_inputs.images import UNEVEN_MS, VOC_COLOURS, save_animation

    path = save_animation(tmp_path / "in.gif", durations=UNEVEN_MS)  # 0.2, 0.2, 0.05, 1 s: not index / fps
    assert [tuple(read_frame(path, index)[0, 0]) for index in range(4)] == [tuple(c) for c in VOC_COLOURS[1:5]]
    with pytest.raises(ChainError, match="has no frame 4"):
        read_frame(path, 4)
