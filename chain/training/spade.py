"""Train a SPADE generator: ``chain train spade --data DATASET --out DIR`` (or a video with ``--seg``).

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chain.datasets.frames import META_FILE as FRAMES_META, BatchSampler, build_frame_cache, training_size
from chain.datasets.pairs import PairCache, build_dataset_cache, build_pseudo_label_cache, dataset_layout
from chain.device import Precision, resolve_device
from chain.errors import ChainError
from chain.labels import LabelSpace, get_label_space
from chain.media import Trim
from chain.stages.registry import build_stage
from chain.stages.spec import StageContext
from chain.training.common import (LOSS_LOG, OPTIMIZER_FILE, LossLog, TrainingDisplay,
                                   TrainingInterrupted, TrainingLoop, load_optimizer_state, open_run,
                                   optimizer_tensors, plot_run_losses, read_optimizer_state, resumed_options)
from chain.weights.fit import check_fit
from chain.weights.folder import CHECKPOINT_DIR, WEIGHTS_FILE, read_safetensors
from chain.weights.spade import MODEL_KIND, save_spade
from models.spade import UPSAMPLINGS, SPADEConfig, SPADEGenerator, make_spade_input
from models.spade_discriminator import (MultiscaleDiscriminator, PatchDiscriminatorConfig, feature_matching_loss,
                                        hinge_discriminator_loss, hinge_generator_loss, init_weights)

DISCRIMINATOR_FILE = "discriminator.safetensors"
SAMPLES_DIR = "samples"
SAMPLE_COUNT = 6
PLOTTED = ("g_gan", "g_feat", "g_vgg", "d_real", "d_fake")


@dataclass
class SpadeTrainOptions:
    """What defines a SPADE training run. Stored in the checkpoint; all but ``epochs`` must match on resume."""

    data: str
    split: str = "train"
    seg: str | None = None           # labels a video's frames (pseudo-labels); None for a dataset
    seg_weights: str | None = None
    size: str = "256x192"
    ngf: int = 64
    spade_hidden: int = 128          # width of each SPADE block's label MLP (NVlabs: 128)
    ndf: int = 64
    num_d: int = 2
    n_layers_d: int = 4
    batch: int = 8
    epochs: int = 50
    lr: float = 2e-4
    beta1: float = 0.0
    beta2: float = 0.9
    lambda_feat: float = 10.0
    lambda_vgg: float = 10.0
    vgg_weights: str | None = None
    flip: bool = True
    seed: int = 0
    start: float = 0.0
    duration: float | None = None
    max_frames: int | None = None

    RESUMABLE_CHANGES = ("epochs",)

    def __post_init__(self) -> None:
        size = training_size(self.size)
        scale = 2 ** UPSAMPLINGS["normal"]
        if size.width % scale or size.height % scale:
            raise ChainError(f"--size {self.size}: both sides must be multiples of {scale} (e.g. 128x96, 256x192)")
        self.size = str(size)
        for name in ("ngf", "spade_hidden", "ndf", "num_d", "n_layers_d", "batch", "epochs"):
            if getattr(self, name) < 1:
                raise ChainError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or not 0 <= self.beta1 < 1 or not 0 <= self.beta2 < 1:
            raise ChainError(f"need lr > 0 and betas in [0, 1), got {self.lr}, {self.beta1}, {self.beta2}")

    def generator_config(self, space: LabelSpace) -> SPADEConfig:
        """Every id of the space is a one-hot channel, plus the class-boundary edge channel."""
        size = training_size(self.size)
        return SPADEConfig(label_nc=len(space), contain_dontcare_label=False, no_instance=False, ngf=self.ngf,
                           spade_hidden=self.spade_hidden, num_upsampling_layers="normal", crop_size=size.width,
                           aspect_ratio=size.width / size.height)

    def discriminator_config(self, generator: SPADEConfig) -> PatchDiscriminatorConfig:
        return PatchDiscriminatorConfig(input_nc=generator.semantic_nc + 3, ndf=self.ndf, n_layers=self.n_layers_d,
                                        num_d=self.num_d)


@dataclass
class _Networks:
    generator: SPADEGenerator
    discriminator: MultiscaleDiscriminator
    optimizers: dict[str, torch.optim.Optimizer]
    vgg: torch.nn.Module | None


def train_spade(
    data: str | Path,
    out_dir: str | Path,
    *,
    checkpoint_every: int = 500,
    device: str | None = "auto",
    resume: bool = False,
    progress: bool = True,
    max_steps: int | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    **given: Any,
) -> Path:
    """Train a SPADE generator on ``data``; returns the checkpoint folder (``out_dir/checkpoint``).

    ``given`` are `SpadeTrainOptions` fields; None means the default (or, with ``resume``,
    the checkpoint's value). ``max_steps`` stops with a checkpoint after that many steps in
    all, leaving the run resumable. Raises `TrainingInterrupted` (after saving) on Ctrl-C.
    """
    out_dir = Path(out_dir)
    given = {"data": str(data), **{k: v for k, v in given.items() if v is not None}}
    unknown = set(given) - {f.name for f in dataclasses.fields(SpadeTrainOptions)}
    if unknown:
        raise TypeError(f"unknown training options: {', '.join(sorted(unknown))}")
    if checkpoint_every < 1 or (max_steps is not None and max_steps < 1):
        raise ChainError("--checkpoint-every and --max-steps must be >= 1")
    checkpoint_path = out_dir / CHECKPOINT_DIR
    checkpoint = open_run(out_dir, checkpoint_path, resume=resume, expect_model=MODEL_KIND)
    if checkpoint is not None:
        options = resumed_options(SpadeTrainOptions, checkpoint.meta["train"], given, input_field="data")
    else:
        options = SpadeTrainOptions(**given)
    # A checkpoint is checked against the networks its options make before any is built (a damaged
    # config could ask for any size) and before any other work.
    if checkpoint is not None:
        resumed_discriminator = _check_resumable(checkpoint, checkpoint_path, options)
        resumed_optimizers = read_optimizer_state(checkpoint_path)
    device = resolve_device(device)
    # Cheap checks first, so a mistake is one line rather than an error under a progress bar.
    if options.seg is None:
        dataset_layout(options.data, options.split)
    elif not Path(options.data).exists():
        raise ChainError(f"input not found: {options.data}")
    if options.vgg_weights and not Path(options.vgg_weights).is_file():
        raise ChainError(f"VGG-19 weights not found: {options.vgg_weights}")
    # The labelling segmenter is built before anything is shown, so a bad name or weights fail in one line.
    segmenter = (build_stage("segmenter", options.seg, StageContext(weights=options.seg_weights, device=device))
                 if options.seg is not None else None)

    with TrainingDisplay(progress) as display:
        # 1. Pairs: a dataset split, or a video's frames and their pseudo-labels; built once, then reused.
        pairs = _training_pairs(options, segmenter, out_dir, display)
        sampler = BatchSampler(len(pairs), options.batch, options.seed)
        total_steps = options.epochs * sampler.steps_per_epoch
        stop = min(total_steps, max_steps) if max_steps is not None else total_steps

        # 2. Networks and optimizers: fresh from the seed, or as checkpointed.
        nets = _build_networks(options, pairs.label_space, device)
        precision = Precision(device)
        step = 0
        if checkpoint is not None:
            if pairs.label_space.name != checkpoint.meta.get("label_space"):
                raise ChainError(f"the run was trained on {checkpoint.meta.get('label_space')} labels but "
                                 f"{options.data} now gives {pairs.label_space.name} labels; it cannot be resumed")
            nets.generator.load_state_dict(checkpoint.state_dict)
            nets.discriminator.load_state_dict(resumed_discriminator)
            load_optimizer_state(nets.optimizers, None, resumed_optimizers, checkpoint_path)
            precision.load_state_dict(checkpoint.meta.get("scaler"))
            step = int(checkpoint.meta["step"])
        log = LossLog(out_dir / LOSS_LOG, keep_through=step)

        def save(at_step: int) -> None:
            _save(checkpoint_path, nets, precision, options, pairs, sampler, at_step, total_steps, device)

        # 3. Train until the last epoch ends (or max_steps), with samples each epoch.
        loop = TrainingLoop(
            train_step=lambda at: _train_step(nets, precision, pairs, sampler, at, options, device),
            describe=lambda r: (f"ep {r['epoch']} G {r['g_gan']:.3f} feat {r['g_feat']:.3f} "
                                f"D real {r['d_real']:.3f} fake {r['d_fake']:.3f}"),
            save=save,
            end_of_epoch=lambda epoch: write_samples(nets.generator, pairs,
                                                     out_dir / SAMPLES_DIR / f"epoch_{epoch:03d}.png", device),
            plot=lambda: plot_run_losses(out_dir, PLOTTED, "SPADE training"),
            steps_per_epoch=sampler.steps_per_epoch, checkpoint_every=checkpoint_every,
            resume_hint=f"chain train spade --data {options.data} --out {out_dir} --resume")
        loop.run(step=step, stop=stop, total_steps=total_steps, log=log, display=display,
                 checkpoint_path=checkpoint_path, on_step=on_step)
    return checkpoint_path


def _check_resumable(checkpoint: Any, path: Path, options: SpadeTrainOptions) -> dict[str, torch.Tensor]:
    """Check a checkpoint's generator and discriminator weights against the networks its options
    make, on the meta device; returns the discriminator's weights."""
    generator_config = options.generator_config(get_label_space(str(checkpoint.meta.get("label_space"))))
    check_fit(lambda: SPADEGenerator(generator_config), checkpoint.state_dict, source=path / WEIGHTS_FILE,
              what="SPADE generator its training options describe")
    if not (path / DISCRIMINATOR_FILE).is_file():
        raise ChainError(f"{path / DISCRIMINATOR_FILE} is missing: the checkpoint cannot be resumed (it can still "
                         "be used to run)")
    discriminator = read_safetensors(path / DISCRIMINATOR_FILE)
    check_fit(lambda: MultiscaleDiscriminator(options.discriminator_config(generator_config)), discriminator,
              source=path / DISCRIMINATOR_FILE, what="discriminator its training options describe")
    return discriminator


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


def _build_networks(options: SpadeTrainOptions, space: LabelSpace, device: torch.device) -> _Networks:
    torch.manual_seed(options.seed)
    generator_config = options.generator_config(space)
    generator = SPADEGenerator(generator_config)
    discriminator = MultiscaleDiscriminator(options.discriminator_config(generator_config))
    init_weights(generator)
    init_weights(discriminator)
    memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    generator = generator.to(device, memory_format=memory_format).train()
    discriminator = discriminator.to(device, memory_format=memory_format).train()
    betas = (options.beta1, options.beta2)
    optimizers = {
        "generator": torch.optim.Adam(generator.parameters(), lr=options.lr / 2, betas=betas),
        "discriminator": torch.optim.Adam(discriminator.parameters(), lr=options.lr * 2, betas=betas),
    }
    vgg = None
    if options.vgg_weights:
        from chain.training.perceptual import VGGPerceptualLoss

        vgg = VGGPerceptualLoss(options.vgg_weights).to(device)
    return _Networks(generator, discriminator, optimizers, vgg)


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


def _train_step(nets: _Networks, precision: Precision, pairs: PairCache, sampler: BatchSampler, step: int,
                options: SpadeTrainOptions, device: torch.device) -> dict[str, float]:
    """One generator step, then one discriminator step, on the batch for global ``step``."""
    generator, discriminator = nets.generator, nets.discriminator
    indices = sampler.batch(step)
    flips = np.random.default_rng([options.seed, step]).random(len(indices)) < 0.5 if options.flip else None
    segmap, real = batch_tensors(pairs, indices, generator.config, device, flips)
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
        g_vgg = nets.vgg(fake.float(), real) * options.lambda_vgg if nets.vgg is not None else torch.zeros_like(g_gan)
        g_loss = g_gan + g_feat + g_vgg
    nets.optimizers["generator"].zero_grad(set_to_none=True)
    scaler.scale(g_loss).backward()
    scaler.step(nets.optimizers["generator"])

    discriminator.requires_grad_(True)
    with precision.autocast():
        fake_features = discriminator(segmap, fake.detach())
        d_real, d_fake = hinge_discriminator_loss(real_features, fake_features)
        d_loss = d_real + d_fake
    nets.optimizers["discriminator"].zero_grad(set_to_none=True)
    scaler.scale(d_loss).backward()
    scaler.step(nets.optimizers["discriminator"])
    scaler.update()
    values = {"g_gan": g_gan, "g_feat": g_feat, "g_vgg": g_vgg, "g_loss": g_loss, "d_real": d_real, "d_fake": d_fake,
              "d_loss": d_loss}
    return {key: round(float(value.detach()), 6) for key, value in values.items()}


def _save(path: Path, nets: _Networks, precision: Precision, options: SpadeTrainOptions, pairs: PairCache,
          sampler: BatchSampler, step: int, total_steps: int, device: torch.device) -> Path:
    meta = {
        "label_space": pairs.label_space.name,
        "trained_on": pairs.source,
        "step": step,
        "epoch": step // sampler.steps_per_epoch,
        "steps_per_epoch": sampler.steps_per_epoch,
        "total_steps": total_steps,
        "complete": step >= total_steps,
        "pairs": len(pairs),
        "train": dataclasses.asdict(options),
        "device": str(device),
        "precision": precision.name,
        "scaler": precision.state_dict(),
    }
    return save_spade(nets.generator, path, meta, extra_files={DISCRIMINATOR_FILE: nets.discriminator.state_dict(),
                                                               OPTIMIZER_FILE: optimizer_tensors(nets.optimizers)})


@torch.no_grad()
def write_samples(generator: SPADEGenerator, pairs: PairCache, path: Path, device: torch.device,
                  count: int = SAMPLE_COUNT) -> Path:
    """Label maps, real images and the generator's paintings (eval mode) for fixed pairs, one row each."""
    from torchvision.utils import save_image

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
    grid = torch.cat([colours, real.float().cpu().add(1).div(2), fake.cpu().add(1).div(2).clamp(0, 1)])
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.stem}.partial{path.suffix}")
    save_image(grid, str(staging), nrow=len(indices), padding=2, format="png")
    staging.replace(path)
    return path


__all__ = ["SpadeTrainOptions", "TrainingInterrupted", "train_spade", "write_samples"]
