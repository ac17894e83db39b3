"""Load and save VAE-GAN checkpoints (`models.vaegan`), written by ``chain train vaegan``.

A VAE-GAN has no pretrained weights: its checkpoint is looked for in the folder the user names,
which is a training run's ``--out`` folder or its ``checkpoint`` subfolder (`checkpoint_dir`).
The weights hold the encoder, the decoder and the discriminator.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from chain.errors import ChainError, MissingWeightsError, first_line
from chain.weights.fit import build_fitted
from chain.weights.folder import Checkpoint, load_checkpoint, save_checkpoint
from chain.weights.locations import VAEGAN_HOW_TO_TRAIN, find_vaegan
from chain.weights.schema import Field, Schema, integer, mapping, text
from models.vaegan import VAEGAN, VAEGANConfig

MODEL_KIND = "vaegan"
HOW_TO_TRAIN = VAEGAN_HOW_TO_TRAIN
#: A checkpoint's meta (`chain train vaegan` writes it): the film and steps it was trained on.
META_SCHEMA: Schema = {"step": Field(integer(0)), "frames": Field(integer(0)),
                       "train": Field(mapping({"film": Field(text)}))}


def load_vaegan(weights: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[VAEGAN, Checkpoint]:
    """A trained VAE-GAN in eval mode on ``device``, and its checkpoint (config, meta)."""
    folder, present = find_vaegan(weights)
    if not present:
        raise MissingWeightsError(f"no VAE-GAN checkpoint in {weights}; {HOW_TO_TRAIN}")
    checkpoint = load_checkpoint(folder, expect_model=MODEL_KIND, meta_schema=META_SCHEMA, remedy=HOW_TO_TRAIN)
    try:
        config = VAEGANConfig.from_saved(checkpoint.config)
    except (TypeError, ValueError) as error:
        raise ChainError(f"{folder} has a bad VAE-GAN config: {first_line(error)}") from None
    model = build_fitted(lambda: VAEGAN(config), checkpoint.state_dict, source=folder, what="VAE-GAN its config describes")
    return model.eval().to(device), checkpoint


def save_vaegan(model: VAEGAN, out_dir: str | os.PathLike, meta: dict[str, Any] | None = None, *,
                extra_files: dict[str, dict[str, torch.Tensor]] | None = None) -> Path:
    """Write ``model`` (all three networks) as our checkpoint folder; returns the folder.

    ``extra_files`` are more safetensors files beside the weights (a training run's optimizer state).
    """
    return save_checkpoint(out_dir, model=MODEL_KIND, config=model.config, state_dict=model.state_dict(), meta=meta,
                           extra_files=extra_files)
