"""torchvision's DeepLabV3 weights: its download cache, a local state_dict file, or none ("random").

torchvision's weight enums carry the label space (COCO-VOC categories), the preprocessing and the
URL; its own download code fetches them into ``$TORCH_HOME/hub/checkpoints``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.models._api import WeightsEnum

from chain.errors import ChainError, MissingWeightsError
from chain.weights.fit import read_torch_file
from chain.weights.folder import read_safetensors
from chain.weights.locations import RANDOM


def weights_cache_path(weights: WeightsEnum) -> Path:
    """Where torchvision keeps (or would keep) a downloaded weights file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def load_deeplab_state_dict(weights: WeightsEnum, what: str, weights_arg: str | None) -> dict[str, torch.Tensor] | None:
    """The state_dict for ``--seg-weights`` (a file, ``random`` → None, or torchvision's download)."""
    if weights_arg == RANDOM:
        return None
    if weights_arg is not None:
        return load_state_dict_file(Path(weights_arg))
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except OSError as error:  # URLError and friends: no network, no file
        reason = getattr(error, "reason", error)
        raise MissingWeightsError(
            f"{what} weights are not cached and cannot be downloaded ({reason}): fetch {weights.url} "
            f"into {weights_cache_path(weights)}, or pass --seg-weights FILE (or 'random')") from None


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """A state_dict from a ``.pth``/``.pt`` (tensors only, never arbitrary pickles) or ``.safetensors`` file."""
    if not path.is_file():
        raise ChainError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    state = read_torch_file(path)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # torchvision's reference training scripts save {"model": ..., "optimizer": ...}
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ChainError(f"{path} does not hold a state_dict of tensors")
    return state
