"""The stages that ship with chain, described for the registry (`chain.stages.registry`), which
loads this list the first time stages are asked for.

A description is what `chain list` shows and what a run is checked against before it starts:
names, variants, label spaces, options and where the weights are. Nothing here imports torch or a
stage's module: each builder below imports its stage's module when called, so listing stages takes a fraction of a second
and a missing SPADE checkpoint is refused before any network code loads. The tables a stage's
module shares with its description (each variant's label space, weights and background) are the
variant records of `chain.stages.variants`, one per variant.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from chain.labels import get_label_space
from chain.stages.hub import in_cache_or_folder
from chain.stages.spec import StageContext, StageSpec, WeightsStatus
from chain.stages.variants import (
    CONTROLNET,
    CONTROLNET_BASE_REPO,
    DEEPLAB,
    DEEPLAB_MNV2,
    MASK2FORMER,
    SEGFORMER,
    SPADE,
    Variants,
)
from chain.weights import locations
from chain.weights.locations import CONFIG_FILE, RANDOM, VAEGAN_HOW_TO_TRAIN

if TYPE_CHECKING:
    from chain.stages.base import Segmenter, Synthesizer

CONTROLNET_OPTIONS = ("prompt", "negative_prompt", "steps", "guidance", "control_scale", "seed", "scheduler", "size",
                      "noise", "cross_frame", "img2img", "attention_slicing", "cpu_offload", "base", "controlnet")


# A stage with variants is given its variant resolved (`StageSpec.resolve_variant`: the default when
# none is named), so the weights and builders below index the variant records directly.


def _deeplab_weights(variant: str | None, weights_arg: str | None) -> WeightsStatus:
    if weights_arg == RANDOM:
        return WeightsStatus("random", True)
    if weights_arg is not None:
        return WeightsStatus(weights_arg, Path(weights_arg).is_file())
    record = DEEPLAB[variant]
    cache = record.weights_location()
    return WeightsStatus(str(cache), cache.is_file(), how_to_get=record.how_to_get_weights())


def _deeplab_mnv2_weights(variant: str | None, weights_arg: str | None) -> WeightsStatus:
    record = DEEPLAB_MNV2[variant]
    path = Path(weights_arg) if weights_arg else record.weights_location()
    return WeightsStatus(str(path), (path / CONFIG_FILE).is_file(), refused_if_missing=True,
                         how_to_get=record.how_to_get_weights(location=path))


def _spade_weights(variant: str | None, weights_arg: str | None) -> WeightsStatus:
    record = SPADE[variant]
    path = Path(weights_arg) if weights_arg else record.weights_location()
    return WeightsStatus(str(path), path.exists(), how_to_get=record.how_to_get_weights(), refused_if_missing=True)


def _vaegan_weights(variant: str | None, weights_arg: str | None) -> WeightsStatus:
    if weights_arg is None:
        return WeightsStatus("none given", False, how_to_get=VAEGAN_HOW_TO_TRAIN, refused_if_missing=True)
    folder, present = locations.find_vaegan(weights_arg)
    return WeightsStatus(str(folder), present, how_to_get=VAEGAN_HOW_TO_TRAIN)


def _hub_weights(variants: Variants | None) -> Callable[[str | None, str | None], WeightsStatus]:
    """The weights status of a transformers stage: a family's variant (its Hub repository) or, for
    ``hf``, the repository or folder given as the variant."""
    def status(variant: str | None, weights_arg: str | None) -> WeightsStatus:
        source = weights_arg or (variants[variant].source if variants is not None and variant else variant)
        if not source:
            return WeightsStatus("a Hub repository id or save_pretrained folder", False,
                                 how_to_get="--seg hf:REPO_OR_FOLDER")
        folder = Path(source).expanduser().is_dir()
        return WeightsStatus(str(Path(source).expanduser()) if folder else f"{source} (Hugging Face cache)",
                             in_cache_or_folder(source, "config.json"), how_to_get=f"hf download {source}")
    return status


def _controlnet_weights(variant: str | None, weights_arg: str | None) -> WeightsStatus:
    """Whether the ControlNet and the base model are in the Hugging Face cache (nothing is fetched)."""
    record = CONTROLNET[variant]
    controlnet = weights_arg or record.source
    present = all(in_cache_or_folder(repo, file) for repo, file in ((controlnet, "config.json"),
                                                                      (CONTROLNET_BASE_REPO, "model_index.json")))
    return WeightsStatus(f"{controlnet} + {CONTROLNET_BASE_REPO} (Hugging Face cache)", present,
                         how_to_get=record.how_to_get_weights(controlnet))


# Each stage's code (and torch with it) is imported only when that stage is built.


def _build_controlnet(variant: str | None, context: StageContext) -> Segmenter | Synthesizer:
    from chain.stages.controlnet import build_controlnet

    return build_controlnet(variant, context)


def _build_deeplab(variant: str | None, context: StageContext) -> Segmenter | Synthesizer:
    from chain.stages.deeplab import build_deeplab

    return build_deeplab(variant, context)


def _build_deeplab_mnv2(variant: str | None, context: StageContext) -> Segmenter | Synthesizer:
    from chain.stages.deeplab_mnv2 import build_deeplab_mnv2

    return build_deeplab_mnv2(variant, context)


def _build_hf(variant: str | None, context: StageContext) -> Segmenter | Synthesizer:
    from chain.stages.hf_segmenter import build_hf

    return build_hf(variant, context)


def _build_hub_model(variants: Variants, variant: str | None, context: StageContext) -> Segmenter | Synthesizer:
    from chain.stages.hf_segmenter import build_hub_model

    return build_hub_model(variants, variant, context)


def _build_colorize(variant: str | None, context: StageContext) -> Segmenter | Synthesizer:
    from chain.stages.lookup import build_colorize

    return build_colorize(variant, context)


def _build_palette(variant: str | None, context: StageContext) -> Segmenter | Synthesizer:
    from chain.stages.lookup import build_palette

    return build_palette(variant, context)


def _build_saved_labels(variant: str | None, context: StageContext) -> Segmenter | Synthesizer:
    from chain.stages.lookup import build_saved_labels

    return build_saved_labels(variant, context)


def _build_spade(variant: str | None, context: StageContext) -> Segmenter | Synthesizer:
    from chain.stages.spade import build_spade

    return build_spade(variant, context)


def _build_vaegan(variant: str | None, context: StageContext) -> Segmenter | Synthesizer:
    from chain.stages.vaegan import build_vaegan

    return build_vaegan(variant, context)


def _hub_family(name: str, variants: Variants, summary: str) -> StageSpec:
    return StageSpec(name=name, kind="segmenter", build=functools.partial(_build_hub_model, variants),
                     summary=summary, variants=tuple(variants), default_variant=variants.default,
                     label_space=variants.label_space, weights=_hub_weights(variants), options=("size",))


BUILTIN_STAGES: tuple[StageSpec, ...] = (
    StageSpec(name="deeplab", kind="segmenter", build=_build_deeplab,
              summary="torchvision DeepLabV3, PASCAL VOC classes (COCO-VOC weights)", variants=tuple(DEEPLAB),
              default_variant=DEEPLAB.default, label_space=DEEPLAB.label_space, weights=_deeplab_weights,
              options=("size",)),
    StageSpec(name="deeplab-mnv2", kind="segmenter", build=_build_deeplab_mnv2,
              summary="DeepLabV3-MobileNetV2 ported from TF Lite (chain import tflite)",
              variants=tuple(DEEPLAB_MNV2), default_variant=DEEPLAB_MNV2.default,
              label_space=DEEPLAB_MNV2.label_space, weights=_deeplab_mnv2_weights,
              options=("fit", "size", "quantization", "backend")),
    StageSpec(name="palette", kind="segmenter", build=_build_palette,
              summary="nearest palette colour of a label space (variant: any space; feed cartoons and 8-bit games in)",
              default_variant="coco-stuff", label_space=lambda variant: get_label_space(variant or "coco-stuff").name),
    StageSpec(name="labels", kind="segmenter", build=_build_saved_labels,
              summary="label maps saved earlier with --save-labels (variant: the folder, --seg labels:DIR)"),
    StageSpec(name="colorize", kind="synthesizer", build=_build_colorize,
              summary="paint label maps with their palette (variant: a label space; default: the segmenter's)",
              label_space=lambda variant: variant or "(segmenter's)"),
    StageSpec(name="spade", kind="synthesizer", build=_build_spade,
              summary="NVIDIA SPADE/GauGAN generator (NVlabs checkpoints or chain-trained folders)",
              variants=tuple(SPADE), default_variant=SPADE.default, label_space=SPADE.label_space,
              weights=_spade_weights,
              options=("fit", "size")),
    StageSpec(name="vaegan", kind="synthesizer", build=_build_vaegan,
              summary="VAE-GAN autoencoder (Larsen et al. 2015) trained on a film with `chain train vaegan`: "
                      "reconstructs frames (--seg none --synth-weights DIR)",
              weights=_vaegan_weights, options=("latent_noise", "seed", "batch", "smooth")),
    StageSpec(name="controlnet", kind="synthesizer", build=_build_controlnet,
              summary="Stable Diffusion 1.5 + segmentation ControlNet (diffusers); a prompt sets the style",
              variants=tuple(CONTROLNET), default_variant=CONTROLNET.default, label_space=CONTROLNET.label_space,
              weights=_controlnet_weights, options=CONTROLNET_OPTIONS),
    StageSpec(name="hf", kind="segmenter", build=_build_hf,
              summary="any transformers semantic/instance/panoptic segmentation model: --seg hf:REPO_OR_FOLDER",
              label_space=lambda variant: "(the model's)", weights=_hub_weights(None), options=("size",)),
    _hub_family("mask2former", MASK2FORMER,
                "Mask2Former (transformers): COCO panoptic 133 classes (snow, sand, baseball bat...), or ADE20K"),
    _hub_family("segformer", SEGFORMER, "SegFormer (transformers), ADE20K 150 classes"),
)
