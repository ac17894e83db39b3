"""SPADE's inference fast path: spectral norm folded into the weights, the input map built on the
device in the compute dtype without host syncs, and the stage using both with unchanged output."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from chain.device import inference_autocast_dtype, inference_dtype
from chain.labels import LabelSpace, get_label_space
from chain.labels.resize import resize_labels
from chain.stages.spade import SpadeSynthesizer
from models.spade import SPADEConfig, SpectralNormConv2d, fold_spectral_norm, make_spade_input
from tests.test_spade import tiny_generator

_VOC = get_label_space("voc")
#: A 4-class generator needs a 4-id space: VOC's first ids.
FOUR = LabelSpace(name="four", names=_VOC.names[:4], palette=_VOC.palette[:4], fallback=_VOC.names[0])


def reference_input(labels: torch.Tensor, config: SPADEConfig) -> torch.Tensor:
    """NVlabs' preprocess_input spelled out with F.one_hot (what make_spade_input must equal)."""
    num_classes = config.label_nc + int(config.contain_dontcare_label)
    one_hot = F.one_hot(labels.long(), num_classes).permute(0, 3, 1, 2).float()
    if config.no_instance:
        return one_hot
    # A pixel is an edge where its right/left/lower/upper neighbour differs (F.pad: last dim first).
    horizontal = labels.diff(dim=2) != 0
    vertical = labels.diff(dim=1) != 0
    edge = (F.pad(horizontal, (1, 0)) | F.pad(horizontal, (0, 1))
            | F.pad(vertical, (0, 0, 1, 0)) | F.pad(vertical, (0, 0, 0, 1)))
    return torch.cat([one_hot, edge[:, None].float()], dim=1)


def test_folded_generator_equals_the_eval_forward() -> None:
    for fields in ({}, {"num_upsampling_layers": "more", "crop_size": 128}):
        generator = tiny_generator(**fields)
        config = generator.config
        labels = torch.randint(0, config.label_nc + 1, (3, *config.output_size))
        segmap = make_spade_input(labels, labels, config)
        with torch.no_grad():
            expected = generator(segmap)
            generator.prepare_for_inference()
            folded = generator(segmap)
        assert not any(isinstance(m, SpectralNormConv2d) for m in generator.modules())
        assert not generator.training
        torch.testing.assert_close(folded, expected, rtol=0, atol=0)  # the same weights: bit-identical


def test_fold_spectral_norm_keeps_a_conv_s_weight_and_bias() -> None:
    torch.manual_seed(0)
    conv = SpectralNormConv2d(4, 6, 3, padding=1).eval()
    module = nn.Sequential(conv, nn.ReLU())
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        expected = module(x)
        fold_spectral_norm(module)
        assert type(module[0]) is nn.Conv2d and set(module[0].state_dict()) == {"weight", "bias"}
        assert torch.equal(module(x), expected)
    # A training-mode layer folds with its stored vectors: no power iteration moves them.
    conv = SpectralNormConv2d(4, 6, 1, bias=False).train()
    u = conv.weight_u.clone()
    folded = conv.folded()
    assert folded.bias is None and torch.equal(conv.weight_u, u) and conv.training


@pytest.mark.parametrize("config", [SPADEConfig.coco(), SPADEConfig.ade20k(), SPADEConfig.cityscapes()],
                         ids=["coco", "ade20k", "cityscapes"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_make_spade_input_equals_the_one_hot_reference(config: SPADEConfig, dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(1)
    num_classes = config.label_nc + int(config.contain_dontcare_label)
    labels = torch.randint(0, num_classes, (2, 9, 13), generator=generator)
    labels[:, 3:7, 4:9] = num_classes - 1  # a region: edges around it, none inside
    expected = reference_input(labels, config)
    for channels_last in (False, True):
        segmap = make_spade_input(labels.to(torch.int32), labels, config, dtype, channels_last=channels_last)
        assert segmap.dtype == dtype and segmap.shape == expected.shape
        assert segmap.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        assert torch.equal(segmap.float(), expected)


def test_make_spade_input_never_reads_device_data_back() -> None:
    # Meta tensors hold no data: any host sync (.item(), int(), a Python loop over values) raises.
    config = SPADEConfig.coco()
    labels = torch.zeros(4, 32, 48, dtype=torch.int64, device="meta")
    segmap = make_spade_input(labels, labels, config, torch.float16, channels_last=True)
    assert segmap.shape == (4, config.semantic_nc, 32, 48) and segmap.device.type == "meta"
    # On the CPU the range is still checked up front, with a readable error.
    with pytest.raises(ValueError, match="0..182"):
        make_spade_input(torch.full((1, 2, 2), 183), None, SPADEConfig.coco(no_instance=True))


def test_stage_output_is_unchanged_by_the_fast_path() -> None:
    generator = tiny_generator(label_nc=3)
    labels = np.random.default_rng(0).integers(0, 4, (2, 40, 40)).astype(np.uint8)
    ids = torch.from_numpy(labels.astype(np.int64))
    ids = resize_labels(ids, (64, 64))  # the one label-resize rule (pixel centres)
    with torch.no_grad():
        expected = generator.eval()(reference_input(ids, generator.config), latent_size=(2, 2))
    expected = ((expected.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    synthesizer = SpadeSynthesizer(generator, label_space=FOUR, fit="native")
    assert np.array_equal(synthesizer.synthesize(labels=labels, frames=None).numpy(), expected)
    assert np.array_equal(synthesizer.synthesize(labels=labels.astype(np.uint16), frames=None).numpy(), expected)


def test_the_input_is_built_in_the_device_policys_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    # The policy is a function of the device alone: fp16 under CUDA autocast, fp32 (never bf16) on the CPU.
    assert inference_dtype(torch.device("cuda")) is torch.float16
    assert inference_dtype(torch.device("cpu")) is torch.float32 and inference_autocast_dtype(torch.device("cpu")) is None
    import chain.stages.spade as stage

    seen = []
    monkeypatch.setattr(stage, "make_spade_input", lambda *args, **kwargs: seen.append((args[3], kwargs))
                        or make_spade_input(*args, **kwargs))
    synthesizer = SpadeSynthesizer(tiny_generator(label_nc=3), label_space=FOUR, fit="squash")
    synthesizer.synthesize(labels=np.zeros((1, 8, 8), dtype=np.uint8), frames=None)
    assert seen == [(torch.float32, {"channels_last": True})]
