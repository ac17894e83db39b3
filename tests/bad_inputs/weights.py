"""Bad-inputs cases: weights that cannot paint, checkpoint meta and JSON a schema refuses, a
transformers folder's id2label, and chain's own ONNX cache damaged (see tests/bad_inputs/__init__.py).

Generated in loops, for every checkpoint kind chain loads (deeplab-mnv2, spade and vaegan folders,
an NVlabs ``latest_net_G.pth``): a NaN, +inf or -inf in each kind of tensor (a bias, a conv weight,
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
    ("label-offset-negative", "label_offset", -1, r"meta\.label_offset is -1, must be at least 0"),
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
    from tests.tiny_transformers import write_segformer

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
