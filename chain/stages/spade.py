"""Synthesizer ``spade``: NVIDIA's SPADE (GauGAN) generators paint photos from label maps.

Variants ``coco`` (COCO-Stuff, 182 classes + unlabeled), ``ade20k`` (150 + other) and
``cityscapes`` (35 ids), each with its label space. Weights: ``--synth-weights`` (an
NVlabs ``latest_net_G.pth`` or a chain checkpoint folder), else the NVlabs archive's
``{variant}_pretrained/latest_net_G.pth`` under ``$CHAIN_WEIGHTS/spade/``.

Frame sizes: with ``fit=native`` (default) the generator starts from a latent grid with
the frame's aspect ratio (every layer after ``fc`` is convolutional), so nothing is
squashed; ``fit=squash`` resizes labels to the model's crop as NVIDIA's test script
does. ``size=N`` sets the short side generated (default: the model's crop); the chain
resizes the result to the output size.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from chain.device import inference_context, inference_dtype
from chain.errors import ChainError, ChainWarning, MissingWeightsError
from chain.labels import LabelSpace, get_label_space
from chain.labels.resize import resize_labels
from chain.stages.base import Synthesizer, as_label_tensor
from chain.stages.spec import StageContext
from chain.stages.variants import SPADE
from chain.weights.folder import training_caveat
from chain.weights.locations import CONFIG_FILE, checkpoint_dir
from chain.weights.spade import default_weights_path, load_spade, load_spade_checkpoint
from models.spade import UPSAMPLINGS, SPADEGenerator, make_spade_input

FITS = ("native", "squash")
REFERENCE_NGF = 64  # the width of NVIDIA's released generators (and of `chain train spade`'s default)


class SpadeSynthesizer(Synthesizer):
    """Runs a `SPADEGenerator` on label maps of its space; edges come from label boundaries.

    Args:
        generator: the network (moved to ``device``, eval mode).
        label_space: the space whose ids are the generator's one-hot channels.
        fit: ``"native"`` (keep the frame's aspect ratio) or ``"squash"`` (NVIDIA's crop).
        short_side: pixels of the generated short side; None for the model's crop.
    """

    def __init__(self, generator: SPADEGenerator, *, label_space: LabelSpace, fit: str = "native",
                 short_side: int | None = None, device: torch.device = torch.device("cpu"),
                 default_background: str | None = None, description: str = "") -> None:
        config = generator.config
        channels = config.label_nc + int(config.contain_dontcare_label)
        if channels != len(label_space):
            raise ChainError(f"the SPADE weights have {channels} label channels but label space "
                             f"{label_space.name!r} has {len(label_space)} ids")
        if fit not in FITS:
            raise ChainError(f"spade option fit={fit!r}: choose one of {', '.join(FITS)}")
        if config.use_vae and (fit != "squash" or short_side):
            raise ChainError("this SPADE generator has a VAE (fixed latent grid): use --synth-opt fit=squash")
        # Spectral norm folded once (prepare_for_inference) rather than recomputed every forward;
        # channels_last on every device (SPADE-COCO on 2 CPU cores: 3.73 -> 2.82 s/frame).
        self.generator = generator.prepare_for_inference().to(device).to(memory_format=torch.channels_last)
        self.network = self.generator  # what --compile replaces by its compiled version
        self.device = device
        self.label_space = label_space
        self.fit = fit
        self.short_side = short_side
        self.default_background = default_background
        self.description = description

    def compile(self) -> bool:
        self.network = torch.compile(self.generator)
        return True

    def generation_size(self, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((sh, sw), (H, W))``: the latent grid and generated size for frames of ``height × width``."""
        config = self.generator.config
        scale = 2 ** UPSAMPLINGS[config.num_upsampling_layers]
        sh, sw = config.latent_size
        if self.fit == "native":
            short = max(1, round(self.short_side / scale)) if self.short_side else min(sh, sw)
            long = max(1, round(short * max(height, width) / min(height, width)))
            sh, sw = (short, long) if height <= width else (long, short)
        return (sh, sw), (sh * scale, sw * scale)

    def label_size(self, height: int, width: int) -> tuple[int, int]:
        """The generated size: the generator reads its labels at that resolution."""
        return self.generation_size(height, width)[1]

    @torch.inference_mode()
    def synthesize(self, *, labels: torch.Tensor | np.ndarray | None, frames: np.ndarray) -> torch.Tensor:
        latent, size = self.generation_size(*labels.shape[1:])
        ids = resize_labels(as_label_tensor(labels, self.device), size)
        # Our segmenters give no instance ids; class boundaries stand in for instance edges. The map
        # is built in the dtype the generator computes in (fp16 under CUDA autocast, else fp32).
        segmap = make_spade_input(ids, ids, self.generator.config, inference_dtype(self.device), channels_last=True)
        with inference_context(self.device):
            images = self.network(segmap, latent_size=latent)
        pixels = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return pixels.permute(0, 2, 3, 1)


def build_spade(variant: str | None, context: StageContext) -> SpadeSynthesizer:
    """The ``spade`` synthesizer (``variant`` resolved by the registry: a `chain.stages.variants.SPADE`
    name). Options: ``fit`` (native|squash), ``size`` (short side in pixels)."""
    record = SPADE[variant]
    path = Path(context.weights) if context.weights else default_weights_path(variant)
    if not path.exists():
        if context.weights:
            raise ChainError(f"SPADE weights not found: {path}")
        raise MissingWeightsError(f"SPADE {variant} weights not found at {path}: {record.how_to_get_weights()}")
    space = get_label_space(record.label_space)
    if path.is_dir() and (checkpoint_dir(path) / CONFIG_FILE).is_file():
        path = checkpoint_dir(path)  # the checkpoint itself, or a `chain train spade` run folder
    meta: dict = {}
    if path.is_dir():
        generator, meta = load_spade_checkpoint(path)
        space = get_label_space(meta.get("label_space", space.name))
    else:
        generator = load_spade(path, preset=variant)
    caveat = spade_caveat(generator.config.ngf, meta)
    if caveat:
        warnings.warn(f"SPADE weights {path}: expect paintings that mean little ({caveat}); NVIDIA's pretrained "
                      "generators or a longer `chain train spade` run paint recognisable scenes", ChainWarning,
                      stacklevel=2)
    return SpadeSynthesizer(
        generator, label_space=space, fit=context.choice_option("fit", FITS),
        short_side=context.int_option("size", None, minimum=1), device=context.device,
        # The variant's background belongs to its own space: a checkpoint in another paints without one.
        default_background=record.default_background if space.name == record.label_space else None,
        description=f"SPADE {variant} (ngf {generator.config.ngf}, {path.name})")


def spade_caveat(ngf: int, meta: dict) -> str | None:
    """Why a generator's paintings mean little: ``"trained 12 steps, ngf 8, 1/8 of the reference width"``; None if
    nothing says so (NVIDIA's files record no training, only their width)."""
    reasons = [training_caveat(meta)]
    if ngf < REFERENCE_NGF:
        share = f"1/{REFERENCE_NGF // ngf}" if REFERENCE_NGF % ngf == 0 else f"{ngf / REFERENCE_NGF:.2f}"
        reasons.append(f"ngf {ngf}, {share} of the reference width")
    return ", ".join(reason for reason in reasons if reason) or None
