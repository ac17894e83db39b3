"""Weights that cannot paint are refused before any work, and chain's ONNX cache heals itself.

chain.weights.fit.conform_tensors (dtypes, finiteness), chain.weights.schema (a checkpoint's meta),
chain.weights.folder.read_json (bounded JSON), chain.labels.model_space.class_names (a model's
id2label), chain.stages.onnx_cache (exports verified by their digest). The CLI cases, for every
checkpoint kind, are in tests/bad_inputs/weights.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from chain.errors import ChainError, ChainWarning
from chain.labels.model_space import class_names
from chain.stages import onnx_cache
from chain.stages.onnx_cache import cached_export, stored_name
from chain.weights import folder as folder_module
from chain.weights.fit import build_fitted, conform_tensors
from chain.weights.folder import json_depth, read_json
from chain.weights.schema import Field, check_meta, integer, items, label_space, mapping, number


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.norm = nn.BatchNorm2d(4)


def _weights(**changes: torch.Tensor) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {**_Net().state_dict(), **changes}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_float_precisions_are_cast_to_the_networks(dtype: torch.dtype) -> None:
    given_weights = {key: value.to(dtype) if value.is_floating_point() else value for key, value in _weights().items()}
    model = build_fitted(_Net, given_weights, source="w", what="net")
    assert model.conv.weight.dtype == torch.float32
    torch.testing.assert_close(model.conv.weight, given_weights["conv.weight"].float())


@pytest.mark.parametrize("key", ["conv.bias", "conv.weight", "norm.running_mean", "norm.running_var", "norm.weight"])
@pytest.mark.parametrize(("value", "shown"), [(math.nan, "NaN"), (math.inf, "+inf"), (-math.inf, "-inf")])
def test_one_non_finite_value_in_any_tensor_is_named(key: str, value: float, shown: str) -> None:
    tensor = _weights()[key].clone()
    tensor.view(-1)[-1] = value
    with pytest.raises(ChainError) as caught:
        conform_tensors(_Net().state_dict(), _weights(**{key: tensor}), source="ckpt")
    assert str(caught.value).startswith(f"ckpt: weight {key} holds {shown} (1 of {tensor.numel()} values)")


def test_every_kind_of_bad_value_is_counted() -> None:
    bias = torch.tensor([math.nan, math.inf, -math.inf, math.nan])
    with pytest.raises(ChainError, match=r"conv\.bias holds NaN/\+inf/-inf \(4 of 4 values\)"):
        conform_tensors(_Net().state_dict(), _weights(**{"conv.bias": bias}), source="ckpt")
    with pytest.raises(ChainError, match=r"holds \+inf once cast from float64 \(1 of 4 values\)"):
        conform_tensors(_Net().state_dict(), _weights(**{"conv.bias": torch.tensor([1e39, 0, 0, 0], dtype=torch.float64)}),
                        source="ckpt")


@pytest.mark.parametrize("dtype", [torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool,
                                   torch.complex64, torch.complex128, torch.float8_e4m3fn])
def test_numbers_that_are_not_float_weights_are_refused(dtype: torch.dtype) -> None:
    bias = torch.ones(4).to(dtype)
    with pytest.raises(ChainError, match=rf"ckpt: weight conv\.bias holds {str(dtype)[6:]} values, not floats"):
        conform_tensors(_Net().state_dict(), _weights(**{"conv.bias": bias}), source="ckpt")


def test_integer_buffers_take_any_integer_that_fits() -> None:
    for dtype in (torch.int8, torch.int32, torch.uint8):
        conformed = conform_tensors(_Net().state_dict(), _weights(**{"norm.num_batches_tracked": torch.tensor(7, dtype=dtype)}),
                                    source="ckpt")
        assert conformed["norm.num_batches_tracked"].dtype == torch.int64 and int(conformed["norm.num_batches_tracked"]) == 7
    for wrong in (torch.tensor(7.0), torch.tensor(True)):
        with pytest.raises(ChainError, match="num_batches_tracked holds .* values where the network keeps int64"):
            conform_tensors(_Net().state_dict(), _weights(**{"norm.num_batches_tracked": wrong}), source="ckpt")


def test_a_negative_variance_is_refused() -> None:
    with pytest.raises(ChainError, match=r"norm\.running_var holds a negative variance \(-2\)"):
        conform_tensors(_Net().state_dict(), _weights(**{"norm.running_var": torch.tensor([1.0, -2.0, 1.0, 1.0])}),
                        source="ckpt")


# --- meta schemas ---------------------------------------------------------------------------------

SCHEMA = {"size": Field(integer(1, 10), required=True), "space": Field(label_space),
          "norm": Field(mapping({"std": Field(items(number(0.01), length=2), required=True)})),
          "ids": Field(items(integer(0), unique=True))}


@pytest.mark.parametrize(("meta", "problem"), [
    ([], "meta is a list, not an object"),
    ({}, "meta.size is missing"),
    ({"size": 0}, "meta.size is 0, must be between 1 and 10"),
    ({"size": True}, "meta.size is a boolean, not an integer"),
    ({"size": 2, "space": None}, "meta.space is null, not a string"),
    ({"size": 2, "space": "vok"}, "meta.space names 'vok', a label space this version of chain does not know"),
    ({"size": 2, "norm": {}}, "meta.norm.std is missing"),
    ({"size": 2, "norm": {"std": [1, 0]}}, "meta.norm.std[1] is 0, must be at least 0.01"),
    ({"size": 2, "norm": {"std": [1, math.nan]}}, "meta.norm.std[1] is nan, not a finite number"),
    ({"size": 2, "norm": {"std": [1]}}, "meta.norm.std has 1 items, not 2"),
    ({"size": 2, "ids": [0, 1, 1]}, "meta.ids repeats 1 (items 1 and 2)"),
    ({"size": 2, "ids": [0, -1]}, "meta.ids[1] is -1, must be at least 0"),
])
def test_the_first_bad_field_is_named_by_its_path(meta: Any, problem: str) -> None:
    with pytest.raises(ChainError) as caught:
        check_meta(meta, SCHEMA, source="ckpt/config.json", remedy="fix it")
    assert str(caught.value) == f"ckpt/config.json: {problem}; fix it"


def test_a_good_meta_and_fields_the_schema_does_not_name_pass() -> None:
    check_meta({"size": 10, "space": "voc", "norm": {"std": [1, 2.5]}, "ids": [2, 0], "provenance": {"any": [1]}},
               SCHEMA, source="x", remedy="")


# --- bounded JSON ----------------------------------------------------------------------------------

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab', max_size=6),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\k', max_size=4),
                                                                               inner, max_size=3), max_leaves=40)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@settings(max_examples=200, deadline=None)
@given(_json)
def test_json_depth_counts_arrays_and_objects_not_brackets_in_strings(document: Any) -> None:
    assert json_depth(json.dumps(document)) == _depth(document)


def test_read_json_refuses_deep_huge_and_repeated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.json"
    path.write_text("[" * 64 + "]" * 64)
    assert _depth(read_json(path)) == 64
    path.write_text("[" * 65 + "]" * 65)
    with pytest.raises(ChainError, match=r"c\.json nests 65 levels deep, more than the 64 chain reads"):
        read_json(path)
    path.write_text("[" * 1_000_000)  # would be a RecursionError (and is not even valid)
    with pytest.raises(ChainError, match="nests 1000000 levels deep"):
        read_json(path)
    path.write_text('{"a": {"b": 1, "b": 2}}')
    with pytest.raises(ChainError, match="gives key 'b' twice in one object"):
        read_json(path)
    monkeypatch.setattr(folder_module, "MAX_JSON_BYTES", 1 << 20)
    path.write_text(json.dumps({"pad": "x" * (2 << 20)}))
    with pytest.raises(ChainError, match=r"c\.json is 2 MB, larger than any JSON file chain reads \(1 MB\)"):
        read_json(path)
    with pytest.raises(ChainError, match="is missing"):
        read_json(tmp_path / "none.json")


# --- a model's id2label ---------------------------------------------------------------------------


def test_class_names_take_config_json_and_transformers_spellings() -> None:
    assert class_names({"1": "road", "0": " sky "}, "m") == ["sky", "road"]
    assert class_names({1: "road", 0: "sky"}, "m") == ["sky", "road"]


@pytest.mark.parametrize(("id2label", "problem"), [
    (["sky"], "id2label is list, not an object"),
    ({}, "id2label names no classes"),
    ({True: "sky"}, "id2label has key True, not a class id"),
    ({"0": "sky", "x1": "road"}, "id2label has key 'x1', not a class id"),
    ({0: "sky", "0": "road"}, "id2label gives class 0 twice"),
    ({"0": "sky", "2": "road"}, "id2label must name classes 0..N-1 without gaps; it lacks 1"),
    ({"0": "sky", "1": 1.5}, "id2label gives class 1 the name 1.5, not a non-empty string"),
    ({"0": ""}, "id2label gives class 0 the name '', not a non-empty string"),
])
def test_a_malformed_id2label_is_one_line(id2label: Any, problem: str) -> None:
    with pytest.raises(ChainError) as caught:
        class_names(id2label, "seg/config.json")
    assert str(caught.value).startswith(f"seg/config.json: {problem}")


# --- chain's ONNX cache ----------------------------------------------------------------------------


class _Exporter:
    """Counts the exports asked for; each gives the same bytes (as torch's exporter does for one network)."""

    def __init__(self, model: bytes = b"ONNX" * 1000) -> None:
        self.model, self.calls = model, 0

    def __call__(self) -> bytes:
        self.calls += 1
        return self.model


def test_an_export_is_stored_under_its_digest_and_reused(tmp_path: Path) -> None:
    base, export = tmp_path / "onnx" / "net-33x33-features.onnx", _Exporter()
    assert cached_export(base, export) == export.model and export.calls == 1
    stored = stored_name(base, export.model)
    assert stored.name == f"net-33x33-features.{hashlib.sha256(export.model).hexdigest()[:16]}.onnx"
    assert sorted(p.name for p in base.parent.iterdir()) == [stored.name]  # no staging left
    assert cached_export(base, export) == export.model and export.calls == 1


@pytest.mark.parametrize("damage", ["truncate", "empty", "flip", "folder", "link", "dangling", "legacy", "chmod"])
def test_a_bad_entry_is_removed_and_made_again(tmp_path: Path, damage: str) -> None:
    base, export = tmp_path / "onnx" / "net-features.onnx", _Exporter()
    cached_export(base, export)
    stored = stored_name(base, export.model)
    outside = tmp_path / "users.onnx"
    outside.write_bytes(export.model)
    if damage in ("truncate", "empty", "flip"):
        data = {"truncate": export.model[:100], "empty": b"", "flip": b"X" + export.model[1:]}[damage]
        stored.write_bytes(data)
    elif damage == "folder":
        stored.unlink()
        stored.mkdir()
        (stored / "f").write_text("x")
    elif damage in ("link", "dangling"):
        stored.unlink()
        stored.symlink_to(outside if damage == "link" else tmp_path / "nowhere")
    elif damage == "legacy":
        base.write_bytes(export.model)  # what earlier versions wrote, no digest to check: removed beside a good one
    else:
        stored.chmod(0)
    assert cached_export(base, export) == export.model
    assert export.calls == (1 if damage == "legacy" or (damage == "chmod" and _root()) else 2)
    assert sorted(p.name for p in base.parent.iterdir()) == [stored.name]
    assert stored.is_file() and not stored.is_symlink() and stored.read_bytes() == export.model
    assert outside.read_bytes() == export.model  # a link is removed, never followed


def _root() -> bool:
    return os.geteuid() == 0  # root reads a 0000 file: the export is whole, and reused


def test_an_unwritable_cache_costs_an_export_and_one_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "onnx").write_text("a file where chain's cache folder belongs")
    export = _Exporter()
    with pytest.warns(ChainWarning, match=r"chain's ONNX cache .*onnx cannot be written \(file exists\): the network "
                                          "is exported again each run"):
        assert cached_export(tmp_path / "onnx" / "net.onnx", export) == export.model
    assert (tmp_path / "onnx").read_text().startswith("a file")
    base = tmp_path / "cache" / "net.onnx"
    monkeypatch.setattr(onnx_cache, "staging_path", lambda target: tmp_path / "no" / "such" / "folder" / "part")
    with pytest.warns(ChainWarning, match="cannot be written"):
        assert cached_export(base, export) == export.model
    assert list(base.parent.iterdir()) == []


def test_stale_parts_of_killed_exports_go_and_running_ones_stay(tmp_path: Path) -> None:
    from chain.media.targets import staging_path

    base = tmp_path / "onnx" / "net.onnx"
    base.parent.mkdir()
    dead, running = staging_path(base, pid=999999999), staging_path(base, pid=1)
    ours = staging_path(base)  # a look-alike: chain's name with another pid put in, so its seal is wrong
    look_alike = ours.with_name(ours.name.replace(f"-{os.getpid()}-", "-999999998-"))
    for path in (dead, running, look_alike):
        path.write_bytes(b"half")
    export = _Exporter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cached_export(base, export)
    assert not dead.exists() and running.exists() and look_alike.exists()


def test_an_imported_tflite_file_with_a_nan_constant_is_refused(tmp_path: Path) -> None:
    from chain.importers.tflite import import_tflite
    from tests.conftest import shared_file

    source = shared_file("weights/deeplabv3_mnv2_voc_257.tflite")
    _, state_dict, _ = import_tflite(source, label_space="voc")
    data = source.read_bytes()
    bias = state_dict["classifier.bias"].numpy().tobytes()  # stored as float32 in the file, as read
    assert data.count(bias) == 1
    at = data.index(bias) + 4 * 5
    damaged = tmp_path / "nan.tflite"
    damaged.write_bytes(data[:at] + torch.tensor([math.nan]).numpy().tobytes() + data[at + 4:])
    with pytest.raises(ChainError, match=rf"^{damaged}: weight classifier\.bias holds NaN \(1 of 21 values\)"):
        import_tflite(damaged, label_space="voc")
