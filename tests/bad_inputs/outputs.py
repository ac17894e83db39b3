"""Outputs that must not cost the user anything: existing folders and files, parents, files next
to the output, stale parts of killed runs, and places the system will not let chain write."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.bad_inputs import case, make_video

RUN = ["run", "--seg", "palette:voc", "--synth", "colorize", "-q"]


def _clip(folder: Path) -> str:
    make_video(folder / "in.mp4")
    return "in.mp4"


def _user_folder(folder: Path, name: str) -> str:
    (folder / name).mkdir()
    (folder / name / "beach.jpg").write_bytes(b"the user's photo")
    (folder / name / "000000.png").write_bytes(b"the user's own frame, named like chain's")
    return name


def _chain(folder: Path, *args: str) -> None:
    """Run chain here (the case runs in ``folder``) to make an output it wrote earlier."""
    from chain.entry import main

    assert Path.cwd() == folder
    main(list(args))  # raises SystemExit on failure, which fails the test


def _dead_pid() -> int:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(finished.stdout)


for option in ("", "--masks", "--overlay", "--compare", "--save-labels"):
    def _build(folder: Path, option: str = option) -> list[str]:
        target = _user_folder(folder, "holiday")
        return [*RUN, _clip(folder), *([option, target] if option else [target])]

    case(f"folder-with-user-files-as{option or '-output'}", "error",
         message=r"holiday holds files chain did not write.*remove it yourself or choose another name")(_build)


@case("parent-folder-as-output", "error", message=r"the output \.\. (is the current folder or one above it|holds the input)")
def _(folder: Path) -> list[str]:
    return [*RUN, _clip(folder), ".."]


@case("current-folder-as-output", "error", message=r"the --save-labels folder \. is the current folder")
def _(folder: Path) -> list[str]:
    return [*RUN, _clip(folder), "--save-labels", "."]


@case("empty-folder-is-filled", "output", outputs=("frames/000000.png", "frames/000011.png"))
def _(folder: Path) -> list[str]:
    (folder / "frames").mkdir()
    return [*RUN, _clip(folder), "frames"]


def _check_replaced(folder: Path) -> None:
    assert len(list((folder / "frames").glob("*.png"))) == 5, "the old run's 12 frames were not replaced by 5"


@case("folder-written-by-chain-is-replaced", "output", outputs=("frames/000004.png",), may_change=("frames",),
      check=_check_replaced)
def _(folder: Path) -> list[str]:
    _chain(folder, *RUN, _clip(folder), "frames")
    return [*RUN, "in.mp4", "frames", "--max-frames", "5"]


@case("chain-folder-with-a-user-file-added", "error", message=r"frames holds files chain did not write")
def _(folder: Path) -> list[str]:
    _chain(folder, *RUN, _clip(folder), "frames")
    (folder / "frames" / "notes.txt").write_text("the user's notes")
    return [*RUN, "in.mp4", "frames"]


@case("file-where-a-folder-is-needed", "error", message=r"the --save-labels folder labels is a file")
def _(folder: Path) -> list[str]:
    (folder / "labels").write_text("the user's file")
    return [*RUN, _clip(folder), "out.mp4", "--save-labels", "labels"]


@case("folder-where-a-video-is-needed", "error", message=r"the output clip\.mp4 is a folder.*give a file name")
def _(folder: Path) -> list[str]:
    _user_folder(folder, "clip.mp4")
    return [*RUN, _clip(folder), "clip.mp4"]


@case("video-not-written-by-chain", "error", message=r"the output mine\.mp4 exists and was not written by chain")
def _(folder: Path) -> list[str]:
    make_video(folder / "mine.mp4", frames=3)
    return [*RUN, _clip(folder), "mine.mp4"]


@case("video-written-by-chain-is-replaced", "output", outputs=("out.mkv",), may_change=("out.mkv",))
def _(folder: Path) -> list[str]:
    _chain(folder, *RUN, _clip(folder), "out.mkv", "--max-frames", "2")
    return [*RUN, "in.mp4", "out.mkv"]


@case("image-not-written-by-chain", "error", message=r"the --compare output c\.png exists and was not written")
def _(folder: Path) -> list[str]:
    from PIL import Image

    Image.new("RGB", (4, 4)).save(folder / "c.png")
    return [*RUN, _clip(folder), "out.mp4", "--compare", "c.png", "--max-frames", "1"]


@case("image-written-by-chain-is-replaced", "output", outputs=("c.jpg",), may_change=("c.jpg",))
def _(folder: Path) -> list[str]:
    _chain(folder, *RUN, _clip(folder), "--compare", "c.jpg", "--max-frames", "1")
    return [*RUN, "in.mp4", "--compare", "c.jpg", "--max-frames", "1", "--start", "0.5"]


@case("summary-not-written-by-chain", "error", message=r"the --summary file run\.json exists and was not written")
def _(folder: Path) -> list[str]:
    (folder / "run.json").write_text(json.dumps({"mine": True}))
    return [*RUN, _clip(folder), "out.mp4", "--summary", "run.json"]


@case("summary-written-by-chain-is-replaced", "output", outputs=("run.json",), may_change=("run.json",),
      check=lambda folder: json.loads((folder / "run.json").read_text())["run"]["frames"] == 3 or
      (_ for _ in ()).throw(AssertionError("the summary was not replaced")))
def _(folder: Path) -> list[str]:
    _chain(folder, *RUN, _clip(folder), "--summary", "run.json")
    return [*RUN, "in.mp4", "--summary", "run.json", "--max-frames", "3"]


def _host() -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40] or "host"


@case("stale-parts-of-a-killed-run-are-removed", "output", outputs=("out.mp4",),
      may_change=(".out.mp4.partial-*",))
def _(folder: Path) -> list[str]:
    dead = _dead_pid()
    (folder / f".out.mp4.partial-{_host()}-{dead}-0a1b2c.mp4").write_bytes(b"half a video")
    (folder / f".out.mp4.partial-{dead}.mp4").write_bytes(b"half a video, older naming")
    return [*RUN, _clip(folder), "out.mp4"]


@case("parts-of-a-running-process-are-kept", "output", outputs=("out.mp4",))
def _(folder: Path) -> list[str]:
    (folder / f".out.mp4.partial-{_host()}-{os.getppid()}-0a1b2c.mp4").write_bytes(b"another run's video")
    (folder / ".out.mp4.partial-otherhost-1-0a1b2c.mp4").write_bytes(b"a run on another machine")
    return [*RUN, _clip(folder), "out.mp4"]


@case("import-into-a-folder-with-user-files", "error", message=r"the --out folder weights holds files chain did not")
def _(folder: Path) -> list[str]:
    _user_folder(folder, "weights")
    (folder / "model.tflite").write_bytes(b"TFL3")
    return ["import", "tflite", "model.tflite", "--labels", "voc", "--out", "weights"]


@case("import-onto-a-file", "error", message=r"the --out folder weights is a file")
def _(folder: Path) -> list[str]:
    (folder / "weights").write_text("the user's file")
    (folder / "model.tflite").write_bytes(b"TFL3")
    return ["import", "tflite", "model.tflite", "--labels", "voc", "--out", "weights"]


@case("train-into-a-folder-with-user-files", "error", message=r"--out films holds files that are not a chain training")
def _(folder: Path) -> list[str]:
    _user_folder(folder, "films")
    return ["train", "vaegan", _clip(folder), "--out", "films", "--max-steps", "1", "-q"]


@case("train-into-the-current-folder", "error", message=r"--out \. is the current folder")
def _(folder: Path) -> list[str]:
    return ["train", "spade", "--data", _clip(folder), "--seg", "palette:voc", "--out", ".", "-q"]


@case("output-the-system-refuses", "error", exit_code=4,
      message=r"the system refused writing /sys/chain-test-output\.mp4: permission denied")
def _(folder: Path) -> list[str]:
    return [*RUN, _clip(folder), "/sys/chain-test-output.mp4"]
