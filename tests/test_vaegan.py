"""VAE-GAN: shapes, gradient routing, learning, checkpoints, bit-exact resume, frame cache, stage, PSNR."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from chain.datasets.augment import augmented
from chain.datasets.frames import BatchSampler, FrameCache, FramePool, build_frame_cache
from chain.engine.pipeline import Chain
from chain.errors import ChainError, ChainWarning, MissingWeightsError
from chain.media import Trim, open_source
from chain.media.outputs import Outputs
from chain.stages.spec import StageContext
from chain.stages.vaegan import VAEGANSynthesizer, build_vaegan
from chain.training.loop import RunSettings
from chain.training.metrics import clip_psnr, mean_frame_baseline, plot_losses, psnr
from chain.training.vaegan import TrainingInterrupted, VAEGANTrainOptions, losses_so_far, lr_factor, train_vaegan
from chain.weights.folder import save_checkpoint
from chain.weights.locations import checkpoint_dir
from chain.weights.vaegan import MODEL_KIND, load_vaegan
from models.vaegan import (
    LEGACY,
    VAEGAN,
    VAEGANConfig,
    decoder_gan_loss,
    discriminator_gan_loss,
    kl_loss,
    make_optimizers,
    similarity_loss,
)

SHARED = Path(os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
CARPHONE = SHARED / "data" / "videos" / "carphone_pristine.mp4"
needs_carphone = pytest.mark.skipif(not CARPHONE.is_file(), reason=f"{CARPHONE} not found (set CHAIN_SHARED)")

TINY = dict(height=32, width=48, latent_dim=16, filters=(8, 16, 32, 64))
# A tiny run: 12 frames of carphone at 48x32, batch 4 → 3 steps an epoch, 2 epochs → 6 steps.
TINY_RUN = dict(size="48x32", latent=16, filters=(8, 16, 32, 64), batch=4, epochs=2, max_frames=12, seed=3)
TOTAL_STEPS = 6


@pytest.fixture(autouse=True)
def one_thread():
    """Small, fast, and the same float results on any machine's thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def frames_batch(count: int = 4, config: VAEGANConfig | None = None, seed: int = 0) -> torch.Tensor:
    """Smooth synthetic frames in [-1, 1]: gradients and a moving blob, not noise."""
    config = config or VAEGANConfig(**TINY)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, config.height), torch.linspace(-1, 1, config.width), indexing="ij")
    generator = torch.Generator().manual_seed(seed)
    frames = []
    for _ in range(count):
        cx, cy, hue = (torch.rand(3, generator=generator) * 2 - 1).tolist()
        blob = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) * 4)
        frames.append(torch.stack([blob * 2 - 1, xs * hue, ys * 0.5]))
    return torch.stack(frames).clamp(-1, 1)


def state_tensors(folder: Path) -> dict[str, torch.Tensor]:
    return {**load_file(str(folder / "model.safetensors")),
            **{f"opt/{k}": v for k, v in load_file(str(folder / "optimizer.safetensors")).items()}}


def assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [key for key in a if not torch.equal(a[key], b[key])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


# -----------------------------------------------------------------------------
# The network


@pytest.mark.parametrize("height,width", [(32, 48), (36, 64), (144, 256)])
def test_shapes(height, width):
    config = VAEGANConfig(height=height, width=width, latent_dim=16, filters=(8, 16, 32, 64))
    model = VAEGAN(config).eval()
    x = frames_batch(2, config)
    with torch.no_grad():
        mean, logvar = model.encoder(x)
        decoded = model.decoder(mean)
        logits, features = model.discriminator(x)
    assert mean.shape == logvar.shape == (2, 16)
    assert decoded.shape == (2, 3, height, width) and decoded.abs().max() <= 1
    assert logits.shape == (2,)
    assert [tuple(f.shape) for f in features] == [(2, c, h, w) for c, (h, w) in zip(config.filters, config.grids[1:])]


def test_blade_runner_shapes():
    """The reference model: 144x256 frames → 9x16x640 → a 200-number latent."""
    config = VAEGANConfig()
    assert (config.height, config.width, config.latent_dim, config.filters) == (144, 256, 200, (80, 160, 320, 640))
    assert config.grids[-1] == (9, 16) and config.flat_features == 9 * 16 * 640


def test_config_checks():
    with pytest.raises(ValueError, match="too small"):
        VAEGANConfig(height=8, width=48)
    with pytest.raises(ValueError, match="similarity_layers"):
        VAEGANConfig(**TINY, similarity_layers=(4,))
    with pytest.raises(ValueError, match="gan_loss"):
        VAEGANConfig(**TINY, gan_loss="wasserstein")
    with pytest.raises(ValueError, match="kernel_size"):
        VAEGANConfig(**TINY, kernel_size=4)
    from_json = VAEGANConfig(**json.loads(json.dumps({**TINY, "similarity_layers": [0, 2]})))
    assert from_json.filters == (8, 16, 32, 64) and from_json.similarity_layers == (0, 2)


@pytest.mark.parametrize(("height", "width"), [(32, 48), (36, 64), (72, 128)])
def test_resize_decoder_mirrors_the_encoder_without_transposed_convolutions(height, width):
    """Nearest upsampling + convolution (issue 26): the encoder's sizes mirrored, odd ones too."""
    config = VAEGANConfig(**{**TINY, "height": height, "width": width}, upsample="resize")
    torch.manual_seed(0)
    model = VAEGAN(config)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in model.modules())
    with torch.no_grad():
        assert model.decoder(torch.randn(2, 16)).shape == (2, 3, height, width)


def test_resize_decoder_has_no_checkerboard_at_initialisation():
    """A transposed stride-2 convolution paints a periodic 2x2 pattern even on a constant input (uneven
    kernel overlap); a resize-convolution gives a constant map's interior a constant output."""
    def pattern(upsample: str) -> float:
        torch.manual_seed(0)
        block = VAEGAN(VAEGANConfig(**TINY, upsample=upsample)).decoder.ups[0]
        x = torch.ones(1, 64, 8, 12)  # a constant map, larger than the tiny grid, for a wide interior
        with torch.no_grad():
            if upsample == "resize":  # the block's convolution, on a larger grid than the tiny model's
                y = torch.nn.Conv2d.forward(block[0], torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest"))
            else:
                y = block[0](x)
        y = y[0, :, 4:-4, 4:-4]  # away from the padded border
        return float((y - y.mean(dim=(1, 2), keepdim=True)).abs().max())
    assert pattern("resize") < 1e-5 < pattern("transposed")


def test_configs_saved_before_a_field_existed_keep_the_old_network(tmp_path):
    """Old config.json files lack upsample/spectral_norm/kl_weight: they mean transposed, off, 1."""
    old = {k: v for k, v in dataclasses.asdict(VAEGANConfig(**TINY)).items() if k not in LEGACY}
    assert VAEGANConfig.from_saved(old).upsample == "transposed" and not VAEGANConfig.from_saved(old).spectral_norm
    assert VAEGANConfig(**TINY).upsample == "resize"  # the new default, for new runs
    torch.manual_seed(0)
    model = VAEGAN(VAEGANConfig(**TINY, upsample="transposed"))
    folder = save_checkpoint(tmp_path / "checkpoint", model=MODEL_KIND, config=model.config,
                             state_dict=model.state_dict())
    document = json.loads((folder / "config.json").read_text())
    document["config"] = {k: v for k, v in document["config"].items() if k not in LEGACY}
    (folder / "config.json").write_text(json.dumps(document))
    loaded, _ = load_vaegan(tmp_path)
    assert loaded.config.upsample == "transposed"
    upgraded = VAEGANTrainOptions.upgrade({"film": "f.mp4", "model": old})
    assert upgraded["model"]["upsample"] == "transposed"
    assert VAEGANTrainOptions.upgrade({"film": "f.mp4", "latent": 8})["model"]["upsample"] == "transposed"


def test_spectral_norm_and_kl_weight():
    torch.manual_seed(0)
    plain = VAEGAN(VAEGANConfig(**TINY))
    torch.manual_seed(0)
    weighted = VAEGAN(VAEGANConfig(**TINY, kl_weight=0.25, spectral_norm=True))
    assert any("parametrizations" in name for name in weighted.discriminator.state_dict())
    x = frames_batch(4)
    a = plain.losses(x, torch.Generator().manual_seed(1))
    b = weighted.losses(x, torch.Generator().manual_seed(1))
    assert b.kl.item() == pytest.approx(0.25 * a.kl.item(), rel=1e-5)  # same encoder, a quarter of the KL
    weighted.backward(b)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in weighted.parameters())
    with pytest.raises(ValueError, match="upsample"):
        VAEGANConfig(**TINY, upsample="bilinear")


def test_loss_functions_by_hand():
    mean, logvar = torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, math.log(4.0)]])
    # KL(N(1, 4) || N(0, 1)) = (4 + 1 - 1 - ln 4) / 2 in the second dimension, 0 in the first.
    assert kl_loss(mean, logvar).item() == pytest.approx((4 + 1 - 1 - math.log(4)) / 2)
    a, b = torch.zeros(1, 2, 2, 2), torch.full((1, 2, 2, 2), 2.0)
    assert similarity_loss([a, a], [b, a]).item() == pytest.approx(0.5 * 8 * 4)
    zero = torch.zeros(3)
    assert discriminator_gan_loss(zero, zero, zero).item() == pytest.approx(3 * math.log(2))
    assert decoder_gan_loss(zero, zero, zero).item() == pytest.approx(-3 * math.log(2))  # -L_GAN
    assert decoder_gan_loss(zero, zero, zero, kind="non_saturating").item() == pytest.approx(2 * math.log(2))


@pytest.mark.parametrize("gan_loss", ["minimax", "non_saturating"])
def test_each_network_gets_only_its_own_loss(gan_loss):
    """encoder ← KL + similarity, decoder ← gamma·similarity + GAN term, discriminator ← GAN loss."""
    config = VAEGANConfig(**TINY, gamma=0.7, gan_loss=gan_loss)
    torch.manual_seed(0)
    model = VAEGAN(config)
    x = frames_batch(4, config)
    losses = model.losses(x, torch.Generator().manual_seed(1))
    model.backward(losses)
    routed = {name: [p.grad.clone() for p in getattr(model, name).parameters()]
              for name in ("encoder", "decoder", "discriminator")}
    losses = model.losses(x, torch.Generator().manual_seed(1))  # the same forward pass again
    expected = {
        "encoder": torch.autograd.grad(losses.kl + losses.similarity, list(model.encoder.parameters()),
                                       retain_graph=True),
        "decoder": torch.autograd.grad(0.7 * losses.similarity + losses.decoder_gan,
                                       list(model.decoder.parameters()), retain_graph=True),
        "discriminator": torch.autograd.grad(losses.discriminator, list(model.discriminator.parameters())),
    }
    for name in routed:
        for got, want in zip(routed[name], expected[name]):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_a_few_steps_lower_the_losses_on_a_fixed_batch():
    config = VAEGANConfig(**TINY)
    torch.manual_seed(0)
    model = VAEGAN(config)
    optimizers = make_optimizers(model, lr=1e-3)
    x = frames_batch(4, config)
    generator = torch.Generator().manual_seed(0)
    history = []
    for _ in range(30):
        losses = model.losses(x, generator)
        model.backward(losses)
        for optimizer in optimizers.values():
            optimizer.step()
        history.append((losses.encoder.item(), losses.discriminator.item(), losses.stats["pixel_mse"].item()))
    first, last = np.array(history[:3]).mean(0), np.array(history[-3:]).mean(0)
    assert last[0] < 0.9 * first[0], f"encoder loss (KL + similarity) {first[0]:.4f} → {last[0]:.4f}"
    assert last[1] < 0.5 * first[1], f"discriminator loss {first[1]:.4f} → {last[1]:.4f}"
    assert last[2] < first[2], f"pixel error of reconstructions {first[2]:.4f} → {last[2]:.4f}"


def test_save_load_gives_identical_outputs(tmp_path):
    config = VAEGANConfig(**TINY)
    torch.manual_seed(0)
    model = VAEGAN(config)
    optimizers = make_optimizers(model)
    x = frames_batch(4, config)
    for _ in range(2):  # move batch norm statistics away from their initial values
        model.backward(model.losses(x, torch.Generator().manual_seed(0)))
        for optimizer in optimizers.values():
            optimizer.step()
    save_checkpoint(tmp_path / "checkpoint", model=MODEL_KIND, config=config, state_dict=model.state_dict())
    loaded, checkpoint = load_vaegan(tmp_path)  # the run folder or the checkpoint folder itself
    assert checkpoint.config["filters"] == [8, 16, 32, 64]
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.reconstruct(x), loaded.reconstruct(x))
        z = torch.randn(3, 16, generator=torch.Generator().manual_seed(5))
        assert torch.equal(model.decoder(z), loaded.decoder(z))
    frames = ((x.permute(0, 2, 3, 1) + 1) * 127.5).round().byte().numpy()
    np.testing.assert_array_equal(VAEGANSynthesizer(model).synthesize(labels=None, frames=frames),
                                  VAEGANSynthesizer(loaded).synthesize(labels=None, frames=frames))


# -----------------------------------------------------------------------------
# Frames and batches


@needs_carphone
def test_frame_cache_is_built_streaming_and_reused(tmp_path):
    seen = []
    cache = build_frame_cache(CARPHONE, tmp_path / "frames", size="48x32", trim=Trim(max_frames=30),
                              progress=lambda done, total: seen.append(done))
    assert not cache.reused and seen == list(range(1, 31))
    assert cache.frames.shape == (30, 32, 48, 3) and cache.frames.dtype == np.uint8
    assert isinstance(cache.frames, np.memmap)
    with open_source(CARPHONE, trim=Trim(max_frames=30), size="48x32") as source:
        decoded = np.stack([frame.rgb for frame in source])
    np.testing.assert_array_equal(cache.frames, decoded)
    np.testing.assert_array_equal(np.load(cache.path), decoded)  # a plain .npy file
    written = cache.path.stat().st_mtime_ns

    again = build_frame_cache(CARPHONE, tmp_path / "frames", size="48x32", trim=Trim(max_frames=30))
    assert again.reused and again.path.stat().st_mtime_ns == written
    meta = json.loads((tmp_path / "frames" / "frames.json").read_text())
    assert meta["frames"] == 30 and meta["source"] == str(CARPHONE.resolve())

    other = build_frame_cache(CARPHONE, tmp_path / "frames", size="32x32", trim=Trim(max_frames=30))
    assert not other.reused and other.frames.shape == (30, 32, 32, 3)
    with pytest.raises(ChainError, match="WIDTHxHEIGHT"):
        build_frame_cache(CARPHONE, tmp_path / "frames", size="64")


def test_batch_sampler_is_a_function_of_the_step():
    sampler = BatchSampler(num_frames=10, batch_size=3, seed=7)
    assert sampler.steps_per_epoch == 3
    epoch0 = np.concatenate([sampler.batch(step) for step in range(3)])
    assert len(set(epoch0.tolist())) == 9  # no frame twice in an epoch
    epoch1 = [sampler.batch(step).tolist() for step in range(3, 6)]
    assert epoch1 != [sampler.batch(step).tolist() for step in range(3)]
    fresh = BatchSampler(num_frames=10, batch_size=3, seed=7)
    assert [fresh.batch(step).tolist() for step in (4, 5, 3)] == [epoch1[1], epoch1[2], epoch1[0]]
    assert sampler.epoch(5) == 1
    with pytest.raises(ChainError, match="fewer than --batch"):
        BatchSampler(num_frames=2, batch_size=3, seed=0)


# -----------------------------------------------------------------------------
# Training runs


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    """A complete tiny run, the reference the resumed runs must match bit for bit."""
    if not CARPHONE.is_file():
        pytest.skip(f"{CARPHONE} not found (set CHAIN_SHARED)")
    out = tmp_path_factory.mktemp("vaegan") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_vaegan(CARPHONE, out, TINY_RUN, RunSettings(device="cpu", progress=False))
    finally:
        torch.set_num_threads(threads)
    return out


def test_training_writes_checkpoint_samples_and_log(uninterrupted):
    folder = uninterrupted / "checkpoint"
    document = json.loads((folder / "config.json").read_text())
    assert document["model"] == "vaegan" and document["config"]["latent_dim"] == 16
    meta = document["meta"]
    assert (meta["step"], meta["epoch"], meta["total_steps"], meta["complete"]) == (6, 2, 6, True)
    assert meta["train"]["film"] == str(CARPHONE) and meta["precision"] == "fp32"
    records = list(losses_so_far(uninterrupted))
    assert [r["step"] for r in records] == list(range(1, 7))
    assert {"encoder", "decoder", "discriminator", "kl", "similarity", "recon_psnr"} <= records[0].keys()
    for epoch in (1, 2):
        with Image.open(uninterrupted / "samples" / f"epoch_{epoch:03d}.png") as grid:
            assert grid.size[0] > 4 * 48 and grid.size[1] > 3 * 32  # real, reconstructed, prior rows
    assert (uninterrupted / "losses.png").stat().st_size > 0
    optimizer = load_file(str(folder / "optimizer.safetensors"))
    assert "rng.noise" in optimizer and "encoder.0.exp_avg" in optimizer and "discriminator.0.step" in optimizer


def test_resume_after_max_steps_is_bit_exact(uninterrupted, tmp_path):
    out = tmp_path / "run"
    train_vaegan(CARPHONE, out, TINY_RUN, RunSettings(device="cpu", progress=False, max_steps=4))  # stops mid-epoch 2
    meta = json.loads((out / "checkpoint" / "config.json").read_text())["meta"]
    assert (meta["step"], meta["complete"]) == (4, False)
    train_vaegan(CARPHONE, out, settings=RunSettings(device="cpu", progress=False, resume=True))  # options come from the checkpoint
    assert_identical(state_tensors(out / "checkpoint"), state_tensors(uninterrupted / "checkpoint"))
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in losses_so_far(out)]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in losses_so_far(uninterrupted)]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is delivered differently on Windows")
def test_ctrl_c_saves_a_checkpoint_that_resumes_bit_exact(uninterrupted, tmp_path):
    out = tmp_path / "run"

    def press_ctrl_c(step, record):
        if step == 2:
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(TrainingInterrupted, match="interrupted at step 2 of 6.*--resume"):
        train_vaegan(CARPHONE, out, TINY_RUN, RunSettings(device="cpu", progress=False, on_step=press_ctrl_c))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    assert json.loads((out / "checkpoint" / "config.json").read_text())["meta"]["step"] == 2
    # A crash after the checkpoint would leave extra log lines; resume drops them.
    with (out / "losses.jsonl").open("a") as log:
        log.write(json.dumps({"step": 3, "stale": True}) + "\n")
    train_vaegan(CARPHONE, out, TINY_RUN, RunSettings(device="cpu", progress=False, resume=True))
    assert_identical(state_tensors(out / "checkpoint"), state_tensors(uninterrupted / "checkpoint"))
    assert [r["step"] for r in losses_so_far(out)] == list(range(1, 7))
    assert not any("stale" in r for r in losses_so_far(out))


def test_runs_refuse_to_mix(uninterrupted, tmp_path):
    with pytest.raises(ChainError, match="already holds a training run"):
        train_vaegan(CARPHONE, uninterrupted, TINY_RUN, RunSettings(device="cpu", progress=False))
    with pytest.raises(ChainError, match="--latent 32"):
        train_vaegan(CARPHONE, uninterrupted, {**TINY_RUN, "latent": 32}, RunSettings(device="cpu", progress=False, resume=True))
    with pytest.raises(ChainError, match="nothing to resume"):
        train_vaegan(CARPHONE, tmp_path / "empty", TINY_RUN, RunSettings(device="cpu", progress=False, resume=True))


def test_more_epochs_continue_a_finished_run(uninterrupted, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(uninterrupted, out)
    train_vaegan(CARPHONE, out, {"epochs": 3}, RunSettings(device="cpu", progress=False, resume=True))
    meta = json.loads((out / "checkpoint" / "config.json").read_text())["meta"]
    assert (meta["step"], meta["epoch"], meta["train"]["epochs"]) == (9, 3, 3)
    assert (out / "samples" / "epoch_003.png").is_file()


@needs_carphone
def test_cosine_schedule_runs_resume_bit_exact_and_old_runs_keep_one_rate(tmp_path):
    assert lr_factor("cosine", 0, 10) == 1.0 and lr_factor("cosine", 5, 10) == pytest.approx(0.5)
    assert lr_factor("cosine", 10, 10) == pytest.approx(0.0) and lr_factor("constant", 7, 10) == 1.0
    run = {**TINY_RUN, "lr_schedule": "cosine"}
    train_vaegan(CARPHONE, tmp_path / "whole", run, RunSettings(device="cpu", progress=False))
    rates = [r["lr"] for r in losses_so_far(tmp_path / "whole")]
    assert rates[0] == pytest.approx(2e-4) and rates == sorted(rates, reverse=True) and rates[-1] < 2e-5
    train_vaegan(CARPHONE, tmp_path / "resumed", run, RunSettings(device="cpu", progress=False, max_steps=4))
    train_vaegan(CARPHONE, tmp_path / "resumed", settings=RunSettings(device="cpu", progress=False, resume=True))
    assert_identical(state_tensors(tmp_path / "resumed" / "checkpoint"), state_tensors(tmp_path / "whole" / "checkpoint"))
    assert VAEGANTrainOptions.upgrade({"film": "f.mp4"})["lr_schedule"] == "constant"  # saved before the option
    with pytest.raises(ChainError, match="--lr-schedule"):
        train_vaegan(CARPHONE, tmp_path / "bad", {**TINY_RUN, "lr_schedule": "step"}, RunSettings(device="cpu", progress=False))


def test_augmentation_is_a_function_of_seed_and_step_and_keeps_pictures():
    frames = torch.rand(6, 3, 36, 64, generator=torch.Generator().manual_seed(0))
    once = augmented(frames, seed=3, step=5)
    assert once.shape == frames.shape and once.dtype == frames.dtype
    assert 0 <= float(once.min()) and float(once.max()) <= 1
    assert torch.equal(once, augmented(frames, seed=3, step=5))  # what makes --resume exact
    assert not torch.equal(once, augmented(frames, seed=3, step=6))
    assert not torch.equal(once, augmented(frames, seed=4, step=5))
    changed = (once - frames).abs().flatten(1).mean(1)
    assert bool((changed > 1e-3).all())  # every frame is moved, cropped or recoloured
    # A flat grey frame stays flat grey, at most brightened or darkened by 40 %: no noise is added.
    grey = augmented(torch.full((4, 3, 36, 64), 0.5), seed=0, step=0)
    assert float((grey - 0.5).abs().max()) <= 0.2 + 1e-6
    assert float((grey - grey.mean(dim=(1, 2, 3), keepdim=True)).abs().max()) < 1e-3


@needs_carphone
def test_augmented_runs_resume_bit_exact_and_differ_from_plain(tmp_path):
    run = {**TINY_RUN, "augment": True}
    train_vaegan(CARPHONE, tmp_path / "whole", run, RunSettings(device="cpu", progress=False))
    train_vaegan(CARPHONE, tmp_path / "resumed", run, RunSettings(device="cpu", progress=False, max_steps=4))
    train_vaegan(CARPHONE, tmp_path / "resumed", settings=RunSettings(device="cpu", progress=False, resume=True))
    whole = state_tensors(tmp_path / "whole" / "checkpoint")
    assert_identical(state_tensors(tmp_path / "resumed" / "checkpoint"), whole)
    train_vaegan(CARPHONE, tmp_path / "plain", TINY_RUN, RunSettings(device="cpu", progress=False))
    plain = state_tensors(tmp_path / "plain" / "checkpoint")
    assert any(not torch.equal(whole[name], plain[name]) for name in whole)
    with pytest.raises(ChainError, match="augment"):  # a run keeps its setting
        train_vaegan(CARPHONE, tmp_path / "resumed", {**TINY_RUN, "augment": False}, RunSettings(device="cpu", progress=False, resume=True))


# -----------------------------------------------------------------------------
# Several films (issue 26 item 2)


def test_frame_pool_lays_films_end_to_end():
    first = np.arange(3 * 2 * 2 * 3, dtype=np.uint8).reshape(3, 2, 2, 3)
    second = (200 + np.arange(2 * 2 * 2 * 3)).astype(np.uint8).reshape(2, 2, 2, 3)
    pool = FramePool([FrameCache(Path("a"), first, True), FrameCache(Path("b"), second, True)])
    assert len(pool) == 5 and pool.film_of(np.array([0, 2, 3, 4])).tolist() == [0, 0, 1, 1]
    np.testing.assert_array_equal(pool.take(np.array([4, 0, 3])), np.stack([second[1], first[0], second[0]]))
    with pytest.raises(IndexError):
        pool.take(np.array([5]))
    with pytest.raises(ChainError, match="different sizes"):
        FramePool([FrameCache(Path("a"), first, True), FrameCache(Path("c"), np.zeros((1, 3, 2, 3), np.uint8), True)])


def smooth_folder(folder: Path, count: int) -> Path:
    """An image folder of ``count`` smooth 64x40 frames (a second 'film')."""
    folder.mkdir()
    for i in range(count):
        frame = frames_batch(1, VAEGANConfig(**{**TINY, "height": 40, "width": 64}), seed=i)[0]
        Image.fromarray(((frame.permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def two_films(tmp_path_factory) -> tuple[list[Path], Path]:
    """A complete tiny run on carphone (12 frames) and an 8-frame image folder: 20 frames, 5 steps an epoch."""
    if not CARPHONE.is_file():
        pytest.skip(f"{CARPHONE} not found (set CHAIN_SHARED)")
    root = tmp_path_factory.mktemp("films")
    films = [CARPHONE, smooth_folder(root / "folder", 8)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_vaegan(films, root / "run", TINY_RUN, RunSettings(device="cpu", progress=False))
    finally:
        torch.set_num_threads(threads)
    return films, root / "run"


def test_several_films_are_cached_once_each_and_pooled(two_films):
    films, run = two_films
    meta = json.loads((run / "checkpoint" / "config.json").read_text())["meta"]
    # Weighted by length: every frame of both films once an epoch, 20 // 4 = 5 steps.
    assert (meta["frames"], meta["film_frames"], meta["total_steps"]) == (20, [12, 8], 10)
    assert meta["train"]["film"] == str(films[0]) and meta["train"]["more_films"] == [str(films[1])]
    for folder, count in (("frames", 12), ("frames-2", 8)):
        assert np.load(run / folder / "frames.npy", mmap_mode="r").shape == (count, 32, 48, 3)
    synthesizer = build_vaegan(None, StageContext(weights=str(run)))
    assert "carphone_pristine.mp4 and 1 more film" in synthesizer.description


def test_several_films_resume_bit_exact(two_films, tmp_path):
    films, reference = two_films
    out = tmp_path / "run"
    train_vaegan(films, out, TINY_RUN, RunSettings(device="cpu", progress=False, max_steps=7))  # stops in epoch 2
    frames_written = (out / "frames-2" / "frames.npy").stat().st_mtime_ns
    train_vaegan(films[0], out, settings=RunSettings(device="cpu", progress=False, resume=True))  # the first film stands for all
    assert_identical(state_tensors(out / "checkpoint"), state_tensors(reference / "checkpoint"))
    assert (out / "frames-2" / "frames.npy").stat().st_mtime_ns == frames_written  # decoded once
    with pytest.raises(ChainError, match="--more-films"):
        train_vaegan([films[0], CARPHONE], out, {**TINY_RUN, "epochs": 3}, RunSettings(device="cpu", progress=False, resume=True))


@needs_carphone
def test_cli_takes_several_films_filters_and_upsample(tmp_path):
    from tests.test_cli import chain_cli

    folder = smooth_folder(tmp_path / "folder", 4)
    result = chain_cli("train", "vaegan", str(CARPHONE), str(folder), "--out", str(tmp_path / "run"), "--size", "48x32",
                       "--latent", "8", "--filters", "4,8,8,8", "--upsample", "transposed", "--batch", "4",
                       "--epochs", "1", "--max-frames", "4", "--device", "cpu", "--threads", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())
    assert document["config"]["filters"] == [4, 8, 8, 8] and document["config"]["upsample"] == "transposed"
    assert document["meta"]["train"]["more_films"] == [str(folder)] and document["meta"]["frames"] == 8
    refused = chain_cli("train", "vaegan", str(CARPHONE), "--out", str(tmp_path / "bad"), "--filters", "8,x")
    assert refused.returncode != 0 and "--filters needs comma-separated channel counts" in refused.stderr


@needs_carphone
def test_a_missing_film_is_refused_before_any_decoding(tmp_path):
    with pytest.raises(ChainError, match="input not found: .*nope.mp4"):
        train_vaegan([CARPHONE, tmp_path / "nope.mp4"], tmp_path / "run", TINY_RUN, RunSettings(device="cpu", progress=False))
    assert not (tmp_path / "run" / "frames").exists()


# -----------------------------------------------------------------------------
# The stage


def test_stage_runs_in_the_chain(uninterrupted, tmp_path):
    with pytest.warns(ChainWarning, match=r"expect reconstructions that mean little \(trained \d+ steps\)"):
        synthesizer = build_vaegan(None, StageContext(weights=str(uninterrupted)))
    assert synthesizer.consumes == "frames" and synthesizer.label_space is None
    assert "48x32" in synthesizer.description
    chain = Chain(segmenter=None, synthesizer=synthesizer)
    summary = chain(CARPHONE, Outputs(video=tmp_path / "out.mp4"), trim=Trim(max_frames=5), batch_size=2)
    assert summary.frames == 5
    with open_source(tmp_path / "out.mp4") as source:
        frames = [frame.rgb for frame in source]
    assert len(frames) == 5 and frames[0].shape == (144, 176, 3)  # resized back to the input's size


def test_stage_latent_noise_is_seeded(uninterrupted):
    with open_source(CARPHONE, trim=Trim(max_frames=3)) as source:
        frames = np.stack([frame.rgb for frame in source])
    plain = build_vaegan(None, StageContext(weights=str(uninterrupted / "checkpoint")))
    noisy = build_vaegan(None, StageContext(weights=str(uninterrupted), options={"latent_noise": "2", "seed": "4"}))
    out_plain = plain.synthesize(labels=None, frames=frames)
    assert out_plain.shape == (3, 32, 48, 3) and out_plain.dtype == torch.uint8  # on the stage's device
    first = noisy.synthesize(labels=None, frames=frames)
    assert not np.array_equal(first, out_plain)
    noisy.reset()  # the chain resets stages at the start of every run
    np.testing.assert_array_equal(noisy.synthesize(labels=None, frames=frames), first)


def test_stage_without_weights_says_how_to_train(tmp_path):
    with pytest.raises(MissingWeightsError, match="chain train vaegan FILM --out DIR"):
        build_vaegan(None, StageContext(weights=None))
    with pytest.raises(MissingWeightsError, match="--synth-weights DIR"):
        build_vaegan(None, StageContext(weights=str(tmp_path)))
    assert checkpoint_dir(tmp_path) == tmp_path / "checkpoint"


# -----------------------------------------------------------------------------
# Metrics


def test_psnr_by_hand():
    black, grey = np.zeros((2, 4, 4, 3), np.uint8), np.full((2, 4, 4, 3), 10, np.uint8)
    assert psnr(black, grey) == pytest.approx(10 * math.log10(255 ** 2 / 100))  # 28.13 dB
    assert psnr(grey, grey) == math.inf
    with pytest.raises(ValueError):
        psnr(black, grey[:1])


def test_mean_frame_baseline_and_clip_psnr(tmp_path):
    clip = tmp_path / "clip"
    clip.mkdir()
    for i, value in enumerate((0, 20)):
        Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(clip / f"{i:02d}.png")
    # The mean frame is all 10: every pixel is off by 10.
    assert mean_frame_baseline(clip) == pytest.approx(10 * math.log10(255 ** 2 / 100))
    assert clip_psnr(clip, clip) == math.inf


def test_loss_plot_without_matplotlib(tmp_path, monkeypatch):
    log = tmp_path / "losses.jsonl"
    log.write_text("".join(json.dumps({"step": s, "a": 1 / s, "b": s % 3}) + "\n" for s in range(1, 30)))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    plot_losses(log, tmp_path / "plain.png", ["a", "b"], smooth=3)
    with Image.open(tmp_path / "plain.png") as image:
        assert image.format == "PNG" and image.size[1] > 200


@pytest.mark.skipif(sys.platform == "win32", reason="no SIGTERM on Windows")
def test_sigterm_stops_training_like_ctrl_c(tmp_path):
    out = tmp_path / "run"
    before = signal.getsignal(signal.SIGTERM)

    def terminate(step, record):
        if step == 1:
            # Without chain's handler SIGTERM would end pytest itself: fail instead.
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None), "SIGTERM is not handled"
            signal.raise_signal(signal.SIGTERM)

    with pytest.raises(TrainingInterrupted, match="stopped by SIGTERM at step 1 of 6") as stopped:
        train_vaegan(CARPHONE, out, TINY_RUN, RunSettings(device="cpu", progress=False, on_step=terminate))
    assert stopped.value.exit_code == 143
    assert json.loads((out / "checkpoint" / "config.json").read_text())["meta"]["step"] == 1
    assert signal.getsignal(signal.SIGTERM) is before  # handler restored
