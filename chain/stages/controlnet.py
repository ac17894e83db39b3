"""Synthesizer ``controlnet``: Stable Diffusion guided by a segmentation ControlNet, through diffusers.

Label maps in the ADE20K-150 space become control images in the colours ControlNet's
segmentation models were trained on; a text prompt sets the style ("an oil painting", "a
snowy planet"). Variants choose the ControlNet: ``v11`` (default,
``lllyasviel/control_v11p_sd15_seg``) or ``v10`` (``lllyasviel/sd-controlnet-seg``); the
base model defaults to Stable Diffusion 1.5. Both load with diffusers' ``from_pretrained``
from the Hugging Face cache (downloaded on first use with internet; ``HF_HUB_OFFLINE=1``
keeps it to the cache), or from local folders with ``base=`` / ``controlnet=``.

Frames that hold together: each frame is a separate diffusion, so by default every frame
starts from the *same* latent noise (``noise=same``; ``fresh`` draws per frame from
``seed + frame index``); ``cross_frame=on`` lets every frame's self-attention also attend
to the run's first frame (`chain.stages.controlnet_attention`); ``img2img=STRENGTH``
starts each frame from the previous output's latents, noised to ``STRENGTH`` of the
schedule (frames then run one at a time). The run summary reports output flicker so
settings can be compared.

Precision: fp16 weights on CUDA, fp32 elsewhere (CPU works, slowly).
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from chain.device import inference_dtype
from chain.errors import ChainError
from chain.labels import ADE20K, ADE20K_CONTROLNET_PALETTE
from chain.labels.resize import resize_labels
from chain.media.sizes import Size
from chain.media.sizes import parse_size as parse_size_option
from chain.stages.base import Synthesizer
from chain.stages.controlnet_attention import (
    CrossFrameState,
    enable_cross_frame_attention,
)
from chain.stages.hub import hub_offline, missing_model, quiet_loading, short_name
from chain.stages.spec import StageContext
from chain.stages.variants import CONTROLNET, CONTROLNET_BASE_REPO

# ControlNet's own demo defaults (gradio_seg2image.py: a_prompt / n_prompt), trimmed to what
# applies to scenes rather than hands.
DEFAULT_PROMPT = "best quality, extremely detailed"
DEFAULT_NEGATIVE_PROMPT = "lowres, bad anatomy, worst quality, low quality"
DEFAULT_SHORT_SIDE = 512  # Stable Diffusion 1.5's training size
# Schedulers with one model call per timestep and no repeated timesteps, built from the base
# model's scheduler config. unipc is diffusers' recommendation for ControlNet (good at ~20 steps).
SCHEDULERS = {"unipc": "UniPCMultistepScheduler", "ddim": "DDIMScheduler", "euler": "EulerDiscreteScheduler",
              "euler_a": "EulerAncestralDiscreteScheduler", "dpm": "DPMSolverMultistepScheduler"}
OFF_ON = ("off", "on")

# --- the control image ------------------------------------------------------------------------
# ADE20K ids 0..149 are painted with ADE20K_CONTROLNET_PALETTE: `ade_palette()` of
# mmsegmentation's mmseg/core/evaluation/class_names.py (= ADE20KDataset.PALETTE), the table
# ControlNet's segmentation annotator (lllyasviel/ControlNet annotator/uniformer, which made
# the training control images via show_result_pyplot(..., get_palette('ade'))) draws with, in
# RGB. Our id k is ADE's class k + 1, the same order as mmseg's class list. Note that the
# table gives road (6) and skyscraper (48) the same colour: a control image cannot tell them
# apart, and reads back as road. "other" (150: ADE's unlabeled 0, which the annotator never
# outputs) is black, the colour of an unpainted control image, so the prompt decides what
# goes there. (The Hugging Face model card's `ada_palette` prepends black and shifts every
# class by one; ControlNet's annotator does not.)
CONTROL_PALETTE = np.concatenate([ADE20K_CONTROLNET_PALETTE, np.zeros((1, 3), np.uint8)])
CONTROL_PALETTE.setflags(write=False)


def control_image(labels: np.ndarray) -> np.ndarray:
    """ADE20K label maps ``(..., H, W)`` → control images ``(..., H, W, 3)`` uint8 in ControlNet's colours."""
    return CONTROL_PALETTE[labels]


def labels_from_control_image(image: np.ndarray) -> np.ndarray:
    """Control image ``(..., H, W, 3)`` → ADE20K labels, by exact colour (the inverse of `control_image`).

    Colours not in the table become "other"; skyscraper's colour (shared with road) becomes road.
    """
    return _colour_to_label()[_colour_code(image)]


def _colour_code(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]


@functools.cache
def _colour_to_label() -> np.ndarray:
    table = np.full(1 << 24, ADE20K.fallback_id, dtype=np.uint8)  # 16 MB, built once
    table[_colour_code(CONTROL_PALETTE[::-1])] = np.arange(len(CONTROL_PALETTE))[::-1]  # lowest id wins a shared colour
    return table


# --- settings ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class DiffusionSettings:
    """How every frame is painted. See the module docstring and README for what each does."""

    prompt: str = DEFAULT_PROMPT
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    steps: int = 20
    guidance: float = 7.5
    control_scale: float = 1.0
    seed: int = 0
    scheduler: str = "unipc"
    size: int | Size = DEFAULT_SHORT_SIDE  # short side, or width x height
    same_noise: bool = True
    cross_frame: bool = False
    img2img: float = 0.0  # strength; 0 = every frame from noise

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ChainError(f"controlnet steps={self.steps} must be >= 1")
        if self.scheduler not in SCHEDULERS:
            raise ChainError(f"controlnet scheduler={self.scheduler!r}: choose one of {', '.join(SCHEDULERS)}")
        if not 0.0 <= self.img2img <= 1.0:
            raise ChainError(f"controlnet img2img={self.img2img} must be a strength in [0, 1] (0 = off)")
        if 0 < self.img2img and int(self.steps * self.img2img) < 1:
            raise ChainError(f"controlnet img2img={self.img2img} with steps={self.steps} runs no step; "
                             "raise one of them")
        sides = (self.size,) if isinstance(self.size, int) else self.size
        if any(side < 8 or side % 8 for side in sides):
            raise ChainError(f"controlnet size={self.size}: sides must be multiples of 8 (Stable Diffusion's "
                             "latents are 1/8 of the image)")

    def generation_size(self, height: int, width: int) -> tuple[int, int]:
        """``(height, width)`` painted for frames of ``height × width``: a multiple of 8 each."""
        if not isinstance(self.size, int):
            return self.size[1], self.size[0]
        long = max(8, round(self.size * max(height, width) / min(height, width) / 8) * 8)
        return (self.size, long) if height <= width else (long, self.size)


def parse_size(text: str | None) -> int | Size:
    """``"512"`` (short side) or ``"768x512"`` (width × height), parsed as ``--size`` is."""
    try:
        parsed = parse_size_option(text)
    except ChainError:
        raise ChainError(f"controlnet size={text!r}: give a short side (512) or WIDTHxHEIGHT (768x512)") from None
    return DEFAULT_SHORT_SIDE if parsed is None else parsed


def settings_from_options(context: StageContext) -> DiffusionSettings:
    """`DiffusionSettings` from ``--synth-opt`` KEY=VALUE pairs (defaults where absent)."""
    defaults = DiffusionSettings()
    options = context.options
    return DiffusionSettings(
        prompt=options.get("prompt", defaults.prompt),
        negative_prompt=options.get("negative_prompt", defaults.negative_prompt),
        steps=context.int_option("steps", defaults.steps, minimum=1),
        guidance=context.float_option("guidance", defaults.guidance),
        control_scale=context.float_option("control_scale", defaults.control_scale),
        seed=context.int_option("seed", defaults.seed, minimum=0, maximum=2**32 - 1),
        scheduler=context.choice_option("scheduler", tuple(SCHEDULERS)),
        size=parse_size(options.get("size")),
        same_noise=context.choice_option("noise", ("same", "fresh")) == "same",
        cross_frame=context.choice_option("cross_frame", OFF_ON) == "on",
        img2img=context.float_option("img2img", defaults.img2img),
    )


# --- the synthesizer --------------------------------------------------------------------------
class ControlNetSynthesizer(Synthesizer):
    """Paints ADE20K label maps with a diffusers ``StableDiffusionControlNetPipeline``.

    Args:
        pipeline: the loaded pipeline, already on its device (or CPU-offloaded).
        settings: prompt, steps, noise and coherence settings.
        attention_slicing: whether the pipeline's attention is sliced (cross-frame layers then
            attend one frame at a time too).
        description: for summaries.
    """

    label_space = ADE20K
    # VOC "background" stays "other" (black in the control image): the prompt decides what is there.
    default_background = None

    def __init__(self, pipeline, *, settings: DiffusionSettings = DiffusionSettings(),  # noqa: ANN001 (diffusers)
                 attention_slicing: bool = False, description: str = "") -> None:
        import diffusers

        self.pipeline = pipeline
        self.settings = settings
        self.description = description or "Stable Diffusion + segmentation ControlNet"
        pipeline.scheduler = getattr(diffusers, SCHEDULERS[settings.scheduler]).from_config(pipeline.scheduler.config)
        pipeline.set_progress_bar_config(disable=True)  # chain shows its own progress
        self.img2img_pipeline = None
        if settings.img2img > 0:
            # The same modules (no copy); constructed directly, since from_pipe would recast them to fp32.
            self.img2img_pipeline = diffusers.StableDiffusionControlNetImg2ImgPipeline(
                **{k: v for k, v in pipeline.components.items() if k != "image_encoder"},
                requires_safety_checker=bool(pipeline.config.get("requires_safety_checker", False)))
            self.img2img_pipeline.set_progress_bar_config(disable=True)
        self.cross_frame: CrossFrameState | None = None
        if settings.cross_frame:
            self.anchored_on_first_frame = True
            self.cross_frame = CrossFrameState()
            self.cross_frame.sliced = attention_slicing
            enable_cross_frame_attention({"unet": pipeline.unet, "controlnet": pipeline.controlnet}, self.cross_frame)
        self._prompt_embeds: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self._previous_latents: torch.Tensor | None = None
        self._frames_done = 0

    @property
    def device(self) -> torch.device:
        return self.pipeline._execution_device

    @property
    def dtype(self) -> torch.dtype:
        return self.pipeline.unet.dtype

    def reset(self) -> None:
        self._previous_latents = None
        self._frames_done = 0
        if self.cross_frame is not None:
            self.cross_frame.reset()

    def seek(self, index: int) -> None:
        self._frames_done = index  # the noise of frame i (noise=fresh) follows its index in the run

    def unshardable(self) -> str | None:
        if self.img2img_pipeline is not None:
            return "controlnet img2img paints each frame from the previous output, which a shard's first frame lacks"
        return None

    def initial_noise(self, indices: np.ndarray, height: int, width: int) -> torch.Tensor:
        """Starting latents ``(B, C, h, w)`` for frames ``indices`` painted at ``height × width``.

        ``noise=same``: every frame gets the noise of ``seed``; ``fresh``: frame ``i`` gets
        ``seed + i``. Drawn on the CPU exactly as diffusers' pipelines draw from a CPU generator,
        so img2img frames (noised by the pipeline from the same generator) get the same noise,
        and results do not depend on the device's random number generator.
        """
        from diffusers.utils.torch_utils import randn_tensor

        scale = self.pipeline.vae_scale_factor
        shape = (1, self.pipeline.unet.config.in_channels, height // scale, width // scale)
        return torch.cat([randn_tensor(shape, generator=generator, device=self.device, dtype=self.dtype)
                          for generator in self._generators(indices)])

    def _generators(self, indices: np.ndarray) -> list[torch.Generator]:
        # One generator per frame: stochastic schedulers (euler_a) draw their step noise from it too.
        seeds = [self.settings.seed if self.settings.same_noise else self.settings.seed + int(i) for i in indices]
        return [torch.Generator("cpu").manual_seed(seed) for seed in seeds]

    def label_size(self, height: int, width: int) -> tuple[int, int]:
        """The painted size: the control image is drawn from labels at that resolution."""
        return self.settings.generation_size(height, width)

    def synthesize(self, *, labels: torch.Tensor | np.ndarray | None, frames: np.ndarray) -> np.ndarray:
        height, width = self.settings.generation_size(*labels.shape[1:])
        ids = resize_labels(labels, (height, width))  # sampled on the labels' device, then to the host
        ids = ids.cpu().numpy() if isinstance(ids, torch.Tensor) else ids
        controls = [Image.fromarray(image) for image in control_image(ids)]
        # Frames arrive in order, so the count since `reset` is each frame's index in the run.
        indices = np.arange(len(labels)) + self._frames_done
        self._frames_done += len(labels)
        if self.img2img_pipeline is None:
            return self._paint(controls, indices, height, width)
        # Each frame starts from the one before: one frame per call.
        return np.concatenate([self._paint(controls[i:i + 1], indices[i:i + 1], height, width)
                               for i in range(len(controls))])

    def _paint(self, controls: list[Image.Image], indices: np.ndarray, height: int, width: int) -> np.ndarray:
        settings = self.settings
        frames = len(controls)
        positive, negative = self._embeddings()
        common = dict(
            prompt_embeds=positive.repeat(frames, 1, 1),
            negative_prompt_embeds=None if negative is None else negative.repeat(frames, 1, 1),
            num_inference_steps=settings.steps, guidance_scale=settings.guidance,
            controlnet_conditioning_scale=settings.control_scale, generator=self._generators(indices),
            height=height, width=width, output_type="np")
        if self.img2img_pipeline is not None:
            common.update(callback_on_step_end=self._keep_latents)
        if self.cross_frame is not None:
            self.cross_frame.begin_call(frames)
        if self.img2img_pipeline is not None and self._previous_latents is not None:
            result = self.img2img_pipeline(image=self._previous_latents, control_image=controls,
                                           strength=settings.img2img, **common)
        else:
            result = self.pipeline(image=controls, latents=self.initial_noise(indices, height, width), **common)
        return (np.clip(result.images, 0, 1) * 255).round().astype(np.uint8)

    def _keep_latents(self, pipeline, step: int, timestep, tensors: dict) -> dict:  # noqa: ANN001 (diffusers)
        # The final step's latents: the next frame starts from them (no VAE round trip).
        self._previous_latents = tensors["latents"]
        return tensors

    def _embeddings(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The prompt's text embeddings, encoded once per synthesizer."""
        if self._prompt_embeds is None:
            guided = self.settings.guidance > 1  # diffusers' own test for classifier-free guidance
            positive, negative = self.pipeline.encode_prompt(
                self.settings.prompt, self.device, 1, guided, self.settings.negative_prompt)
            self._prompt_embeds = (positive, negative if guided else None)
        return self._prompt_embeds


# --- loading ---------------------------------------------------------------------------------
def load_pipeline(base: str, controlnet: str, *, device: torch.device, cpu_offload: bool = False,
                  attention_slicing: bool = False):  # noqa: ANN201 (diffusers' pipeline)
    """A ``StableDiffusionControlNetPipeline`` of ``base`` with ``controlnet`` (repository ids or folders).

    fp16 on CUDA, fp32 elsewhere. Raises `MissingWeightsError` (one line, naming the repository
    and how to get it) when a model is neither in the Hugging Face cache nor downloadable.
    """
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

    if cpu_offload and device.type != "cuda":
        raise ChainError("controlnet cpu_offload=on moves models to a CUDA GPU when they run: it needs --device cuda")
    if cpu_offload and importlib.util.find_spec("accelerate") is None:
        raise ChainError("controlnet cpu_offload=on needs the accelerate package: pip install accelerate")
    common = dict(torch_dtype=inference_dtype(device))
    if hub_offline():
        common["local_files_only"] = True
    if importlib.util.find_spec("accelerate") is None:
        common["low_cpu_mem_usage"] = False  # what diffusers falls back to anyway, without its warning
    with quiet_loading("diffusers", "transformers"):
        try:
            control_model = ControlNetModel.from_pretrained(controlnet, **common)
        except (OSError, ValueError) as error:
            raise missing_model("ControlNet", controlnet, _pass_folder("controlnet"), error) from None
        try:
            pipeline = StableDiffusionControlNetPipeline.from_pretrained(base, controlnet=control_model, **common)
        except (OSError, ValueError) as error:
            raise missing_model("base model", base, _pass_folder("base"), error) from None
    if cpu_offload:
        pipeline.enable_model_cpu_offload(device=device)
    else:
        pipeline.to(device)
    if attention_slicing:
        pipeline.enable_attention_slicing()
    return pipeline


def _pass_folder(option: str) -> str:
    return f"pass --synth-opt {option}=FOLDER (a diffusers folder)"


def build_controlnet(variant: str | None, context: StageContext) -> ControlNetSynthesizer:
    """The ``controlnet`` synthesizer; ``--synth-weights`` is the same as ``controlnet=``."""
    if context.weights and "controlnet" in context.options:
        raise ChainError("give the ControlNet once: --synth-weights or --synth-opt controlnet=, not both")
    settings = settings_from_options(context)  # before loading, so option mistakes fail at once
    base = context.options.get("base") or CONTROLNET_BASE_REPO
    controlnet = context.options.get("controlnet") or context.weights or CONTROLNET[variant].source
    slicing = context.choice_option("attention_slicing", OFF_ON) == "on"
    pipeline = load_pipeline(base, controlnet, device=context.device, attention_slicing=slicing,
                             cpu_offload=context.choice_option("cpu_offload", OFF_ON) == "on")
    coherence = ["same noise" if settings.same_noise else "fresh noise"]
    if settings.cross_frame:
        coherence.append("cross-frame attention")
    if settings.img2img:
        coherence.append(f"img2img {settings.img2img:g}")
    return ControlNetSynthesizer(
        pipeline, settings=settings, attention_slicing=slicing,
        description=f"ControlNet {short_name(controlnet)} on {short_name(base)}, {settings.steps} steps "
                    f"{settings.scheduler}, {', '.join(coherence)}")
