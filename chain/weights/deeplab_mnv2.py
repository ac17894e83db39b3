"""Load and save DeepLabV3-MobileNetV2 checkpoints (`models.deeplab_mnv2`).

They are written by ``chain import tflite`` (`chain.importers.tflite` reads Google's files and
saves through `save_deeplab_mnv2`) and looked for in ``$CHAIN_WEIGHTS/deeplab-mnv2-{variant}``
(`default_checkpoint`) unless ``--seg-weights DIR`` names one. The meta carries what the
segmenter needs beside the weights: the label space, the input size and normalisation, and
which label id each output channel is.
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from chain.errors import ChainError, first_line
from chain.labels import get_label_space
from chain.weights.fit import build_fitted
from chain.weights.folder import load_checkpoint, save_checkpoint
from chain.weights.locations import CONFIG_FILE, deeplab_mnv2_checkpoint
from chain.weights.schema import Field, Schema, integer, items, label_space, mapping, meta_error, number, text
from models.deeplab_mnv2 import ACTIVATION_QUANTIZATIONS, DeepLabMNv2, DeepLabMNv2Config

MODEL_KIND = "deeplab_mnv2"
REMEDY = "make the checkpoint again with `chain import tflite`"
#: A checkpoint's meta: what the segmenter needs beside the weights (`chain.importers.tflite` writes it).
#: Sizes: the segmenter's own --seg-opt size bounds (16) up to a 4K frame's side; normalisation in
#: 0..255 units, where Caffe-style networks divide by 1 and TF's by 127.5.
META_SCHEMA: Schema = {
    "label_space": Field(label_space, required=True),
    "input_size": Field(integer(16, 4096), required=True),
    "normalization": Field(mapping({"mean": Field(items(number(0, 255), length=3), required=True),
                                    "std": Field(items(number(0.01, 1000), length=3), required=True)}),
                           required=True),
    "channel_ids": Field(items(integer(0), unique=True), required=True),
    "label_offset": Field(integer(-65535, 65535)),  # ADE20K's file: -1 (its channel 0 is "other", id 150)
    "source": Field(mapping({"file": Field(text), "sha256": Field(text)})),
    "graph": Field(mapping({})),
}


def default_checkpoint(variant: str) -> Path:
    """Where ``chain import tflite`` output for ``variant`` (voc, ade20k) is looked for."""
    return deeplab_mnv2_checkpoint(variant)


def save_deeplab_mnv2(out_dir: str | os.PathLike, *, config: DeepLabMNv2Config, state_dict: dict[str, torch.Tensor],
                      meta: dict[str, Any]) -> Path:
    """Write a network's config, weights and meta (see `META_SCHEMA`) as our checkpoint folder."""
    return save_checkpoint(out_dir, model=MODEL_KIND, config=config, state_dict=state_dict, meta=meta)


def load_deeplab_mnv2(
    checkpoint_dir: str | os.PathLike, *, activation_quantization: str | None = None
) -> tuple[DeepLabMNv2, dict[str, Any]]:
    """Load a checkpoint written by `save_deeplab_mnv2`: the network in eval mode and its meta.

    ``activation_quantization`` (one of `models.deeplab_mnv2.ACTIVATION_QUANTIZATIONS`)
    overrides the checkpoint's: ``"dynamic-int8-per-pixel"`` makes a dynamic-range quantized
    file's hybrid convs compute as the stock TF Lite runtime (XNNPACK) does,
    ``"dynamic-int8-per-image"`` as TF Lite's builtin kernels do, ``"none"`` in float. A file
    without hybrid convs computes in float whatever the mode.
    """
    checkpoint = load_checkpoint(checkpoint_dir, expect_model=MODEL_KIND, meta_schema=META_SCHEMA, remedy=REMEDY)
    unknown = sorted(set(checkpoint.config) - {f.name for f in fields(DeepLabMNv2Config)})
    if unknown:
        raise ChainError(f"{checkpoint_dir}: config fields {unknown} are unknown to this version of chain")
    config = dict(checkpoint.config)
    if activation_quantization is not None:
        if activation_quantization not in ACTIVATION_QUANTIZATIONS:
            raise ChainError(f"unknown activation quantization {activation_quantization!r}; "
                             f"use one of {', '.join(ACTIVATION_QUANTIZATIONS)}")
        config["activation_quantization"] = activation_quantization
    try:
        network_config = DeepLabMNv2Config(**config)
    except (TypeError, ValueError) as error:
        raise ChainError(f"{checkpoint_dir}: bad DeepLabV3-MobileNetV2 config ({first_line(error)})") from None
    _check_channels(checkpoint.meta, network_config.num_classes, Path(checkpoint_dir) / CONFIG_FILE)
    model = build_fitted(lambda: DeepLabMNv2(network_config), checkpoint.state_dict, source=checkpoint_dir,
                         what="DeepLabV3-MobileNetV2 its config describes")
    return model.eval(), checkpoint.meta


def _check_channels(meta: dict[str, Any], num_classes: Any, source: Path) -> None:
    """One label id per output channel, each an id of the label space (the schema checked their types)."""
    ids, space = meta["channel_ids"], get_label_space(meta["label_space"])
    if len(ids) != num_classes:
        raise meta_error(source, "channel_ids", f"has {len(ids)} ids for a network with {num_classes} output "
                         "channels", REMEDY)
    if max(ids, default=0) >= len(space):
        raise meta_error(source, "channel_ids", f"holds {max(ids)}, past {space.name}'s ids 0-{len(space) - 1}",
                         REMEDY)
