"""Transformers segmentation models with random weights, saved as ``save_pretrained`` folders.

`write_mask2former` and `write_segformer` write a model, its config (with the class names of
a label space as ``id2label``) and its image processor, as the Hub repositories hold them, so
``--seg hf:FOLDER`` loads them through the same code as ``facebook/mask2former-swin-tiny-coco-panoptic``.
``tiny=True`` shrinks every width and depth (tests, seconds); ``tiny=False`` keeps the
architecture of the real checkpoints (benchmarks/hf_segmenter_speed.py).

Used by tests/test_hf_segmenter.py and benchmarks/hf_segmenter_speed.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch


def mask2former_swin_config(class_names: Sequence[str], *, tiny: bool):  # noqa: ANN201 (a transformers config)
    """Mask2Former with a Swin backbone: Swin-T and the COCO panoptic model's decoder when not ``tiny``."""
    from transformers import Mask2FormerConfig, SwinConfig

    stages = ["stage1", "stage2", "stage3", "stage4"]
    if tiny:
        backbone = SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=4,
                              out_features=stages)
        # 32 is the smallest width: the pixel decoder normalises with GroupNorm(32 groups)
        sizes = dict(feature_size=32, mask_feature_size=32, hidden_dim=32, encoder_feedforward_dim=32,
                     dim_feedforward=32, encoder_layers=1, decoder_layers=2, num_attention_heads=2, num_queries=12)
    else:  # facebook/mask2former-swin-tiny-coco-panoptic's config.json
        backbone = SwinConfig(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7,
                              drop_path_rate=0.3, out_features=stages)
        sizes = dict(feature_size=256, mask_feature_size=256, hidden_dim=256, encoder_feedforward_dim=1024,
                     dim_feedforward=2048, encoder_layers=6, decoder_layers=10, num_attention_heads=8, num_queries=100)
    return Mask2FormerConfig(backbone_config=backbone, id2label=dict(enumerate(class_names)),
                             label2id={n: i for i, n in enumerate(class_names)}, **sizes)


def write_mask2former(folder: Path, class_names: Sequence[str], *, tiny: bool = True, short_side: int = 64,
                      long_side: int = 1333, seed: int = 0) -> Path:
    """A ``Mask2FormerForUniversalSegmentation`` + ``Mask2FormerImageProcessor`` folder; returns it."""
    from transformers import Mask2FormerForUniversalSegmentation, Mask2FormerImageProcessor

    torch.manual_seed(seed)
    model = Mask2FormerForUniversalSegmentation(mask2former_swin_config(class_names, tiny=tiny))
    if tiny:  # at init (std 0.02) every query says the same class everywhere; wider heads make labels follow the image
        with torch.no_grad():
            for parameter in [*model.class_predictor.parameters(),
                              *model.model.transformer_module.decoder.mask_predictor.parameters()]:
                torch.nn.init.normal_(parameter, std=1.0)
    model.save_pretrained(folder)
    Mask2FormerImageProcessor(size={"shortest_edge": short_side, "longest_edge": long_side}, size_divisor=32).save_pretrained(folder)
    return folder


def write_segformer(folder: Path, class_names: Sequence[str], *, side: int = 64, seed: int = 0) -> Path:
    """A tiny ``SegformerForSemanticSegmentation`` + ``SegformerImageProcessor`` (square input) folder."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    torch.manual_seed(seed)
    config = SegformerConfig(depths=[1, 1, 1, 1], hidden_sizes=[8, 16, 16, 32], num_attention_heads=[1, 1, 1, 2],
                             decoder_hidden_size=32, id2label=dict(enumerate(class_names)),
                             label2id={n: i for i, n in enumerate(class_names)})
    SegformerForSemanticSegmentation(config).save_pretrained(folder)
    SegformerImageProcessor(size={"height": side, "width": side}).save_pretrained(folder)
    return folder
