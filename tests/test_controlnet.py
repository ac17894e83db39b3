"""The ``controlnet`` synthesizer: ControlNet's ADE20K colours, and a tiny random Stable Diffusion +
ControlNet (support/tiny_diffusion.py, saved as diffusers folders and loaded with ``from_pretrained``)
run through the chain: frames, sizes, seeds, same noise, cross-frame attention, img2img, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from chain.entry import main as chain_main
from chain.errors import ChainError
from chain.labels import ADE20K
from chain.stages import StageContext, build_stage, get_stage
from chain.stages.controlnet import ControlNetSynthesizer, control_image, labels_from_control_image
from chain.stages.controlnet_attention import CrossFrameAttnProcessor, CrossFrameState, count_self_attention_layers
from support.tiny_diffusion import write_tiny_controlnet

# ADE20K's palette as ControlNet's segmentation annotator draws it: `ade_palette()` in
# mmsegmentation mmseg/core/evaluation/class_names.py (the same list is ADE20KDataset.PALETTE,
# vendored by lllyasviel/ControlNet in annotator/uniformer), RGB, in ADE20K class order.
DOCUMENTED_ADE_PALETTE = """
120 120 120, 180 120 120, 6 230 230, 80 50 50, 4 200 3, 120 120 80
140 140 140, 204 5 255, 230 230 230, 4 250 7, 224 5 255, 235 255 7
150 5 61, 120 120 70, 8 255 51, 255 6 82, 143 255 140, 204 255 4
255 51 7, 204 70 3, 0 102 200, 61 230 250, 255 6 51, 11 102 255
255 7 71, 255 9 224, 9 7 230, 220 220 220, 255 9 92, 112 9 255
8 255 214, 7 255 224, 255 184 6, 10 255 71, 255 41 10, 7 255 255
224 255 8, 102 8 255, 255 61 6, 255 194 7, 255 122 8, 0 255 20
255 8 41, 255 5 153, 6 51 255, 235 12 255, 160 150 20, 0 163 255
140 140 140, 250 10 15, 20 255 0, 31 255 0, 255 31 0, 255 224 0
153 255 0, 0 0 255, 255 71 0, 0 235 255, 0 173 255, 31 0 255
11 200 200, 255 82 0, 0 255 245, 0 61 255, 0 255 112, 0 255 133
255 0 0, 255 163 0, 255 102 0, 194 255 0, 0 143 255, 51 255 0
0 82 255, 0 255 41, 0 255 173, 10 0 255, 173 255 0, 0 255 153
255 92 0, 255 0 255, 255 0 245, 255 0 102, 255 173 0, 255 0 20
255 184 184, 0 31 255, 0 255 61, 0 71 255, 255 0 204, 0 255 194
0 255 82, 0 10 255, 0 112 255, 51 0 255, 0 194 255, 0 122 255
0 255 163, 255 153 0, 0 255 10, 255 112 0, 143 255 0, 82 0 255
163 255 0, 255 235 0, 8 184 170, 133 0 255, 0 255 92, 184 0 255
255 0 31, 0 184 255, 0 214 255, 255 0 112, 92 255 0, 0 224 255
112 224 255, 70 184 160, 163 0 255, 153 0 255, 71 255 0, 255 0 163
255 204 0, 255 0 143, 0 255 235, 133 255 0, 255 0 235, 245 0 255
255 0 122, 255 245 0, 10 190 212, 214 255 0, 0 204 255, 20 0 255
255 255 0, 0 153 255, 0 41 255, 0 255 204, 41 0 255, 41 255 0
173 0 255, 0 245 255, 71 0 255, 122 0 255, 0 255 184, 0 92 255
184 255 0, 0 133 255, 255 214 0, 25 194 194, 102 255 0, 92 0 255
"""
# A few rows by name, to pin the class order as well (mmseg's ADE20KDataset.CLASSES).
NAMED_COLOURS = {"wall": (120, 120, 120), "sky": (6, 230, 230), "tree": (4, 200, 3), "person": (150, 5, 61),
                 "car": (0, 102, 200), "water": (61, 230, 250), "flag": (92, 0, 255)}


def documented_palette() -> np.ndarray:
    rows = [entry.split() for line in DOCUMENTED_ADE_PALETTE.strip().splitlines() for entry in line.split(",")]
    return np.array(rows, dtype=np.uint8)


def test_every_ade20k_class_gets_its_documented_controlnet_colour() -> None:
    table = documented_palette()
    assert table.shape == (150, 3) and len(ADE20K) == 151
    labels = np.arange(len(ADE20K), dtype=np.uint8).reshape(1, -1)
    colours = control_image(labels)[0]
    np.testing.assert_array_equal(colours[:150], table)
    assert tuple(colours[ADE20K.id_of("other")]) == (0, 0, 0)  # unlabeled: an unpainted control image
    for name, colour in NAMED_COLOURS.items():
        assert tuple(colours[ADE20K.id_of(name)]) == colour, name


def test_a_control_image_converts_back_to_the_same_labels() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, len(ADE20K), (2, 40, 60)).astype(np.uint8)
    labels[:, :3, :] = np.arange(3 * 60).reshape(3, 60) % len(ADE20K)  # every class appears
    back = labels_from_control_image(control_image(labels))
    road, skyscraper = ADE20K.id_of("road"), ADE20K.id_of("skyscraper")
    # The documented table paints skyscraper in road's colour: the one class that cannot come back.
    expected = np.where(labels == skyscraper, road, labels)
    np.testing.assert_array_equal(back, expected)
    assert labels_from_control_image(np.array([[1, 2, 3]], dtype=np.uint8))[0] == ADE20K.fallback_id


# --- the tiny pipeline --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """``base=`` and ``controlnet=`` options pointing at the tiny random models."""
    base, controlnet = write_tiny_controlnet(tmp_path_factory.mktemp("tiny-controlnet"))
    return {"base": str(base), "controlnet": str(controlnet), "steps": "2", "size": "32"}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # Networks this small only pay for threads' hand-offs (3x slower with 2 busy cores).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def synthesizer(options: dict[str, str], **extra: str) -> ControlNetSynthesizer:
    return build_stage("synthesizer", "controlnet", StageContext(options={**options, **extra}))


def paint(synth: ControlNetSynthesizer, labels: np.ndarray, batches: list[int]) -> np.ndarray:
    """Run ``labels`` through a fresh run of ``synth`` in batches of the given sizes."""
    synth.reset()
    out, start = [], 0
    for size in batches:
        out.append(synth.synthesize(labels=labels[start:start + size], frames=None))
        start += size
    return np.concatenate(out)


def scene(frames: int = 3, shift: int = 0) -> np.ndarray:
    """ADE20K label maps 24x32: sky over grass with a person, moving ``shift`` pixels per frame."""
    labels = np.full((frames, 24, 32), ADE20K.id_of("sky"), dtype=np.uint8)
    labels[:, 12:] = ADE20K.id_of("grass")
    for i in range(frames):
        labels[i, 6:20, 8 + i * shift:16 + i * shift] = ADE20K.id_of("person")
    return labels


def read_pngs(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(path)) for path in sorted(folder.glob("*.png"))]


def test_chain_run_paints_frames_at_the_output_size_repeatably(carphone: Path, tiny: dict[str, str],
                                                               tmp_path: Path) -> None:
    args = ["run", str(carphone), "--seg", "palette:voc", "--synth", "controlnet", "--remap", "person=tree",
            "--max-frames", "4", "--batch", "3", "--device", "cpu", "--quiet",
            *[arg for key, value in tiny.items() for arg in ("--synth-opt", f"{key}={value}")]]
    chain_main([*args[:2], str(tmp_path / "a"), *args[2:], "--summary", str(tmp_path / "run.json")])
    chain_main([*args[:2], str(tmp_path / "b"), *args[2:]])
    chain_main([*args[:2], str(tmp_path / "c"), *args[2:], "--synth-opt", "seed=1"])
    first, again, other_seed = (read_pngs(tmp_path / name) for name in "abc")
    assert len(first) == 4 and all(frame.shape == (144, 176, 3) for frame in first)
    assert all(np.array_equal(x, y) for x, y in zip(first, again))  # same seed: the same pictures
    assert not np.array_equal(first[0], other_seed[0])
    run = json.loads((tmp_path / "run.json").read_text())["run"]
    assert run["target_space"] == "ade20k" and "ControlNet" in run["synthesizer"]
    assert run["output_flicker"] is not None and run["output_change"] >= 0 and run["input_change"] > 0


def test_same_noise_is_one_noise_for_every_frame_and_batch(tiny: dict[str, str]) -> None:
    class Recorder:
        """Passes calls to the pipeline, keeping the starting latents it was given."""

        def __init__(self, pipeline) -> None:  # noqa: ANN001
            self.pipeline, self.latents = pipeline, []

        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(self.pipeline, name)

        def __call__(self, **kwargs):  # noqa: ANN204
            self.latents.append(kwargs["latents"].clone())
            return self.pipeline(**kwargs)

    labels = np.repeat(scene(1), 3, axis=0)  # a still scene: only the noise could tell frames apart
    same, fresh = synthesizer(tiny), synthesizer(tiny, noise="fresh")
    same.pipeline = recorder = Recorder(same.pipeline)
    pictures = paint(same, labels, [2, 1])
    noise = torch.cat(recorder.latents)
    assert noise.shape == (3, 4, 16, 20)  # 24x32 labels painted 32x40 (size=32), latents halved by the tiny VAE
    assert all(torch.equal(noise[0], row) for row in noise)
    assert np.abs(pictures.astype(int) - pictures[0]).max() <= 1  # and so the same picture
    assert torch.equal(noise[0], same.initial_noise(np.array([7]), 32, 40)[0])

    fresh_noise = fresh.initial_noise(np.arange(3), 32, 32)
    assert not torch.equal(fresh_noise[0], fresh_noise[1])
    fresh_pictures = paint(fresh, labels, [3])
    assert np.abs(fresh_pictures[0].astype(int) - fresh_pictures[1]).mean() > 5


def test_cross_frame_attention_sees_the_first_frame_in_every_batch(tiny: dict[str, str]) -> None:
    labels = scene(3, shift=4)
    plain = synthesizer(tiny, noise="fresh")
    cross = synthesizer(tiny, noise="fresh", cross_frame="on")
    models = (cross.pipeline.unet, cross.pipeline.controlnet)
    processors = [p for model in models for p in model.attn_processors.values()]
    layers = count_self_attention_layers(models)
    assert layers > 0 and sum(isinstance(p, CrossFrameAttnProcessor) for p in processors) == layers

    together = paint(cross, labels, [3])
    assert len(cross.cross_frame.cache) == layers * 2  # each layer, each of the 2 steps; both guidance halves inside
    one_by_one = paint(cross, labels, [1, 1, 1])
    assert np.abs(together.astype(int) - one_by_one).max() <= 1  # batches see the same first frame
    alone = paint(plain, labels, [3])
    # Attending to itself twice is attending to itself: the first frame is unchanged...
    assert np.abs(together[0].astype(int) - alone[0]).max() <= 1
    # ...and the others change (slightly: random attention weights carry little; see the processor test).
    assert not np.array_equal(together[1:], alone[1:])


def test_the_processor_attends_to_own_and_first_frame_tokens_per_guidance_half() -> None:
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    torch.manual_seed(0)
    attn = Attention(query_dim=8, heads=2, dim_head=4)
    state = CrossFrameState()
    processor = CrossFrameAttnProcessor("layer", state)

    def reference(rows: torch.Tensor, first: torch.Tensor, frames: int) -> torch.Tensor:
        # Row h * frames + i attends to its own tokens and then half h of the first frame.
        return torch.cat([AttnProcessor2_0()(attn, row[None],
                                             encoder_hidden_states=torch.cat([row, first[r // frames]])[None])
                          for r, row in enumerate(rows)])

    with torch.no_grad():
        first_call = torch.randn(2 * 3, 5, 8)  # [uncond x 3 frames, cond x 3 frames], 5 tokens
        state.begin_call(3)
        state.timestep = 981.0
        out = processor(attn, first_call)
        torch.testing.assert_close(out, reference(first_call, first_call[[0, 3]], 3))
        assert not torch.allclose(out[1], AttnProcessor2_0()(attn, first_call[1:2])[0])

        later = torch.randn(2 * 2, 5, 8)  # a later batch of 2 frames at the same timestep
        state.begin_call(2)
        state.timestep = 981.0
        torch.testing.assert_close(processor(attn, later), reference(later, first_call[[0, 3]], 2))
        state.timestep = 961.0  # a timestep the first frame never ran
        with pytest.raises(RuntimeError, match="no first-frame state"):
            processor(attn, later)


def test_img2img_starts_each_frame_from_the_previous_one(tiny: dict[str, str]) -> None:
    labels = scene(3, shift=4)
    chained = synthesizer(tiny, img2img="0.5", noise="fresh", steps="4")
    plain = synthesizer(tiny, noise="fresh", steps="4")
    together, one_by_one = paint(chained, labels, [3]), paint(chained, labels, [1, 2])
    np.testing.assert_array_equal(together, one_by_one)  # frames run one at a time either way
    alone = paint(plain, labels, [3])
    assert np.array_equal(together[0], alone[0])  # the first frame has no previous one
    assert np.abs(together[1:].astype(int) - alone[1:]).mean() > 1
    # Starting from the previous frame keeps consecutive frames closer than fresh noise does.
    change = lambda frames: np.abs(np.diff(frames.astype(int), axis=0)).mean()  # noqa: E731
    assert change(together) < change(alone)


@pytest.mark.parametrize("options, needles", [
    ({"size": "30"}, ["size=30", "multiples of 8"]),
    ({"size": "big"}, ["WIDTHxHEIGHT"]),
    ({"img2img": "1.5"}, ["img2img=1.5", "[0, 1]"]),
    ({"scheduler": "heun"}, ["heun", "unipc"]),
    ({"noise": "same-ish"}, ["same, fresh"]),
    ({"cpu_offload": "on"}, ["cpu_offload", "--device cuda"]),
    ({"base": "/nowhere/sd15"}, ["base model folder not found", "/nowhere/sd15"]),
])
def test_option_mistakes_fail_in_one_line(tiny: dict[str, str], options: dict[str, str], needles: list[str]) -> None:
    with pytest.raises(ChainError) as caught:
        synthesizer(tiny, **options)
    message = str(caught.value)
    assert "\n" not in message and all(needle in message for needle in needles), message


@pytest.mark.parametrize("variant, options, repository", [
    ("controlnet", {}, "lllyasviel/control_v11p_sd15_seg"),
    ("controlnet:v10", {"controlnet": "{tiny}"}, "stable-diffusion-v1-5/stable-diffusion-v1-5"),
])
@pytest.mark.slow
def test_a_missing_model_names_its_repository_in_one_line(carphone: Path, tiny: dict[str, str], tmp_path: Path,
                                                          variant: str, options: dict[str, str],
                                                          repository: str) -> None:
    (tmp_path / "hf").mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "COLUMNS": "300",
           "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    extra = [arg for key, value in options.items()
             for arg in ("--synth-opt", f"{key}={value.format(tiny=tiny['controlnet'])}")]
    result = subprocess.run([sys.executable, "-m", "chain", "run", str(carphone), str(tmp_path / "out.mp4"),
                             "--seg", "palette:ade20k", "--synth", variant, "--max-frames", "1", *extra],
                            capture_output=True, text=True, timeout=300, env=env)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 3 and len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in (repository, f"hf download {repository}", "HF_HUB_OFFLINE", str(tmp_path / "hf")):
        assert needle in lines[0]
    assert not (tmp_path / "out.mp4").exists()


def test_variants_choose_the_controlnet_and_list_shows_where_it_comes_from() -> None:
    spec = get_stage("synthesizer", "controlnet")
    assert spec.variants == ("v11", "v10") and spec.label_space("v10") == "ade20k"
    assert spec.weights("v11", None).location.startswith("lllyasviel/control_v11p_sd15_seg + ")
    status = spec.weights("v10", None)
    assert "lllyasviel/sd-controlnet-seg" in status.location and "hf download" in status.how_to_get


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (fp16 weights, attention slicing)")
def test_on_cuda_weights_are_fp16_and_every_option_runs(tiny: dict[str, str]) -> None:
    labels = scene(3, shift=4)
    context = StageContext(device=torch.device("cuda"), options={
        **tiny, "cross_frame": "on", "img2img": "0.6", "attention_slicing": "on", "steps": "4"})
    synth = build_stage("synthesizer", "controlnet", context)
    assert synth.pipeline.unet.dtype == torch.float16 and synth.pipeline.vae.dtype == torch.float16
    first, second = paint(synth, labels, [2, 1]), paint(synth, labels, [3])
    assert first.shape == (3, 32, 40, 3) and np.array_equal(first, second)
