"""The stages that ship with chain, described for the registry (`chain.stages.registry`), which
loads this list the first time stages are asked for.

A description is what `chain list` shows and what a run is checked against before it starts:
names, variants, label spaces, options and where the weights are. Nothing here imports torch or a
stage's module: each builder below imports its stage's module when called, so listing stages takes a fraction of a second
and a missing SPADE checkpoint is refused before any network code loads. The tables a stage's
module shares with its description (its Hub repositories) live in `chain.stages.variants`, once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from chain.labels import ADE20K, VOC, get_label_space
from chain.stages.hub import in_cache_or_folder
from chain.stages.spec import StageContext, StageSpec, WeightsStatus
from chain.stages.variants import (
    CONTROLNET_BASE_REPO,
    CONTROLNET_REPOS,
    MASK2FORMER_REPOS,
    SEGFORMER_REPOS,
    SPADE_SPACES,
)
from chain.weights import locations
from chain.weights.locations import CONFIG_FILE, DEEPLAB_MNV2_FILES, DEEPLAB_URLS, RANDOM, VAEGAN_HOW_TO_TRAIN

if TYPE_CHECKING:
    from chain.stages.base import Segmenter, Synthesizer

CONTROLNET_OPTIONS = ("prompt", "negative_prompt", "steps", "guidance", "control_scale", "seed", "scheduler", "size",
                      "noise", "cross_frame", "img2img", "attention_slicing", "cpu_offload", "base", "controlnet")


def _deeplab_weights(variant: str | None, weights_arg: str | None) -> WeightsStatus:
    if weights_arg == RANDOM:
        return WeightsStatus("random", True)
    if weights_arg is not None:
        return WeightsStatus(weights_arg, Path(weights_arg).is_file())
    cache = locations.deeplab_cache_path(variant or "resnet50")
    return WeightsStatus(str(cache), cache.is_file(),
                         how_to_get=f"downloaded on first use from {DEEPLAB_URLS[variant or 'resnet50']}")


def _deeplab_mnv2_weights(variant: str | None, weights_arg: str | None) -> WeightsStatus:
    variant = variant or "voc"
    path = Path(weights_arg) if weights_arg else locations.deeplab_mnv2_checkpoint(variant)
    return WeightsStatus(str(path), (path / CONFIG_FILE).is_file(), refused_if_missing=True,
                         how_to_get=f"chain import tflite {DEEPLAB_MNV2_FILES[variant]} --labels {variant} --out {path}")


def _spade_weights(variant: str | None, weights_arg: str | None) -> WeightsStatus:
    variant = variant or "coco"
    path = Path(weights_arg) if weights_arg else locations.spade_weights_path(variant)
    return WeightsStatus(str(path), path.exists(), how_to_get=locations.spade_how_to_get(variant), refused_if_missing=True)


def _vaegan_weights(variant: str | None, weights_arg: str | None) -> WeightsStatus:
    if weights_arg is None:
        return WeightsStatus("none given", False, how_to_get=VAEGAN_HOW_TO_TRAIN, refused_if_missing=True)
    folder, present = locations.find_vaegan(weights_arg)
    return WeightsStatus(str(folder), present, how_to_get=VAEGAN_HOW_TO_TRAIN)


def _hub_weights(repos: dict[str, str] | None) -> Callable[[str | None, str | None], WeightsStatus]:
    def status(variant: str | None, weights_arg: str | None) -> WeightsStatus:
        source = weights_arg or (repos[variant] if repos and variant else variant)
        if not source:
            return WeightsStatus("a Hub repository id or save_pretrained folder", False,
                                 how_to_get="--seg hf:REPO_OR_FOLDER")
        folder = Path(source).expanduser().is_dir()
        return WeightsStatus(str(Path(source).expanduser()) if folder else f"{source} (Hugging Face cache)",
                             in_cache_or_folder(source, "config.json"), how_to_get=f"hf download {source}")
    return status


def _controlnet_weights(variant: str | None, weights_arg: str | None) -> WeightsStatus:
    """Whether the ControlNet and the base model are in the Hugging Face cache (nothing is fetched)."""
    controlnet = weights_arg or CONTROLNET_REPOS[variant or "v11"]
    present = all(in_cache_or_folder(repo, file) for repo, file in ((controlnet, "config.json"),
                                                                      (CONTROLNET_BASE_REPO, "model_index.json")))
    return WeightsStatus(f"{controlnet} + {CONTROLNET_BASE_REPO} (Hugging Face cache)", present,
                         how_to_get=f"hf download {controlnet}; hf download {CONTROLNET_BASE_REPO}")


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


def _build_hub_model(repos: dict[str, str], variant: str | None, context: StageContext) -> Segmenter | Synthesizer:
    from chain.stages.hf_segmenter import build_hub_model

    return build_hub_model(repos, variant, context)


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


def _hub_family(name: str, repos: dict[str, str], summary: str, spaces: dict[str, str]) -> StageSpec:
    return StageSpec(name=name, kind="segmenter", build=functools.partial(_build_hub_model, repos),
                     summary=summary, variants=tuple(repos), default_variant=next(iter(repos)),
                     label_space=lambda variant: spaces[variant or next(iter(repos))], weights=_hub_weights(repos),
                     options=("size",))


BUILTIN_STAGES: tuple[StageSpec, ...] = (
    StageSpec(name="deeplab", kind="segmenter", build=_build_deeplab,
              summary="torchvision DeepLabV3, PASCAL VOC classes (COCO-VOC weights)", variants=tuple(DEEPLAB_URLS),
              default_variant="resnet50", label_space=lambda variant: VOC.name, weights=_deeplab_weights,
              options=("size",)),
    StageSpec(name="deeplab-mnv2", kind="segmenter", build=_build_deeplab_mnv2,
              summary="DeepLabV3-MobileNetV2 ported from TF Lite (chain import tflite)",
              variants=tuple(DEEPLAB_MNV2_FILES), default_variant="voc",
              label_space=lambda variant: get_label_space(variant or "voc").name, weights=_deeplab_mnv2_weights,
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
              variants=tuple(SPADE_SPACES), default_variant="coco",
              label_space=lambda variant: SPADE_SPACES[variant or "coco"].name, weights=_spade_weights,
              options=("fit", "size")),
    StageSpec(name="vaegan", kind="synthesizer", build=_build_vaegan,
              summary="VAE-GAN autoencoder (Larsen et al. 2015) trained on a film with `chain train vaegan`: "
                      "reconstructs frames (--seg none --synth-weights DIR)",
              weights=_vaegan_weights, options=("latent_noise", "seed", "batch", "smooth")),
    StageSpec(name="controlnet", kind="synthesizer", build=_build_controlnet,
              summary="Stable Diffusion 1.5 + segmentation ControlNet (diffusers); a prompt sets the style",
              variants=tuple(CONTROLNET_REPOS), default_variant="v11", label_space=lambda variant: ADE20K.name,
              weights=_controlnet_weights, options=CONTROLNET_OPTIONS),
    StageSpec(name="hf", kind="segmenter", build=_build_hf,
              summary="any transformers semantic/instance/panoptic segmentation model: --seg hf:REPO_OR_FOLDER",
              label_space=lambda variant: "(the model's)", weights=_hub_weights(None), options=("size",)),
    _hub_family("mask2former", MASK2FORMER_REPOS,
                "Mask2Former (transformers): COCO panoptic 133 classes (snow, sand, baseball bat...), or ADE20K",
                {variant: "coco-panoptic" if variant.startswith("coco") else "ade20k" for variant in MASK2FORMER_REPOS}),
    _hub_family("segformer", SEGFORMER_REPOS, "SegFormer (transformers), ADE20K 150 classes",
                dict.fromkeys(SEGFORMER_REPOS, "ade20k")),
)
