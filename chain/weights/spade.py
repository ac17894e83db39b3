"""Load and save SPADE generators: NVlabs' ``latest_net_G.pth`` files and our checkpoint folders.

An NVlabs file is a bare state_dict: it fixes the input channel count, ``ngf`` and
whether there is an ``up_4`` block, but not how the channels split into classes,
dontcare and instance edges, nor the crop size and aspect ratio (and "normal" and
"more" upsampling have identical weights). Those come from a preset name or an
explicit `SPADEConfig`. Our folders (`chain.weights.folder`) carry the full config.

Without ``--synth-weights``, the NVlabs archive's ``{variant}_pretrained/latest_net_G.pth`` is
looked for under ``$CHAIN_WEIGHTS/spade/`` (`default_weights_path`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from chain.errors import ChainError, first_line
from chain.weights.fit import check_fit, read_torch_file
from chain.weights.folder import load_checkpoint, save_checkpoint
from chain.weights.locations import NVLABS_URL, spade_weights_path
from chain.weights.schema import Field, Schema, integer, label_space, mapping
from models.spade import PRESETS, SPADEConfig, SPADEGenerator

MODEL_KIND = "spade"
REMEDY = f"train it again with `chain train spade`, or use NVIDIA's generator ({NVLABS_URL})"
#: A checkpoint's meta (`chain train spade` writes it): the space of the generator's label channels.
META_SCHEMA: Schema = {"label_space": Field(label_space), "step": Field(integer(0)), "train": Field(mapping({}))}


def default_weights_path(variant: str) -> Path:
    """Where the NVlabs archive's generator for ``variant`` goes in the user's weights folder."""
    return spade_weights_path(variant)


def read_nvidia_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """``torch.load`` a ``latest_net_G.pth`` without unpickling code; ChainError if it is not a state_dict."""
    state_dict = read_torch_file(path)
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ChainError(f"{path} does not hold a state_dict of tensors")
    if "fc.weight" not in state_dict or "conv_img.weight" not in state_dict:
        raise ChainError(f"{path} is not a SPADE generator state_dict (no fc.weight / conv_img.weight)")
    # The tensors `infer_spade_config` reads the network's size from, before any other check.
    for key, ranks in (("fc.weight", (2, 4)), ("conv_img.weight", (4,)), ("head_0.norm_0.mlp_shared.0.weight", (4,))):
        if key in state_dict and (state_dict[key].dim() not in ranks or 0 in state_dict[key].shape):
            raise ChainError(f"{path}: {key} has shape {list(state_dict[key].shape)}, which no SPADE generator has")
    return state_dict


def infer_spade_config(
    state_dict: dict[str, torch.Tensor], preset: str | None = None, **overrides: Any
) -> SPADEConfig:
    """A config for an NVlabs state_dict: ``ngf``, VAE and "most" upsampling read from key shapes,
    the rest from ``preset`` plus ``overrides`` (SPADEConfig fields).

    Raises ChainError when no preset is named or the preset's channel count disagrees.
    """
    fc_weight = state_dict["fc.weight"]
    use_vae = fc_weight.dim() == 2  # a Linear from z instead of a conv on the segmap
    most = any(key.startswith("up_4.") for key in state_dict)
    # fc outputs 16 * ngf channels; the VAE's fc is sized by the latent grid, so use conv_img there.
    ngf = state_dict["conv_img.weight"].shape[1] * (2 if most else 1) if use_vae else fc_weight.shape[0] // 16
    mlp_key = "head_0.norm_0.mlp_shared.0.weight"
    semantic_nc = state_dict[mlp_key].shape[1] if mlp_key in state_dict else fc_weight.shape[1]
    if preset is None:
        matches = [name for name in PRESETS if SPADEConfig.preset(name).semantic_nc == semantic_nc]
        hint = f" ({matches[0]} has {semantic_nc})" if matches else ""
        raise ChainError(
            f"this SPADE state_dict has {semantic_nc} input channels; name a preset ({', '.join(PRESETS)}){hint} "
            "or give a SPADEConfig, as its crop size and label layout are not stored in it"
        )
    if preset not in PRESETS:
        raise ChainError(f"unknown SPADE preset {preset!r}; choose from {', '.join(PRESETS)}")
    read = dict(ngf=ngf, use_vae=use_vae)
    if most:
        read["num_upsampling_layers"] = "most"
    if use_vae:
        read["z_dim"] = fc_weight.shape[1]
    for key, value in read.items():
        if key in overrides and overrides[key] != value:
            raise ChainError(f"the weights say {key}={value!r}, not {overrides[key]!r}")
    fields = {**overrides, **read}
    try:
        config = SPADEConfig.preset(preset, **fields)
    except (TypeError, ValueError) as error:
        raise ChainError(f"bad SPADE options: {first_line(error)}") from error
    if config.semantic_nc != semantic_nc:
        raise ChainError(
            f"this SPADE state_dict has {semantic_nc} input channels but preset {preset!r} gives {config.semantic_nc}"
        )
    return config


def _build(config: SPADEConfig, state_dict: dict[str, torch.Tensor], source: Any) -> SPADEGenerator:
    # NVlabs files may lack BatchNorm's num_batches_tracked (load_nvidia_state_dict fills them in).
    conformed = check_fit(lambda: SPADEGenerator(config), state_dict, source=source,
                          what="SPADE generator its config describes",
                          optional=lambda key: key.endswith(".num_batches_tracked"))
    generator = SPADEGenerator(config)
    generator.load_nvidia_state_dict(conformed)
    return generator.eval()


def load_spade_checkpoint(directory: str | os.PathLike) -> tuple[SPADEGenerator, dict[str, Any]]:
    """Our checkpoint folder -> (generator in eval mode, its meta dict)."""
    checkpoint = load_checkpoint(directory, expect_model=MODEL_KIND, meta_schema=META_SCHEMA, remedy=REMEDY)
    try:
        config = SPADEConfig(**checkpoint.config)
    except (TypeError, ValueError) as error:
        raise ChainError(f"{directory}: bad SPADE config ({first_line(error)})") from error
    return _build(config, checkpoint.state_dict, directory), checkpoint.meta


def load_spade(
    path: str | os.PathLike,
    *,
    preset: str | None = None,
    config: SPADEConfig | None = None,
    **overrides: Any,
) -> SPADEGenerator:
    """A SPADE generator in eval mode, on the CPU, from our checkpoint folder or an NVlabs ``.pth``.

    For a ``.pth`` give ``preset`` (``coco``, ``ade20k``, ``cityscapes``; ``ngf`` is read
    from the weights, other fields can be overridden by keyword) or a full ``config``.
    A folder carries its own config, so neither may be given.
    """
    path = Path(path)
    if path.is_dir():
        if preset is not None or config is not None or overrides:
            raise ChainError(f"{path} is a chain checkpoint with its own config; do not pass a preset or config")
        return load_spade_checkpoint(path)[0]
    if not path.is_file():
        raise ChainError(f"{path} does not exist (expected a SPADE latest_net_G.pth or a chain checkpoint folder)")
    state_dict = read_nvidia_state_dict(path)
    if config is None:
        config = infer_spade_config(state_dict, preset, **overrides)
    elif preset is not None or overrides:
        raise ChainError("give either a SPADEConfig or a preset with options, not both")
    return _build(config, state_dict, path)


def save_spade(
    generator: SPADEGenerator, out_dir: str | os.PathLike, meta: dict[str, Any] | None = None, *,
    extra_files: dict[str, dict[str, torch.Tensor]] | None = None,
) -> Path:
    """Write ``generator`` as our checkpoint folder (safetensors + config.json); returns the folder.

    ``extra_files`` are more safetensors files beside the weights (a training run's discriminator
    and optimizer state)."""
    return save_checkpoint(
        out_dir,
        model=MODEL_KIND,
        config=dataclasses.asdict(generator.config),
        state_dict=generator.state_dict(),
        meta=meta,
        extra_files=extra_files,
    )
