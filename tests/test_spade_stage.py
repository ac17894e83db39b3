"""The ``spade`` synthesizer in the chain, with NVIDIA-format ngf=8 weights from the shared fixtures."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import chain
from chain.errors import ChainError, MissingWeightsError
from chain.labels import COCO_STUFF, VOC
from chain.stages import StageContext, build_stage
from tests.conftest import shared_file


@pytest.fixture
def coco_ngf8() -> Path:
    return shared_file("fixtures/spade_reference/coco_ngf8_G.pth")


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


@pytest.mark.slow
def test_spade_run_keeps_frame_count_and_is_deterministic(carphone: Path, coco_ngf8: Path, tmp_path: Path) -> None:
    options = dict(seg="palette:voc", synth="spade", synth_weights=str(coco_ngf8), synth_options={"size": "64"},
                   batch_size=8)
    summary = chain.run(carphone, tmp_path / "out.mp4", **options)
    assert summary.frames == 120 and summary.target_space == "coco-stuff"
    frames = decoded(tmp_path / "out.mp4")
    assert len(frames) == 120 and frames[0].shape == (144, 176, 3)
    # Bitwise determinism is checked on lossless PNG frames: libx264's bitstream itself was seen
    # to vary slightly between encodes of identical frames once torch had run in the process.
    for name in ("a", "b"):
        chain.run(carphone, tmp_path / name, max_frames=24, **options)
    for index in range(24):
        first = np.asarray(Image.open(tmp_path / "a" / f"{index:06d}.png"))
        assert np.array_equal(first, np.asarray(Image.open(tmp_path / "b" / f"{index:06d}.png")))


@pytest.mark.slow
def test_spade_native_fit_keeps_aspect_and_squash_uses_the_crop(coco_ngf8: Path) -> None:
    native = build_stage("synthesizer", "spade", StageContext(weights=str(coco_ngf8)))
    squash = build_stage("synthesizer", "spade", StageContext(weights=str(coco_ngf8), options={"fit": "squash"}))
    assert native.generation_size(144, 256) == ((8, 14), (256, 448))
    assert squash.generation_size(144, 256) == ((8, 8), (256, 256))
    labels = np.full((2, 36, 64), COCO_STUFF.id_of("grass"), dtype=np.uint8)
    labels[:, 10:30, 20:40] = COCO_STUFF.id_of("person")
    assert native.synthesize(labels=labels, frames=None).shape == (2, 256, 448, 3)
    assert squash.synthesize(labels=labels, frames=None).shape == (2, 256, 256, 3)


def test_background_and_remap_reach_the_generator(coco_ngf8: Path) -> None:
    pipeline = chain.build_chain(seg="palette:voc", synth="spade", synth_weights=str(coco_ngf8),
                                 remap=["person=bear"])
    voc = np.array([[VOC.id_of("background"), VOC.id_of("person"), VOC.id_of("aeroplane")]], dtype=np.uint8)
    assert [COCO_STUFF.names[i] for i in pipeline.target_labels(voc)[0]] == ["grass", "bear", "airplane"]
    sand = chain.build_chain(seg="palette:voc", synth="spade", synth_weights=str(coco_ngf8), background="sand")
    assert COCO_STUFF.names[sand.target_labels(voc)[0, 0]] == "sand"
    with pytest.raises(ChainError, match="grasss"):
        chain.build_chain(seg="palette:voc", synth="spade", synth_weights=str(coco_ngf8), background="grasss")


def test_cityscapes_weights_take_cityscapes_labels(tmp_path: Path) -> None:
    weights = shared_file("fixtures/spade_reference/cityscapes_ngf8_G.pth")
    synthesizer = build_stage("synthesizer", "spade:cityscapes", StageContext(weights=str(weights)))
    assert synthesizer.label_space.name == "cityscapes"
    labels = np.asarray(Image.open(shared_file("fixtures/spade_reference/cityscapes_label.png")))[None]
    assert synthesizer.synthesize(labels=labels, frames=None).shape == (1, 256, 512, 3)


def test_wrong_variant_for_weights_and_missing_weights(coco_ngf8: Path, monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    with pytest.raises(ChainError):
        build_stage("synthesizer", "spade:cityscapes", StageContext(weights=str(coco_ngf8)))
    monkeypatch.setenv("CHAIN_WEIGHTS", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="coco_pretrained") as caught:
        build_stage("synthesizer", "spade", StageContext())
    assert "github.com/NVlabs/SPADE" in str(caught.value) and str(tmp_path) in str(caught.value)


def test_a_tiny_fixture_checkpoint_gives_one_warning_line(coco_ngf8: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from chain.entry import main

    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(tmp_path / "in.png")
    main(["run", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--seg", "palette:voc", "--synth", "spade",
          "--synth-weights", str(coco_ngf8), "--synth-opt", "size=16", "-q"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("warning: SPADE weights ") and str(coco_ngf8) in lines[0]
    assert "(ngf 8, 1/8 of the reference width)" in lines[0]
    assert (tmp_path / "out.png").is_file()  # a warning, not a refusal


def test_a_briefly_trained_checkpoint_says_how_many_steps(tmp_path: Path) -> None:
    from chain.errors import ChainWarning
    from chain.stages.spade import spade_caveat
    from chain.weights.spade import save_spade
    from models.spade import SPADEConfig, SPADEGenerator

    generator = SPADEGenerator(SPADEConfig(label_nc=11, ngf=16, crop_size=64, contain_dontcare_label=True))
    save_spade(generator, tmp_path / "run", meta={"label_space": "camvid", "step": 12, "total_steps": 40})
    with pytest.warns(ChainWarning, match=r"weights .*run: .*\(trained 12 steps, ngf 16, 1/4 of the reference width\)"):
        build_stage("synthesizer", "spade", StageContext(weights=str(tmp_path / "run")))
    # What a real run records says nothing of the kind: NVIDIA's files (no steps), long training.
    assert spade_caveat(64, {}) is None and spade_caveat(64, {"step": 4600}) is None
    assert spade_caveat(64, {"step": 1}) == "trained 1 step" and spade_caveat(48, {}) == "ngf 48, 0.75 of the reference width"
