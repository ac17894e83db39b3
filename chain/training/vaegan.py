"""Train a VAE-GAN on one film: ``chain train vaegan FILM --size 256x144 --latent 200 --out DIR``.

What a run writes into ``DIR``:

* ``frames/``: the film decoded once at the training size (`chain.datasets.frames`).
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from chain.datasets.frames import BatchSampler, FrameCache, build_frame_cache, training_size
from chain.device import Precision, resolve_device
from chain.errors import ChainError
from chain.media import Trim
from chain.training.common import (LOSS_LOG, OPTIMIZER_FILE, LossLog, TrainingDisplay,
                                   TrainingInterrupted, TrainingLoop, load_optimizer_state, open_run,
                                   optimizer_tensors, plot_run_losses, read_loss_log, read_optimizer_state,
                                   resumed_options)
from chain.weights.fit import check_fit
from chain.weights.folder import CHECKPOINT_DIR, WEIGHTS_FILE
from chain.weights.vaegan import MODEL_KIND, save_vaegan
from models.vaegan import VAEGAN, VAEGANConfig, make_optimizers

SAMPLES_DIR = "samples"
FRAMES_DIR = "frames"
PLOTTED = ("encoder", "decoder", "discriminator", "kl", "similarity", "d_real", "d_recon", "recon_psnr")
SAMPLE_COUNT = 8


@dataclass
class TrainOptions:
    """What defines a training run. Stored in the checkpoint; all but ``epochs`` must match on resume."""

    film: str
    size: str = "256x144"
    latent: int = 200
    batch: int = 12
    epochs: int = 6
    lr: float = 2e-4
    beta1: float = 0.5
    seed: int = 0
    filters: tuple[int, ...] = (80, 160, 320, 640)
    similarity_layers: tuple[int, ...] = (0, 1, 2, 3)
    gamma: float = 1.0
    gan_loss: str = "minimax"
    pixel_weight: float = 0.0
    start: float = 0.0
    duration: float | None = None
    max_frames: int | None = None

    RESUMABLE_CHANGES = ("epochs",)

    def __post_init__(self) -> None:
        self.filters = tuple(int(f) for f in self.filters)
        self.similarity_layers = tuple(int(i) for i in self.similarity_layers)
        size = training_size(self.size)
        self.size = str(size)
        for name in ("latent", "batch", "epochs"):
            if getattr(self, name) < 1:
                raise ChainError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or not 0 <= self.beta1 < 1:
            raise ChainError(f"need lr > 0 and 0 <= beta1 < 1, got lr={self.lr}, beta1={self.beta1}")

    def model_config(self) -> VAEGANConfig:
        size = training_size(self.size)
        try:
            return VAEGANConfig(height=size.height, width=size.width, latent_dim=self.latent, filters=self.filters,
                                similarity_layers=self.similarity_layers, gamma=self.gamma, gan_loss=self.gan_loss,
                                pixel_weight=self.pixel_weight)
        except ValueError as error:
            raise ChainError(f"bad VAE-GAN options: {error}") from None

    def trim(self) -> Trim:
        return Trim(start=self.start, duration=self.duration, max_frames=self.max_frames)


# -----------------------------------------------------------------------------
# The training loop


def train_vaegan(
    film: str | Path,
    out_dir: str | Path,
    *,
    size: str | None = None,
    latent: int | None = None,
    epochs: int | None = None,
    batch: int | None = None,
    lr: float | None = None,
    beta1: float | None = None,
    seed: int | None = None,
    filters: Sequence[int] | None = None,
    similarity_layers: Sequence[int] | None = None,
    gamma: float | None = None,
    gan_loss: str | None = None,
    pixel_weight: float | None = None,
    start: float | None = None,
    duration: float | None = None,
    max_frames: int | None = None,
    checkpoint_every: int = 500,
    device: str | None = "auto",
    resume: bool = False,
    progress: bool = True,
    max_steps: int | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> Path:
    """Train a VAE-GAN on ``film``'s frames; returns the checkpoint folder (``out_dir/checkpoint``).

    Options left as None take the `TrainOptions` defaults (256x144, latent 200, batch 12,
    6 epochs, Adam 2e-4 / 0.5, seed 0), or with ``resume`` the checkpoint's values; given
    ones must then agree with the checkpoint, except ``epochs``, which may grow.
    ``max_steps`` stops (with a checkpoint) after that many steps in all, leaving the run
    resumable. ``on_step(step, record)`` is called after each step (tests use it).
    Raises `TrainingInterrupted` after saving a checkpoint when Ctrl-C stops the run.
    """
    out_dir = Path(out_dir)
    given = dict(film=str(Path(film)), size=size, latent=latent, epochs=epochs, batch=batch, lr=lr, beta1=beta1,
                 seed=seed, filters=filters, similarity_layers=similarity_layers, gamma=gamma, gan_loss=gan_loss,
                 pixel_weight=pixel_weight,
                 start=start, duration=duration, max_frames=max_frames)
    if checkpoint_every < 1:
        raise ChainError(f"--checkpoint-every must be >= 1, got {checkpoint_every}")
    if max_steps is not None and max_steps < 1:
        raise ChainError(f"--max-steps must be >= 1, got {max_steps}")
    checkpoint_path = out_dir / CHECKPOINT_DIR
    checkpoint = open_run(out_dir, checkpoint_path, resume=resume, expect_model=MODEL_KIND)
    if checkpoint is not None:
        options = resumed_options(TrainOptions, checkpoint.meta["train"], given, input_field="film")
    else:
        options = TrainOptions(**{k: v for k, v in given.items() if v is not None})
    if checkpoint is not None:  # its weights against the network its options make, before allocating that
        check_fit(lambda: VAEGAN(options.model_config()), checkpoint.state_dict,
                  source=checkpoint_path / WEIGHTS_FILE, what="VAE-GAN its training options describe")
        resumed_optimizers = read_optimizer_state(checkpoint_path)
    config = options.model_config()
    device = resolve_device(device)

    with TrainingDisplay(progress) as display:
        # 1. Frames: decode once, or reuse the cache.
        cache = build_frame_cache(options.film, out_dir / FRAMES_DIR, size=options.size, trim=options.trim(),
                                  progress=display.decoding(Path(options.film).name))
        sampler = BatchSampler(len(cache), options.batch, options.seed)
        total_steps = options.epochs * sampler.steps_per_epoch
        stop = min(total_steps, max_steps) if max_steps is not None else total_steps

        # 2. Model, optimizers, noise: fresh from the seed, or exactly as checkpointed.
        torch.manual_seed(options.seed)
        model = VAEGAN(config).to(device)
        optimizers = make_optimizers(model, lr=options.lr, beta1=options.beta1)
        generator = torch.Generator(device).manual_seed(options.seed)
        precision = Precision(device)
        step = 0
        if checkpoint is not None:
            model.load_state_dict(checkpoint.state_dict)
            same_device = torch.device(checkpoint.meta.get("device", "cpu")).type == device.type
            load_optimizer_state(optimizers, generator if same_device else None, resumed_optimizers,
                                 checkpoint_path)
            precision.load_state_dict(checkpoint.meta.get("scaler"))
            step = int(checkpoint.meta["step"])
            if not same_device:  # CPU and CUDA generators differ: a new noise stream, the rest exact
                generator.manual_seed(options.seed + step)
        log = LossLog(out_dir / LOSS_LOG, keep_through=step)

        def save(at_step: int) -> Path:
            return _save(checkpoint_path, model, optimizers, generator, precision, options, cache, sampler,
                         at_step, total_steps, device)

        # 3. Train until the last epoch ends, or max_steps.
        loop = TrainingLoop(
            train_step=lambda at: _train_step(model, optimizers, generator, precision, cache, sampler, at, device),
            describe=lambda r: (f"ep {r['epoch']} enc {r['encoder']:.3f} dec {r['decoder']:.3f} "
                                f"dis {r['discriminator']:.3f} kl {r['kl']:.4f} psnr {r['recon_psnr']:.1f}"),
            save=save,
            end_of_epoch=lambda epoch: _write_samples(model, cache, out_dir / SAMPLES_DIR / f"epoch_{epoch:03d}.png",
                                                      options.seed, device),
            plot=lambda: plot_run_losses(out_dir, PLOTTED, "VAE-GAN training"),
            steps_per_epoch=sampler.steps_per_epoch, checkpoint_every=checkpoint_every,
            resume_hint=f"chain train vaegan {options.film} --out {out_dir} --resume")
        loop.run(step=step, stop=stop, total_steps=total_steps, log=log, display=display,
                 checkpoint_path=checkpoint_path, on_step=on_step)
    return checkpoint_path


def _train_step(model: VAEGAN, optimizers: dict[str, torch.optim.Optimizer], generator: torch.Generator,
                precision: Precision, cache: FrameCache, sampler: BatchSampler, step: int,
                device: torch.device) -> dict[str, float]:
    """One step of Algorithm 1 on the batch for global ``step``; returns the losses to log."""
    model.train()
    x = _to_model(cache.frames[sampler.batch(step)], device)
    with precision.autocast():
        losses = model.losses(x, generator)
    model.backward(losses, scale=precision.scaler.scale)
    for optimizer in optimizers.values():  # all three from the same forward pass, as in the paper
        precision.scaler.step(optimizer)
    precision.scaler.update()
    values = {
        "encoder": losses.encoder, "decoder": losses.decoder, "discriminator": losses.discriminator,
        "kl": losses.kl, "similarity": losses.similarity, "decoder_gan": losses.decoder_gan, **losses.stats,
    }
    record = {key: float(value.detach()) for key, value in values.items()}
    mse = record.pop("pixel_mse")
    record["recon_psnr"] = round(10 * math.log10(4.0 / mse), 4) if mse > 0 else float("inf")  # [-1, 1] range
    return record


def _to_model(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` → float ``(B, 3, H, W)`` in [-1, 1] on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


# -----------------------------------------------------------------------------
# Resuming


def _save(path: Path, model: VAEGAN, optimizers: dict[str, torch.optim.Optimizer], generator: torch.Generator,
          precision: Precision, options: TrainOptions, cache: FrameCache, sampler: BatchSampler, step: int,
          total_steps: int, device: torch.device) -> Path:
    meta = {
        "step": step,
        "epoch": step // sampler.steps_per_epoch,
        "steps_per_epoch": sampler.steps_per_epoch,
        "total_steps": total_steps,
        "complete": step >= total_steps,
        "frames": len(cache),
        "train": dataclasses.asdict(options),
        "device": str(device),
        "precision": precision.name,
        "scaler": precision.state_dict(),
    }
    return save_vaegan(model, path, meta, extra_files={OPTIMIZER_FILE: optimizer_tensors(optimizers, generator)})


# -----------------------------------------------------------------------------
# Precision, Ctrl-C, the loss log, samples, the progress display


@torch.no_grad()
def _write_samples(model: VAEGAN, cache: FrameCache, path: Path, seed: int, device: torch.device) -> None:
    """Real frames, their reconstructions and decoded prior samples, one row each (eval mode, no noise)."""
    from torchvision.utils import save_image

    count = min(SAMPLE_COUNT, len(cache))
    indices = np.unique(np.linspace(0, len(cache) - 1, count).round().astype(int))
    real = _to_model(cache.frames[indices], device)
    # A generator of its own, so writing samples never moves the training noise stream.
    z = torch.randn(len(indices), model.config.latent_dim, generator=torch.Generator().manual_seed(seed + 1))
    model.eval()
    try:
        recon = model.reconstruct(real)
        prior = model.decoder(z.to(device))
    finally:
        model.train()
    grid = torch.cat([real, recon.float(), prior.float()]).add(1).div(2).clamp(0, 1).cpu()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, str(path), nrow=len(indices), padding=2)


losses_so_far = read_loss_log  # the name tests and scripts used first

__all__ = ["TrainOptions", "TrainingInterrupted", "losses_so_far", "train_vaegan"]
