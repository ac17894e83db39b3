"""Stages, labels and checkpoints a user may get wrong or a file may have damaged: label folders, configs
that ask for any amount of memory, truncated weights, pickles, resumes with missing parts, bad presets.

Networks are tiny and made here (a ngf-4 SPADE generator, a 48x32 VAE-GAN, a random DeepLab-MobileNetV2);
a size in a config that would need terabytes proves the config is checked before anything is allocated.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tests.bad_inputs import case, make_video

RUN = ["run", "-q"]
HUGE = 2 ** 20  # channels: terabytes of weights, which building the network for real would try to allocate


def _clip(folder: Path) -> str:
    make_video(folder / "in.mp4", frames=3)
    return "in.mp4"


def _label_folder(folder: Path, space: str = "voc", frames: int = 3, dtype: type = np.uint8) -> Path:
    """A folder as --save-labels writes it: uint8/uint16 grey PNGs by frame index and labels.json."""
    labels = folder / "labels"
    labels.mkdir()
    for index in range(frames):
        ids = np.zeros((48, 64), dtype)
        ids[10:30, 20:40] = 15 if space == "voc" else 0  # VOC person; COCO-Stuff person
        Image.fromarray(ids).save(labels / f"{index:06d}.png")
    (labels / "labels.json").write_text(json.dumps({"label_space": space}))
    return labels


def _edit_config(checkpoint: Path, **fields: object) -> None:
    document = json.loads((checkpoint / "config.json").read_text())
    document["config"].update(fields)
    (checkpoint / "config.json").write_text(json.dumps(document))


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def _spade_checkpoint(folder: Path) -> Path:
    """A chain SPADE checkpoint in the COCO layout (COCO-Stuff labels, default background grass), ngf 4,
    random weights."""
    from chain.weights.spade import save_spade
    from models.spade import SPADEConfig, SPADEGenerator

    torch.manual_seed(0)
    config = SPADEConfig(ngf=4, spade_hidden=8, crop_size=64, aspect_ratio=4 / 3)
    return save_spade(SPADEGenerator(config), folder / "spade", meta={"label_space": "coco-stuff"})


def _vaegan_checkpoint(folder: Path) -> Path:
    from chain.weights.folder import save_checkpoint
    from models.vaegan import VAEGAN, VAEGANConfig

    torch.manual_seed(0)
    config = VAEGANConfig(height=32, width=48, latent_dim=16, filters=(8, 16, 32, 64))
    return save_checkpoint(folder / "vaegan", model="vaegan", config=config, state_dict=VAEGAN(config).state_dict())


def _deeplab_mnv2_checkpoint(folder: Path) -> Path:
    """A DeepLabV3-MobileNetV2 VOC checkpoint as `chain import tflite` writes it, with random weights."""
    from chain.weights.folder import save_checkpoint
    from models.deeplab_mnv2 import DeepLabMNv2, DeepLabMNv2Config

    torch.manual_seed(0)
    config = DeepLabMNv2Config(input_size=65)
    meta = {"label_space": "voc", "input_size": 65, "normalization": {"mean": [127.5] * 3, "std": [127.5] * 3},
            "label_offset": 0, "channel_ids": list(range(21)), "source": {"file": "random", "sha256": ""}}
    return save_checkpoint(folder / "deeplab", model="deeplab_mnv2", config=config,
                           state_dict=DeepLabMNv2(config).state_dict(), meta=meta)


# --- 7. the default background applies only where labels change space --------------------------------


@case("same-space-labels-painted-by-spade", "output", outputs=("out.mp4",))
def _(folder: Path) -> list[str]:
    """Saved COCO-Stuff labels painted by a COCO SPADE generator: no conversion, so no default background
    (it used to be refused as if --background had been given)."""
    _label_folder(folder, "coco-stuff")
    return [*RUN, _clip(folder), "out.mp4", "--seg", "labels:labels", "--synth", "spade",
            "--synth-weights", str(_spade_checkpoint(folder))]


@case("palette-painted-by-spade-in-its-own-space", "output", outputs=("out.mp4",))
def _(folder: Path) -> list[str]:
    return [*RUN, _clip(folder), "out.mp4", "--seg", "palette", "--synth", "spade",
            "--synth-weights", str(_spade_checkpoint(folder))]


@case("explicit-background-without-conversion", "error",
      message=r"--background grass: .*both use voc labels.*--remap background=grass")
def _(folder: Path) -> list[str]:
    return [*RUN, _clip(folder), "out.mp4", "--seg", "palette:voc", "--synth", "colorize", "--background", "grass"]


# --- 10. label folders -----------------------------------------------------------------------------


@case("saved-label-past-the-space", "error", message=r"labels/000001\.png holds label 250, outside voc \(ids 0-20\)")
def _(folder: Path) -> list[str]:
    labels = _label_folder(folder)
    ids = np.asarray(Image.open(labels / "000001.png")).copy()
    ids[5, 5] = 250
    Image.fromarray(ids).save(labels / "000001.png")
    return [*RUN, _clip(folder), "out.mp4", "--seg", "labels:labels", "--synth", "colorize"]


@case("saved-16-bit-label-that-would-wrap", "error", message=r"labels/000002\.png holds label 271, outside voc")
def _(folder: Path) -> list[str]:
    """271 = 256 + 15 would have become 15 (person) as uint8."""
    labels = _label_folder(folder, dtype=np.uint16)
    ids = np.asarray(Image.open(labels / "000002.png")).astype(np.uint16)
    ids[0, 0] = 256 + 15
    Image.fromarray(ids).save(labels / "000002.png")
    return [*RUN, _clip(folder), "out.mp4", "--seg", "labels:labels", "--synth", "colorize"]


@case("saved-labels-as-colour-image", "error", message=r"labels/000000\.png is not a label map.*RGB")
def _(folder: Path) -> list[str]:
    labels = _label_folder(folder)
    Image.new("RGB", (64, 48), (255, 0, 0)).save(labels / "000000.png")
    return [*RUN, _clip(folder), "out.mp4", "--seg", "labels:labels", "--synth", "colorize"]


@case("saved-label-map-truncated", "error", message=r"labels/000001\.png is not a readable label map")
def _(folder: Path) -> list[str]:
    labels = _label_folder(folder)
    _truncate(labels / "000001.png", 0.6)
    return [*RUN, _clip(folder), "out.mp4", "--seg", "labels:labels", "--synth", "colorize"]


@case("labels-json-not-json", "error", message=r"labels/labels\.json is not valid JSON \(line 1, column 2")
def _(folder: Path) -> list[str]:
    (_label_folder(folder) / "labels.json").write_text("{label_space: voc}")
    return [*RUN, _clip(folder), "out.mp4", "--seg", "labels:labels", "--synth", "colorize"]


@case("labels-json-without-a-space", "error", message=r"labels/labels\.json names no label space")
def _(folder: Path) -> list[str]:
    (_label_folder(folder) / "labels.json").write_text('["voc"]')
    return [*RUN, _clip(folder), "out.mp4", "--seg", "labels:labels", "--synth", "colorize"]


@case("labels-json-unknown-space", "error", message=r"labels/labels\.json: unknown label space 'klingon'")
def _(folder: Path) -> list[str]:
    (_label_folder(folder) / "labels.json").write_text('{"label_space": "klingon"}')
    return [*RUN, _clip(folder), "out.mp4", "--seg", "labels:labels", "--synth", "colorize"]


# --- 11. configs checked against the weights before anything is allocated ------------------------------


@case("spade-config-asks-for-terabytes", "error",
      message=r"spade: the weights do not fit the SPADE generator its config describes \(\d+ mis-shaped")
def _(folder: Path) -> list[str]:
    _edit_config(_spade_checkpoint(folder), ngf=HUGE)
    return [*RUN, _clip(folder), "out.mp4", "--seg", "palette:voc", "--synth", "spade", "--synth-weights", "spade"]


@case("vaegan-config-asks-for-terabytes", "error",
      message=r"vaegan: the weights do not fit the VAE-GAN its config describes \(\d+ mis-shaped")
def _(folder: Path) -> list[str]:
    _edit_config(_vaegan_checkpoint(folder), filters=[HUGE, HUGE, HUGE, HUGE])
    return [*RUN, _clip(folder), "out.mp4", "--seg", "none", "--synth", "vaegan", "--synth-weights", "vaegan"]


@case("deeplab-mnv2-config-asks-for-terabytes", "error",
      message=r"deeplab: the weights do not fit the DeepLabV3-MobileNetV2 its config describes")
def _(folder: Path) -> list[str]:
    _edit_config(_deeplab_mnv2_checkpoint(folder), aspp_channels=HUGE)
    return [*RUN, _clip(folder), "--masks", "masks.mp4", "--seg", "deeplab-mnv2", "--seg-weights", "deeplab"]


@case("spade-config-unknown-field", "error", message=r"spade: bad SPADE config .*'colour_grading'")
def _(folder: Path) -> list[str]:
    _edit_config(_spade_checkpoint(folder), colour_grading=True)
    return [*RUN, _clip(folder), "out.mp4", "--seg", "palette:voc", "--synth", "spade", "--synth-weights", "spade"]


@case("spade-config-garbage-value", "error", message=r"spade: cannot build the SPADE generator")
def _(folder: Path) -> list[str]:
    _edit_config(_spade_checkpoint(folder), ngf="sixty-four")
    return [*RUN, _clip(folder), "out.mp4", "--seg", "palette:voc", "--synth", "spade", "--synth-weights", "spade"]


@case("vaegan-config-garbage-value", "error", message=r"vaegan has a bad VAE-GAN config")
def _(folder: Path) -> list[str]:
    _edit_config(_vaegan_checkpoint(folder), filters="wide")
    return [*RUN, _clip(folder), "out.mp4", "--seg", "none", "--synth", "vaegan", "--synth-weights", "vaegan"]


@case("deeplab-mnv2-config-unknown-field", "error", message=r"deeplab: config fields \['sharpness'\] are unknown")
def _(folder: Path) -> list[str]:
    _edit_config(_deeplab_mnv2_checkpoint(folder), sharpness=2)
    return [*RUN, _clip(folder), "--masks", "masks.mp4", "--seg", "deeplab-mnv2", "--seg-weights", "deeplab"]


# --- 12. damaged files -------------------------------------------------------------------------------


@case("spade-config-json-damaged", "error", message=r"spade/config\.json is not valid JSON")
def _(folder: Path) -> list[str]:
    _truncate(_spade_checkpoint(folder) / "config.json")
    return [*RUN, _clip(folder), "out.mp4", "--seg", "palette:voc", "--synth", "spade", "--synth-weights", "spade"]


@case("checkpoint-config-json-not-an-object", "error",
      message=r"vaegan/config\.json does not describe a chain checkpoint")
def _(folder: Path) -> list[str]:
    (_vaegan_checkpoint(folder) / "config.json").write_text("[1, 2, 3]")
    return [*RUN, _clip(folder), "out.mp4", "--seg", "none", "--synth", "vaegan", "--synth-weights", "vaegan"]


@case("spade-safetensors-truncated", "error", message=r"spade/model\.safetensors is damaged or not a safetensors file")
def _(folder: Path) -> list[str]:
    _truncate(_spade_checkpoint(folder) / "model.safetensors")
    return [*RUN, _clip(folder), "out.mp4", "--seg", "palette:voc", "--synth", "spade", "--synth-weights", "spade"]


@case("vaegan-safetensors-truncated", "error", message=r"vaegan/model\.safetensors is damaged")
def _(folder: Path) -> list[str]:
    _truncate(_vaegan_checkpoint(folder) / "model.safetensors", 0.9)
    return [*RUN, _clip(folder), "out.mp4", "--seg", "none", "--synth", "vaegan", "--synth-weights", "vaegan"]


@case("deeplab-mnv2-safetensors-header-cut", "error", message=r"deeplab/model\.safetensors is damaged")
def _(folder: Path) -> list[str]:
    _truncate(_deeplab_mnv2_checkpoint(folder) / "model.safetensors", 0.001)
    return [*RUN, _clip(folder), "--masks", "masks.mp4", "--seg", "deeplab-mnv2", "--seg-weights", "deeplab"]


@case("deeplab-safetensors-file-truncated", "error", message=r"weights\.safetensors is damaged")
def _(folder: Path) -> list[str]:
    from safetensors.torch import save_file

    save_file({"backbone.conv1.weight": torch.zeros(64, 3, 7, 7)}, str(folder / "weights.safetensors"))
    _truncate(folder / "weights.safetensors", 0.7)
    return [*RUN, _clip(folder), "--masks", "masks.mp4", "--seg", "deeplab", "--seg-weights", "weights.safetensors"]


@case("tflite-truncated", "error", message=r"half\.tflite is not a DeepLabV3-MobileNetV2 graph .*(truncated|tflite)")
def _(folder: Path) -> list[str]:
    from tests.conftest import shared_file

    data = shared_file("weights/deeplabv3_mnv2_voc_257.tflite").read_bytes()
    (folder / "half.tflite").write_bytes(data[:len(data) // 2])
    return ["import", "tflite", "half.tflite", "--labels", "voc", "--out", "imported"]


# --- 13. messages: a wrong architecture in one short line; no advice to unpickle -----------------------


@case("deeplab-weights-of-another-architecture", "error",
      message=r"^(?=.{0,700}$).*other\.pth: the weights do not fit the DeepLabV3 resnet50 \(\d+ missing: .*"
              r"\(\d+ more\); 2000 unexpected: layer0\.weight")
def _(folder: Path) -> list[str]:
    """Thousands of wrong keys: torch's own message listed every one (about 20 KB on one line)."""
    torch.save({f"layer{i}.weight": torch.zeros(1) for i in range(2000)}, folder / "other.pth")
    return [*RUN, _clip(folder), "--masks", "masks.mp4", "--seg", "deeplab", "--seg-weights", "other.pth"]


@case("weights-pickle-with-objects", "error",
      message=r"^(?!.*weights_only).*pickled\.pth is not a plain state_dict of tensors "
              r"\(it holds argparse\.Namespace\); chain never unpickles code")
def _(folder: Path) -> list[str]:
    torch.save({"fc.weight": torch.zeros(1), "args": argparse.Namespace(ngf=64)}, folder / "pickled.pth")
    return [*RUN, _clip(folder), "out.mp4", "--seg", "palette:coco-stuff", "--synth", "spade",
            "--synth-weights", "pickled.pth"]


# --- 12. encoder settings checked before any work ---------------------------------------------------


@case("preset-not-an-x264-preset", "error", message=r"--preset 'bogus' is not an x264 preset; choose one of ultrafast")
def _(folder: Path) -> list[str]:
    return [*RUN, _clip(folder), "out.mp4", "--seg", "palette:voc", "--synth", "colorize", "--preset", "bogus"]


# --- 11 and 12. resuming training from a damaged run ------------------------------------------------------


def _spade_run(folder: Path) -> list[str]:
    """One step of a real tiny SPADE training run (dataset made here); returns the resume command."""
    from chain.training.loop import RunSettings
    from chain.training.spade import train_spade

    space_ids = np.zeros((64, 64), np.uint8)
    space_ids[32:] = 3
    for split in ("train", "trainannot"):
        (folder / "data" / split).mkdir(parents=True)
    for index in range(2):
        Image.fromarray(space_ids).save(folder / "data" / "trainannot" / f"f{index}.png")
        Image.fromarray(np.stack([space_ids * 40] * 3, axis=2)).save(folder / "data" / "train" / f"f{index}.png")
    train_spade(folder / "data", folder / "run", {"size": "64x64", "ngf": 4, "spade_hidden": 8, "ndf": 8, "n_layers_d": 2,
                "num_d": 1, "batch": 2, "epochs": 2}, RunSettings(max_steps=1, progress=False, device="cpu"))
    return ["train", "spade", "--data", "data", "--out", "run", "--resume", "--device", "cpu"]


@case("resume-without-discriminator", "error",
      message=r"run/checkpoint/discriminator\.safetensors is missing: the checkpoint cannot be resumed")
def _(folder: Path) -> list[str]:
    args = _spade_run(folder)
    (folder / "run" / "checkpoint" / "discriminator.safetensors").unlink()
    return args


@case("resume-with-truncated-optimizer", "error", message=r"run/checkpoint/optimizer\.safetensors is damaged")
def _(folder: Path) -> list[str]:
    args = _spade_run(folder)
    _truncate(folder / "run" / "checkpoint" / "optimizer.safetensors", 0.8)
    return args


@case("resume-options-ask-for-terabytes", "error",
      message=r"model\.safetensors: the weights do not fit the SPADE generator its training options describe")
def _(folder: Path) -> list[str]:
    args = _spade_run(folder)
    config = folder / "run" / "checkpoint" / "config.json"
    document = json.loads(config.read_text())
    document["meta"]["train"]["generator"]["ngf"] = HUGE
    config.write_text(json.dumps(document))
    return args


@case("resume-options-garbage", "error", message=r"training options are damaged .*'hue'")
def _(folder: Path) -> list[str]:
    args = _spade_run(folder)
    config = folder / "run" / "checkpoint" / "config.json"
    document = json.loads(config.read_text())
    document["meta"]["train"]["hue"] = 3
    config.write_text(json.dumps(document))
    return args


@case("vaegan-resume-options-ask-for-terabytes", "error",
      message=r"model\.safetensors: the weights do not fit the VAE-GAN its training options describe")
def _(folder: Path) -> list[str]:
    from chain.training.loop import RunSettings
    from chain.training.vaegan import train_vaegan

    make_video(folder / "film.mp4", frames=4)
    train_vaegan(folder / "film.mp4", folder / "run", {"size": "48x32", "latent": 8, "filters": (8, 16, 32, 64), "batch": 2,
                 "epochs": 1}, RunSettings(max_steps=1, progress=False, device="cpu"))
    config = folder / "run" / "checkpoint" / "config.json"
    document = json.loads(config.read_text())
    document["meta"]["train"]["model"]["filters"] = [HUGE] * 4
    config.write_text(json.dumps(document))
    return ["train", "vaegan", "film.mp4", "--out", "run", "--resume", "--device", "cpu"]
