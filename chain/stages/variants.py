"""The variants of the built-in stages, one record each: what a stage's description
(`chain.stages.builtin`) and its code share, in a module both import (the code must not import the
descriptions, which build it).

A `Variant` carries every fact of one variant, as torchvision's weights enums carry theirs: the
label space it labels or paints in, where its weights come from, where chain keeps them and how to
get them, and, for a synthesizer, what the segmenter's catch-all class becomes. A stage's variants
are one `Variants` table; its first variant is the default. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from chain.labels import ADE20K, CITYSCAPES, COCO_PANOPTIC, COCO_STUFF, VOC
from chain.weights import locations


@dataclass(frozen=True)
class Variant:
    """One variant of a built-in stage (``NAME:VARIANT`` on the command line)."""

    #: What users type after the colon.
    name: str
    #: The label space it labels (a segmenter) or paints from (a synthesizer), by name.
    label_space: str
    #: Where its weights come from: a Hugging Face Hub repository, a download URL, or the TF Lite
    #: file `chain import tflite` reads. None where the weights are only where chain keeps them.
    source: str | None = None
    #: A synthesizer's painting of the segmenter's catch-all class (VOC's background): something it
    #: paints convincingly behind people and things. None keeps the conversion's fallback.
    default_background: str | None = None
    #: Where chain looks for the weights when none are given (``location(name)``, read when asked:
    #: it follows ``$CHAIN_WEIGHTS``); None where a library keeps them in its own cache (the Hub's).
    location: Callable[[str], Path] | None = None
    #: How a user gets missing weights: ``how_to_get(variant, source, location)``, one phrase for
    #: messages, naming the source and location in use (a user's ``--seg-weights`` replaces them).
    how_to_get: Callable[[Variant, str | None, Path | str | None], str] | None = None

    def weights_location(self) -> Path | None:
        """Where chain looks for this variant's weights when none are given (None: a library's cache)."""
        return self.location(self.name) if self.location is not None else None

    def how_to_get_weights(self, source: str | None = None, location: Path | str | None = None) -> str:
        """How to get the weights from ``source`` into ``location`` (by default this variant's own)."""
        if self.how_to_get is None:
            return ""
        return self.how_to_get(self, source or self.source,
                               location if location is not None else self.weights_location())


class Variants(Mapping[str, Variant]):
    """A stage's variants by name, in the order ``chain list`` shows them; the first is the default."""

    def __init__(self, *variants: Variant) -> None:
        self._variants = {variant.name: variant for variant in variants}
        #: The variant a stage named without one uses.
        self.default: str = variants[0].name

    def __getitem__(self, name: str) -> Variant:
        return self._variants[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._variants)

    def __len__(self) -> int:
        return len(self._variants)

    def label_space(self, variant: str | None) -> str:
        """The space ``variant`` speaks (the default variant's for None): a `StageSpec.label_space`."""
        return self[variant if variant is not None else self.default].label_space

    def sources(self) -> dict[str, str]:
        """Variant → where its weights come from (the Hub repositories of a transformers family)."""
        return {name: variant.source for name, variant in self.items() if variant.source is not None}


def _downloaded(variant: Variant, source: str | None, location: Path | str | None) -> str:
    return f"downloaded on first use from {source}"


def _imported(variant: Variant, source: str | None, location: Path | str | None) -> str:
    return f"chain import tflite {source} --labels {variant.name} --out {location}"


def _spade(variant: Variant, source: str | None, location: Path | str | None) -> str:
    return locations.spade_how_to_get(variant.name)


def _hub(variant: Variant, source: str | None, location: Path | str | None) -> str:
    return f"hf download {source}"


def _controlnet(variant: Variant, source: str | None, location: Path | str | None) -> str:
    return f"hf download {source}; hf download {CONTROLNET_BASE_REPO}"


#: torchvision's DeepLabV3 (COCO-VOC weights): VOC's 21 classes.
DEEPLAB = Variants(*(Variant(name, VOC.name, source=url, location=locations.deeplab_cache_path, how_to_get=_downloaded)
                     for name, url in locations.DEEPLAB_URLS.items()))
#: DeepLabV3-MobileNetV2 ported from TF Lite: each file labels the space it is named after.
DEEPLAB_MNV2 = Variants(*(Variant(name, name, source=file, location=locations.deeplab_mnv2_checkpoint,
                                  how_to_get=_imported)
                          for name, file in locations.DEEPLAB_MNV2_FILES.items()))
#: NVIDIA's SPADE generators (NVlabs checkpoints), each painting from its dataset's space.
SPADE = Variants(
    Variant("coco", COCO_STUFF.name, default_background="grass", location=locations.spade_weights_path,
            how_to_get=_spade),
    Variant("ade20k", ADE20K.name, default_background="grass", location=locations.spade_weights_path,
            how_to_get=_spade),
    Variant("cityscapes", CITYSCAPES.name, default_background="vegetation", location=locations.spade_weights_path,
            how_to_get=_spade),
)
#: Meta's Mask2Former ports on the Hub.
MASK2FORMER = Variants(
    Variant("coco", COCO_PANOPTIC.name, source="facebook/mask2former-swin-tiny-coco-panoptic", how_to_get=_hub),
    Variant("coco-large", COCO_PANOPTIC.name, source="facebook/mask2former-swin-large-coco-panoptic", how_to_get=_hub),
    Variant("ade20k", ADE20K.name, source="facebook/mask2former-swin-tiny-ade-semantic", how_to_get=_hub),
    Variant("ade20k-large", ADE20K.name, source="facebook/mask2former-swin-large-ade-semantic", how_to_get=_hub),
)
#: NVIDIA's SegFormers on the Hub, ADE20K's 150 classes.
SEGFORMER = Variants(
    Variant("ade20k", ADE20K.name, source="nvidia/segformer-b2-finetuned-ade-512-512", how_to_get=_hub),
    Variant("ade20k-b0", ADE20K.name, source="nvidia/segformer-b0-finetuned-ade-512-512", how_to_get=_hub),
    Variant("ade20k-b4", ADE20K.name, source="nvidia/segformer-b4-finetuned-ade-512-512", how_to_get=_hub),
)
#: The Stable Diffusion 1.5 base every segmentation ControlNet runs on.
CONTROLNET_BASE_REPO = "stable-diffusion-v1-5/stable-diffusion-v1-5"
#: The segmentation ControlNets, conditioned on ADE20K label colours.
CONTROLNET = Variants(
    Variant("v11", ADE20K.name, source="lllyasviel/control_v11p_sd15_seg", how_to_get=_controlnet),
    Variant("v10", ADE20K.name, source="lllyasviel/sd-controlnet-seg", how_to_get=_controlnet),
)
