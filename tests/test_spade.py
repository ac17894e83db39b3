"""SPADE generator: NVlabs parity on the shared reference fixtures, presets, checkpoints, inputs."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from chain.errors import ChainError
from chain.weights.folder import save_checkpoint
from chain.weights.spade import infer_spade_config, load_spade, load_spade_checkpoint, save_spade
from models.spade import (
    PRESETS,
    SPADEConfig,
    SPADEGenerator,
    SpectralNormConv2d,
    count_parameters,
    instance_edges,
    label_edges,
    make_spade_input,
)

SHARED = Path(os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
FIXTURES = SHARED / "fixtures" / "spade_reference"
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"SPADE reference fixtures not found at {FIXTURES} (set CHAIN_SHARED)"
)

TOLERANCE = 1e-4


def read_ids(path: Path) -> torch.Tensor:
    """A label or instance PNG as NVlabs reads it (pixel values are ids), batched: [1, H, W]."""
    return torch.from_numpy(np.array(Image.open(path)).astype(np.int64))[None]


def tiny_generator(seed: int = 0, **fields) -> SPADEGenerator:
    """A small generator whose spectral-norm vectors and BatchNorm statistics left their initial values."""
    torch.manual_seed(seed)
    config = SPADEConfig(**{**dict(label_nc=5, ngf=4, crop_size=64), **fields})
    generator = SPADEGenerator(config).train()
    labels = torch.randint(0, config.label_nc + 1, (2, 64, 64))
    with torch.no_grad():
        for _ in range(3):
            generator(make_spade_input(labels, labels, config))
    return generator.eval()


# -----------------------------------------------------------------------------
# Parity with NVlabs' own outputs


@needs_fixtures
@pytest.mark.parametrize("name", ["coco", "cityscapes"])
def test_matches_nvlabs_reference(name: str) -> None:
    options = json.loads((FIXTURES / "configs.json").read_text())[f"{name}_ngf8"]
    config = SPADEConfig.from_nvidia_options(options)
    assert config.semantic_nc == options["semantic_nc"]
    generator = load_spade(FIXTURES / f"{name}_ngf8_G.pth", config=config)
    # A preset name plus the weights' shapes must arrive at the same options.
    assert infer_spade_config(torch.load(FIXTURES / f"{name}_ngf8_G.pth", weights_only=True), name) == config

    segmap = make_spade_input(
        read_ids(FIXTURES / f"{name}_label.png"), read_ids(FIXTURES / f"{name}_instance.png"), config
    )
    with torch.no_grad():
        output = generator(segmap)
    reference = torch.from_numpy(np.load(FIXTURES / f"{name}_ngf8_output.npy"))
    assert output.shape == reference.shape
    error = (output - reference).abs().max().item()
    print(f"{name}: max abs error vs NVlabs = {error:.3g}")
    assert error <= TOLERANCE, f"{name}: max abs error {error:.3g} > {TOLERANCE}"


# -----------------------------------------------------------------------------
# Full-size presets: exactly the released checkpoints' keys, shapes and sizes


@needs_fixtures
@pytest.mark.parametrize("name", PRESETS)
def test_preset_matches_released_state_dict(name: str) -> None:
    released = json.loads((FIXTURES / "full_size_state_dicts.json").read_text())[name]
    config = SPADEConfig.preset(name)
    assert SPADEConfig.from_nvidia_options(released["options"]) == config
    with torch.device("meta"):
        generator = SPADEGenerator(config)
    shapes = {key: list(value.shape) for key, value in generator.state_dict().items()}
    assert shapes == released["state_dict"]  # num_batches_tracked included, as in the JSON
    # NVlabs' print_network counts parameters only (weight_orig, not the u/v buffers).
    assert count_parameters(generator) == released["num_params"]
    if name == "coco":
        assert count_parameters(generator) == 97_480_899

    meta_weights = {key: torch.empty(shape, device="meta") for key, shape in released["state_dict"].items()}
    assert infer_spade_config(meta_weights, name) == config
    with pytest.raises(ChainError, match=f"{config.semantic_nc} input channels"):
        infer_spade_config(meta_weights)


def test_preset_channel_counts() -> None:
    assert SPADEConfig.coco().semantic_nc == 184
    assert SPADEConfig.ade20k().semantic_nc == 151
    assert SPADEConfig.cityscapes().semantic_nc == 36
    assert SPADEConfig.coco().output_size == (256, 256)
    assert SPADEConfig.cityscapes().output_size == (256, 512)


# -----------------------------------------------------------------------------
# Loading and saving


@pytest.mark.slow
def test_checkpoint_round_trip(tmp_path: Path) -> None:
    generator = tiny_generator()
    labels = torch.randint(0, 6, (1, 64, 64))
    segmap = make_spade_input(labels, labels, generator.config)
    save_spade(generator, tmp_path / "spade", meta={"label_space": "camvid"})

    loaded, meta = load_spade_checkpoint(tmp_path / "spade")
    assert meta == {"label_space": "camvid"} and loaded.config == generator.config and not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(segmap), generator(segmap))
        assert torch.equal(load_spade(tmp_path / "spade")(segmap), generator(segmap))


@pytest.mark.slow
def test_load_nvidia_state_dict_tolerates_missing_num_batches_tracked() -> None:
    source = tiny_generator()
    state_dict = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    target = SPADEGenerator(source.config)
    target.load_nvidia_state_dict(state_dict)
    for key, value in source.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(target.state_dict()[key], value), key


@pytest.mark.slow
def test_load_nvidia_state_dict_is_strict_otherwise() -> None:
    state_dict = tiny_generator().state_dict()
    generator = SPADEGenerator(tiny_generator().config)
    broken = {k: v for k, v in state_dict.items() if k != "head_0.conv_0.weight_u"} | {"extra.weight": torch.zeros(1)}
    with pytest.raises(ValueError, match=r"missing keys: head_0\.conv_0\.weight_u; unexpected keys: extra\.weight"):
        generator.load_nvidia_state_dict(broken)
    with pytest.raises(ValueError, match="mis-shaped"):
        generator.load_nvidia_state_dict(state_dict | {"fc.bias": torch.zeros(3)})


def test_load_spade_from_pth(tmp_path: Path) -> None:
    generator = tiny_generator()
    torch.save(generator.state_dict(), tmp_path / "latest_net_G.pth")
    save_spade(generator, tmp_path / "ours")
    with pytest.raises(ChainError, match="its own config"):
        load_spade(tmp_path / "ours", preset="coco")
    # A tiny COCO-layout net: label_nc 5 + dontcare + instance; crop 64 comes in as an override.
    loaded = load_spade(tmp_path / "latest_net_G.pth", preset="coco", label_nc=5, crop_size=64)
    assert loaded.config == generator.config
    with pytest.raises(ChainError, match="ngf=4, not 64"):
        load_spade(tmp_path / "latest_net_G.pth", preset="coco", label_nc=5, crop_size=64, ngf=64)
    with pytest.raises(ChainError, match="name a preset"):
        load_spade(tmp_path / "latest_net_G.pth")
    with pytest.raises(ChainError, match="preset 'ade20k' gives 151"):
        load_spade(tmp_path / "latest_net_G.pth", preset="ade20k")


def test_load_spade_rejects_wrong_files(tmp_path: Path) -> None:
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    torch.save({"conv.weight": torch.zeros(2)}, tmp_path / "other.pth")
    save_checkpoint(tmp_path / "segmenter", model="deeplab", config={}, state_dict={"w": torch.zeros(1)})
    for path, message in [
        (tmp_path / "missing.pth", "does not exist"),
        (tmp_path / "notes.pth", "not a PyTorch state_dict"),
        (tmp_path / "other.pth", "not a SPADE generator"),
        (tmp_path / "segmenter", "not 'spade'"),
    ]:
        with pytest.raises(ChainError, match=message) as caught:
            load_spade(path, preset=None if path.name == "segmenter" else "coco")
        assert "\n" not in str(caught.value)


# -----------------------------------------------------------------------------
# Inputs


def test_instance_edges_mark_both_sides_of_every_4_neighbour_change() -> None:
    ids = torch.tensor([[[1, 1, 1, 1],
                         [1, 2, 2, 1],
                         [1, 1, 1, 1],
                         [3, 3, 3, 3]]])
    expected = torch.tensor([[[0, 1, 1, 0],
                              [1, 1, 1, 1],
                              [1, 1, 1, 1],
                              [1, 1, 1, 1]]], dtype=torch.float32)
    assert torch.equal(instance_edges(ids), expected[:, None])
    # Diagonal neighbours do not count.
    diagonal = torch.tensor([[[1, 1, 1], [1, 1, 1], [1, 1, 5]]])
    assert instance_edges(diagonal)[0, 0, 1, 1] == 0 and instance_edges(diagonal)[0, 0, 2, 2] == 1
    assert torch.equal(label_edges(ids), instance_edges(ids))


def test_make_spade_input_layout() -> None:
    config = SPADEConfig(label_nc=3, contain_dontcare_label=True, no_instance=False)
    labels = torch.tensor([[[0, 3], [2, 2]]])
    instances = torch.tensor([[[7, 7], [7, 7]]])
    segmap = make_spade_input(labels, instances, config)
    assert segmap.shape == (1, 5, 2, 2) and segmap.dtype == torch.float32
    assert torch.equal(segmap[0, :4].argmax(0), labels[0])  # id label_nc is the dontcare channel
    assert torch.equal(segmap[0, :4].sum(0), torch.ones(2, 2))
    assert segmap[0, 4].sum() == 0  # one instance: no edges

    ade = SPADEConfig.ade20k()
    assert make_spade_input(torch.full((1, 4, 4), 150), None, ade).shape == (1, 151, 4, 4)
    with pytest.raises(ValueError, match="0..3"):
        make_spade_input(torch.tensor([[[4]]]), instances[:, :1, :1], config)
    with pytest.raises(ValueError, match="instance"):
        make_spade_input(labels, None, config)


# -----------------------------------------------------------------------------
# Architecture variants


@pytest.mark.parametrize(
    "layers, crop, aspect, size",
    [("normal", 64, 1.0, (64, 64)), ("more", 128, 2.0, (64, 128)), ("most", 128, 1.0, (128, 128))],
)
def test_upsampling_schedules(layers: str, crop: int, aspect: float, size: tuple[int, int]) -> None:
    config = SPADEConfig(label_nc=3, ngf=4, num_upsampling_layers=layers, crop_size=crop, aspect_ratio=aspect)
    generator = SPADEGenerator(config).eval()
    assert config.output_size == size
    assert hasattr(generator, "up_4") == (layers == "most")
    labels = torch.randint(0, 4, (1, *size))
    with torch.no_grad():
        output = generator(make_spade_input(labels, labels, config))
    assert output.shape == (1, 3, *size)
    assert output.abs().max() <= 1


def test_spectral_norm_matches_torch_in_train_and_eval() -> None:
    reference_fn = getattr(nn.utils, "spectral_norm", None)
    if reference_fn is None:
        pytest.skip("torch.nn.utils.spectral_norm is gone from this torch")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = reference_fn(nn.Conv2d(6, 5, 3, padding=1))
    ours = SpectralNormConv2d(6, 5, 3, padding=1)
    assert list(ours.state_dict()) == list(reference.state_dict())
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, 6, 7, 7)
    for training in (True, True, False, True):
        reference.train(training)
        ours.train(training)
        a, b = reference(x), ours(x)
        a.square().sum().backward()
        b.square().sum().backward()
        assert torch.allclose(a, b, atol=1e-6)
        assert torch.allclose(reference.weight_orig.grad, ours.weight_orig.grad, atol=1e-6)
        assert torch.allclose(reference.weight_u, ours.weight_u) and torch.allclose(reference.weight_v, ours.weight_v)
        reference.zero_grad()
        ours.zero_grad()


def test_vae_generator_takes_z(tmp_path: Path) -> None:
    # No NVlabs reference covers the VAE variant; this only checks wiring and config inference.
    config = SPADEConfig(label_nc=3, ngf=4, crop_size=64, use_vae=True, z_dim=16)
    generator = SPADEGenerator(config).eval()
    torch.save(generator.state_dict(), tmp_path / "vae_G.pth")
    assert load_spade(tmp_path / "vae_G.pth", preset="coco", label_nc=3, crop_size=64).config == config
    labels = torch.randint(0, 4, (2, 64, 64))
    with torch.no_grad():
        output = generator(make_spade_input(labels, labels, config), z=torch.randn(2, 16))
    assert output.shape == (2, 3, 64, 64)
