"""Train a SPADE generator: ``chain train spade --data DATASET --out DIR`` (or a video with ``--seg``).

From Python: ``train_spade(data, out, {"size": "128x96", "ngf": 16}, RunSettings(device="cuda"))``: the
options by their flags (declared in `chain.training.flags`) or a `SpadeTrainOptions`, and the run's
settings (`chain.training.loop.RunSettings`).

As Park et al. 2019 train it: the generator (`models.spade`) against a multi-scale
PatchGAN (`models.spade_discriminator`) with the hinge loss, discriminator feature matching
(weight 10) and, only when the user gives VGG-19 weights, the perceptual loss (weight 10);
Adam with the two-time-scale rule (beta 0 / 0.9, generator lr/2, discriminator 2·lr);
Xavier init with gain 0.02; random horizontal flips. One difference: the discriminator's
step reuses the generator step's fake images (detached) instead of generating them again,
as pix2pixHD does, which saves a third of the generator's compute.

What a run writes into ``DIR``:

* ``pairs/`` (and ``frames/`` for a video): the training pairs at the training size.
* ``checkpoint/``: ``model.safetensors`` + ``config.json`` is a SPADE checkpoint that
  ``chain run --synth spade --synth-weights DIR`` paints with (its label space is in the
  meta); ``discriminator.safetensors`` and ``optimizer.safetensors`` make it resumable.
* ``losses.jsonl`` and ``losses.png``; ``samples/epoch_NNN.png``: label maps (top row),
  real images (middle) and the generator's paintings of those labels (bottom).

Reproducibility: weights from ``seed``; batches and flips are pure functions of (seed,
step); nothing else is random, so ``--resume`` continues exactly (on CPU, bit for bit).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from chain.datasets.frames import META_FILE as FRAMES_META
from chain.datasets.frames import build_frame_cache, training_size
from chain.datasets.pairs import (
    PairCache,
    build_dataset_cache,
    build_pseudo_label_cache,
    dataset_layout,
)
from chain.device import Precision
from chain.errors import ChainError
from chain.labels import LabelSpace, get_label_space
from chain.media import Trim
from chain.stages import StageContext, build_stage
from chain.training.common import TrainingDisplay, TrainingInterrupted
from chain.training.flags import SPADE_FLAGS, declared, nested_flags
from chain.training.loop import RunSettings, Saved, train
from chain.training.options import flag_values
from chain.weights.fit import check_fit
from chain.weights.folder import WEIGHTS_FILE, read_safetensors
from chain.weights.spade import MODEL_KIND
from models.spade import UPSAMPLINGS, SPADEConfig, SPADEGenerator, make_spade_input
from models.spade_discriminator import (
    MultiscaleDiscriminator,
    PatchDiscriminatorConfig,
    feature_matching_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    init_weights,
)

DISCRIMINATOR_FILE = "discriminator.safetensors"
SAMPLE_COUNT = 6
PLOTTED = ("g_gan", "g_feat", "g_vgg", "d_real", "d_fake")


def _trained_generator() -> SPADEConfig:
    """The generator a run trains: a one-hot channel for every id of the pairs' label space
    (``label_nc`` is set from it), the class-boundary edge channel, no "dontcare" channel."""
    return SPADEConfig(contain_dontcare_label=False, no_instance=False, num_upsampling_layers="normal")


def _discriminator() -> PatchDiscriminatorConfig:
    return PatchDiscriminatorConfig(input_nc=0)  # set from the generator's channels


@dataclass(kw_only=True)
class SpadeTrainOptions:
    """What defines a SPADE training run. Stored in the checkpoint; all but ``epochs`` must match on resume."""

    data: str
    split: str = declared(SPADE_FLAGS, "split")
    seg: str | None = declared(SPADE_FLAGS, "seg")  # labels a video's frames (pseudo-labels); None for a dataset
    seg_weights: str | None = declared(SPADE_FLAGS, "seg_weights")
    size: str = declared(SPADE_FLAGS, "size")
    # The networks: crop size and aspect follow ``size``, the discriminator's input the generator's channels.
    generator: SPADEConfig = field(default_factory=_trained_generator)
    discriminator: PatchDiscriminatorConfig = field(default_factory=_discriminator)
    batch: int = declared(SPADE_FLAGS, "batch")
    epochs: int = declared(SPADE_FLAGS, "epochs")
    lr: float = declared(SPADE_FLAGS, "lr")
    beta1: float = 0.0
    beta2: float = 0.9
    lambda_feat: float = 10.0
    lambda_vgg: float = 10.0
    vgg_weights: str | None = declared(SPADE_FLAGS, "vgg_weights")
    flip: bool = True
    seed: int = declared(SPADE_FLAGS, "seed")
    start: float = 0.0
    duration: float | None = None
    max_frames: int | None = None

    #: Flags that set a field of a network's config: those `chain.training.flags` declares, and more.
    FLAGS: ClassVar[dict[str, str]] = {**nested_flags(SPADE_FLAGS), "num_d": "discriminator.num_d",
                                       "n_layers_d": "discriminator.n_layers"}
    RESUMABLE_CHANGES: ClassVar[tuple[str, ...]] = ("epochs",)

    def __post_init__(self) -> None:
        size = training_size(self.size)
        scale = 2 ** UPSAMPLINGS[self.generator.num_upsampling_layers]
        if size.width % scale or size.height % scale:
            raise ChainError(f"--size {self.size}: both sides must be multiples of {scale} (e.g. 128x96, 256x192)")
        self.size = str(size)
        self.generator = dataclasses.replace(self.generator, crop_size=size.width,
                                             aspect_ratio=size.width / size.height)
        self.discriminator = self.discriminator_config(self.generator)
        flags = flag_values(self)
        for name in ("ngf", "spade_hidden", "ndf", "num_d", "n_layers_d", "batch", "epochs"):
            if flags[name] < 1:
                raise ChainError(f"--{name.replace('_', '-')} must be >= 1, got {flags[name]}")
        if not self.lr > 0 or not 0 <= self.beta1 < 1 or not 0 <= self.beta2 < 1:
            raise ChainError(f"need lr > 0 and betas in [0, 1), got {self.lr}, {self.beta1}, {self.beta2}")

    def generator_config(self, space: LabelSpace) -> SPADEConfig:
        """The generator for pairs labelled in ``space``: every id is a one-hot channel."""
        return dataclasses.replace(self.generator, label_nc=len(space))

    def discriminator_config(self, generator: SPADEConfig) -> PatchDiscriminatorConfig:
        return dataclasses.replace(self.discriminator, input_nc=generator.semantic_nc + 3)


def train_spade(data: str | Path, out_dir: str | Path, flags: Mapping[str, Any] | SpadeTrainOptions | None = None,
                settings: RunSettings | None = None) -> Path:
    """Train a SPADE generator on ``data``; returns the checkpoint folder (``out_dir/checkpoint``).

    ``flags`` are training options by their command-line names (``{"size": "64x64", "ngf": 8}``;
    `SpadeTrainOptions`'s fields and its ``FLAGS``), or a whole `SpadeTrainOptions`. Those left out
    (or None) take the defaults (`chain.training.flags.SPADE_FLAGS`; the networks' from their
    configs), or with ``settings.resume`` the checkpoint's values; given ones must then agree with
    it, except ``epochs``. ``settings`` drive the run (`RunSettings`): ``max_steps`` stops with a
    checkpoint after that many steps in all, leaving the run resumable. Raises `TrainingInterrupted`
    (after saving) on Ctrl-C.
    """
    given = flag_values(flags) if isinstance(flags, SpadeTrainOptions) else dict(flags or {})
    return train(SpadeTrainer, out_dir, {**given, "data": str(data)}, settings or RunSettings())


class SpadeTrainer:
    """Generator against a multi-scale PatchGAN, one step each per batch (a `Trainer`)."""

    OPTIONS = SpadeTrainOptions
    INPUT = "data"
    MODEL_KIND = MODEL_KIND
    TITLE = "SPADE"
    PLOTTED = PLOTTED
    RESUME = "chain train spade --data {input} --out {out} --resume"

    def __init__(self, options: SpadeTrainOptions, device: torch.device) -> None:
        self.options, self.device = options, device
        self.noise: torch.Generator | None = None  # flips are a function of (seed, step): no noise to save
        self.segmenter: Any = None

    def check_resumable(self, checkpoint: Any, path: Path) -> None:
        """Both networks' weights against those the options make, on the meta device."""
        generator_config = self.options.generator_config(get_label_space(str(checkpoint.meta.get("label_space"))))
        check_fit(lambda: SPADEGenerator(generator_config), checkpoint.state_dict, source=path / WEIGHTS_FILE,
                  what="SPADE generator its training options describe")
        if not (path / DISCRIMINATOR_FILE).is_file():
            raise ChainError(f"{path / DISCRIMINATOR_FILE} is missing: the checkpoint cannot be resumed (it can "
                             "still be used to run)")
        self.resumed_discriminator = read_safetensors(path / DISCRIMINATOR_FILE)
        check_fit(lambda: MultiscaleDiscriminator(self.options.discriminator_config(generator_config)),
                  self.resumed_discriminator, source=path / DISCRIMINATOR_FILE,
                  what="discriminator its training options describe")

    def check_inputs(self) -> None:
        """The dataset's layout, the video, the VGG weights; the labelling segmenter is built here."""
        options = self.options
        if options.seg is None:
            dataset_layout(options.data, options.split)
        elif not Path(options.data).exists():
            raise ChainError(f"input not found: {options.data}")
        if options.vgg_weights and not Path(options.vgg_weights).is_file():
            raise ChainError(f"VGG-19 weights not found: {options.vgg_weights}")
        if options.seg is not None:
            self.segmenter = build_stage("segmenter", options.seg,
                                         StageContext(weights=options.seg_weights, device=self.device))

    def prepare(self, out_dir: Path, display: TrainingDisplay) -> int:
        """A dataset split, or a video's frames and their pseudo-labels; built once, then reused."""
        self.pairs = _training_pairs(self.options, self.segmenter, out_dir, display)
        self.options = dataclasses.replace(self.options, generator=self.options.generator_config(self.pairs.label_space))
        return len(self.pairs)

    def build(self) -> dict[str, torch.optim.Optimizer]:
        """Xavier init (gain 0.02) from the seed; Adam with the two-time-scale rule."""
        options, device = self.options, self.device
        torch.manual_seed(options.seed)
        generator = SPADEGenerator(options.generator)
        discriminator = MultiscaleDiscriminator(options.discriminator)
        init_weights(generator)
        init_weights(discriminator)
        memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
        self.generator = generator.to(device, memory_format=memory_format).train()
        self.discriminator = discriminator.to(device, memory_format=memory_format).train()
        betas = (options.beta1, options.beta2)
        self.optimizers = {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=options.lr / 2, betas=betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=options.lr * 2, betas=betas),
        }
        self.vgg = None
        if options.vgg_weights:
            from chain.training.perceptual import VGGPerceptualLoss

            self.vgg = VGGPerceptualLoss(options.vgg_weights).to(device)
        return self.optimizers

    def restore(self, checkpoint: Any, path: Path) -> None:
        if self.pairs.label_space.name != checkpoint.meta.get("label_space"):
            raise ChainError(f"the run was trained on {checkpoint.meta.get('label_space')} labels but "
                             f"{self.options.data} now gives {self.pairs.label_space.name} labels; it cannot be resumed")
        self.generator.load_state_dict(checkpoint.state_dict)
        self.discriminator.load_state_dict(self.resumed_discriminator)

    def train_step(self, indices: np.ndarray, step: int, precision: Precision) -> dict[str, float]:
        """One generator step, then one discriminator step, on the batch for global ``step``."""
        options, generator, discriminator = self.options, self.generator, self.discriminator
        flips = np.random.default_rng([options.seed, step]).random(len(indices)) < 0.5 if options.flip else None
        segmap, real = batch_tensors(self.pairs, indices, generator.config, self.device, flips)
        scaler = precision.scaler

        # The discriminator on real pairs once: its loss later, its features (detached) for matching now.
        discriminator.requires_grad_(True)
        with precision.autocast():
            real_features = discriminator(segmap, real)
            fake = generator(segmap)
            discriminator.requires_grad_(False)  # the generator's loss must not touch D's gradients
            fake_features = discriminator(segmap, fake)
            g_gan = hinge_generator_loss(fake_features)
            g_feat = feature_matching_loss(real_features, fake_features) * options.lambda_feat
            g_vgg = (self.vgg(fake.float(), real) * options.lambda_vgg if self.vgg is not None
                     else torch.zeros_like(g_gan))
            g_loss = g_gan + g_feat + g_vgg
        self.optimizers["generator"].zero_grad(set_to_none=True)
        scaler.scale(g_loss).backward()
        scaler.step(self.optimizers["generator"])

        discriminator.requires_grad_(True)
        with precision.autocast():
            fake_features = discriminator(segmap, fake.detach())
            d_real, d_fake = hinge_discriminator_loss(real_features, fake_features)
            d_loss = d_real + d_fake
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        scaler.scale(d_loss).backward()
        scaler.step(self.optimizers["discriminator"])
        scaler.update()
        values = {"g_gan": g_gan, "g_feat": g_feat, "g_vgg": g_vgg, "g_loss": g_loss, "d_real": d_real,
                  "d_fake": d_fake, "d_loss": d_loss}
        return {key: round(float(value.detach()), 6) for key, value in values.items()}

    def saved(self) -> Saved:
        """The generator is the checkpoint ``--synth spade`` paints with; the discriminator travels beside it."""
        return Saved(config=self.generator.config, state_dict=self.generator.state_dict(),
                     meta={"label_space": self.pairs.label_space.name, "trained_on": self.pairs.source,
                           "pairs": len(self.pairs)},
                     extra_files={DISCRIMINATOR_FILE: self.discriminator.state_dict()})

    def sample_grid(self) -> tuple[torch.Tensor, int]:
        return sample_grid(self.generator, self.pairs, self.device)

    def describe(self, record: dict[str, Any]) -> str:
        return (f"ep {record['epoch']} G {record['g_gan']:.3f} feat {record['g_feat']:.3f} "
                f"D real {record['d_real']:.3f} fake {record['d_fake']:.3f}")


def _training_pairs(options: SpadeTrainOptions, segmenter: Any, out_dir: Path,
                    display: TrainingDisplay) -> PairCache:
    size = training_size(options.size)
    if segmenter is None:
        return build_dataset_cache(options.data, options.split, out_dir / "pairs", size=size,
                                   progress=display.decoding(f"{Path(options.data).name} {options.split}"))
    trim = Trim(start=options.start, duration=options.duration, max_frames=options.max_frames)
    frames = build_frame_cache(options.data, out_dir / "frames", size=size, trim=trim,
                               progress=display.decoding(Path(options.data).name))
    frames_key = json.loads((frames.path.parent / FRAMES_META).read_text())
    return build_pseudo_label_cache(frames.frames, frames_key, segmenter, options.seg, options.seg_weights,
                                    out_dir / "pairs", progress=display.decoding(f"labelling with {options.seg}"))


def batch_tensors(pairs: PairCache, indices: np.ndarray, config: SPADEConfig, device: torch.device,
                  flips: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(segmap, real image in [-1, 1]) for pairs ``indices``, flipped left-right where ``flips``."""
    images = np.array(pairs.images[indices])
    labels = np.array(pairs.labels[indices]).astype(np.int64)
    if flips is not None and flips.any():
        images[flips] = images[flips, :, ::-1]
        labels[flips] = labels[flips, :, ::-1]
    ids = torch.from_numpy(labels).to(device)
    segmap = make_spade_input(ids, ids, config, channels_last=device.type == "cuda")
    real = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    return segmap, real.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else real


@torch.no_grad()
def sample_grid(generator: SPADEGenerator, pairs: PairCache, device: torch.device,
                count: int = SAMPLE_COUNT) -> tuple[torch.Tensor, int]:
    """Label maps, real images and the generator's paintings (eval mode) for fixed pairs, one row each."""
    indices = np.unique(np.linspace(0, len(pairs) - 1, min(count, len(pairs))).round().astype(int))
    segmap, real = batch_tensors(pairs, indices, generator.config, device)
    was_training = generator.training
    generator.eval()
    try:
        fake = generator(segmap).float()
    finally:
        generator.train(was_training)
    colours = torch.from_numpy(pairs.label_space.colorize(np.array(pairs.labels[indices])))
    colours = colours.permute(0, 3, 1, 2).float().div(255)
    return torch.cat([colours, real.float().cpu().add(1).div(2), fake.cpu().add(1).div(2)]), len(indices)


__all__ = ["SpadeTrainOptions", "SpadeTrainer", "TrainingInterrupted", "sample_grid", "train_spade"]
