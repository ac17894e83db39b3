"""A training option is declared once (issue 28): a field added here, in a test module, with its
declaration (`chain.training.flags`) is a ``chain train vaegan`` option, shown with its default
in ``--help``, checked by its parser, and saved with the checkpoint's training options."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import chain.cli
import chain.training.flags
import chain.training.vaegan
from chain.bounds import Bound
from chain.training.flags import SPADE_FLAGS, VAEGAN_FLAGS, VAEGAN_SIZE, declared, flag
from chain.training.spade import SpadeTrainOptions
from chain.training.vaegan import VAEGANTrainer, VAEGANTrainOptions
from chain.weights.locations import CHECKPOINT_DIR, CONFIG_FILE
from tests.test_cli import chain_cli
from tests.test_vaegan import CARPHONE

GRAINY_FLAGS = {**VAEGAN_FLAGS, "grain": flag("Film grain over the training frames \\[default: {default}].",
                                             float | None, 0.25, parser=Bound("--grain", 0, 1, float),
                                             metavar="AMOUNT")}


@dataclasses.dataclass(kw_only=True)
class GrainyOptions(VAEGANTrainOptions):
    """The VAE-GAN's training options with one more, declared the one way training options are."""

    grain: float = declared(GRAINY_FLAGS, "grain")  # this test's: nothing uses it but the checkpoint


@pytest.fixture
def grain_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """The trainer's options with ``grain``, where the CLI, the wrapper and the loop look for them."""
    monkeypatch.setattr(chain.training.flags, "VAEGAN_FLAGS", GRAINY_FLAGS)
    monkeypatch.setattr(chain.training.vaegan, "VAEGANTrainOptions", GrainyOptions)
    monkeypatch.setattr(VAEGANTrainer, "OPTIONS", GrainyOptions)
    monkeypatch.setattr(chain.cli.train_vaegan, "__signature__", chain.cli.train_vaegan.__signature__)
    monkeypatch.setattr(chain.cli.train_vaegan, "__annotations__", chain.cli.train_vaegan.__annotations__)
    monkeypatch.setattr(chain.cli.train_spade, "__signature__", chain.cli.train_spade.__signature__)
    monkeypatch.setattr(chain.cli.train_spade, "__annotations__", chain.cli.train_spade.__annotations__)
    chain.cli.declare_training_options()


def test_a_declared_field_is_a_chain_train_option_and_saved(grain_option: None, tmp_path: Path) -> None:
    help_text = chain_cli("train", "vaegan", "--help").stdout
    assert "--grain" in help_text and "AMOUNT" in help_text
    assert "Film grain over the training frames [default: 0.25]." in help_text
    refused = chain_cli("train", "vaegan", str(tmp_path), "--out", str(tmp_path / "run"), "--grain", "2")
    assert refused.returncode == 2 and "--grain 2 is out of range" in refused.stderr
    if not CARPHONE.is_file():
        pytest.skip(f"{CARPHONE} not found (set CHAIN_SHARED)")
    out = tmp_path / "run"
    done = chain_cli("train", "vaegan", str(CARPHONE), "--out", str(out), "--grain", "0.5", "--size", "48x32",
                     "--latent", "16", "--filters", "8,16,32,64", "--batch", "4", "--epochs", "1", "--max-frames",
                     "8", "--max-steps", "1", "--device", "cpu", "--quiet")
    assert done.returncode == 0, done.stderr
    saved = json.loads((out / CHECKPOINT_DIR / CONFIG_FILE).read_text())["meta"]["train"]
    assert saved["grain"] == 0.5 and saved["model"]["latent_dim"] == 16



def test_declared_defaults_are_the_options_and_the_model_configs() -> None:
    """A flag's declared default is its options field's; for a network's field (which ``--help`` reads
    without torch) the model config's."""
    for options_class, table in ((VAEGANTrainOptions(film="x"), VAEGAN_FLAGS),
                                 (SpadeTrainOptions(data="x"), SPADE_FLAGS)):
        fields = {item.name: item for item in dataclasses.fields(options_class)}
        for name, declaration in table.items():
            if declaration.path is None:
                assert fields[name].default == declaration.default, name
            else:
                outer, _, inner = declaration.path.partition(".")
                assert getattr(fields[outer].default_factory(), inner) == declaration.default, name
    model = dataclasses.fields(VAEGANTrainOptions(film="x"))
    config = next(item for item in model if item.name == "model").default_factory()
    assert VAEGAN_SIZE == f"{config.width}x{config.height}"


def test_a_flag_no_options_class_declares_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="unknown training option 'grain'"):
        chain.training.vaegan.train_vaegan(tmp_path / "film.mp4", tmp_path / "run", {"grain": 0.5})
