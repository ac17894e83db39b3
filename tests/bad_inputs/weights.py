"""Bad-inputs cases: weights that cannot paint, checkpoint meta and JSON a schema refuses, a
transformers folder's id2label, and chain's own ONNX cache damaged (see tests/bad_inputs/__init__.py).

Generated in loops, for every checkpoint kind chain loads (deeplab-mnv2, spade and vaegan folders,
an NVlabs ``latest_net_G.pth``, torchvision DeepLabV3 state_dict files): a NaN, +inf or -inf in each kind of tensor (a bias, a conv weight,
a BatchNorm running statistic), every dtype safetensors stores (float16, bfloat16 and float64 are
cast and run; the others are refused), missing / extra / mis-shaped tensors; meta fields of the
wrong type, out of range or missing; JSON nested deep, huge or with a repeated key. Networks are
tiny and seeded (a 240k-parameter DeepLab-MobileNetV2, an ngf-4 SPADE, a 48x32 VAE-GAN).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from tests.bad_inputs import case, make_video

RUN = ["run", "-q"]


def _clip(folder: Path) -> str:
    make_video(folder / "in.mp4", frames=2)
    return "in.mp4"


def deeplab_mnv2_checkpoint(folder: Path, seed: int = 0, name: str = "deeplab") -> Path:
    """A tiny DeepLabV3-MobileNetV2 VOC checkpoint (33x33 input) as `chain import tflite` writes one."""
    from chain.weights.deeplab_mnv2 import save_deeplab_mnv2
    from models.deeplab_mnv2 import DeepLabMNv2, DeepLabMNv2Config

    torch.manual_seed(seed)
    config = DeepLabMNv2Config(num_classes=21, width_multiplier=0.35, aspp_channels=8, input_size=33)
    meta = {"label_space": "voc", "input_size": 33, "normalization": {"mean": [127.5] * 3, "std": [127.5] * 3},
            "label_offset": 0, "channel_ids": list(range(21)), "source": {"file": "random", "sha256": ""}}
    return save_deeplab_mnv2(folder / name, config=config, state_dict=DeepLabMNv2(config).state_dict(), meta=meta)


def spade_checkpoint(folder: Path) -> Path:
    from chain.weights.spade import save_spade
    from models.spade import SPADEConfig, SPADEGenerator

    torch.manual_seed(0)
    config = SPADEConfig(ngf=4, spade_hidden=8, crop_size=64, aspect_ratio=4 / 3)
    return save_spade(SPADEGenerator(config), folder / "spade", meta={"label_space": "coco-stuff", "step": 5000})


def vaegan_checkpoint(folder: Path) -> Path:
    from chain.weights.vaegan import save_vaegan
    from models.vaegan import VAEGAN, VAEGANConfig

    torch.manual_seed(0)
    config = VAEGANConfig(height=32, width=48, latent_dim=16, filters=(8, 16, 32, 64))
    return save_vaegan(VAEGAN(config), folder / "vaegan", meta={"step": 5000, "train": {"film": "film.mp4"}})


def nvlabs_file(folder: Path) -> Path:
    """An NVlabs-format ``latest_net_G.pth`` of the COCO preset at ngf 4 (a bare state_dict)."""
    from models.spade import SPADEConfig, SPADEGenerator

    torch.manual_seed(0)
    path = folder / "latest_net_G.pth"
    torch.save(SPADEGenerator(SPADEConfig.preset("coco", ngf=4)).state_dict(), path)
    return path


@dataclass(frozen=True)
class Kind:
    """A checkpoint kind: how to make one, the run that loads it, and one tensor of each role."""

    name: str
    make: Callable[[Path], Path]
    run: list[str]  # after the clip; the checkpoint is at its default name in the case folder
    tensors: dict[str, str]  # role → key
    what: str  # the network, as the fit message names it


KINDS = [
    Kind("deeplab-mnv2", deeplab_mnv2_checkpoint,
         ["--masks", "masks.mp4", "--seg", "deeplab-mnv2", "--seg-weights", "deeplab", "--seg-opt", "backend=torch"],
         {"bias": "classifier.bias", "conv-weight": "stem.weight"}, "DeepLabV3-MobileNetV2"),
    Kind("spade", spade_checkpoint,
         ["out.mp4", "--seg", "palette:coco-stuff", "--synth", "spade", "--synth-weights", "spade"],
         {"bias": "conv_img.bias", "conv-weight": "head_0.conv_0.weight_orig",
          "running-mean": "head_0.norm_0.param_free_norm.running_mean",
          "running-var": "up_0.norm_1.param_free_norm.running_var"}, "SPADE generator"),
    Kind("vaegan", vaegan_checkpoint, ["out.mp4", "--seg", "none", "--synth", "vaegan", "--synth-weights", "vaegan"],
         {"bias": "decoder.ups.3.0.bias", "conv-weight": "encoder.convs.0.0.weight",
          "running-mean": "encoder.convs.1.1.running_mean", "running-var": "decoder.ups.0.1.running_var"},
         "VAE-GAN"),
]
NARROW_SPADE = r"ngf 4, 1/16 of the reference width"  # the tiny generator's one warning
OUTPUTS = {"deeplab-mnv2": ("masks.mp4",), "spade": ("out.mp4",), "vaegan": ("out.mp4",)}
NVLABS_RUN = ["out.mp4", "--seg", "palette:coco-stuff", "--synth", "spade:coco", "--synth-weights", "latest_net_G.pth",
              "--synth-opt", "size=32"]


def _edit_tensors(file: Path, edit: Callable[[dict[str, torch.Tensor]], None]) -> None:
    if file.suffix == ".pth":
        tensors = torch.load(file, weights_only=True)
        edit(tensors)
        torch.save(tensors, file)
    else:
        tensors = load_file(str(file))
        edit(tensors)
        save_file(tensors, str(file))


def _register(kind_name: str, make: Callable[[Path], Path], run: list[str], weights_file: str, name: str,
              edit: Callable[[dict[str, torch.Tensor]], None], expect: str, message: str | None = None,
              outputs: tuple[str, ...] = ()) -> None:
    def build(folder: Path) -> list[str]:
        checkpoint = make(folder)
        _edit_tensors(checkpoint / weights_file if checkpoint.is_dir() else checkpoint, edit)
        return [*RUN, _clip(folder), *run]

    case(f"{kind_name}-{name}", expect, message=message, outputs=outputs)(build)


def _poke(key: str, value: float, dtype: torch.dtype = torch.float32) -> Callable[[dict[str, torch.Tensor]], None]:
    def edit(tensors: dict[str, torch.Tensor]) -> None:
        tensors[key] = tensors[key].to(dtype, copy=True)
        tensors[key].view(-1)[0] = value
    return edit


def _cast(key: str, dtype: torch.dtype) -> Callable[[dict[str, torch.Tensor]], None]:
    def edit(tensors: dict[str, torch.Tensor]) -> None:
        tensors[key] = tensors[key] != 0 if dtype == torch.bool else tensors[key].to(dtype)
    return edit


def _cast_all(dtype: torch.dtype) -> Callable[[dict[str, torch.Tensor]], None]:
    def edit(tensors: dict[str, torch.Tensor]) -> None:
        for key, value in tensors.items():
            if value.is_floating_point():
                tensors[key] = value.to(dtype)
    return edit


def _delete(key: str) -> Callable[[dict[str, torch.Tensor]], None]:
    return lambda tensors: tensors.pop(key)


def _add(key: str) -> Callable[[dict[str, torch.Tensor]], None]:
    return lambda tensors: tensors.update({key: torch.zeros(3)})


def _reshape(key: str) -> Callable[[dict[str, torch.Tensor]], None]:
    return lambda tensors: tensors.update({key: torch.zeros(tensors[key].numel() + 1)})


NON_FINITE = {"nan": (math.nan, "NaN"), "plus-inf": (math.inf, r"\+inf"), "minus-inf": (-math.inf, "-inf")}
# Every dtype safetensors stores that is not a float chain casts: integers, unsigned, bool, complex, float8.
REFUSED_DTYPES = [torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.uint16, torch.uint32,
                  torch.uint64, torch.bool, torch.complex64, torch.float8_e4m3fn, torch.float8_e5m2]
CAST_DTYPES = [torch.float16, torch.bfloat16, torch.float64]


def _dtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


for _kind in KINDS:
    _args = dict(kind_name=_kind.name, make=_kind.make, run=_kind.run, weights_file="model.safetensors")
    _source = {"deeplab-mnv2": "deeplab", "spade": "spade", "vaegan": "vaegan"}[_kind.name]
    for _role, _key in _kind.tensors.items():
        for _label, (_value, _shown) in NON_FINITE.items():
            _register(**_args, name=f"{_label}-in-{_role}", edit=_poke(_key, _value), expect="error",
                      message=rf"^error: {_source}: weight {re.escape(_key)} holds {_shown} \(1 of \d+ values\): "
                              "these weights cannot paint")
    _bias = _kind.tensors["bias"]
    for _type in REFUSED_DTYPES:
        _register(**_args, name=f"{_dtype(_type)}-bias", edit=_cast(_bias, _type), expect="error",
                  message=rf"{_source}: weight {re.escape(_bias)} holds {_dtype(_type)} values, not floats")
    for _type in CAST_DTYPES:  # precisions checkpoints are shared in: cast to float32, and they paint
        _register(**_args, name=f"all-{_dtype(_type)}", edit=_cast_all(_type), outputs=OUTPUTS[_kind.name],
                  **({"expect": "warning", "message": NARROW_SPADE} if _kind.name == "spade" else {"expect": "output"}))
    _register(**_args, name="float64-past-float32", edit=_poke(_bias, 1e300, torch.float64), expect="error",
              message=rf"weight {re.escape(_bias)} holds \+inf once cast from float64")
    _register(**_args, name="tensor-missing", edit=_delete(_bias), expect="error",
              message=rf"{_source}: the weights do not fit the {_kind.what} its config describes \(1 missing: "
                      rf"{re.escape(_bias)}\)")
    _register(**_args, name="tensor-extra", edit=_add("extra.weight"), expect="error",
              message=r"\(1 unexpected: extra\.weight\)")
    _register(**_args, name="tensor-mis-shaped", edit=_reshape(_bias), expect="error",
              message=rf"\(1 mis-shaped \(file vs network\): {re.escape(_bias)} \[\d+\] vs \[\d+\]\)")
    if "running-var" in _kind.tensors:
        _register(**_args, name="negative-running-var", edit=_poke(_kind.tensors["running-var"], -0.5), expect="error",
                  message=rf"{_source}: {re.escape(_kind.tensors['running-var'])} holds a negative variance "
                          r"\(-0\.5\)")
        _register(**_args, name="num-batches-tracked-as-float", expect="error",
                  edit=_cast(_kind.tensors["running-var"].replace("running_var", "num_batches_tracked"), torch.float32),
                  message=r"num_batches_tracked holds float32 values where the network keeps int64")

# An NVlabs file: the same checks, and the tensors the network's size is read from.
_nvlabs = dict(kind_name="nvlabs-pth", make=nvlabs_file, run=NVLABS_RUN, weights_file="")
for _label, (_value, _shown) in NON_FINITE.items():
    _register(**_nvlabs, name=f"{_label}-in-running-var", edit=_poke("head_0.norm_0.param_free_norm.running_var", _value),
              expect="error", message=rf"latest_net_G\.pth: weight head_0\.norm_0\.param_free_norm\.running_var "
                                      rf"holds {_shown}")
_register(**_nvlabs, name="int64-conv-weight", edit=_cast("conv_img.weight", torch.int64), expect="error",
          message=r"latest_net_G\.pth: weight conv_img\.weight holds int64 values, not floats")
_register(**_nvlabs, name="all-float16", edit=_cast_all(torch.float16), expect="warning", outputs=("out.mp4",),
          message=NARROW_SPADE)
for _key, _shape in (("fc.weight", (64,)), ("conv_img.weight", (3, 4)), ("fc.weight", (0, 184, 3, 3))):
    _register(**_nvlabs, name=f"{_key.replace('.', '-')}-rank-{len(_shape)}-{'x'.join(map(str, _shape))}",
              edit=lambda tensors, key=_key, shape=_shape: tensors.update({key: torch.zeros(shape)}), expect="error",
              message=rf"latest_net_G\.pth: {re.escape(_key)} has shape \[.*\], which no SPADE generator has")


# --- meta against each kind's schema ---------------------------------------------------------------


def _edit_document(checkpoint: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    document = json.loads((checkpoint / "config.json").read_text())
    edit(document)
    (checkpoint / "config.json").write_text(json.dumps(document))


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set (or with value ``...`` delete) ``meta.a.b`` in a config.json document."""
    def edit(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = document
        for part in parents:
            target = target[part]
        if value is ...:
            del target[last]
        else:
            target[last] = value
    return edit


DEEPLAB_META = [  # (case, field, value (... deletes it), message after "deeplab/config.json: ")
    ("label-space-missing", "label_space", ..., r"meta\.label_space is missing"),
    ("label-space-number", "label_space", 21, r"meta\.label_space is an integer, not a string"),
    ("label-space-unknown", "label_space", "klingon", r"meta\.label_space names 'klingon', a label space"),
    ("input-size-missing", "input_size", ..., r"meta\.input_size is missing"),
    ("input-size-zero", "input_size", 0, r"meta\.input_size is 0, must be between 16 and 4096"),
    ("input-size-negative", "input_size", -257, r"meta\.input_size is -257, must be between 16 and 4096"),
    ("input-size-huge", "input_size", 10 ** 9, r"meta\.input_size is 1e\+09, must be between 16 and 4096"),
    ("input-size-text", "input_size", "257", r"meta\.input_size is a string, not an integer"),
    ("input-size-bool", "input_size", True, r"meta\.input_size is a boolean, not an integer"),
    ("input-size-float", "input_size", 33.5, r"meta\.input_size is a number, not an integer"),
    ("normalization-missing", "normalization", ..., r"meta\.normalization is missing"),
    ("normalization-list", "normalization", [127.5, 127.5], r"meta\.normalization is a list, not an object"),
    ("mean-missing", "normalization.mean", ..., r"meta\.normalization\.mean is missing"),
    ("mean-two-values", "normalization.mean", [127.5, 127.5], r"meta\.normalization\.mean has 2 items, not 3"),
    ("mean-four-values", "normalization.mean", [1, 2, 3, 4], r"meta\.normalization\.mean has 4 items, not 3"),
    ("mean-a-number", "normalization.mean", 127.5, r"meta\.normalization\.mean is a number, not a list"),
    ("mean-past-255", "normalization.mean", [127.5, 300, 127.5], r"meta\.normalization\.mean\[1\] is 300"),
    ("mean-text-item", "normalization.mean", [127.5, "x", 127.5], r"meta\.normalization\.mean\[1\] is a string"),
    ("std-zero", "normalization.std", [127.5, 127.5, 0], r"meta\.normalization\.std\[2\] is 0, must be between 0\.01"),
    ("std-negative", "normalization.std", [-1, 127.5, 127.5], r"meta\.normalization\.std\[0\] is -1"),
    ("std-nan", "normalization.std", [math.nan] * 3, r"meta\.normalization\.std\[0\] is nan, not a finite number"),
    ("std-inf", "normalization.std", [math.inf] * 3, r"meta\.normalization\.std\[0\] is inf, not a finite number"),
    ("channel-ids-missing", "channel_ids", ..., r"meta\.channel_ids is missing"),
    ("channel-ids-object", "channel_ids", {"0": 0}, r"meta\.channel_ids is an object, not a list"),
    ("channel-ids-duplicated", "channel_ids", [0, *range(20)], r"meta\.channel_ids repeats 0 \(items 0 and 1\)"),
    ("channel-ids-past-the-space", "channel_ids", [*range(20), 21], r"meta\.channel_ids holds 21, past voc's ids 0-20"),
    ("channel-ids-negative", "channel_ids", [-1, *range(1, 21)], r"meta\.channel_ids\[0\] is -1, must be at least 0"),
    ("channel-ids-too-few", "channel_ids", list(range(20)), r"meta\.channel_ids has 20 ids for a network with 21"),
    ("channel-ids-too-many", "channel_ids", list(range(22)), r"meta\.channel_ids has 22 ids for a network with 21"),
    ("channel-ids-text", "channel_ids", ["0", *range(1, 21)], r"meta\.channel_ids\[0\] is a string, not an integer"),
    ("source-text", "source", "google", r"meta\.source is a string, not an object"),
    ("source-file-number", "source.file", 5, r"meta\.source\.file is an integer, not a string"),
    ("label-offset-text", "label_offset", "-1", r"meta\.label_offset is a string, not an integer"),
    ("label-offset-huge", "label_offset", 10 ** 6, r"meta\.label_offset is 1e\+06, must be between -65535 and 65535"),
]
for _name, _field, _value, _message in DEEPLAB_META:
    case(f"deeplab-mnv2-meta-{_name}", "error",
         message=rf"^error: deeplab/config\.json: {_message}.*; make the checkpoint again with `chain import tflite`$")(
        lambda folder, field=_field, value=_value: (
            _edit_document(deeplab_mnv2_checkpoint(folder), _set(f"meta.{field}", value)),
            [*RUN, _clip(folder), *KINDS[0].run])[1])

SYNTH_META = [  # (kind, case, field, value, message after "KIND/config.json: ")
    (KINDS[1], "label-space-number", "label_space", 7, r"meta\.label_space is an integer, not a string"),
    (KINDS[1], "label-space-unknown", "label_space", "mars", r"meta\.label_space names 'mars'"),
    (KINDS[1], "step-negative", "step", -3, r"meta\.step is -3, must be at least 0"),
    (KINDS[1], "step-text", "step", "many", r"meta\.step is a string, not an integer"),
    (KINDS[1], "train-list", "train", [], r"meta\.train is a list, not an object"),
    (KINDS[2], "step-float", "step", 1.5, r"meta\.step is a number, not an integer"),
    (KINDS[2], "train-list", "train", ["film.mp4"], r"meta\.train is a list, not an object"),
    (KINDS[2], "film-number", "train.film", 3, r"meta\.train\.film is an integer, not a string"),
    (KINDS[2], "frames-negative", "frames", -1, r"meta\.frames is -1, must be at least 0"),
]
for _kind, _name, _field, _value, _message in SYNTH_META:
    case(f"{_kind.name}-meta-{_name}", "error", message=rf"^error: {_kind.run[-1]}/config\.json: {_message}")(
        lambda folder, kind=_kind, field=_field, value=_value: (
            _edit_document(kind.make(folder), _set(f"meta.{field}", value)), [*RUN, _clip(folder), *kind.run])[1])


# --- JSON: nested deep, huge, a key twice; and the top-level structure --------------------------------


def _write_raw(edit: Callable[[str], str]) -> Callable[[Path], None]:
    def write(checkpoint: Path) -> None:
        config = checkpoint / "config.json"
        config.write_text(edit(config.read_text()))
    return write


JSON_CASES = [
    ("nested-deep", _write_raw(lambda text: text.replace('"meta": {', '"meta": {"deep": ' + "[" * 100_000
                                                         + "]" * 100_000 + ", ", 1)),
     r"config\.json nests 100002 levels deep, more than the 64 chain reads"),
    ("nested-65", _write_raw(lambda text: text.replace('"meta": {', '"meta": {"deep": ' + "[" * 63 + "]" * 63 + ", ", 1)),
     r"config\.json nests 65 levels deep"),
    ("huge", _write_raw(lambda text: text.replace('"meta": {', '"meta": {"pad": "' + "x" * (17 << 20) + '", ', 1)),
     r"config\.json is 17 MB, larger than any JSON file chain reads \(16 MB\)"),
    ("key-twice", _write_raw(lambda text: text.replace('"meta": {', '"meta": {"step": 1, "step": 2, ', 1)),
     r"config\.json gives key 'step' twice in one object"),
    ("meta-a-list", _write_raw(lambda text: re.sub(r'"meta": \{', '"meta": [], "unused": {', text, count=1)),
     r"config\.json: \"meta\" must be a JSON object, not list"),
]
for _kind in KINDS:
    for _name, _edit, _message in JSON_CASES:
        case(f"{_kind.name}-config-json-{_name}", "error", message=_message)(
            lambda folder, kind=_kind, edit=_edit: (edit(kind.make(folder)), [*RUN, _clip(folder), *kind.run])[1])


@case("deeplab-mnv2-nested-json-within-bounds", "output", outputs=("masks.mp4",))
def _(folder: Path) -> list[str]:
    """64 levels (the bound) and brackets inside strings are fine."""
    _write_raw(lambda text: text.replace('"meta": {', '"meta": {"deep": ' + "[" * 62 + "]" * 62
                                         + ', "note": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", ',
                                         1))(deeplab_mnv2_checkpoint(folder))
    return [*RUN, _clip(folder), *KINDS[0].run]


# --- hf:DIR: a transformers folder's config.json ------------------------------------------------------


def _segformer(folder: Path) -> Path:
    from support.tiny_transformers import write_segformer

    return write_segformer(folder / "seg", ["sky", "road", "car"], side=32)


ID2LABEL = [  # (case, raw JSON text of id2label, message after "seg/config.json: ")
    ("list", '["sky", "road", "car"]', r"id2label is list, not an object of class ids to names"),
    ("text", '"sky, road, car"', r"id2label is str, not an object"),
    ("empty", "{}", r"id2label names no classes"),
    ("word-key", '{"0": "sky", "one": "road", "2": "car"}', r"id2label has key 'one', not a class id"),
    ("negative-key", '{"-1": "sky", "0": "road", "1": "car"}', r"id2label has key '-1', not a class id"),
    ("float-key", '{"0": "sky", "1.0": "road", "2": "car"}', r"id2label has key '1\.0', not a class id"),
    ("gap", '{"0": "sky", "1": "road", "3": "car"}', r"id2label must name classes 0\.\.N-1 without gaps; it lacks 2"),
    ("from-one", '{"1": "sky", "2": "road", "3": "car"}', r"id2label must name classes 0\.\.N-1 without gaps; it lacks 0"),
    ("same-id-spelt-twice", '{"0": "sky", "1": "road", "01": "car"}', r"id2label gives class 1 twice"),
    ("number-name", '{"0": "sky", "1": 7, "2": "car"}', r"id2label gives class 1 the name 7, not a non-empty string"),
    ("null-name", '{"0": "sky", "1": null, "2": "car"}', r"id2label gives class 1 the name None"),
    ("list-name", '{"0": "sky", "1": ["road"], "2": "car"}', r"id2label gives class 1 the name \['road'\]"),
    ("blank-name", '{"0": "sky", "1": "  ", "2": "car"}', r"id2label gives class 1 the name ' +', not a non-empty string"),
    ("too-many", "{" + ", ".join(f'"{i}": "c{i}"' for i in range(70_000)) + "}",
     r"id2label names 70000 classes, more than the 65535"),
]
for _name, _raw, _message in ID2LABEL:
    def _build(folder: Path, raw: str = _raw) -> list[str]:
        config = _segformer(folder) / "config.json"
        document = json.loads(config.read_text())
        document["id2label"] = "@ID2LABEL@"
        config.write_text(json.dumps(document).replace('"@ID2LABEL@"', raw))
        return [*RUN, _clip(folder), "--masks", "masks.mp4", "--seg", "hf:seg", "--device", "cpu"]

    case(f"hf-id2label-{_name}", "error", exit_code=2, message=rf"^error: seg/config\.json: {_message}")(_build)


@case("hf-id2label-key-twice", "error", exit_code=2, message=r"^error: seg/config\.json gives key '1' twice in one object")
def _(folder: Path) -> list[str]:
    config = _segformer(folder) / "config.json"
    config.write_text(config.read_text().replace('"id2label": {', '"id2label": {"1": "lake", ', 1))
    return [*RUN, _clip(folder), "--masks", "masks.mp4", "--seg", "hf:seg", "--device", "cpu"]


@case("hf-id2label-int-keys-and-duplicate-names", "output", outputs=("masks.mp4",))
def _(folder: Path) -> list[str]:
    """Two classes of one name are told apart by id (a lookup by name finds the first)."""
    config = _segformer(folder) / "config.json"
    document = json.loads(config.read_text())
    document["id2label"] = {"0": "sky", "1": "road", "2": "road"}
    config.write_text(json.dumps(document))
    return [*RUN, _clip(folder), "--masks", "masks.mp4", "--seg", "hf:seg", "--device", "cpu"]


for _file in ("config.json", "preprocessor_config.json"):
    @case(f"hf-{_file.removesuffix('.json').replace('_', '-')}-nested-deep", "error", exit_code=2,
          message=rf"^error: seg/{re.escape(_file)} nests 20001 levels deep, more than the 64 chain reads")
    def _(folder: Path, file: str = _file) -> list[str]:
        path = _segformer(folder) / file
        path.write_text(path.read_text().replace("{", '{"deep": ' + "[" * 20_000 + "]" * 20_000 + ", ", 1))
        return [*RUN, _clip(folder), "--masks", "masks.mp4", "--seg", "hf:seg", "--device", "cpu"]


# --- chain's ONNX cache: whatever is at an export's name, the run heals it ---------------------------


def _cache_base(checkpoint: Path) -> Path:
    """Where the export of a tiny checkpoint (33x33 input) is named, in chain's weights folder (this
    session's: tests/conftest.py); each case's checkpoint has its own seed, hence its own name."""
    from chain.stages.onnx_graphs import checkpoint_stamp, onnx_cache_file

    return onnx_cache_file(checkpoint, (33, 33), checkpoint_stamp(checkpoint))


def _real_export(checkpoint: Path) -> tuple[Path, bytes]:
    """The export chain stores for ``checkpoint``: its path in the cache and its bytes."""
    from chain.stages.onnx_cache import stored_name
    from chain.stages.onnx_graphs import export_onnx
    from chain.weights.deeplab_mnv2 import load_deeplab_mnv2

    base = _cache_base(checkpoint)
    model = export_onnx(load_deeplab_mnv2(checkpoint)[0], base, (33, 33))
    return stored_name(base, model), model


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(child.stdout)


def _staging_of(base: Path, pid: int) -> Path:
    from chain.media.targets import staging_path

    return staging_path(base, pid=pid)


def _entries(base: Path) -> list[Path]:
    return sorted(entry for entry in base.parent.iterdir() if entry.name.startswith((base.stem, f".{base.name}")))


def _healed(folder: Path, kept: tuple[str, ...] = ()) -> None:
    """One export under its name, a plain file whose bytes give the digest it is named by; nothing else
    of it but ``kept`` (names with HOST/PID placeholders resolved by the case)."""
    import hashlib

    base = _cache_base(folder / "deeplab")
    entries = [entry for entry in _entries(base) if entry.name not in kept]
    assert len(entries) == 1 and entries[0].is_file() and not entries[0].is_symlink(), entries
    digest = hashlib.sha256(entries[0].read_bytes()).hexdigest()[:16]
    assert entries[0].name == f"{base.stem}.{digest}.onnx", entries[0].name


def _cache_case(name: str, seed: int, plant: Callable[[Path, Path], tuple[str, ...] | None]) -> None:
    kept: list[str] = []

    def build(folder: Path) -> list[str]:
        checkpoint = deeplab_mnv2_checkpoint(folder, seed=seed)
        kept[:] = plant(folder, checkpoint) or ()
        return [*RUN, _clip(folder), "--masks", "masks.mp4", "--seg", "deeplab-mnv2", "--seg-weights", "deeplab"]

    case(f"onnx-cache-{name}", "output", outputs=("masks.mp4",),
         check=lambda folder: _healed(folder, tuple(kept)))(build)


def _rewrite(data: Callable[[bytes], bytes]) -> Callable[[Path, Path], None]:
    def plant(folder: Path, checkpoint: Path) -> None:
        path, model = _real_export(checkpoint)
        path.write_bytes(data(model))
    return plant


def _folder_at(legacy: bool) -> Callable[[Path, Path], None]:
    def plant(folder: Path, checkpoint: Path) -> None:
        path, _ = _real_export(checkpoint)
        path.unlink()
        target = _cache_base(checkpoint) if legacy else path
        target.mkdir()
        (target / "inside.txt").write_text("a folder where chain's export belongs")
    return plant


def _link_at(to: str, legacy: bool) -> Callable[[Path, Path], None]:
    """A link at the export's name, to the user's file or folder (never followed: the snapshot checks
    that they are untouched), or to nothing."""
    def plant(folder: Path, checkpoint: Path) -> None:
        path, model = _real_export(checkpoint)
        path.unlink()
        target = {"file": folder / "mine.onnx", "folder": folder / "keep", "nothing": folder / "gone"}[to]
        if to == "file":
            target.write_bytes(model)  # even the right bytes: a link is not chain's export
        elif to == "folder":
            target.mkdir()
            (target / "precious.txt").write_text("the user's")
        (_cache_base(checkpoint) if legacy else path).symlink_to(target)
    return plant


def _unreadable(folder: Path, checkpoint: Path) -> None:
    path, _ = _real_export(checkpoint)
    path.chmod(0)  # removed and made again; as root it is still readable, and reused


def _renamed(folder: Path, checkpoint: Path) -> None:
    path, _ = _real_export(checkpoint)
    path.rename(path.with_name(f"{_cache_base(checkpoint).stem}.{'0' * 16}.onnx"))


def _stale_parts(folder: Path, checkpoint: Path) -> tuple[str, ...]:
    """Staging parts of a killed export (a file and a folder) go; a running process's stays."""
    base = _cache_base(checkpoint)
    base.parent.mkdir(parents=True, exist_ok=True)
    dead = _dead_pid()
    _staging_of(base, dead).write_bytes(b"half an export")
    (_staging_of(base, dead)).mkdir()  # another killed part, a folder
    live = _staging_of(base, 1)  # pid 1 runs
    live.write_bytes(b"being written")
    return (live.name,)


for _seed, (_name, _plant) in enumerate([
    ("truncated", _rewrite(lambda model: model[:len(model) // 2])),
    ("empty", _rewrite(lambda model: b"")),
    ("foreign-bytes", _rewrite(lambda model: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64)),
    ("one-byte-flipped", _rewrite(lambda model: model[:-100] + bytes([model[-100] ^ 1]) + model[-99:])),
    ("folder-at-export", _folder_at(legacy=False)),
    ("folder-at-undigested-name", _folder_at(legacy=True)),
    ("link-to-users-file", _link_at("file", legacy=False)),
    ("link-to-users-folder", _link_at("folder", legacy=True)),
    ("dangling-link", _link_at("nothing", legacy=False)),
    ("unreadable-export", _unreadable),
    ("export-under-another-digest", _renamed),
    ("stale-staging-parts", _stale_parts),
]):
    _cache_case(_name, 1000 + _seed, _plant)


# --- torchvision's DeepLabV3 from a state_dict file (--seg-weights FILE) ------------------------------


def _torchvision_deeplab(folder: Path, name: str, edit: Callable[[dict[str, torch.Tensor]], None]) -> list[str]:
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

    torch.manual_seed(0)
    tensors = deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21).state_dict()
    edit(tensors)
    if name.endswith(".pth"):
        torch.save(tensors, folder / name)
    else:
        save_file(tensors, str(folder / name))
    return [*RUN, _clip(folder), "--masks", "masks.mp4", "--seg", "deeplab:mobilenet_v3_large", "--seg-weights", name]


for _file, _edit, _message in [
    ("nan.safetensors", _poke("classifier.4.bias", math.nan), r"nan\.safetensors: weight classifier\.4\.bias holds NaN"),
    ("inf.pth", _poke("backbone.0.1.running_var", math.inf), r"inf\.pth: weight backbone\.0\.1\.running_var holds \+inf"),
    ("int.pth", _cast("backbone.0.0.weight", torch.int64), r"int\.pth: weight backbone\.0\.0\.weight holds int64 values"),
]:
    case(f"torchvision-deeplab-{_file.replace('.', '-')}", "error", message=_message)(
        lambda folder, file=_file, edit=_edit: _torchvision_deeplab(folder, file, edit))
