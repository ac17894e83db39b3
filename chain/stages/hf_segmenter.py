"""Segmenters over transformers: ``hf:REPO_OR_FOLDER``, ``mask2former:VARIANT``, ``segformer:VARIANT``.

Any semantic, instance or panoptic segmentation checkpoint that transformers' auto classes load
(``AutoModelForUniversalSegmentation``: Mask2Former, MaskFormer, OneFormer, EoMT;
``AutoModelForSemanticSegmentation``: SegFormer, UperNet, DPT, BEiT...) with its own
``AutoImageProcessor``. Frames go through the processor (resize, normalise) and the model on
the stage's device, a batch at a time; label maps come from the processor's own
``post_process_semantic_segmentation`` (for mask-classification models: class probabilities
times mask probabilities, summed over queries), at the frame size.

The label space is the model's: a checkpoint whose ``id2label`` is a built-in space's classes
(COCO panoptic, ADE20K...) speaks that space; any other gets a space of its own names
(`chain.labels.model_space`).

Weights load with ``from_pretrained`` from the Hugging Face cache (downloaded on first use
with internet; ``HF_HUB_OFFLINE=1`` keeps it to the cache) or from a local ``save_pretrained``
folder holding the model and its image processor.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np
import torch

from chain.device import inference_context
from chain.errors import ChainError
from chain.labels import LabelSpace
from chain.labels.model_space import class_names, model_label_space
from chain.labels.resize import resize_labels
from chain.stages.base import LABEL_DTYPE, Segmenter
from chain.stages.hub import hub_offline, local_file, missing_model, quiet_loading, short_name
from chain.stages.spec import StageContext
from chain.stages.variants import Variants
from chain.weights.folder import read_json

# The post-processing upsamples every class's scores to the size it is asked for: 133 classes at
# 1080p would be 1.1 GB per frame. Past this many values it is asked for a smaller size, and the
# label map is enlarged by nearest neighbour (the models' own masks are 1/4 of their input).
MAX_SCORE_VALUES = 64 << 20


class TransformersSegmenter(Segmenter):
    """Runs a transformers segmentation model and its image processor on batches of frames.

    Args:
        model: the loaded model (``…ForUniversalSegmentation`` or ``…ForSemanticSegmentation``), on ``device``.
        processor: its image processor.
        label_space: the space label ids are given in.
        class_to_label: ``(C,)`` the label id of each of the model's classes.
        size: a short side (or a square side, for processors that squash to a square) replacing
            the processor's own input size; None keeps it.
        device: where the model runs.
    """

    def __init__(self, model, processor, *, label_space: LabelSpace, class_to_label: np.ndarray,  # noqa: ANN001
                 size: int | None = None, device: torch.device = torch.device("cpu"), description: str = "") -> None:
        self.model = model.eval()
        self.processor = processor
        self.label_space = label_space
        self.device = device
        self.description = description
        self._class_to_label = np.asarray(class_to_label, dtype=np.int64)
        self._lut = torch.from_numpy(self._class_to_label)  # model class → label id, applied on the device
        self._forward_args = set(inspect.signature(model.forward).parameters)
        self._size = _processor_size(processor, size) if size else None

    def _outputs(self, frames: np.ndarray):  # noqa: ANN202 (a transformers ModelOutput)
        images = list(torch.from_numpy(frames).permute(0, 3, 1, 2))  # uint8 CHW, as the processors take them
        kwargs = {"return_tensors": "pt"}
        if self._size is not None:
            kwargs["size"] = self._size
        if "task_inputs" in self._forward_args:  # OneFormer is told which task to do
            kwargs["task_inputs"] = ["semantic"] * len(images)
        inputs = self.processor(images=images, **kwargs).to(self.device)
        with torch.inference_mode(), inference_context(self.device):
            outputs = self.model(**{k: v for k, v in inputs.items() if k in self._forward_args})
        for key, value in outputs.items():  # post-processing in fp32 whatever autocast computed in
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                outputs[key] = value.float()
        return outputs

    def segment(self, frames: np.ndarray, *, indices: np.ndarray,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        return self._labels(self._outputs(frames), size or frames.shape[1:3], len(frames))

    def segment_sizes(self, frames: np.ndarray, *, indices: np.ndarray,
                      sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
        outputs = self._outputs(frames)  # the network once, post-processed per size
        return [self._labels(outputs, size, len(frames)) for size in sizes]

    def _labels(self, outputs: Any, size: tuple[int, int], count: int) -> torch.Tensor:
        height, width = size
        scale = min(1.0, math.sqrt(MAX_SCORE_VALUES / (len(self._class_to_label) * height * width)))
        scored = (max(1, round(height * scale)), max(1, round(width * scale)))
        with torch.inference_mode():
            maps = self.processor.post_process_semantic_segmentation(outputs, target_sizes=[scored] * count)
            classes = resize_labels(torch.stack([m.to(self.device, LABEL_DTYPE) for m in maps]), (height, width))
            return torch.take(self._lut.to(classes.device), classes)

    @torch.inference_mode()
    def probabilities(self, frames: np.ndarray, *, indices: np.ndarray) -> torch.Tensor:
        """Class probabilities from the scores the post-processing ranks, at its own resolution."""
        outputs = self._outputs(frames)
        mask_classification = getattr(outputs, "class_queries_logits", None) is not None
        try:  # the processor's own scores (transformers >= 5)
            results = self.processor.post_process_semantic_segmentation(outputs, return_segmentation_scores=True)
            scores = torch.stack([result.segmentation_scores for result in results]).float()
        except TypeError:
            scores = self._scores(outputs, mask_classification)
            if scores is None:
                return super().probabilities(frames, indices=indices)
        if mask_classification:
            # Σ over queries of P(class | query) × P(pixel in mask | query): normalised per pixel,
            # so that averaging over frames averages distributions (the argmax is unchanged).
            scores = scores / scores.sum(dim=1, keepdim=True).clamp_min(1e-12)
        else:
            scores = scores.softmax(dim=1)  # per-pixel class logits
        reordered = scores.new_zeros((scores.shape[0], len(self.label_space), *scores.shape[2:]))
        reordered[:, torch.as_tensor(self._class_to_label, device=scores.device)] = scores
        return reordered

    @staticmethod
    def _scores(outputs, mask_classification: bool) -> torch.Tensor | None:  # noqa: ANN001
        """The post-processing's scores for processors that do not return them, or None."""
        if mask_classification:  # as Mask2Former's, MaskFormer's and OneFormer's processors compute them
            classes = outputs.class_queries_logits.softmax(dim=-1)[..., :-1]
            return torch.einsum("bqc,bqhw->bchw", classes, outputs.masks_queries_logits.sigmoid())
        logits = getattr(outputs, "logits", None)
        return logits if logits is not None and logits.dim() == 4 else None


def _processor_size(processor, side: int) -> dict[str, int]:  # noqa: ANN001
    """The processor's ``size`` setting with its short side (or square side) replaced by ``side``."""
    size = processor.size if isinstance(processor.size, dict) else dict(processor.size.__dict__)
    if size.get("shortest_edge"):
        if not size.get("longest_edge"):
            return {"shortest_edge": side}
        # Keep the processor's cap on the long side in proportion (Mask2Former's 800/1333).
        return {"shortest_edge": side, "longest_edge": round(size["longest_edge"] * side / size["shortest_edge"])}
    if size.get("height") and size.get("width"):
        return {"height": side, "width": side}
    raise ChainError(f"option size={side}: this model's image processor sizes images as {size}, not by a side")


def load_model(source: str, device: torch.device):  # noqa: ANN201 (transformers' model and processor)
    """Model and image processor from a Hub repository (cache first) or a ``save_pretrained`` folder.

    Raises `MissingWeightsError` (one line, naming the repository and ``hf download``) when the
    model is neither cached nor downloadable, and `ChainError` for a folder that is not a
    transformers segmentation model.
    """
    from transformers import AutoConfig, AutoImageProcessor
    from transformers.models.auto import modeling_auto

    common = {"local_files_only": True} if hub_offline() else {}
    alternative = "pass --seg hf:FOLDER (a transformers save_pretrained folder with its image processor)"
    check_config_files(source)
    with quiet_loading("transformers"):
        try:
            config = AutoConfig.from_pretrained(source, **common)
            processor = AutoImageProcessor.from_pretrained(source, **common)
        except (OSError, ValueError) as error:
            raise missing_model("segmenter", source, alternative, error) from None
        except RecursionError:  # a file downloaded just now, which `check_config_files` could not see before
            check_config_files(source)
            raise ChainError(f"the configuration of {source} nests too deep to read") from None
        for auto, mapping in (("AutoModelForUniversalSegmentation", "MODEL_FOR_UNIVERSAL_SEGMENTATION_MAPPING"),
                              ("AutoModelForSemanticSegmentation", "MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING"),
                              ("AutoModelForInstanceSegmentation", "MODEL_FOR_INSTANCE_SEGMENTATION_MAPPING")):
            if type(config) in getattr(modeling_auto, mapping, {}):
                try:
                    model = getattr(modeling_auto, auto).from_pretrained(source, **common)
                except (OSError, ValueError) as error:
                    raise missing_model("segmenter", source, alternative, error) from None
                except ImportError as error:  # e.g. Mask2Former without scipy
                    reason = " ".join(str(error).split())
                    raise ChainError(f"loading {source} needs a missing package: {reason}") from None
                break
        else:
            raise ChainError(f"{source} holds a {config.model_type!r} model, which is not a segmentation model "
                             "transformers' auto classes load (semantic, instance or panoptic)")
    if not hasattr(processor, "post_process_semantic_segmentation"):
        raise ChainError(f"the image processor of {source} has no semantic post-processing")
    return model.to(device), processor


def check_config_files(source: str) -> None:
    """One line for the JSON files of ``source`` on disk that transformers would choke on: too large or
    deep (its parser recurses until a RecursionError), or a ``config.json`` whose ``id2label`` is
    not classes 0..N-1 named by strings (`class_names`), before transformers reads them."""
    for name in ("config.json", "preprocessor_config.json"):
        path = local_file(source, name)
        if path is None:
            continue  # transformers says what is missing (or downloads it)
        document = read_json(path)
        if name == "config.json" and isinstance(document, dict) and document.get("id2label") is not None:
            class_names(document["id2label"], str(path))


def build_transformers_segmenter(source: str, context: StageContext) -> TransformersSegmenter:
    """A `TransformersSegmenter` of ``source``; option ``size``: the input's short side."""
    size = context.int_option("size", None, minimum=32)
    model, processor = load_model(source, context.device)
    name = f"hf:{short_name(source)}"
    space, table = model_label_space(class_names(model.config.id2label, source), name=name,
                                     description=f"the classes of {source}")
    return TransformersSegmenter(model, processor, label_space=space, class_to_label=table, size=size,
                                 device=context.device,
                                 description=f"{type(model).__name__} {short_name(source)} ({space.name}"
                                             + (f", short side {size})" if size else ")"))


def build_hf(variant: str | None, context: StageContext) -> TransformersSegmenter:
    if variant and context.weights:
        raise ChainError("give the model once: --seg hf:REPO_OR_FOLDER or --seg-weights, not both")
    source = variant or context.weights
    if not source:
        raise ChainError("the hf segmenter needs a model: --seg hf:REPO_OR_FOLDER (a Hub repository id or a "
                         "transformers save_pretrained folder)")
    return build_transformers_segmenter(source, context)


def build_hub_model(variants: Variants, variant: str | None, context: StageContext) -> TransformersSegmenter:
    """A ``mask2former``/``segformer`` variant: its Hub repository (`chain.stages.variants`), or ``--seg-weights``."""
    return build_transformers_segmenter(context.weights or variants[variant].source, context)
