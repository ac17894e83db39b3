"""``--deflicker``: paintings steadied along the input's motion, looking both ways."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import chain
from chain.bounds import DEFAULT_DEFLICKER, parse_deflicker
from chain.errors import ChainError
from chain.stages.deflicker import Deflicker, DeflickerSettings
from chain.steadiness import SteadinessTracker
from tests.test_smoothing import SIDE, moving_square

SETTINGS = DeflickerSettings()


def steady_painting(clip: np.ndarray) -> np.ndarray:
    """What a steady synthesizer paints from ``clip``: its colours, dimmed into mid-range."""
    return (0.6 * clip.astype(np.float32) + 50).astype(np.uint8)


def flickering(clip: np.ndarray, seed: int = 0) -> np.ndarray:
    """What a flickering synthesizer paints from ``clip``: the steady painting, with per-frame shading
    (a brightness offset and a broad colour blob) and fine noise that change every frame."""
    rng = np.random.default_rng(seed)
    height, width = clip.shape[1:3]
    painted = []
    for frame in steady_painting(clip).astype(np.float32):
        blob = cv2.GaussianBlur(rng.standard_normal((height, width, 3)).astype(np.float32), (0, 0), 12)
        shading = rng.uniform(-12, 12) + 10 * blob / blob.std()
        painted.append(frame + shading + rng.normal(0, 2, (height, width, 3)))
    return np.clip(np.stack(painted), 0, 255).astype(np.uint8)


def steadied(clip: np.ndarray, painted: np.ndarray, batch: int = 1,
             settings: DeflickerSettings = SETTINGS) -> np.ndarray:
    """The paintings as the chain writes them: pushed a batch at a time, drained at the end."""
    deflicker: Deflicker[int] = Deflicker(settings)
    out: dict[int, np.ndarray] = {}
    for start in range(0, len(clip), batch):
        indices = np.arange(start, min(start + batch, len(clip)))
        for first, frames in deflicker.push(indices, clip[indices], painted[indices], int(indices[0])):
            out.update({first + i: frame for i, frame in enumerate(frames)})
    for first, frames in deflicker.drain():
        out.update({first + i: frame for i, frame in enumerate(frames)})
    assert sorted(out) == list(range(len(clip)))
    return np.stack([out[i] for i in range(len(clip))])


def warp_error(clip: np.ndarray, painted: np.ndarray) -> float:
    """E_warp judged with Farneback's flow (the deflicker follows DIS)."""
    tracker = SteadinessTracker(flow="farneback")
    tracker.add_batch(clip, None, painted)
    return tracker.painted_warp_error


def test_strength_specs() -> None:
    assert parse_deflicker("on") == parse_deflicker(True) == DEFAULT_DEFLICKER == (0.8, 3)
    assert parse_deflicker("0.4") == (0.4, 3) and parse_deflicker(0.25) == (0.25, 3)
    assert parse_deflicker("1:14") == parse_deflicker((1, 14)) == (1.0, 14)
    for off in (None, False, "off", "0", 0, "0:5"):
        assert parse_deflicker(off) is None
    for bad in ("1.5", "-0.1", "nan", "strong", "inf", "0.5:0", "0.5:25", "0.5:x", "1:2:3"):
        with pytest.raises(ChainError, match="--deflicker"):
            parse_deflicker(bad)


def test_a_flickering_painting_comes_out_steady_and_in_place() -> None:
    clip, lefts = moving_square(24)
    painted = flickering(clip)
    out = steadied(clip, painted)
    assert warp_error(clip, out) < 0.35 * warp_error(clip, painted)
    # Nearer the steady painting than the per-frame painting is...
    steady = steady_painting(clip).astype(np.float32)
    error, plain_error = (np.abs(x - steady).mean() for x in (out, painted))
    assert error < 0.8 * plain_error
    # ...and no trail or ghost: around the square's edges, where the background is revealed and
    # covered, the result is no further from the steady painting than the per-frame painting.
    for t in (3, 12, 20):
        band = np.zeros(clip.shape[1:3], bool)
        for edge in (lefts[t], lefts[t] + SIDE - 1):
            band[22:22 + SIDE, max(0, edge - 3):edge + 4] = True
        ghost = np.abs(out[t] - steady[t])[band].mean()
        assert ghost <= np.abs(painted[t] - steady[t])[band].mean() + 1.0, t


@pytest.mark.parametrize("batch", [3, 8])
def test_batches_give_identical_frames(batch: int) -> None:
    clip, _ = moving_square(14)
    painted = flickering(clip, seed=1)
    assert np.array_equal(steadied(clip, painted, batch), steadied(clip, painted, 1))


def test_nothing_crosses_a_cut() -> None:
    before, _ = moving_square(8)
    after, _ = moving_square(8, background="bicycle", seed=1, x0=40)
    clip = np.concatenate([before, after])
    painted = flickering(clip, seed=2)
    whole = steadied(clip, painted, batch=4)
    assert np.array_equal(whole[:8], steadied(before, painted[:8]))
    assert np.array_equal(whole[8:], steadied(after, painted[8:]))


def test_strength_moves_part_way() -> None:
    clip, _ = moving_square(10)
    painted = flickering(clip, seed=3)
    full, half = (steadied(clip, painted, settings=DeflickerSettings(strength=strength)) for strength in (1.0, 0.5))
    moved_full = np.abs(full.astype(np.float32) - painted).mean()
    moved_half = np.abs(half.astype(np.float32) - painted).mean()
    assert 0.4 * moved_full < moved_half < 0.6 * moved_full


def test_memory_stays_flat_over_2000_frames() -> None:
    clip, _ = moving_square(30)
    painted = flickering(clip, seed=4)
    deflicker: Deflicker[int] = Deflicker(SETTINGS)
    tracemalloc.start()
    try:
        sizes = []
        for index in range(2000):
            i = index % len(clip)  # the square jumps back every 30 frames: a cut, as in a film
            deflicker.push(np.array([index]), clip[i:i + 1], painted[i:i + 1], index)
            assert len(deflicker._held) <= 2 * SETTINGS.radius + 2 and len(deflicker._waiting) <= SETTINGS.radius + 1
            if index in (200, 1999):
                sizes.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert sizes[1] < sizes[0] + 256 * 1024, sizes


def _write_clip(folder: Path, clip: np.ndarray) -> Path:
    folder.mkdir()
    for index, frame in enumerate(clip):
        Image.fromarray(frame).save(folder / f"{index:03d}.png")
    return folder


@pytest.mark.parametrize("batch", [1, 4])
def test_deflicker_through_the_chain(tmp_path: Path, batch: int) -> None:
    clip, _ = moving_square(12)
    source = _write_clip(tmp_path / "clip", clip)
    runs = {}
    for name, deflicker in (("plain", None), ("steady", "on")):
        runs[name] = chain.run(source, tmp_path / name, seg="palette:voc", synth="colorize:voc", deflicker=deflicker,
                               batch_size=batch, summary=tmp_path / f"{name}.json")
    assert runs["steady"].frames == 12 and runs["steady"].request["deflicker"] == list(DEFAULT_DEFLICKER)
    assert "deflicker" in runs["steady"].stage_seconds and "deflicker" not in runs["plain"].stage_seconds
    assert len(list((tmp_path / "steady").glob("*.png"))) == 12


def test_deflicker_needs_a_synthesizer(tmp_path: Path) -> None:
    clip, _ = moving_square(3)
    source = _write_clip(tmp_path / "clip", clip)
    with pytest.raises(ChainError, match="--deflicker.*--synth"):
        chain.run(source, masks=tmp_path / "masks", seg="palette:voc", synth="none", deflicker=1.0)
    assert not (tmp_path / "masks").exists()


def _painted_pngs(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(path).convert("RGB")) for path in sorted(folder.glob("*.png"))])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255 ** 2 / np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.fixture(scope="module")
def real_clip_with_a_cut(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """12 frames of the shared carphone clip, then 8 of fresco-dog, at 96x80, as PNG folders (the
    whole, and the part after the cut alone); and the cut's frame number."""
    from chain.media import Trim, open_source
    from tests.conftest import shared_file

    root = tmp_path_factory.mktemp("cut")
    frames = []
    for name, count in (("carphone_pristine.mp4", 12), ("fresco-dog.mp4", 8)):
        with open_source(shared_file(f"data/videos/{name}"), trim=Trim(max_frames=count), size="96x80") as source:
            frames += [frame.rgb for frame in source]
    whole, after = root / "whole", root / "after"
    for folder, part in ((whole, frames), (after, frames[12:])):
        folder.mkdir()
        for index, frame in enumerate(part):
            Image.fromarray(frame).save(folder / f"{index:03d}.png")
    return whole, after, 12


def _spade() -> dict[str, object]:
    from tests.conftest import shared_file

    return dict(synth="spade", synth_weights=str(shared_file("fixtures/spade_reference/coco_ngf8_G.pth")),
                synth_options={"size": "64"})


def _controlnet(root: Path) -> dict[str, object]:
    from support.tiny_diffusion import write_tiny_controlnet

    base, controlnet = write_tiny_controlnet(root)
    return dict(synth="controlnet", device="cpu",
                synth_options={"base": str(base), "controlnet": str(controlnet), "steps": "2", "size": "32",
                               "guidance": "1"})


@pytest.mark.slow
@pytest.mark.parametrize("synthesizer", ["spade", "controlnet"])
def test_real_synthesizers_steadier_close_to_plain_and_nothing_crosses_the_cut(
        real_clip_with_a_cut: tuple[Path, Path, int], tmp_path: Path, synthesizer: str) -> None:
    whole, after, cut = real_clip_with_a_cut
    options = _spade() if synthesizer == "spade" else _controlnet(tmp_path / "tiny")
    for name, source, deflicker in (("plain", whole, None), ("steady", whole, "on"), ("after", after, "on")):
        chain.run(source, tmp_path / name, seg="palette:voc", deflicker=deflicker, batch_size=4, **options)
    plain, steady = _painted_pngs(tmp_path / "plain"), _painted_pngs(tmp_path / "steady")
    inputs = _painted_pngs(whole)
    assert warp_error(inputs, steady) < 0.8 * warp_error(inputs, plain)
    assert _psnr(steady, plain) >= 32
    # The cut: the frames after it are steadied from their own side alone, as if the clip began there.
    assert np.array_equal(steady[cut:], _painted_pngs(tmp_path / "after"))


@pytest.mark.parametrize(("given", "expected"), [(["--deflicker"], [0.8, 3]), (["--deflicker", "1:14"], [1.0, 14]),
                                                 (["--deflicker=0.5"], [0.5, 3])])
def test_deflicker_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], given: list[str],
                                       expected: list[float]) -> None:
    import json

    from tests.test_bad_inputs import run_cli

    clip, _ = moving_square(4)
    source = _write_clip(tmp_path / "clip", clip)
    # A bare --deflicker before another option and before the output path: neither is taken as its value.
    code, _ = run_cli(["run", str(source), *given, "-q", str(tmp_path / "out"), "--seg", "palette:voc",
                       "--synth", "colorize:voc", "--summary", str(tmp_path / "run.json")], capsys)
    assert code == 0
    assert json.loads((tmp_path / "run.json").read_text())["run"]["request"]["deflicker"] == expected
