"""SPADE / GauGAN generator (Park et al. 2019), compatible with NVlabs' released weights.

Computes exactly what NVlabs/SPADE's ``SPADEGenerator`` computes (``norm_G =
spectralspadesyncbatch3x3``, no VAE) and uses the same state_dict keys, so their
``checkpoints/{coco,ade20k,cityscapes}_pretrained/latest_net_G.pth`` load unchanged.
Read top to bottom: config, spectral-norm conv, SPADE norm, residual block, generator,
then the input builder that turns label and instance maps into the generator's input.

Pure torch: this file never imports ``chain``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

# Number of 2x nearest upsamplings between the fc layer's grid and the output.
UPSAMPLINGS = {"normal": 5, "more": 6, "most": 7}


# -----------------------------------------------------------------------------
# Config


@dataclass
class SPADEConfig:
    """Everything that shapes a SPADE generator; field names follow NVlabs' options.

    The input has ``semantic_nc`` channels: one-hot over ``label_nc`` classes, one more
    "dontcare" class (id ``label_nc``) when ``contain_dontcare_label``, and one channel of
    instance edges unless ``no_instance``. The output is ``output_size`` pixels, set by
    ``crop_size``, ``aspect_ratio`` and ``num_upsampling_layers`` whatever the input size.
    """

    label_nc: int = 182
    contain_dontcare_label: bool = True
    no_instance: bool = False
    ngf: int = 64
    num_upsampling_layers: str = "normal"  # "normal" | "more" | "most"
    crop_size: int = 256
    aspect_ratio: float = 1.0
    use_vae: bool = False
    z_dim: int = 256
    # norm_G = "spectralspadesyncbatch3x3" spelled out:
    spectral_norm: bool = True
    param_free_norm: str = "syncbatch"  # "syncbatch" | "batch" | "instance"
    spade_kernel_size: int = 3
    spade_hidden: int = 128  # hard-coded in NVlabs' SPADE module

    def __post_init__(self) -> None:
        if self.num_upsampling_layers not in UPSAMPLINGS:
            raise ValueError(
                f"num_upsampling_layers must be one of {list(UPSAMPLINGS)}, not {self.num_upsampling_layers!r}"
            )
        if self.param_free_norm not in ("syncbatch", "batch", "instance"):
            raise ValueError(
                f"param_free_norm must be 'syncbatch', 'batch' or 'instance', not {self.param_free_norm!r}"
            )

    @property
    def semantic_nc(self) -> int:
        """Input channels: label classes, dontcare, instance edges."""
        return self.label_nc + int(self.contain_dontcare_label) + int(not self.no_instance)

    @property
    def latent_size(self) -> tuple[int, int]:
        """``(sh, sw)``: the grid the fc layer works on, computed as NVlabs does."""
        sw = self.crop_size // 2 ** UPSAMPLINGS[self.num_upsampling_layers]
        return round(sw / self.aspect_ratio), sw

    @property
    def output_size(self) -> tuple[int, int]:
        """``(height, width)`` of the generated image."""
        scale = 2 ** UPSAMPLINGS[self.num_upsampling_layers]
        sh, sw = self.latent_size
        return sh * scale, sw * scale

    # Presets: the options behind NVlabs' released checkpoints.

    @classmethod
    def coco(cls, **overrides: Any) -> SPADEConfig:
        """COCO-Stuff: 182 classes + dontcare (id 182 = unlabeled) + instance edges = 184 channels."""
        return cls(**{**dict(label_nc=182, contain_dontcare_label=True, no_instance=False), **overrides})

    @classmethod
    def ade20k(cls, **overrides: Any) -> SPADEConfig:
        """ADE20K: 150 classes + dontcare (id 150 = "other"), no instance maps = 151 channels."""
        return cls(**{**dict(label_nc=150, contain_dontcare_label=True, no_instance=True), **overrides})

    @classmethod
    def cityscapes(cls, **overrides: Any) -> SPADEConfig:
        """Cityscapes: 35 label ids + instance edges = 36 channels; 256x512 output."""
        defaults = dict(label_nc=35, contain_dontcare_label=False, no_instance=False,
                        num_upsampling_layers="more", crop_size=512, aspect_ratio=2.0)
        return cls(**{**defaults, **overrides})

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SPADEConfig:
        """The preset called ``name`` (``coco``, ``ade20k`` or ``cityscapes``)."""
        if name not in PRESETS:
            raise KeyError(f"unknown SPADE preset {name!r}; choose from {', '.join(PRESETS)}")
        return getattr(cls, name)(**overrides)

    @classmethod
    def from_nvidia_options(cls, options: Mapping[str, Any]) -> SPADEConfig:
        """Build from NVlabs' option names (``norm_G`` string included); extra options are ignored."""
        norm_g = options.get("norm_G", "spectralspadesyncbatch3x3")
        parsed = re.fullmatch(r"(spectral)?spade(\D+)(\d)x\d", norm_g)
        if parsed is None:
            raise ValueError(f"unsupported norm_G {norm_g!r}")
        fields = {f.name for f in dataclasses.fields(cls)}
        config = cls(
            **{k: v for k, v in options.items() if k in fields},
            spectral_norm=parsed.group(1) is not None,
            param_free_norm=parsed.group(2),
            spade_kernel_size=int(parsed.group(3)),
        )
        if "semantic_nc" in options and options["semantic_nc"] != config.semantic_nc:
            raise ValueError(
                f"semantic_nc {options['semantic_nc']} disagrees with the label options ({config.semantic_nc})"
            )
        return config


PRESETS = ("coco", "ade20k", "cityscapes")


# -----------------------------------------------------------------------------
# Spectral normalization


class SpectralNormConv2d(nn.Conv2d):
    """A Conv2d whose weight is ``weight_orig / sigma``, as ``torch.nn.utils.spectral_norm`` does it.

    Same names and semantics as torch's hook version (which NVlabs used): parameter
    ``weight_orig``, buffers ``weight_u`` and ``weight_v``. In eval mode sigma =
    u·(W v) with the stored vectors; in train mode each forward first runs one power
    iteration that updates them in place.
    """

    def __init__(self, *args: Any, eps: float = 1e-12, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.eps = eps
        # Re-registering the weight after the bias gives NVlabs' key order (bias, weight_orig).
        weight = self.weight
        del self.weight
        self.weight_orig = weight
        height, width = weight.shape[0], weight[0].numel()
        with torch.no_grad():
            self.register_buffer("weight_u", F.normalize(weight.new_empty(height).normal_(0, 1), dim=0, eps=eps))
            self.register_buffer("weight_v", F.normalize(weight.new_empty(width).normal_(0, 1), dim=0, eps=eps))

    def normalized_weight(self) -> torch.Tensor:
        """``weight_orig`` divided by its estimated largest singular value."""
        # float32 even under autocast: the power iteration writes the float32 buffers in place.
        with torch.autocast(self.weight_orig.device.type, enabled=False):
            matrix = self.weight_orig.reshape(self.weight_orig.shape[0], -1)
            u, v = self.weight_u, self.weight_v
            if self.training:
                with torch.no_grad():
                    v = F.normalize(torch.mv(matrix.t(), u), dim=0, eps=self.eps, out=v)
                    u = F.normalize(torch.mv(matrix, v), dim=0, eps=self.eps, out=u)
                # Clones keep autograd from seeing the next in-place update of the buffers.
                u, v = u.clone(), v.clone()
            sigma = torch.dot(u, torch.mv(matrix, v))
            return self.weight_orig / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.normalized_weight(), self.bias)

    def folded(self) -> nn.Conv2d:
        """A plain ``nn.Conv2d`` holding this layer's eval-mode weight (``weight_orig / sigma``).

        Its forward equals this layer's eval forward, without recomputing sigma every call.
        """
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, stride=self.stride,
                         padding=self.padding, dilation=self.dilation, groups=self.groups,
                         bias=self.bias is not None, padding_mode=self.padding_mode,
                         device=self.weight_orig.device, dtype=self.weight_orig.dtype)
        with torch.no_grad():
            training, self.training = self.training, False  # sigma from the stored u, v: no power step
            try:
                conv.weight.copy_(self.normalized_weight())
            finally:
                self.training = training
            if self.bias is not None:
                conv.bias.copy_(self.bias)
        return conv


def fold_spectral_norm(module: nn.Module) -> nn.Module:
    """Replace every `SpectralNormConv2d` under ``module`` by its `SpectralNormConv2d.folded` conv, in place.

    For inference: the output equals the eval-mode output of the unfolded module, and no
    sigma is computed per forward. The folded module's state_dict has plain ``weight`` keys,
    so fold after loading weights (NVlabs' keys are ``weight_orig``, ``weight_u``, ``weight_v``).
    Returns ``module`` (or its folded replacement, when ``module`` itself is one).
    """
    if isinstance(module, SpectralNormConv2d):
        return module.folded()
    for name, child in module.named_children():
        folded = fold_spectral_norm(child)
        if folded is not child:
            setattr(module, name, folded)
    return module


def conv2d(config: SPADEConfig, fin: int, fout: int, kernel_size: int, bias: bool = True) -> nn.Conv2d:
    """A residual-block conv: spectral-normalized unless the config turns it off."""
    cls = SpectralNormConv2d if config.spectral_norm else nn.Conv2d
    return cls(fin, fout, kernel_size=kernel_size, padding=kernel_size // 2, bias=bias)


# -----------------------------------------------------------------------------
# SPADE normalization and residual block


class SPADE(nn.Module):
    """Parameter-free normalization, then a per-pixel scale and shift predicted from the segmap."""

    def __init__(self, config: SPADEConfig, norm_nc: int) -> None:
        super().__init__()
        if config.param_free_norm == "instance":
            self.param_free_norm: nn.Module = nn.InstanceNorm2d(norm_nc, affine=False)
        else:
            # SyncBatchNorm on one device is BatchNorm; eval uses the running statistics.
            self.param_free_norm = nn.BatchNorm2d(norm_nc, affine=False)
        ks, hidden = config.spade_kernel_size, config.spade_hidden
        self.mlp_shared = nn.Sequential(nn.Conv2d(config.semantic_nc, hidden, ks, padding=ks // 2), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, ks, padding=ks // 2)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, ks, padding=ks // 2)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        normalized = self.param_free_norm(x)
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    """Two SPADE -> leaky ReLU -> conv steps plus a shortcut (learned when channels change)."""

    def __init__(self, config: SPADEConfig, fin: int, fout: int) -> None:
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        # Module order matches NVlabs so state_dict keys come out in the same order.
        self.conv_0 = conv2d(config, fin, fmiddle, 3)
        self.conv_1 = conv2d(config, fmiddle, fout, 3)
        if self.learned_shortcut:
            self.conv_s = conv2d(config, fin, fout, 1, bias=False)
        self.norm_0 = SPADE(config, fin)
        self.norm_1 = SPADE(config, fmiddle)
        if self.learned_shortcut:
            self.norm_s = SPADE(config, fin)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return x_s + dx


# -----------------------------------------------------------------------------
# Generator


class SPADEGenerator(nn.Module):
    """Segmap ``[B, semantic_nc, H, W]`` -> image ``[B, 3, *config.output_size]`` in [-1, 1]."""

    def __init__(self, config: SPADEConfig) -> None:
        super().__init__()
        self.config = config
        nf = config.ngf
        self.sh, self.sw = config.latent_size
        if config.use_vae:
            self.fc: nn.Module = nn.Linear(config.z_dim, 16 * nf * self.sh * self.sw)
        else:
            # Deterministic: start from the segmap shrunk to the latent grid.
            self.fc = nn.Conv2d(config.semantic_nc, 16 * nf, 3, padding=1)
        self.head_0 = SPADEResnetBlock(config, 16 * nf, 16 * nf)
        self.G_middle_0 = SPADEResnetBlock(config, 16 * nf, 16 * nf)
        self.G_middle_1 = SPADEResnetBlock(config, 16 * nf, 16 * nf)
        self.up_0 = SPADEResnetBlock(config, 16 * nf, 8 * nf)
        self.up_1 = SPADEResnetBlock(config, 8 * nf, 4 * nf)
        self.up_2 = SPADEResnetBlock(config, 4 * nf, 2 * nf)
        self.up_3 = SPADEResnetBlock(config, 2 * nf, 1 * nf)
        final_nc = nf
        if config.num_upsampling_layers == "most":
            self.up_4 = SPADEResnetBlock(config, nf, nf // 2)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, 3, 3, padding=1)

    def prepare_for_inference(self) -> SPADEGenerator:
        """Eval mode with spectral norm folded into the weights (`fold_spectral_norm`); returns self.

        The outputs are those of the eval-mode generator before; a prepared generator no
        longer loads NVlabs state_dicts (its convs have plain ``weight`` keys) nor trains
        with spectral norm.
        """
        fold_spectral_norm(self.eval())
        return self

    @staticmethod
    def up(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest")

    def forward(self, seg: torch.Tensor, z: torch.Tensor | None = None, *,
                latent_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Generate images; ``z`` (``[B, z_dim]``) is only used, and sampled if missing, with ``use_vae``.

        ``latent_size`` overrides the ``(sh, sw)`` grid the generator starts from, which sets
        the output size (``latent_size * 2**upsamplings``): every layer after ``fc`` is
        convolutional, so a non-VAE generator runs at other aspect ratios unchanged.
        """
        if seg.dim() != 4 or seg.shape[1] != self.config.semantic_nc:
            raise ValueError(f"expected a [B, {self.config.semantic_nc}, H, W] segmap, got {list(seg.shape)}")
        sh, sw = latent_size or (self.sh, self.sw)
        if self.config.use_vae:
            if latent_size is not None and tuple(latent_size) != (self.sh, self.sw):
                raise ValueError("a VAE generator's linear fc layer fixes its latent grid")
            if z is None:
                z = torch.randn(seg.shape[0], self.config.z_dim, dtype=seg.dtype, device=seg.device)
            x = self.fc(z).view(-1, 16 * self.config.ngf, sh, sw)
        else:
            x = self.fc(F.interpolate(seg, size=(sh, sw), mode="nearest"))

        x = self.head_0(x, seg)
        x = self.up(x)
        x = self.G_middle_0(x, seg)
        if self.config.num_upsampling_layers in ("more", "most"):
            x = self.up(x)
        x = self.G_middle_1(x, seg)
        for block in (self.up_0, self.up_1, self.up_2, self.up_3):
            x = block(self.up(x), seg)
        if self.config.num_upsampling_layers == "most":
            x = self.up_4(self.up(x), seg)
        x = self.conv_img(F.leaky_relu(x, 0.2))
        return torch.tanh(x)

    def load_nvidia_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Load a NVlabs ``latest_net_G.pth`` state_dict (or ours, which has the same keys).

        BatchNorm ``num_batches_tracked`` entries may be absent; everything else must
        match exactly. Raises ValueError naming missing, unexpected or mis-shaped keys.
        """
        own = self.state_dict()
        state_dict = dict(state_dict)
        for key, value in own.items():
            if key.endswith(".num_batches_tracked") and key not in state_dict:
                state_dict[key] = value.clone()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        wrong = [f"{k} {list(state_dict[k].shape)} != {list(own[k].shape)}"
                 for k in own if k in state_dict and state_dict[k].shape != own[k].shape]
        problems = []
        for what, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", wrong)):
            if keys:
                shown = ", ".join(keys[:5]) + (f", ... ({len(keys)} in all)" if len(keys) > 5 else "")
                problems.append(f"{what} keys: {shown}")
        if problems:
            raise ValueError("state_dict does not fit this SPADE generator: " + "; ".join(problems))
        self.load_state_dict(state_dict, strict=True)


def count_parameters(module: nn.Module) -> int:
    """Parameter count as NVlabs prints it: parameters only, no buffers (u, v, running stats)."""
    return sum(p.numel() for p in module.parameters())


# -----------------------------------------------------------------------------
# Input: label and instance maps -> one-hot segmap


def instance_edges(ids: torch.Tensor) -> torch.Tensor:
    """NVlabs' ``get_edges``: ``[B, H, W]`` ids -> ``[B, 1, H, W]`` float, 1 where a 4-neighbour differs.

    Both pixels of each differing horizontal or vertical pair are marked.
    """
    if ids.dim() != 3:
        raise ValueError(f"expected [B, H, W] ids, got {list(ids.shape)}")
    edge = torch.zeros_like(ids, dtype=torch.bool)
    horizontal = ids[:, :, 1:] != ids[:, :, :-1]
    edge[:, :, 1:] |= horizontal
    edge[:, :, :-1] |= horizontal
    vertical = ids[:, 1:, :] != ids[:, :-1, :]
    edge[:, 1:, :] |= vertical
    edge[:, :-1, :] |= vertical
    return edge[:, None].float()


def label_edges(labels: torch.Tensor) -> torch.Tensor:
    """Class boundaries as an edge channel, for label maps that come without instance ids."""
    return instance_edges(labels)


def make_spade_input(
    labels: torch.Tensor,
    instances: torch.Tensor | None,
    config: SPADEConfig,
    dtype: torch.dtype = torch.float32,
    *,
    channels_last: bool = False,
) -> torch.Tensor:
    """Build the generator input exactly as NVlabs' ``preprocess_input`` does.

    Args:
        labels: ``[B, H, W]`` integer class ids in ``0 .. label_nc - 1``, or ``label_nc``
            for "dontcare" when the config has that class.
        instances: ``[B, H, W]`` instance ids (only equality matters); required unless
            ``config.no_instance``. Pass ``labels`` to use class boundaries instead.
        config: supplies ``label_nc``, ``contain_dontcare_label`` and ``no_instance``.
        dtype: the compute dtype (fp16 under CUDA autocast): the map is built in it directly.
        channels_last: lay the result out channels-last (same values), built that way
            directly: converting a 184-channel map afterwards costs more than building it.

    Runs where ``labels`` are, without reading data back to the host off the CPU (no host
    sync): one preallocated zero map, one scatter of ones, the edge channel written in place.

    Returns:
        ``[B, semantic_nc, H, W]``: one-hot channels, then the instance-edge channel.
    """
    if labels.dim() != 3:
        raise ValueError(f"expected [B, H, W] labels, got {list(labels.shape)}")
    labels = labels.long()
    num_classes = config.label_nc + int(config.contain_dontcare_label)
    if labels.device.type == "cpu":
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_classes:
            raise ValueError(f"label ids must lie in 0..{num_classes - 1}, found {low}..{high}")
    else:
        # Reading min/max back would make the host wait for the device every batch: check there,
        # asynchronously (an out-of-range id fails the run at its next sync instead of painting wrong).
        torch._assert_async(((labels >= 0) & (labels < num_classes)).all(),
                            f"label ids must lie in 0..{num_classes - 1}")
    if not config.no_instance:
        if instances is None:
            raise ValueError("this config has an instance-edge channel: pass instances (or labels, for class "
                             "boundaries)")
        if instances.shape != labels.shape:
            raise ValueError(f"instances {list(instances.shape)} and labels {list(labels.shape)} differ in shape")
    batch, height, width = labels.shape
    # Filled as [B, H, W, C]; permuted, that is a channels-last [B, C, H, W] view.
    segmap = torch.zeros(batch, height, width, config.semantic_nc, dtype=dtype, device=labels.device)
    segmap.scatter_(3, labels[..., None], 1.0)
    if not config.no_instance:
        segmap[..., num_classes] = instance_edges(instances)[:, 0]  # cast on assignment
    segmap = segmap.permute(0, 3, 1, 2)
    return segmap if channels_last else segmap.contiguous()
