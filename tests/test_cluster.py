"""`chain run --cluster`: shards on a local 2-CPU Ray instance give the one-machine outputs."""

from __future__ import annotations

import builtins
import functools
import json
import os
import signal
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

import chain
from chain.api import build_chain
from chain.cluster import plan_shards, run_frames, run_sharded, warmup_frames
from chain.config import RunConfig
from chain.errors import ChainError, ChainWarning
from chain.labels import VOC
from chain.media import Trim
from chain.media.outputs import Outputs
from chain.stages.base import Segmenter
from tests.conftest import shared_file

FRAMES, GOP = 64, 8
CHAIN = dict(seg="palette:voc", synth="colorize:coco-stuff", remap=["person=bear"])


def make_clip(path: Path, gop: int = GOP) -> Path:
    """64x48, 25 fps, a keyframe every ``gop`` frames, two moving VOC-coloured blocks, and AAC audio."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25, options={"g": str(gop), "keyint_min": str(gop),
                                                            "sc_threshold": "0"})
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("aac", rate=44100, layout="mono")
        for i in range(FRAMES):
            image = np.empty((48, 64, 3), np.uint8)
            image[:] = VOC.palette[0]
            image[10:30, 3 * i % 48:3 * i % 48 + 16] = VOC.palette[15]  # person
            image[30:44, 40 - i % 40:60 - i % 40] = VOC.palette[12]      # dog
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        samples = (0.3 * np.sin(np.arange(44100 * FRAMES // 25) * 2 * np.pi * 440 / 44100)).astype(np.float32)
        for start in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format="fltp", layout="mono")
            frame.sample_rate = 44100
            for packet in audio.encode(frame):
                out.mux(packet)
        for packet in audio.encode(None):
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.fixture(scope="module")
def ray_local():  # noqa: ANN201
    """One local Ray instance with 2 CPUs for the module; this module's stages travel by value."""
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[cluster]'")
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def pngs(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


def video_facts(path: Path) -> tuple[list[int], object, list[tuple[int, bytes]]]:
    """Video packet times (sorted), the frame rate, and the audio packets (time, bytes)."""
    with av.open(str(path)) as container:
        video = sorted(p.pts for p in container.demux(container.streams.video[0]) if p.size)
        rate = container.streams.video[0].average_rate
        container.seek(0)
        audio = [(p.pts, bytes(p)) for p in container.demux(container.streams.audio[0]) if p.size] \
            if container.streams.audio else []
    return video, rate, audio


# --- without Ray ------------------------------------------------------------------------------
def test_shards_start_on_any_frame_and_fewer_only_for_fewer_frames(clip: Path) -> None:
    frames = run_frames(clip, Trim())
    plan = plan_shards(frames, shards=3)  # 64 frames: 21.3 a shard, between the keyframes (every 8)
    assert [(s.first, s.stop) for s in plan] == [(0, 21), (21, 43), (43, 64)]
    assert [s.seek_frame for s in plan] == [0, 16, 40]  # the keyframe at or before each start
    short = run_frames(clip, Trim(max_frames=3))
    with pytest.warns(ChainWarning, match="5 shards asked for, but the run has 3 frames"):
        assert len(plan_shards(short, shards=5)) == 3


def test_shards_start_on_keyframes_and_warm_up_before_them(clip: Path) -> None:
    frames = run_frames(clip, Trim())
    assert len(frames.times) == FRAMES and frames.keyframes == list(range(8, FRAMES, 8))
    plan = plan_shards(frames, shards=4)
    assert [s.first for s in plan] == [0, 16, 32, 48] and plan[-1].stop == FRAMES
    assert all(a.stop == b.first for a, b in zip(plan, plan[1:]))
    warm = plan_shards(frames, shards=4, warmup=warmup_frames(0.3))
    assert warmup_frames(0.3) == 14 and [s.seek_frame for s in warm] == [0, 0, 16, 32]
    assert [len(plan_shards(run_frames(clip, Trim(start=0.4)), shard_seconds=0.32))] == [7]


def test_cluster_without_ray_says_how_to_get_it(clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_ray(name: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ChainError, match=r"pip install 'chain\[cluster\]'"):
        chain.run(clip, tmp_path / "out.mp4", cluster="ray", **CHAIN)
    with pytest.raises(ChainError, match="--fps cannot be combined with --cluster"):
        chain.run(clip, tmp_path / "out.mp4", cluster="ray", fps=10, **CHAIN)
    with pytest.raises(ChainError, match=r"--shard-seconds -1.0 is out of range: give a number of seconds > 0"):  # before Ray is looked for
        chain.run(clip, tmp_path / "out.mp4", cluster="ray", shard_seconds=-1, **CHAIN)
    with pytest.raises(ChainError, match="add --cluster ray"):
        chain.run(clip, tmp_path / "out.mp4", shards=2, **CHAIN)
    assert list(tmp_path.iterdir()) == []


# --- on a local Ray instance ------------------------------------------------------------------
@pytest.mark.slow
def test_sharded_pngs_labels_and_summary_equal_one_machine(ray_local, clip: Path, tmp_path: Path) -> None:  # noqa: ANN001
    outputs = dict(masks="masks.mp4", save_labels="labels", summary="run.json")
    results = {}
    for name, cluster in (("one", None), ("sharded", "ray")):
        folder = tmp_path / name
        folder.mkdir()
        results[name] = chain.run(clip, folder / "frames", cluster=cluster, shards=3 if cluster else None,
                                  **{k: folder / v for k, v in outputs.items()}, **CHAIN)
    one, sharded = tmp_path / "one", tmp_path / "sharded"
    assert results["sharded"].extra["cluster"]["shards"] == 3
    for folder in ("frames", "labels"):
        expected, got = pngs(one / folder), pngs(sharded / folder)
        assert len(got) == FRAMES and list(got) == list(expected)  # global numbering 000000…000039
        assert all(np.array_equal(expected[k], got[k]) for k in expected)
    assert (sharded / "labels" / "labels.json").read_text() == (one / "labels" / "labels.json").read_text()
    assert video_facts(sharded / "masks.mp4")[0] == video_facts(one / "masks.mp4")[0]
    a, b = (json.loads((folder / "run.json").read_text()) for folder in (one, sharded))
    assert a["per_frame"] == b["per_frame"]  # flicker across shard boundaries included
    for key in ("frames", "mean_class_share", "label_flicker", "output_flicker", "audio", "remapped"):
        assert a["run"][key] == b["run"][key], key
    steady, sharded_steady = a["run"]["steadiness"], b["run"]["steadiness"]
    assert steady["pairs"] == sharded_steady["pairs"] and steady["cuts"] == sharded_steady["cuts"]
    for key in ("label_flicker_along_motion", "painting_warp_error", "input_warp_error"):
        assert sharded_steady[key] == pytest.approx(steady[key], rel=1e-4, abs=1e-6), key  # sums in another order
    assert sorted(p.name for p in sharded.iterdir()) == ["frames", "labels", "masks.mp4", "run.json"]  # no parts


@pytest.mark.slow
def test_three_shards_of_a_one_keyframe_clip_equal_one_machine(ray_local, tmp_path: Path) -> None:  # noqa: ANN001
    one_keyframe = make_clip(tmp_path / "one-keyframe.mp4", gop=1000)
    assert run_frames(one_keyframe, Trim()).keyframes == []
    results = {}
    for name, cluster in (("one", None), ("sharded", "ray")):
        results[name] = chain.run(one_keyframe, tmp_path / f"{name}.mp4", cluster=cluster,
                                  shards=3 if cluster else None, save_labels=tmp_path / f"{name}-labels", **CHAIN)
    assert results["sharded"].extra["cluster"]["shards"] == 3
    expected, got = video_facts(tmp_path / "one.mp4"), video_facts(tmp_path / "sharded.mp4")
    assert len(got[0]) == FRAMES and got[0] == expected[0] and got[2] == expected[2]  # frame times, audio packets
    a, b = pngs(tmp_path / "one-labels"), pngs(tmp_path / "sharded-labels")
    assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)
    with av.open(str(tmp_path / "sharded.mp4")) as container:  # each part starts with a keyframe: a remux
        keyframes = [packet.pts for packet in container.demux(video=0) if packet.is_keyframe and packet.pts is not None]
    assert len(keyframes) >= 3


@pytest.mark.slow
def test_sharded_mp4_keeps_frames_fps_audio_and_smoothing(ray_local, clip: Path, tmp_path: Path) -> None:  # noqa: ANN001
    for name, cluster in (("one", None), ("sharded", "ray")):
        chain.run(clip, tmp_path / f"{name}.mp4", cluster=cluster, shards=4 if cluster else None, smooth="ema:0.55",
                  save_labels=tmp_path / f"{name}-labels", **CHAIN)
    expected, got = video_facts(tmp_path / "one.mp4"), video_facts(tmp_path / "sharded.mp4")
    assert len(got[0]) == FRAMES and got[0] == expected[0] and got[1] == expected[1] == 25
    assert got[2] == expected[2] and len(got[2]) > 40  # the same audio packets, copied once
    a, b = pngs(tmp_path / "one-labels"), pngs(tmp_path / "sharded-labels")
    assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)
    # Without the warm-up (28 frames, from keyframe 16 for the shard at 48) the shards' first labels differ.
    cold = tmp_path / "cold-labels"
    run_sharded(RunConfig(clip, Outputs(labels=cold), cluster="ray", shards=4), warmup=0,
                factory=functools.partial(build_chain, seg=CHAIN["seg"], synth=None, smooth="ema:0.55"))
    c = pngs(cold)
    assert [k for k in a if not np.array_equal(a[k], c[k])][:1] == ["000016.png"]


@pytest.mark.slow
def test_window_smoothing_shards_look_both_ways_and_equal_one_machine(ray_local, clip: Path,  # noqa: ANN001
                                                                      tmp_path: Path) -> None:
    for name, cluster in (("one", None), ("sharded", "ray")):
        chain.run(clip, save_labels=tmp_path / f"{name}-labels", cluster=cluster, shards=4 if cluster else None,
                  smooth="window:2", seg=CHAIN["seg"], synth="none", duration=2.4)  # the run ends before the clip
    a, b = pngs(tmp_path / "one-labels"), pngs(tmp_path / "sharded-labels")
    assert len(a) == 60 and list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)
    # Without reading past their ends (or warming up before their starts) the shards' edges differ.
    blind = tmp_path / "blind-labels"
    run_sharded(RunConfig(clip, Outputs(labels=blind), cluster="ray", shards=4, trim=Trim(duration=2.4)), warmup=0,
                factory=functools.partial(build_chain, seg=CHAIN["seg"], synth=None, smooth="window:2"))
    c = pngs(blind)
    assert list(c) == list(a) and any(not np.array_equal(a[k], c[k]) for k in a)


@pytest.mark.slow
def test_deflicker_shards_paint_both_margins_and_equal_one_machine(ray_local, clip: Path,  # noqa: ANN001
                                                                  tmp_path: Path) -> None:
    # With window smoothing too: a shard reads the smoothing's reach beyond the deflicker's, both ways.
    options = dict(CHAIN, smooth="window:2", deflicker="on", duration=2.4)  # the run ends before the clip
    for name, cluster in (("one", None), ("sharded", "ray")):
        chain.run(clip, tmp_path / name, cluster=cluster, shards=4 if cluster else None, **options)
    a, b = pngs(tmp_path / "one"), pngs(tmp_path / "sharded")
    assert len(a) == 60 and list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)
    # Without painting the frames around them, the shards' edges differ.
    blind = tmp_path / "blind"
    factory = functools.partial(build_chain, **{k: v for k, v in options.items() if k != "duration"})
    run_sharded(RunConfig(clip, Outputs(video=blind), cluster="ray", shards=4, trim=Trim(duration=2.4)),
                warmup=2, look_ahead=2, margin=0, factory=factory)
    c = pngs(blind)
    assert list(c) == list(a) and any(not np.array_equal(a[k], c[k]) for k in a)


@pytest.mark.slow
def test_spade_shards_equal_one_machine(ray_local, clip: Path, tmp_path: Path) -> None:  # noqa: ANN001
    weights = shared_file("fixtures/spade_reference/coco_ngf8_G.pth")
    options = dict(seg="palette:voc", synth="spade", synth_weights=str(weights), synth_options={"size": "64"},
                   max_frames=24)
    chain.run(clip, tmp_path / "one", **options)
    chain.run(clip, tmp_path / "sharded", cluster="ray", shards=2, **options)
    a, b = pngs(tmp_path / "one"), pngs(tmp_path / "sharded")
    assert len(a) == 24 and list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)


class _Faulty(Segmenter):
    """A segmenter that kills its worker (once, ``marker`` remembers) or raises, at run frame ``at``."""

    def __init__(self, inner: Segmenter, at: int, marker: Path | None) -> None:
        self.inner, self.at, self.marker = inner, at, marker
        self.label_space, self.description = inner.label_space, inner.description

    def segment(self, frames: np.ndarray, *, indices: np.ndarray,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        if self.at in indices:
            if self.marker is None:
                raise RuntimeError("this shard always fails")
            if not self.marker.exists():
                self.marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-shard
        return self.inner.segment(frames, indices=indices, size=size)


def _faulty_chain(at: int, marker: Path | None) -> chain.Chain:
    built = build_chain(seg=CHAIN["seg"], synth=CHAIN["synth"], remap=CHAIN["remap"])
    built.segmenter = _Faulty(built.segmenter, at, marker)
    return built


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_a_failing_shard_leaves_nothing(ray_local, clip: Path,  # noqa: ANN001
                                                                       tmp_path: Path) -> None:
    chain.run(clip, tmp_path / "one", summary=tmp_path / "one.json", **CHAIN)
    marker = tmp_path / "killed-once"
    outputs = Outputs(video=tmp_path / "retried", summary=tmp_path / "retried.json")
    run_sharded(RunConfig(clip, outputs, cluster="ray", shards=3), factory=functools.partial(_faulty_chain, 30, marker))
    assert marker.exists()  # the worker did die
    a, b = pngs(tmp_path / "one"), pngs(tmp_path / "retried")
    assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "retried.json").read_text())["per_frame"] == \
        json.loads((tmp_path / "one.json").read_text())["per_frame"]

    before = sorted(p.name for p in tmp_path.iterdir())
    failing = Outputs(video=tmp_path / "failed.mp4", labels=tmp_path / "failed-labels",
                      summary=tmp_path / "failed.json")
    with pytest.raises(ChainError, match=r"shard 3 of 3 \(frames 43-63\) failed after 1 retries: "
                                         r"RuntimeError: this shard always fails; nothing was written"):
        run_sharded(RunConfig(clip, failing, cluster="ray", shards=3), factory=functools.partial(_faulty_chain, 50, None),
                    retries=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output, no hidden part


@pytest.fixture(scope="module")
def tiny_controlnet(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from support.tiny_diffusion import write_tiny_controlnet

    base, controlnet = write_tiny_controlnet(tmp_path_factory.mktemp("tiny-controlnet"))
    return {"base": str(base), "controlnet": str(controlnet), "steps": "2", "size": "32", "guidance": "1"}


@pytest.mark.slow
def test_controlnet_cross_frame_shards_equal_one_machine_and_img2img_is_refused(
        ray_local, clip: Path, tiny_controlnet: dict[str, str], tmp_path: Path) -> None:  # noqa: ANN001
    # Every shard attends to the run's first frame, as one machine does, so the paintings agree.
    options = dict(seg="palette:voc", synth="controlnet", synth_options={**tiny_controlnet, "cross_frame": "on"},
                   max_frames=20, device="cpu")
    chain.run(clip, tmp_path / "one", **options)
    chain.run(clip, tmp_path / "sharded", cluster="ray", shards=2, **options)
    a, b = pngs(tmp_path / "one"), pngs(tmp_path / "sharded")
    assert len(a) == 20 and list(a) == list(b)
    assert max(int(np.abs(a[k].astype(int) - b[k].astype(int)).max()) for k in a) <= 1  # float kernels by batch
    # img2img paints each frame from the previous painting: a shard cannot start without it.
    with pytest.raises(ChainError, match="img2img"):
        chain.run(clip, tmp_path / "chained", cluster="ray", shards=2,
                  **{**options, "synth_options": {**tiny_controlnet, "img2img": "0.5"}})
    assert not (tmp_path / "chained").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]
