"""`RunConfig` / `ChainConfig`: one run configuration, built once and passed whole (issue 13, item 4)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import chain
from chain.api import build_chain
from chain.cli import run as cli_run
from chain.cli import run_config
from chain.config import DEFAULT_SYNTHESIZER, ChainConfig, Options, RunConfig
from chain.errors import ChainError
from chain.labels import VOC
from chain.media import Trim
from chain.media.outputs import Outputs

#: Fields the command line does not offer: the Python API's own.
PYTHON_ONLY = {"class_overrides", "command"}


def person_frames(folder: Path, count: int = 3) -> Path:
    """VOC-coloured frames: a person on the left, a car on the right."""
    labels = np.zeros((24, 32), dtype=VOC.dtype)
    labels[:, :16], labels[:, 16:] = VOC.id_of("person"), VOC.id_of("car")
    folder.mkdir()
    for index in range(count):
        Image.fromarray(VOC.colorize(labels)).save(folder / f"{index:03d}.png")
    return folder


def test_of_sorts_flat_keywords_into_the_nested_configuration(tmp_path: Path) -> None:
    config = RunConfig.of("in.mp4", "out/", seg="palette:voc", seg_options={"size": 96}, remap="person=bear,car=boat",
                          masks="m.mp4", save_labels=tmp_path / "labels", start=1.5, max_frames=4, batch_size=2,
                          preset="fast", cluster="ray", shards=2)
    assert config == RunConfig(
        source=Path("in.mp4"),
        outputs=Outputs(video=Path("out"), masks=Path("m.mp4"), labels=tmp_path / "labels", folders=frozenset({"video"})),
        chain=ChainConfig(seg="palette:voc", seg_options=Options(["size=96"]), remap=("person=bear,car=boat",)),
        trim=Trim(start=1.5, max_frames=4), batch_size=2, preset="fast", cluster="ray", shards=2)
    assert config.outputs.kind("video") == "folder"  # the trailing slash survived
    assert config.chain.seg_options == {"size": "96"} and config.chain.synth == DEFAULT_SYNTHESIZER == "colorize:coco-stuff"


def test_a_config_is_immutable_hashable_and_pickles_for_ray() -> None:
    config = RunConfig.of("in.mp4", "out.mp4", seg_options=["size=129", "fit=aspect"], synth_options={"seed": 7},
                          class_overrides={"cow": "sheep"}, remap=["person=bear"], command=["chain", "run"])
    again = pickle.loads(pickle.dumps(config))
    assert again == config and hash(again) == hash(config)
    assert dict(again.chain.synth_options) == {"seed": "7"} and again.chain.command == ("chain", "run")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.batch_size = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.chain.seg_options["size"] = "64"  # type: ignore[index]
    # What the cluster ships to every worker: build_chain and the chain's part of the config.
    factory = pickle.loads(pickle.dumps(functools.partial(build_chain, config.chain)))
    assert factory.args == (config.chain,)


def test_mistakes_are_refused_where_the_config_is_built() -> None:
    with pytest.raises(TypeError, match="unknown run option.*batch"):
        RunConfig.of("in.mp4", "out.mp4", batch=2)
    with pytest.raises(ChainError, match="--shards and --shard-seconds split a run over a cluster"):
        RunConfig.of("in.mp4", "out.mp4", shards=2)
    with pytest.raises(ChainError, match="stage option 'size' is not KEY=VALUE"):
        ChainConfig(seg_options=["size"])
    with pytest.raises(TypeError, match="either trim or start"):
        RunConfig.of("in.mp4", "out.mp4", trim=Trim(max_frames=1), max_frames=2)
    with pytest.raises(TypeError, match="masks"):
        RunConfig.of("in.mp4", Outputs(video=Path("out.mp4")), masks="m.mp4")


def test_every_option_is_a_field_and_every_field_a_chain_run_option() -> None:
    """The CLI's parameters are named as the configuration's fields: a new field without its
    option (or an option the configuration would refuse) fails here."""
    cli = set(inspect.signature(cli_run).parameters) - {"ctx", "quiet", "latent_noise"}
    run_fields = {f.name for f in dataclasses.fields(RunConfig)} - {"outputs", "chain", "trim"}
    chain_fields = {f.name for f in dataclasses.fields(ChainConfig)} - PYTHON_ONLY
    flat = run_fields | chain_fields | {"output", "masks", "overlay", "compare", "save_labels", "summary", "start",
                                        "duration", "max_frames"}
    assert cli == flat


def test_the_cli_latent_noise_is_a_synthesizer_option() -> None:
    config = run_config({"source": Path("in.mp4"), "output": "o.mp4", "synth_options": ["latent_noise=9", "a=b"],
                         "latent_noise": 0.5, "quiet": True}, command=["chain", "run"])
    assert config.chain.synth_options == {"latent_noise": "0.5", "a": "b"} and config.chain.command == ("chain", "run")


def test_run_takes_a_config_or_keywords_alike(tmp_path: Path) -> None:
    frames = person_frames(tmp_path / "in")
    config = RunConfig.of(frames, tmp_path / "a", seg="palette:voc", synth="colorize:coco-stuff",
                          remap=["person=bear"], summary=tmp_path / "a.json", max_frames=2, batch_size=2)
    chain.run(config)
    chain.run(frames, tmp_path / "b", seg="palette:voc", synth="colorize:coco-stuff", remap=["person=bear"],
              summary=tmp_path / "b.json", max_frames=2, batch_size=2)
    names = sorted(p.name for p in (tmp_path / "a").glob("*.png"))
    assert names == ["000000.png", "000001.png"] == sorted(p.name for p in (tmp_path / "b").glob("*.png"))
    for name in names:
        assert np.array_equal(np.asarray(Image.open(tmp_path / "a" / name)), np.asarray(Image.open(tmp_path / "b" / name)))
    first, second = (json.loads((tmp_path / f"{n}.json").read_text())["run"]["request"] for n in "ab")
    assert first == second and first["remap"] == ["person=bear"] and first["seg_options"] == {}
    # Every field of the chain's configuration is recorded (a new one too), with the input and version.
    assert set(first) == {f.name for f in dataclasses.fields(ChainConfig)} | {"input", "chain_version"}
    with pytest.raises(TypeError, match="takes the whole run from its RunConfig"):
        chain.run(config, max_frames=1)


def test_a_built_chain_refuses_stage_keywords_and_runs_a_config(tmp_path: Path) -> None:
    frames = person_frames(tmp_path / "in")
    pipeline = build_chain(ChainConfig(seg="palette:voc", synth="colorize:coco-stuff"), remap=["person=bear"])
    assert pipeline.request["remap"] == ["person=bear"] and pipeline.request["seg"] == "palette:voc"
    with pytest.raises(TypeError, match="seg: the chain is built already"):
        pipeline(frames, Outputs(video=tmp_path / "out"), seg="palette:voc")
    summary = pipeline(RunConfig(frames, Outputs(video=tmp_path / "out"), trim=Trim(max_frames=1)))
    assert summary.frames == 1 and summary.remapped == ["person → bear"]


def test_the_texts_are_parsed_once_as_the_config_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 28: ``seg``, ``synth``, ``smooth`` and ``remap`` become typed values when the configuration
    is built; the text stays as asked (the summary's request records it)."""
    from chain.bounds import Smoothing
    from chain.config import StageName

    config = ChainConfig(seg=" Deeplab:resnet101 ", synth="none", smooth="flow", remap=["person=bear,car=boat"])
    assert config.segmenter == StageName("deeplab", "resnet101") and config.synthesizer is None
    assert config.smoothing == Smoothing("flow", 0.85)
    assert config.remap_rules == (("person", "bear"), ("car", "boat"))
    assert config.as_dict()["remap"] == ["person=bear,car=boat"] and config.as_dict()["smooth"] == "flow"
    assert pickle.loads(pickle.dumps(config)).remap_rules == config.remap_rules  # Ray ships it parsed
    assert dataclasses.replace(config, smooth=None).smoothing is None
    with pytest.raises(ChainError, match="--smooth 'ema:2'"):
        ChainConfig(smooth="ema:2")
    with pytest.raises(ChainError, match="bad remap rule"):
        RunConfig.of("in.mp4", "out.mp4", remap=["person"])
    # Nothing downstream parses the text again: the chain is given the parsed rules.
    import chain.labels.remap

    small = dataclasses.replace(config, seg="palette:voc", synth="colorize:voc", smooth=None, remap=("person=cat",))

    def parsed_again(*args: object) -> None:
        raise AssertionError("--remap parsed again")

    monkeypatch.setattr(chain.labels.remap, "parse_remap", parsed_again)
    built = build_chain(small)
    assert built.request["remap"] == ["person=cat"] and built.remap_lut is not None
