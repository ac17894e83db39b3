"""``--compile``: the stages' networks through torch.compile, a warm-up on the first batch reported
apart as "compile", and the same frames as without it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from chain.bounds import parse_smoothing
from chain.engine.pipeline import Chain
from chain.errors import ChainError
from chain.labels import LabelSpace, get_label_space
from chain.media.outputs import Outputs
from chain.stages.lookup import ColorizeSynthesizer, PaletteSegmenter
from chain.stages.smoothing import SmoothedSegmenter
from chain.stages.spade import SpadeSynthesizer
from chain.stages.torch_segmenter import TorchSegmenter
from chain.stages.vaegan import VAEGANSynthesizer
from models.vaegan import VAEGAN, VAEGANConfig
from tests.test_spade import tiny_generator

VOC = get_label_space("voc")
# A 6-id space for the tiny SPADE generator (label_nc 5 + dontcare).
SIX = LabelSpace(name="six", names=VOC.names[:6], palette=VOC.palette[:6], fallback=VOC.names[0])


def random_frames(folder: Path, count: int = 4) -> Path:
    rng = np.random.default_rng(3)
    folder.mkdir()
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(folder / f"{index:03d}.png")
    return folder


def tiny_segmenter(space: LabelSpace) -> TorchSegmenter:
    torch.manual_seed(0)
    network = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, len(space), 1))
    return TorchSegmenter(network, label_space=space, mean=[0.5] * 3, std=[0.25] * 3, input_size=16)


def tiny_chain(smooth: str | None = None) -> Chain:
    segmenter = tiny_segmenter(SIX)
    if smooth:
        segmenter = SmoothedSegmenter(segmenter, parse_smoothing(smooth))
    return Chain(segmenter=segmenter, synthesizer=SpadeSynthesizer(tiny_generator(), label_space=SIX))


def read_folder(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(path)) for path in sorted(folder.glob("*.png"))]


def test_compile_refuses_a_chain_without_torch_networks() -> None:
    pipeline = Chain(segmenter=PaletteSegmenter(VOC), synthesizer=ColorizeSynthesizer(VOC))
    with pytest.raises(ChainError, match="--compile: none of these stages can be compiled"):
        pipeline.compile()


def test_compile_refusal_names_what_it_compiles_and_calls_no_torch_stage_networkless() -> None:
    # The VAE-GAN runs a torch network that --compile does not take: the refusal must not deny it one.
    model = VAEGAN(VAEGANConfig(height=16, width=16, latent_dim=4, filters=(4, 8), similarity_layers=(0,)))
    pipeline = Chain(segmenter=None, synthesizer=VAEGANSynthesizer(model, description="VAE-GAN"))
    with pytest.raises(ChainError) as refused:
        pipeline.compile()
    message = str(refused.value)
    assert message.startswith("--compile: none of these stages can be compiled (VAE-GAN)")
    assert "torch network" not in message and "deeplab-mnv2" in message and "spade" in message


def test_warm_up_is_timed_apart_and_leaves_the_frames_as_they_were(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # torch.compile replaced by a counter: the chain's side (which networks, warm-up, reset) is
    # what is tested here; the slow test below compiles for real.
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda module: compiled.append(module) or module)
    source = random_frames(tmp_path / "in")
    for smooth in (None, "ema:0.6"):  # smoothing state from the warm-up must not leak into frame 0
        plain, fast = tiny_chain(smooth), tiny_chain(smooth)
        compiled.clear()
        fast.compile()
        fast.compile()  # once only
        assert len(compiled) == 2 and isinstance(compiled[0], nn.Sequential)  # segmenter net, generator
        assert compiled[1] is fast.synthesizer.generator
        name = "ema" if smooth else "none"
        expected = plain(source, Outputs(video=tmp_path / f"plain-{name}", labels=tmp_path / f"plain-labels-{name}"),
                         batch_size=2)
        summary = fast(source, Outputs(video=tmp_path / f"fast-{name}", labels=tmp_path / f"fast-labels-{name}",
                                       summary=tmp_path / f"{name}.json"), batch_size=2)
        assert "compile" in summary.stage_seconds and "compile" not in expected.stage_seconds
        report = json.loads((tmp_path / f"{name}.json").read_text())["run"]
        assert "compile" in report["stage_seconds"] and "compile" not in report["stage_ms_per_frame"]
        assert summary.frames == expected.frames == 4
        for kind in ("", "labels-"):
            ours, theirs = read_folder(tmp_path / f"fast-{kind}{name}"), read_folder(tmp_path / f"plain-{kind}{name}")
            assert len(ours) == len(theirs) == 4 and all(np.array_equal(a, b) for a, b in zip(ours, theirs))
        # A second run of the same chain needs no warm-up.
        again = fast(source, Outputs(video=tmp_path / f"again-{name}"), batch_size=2)
        assert "compile" not in again.stage_seconds


@pytest.mark.slow
def test_compiled_networks_paint_the_same_frames(tmp_path: Path) -> None:
    source = random_frames(tmp_path / "in", count=3)
    plain, fast = tiny_chain(), tiny_chain()
    fast.compile()
    plain(source, Outputs(video=tmp_path / "plain", labels=tmp_path / "plain-labels"), batch_size=3)
    summary = fast(source, Outputs(video=tmp_path / "fast", labels=tmp_path / "fast-labels"), batch_size=3)
    assert summary.stage_seconds["compile"] > 0
    assert type(fast.synthesizer.network).__name__ == "OptimizedModule"
    for ours, theirs in zip(read_folder(tmp_path / "fast-labels"), read_folder(tmp_path / "plain-labels")):
        assert np.array_equal(ours, theirs)
    for ours, theirs in zip(read_folder(tmp_path / "fast"), read_folder(tmp_path / "plain"), strict=True):
        # Inductor fuses and reorders float ops: a pixel may round to the next level.
        assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1


def test_cli_compile_reaches_the_networks_and_reports_the_warm_up(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_cli import chain_cli

    compiled = []
    monkeypatch.setattr(torch, "compile", lambda module: compiled.append(type(module).__name__) or module)
    Image.new("RGB", (32, 24), (200, 30, 30)).save(tmp_path / "in.png")
    result = chain_cli("run", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--seg",
                       "deeplab:mobilenet_v3_large", "--seg-weights", "random", "--seg-opt", "size=64",
                       "--synth", "colorize", "--device", "cpu", "--compile", "--summary", str(tmp_path / "run.json"))
    assert result.returncode == 0, result.stderr
    assert compiled == ["DeepLabV3"]  # the segmenter's network; colorize has none
    assert "compile (warm-up on the first batch)" in result.stderr
    assert json.loads((tmp_path / "run.json").read_text())["run"]["request"]["compile"] is True
    # Nothing to compile: one line, exit 2.
    refused = chain_cli("run", str(tmp_path / "in.png"), str(tmp_path / "o2.png"), "--seg", "palette:voc",
                        "--compile")
    assert refused.returncode == 2 and "--compile: none of these stages can be compiled" in refused.stderr
    assert not (tmp_path / "o2.png").exists()


def test_warm_up_also_compiles_a_smaller_last_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "compile", lambda module: module)
    source = random_frames(tmp_path / "in", count=5)
    pipeline = tiny_chain()
    sizes = []
    segment_sizes = pipeline.segmenter.segment_sizes
    monkeypatch.setattr(pipeline.segmenter, "segment_sizes", lambda frames, *, indices, **kw:
                        sizes.append(len(frames)) or segment_sizes(frames, indices=indices, **kw))
    pipeline.compile()
    pipeline(source, Outputs(video=tmp_path / "out"), batch_size=2)
    assert sizes == [2, 1, 2, 2, 1]  # warm-up: the first batch and the last one's shape; then the run
    sizes.clear()
    pipeline(source, Outputs(video=tmp_path / "again"), batch_size=2)
    assert sizes == [2, 2, 1]
