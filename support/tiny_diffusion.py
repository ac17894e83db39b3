"""A tiny Stable Diffusion + segmentation ControlNet with random weights, saved as diffusers folders.

The sizes are those of diffusers' own ControlNet pipeline tests (``get_dummy_components``):
a two-block UNet and ControlNet of 4 and 8 channels, a two-block VAE (latents 1/2 of the
image), a 5-layer CLIP text encoder of width 32. Its tokenizer is written here from a
byte-level vocabulary of printable ASCII (one token per character, no merges), since the
Hub's tiny test tokenizer cannot be downloaded in tests.

A new ControlNet's zero convolutions (after the control image's embedding and on every
output) start at zero, so it adds nothing until trained; like diffusers' tests, they are
given random weights here so that the label map reaches the picture.

Used by tests/test_controlnet.py and benchmarks/controlnet_flicker.py (``--tiny``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch


def write_tiny_controlnet(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write ``root/base`` (a ``StableDiffusionPipeline`` folder) and ``root/controlnet``; return both."""
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    vocabulary_dir = root / "vocabulary"
    vocabulary_dir.mkdir(parents=True, exist_ok=True)
    characters = [chr(code) for code in range(33, 127)]  # ByteLevel maps printable ASCII to itself
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    vocab.update({token: len(vocab) + i for i, token in enumerate(characters + [c + "</w>" for c in characters])})
    (vocabulary_dir / "vocab.json").write_text(json.dumps(vocab))
    (vocabulary_dir / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer.from_pretrained(str(vocabulary_dir), model_max_length=77)

    blocks = dict(block_out_channels=(4, 8), layers_per_block=2, in_channels=4, cross_attention_dim=32,
                  down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), norm_num_groups=1)
    unet = UNet2DConditionModel(**blocks, sample_size=32, out_channels=4,
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
    controlnet = ControlNetModel(**blocks, conditioning_embedding_out_channels=(16, 32))
    with torch.no_grad():
        for conv in [controlnet.controlnet_cond_embedding.conv_out, *controlnet.controlnet_down_blocks,
                     controlnet.controlnet_mid_block]:
            torch.nn.init.normal_(conv.weight, std=0.5)
            conv.bias.fill_(0.1)
    vae = AutoencoderKL(block_out_channels=(4, 8), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=2)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37, layer_norm_eps=1e-5,
        num_attention_heads=4, num_hidden_layers=5, vocab_size=len(vocab)))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)  # Stable Diffusion 1.5's schedule
    # Saved as Stable Diffusion 1.5's repository is: a plain StableDiffusionPipeline, no safety checker here.
    StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                            safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(root / "base")
    controlnet.save_pretrained(root / "controlnet")
    return root / "base", root / "controlnet"
