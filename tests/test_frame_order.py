"""vaegan's ``smooth``: each frame decoded from its neighbours' latents too, never across a cut."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import chain
from chain.stages.vaegan import VAEGANSynthesizer
from chain.weights.folder import save_checkpoint
from chain.weights.vaegan import MODEL_KIND
from models.vaegan import VAEGAN, VAEGANConfig
from tests.test_smoothing import moving_square

TINY = dict(height=32, width=48, latent_dim=16, filters=(8, 16, 32, 64))


@pytest.fixture
def model() -> VAEGAN:
    """A tiny random model whose reconstructions depend on the frame (a new one decodes one grey)."""
    torch.manual_seed(0)
    model = VAEGAN(VAEGANConfig(**TINY)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.mul_(4)
    return model


def painted(model: VAEGAN, clip: np.ndarray, smooth: int, batch: int) -> np.ndarray:
    """The paintings as the chain asks for them: each batch shown the ``smooth`` frames after it first."""
    synthesizer = VAEGANSynthesizer(model, smooth=smooth, batch_size=3)
    out = []
    for start in range(0, len(clip), batch):
        end = min(start + batch, len(clip))
        if smooth and end < len(clip):
            synthesizer.look(clip[end:end + smooth], indices=np.arange(end, min(end + smooth, len(clip))))
        out.append(synthesizer.synthesize(labels=None, frames=clip[start:end]).numpy())
    return np.concatenate(out)


def test_a_frame_is_decoded_from_the_weighted_latents_around_it(model: VAEGAN) -> None:
    clip, _ = moving_square(9)
    smooth = painted(model, clip, smooth=2, batch=4)
    plain = painted(model, clip, smooth=0, batch=4)
    assert not np.array_equal(smooth, plain)
    synthesizer = VAEGANSynthesizer(model)
    with torch.no_grad():
        means = model.encoder(synthesizer._to_model(clip))[0]
        weights = torch.exp(-0.5 * torch.arange(-2.0, 3.0) ** 2)  # sigma = smooth / 2 = 1
        for t in (0, 4, 8):  # the ends use the frames they have
            offsets = [k for k in range(-2, 3) if 0 <= t + k < len(clip)]
            mean = sum(weights[k + 2] * means[t + k] for k in offsets) / sum(weights[k + 2] for k in offsets)
            expected = synthesizer._decode(mean[None]).numpy()[0]
            assert np.abs(smooth[t].astype(int) - expected).max() <= 1, t


@pytest.mark.parametrize("batch", [1, 5])
def test_batches_give_the_same_frames(model: VAEGAN, batch: int) -> None:
    clip, _ = moving_square(11)
    # Equal but for float rounding (the encoder's batches hold other frames): 1 level at most.
    assert np.abs(painted(model, clip, 3, batch).astype(int) - painted(model, clip, 3, 11)).max() <= 1


def test_nothing_crosses_a_cut(model: VAEGAN) -> None:
    before, _ = moving_square(6)
    after, _ = moving_square(6, background="bicycle", seed=1, x0=40)
    after = (255 - after).astype(np.uint8)  # another scene: its histogram is far from the first's
    whole = painted(model, np.concatenate([before, after]), smooth=3, batch=4)
    # Equal but for float rounding (the encoder's batches are made of other frames): 1 level at most.
    for got, alone in ((whole[:6], painted(model, before, smooth=3, batch=4)),
                       (whole[6:], painted(model, after, smooth=3, batch=4))):
        assert np.abs(got.astype(int) - alone).max() <= 1


def test_smooth_through_the_chain(model: VAEGAN, tmp_path: Path) -> None:
    clip, _ = moving_square(8)
    (tmp_path / "clip").mkdir()
    for index, frame in enumerate(clip):
        Image.fromarray(frame).save(tmp_path / "clip" / f"{index:03d}.png")
    weights = tmp_path / "weights"
    save_checkpoint(weights, model=MODEL_KIND, config=model.config, state_dict=model.state_dict())
    for batch in (1, 8):
        summary = chain.run(tmp_path / "clip", tmp_path / f"out-{batch}", seg="none", synth="vaegan",
                            synth_weights=str(weights), synth_options={"smooth": "2"}, batch_size=batch)
        assert summary.frames == 8 and "latents smoothed over ±2 frames" in summary.synthesizer
    names = sorted(p.name for p in (tmp_path / "out-1").glob("*.png"))
    assert len(names) == 8
    for name in names:  # but for float rounding: the encoder's batches hold other frames
        one, eight = (np.asarray(Image.open(tmp_path / f"out-{batch}" / name)).astype(int) for batch in (1, 8))
        assert np.abs(one - eight).max() <= 1
