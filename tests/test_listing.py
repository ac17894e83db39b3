"""`chain list` (issue 29): names and weight locations without torch, and the defaults `chain run` uses marked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chain.config import DEFAULT_SEGMENTER, DEFAULT_SYNTHESIZER
from chain.stages import stages
from chain.weights import locations

LIST_LIGHT = """
import sys
from chain.entry import main
main(["list"])
print("HEAVY", sorted(name for name in ("torch", "torchvision", "transformers", "diffusers", "onnxruntime")
                      if name in sys.modules))
"""


def test_chain_list_marks_only_what_chain_run_uses_and_loads_no_torch(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", LIST_LIGHT], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "100", "CHAIN_WEIGHTS": str(tmp_path / "w")})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "HEAVY []"
    marked = [line.split()[0] for line in lines if "default)" in line.split("  label space")[0]]
    assert marked == [DEFAULT_SEGMENTER, DEFAULT_SYNTHESIZER]
    # The other families' plain names are still explained, without the word "default".
    assert any(line.startswith("spade:coco (or just spade)  ") for line in lines)
    assert f"segmenters (--seg; without it chain run uses {DEFAULT_SEGMENTER})" in lines
    # Weight locations are still there: the torch-free catalogue names the same paths.
    assert f"    weights missing: {tmp_path / 'w' / 'spade' / 'coco_pretrained' / 'latest_net_G.pth'} (get: " \
           in "\n".join(lines)


def test_listed_torchvision_locations_are_torchvisions_own(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import torch
    from torchvision.models import segmentation

    enums = {"resnet50": segmentation.DeepLabV3_ResNet50_Weights, "resnet101": segmentation.DeepLabV3_ResNet101_Weights,
             "mobilenet_v3_large": segmentation.DeepLabV3_MobileNet_V3_Large_Weights}
    assert {variant: enum.DEFAULT.url for variant, enum in enums.items()} == locations.DEEPLAB_URLS
    assert tuple(enums) == stages("segmenter")["deeplab"].variants
    for environ in ({}, {"XDG_CACHE_HOME": str(tmp_path / "xdg")}, {"TORCH_HOME": str(tmp_path / "th"),
                                                                    "XDG_CACHE_HOME": str(tmp_path / "xdg")}):
        for name in ("TORCH_HOME", "XDG_CACHE_HOME"):
            monkeypatch.delenv(name, raising=False)
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        assert locations.torch_hub_dir() == Path(torch.hub.get_dir())
