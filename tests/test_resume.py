"""``chain run … --resume``: a stopped run continues from the parts it finished, and its outputs equal
an uninterrupted run's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import chain
from chain.cluster.resume import MANIFEST
from chain.errors import ChainError
from chain.media.targets import staging_owner
from tests.test_cluster import FRAMES, make_clip, video_facts

OPTIONS = dict(seg="palette:voc", synth="colorize:coco-stuff", remap=["person=bear"], smooth="window:2",
               deflicker="on")
#: Where a stopped run is killed (SIGKILL, nothing of it runs after), as Python patched into it.
KILLS = {
    # decoding frame 40 of 64 (past the middle)
    "decode": ("chain.engine.pipeline", "read_batches", "frame-count", 40),
    # writing the painting of frame 40
    "encode": ("chain.engine.pipeline", "Chain._emit", "frame-count", 40),
    # moving the joined outputs into place, after the first of them
    "publish": ("chain.cluster.run", "publish_all", "final-publish", 2),
}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


def outputs(folder: Path) -> dict[str, Path]:
    return {"output": folder / "out.mp4", "masks": folder / "masks", "save_labels": folder / "labels",
            "summary": folder / "run.json"}


def run(clip: Path, folder: Path, **extra: object) -> chain.RunSummary:
    paths = outputs(folder)
    return chain.run(clip, paths.pop("output"), **paths, **{**OPTIONS, **extra})


def killed_run(clip: Path, folder: Path, where: str) -> int:
    """The same run in another process, killed by SIGKILL at ``where``; its exit status."""
    module, name, counting, at = KILLS[where]
    owner, _, attribute = name.rpartition(".")
    script = textwrap.dedent(f"""
        import importlib, os, signal, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        import chain
        from tests.test_resume import OPTIONS, outputs
        target = importlib.import_module({module!r})
        holder = getattr(target, {owner!r}) if {owner!r} else target
        original = getattr(holder, {attribute!r})
        seen = [0]
        def killing(*args, **kwargs):
            if {counting!r} == "final-publish":  # the join's publish, not a part's: kill as it places outputs
                import chain.media.targets as targets
                place = targets._place
                def placing(*place_args):
                    seen[0] += 1
                    if seen[0] >= {at}:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return place(*place_args)
                targets._place = placing
                return original(*args, **kwargs)
            result = original(*args, **kwargs)
            if {attribute!r} == "read_batches":
                def frames():
                    for batch in result:
                        if batch.indices[-1] >= {at}:
                            os.kill(os.getpid(), signal.SIGKILL)
                        yield batch
                return frames()
            batch = args[1]
            if batch.indices[-1] >= {at}:
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        setattr(holder, {attribute!r}, killing)
        paths = outputs(__import__("pathlib").Path({str(folder)!r}))
        chain.run({str(clip)!r}, paths.pop("output"), **paths, **OPTIONS, resume=True)
    """)
    return subprocess.run([sys.executable, "-c", script], env=dict(os.environ), capture_output=True).returncode


def same_outputs(a: Path, b: Path) -> None:
    expected, got = video_facts(a / "out.mp4"), video_facts(b / "out.mp4")
    assert got[0] == expected[0] and got[1] == expected[1] and got[2] == expected[2]  # times, rate, audio packets
    for folder in ("masks", "labels"):
        names = sorted(p.name for p in (a / folder).iterdir())
        assert names == sorted(p.name for p in (b / folder).iterdir())
        for name in names:
            if name.endswith(".png"):
                assert np.array_equal(np.asarray(Image.open(a / folder / name)), np.asarray(Image.open(b / folder / name)))
    first, second = (json.loads((folder / "run.json").read_text()) for folder in (a, b))
    assert first["per_frame"] == second["per_frame"]


@pytest.fixture(scope="module")
def uninterrupted(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("whole")
    run(clip, folder)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("where", list(KILLS))
def test_a_killed_run_resumes_to_the_uninterrupted_outputs(clip: Path, uninterrupted: Path, tmp_path: Path,
                                                           where: str) -> None:
    assert killed_run(clip, tmp_path, where) == -9
    hidden = [entry for entry in tmp_path.iterdir() if entry.name.startswith(".")]
    assert all(staging_owner(entry.name) is not None for entry in hidden)  # sealed: nothing like an output
    assert [entry for entry in hidden if (entry / MANIFEST).is_file()]  # the parts, and what they belong to
    if where != "publish":
        assert not (tmp_path / "out.mp4").exists()
    summary = run(clip, tmp_path, resume=True)
    resumed = summary.extra["resume"]
    assert summary.frames == FRAMES and resumed["kept"] > 0
    if where in ("decode", "encode"):  # stopped past the middle: less than half the work is left
        assert FRAMES - resumed["frames_kept"] < FRAMES / 2
    else:
        assert resumed["frames_kept"] == FRAMES  # every part was done: only the join and publish again
    same_outputs(uninterrupted, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels", "masks", "out.mp4", "run.json"]


@pytest.mark.slow
def test_a_resume_of_another_command_is_refused_naming_the_difference(clip: Path, tmp_path: Path) -> None:
    assert killed_run(clip, tmp_path, "encode") == -9
    with pytest.raises(ChainError, match=r"--resume: the stopped run's chain\.remap was \[\"person=bear\"\], "
                                         r"this one's is \[\"person=cow\"\]"):
        run(clip, tmp_path, resume=True, **{**OPTIONS, "remap": ["person=cow"]})
    # Without --resume the stopped run's parts are cleared and the run starts again.
    summary = run(clip, tmp_path)
    assert summary.frames == FRAMES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels", "masks", "out.mp4", "run.json"]


def test_resume_runs_in_parts_and_equals_a_plain_run(clip: Path, tmp_path: Path) -> None:
    plain, parts = tmp_path / "plain", tmp_path / "parts"
    plain.mkdir()
    parts.mkdir()
    run(clip, plain)
    summary = run(clip, parts, resume=True)
    assert summary.extra["resume"] == {"parts": 20, "kept": 0, "frames_kept": 0,
                                       "join_seconds": summary.extra["resume"]["join_seconds"]}
    same_outputs(plain, parts)
    assert sorted(p.name for p in parts.iterdir()) == ["labels", "masks", "out.mp4", "run.json"]


def test_resume_of_an_image_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "frames").mkdir()
    Image.new("RGB", (32, 32)).save(tmp_path / "frames" / "0.png")
    with pytest.raises(ChainError, match="--resume splits video files into parts"):
        chain.run(tmp_path / "frames", tmp_path / "out.mp4", seg="palette:voc", synth="colorize", resume=True)


def _stopping_at(frames: int) -> SimpleNamespace:
    """A progress hook that stops the run as Ctrl-C would, once ``frames`` are done."""
    done = [0]

    def advance(count: int) -> None:
        done[0] += count
        if done[0] >= frames:
            raise KeyboardInterrupt

    return SimpleNamespace(start=lambda total, description: None, advance=advance, stop=lambda: None)


@pytest.mark.slow
def test_an_interrupted_call_resumes_in_the_same_process(clip: Path, uninterrupted: Path, tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        run(clip, tmp_path, resume=True, progress=_stopping_at(40))
    assert not (tmp_path / "out.mp4").exists()
    summary = run(clip, tmp_path, resume=True)
    assert summary.extra["resume"]["frames_kept"] >= 32
    same_outputs(uninterrupted, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels", "masks", "out.mp4", "run.json"]
