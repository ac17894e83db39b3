"""The training loop behind both generators: a toy `Trainer`, options that nest a model config, sample grids."""

from __future__ import annotations

import json
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from chain.errors import ChainError
from chain.training.common import (
    TrainingDisplay,
    TrainingInterrupted,
    read_loss_log,
    write_image_grid,
)
from chain.training.loop import RunSettings, Saved, train
from chain.training.options import (
    build_options,
    flag_values,
    options_from_flags,
    resumed_options,
)
from chain.training.vaegan import VAEGANTrainOptions
from models.vaegan import VAEGANConfig


@dataclass
class ToyConfig:
    width: int = 4


@dataclass(kw_only=True)
class ToyOptions:
    source: str
    model: ToyConfig = field(default_factory=ToyConfig)
    batch: int = 2
    epochs: int = 3
    lr: float = 0.05
    seed: int = 0

    FLAGS = {"width": "model.width"}
    RESUMABLE_CHANGES = ("epochs",)


class ToyTrainer:
    """A linear regression with input noise: as small as a `Trainer` can be, with a noise stream to resume."""

    OPTIONS = ToyOptions
    INPUT = "source"
    MODEL_KIND = "toy"
    TITLE = "Toy"
    PLOTTED = ("loss",)
    RESUME = "toy {input} --out {out} --resume"

    def __init__(self, options: ToyOptions, device: torch.device) -> None:
        self.options, self.noise = options, None

    def check_resumable(self, checkpoint: Any, path: Path) -> None:
        if checkpoint.state_dict["weight"].shape != (1, self.options.model.width):
            raise ChainError(f"{path}: weights do not fit")

    def check_inputs(self) -> None:
        pass

    def prepare(self, out_dir: Path, display: TrainingDisplay) -> int:
        data = torch.Generator().manual_seed(99)
        self.x = torch.randn(8, self.options.model.width, generator=data)
        self.y = self.x.sum(1, keepdim=True) * 2
        return len(self.x)

    def build(self) -> dict[str, torch.optim.Optimizer]:
        torch.manual_seed(self.options.seed)
        self.net = torch.nn.Linear(self.options.model.width, 1)
        self.noise = torch.Generator().manual_seed(self.options.seed)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=self.options.lr)
        return {"net": self.optimizer}

    def restore(self, checkpoint: Any, path: Path) -> None:
        self.net.load_state_dict(checkpoint.state_dict)

    def train_step(self, indices: Any, step: int, precision: Any) -> dict[str, float]:
        x = self.x[indices] + 0.1 * torch.randn(self.x[indices].shape, generator=self.noise)
        loss = torch.nn.functional.mse_loss(self.net(x), self.y[indices])
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.detach())}

    def saved(self) -> Saved:
        return Saved(config=self.options.model, state_dict=self.net.state_dict(), meta={"items": len(self.x)})

    def sample_grid(self) -> tuple[torch.Tensor, int]:
        return torch.full((3, 3, 4, 4), 0.5), 3

    def describe(self, record: dict[str, Any]) -> str:
        return f"loss {record['loss']:.3f}"


def run(out: Path, **settings: Any) -> Path:
    flags = {"source": "data.bin", "width": None, "epochs": settings.pop("epochs", None)}
    return train(ToyTrainer, out, flags, RunSettings(device="cpu", progress=False, **settings))


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {**load_file(str(checkpoint / "model.safetensors")), **load_file(str(checkpoint / "optimizer.safetensors"))}


def test_loop_saves_samples_and_resumes_bit_exact(tmp_path: Path) -> None:
    straight = run(tmp_path / "straight")
    document = json.loads((straight / "config.json").read_text())
    meta = document["meta"]
    assert document["model"] == "toy" and document["config"] == {"width": 4}
    assert (meta["step"], meta["steps_per_epoch"], meta["complete"], meta["items"]) == (12, 4, True, 8)
    assert meta["train"] == {"source": "data.bin", "model": {"width": 4}, "batch": 2, "epochs": 3, "lr": 0.05,
                             "seed": 0}
    losses = [r["loss"] for r in read_loss_log(tmp_path / "straight")]
    assert len(losses) == 12
    samples = tmp_path / "straight" / "samples"
    assert sorted(p.name for p in samples.iterdir()) == ["epoch_001.png", "epoch_002.png", "epoch_003.png"]

    stopped = tmp_path / "stopped"
    run(stopped, max_steps=5)  # mid-epoch: the sampler, the noise stream and Adam all resume
    run(stopped, resume=True)
    a, b = weights(straight), weights(stopped / "checkpoint")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["loss"] for r in read_loss_log(stopped)] == losses


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is delivered differently on Windows")
def test_loop_stops_on_ctrl_c_with_a_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"

    def press_ctrl_c(step: int, record: dict[str, float]) -> None:
        if step == 3:
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(TrainingInterrupted, match=rf"interrupted at step 3 of 12; .* toy data\.bin --out {re.escape(str(out))} --resume"):
        run(out, on_step=press_ctrl_c)
    assert json.loads((out / "checkpoint" / "config.json").read_text())["meta"]["step"] == 3
    with pytest.raises(ChainError, match="--checkpoint-every must be >= 1"):
        run(tmp_path / "other", checkpoint_every=0)


def test_options_nest_the_model_config_and_map_flags() -> None:
    options = build_options(ToyOptions, {"source": "a", "width": 7})
    assert options.model == ToyConfig(width=7) and flag_values(options)["width"] == 7
    saved = {"source": "a", "model": {"width": 7}, "batch": 2, "epochs": 3, "lr": 0.05, "seed": 0}
    assert build_options(ToyOptions, saved) == options
    # Checkpoints written before the configs were nested saved one flat dict of flags.
    assert build_options(ToyOptions, {"source": "a", "width": 7, "epochs": 3}) == options
    with pytest.raises(TypeError, match="'hue'"):
        build_options(ToyOptions, {"source": "a", "hue": 1})

    with pytest.raises(ChainError, match=r"these differ: --width 5 \(the run has 7\)"):
        resumed_options(ToyOptions, saved, {"width": 5, "epochs": 9}, input_field="source")
    assert resumed_options(ToyOptions, saved, {"epochs": 9, "width": None}, input_field="source").epochs == 9
    with pytest.raises(ChainError, match="training options are damaged"):
        resumed_options(ToyOptions, {**saved, "model": {"height": 3}}, {}, input_field="source")

    # The VAE-GAN's network defaults are VAEGANConfig's own, not copies; --size sets its frame size.
    vaegan = options_from_flags(VAEGANTrainOptions, {"film": "f.mp4", "latent": None}, what="VAE-GAN")
    assert vaegan.model == VAEGANConfig() and vaegan.size == "256x144"
    small = options_from_flags(VAEGANTrainOptions, {"film": "f.mp4", "size": "48x32", "latent": 8}, what="VAE-GAN")
    assert (small.model.width, small.model.height, small.model.latent_dim) == (48, 32, 8)
    with pytest.raises(ChainError, match="bad VAE-GAN options: .*too small"):
        options_from_flags(VAEGANTrainOptions, {"film": "f.mp4", "size": "8x8"}, what="VAE-GAN")


def test_sample_grids_are_written_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "samples" / "epoch_001.png"
    write_image_grid(torch.rand(6, 3, 8, 10), path, 3)
    with Image.open(path) as image:
        assert image.size == (3 * 10 + 4 * 2, 2 * 8 + 3 * 2)  # torchvision's 2-pixel padding
    before = path.read_bytes()

    def fail_half_way(images: torch.Tensor, target: str, **kwargs: Any) -> None:
        Path(target).write_bytes(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("torchvision.utils.save_image", fail_half_way)
    with pytest.raises(OSError):
        write_image_grid(torch.rand(6, 3, 8, 10), path, 3)
    assert path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == ["epoch_001.png"]
