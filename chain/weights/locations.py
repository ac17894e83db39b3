"""Where each kind of weights lives, and how to get it: paths only, no torch.

`chain list` and the checks made before a run (`chain.stages.registry.check_weights`) read
these without loading torch (about 2 s of CPU); the loaders beside this module use the same
paths, so a location is written down once.
"""

from __future__ import annotations

import os
from pathlib import Path

from chain.bounds import weights_folder

CONFIG_FILE = "config.json"
# Where a training run (`chain train ... --out DIR`) keeps its latest checkpoint.
CHECKPOINT_DIR = "checkpoint"

#: NVIDIA's SPADE repository, which links the pretrained checkpoints archive.
NVLABS_URL = "https://github.com/NVlabs/SPADE"
#: The shared TF Lite files `chain import tflite` reads, per `deeplab-mnv2` variant.
DEEPLAB_MNV2_FILES = {"voc": "deeplabv3_mnv2_voc_257.tflite", "ade20k": "deeplabv3_mnv2_ade20k_513.tflite"}
#: torchvision's DeepLabV3 COCO-VOC weights (its ``*_Weights.DEFAULT.url``; a test holds them equal).
DEEPLAB_URLS = {
    "resnet50": "https://download.pytorch.org/models/deeplabv3_resnet50_coco-cd0a2569.pth",
    "resnet101": "https://download.pytorch.org/models/deeplabv3_resnet101_coco-586e9e4e.pth",
    "mobilenet_v3_large": "https://download.pytorch.org/models/deeplabv3_mobilenet_v3_large-fc3c493d.pth",
}
#: `--seg-weights random`: the real architecture, untrained (for tests and timing).
RANDOM = "random"
VAEGAN_HOW_TO_TRAIN = "train one with `chain train vaegan FILM --out DIR` and pass --synth-weights DIR"


def weights_dir() -> Path:
    """The user's weights folder, ``$CHAIN_WEIGHTS`` else ``~/.cache/chain/weights`` (it need not exist yet)."""
    configured = weights_folder()  # checked: ~nosuchuser or a file there is one line, for Python callers too
    return configured if configured is not None else Path.home() / ".cache" / "chain" / "weights"


def checkpoint_dir(weights: str | os.PathLike) -> Path:
    """The checkpoint folder for ``weights``: a training run's ``--out`` folder or the checkpoint itself."""
    path = Path(weights)
    if (path / CONFIG_FILE).is_file():
        return path
    return path / CHECKPOINT_DIR


def spade_weights_path(variant: str) -> Path:
    """Where the NVlabs archive's generator for ``variant`` goes in the user's weights folder."""
    return weights_dir() / "spade" / f"{variant}_pretrained" / "latest_net_G.pth"


def spade_how_to_get(variant: str) -> str:
    """How to get SPADE weights: NVIDIA's archive with internet, `chain train spade` without."""
    return (f"download the pretrained checkpoints archive linked from {NVLABS_URL} and put "
            f"checkpoints/{variant}_pretrained/ under {spade_weights_path(variant).parent.parent}, or, without "
            "internet, train one with `chain train spade --data DATASET_OR_VIDEO --out RUN` and pass "
            "--synth-weights RUN")


def deeplab_mnv2_checkpoint(variant: str) -> Path:
    """Where ``chain import tflite`` output for ``variant`` (voc, ade20k) is looked for."""
    return weights_dir() / f"deeplab-mnv2-{variant}"


def torch_hub_dir() -> Path:
    """``torch.hub.get_dir()`` without importing torch: ``$TORCH_HOME/hub``, else
    ``$XDG_CACHE_HOME/torch/hub``, else ``~/.cache/torch/hub`` (a test holds the two equal)."""
    cache = os.getenv("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    return Path(os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(cache, "torch")))) / "hub"


def deeplab_cache_path(variant: str) -> Path:
    """Where torchvision keeps (or would keep) the downloaded DeepLabV3 ``variant`` weights."""
    return torch_hub_dir() / "checkpoints" / Path(DEEPLAB_URLS[variant]).name


def find_vaegan(weights: str | os.PathLike) -> tuple[Path, bool]:
    """The checkpoint folder ``weights`` points at (a run folder or the checkpoint), and whether it holds one."""
    folder = checkpoint_dir(weights)
    return folder, (folder / CONFIG_FILE).is_file()
