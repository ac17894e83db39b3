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
from chain.stages.flow import gray_at, histogram_cut
from chain.stages.spec import StageContext
from chain.weights.folder import training_caveat
from chain.weights.vaegan import HOW_TO_TRAIN, load_vaegan
from models.vaegan import VAEGAN

#: The most frames each way ``smooth`` averages over (each held latent is a few hundred numbers).
MAX_SMOOTH = 12


class VAEGANSynthesizer(Synthesizer):
    """Frames → the VAE-GAN's reconstructions at the model's size.

    Args:
        model: a trained `VAEGAN` (only its encoder and decoder run).
        device: where it runs.
        latent_noise: standard deviation of Gaussian noise added to the latent mean (0: none).
        seed: seeds that noise; the stream restarts at every run, so runs repeat exactly.
        batch_size: frames per network call (the chain's batches are split or kept as they come).
        smooth: frame order: each frame is decoded from a Gaussian-weighted average of the latent
            means of the ``smooth`` frames before and after it (of its own scene: a cut ends it),
            so consecutive reconstructions change as smoothly as the film (0: each frame alone).
    """

    consumes = "frames"
    label_space = None

    def __init__(self, model: VAEGAN, *, device: torch.device = torch.device("cpu"), latent_noise: float = 0.0,
                 seed: int = 0, batch_size: int = 16, smooth: int = 0, description: str = "") -> None:
        if latent_noise < 0:
            raise ChainError(f"latent_noise must be >= 0, got {latent_noise}")
        self.model = model.eval().to(device)
        self.device = device
        self.latent_noise = latent_noise
        self.seed = seed
        self.batch_size = batch_size
        self.look_ahead = self.smooth = smooth
        weights = torch.exp(-0.5 * (torch.arange(-smooth, smooth + 1, dtype=torch.float32) / max(smooth / 2, 1e-6)) ** 2)
        self._weights = weights.to(device)
        self.description = description or f"VAE-GAN {model.config.width}x{model.config.height}"
        self._generator: torch.Generator | None = None
        self.reset()

    def reset(self) -> None:
        self._generator = torch.Generator(self.device).manual_seed(self.seed)
        self._next = 0
        self._latents: dict[int, torch.Tensor] = {}  # posterior means of the frames the window holds
        self._grays: dict[int, np.ndarray] = {}  # small grayscale frames, for the cut test
        self._cut_before: dict[int, bool] = {}  # frame index → a scene cut lies between it and the one before

    def seek(self, index: int) -> None:
        self._next = index

    def unshardable(self) -> str | None:
        return "vaegan's smooth looks at the frames around each one" if self.smooth else None

    def look(self, frames: np.ndarray, *, indices: np.ndarray) -> None:
        self._encode(frames, indices)

    @torch.inference_mode()
    def synthesize(self, *, labels: np.ndarray | None, frames: np.ndarray) -> torch.Tensor:
        indices = np.arange(self._next, self._next + len(frames))
        self._next += len(frames)
        if self.smooth:
            self._encode(frames, indices)
            latents = torch.stack([self._smoothed(int(index)) for index in indices])
            for index in [i for i in self._latents if i < indices[-1] + 1 - self.smooth]:
                del self._latents[index], self._grays[index]
                self._cut_before.pop(index, None)
            return torch.cat([self._decode(latents[start:start + self.batch_size])
                              for start in range(0, len(latents), self.batch_size)])
        outputs = []
        for start in range(0, len(frames), self.batch_size):
            with inference_context(self.device):
                mean = self.model.encoder(self._to_model(frames[start:start + self.batch_size]))[0]
            outputs.append(self._decode(mean))
        return torch.cat(outputs)

    def _to_model(self, frames: np.ndarray) -> torch.Tensor:
        config = self.model.config
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).permute(0, 3, 1, 2).float()
        if x.shape[-2:] != (config.height, config.width):
            x = F.interpolate(x, size=(config.height, config.width), mode="bilinear", align_corners=False,
                              antialias=True)
        return x / 127.5 - 1.0

    def _decode(self, mean: torch.Tensor) -> torch.Tensor:
        """Posterior means → uint8 frames ``(B, h, w, 3)`` on the device, with the latent noise."""
        if self.latent_noise:
            mean = mean + self.latent_noise * torch.randn(mean.shape, generator=self._generator, device=mean.device,
                                                          dtype=mean.dtype)
        with inference_context(self.device):
            y = self.model.decoder(mean)
        y = ((y.float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
        return y.permute(0, 2, 3, 1)  # stays on the device: the chain resizes it there

    @torch.inference_mode()
    def _encode(self, frames: np.ndarray, indices: np.ndarray) -> None:
        """Hold the posterior means of the frames not held yet, and whether a cut comes before each."""
        new = [i for i, index in enumerate(indices) if int(index) not in self._latents]
        for start in range(0, len(new), self.batch_size):
            chunk = new[start:start + self.batch_size]
            with inference_context(self.device):
                means = self.model.encoder(self._to_model(frames[chunk]))[0].float()
            for position, mean in zip(chunk, means):
                index = int(indices[position])
                self._latents[index], self._grays[index] = mean, gray_at(frames[position], (64, 64))
                # Frames after a batch are shown before it: a frame's neighbour may come first.
                for later in (index, index + 1):
                    if later - 1 in self._grays and later in self._grays:
                        self._cut_before[later] = histogram_cut(self._grays[later - 1], self._grays[later])

    def _smoothed(self, index: int) -> torch.Tensor:
        """The Gaussian-weighted mean of the held latents within ``smooth`` frames of ``index``, up to a cut."""
        total = self._weights[self.smooth] * self._latents[index]
        weight = float(self._weights[self.smooth])
        for step in (-1, 1):
            for distance in range(1, self.smooth + 1):
                other = index + step * distance
                crossing = other + 1 if step < 0 else other  # the frame whose "cut before" lies between
                if other not in self._latents or self._cut_before.get(crossing, True):
                    break
                total = total + self._weights[self.smooth + step * distance] * self._latents[other]
                weight += float(self._weights[self.smooth + step * distance])
        return total / weight


def build_vaegan(variant: str | None, context: StageContext) -> VAEGANSynthesizer:
    """The ``vaegan`` synthesizer. Options: ``latent_noise`` (std, default 0), ``seed`` (default 0),
    ``batch`` (frames per network call, default 16), ``smooth`` (frames each way whose latents a
    frame's is averaged with, default 0)."""
    if context.weights is None:
        raise MissingWeightsError(f"the vaegan synthesizer needs weights: {HOW_TO_TRAIN}")
    noise = context.float_option("latent_noise", 0.0)
    seed = context.int_option("seed", 0, minimum=0, maximum=2**32 - 1)
    batch = context.int_option("batch", 16, minimum=1, maximum=1024)
    smooth = context.int_option("smooth", 0, minimum=0, maximum=MAX_SMOOTH)
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
                   f"({step} steps)" + (f", latent noise {noise:g}" if noise else "")
                   + (f", latents smoothed over ±{smooth} frames" if smooth else ""))
    return VAEGANSynthesizer(model, device=context.device, latent_noise=noise, seed=seed, batch_size=batch,
                             smooth=smooth, description=description)
