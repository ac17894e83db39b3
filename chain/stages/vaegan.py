"""Synthesizer ``vaegan``: reconstruct every frame through a VAE-GAN trained with ``chain train vaegan``.

A frame → frame stage: frames are resized to the model's size, encoded to the posterior
mean (plus optional latent noise, ``--synth-opt latent_noise=STD``), and decoded; the chain
resizes the result to the output size. Weights are a checkpoint folder written by training:
the run's ``--out`` folder or its ``checkpoint`` subfolder.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from chain.device import inference_context
from chain.errors import ChainError, ChainWarning, MissingWeightsError
from chain.stages.base import Synthesizer
from chain.stages.spec import StageContext
from chain.weights.folder import training_caveat
from chain.weights.vaegan import HOW_TO_TRAIN, load_vaegan
from models.vaegan import VAEGAN


class VAEGANSynthesizer(Synthesizer):
    """Frames → the VAE-GAN's reconstructions at the model's size.

    Args:
        model: a trained `VAEGAN` (only its encoder and decoder run).
        device: where it runs.
        latent_noise: standard deviation of Gaussian noise added to the latent mean (0: none).
        seed: seeds that noise; the stream restarts at every run, so runs repeat exactly.
        batch_size: frames per network call (the chain's batches are split or kept as they come).
    """

    consumes = "frames"
    label_space = None

    def __init__(self, model: VAEGAN, *, device: torch.device = torch.device("cpu"), latent_noise: float = 0.0,
                 seed: int = 0, batch_size: int = 16, description: str = "") -> None:
        if latent_noise < 0:
            raise ChainError(f"latent_noise must be >= 0, got {latent_noise}")
        self.model = model.eval().to(device)
        self.device = device
        self.latent_noise = latent_noise
        self.seed = seed
        self.batch_size = batch_size
        self.description = description or f"VAE-GAN {model.config.width}x{model.config.height}"
        self._generator: torch.Generator | None = None
        self.reset()

    def reset(self) -> None:
        self._generator = torch.Generator(self.device).manual_seed(self.seed)

    @torch.inference_mode()
    def synthesize(self, *, labels: np.ndarray | None, frames: np.ndarray) -> torch.Tensor:
        config = self.model.config
        outputs = []
        for start in range(0, len(frames), self.batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(frames[start:start + self.batch_size]))
            x = chunk.to(self.device).permute(0, 3, 1, 2).float()
            if x.shape[-2:] != (config.height, config.width):
                x = F.interpolate(x, size=(config.height, config.width), mode="bilinear", align_corners=False,
                                  antialias=True)
            x = x / 127.5 - 1.0
            with inference_context(self.device):
                y = self.model.reconstruct(x, noise=self.latent_noise, generator=self._generator)
            y = ((y.float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
            outputs.append(y.permute(0, 2, 3, 1))  # stays on the device: the chain resizes it there
        return torch.cat(outputs)


def build_vaegan(variant: str | None, context: StageContext) -> VAEGANSynthesizer:
    """The ``vaegan`` synthesizer. Options: ``latent_noise`` (std, default 0), ``seed`` (default 0),
    ``batch`` (frames per network call, default 16)."""
    if context.weights is None:
        raise MissingWeightsError(f"the vaegan synthesizer needs weights: {HOW_TO_TRAIN}")
    noise = context.float_option("latent_noise", 0.0)
    seed = context.int_option("seed", 0, minimum=0, maximum=2**32 - 1)
    batch = context.int_option("batch", 16, minimum=1, maximum=1024)
    model, checkpoint = load_vaegan(context.weights, context.device)
    config = model.config
    trained = checkpoint.meta.get("train", {})
    film = Path(trained.get("film", "?")).name
    more = trained.get("more_films") or []
    if isinstance(more, list) and more:
        film += f" and {len(more)} more film" + ("s" if len(more) > 1 else "")
    step = checkpoint.meta.get("step", "?")
    caveat = training_caveat(checkpoint.meta)
    if caveat:
        warnings.warn(f"VAE-GAN weights {context.weights}: expect reconstructions that mean little ({caveat}); "
                      "train longer with `chain train vaegan --resume`", ChainWarning, stacklevel=2)
    description = (f"VAE-GAN {config.width}x{config.height}, latent {config.latent_dim}, trained on {film} "
                   f"({step} steps)" + (f", latent noise {noise:g}" if noise else ""))
    return VAEGANSynthesizer(model, device=context.device, latent_noise=noise, seed=seed, batch_size=batch,
                             description=description)
