"""A run option is declared once, on its configuration field (issue 28): a field added here, in a
test module, is a `chain run` option, a `chain.run` keyword, one of the web page's options and a
key of run.json's ``request``, with nothing else written for it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import chain.cli
import chain.config
import chain.ui.settings
from chain.bounds import Bound
from chain.config import ChainConfig, RunConfig
from chain.labels import VOC
from chain.options import option
from tests.test_cli import chain_cli


@dataclasses.dataclass(frozen=True)
class GrainyChainConfig(ChainConfig):
    """The chain's configuration with one more option, declared the one way options are."""

    #: Film grain over the paintings (this test's: nothing uses it but the record of the run).
    grain: float | None = option("Film grain over the paintings, from 0 (none) to 1.", float | None, default=None,
                                 parser=Bound("--grain", 0, 1, float), metavar="AMOUNT")


@pytest.fixture
def grain_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """The configuration with ``grain``, where the CLI and `RunConfig.of` look for the chain's fields."""
    monkeypatch.setattr(chain.config, "ChainConfig", GrainyChainConfig)
    monkeypatch.setattr(chain.cli, "ChainConfig", GrainyChainConfig)
    monkeypatch.setattr(chain.ui.settings, "ChainConfig", GrainyChainConfig)
    monkeypatch.setattr(chain.cli.run, "__signature__", chain.cli.run.__signature__)
    monkeypatch.setattr(chain.cli.run, "__annotations__", chain.cli.run.__annotations__)
    chain.cli.declare_run_options()


def voc_frames(folder: Path, count: int = 2) -> Path:
    labels = np.zeros((16, 24), dtype=VOC.dtype)
    labels[:, :12] = VOC.id_of("person")
    folder.mkdir()
    for index in range(count):
        Image.fromarray(VOC.colorize(labels)).save(folder / f"{index:03d}.png")
    return folder


def test_a_declared_field_is_a_chain_run_option_a_keyword_and_recorded(grain_option: None, tmp_path: Path) -> None:
    help_text = chain_cli("run", "--help").stdout
    assert "--grain" in help_text and "AMOUNT" in help_text and "Film grain over the paintings" in help_text
    # The declared parser gives the command line's one-line refusal.
    refused = chain_cli("run", str(tmp_path), "out.mp4", "--grain", "2")
    assert refused.returncode == 2 and "--grain 2 is out of range" in refused.stderr
    # chain.run's flat keywords take it by name, into the chain's configuration.
    assert RunConfig.of("in.mp4", "out.mp4", grain=0.25).chain.grain == 0.25
    # A run records it in run.json's request.
    frames = voc_frames(tmp_path / "frames")
    result = chain_cli("run", str(frames), str(tmp_path / "out.mp4"), "--seg", "palette:voc", "--synth", "colorize",
                       "--grain", "0.5", "--summary", str(tmp_path / "run.json"), "--quiet")
    assert result.returncode == 0, result.stderr
    request = json.loads((tmp_path / "run.json").read_text())["run"]["request"]
    assert request["grain"] == 0.5


def test_a_declared_field_is_one_of_the_web_page_s_options(grain_option: None, tmp_path: Path) -> None:
    from chain.ui.settings import Settings, output_paths, page_options

    assert [declared.keyword for declared in page_options()] == ["grain"]
    settings = Settings(source="clip.mp4", seg="palette:voc", more=(("grain", "0.5"),))
    assert settings.run_config(output_paths("clip.mp4", tmp_path)).chain.grain == 0.5
    assert "--grain 0.5" in settings.command_line(output_paths("clip.mp4", tmp_path))
    pytest.importorskip("gradio")
    from chain.ui.page import build_page

    labels = [getattr(block, "label", None) for block in build_page(tmp_path).blocks.values()]
    assert "Film grain over the paintings, from 0 (none) to 1." in labels


def test_without_the_field_there_is_no_such_option() -> None:
    from chain.ui.settings import page_options

    assert "--grain" not in chain_cli("run", "--help").stdout
    assert page_options() == []  # every option the page offers today has a control of the page's own
