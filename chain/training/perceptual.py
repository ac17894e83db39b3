"""SPADE's VGG-19 perceptual loss, available only when the user supplies VGG-19 weights.

torchvision's ImageNet VGG-19 (``vgg19-dcbb9e9d.pth``, from torchvision's weight URL) is what
NVlabs uses; it cannot be downloaded on offline machines, so the loss is opt-in
(``--vgg-weights FILE``) rather than silently trained with random features.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import VGG19_Weights, vgg19

from chain.errors import ChainError
from chain.weights.fit import describe_mismatch, read_torch_file

# relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 end after these layer counts of vgg19.features.
SLICE_ENDS = (2, 7, 12, 21, 30)
SLICE_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
WEIGHTS_URL = VGG19_Weights.IMAGENET1K_V1.url


class VGGPerceptualLoss(nn.Module):
    """Weighted L1 between VGG-19 features of two images in [-1, 1] (NVlabs' ``VGGLoss``)."""

    def __init__(self, weights_path: str | os.PathLike) -> None:
        super().__init__()
        if not Path(weights_path).is_file():
            raise ChainError(f"cannot read VGG-19 weights {weights_path} (no such file); get {WEIGHTS_URL}")
        state = read_torch_file(weights_path)
        if not isinstance(state, dict):
            raise ChainError(f"{weights_path} is not a torchvision VGG-19 state_dict; get {WEIGHTS_URL}")
        features = vgg19(weights=None).features[:SLICE_ENDS[-1]]
        expected = features.state_dict()
        # Only the layers up to relu5_1 are used: the file's later layers and classifier are left out.
        renamed = {str(key).removeprefix("features."): value for key, value in state.items()}
        state = {key: value for key, value in renamed.items() if key in expected}
        problem = describe_mismatch(expected, state)
        if problem:
            raise ChainError(f"{weights_path} is not a torchvision VGG-19 state_dict ({problem}); get {WEIGHTS_URL}")
        features.load_state_dict(state)
        self.features = features.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def _activations(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = ((image + 1) / 2 - self.mean) / self.std
        outputs, start = [], 0
        for end in SLICE_ENDS:
            x = self.features[start:end](x)
            outputs.append(x)
            start = end
        return outputs

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            targets = self._activations(real)
        return sum(w * F.l1_loss(f, t) for w, f, t in zip(SLICE_WEIGHTS, self._activations(fake), targets))
