"""First use (issue 16): the remap shown by name, missing weights reported at once, light start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import chain
from chain.api import build_chain
from chain.engine.pipeline import Chain
from chain.entry import main
from chain.errors import ChainError, MissingWeightsError
from chain.labels import COCO_STUFF, VOC
from chain.media import Trim
from chain.media.outputs import Outputs
from chain.stages.base import Synthesizer
from chain.stages.lookup import ColorizeSynthesizer, PaletteSegmenter
from chain.weights.locations import CONFIG_FILE
from tests.conftest import shared_file


def person_frames(folder: Path, count: int = 2) -> None:
    """Frames painted in VOC colours: a person on the left half, a car on the right."""
    labels = np.zeros((48, 64), dtype=VOC.dtype)
    labels[:, :32] = VOC.id_of("person")
    labels[:, 32:] = VOC.id_of("car")
    folder.mkdir()
    for index in range(count):
        Image.fromarray(VOC.colorize(labels)).save(folder / f"{index:03d}.png")


class FramePainter(Synthesizer):
    """A synthesizer whose paintings are not the label colours (inverted label colours)."""

    description = "inverted colours"

    def __init__(self) -> None:
        self.label_space = COCO_STUFF

    def synthesize(self, *, labels, frames):
        return 255 - COCO_STUFF.colorize(labels)


def compare_width(path: Path) -> int:
    with av.open(str(path)) as container:
        return container.streams.video[0].codec_context.width


def test_compare_legend_names_the_remapped_class_in_the_synthesizers_space(tmp_path: Path) -> None:
    person_frames(tmp_path / "in")
    pipeline = Chain(segmenter=PaletteSegmenter(VOC), synthesizer=FramePainter(), remap=["person=bear"])
    summary = pipeline(tmp_path / "in", Outputs(compare=tmp_path / "compare", summary=tmp_path / "run.json"),
                       trim=Trim(max_frames=2))
    legend = pipeline.views.compare_renderer.legend
    assert sorted(legend) == ["bear (was person) 50%", "car 50%"]  # no "person": not what was painted from
    # input | labels with legend | synthesized
    frame = np.asarray(Image.open(tmp_path / "compare" / "000000.png"))
    assert frame.shape[1] == 64 + 64 + pipeline.views.compare_renderer.legend_width(48) + 64
    assert summary.target_class_share == {"bear": 0.5, "car": 0.5}
    run = json.loads((tmp_path / "run.json").read_text())["run"]
    assert run["mean_class_share"] == {"person": 0.5, "car": 0.5}  # the segmenter's space
    assert run["target_class_share"] == {"bear": 0.5, "car": 0.5}  # what the synthesizer was given


def test_colorize_compare_shows_the_label_panel_once(tmp_path: Path) -> None:
    person_frames(tmp_path / "in")
    pipeline = Chain(segmenter=PaletteSegmenter(VOC), synthesizer=ColorizeSynthesizer(COCO_STUFF),
                     remap=["person=bear"])
    pipeline(tmp_path / "in", Outputs(compare=tmp_path / "compare.mp4"), trim=Trim(max_frames=2))
    # input | labels with legend (= synthesized), no third panel repeating the labels
    expected = 64 + 64 + pipeline.views.compare_renderer.legend_width(48)
    assert compare_width(tmp_path / "compare.mp4") == expected + expected % 2
    assert "bear (was person) 50%" in pipeline.views.compare_renderer.legend


def test_missing_weights_of_every_stage_in_one_message_with_usable_alternatives(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("CHAIN_WEIGHTS", str(tmp_path / "weights"))
    import torchvision.models._api as torchvision_api

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torchvision_api, "load_state_dict_from_url", offline)
    with pytest.raises(MissingWeightsError) as caught:
        build_chain(seg="deeplab", synth="spade", device="cpu")
    message = str(caught.value)
    assert "\n" not in message
    assert "segmenter 'deeplab'" in message and "deeplabv3_resnet50_coco" in message
    assert "synthesizer 'spade'" in message and str(tmp_path / "weights" / "spade") in message
    assert "segmenters usable here: palette" in message and "synthesizers usable here: colorize" in message
    assert "deeplab-mnv2" not in message.split("usable here")[1]  # not imported: not offered

    # An imported DeepLabV3-MobileNetV2 is offered as soon as it is there.
    (tmp_path / "weights" / "deeplab-mnv2-voc").mkdir(parents=True)
    (tmp_path / "weights" / "deeplab-mnv2-voc" / CONFIG_FILE).write_text("{}")
    with pytest.raises(MissingWeightsError, match=r"segmenters usable here: [^;]*deeplab-mnv2:voc"):
        build_chain(seg="deeplab", synth="spade", device="cpu")


def test_remap_to_a_class_the_synthesizers_space_lacks_names_the_spaces_and_synthesizers_that_have_it() -> None:
    with pytest.raises(ChainError) as caught:
        build_chain(seg="palette:voc", synth="colorize:voc", remap=["person=bear"], device="cpu")
    message = str(caught.value)
    assert "--remap works in the synthesizer's label space, here 'voc'" in message
    assert "'bear' is in coco-stuff" in message
    assert "spade:coco" in message and "colorize:coco-stuff" in message
    assert "spade:cityscapes" not in message  # Cityscapes has no bears
    # The same rule is fine where the synthesizer's space has bears.
    assert build_chain(seg="palette:voc", synth="colorize:coco-stuff", remap=["person=bear"], device="cpu")



def test_the_default_synthesizer_takes_any_coco_class_as_a_remap_target(tmp_path: Path) -> None:
    """`chain run IN OUT --remap person=bear` with the default synthesizer: VOC labels painted in COCO-Stuff."""
    person_frames(tmp_path / "in", count=1)
    main(["run", str(tmp_path / "in"), str(tmp_path / "out") + "/", "--seg", "palette:voc", "--remap",
          "person=bear", "--summary", str(tmp_path / "run.json"), "-q"])  # returns: no error exit
    painted = np.asarray(Image.open(tmp_path / "out" / "000000.png").convert("RGB"))
    assert (painted[:, :32] == COCO_STUFF.colorize(np.array([[COCO_STUFF.id_of("bear")]]))[0, 0]).all()
    assert (painted[:, 32:] == COCO_STUFF.colorize(np.array([[COCO_STUFF.id_of("car")]]))[0, 0]).all()
    assert json.loads((tmp_path / "run.json").read_text())["run"]["request"]["synth"] == "colorize:coco-stuff"


LIGHT = """
import sys
from chain.entry import main
code = 0  # --help returns without SystemExit outside click's standalone mode
try:
    main({args!r})
except SystemExit as done:
    code = done.code
heavy = sorted(name for name in ("torch", "torchvision", "chain.api", "chain.engine.pipeline") if name in sys.modules)
print("EXIT", code, "HEAVY", heavy)
"""


@pytest.mark.parametrize(("args", "code", "says"), [
    (["--help"], 0, "Segment, remap"),
    (["run", "--help"], 0, "--remap"),
    (["train", "vaegan", "--help"], 0, "[default: 256x144]"),  # rich markup must not eat the brackets
    (["run", "missing.mp4", "out.mp4"], 2, "missing.mp4"),
    (["run", "{clip}", "out.mp4", "--remap", "person"], 2, "bad remap rule"),
    (["run", "{clip}", "out.xyz"], 2, "unknown extension"),
    (["run", "{clip}", "out.mp4", "--size", "0x0"], 2, "size"),
])
def test_help_and_cheap_mistakes_answer_without_importing_torch(
        args: list[str], code: int, says: str, carphone: Path, tmp_path: Path) -> None:
    args = [arg.replace("{clip}", str(carphone)) for arg in args]
    done = subprocess.run([sys.executable, "-c", LIGHT.format(args=args)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "COLUMNS": "120"})
    assert f"EXIT {code} HEAVY []" in done.stdout, done.stdout + done.stderr
    assert says in done.stdout + done.stderr


def test_chain_list_shows_weight_paths_in_full_at_80_columns(tmp_path: Path) -> None:
    weights = tmp_path / ("a-long-folder-name-" * 4) / "weights"
    done = subprocess.run([sys.executable, "-m", "chain", "list"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "80", "CHAIN_WEIGHTS": str(weights)})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"    weights missing: {weights / 'deeplab-mnv2-voc'} (get: chain import tflite " \
           f"deeplabv3_mnv2_voc_257.tflite --labels voc --out {weights / 'deeplab-mnv2-voc'})" in lines
    assert any(line.startswith("mask2former:coco-large ") for line in lines)


def test_run_json_records_the_request(tmp_path: Path) -> None:
    person_frames(tmp_path / "in")
    args = ["run", str(tmp_path / "in"), "--seg", "palette:voc", "--synth", "colorize:coco-stuff", "--remap",
            "person=bear", "--summary", str(tmp_path / "run.json"), "-q"]
    main(args)
    request = json.loads((tmp_path / "run.json").read_text())["run"]["request"]
    assert request["input"] == str(tmp_path / "in")
    assert request["command"] == ["chain", *args]
    assert request["chain_version"] == chain.__version__
    assert request["seg"] == "palette:voc" and request["synth"] == "colorize:coco-stuff"
    assert request["remap"] == ["person=bear"] and request["seg_options"] == {} and request["synth_options"] == {}


def test_save_labels_always_names_a_folder(tmp_path: Path) -> None:
    person_frames(tmp_path / "in")
    from chain.api import run

    run(tmp_path / "in", seg="palette:voc", synth="none", save_labels=tmp_path / "lab-ema0.5")
    assert sorted(path.name for path in (tmp_path / "lab-ema0.5").glob("*.png")) == ["000000.png", "000001.png"]


def test_a_trailing_slash_names_a_folder_whatever_its_suffix(tmp_path: Path) -> None:
    person_frames(tmp_path / "in")
    from chain.api import run

    with pytest.raises(ChainError, match=r"unknown extension '\.v2'.*end the name with /"):
        run(tmp_path / "in", str(tmp_path / "out.v2"), seg="palette:voc")
    run(tmp_path / "in", f"{tmp_path / 'out.v2'}/", seg="palette:voc", masks=f"{tmp_path / 'masks.d'}/")
    for folder in ("out.v2", "masks.d"):
        assert sorted(path.name for path in (tmp_path / folder).glob("*.png")) == ["000000.png", "000001.png"]


def test_import_tflite_suggests_seg_weights_only_away_from_the_default_place(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    tflite = shared_file("weights/deeplabv3_mnv2_voc_257.tflite")
    monkeypatch.setenv("CHAIN_WEIGHTS", str(tmp_path))
    from chain.entry import main

    main(["import", "tflite", str(tflite), "--labels", "voc", "--out", str(tmp_path / "deeplab-mnv2-voc")])
    assert "(use --seg deeplab-mnv2:voc)" in capsys.readouterr().err
    main(["import", "tflite", str(tflite), "--labels", "voc", "--out", str(tmp_path / "mine")])
    assert f"(use --seg deeplab-mnv2:voc --seg-weights {tmp_path / 'mine'})" in capsys.readouterr().err
