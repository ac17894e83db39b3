"""Train a VAE-GAN on films: ``chain train vaegan FILM [FILM...] --size 256x144 --latent 200 --out DIR``.

From Python: ``train_vaegan(films, out, {"size": "64x36", "latent": 32}, RunSettings(max_steps=100))``:
the options by their flags (declared in `chain.training.flags`) or a `VAEGANTrainOptions`, and the
run's settings (`chain.training.loop.RunSettings`).

Several films (videos or image folders) are learnt together, as Broad learnt a whole film: their
frames are pooled and every frame is equally likely in a batch, so each film weighs by its
length (each epoch visits every frame of every film once; `chain.datasets.frames.FramePool`).

What a run writes into ``DIR``:

* ``frames/``: the (first) film decoded once at the training size (`chain.datasets.frames`);
  ``frames-2/``, ``frames-3/``…: the further films, one cache each.
* ``checkpoint/``: the latest checkpoint (`chain.weights.folder` format): ``model.safetensors``
  (encoder, decoder, discriminator), ``config.json`` (the `VAEGANConfig`, and in ``meta``
  the training options, the step and the loss scaler), and ``optimizer.safetensors`` (the
  three Adam states and the noise generator's state). Written every ``checkpoint_every``
  steps, at the end, and when Ctrl-C stops the run.
* ``losses.jsonl``: one JSON object per step; ``losses.png``: their curves.
* ``samples/epoch_NNN.png``: after each epoch, a fixed set of real frames (top row), their
  reconstructions (middle) and decodings of fixed prior samples (bottom).

Reproducibility: the weights are initialised from ``seed``, batches come from a sampler that
is a pure function of (seed, step), and all training noise comes from one generator whose
state is checkpointed. So ``--resume`` continues bit for bit: on CPU, a run stopped at any
step and resumed ends with exactly the weights of an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from chain.datasets.augment import augmented
from chain.datasets.frames import FramePool, build_frame_cache, training_size
from chain.device import Precision
from chain.errors import ChainError
from chain.media import Trim
from chain.training.common import TrainingDisplay, TrainingInterrupted, read_loss_log
from chain.training.flags import VAEGAN_FLAGS, declared, nested_flags
from chain.training.loop import RunSettings, Saved, train
from chain.training.options import flag_values
from chain.weights.fit import check_fit
from chain.weights.folder import WEIGHTS_FILE
from chain.weights.vaegan import MODEL_KIND
from models.vaegan import LEGACY, VAEGAN, VAEGANConfig, make_optimizers

FRAMES_DIR = "frames"
PLOTTED = ("encoder", "decoder", "discriminator", "kl", "similarity", "d_real", "d_recon", "recon_psnr")
SAMPLE_COUNT = 8
LR_SCHEDULES = ("constant", "cosine")


def lr_factor(schedule: str, step: int, total_steps: int) -> float:
    """The learning rate's multiplier at (0-based) ``step`` of ``total_steps``: a pure function of the
    step, so a resumed run sets exactly the rates an uninterrupted one did."""
    if schedule == "constant" or total_steps <= 0:
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))


@dataclass(kw_only=True)
class VAEGANTrainOptions:
    """What defines a training run. Stored in the checkpoint; all but ``epochs`` must match on resume."""

    film: str
    more_films: tuple[str, ...] = ()  # further films learnt with ``film`` (frames pooled, weighted by length)
    size: str | None = declared(VAEGAN_FLAGS, "size")  # WxH of the training frames; None: the model config's
    model: VAEGANConfig = field(default_factory=VAEGANConfig)  # its height and width follow ``size``
    batch: int = declared(VAEGAN_FLAGS, "batch")
    epochs: int = declared(VAEGAN_FLAGS, "epochs")
    lr: float = declared(VAEGAN_FLAGS, "lr")
    # "cosine": lr * (1 + cos(pi * step / total steps)) / 2, or "constant".
    lr_schedule: str = declared(VAEGAN_FLAGS, "lr_schedule")
    beta1: float = 0.5
    augment: bool = declared(VAEGAN_FLAGS, "augment")
    seed: int = declared(VAEGAN_FLAGS, "seed")
    start: float = 0.0
    duration: float | None = None
    max_frames: int | None = None

    #: Flags that set a field of the model's config: those `chain.training.flags` declares, and more.
    FLAGS: ClassVar[dict[str, str]] = {**nested_flags(VAEGAN_FLAGS), "similarity_layers": "model.similarity_layers",
                                       "gamma": "model.gamma", "gan_loss": "model.gan_loss",
                                       "spectral_norm": "model.spectral_norm", "kl_weight": "model.kl_weight"}
    RESUMABLE_CHANGES: ClassVar[tuple[str, ...]] = ("epochs",)

    @staticmethod
    def upgrade(saved: dict[str, Any]) -> dict[str, Any]:
        """Saved options from an older checkpoint: model fields it lacks keep the values it was trained
        with (`models.vaegan.LEGACY`), not today's defaults."""
        saved = {"lr_schedule": "constant", **saved}  # runs before the schedule existed kept one rate
        model = saved.get("model")
        if isinstance(model, dict):
            return {**saved, "model": {**LEGACY, **model}}
        return {**saved, "model": dict(LEGACY)} if model is None else saved  # flat flags: older still

    def __post_init__(self) -> None:
        self.more_films = tuple(str(film) for film in self.more_films)  # JSON gives a list
        size = training_size(self.size or f"{self.model.width}x{self.model.height}")
        self.size = str(size)
        self.model = dataclasses.replace(self.model, height=size.height, width=size.width)  # checks it again
        for name in ("batch", "epochs"):
            if getattr(self, name) < 1:
                raise ChainError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ChainError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, not {self.lr_schedule!r}")
        if not self.lr > 0 or not 0 <= self.beta1 < 1:
            raise ChainError(f"need lr > 0 and 0 <= beta1 < 1, got lr={self.lr}, beta1={self.beta1}")

    def trim(self) -> Trim:
        """The same trim applies to every film."""
        return Trim(start=self.start, duration=self.duration, max_frames=self.max_frames)

    @property
    def films(self) -> tuple[str, ...]:
        """Every film learnt, the first one first."""
        return (self.film, *self.more_films)


TrainOptions = VAEGANTrainOptions  # the name it had first


def train_vaegan(film: str | Path | Sequence[str | Path], out_dir: str | Path,
                 flags: Mapping[str, Any] | VAEGANTrainOptions | None = None,
                 settings: RunSettings | None = None) -> Path:
    """Train a VAE-GAN on ``film``'s frames; returns the checkpoint folder (``out_dir/checkpoint``).

    ``film`` is one film (video or image folder) or several, learnt together (their frames
    pooled, each film weighted by its length). On resume, the first film alone stands for the
    run's films; giving several again must name the same ones.

    ``flags`` are training options by their command-line names (``{"size": "64x36", "latent": 32}``;
    `VAEGANTrainOptions`'s fields and its ``FLAGS``), or a whole `VAEGANTrainOptions`. Those left
    out (or None) take the defaults (`chain.training.flags.VAEGAN_FLAGS`; the network's from
    `VAEGANConfig`), or with ``settings.resume`` the checkpoint's values; given ones must then agree
    with the checkpoint, except ``epochs``, which may grow. ``settings`` drive the run (`RunSettings`:
    device, checkpoints, ``max_steps``, progress, ``on_step``). Raises `TrainingInterrupted` after
    saving a checkpoint when Ctrl-C stops the run.
    """
    given = flag_values(flags) if isinstance(flags, VAEGANTrainOptions) else dict(flags or {})
    films = [str(Path(film))] if isinstance(film, (str, Path)) else [str(Path(f)) for f in film]
    if not films:
        raise ChainError("chain train vaegan needs at least one film")
    more = tuple(films[1:]) if len(films) > 1 else None  # None: a new run's default (), or the checkpoint's
    given.pop("more_films", None)
    return train(VAEGANTrainer, out_dir, {**given, "film": films[0], "more_films": more}, settings or RunSettings())


class VAEGANTrainer:
    """Algorithm 1 of Larsen et al.: three networks, three Adams, one forward pass a step (a `Trainer`)."""

    OPTIONS = VAEGANTrainOptions
    INPUT = "film"
    MODEL_KIND = MODEL_KIND
    TITLE = "VAE-GAN"
    PLOTTED = PLOTTED
    RESUME = "chain train vaegan {input} --out {out} --resume"

    def __init__(self, options: VAEGANTrainOptions, device: torch.device) -> None:
        self.options, self.device = options, device
        self.noise: torch.Generator | None = None

    def check_resumable(self, checkpoint: Any, path: Path) -> None:
        check_fit(lambda: VAEGAN(self.options.model), checkpoint.state_dict, source=path / WEIGHTS_FILE,
                  what="VAE-GAN its training options describe")

    def check_inputs(self) -> None:
        """Every film exists (its contents are checked as it is decoded): a missing third film is one
        line before the first is decoded."""
        for film in self.options.films:
            if not Path(film).exists():
                raise ChainError(f"input not found: {film}")

    def prepare(self, out_dir: Path, display: TrainingDisplay) -> int:
        caches = [build_frame_cache(film, out_dir / frames_dir(i), size=self.options.size, trim=self.options.trim(),
                                    progress=display.decoding(Path(film).name))
                  for i, film in enumerate(self.options.films)]
        self.frames = FramePool(caches)
        # The loop's step count (`chain.datasets.frames.BatchSampler`), for the learning-rate schedule.
        self.total_steps = self.options.epochs * (len(self.frames) // self.options.batch)
        return len(self.frames)

    def build(self) -> dict[str, torch.optim.Optimizer]:
        torch.manual_seed(self.options.seed)
        self.model = VAEGAN(self.options.model).to(self.device)
        self.optimizers = make_optimizers(self.model, lr=self.options.lr, beta1=self.options.beta1)
        self.noise = torch.Generator(self.device).manual_seed(self.options.seed)  # all training noise
        return self.optimizers

    def restore(self, checkpoint: Any, path: Path) -> None:
        self.model.load_state_dict(checkpoint.state_dict)

    def train_step(self, indices: np.ndarray, step: int, precision: Precision) -> dict[str, float]:
        self.model.train()
        x = _to_model(self.frames.take(indices), self.device)
        if self.options.augment:
            x = augmented(x.add(1).div(2), seed=self.options.seed, step=step).mul(2).sub(1)
        with precision.autocast():
            losses = self.model.losses(x, self.noise)
        self.model.backward(losses, scale=precision.scaler.scale)
        rate = self.options.lr * lr_factor(self.options.lr_schedule, step, self.total_steps)
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = rate
        for optimizer in self.optimizers.values():  # all three from the same forward pass, as in the paper
            precision.scaler.step(optimizer)
        precision.scaler.update()
        values = {
            "encoder": losses.encoder, "decoder": losses.decoder, "discriminator": losses.discriminator,
            "kl": losses.kl, "similarity": losses.similarity, "decoder_gan": losses.decoder_gan, **losses.stats,
        }
        record = {key: float(value.detach()) for key, value in values.items()}
        record["lr"] = rate
        mse = record.pop("pixel_mse")
        record["recon_psnr"] = round(10 * math.log10(4.0 / mse), 4) if mse > 0 else float("inf")  # [-1, 1] range
        return record

    def saved(self) -> Saved:
        meta = {"frames": len(self.frames), "film_frames": [len(cache) for cache in self.frames.caches]}
        return Saved(config=self.model.config, state_dict=self.model.state_dict(), meta=meta)

    @torch.no_grad()
    def sample_grid(self) -> tuple[torch.Tensor, int]:
        """Real frames, their reconstructions and decoded prior samples, one row each (eval mode, no noise)."""
        count = min(SAMPLE_COUNT, len(self.frames))
        indices = np.unique(np.linspace(0, len(self.frames) - 1, count).round().astype(int))  # across all films
        real = _to_model(self.frames.take(indices), self.device)
        # A generator of its own, so writing samples never moves the training noise stream.
        z = torch.randn(len(indices), self.options.model.latent_dim,
                        generator=torch.Generator().manual_seed(self.options.seed + 1))
        self.model.eval()
        try:
            recon = self.model.reconstruct(real)
            prior = self.model.decoder(z.to(self.device))
        finally:
            self.model.train()
        return torch.cat([real, recon.float(), prior.float()]).add(1).div(2), len(indices)

    def describe(self, record: dict[str, Any]) -> str:
        return (f"ep {record['epoch']} enc {record['encoder']:.3f} dec {record['decoder']:.3f} "
                f"dis {record['discriminator']:.3f} kl {record['kl']:.4f} psnr {record['recon_psnr']:.1f}")


def frames_dir(index: int) -> str:
    """The cache folder of film ``index`` (0-based) in a run folder: ``frames``, ``frames-2``, ``frames-3``…"""
    return FRAMES_DIR if index == 0 else f"{FRAMES_DIR}-{index + 1}"


def _to_model(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` → float ``(B, 3, H, W)`` in [-1, 1] on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


losses_so_far = read_loss_log  # the name tests and scripts used first

__all__ = ["TrainOptions", "TrainingInterrupted", "VAEGANTrainOptions", "VAEGANTrainer", "losses_so_far",
           "train_vaegan"]
