"""The command line: one-line errors with non-zero exits, listings, and a real run.

Commands run in-process through `chain.entry.main` (what the console script calls); only the
tests about the process itself (``python -m chain``, tracebacks with --debug) start one.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chain.entry import main


def chain_cli(*args: str) -> subprocess.CompletedProcess:
    """``chain ARGS`` in this process, as a finished process would report it."""
    out, err = io.StringIO(), io.StringIO()
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "200"  # rich reads it at each print: tables as wide as a wide terminal's
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        finally:
            if columns is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = columns
    return subprocess.CompletedProcess(["chain", *args], code, out.getvalue(), err.getvalue())


def chain_process(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chain", *args], capture_output=True, text=True, timeout=300,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_remap_to_unknown_class_fails_in_one_line(carphone: Path, tmp_path: Path) -> None:
    result = chain_cli("run", str(carphone), str(tmp_path / "out.mp4"), "--seg", "palette:voc",
                       "--synth", "colorize:coco-stuff", "--remap", "person=unicorn")
    assert_one_line_error(result, "unicorn", "did you mean")
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("args, needles", [
    (["run", "nope.mp4", "out.mp4"], ["input not found", "nope.mp4"]),
    (["run", "{clip}", "out.mp4", "--seg", "deeplib"], ["unknown segmenter", "deeplab"]),
    (["run", "{clip}", "out.mp4", "--seg", "deeplab:resnet18"], ["no variant", "resnet101"]),
    (["run", "{clip}", "out.mp4", "--size", "huge"], ["WIDTHxHEIGHT"]),
    (["run", "{clip}", "out.xyz", "--seg", "palette"], ["unknown extension", ".xyz"]),
    (["run", "{clip}", "out.mp4", "--remap", "person"], ["SRC=DST"]),
    (["run", "{clip}", "out.mp4", "--seg", "deeplab", "--seg-weights", "missing.pth"], ["not found"]),
    (["labels", "klingon"], ["unknown label space"]),
    (["run", "{clip}", "out.mp4", "--seg", "palette", "--seg-opt", "size=9"], ["has no option size", "takes none"]),
    (["run", "{clip}", "out.mp4", "--seg", "deeplab", "--seg-weights", "random", "--seg-opt", "size=big"],
     ["size big", "whole number"]),
    (["run", "{clip}", "{clip}", "--seg", "palette"], ["overwrite the input"]),
    # usage mistakes that typer/click catch are one line too
    (["run", "{clip}", "out.mp4", "--batch", "0"], ["--batch 0", "from 1 to 1024"]),
    (["train", "spade", "--data", "{clip}"], ["Missing option '--out'"]),
    (["eval", "spade"], ["Missing argument"]),
    (["paint", "{clip}"], ["No such command 'paint'"]),
    (["run", "{clip}", "out.mp4", "--seg", "palette", "--compare", "c.png", "--max-frames", "3"],
     ["c.png is an image file", "3 frames"]),
])
def test_user_mistakes_fail_in_one_line(args: list[str], needles: list[str], carphone: Path) -> None:
    result = chain_cli(*[a.format(clip=carphone) for a in args])
    assert_one_line_error(result, *needles)


@pytest.mark.slow
def test_debug_shows_the_traceback() -> None:
    result = chain_process("run", "nope.mp4", "out.mp4", "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_listings(carphone: Path) -> None:
    stages = chain_cli("list")
    assert stages.returncode == 0
    for name in ("deeplab:resnet101", "mobilenet_v3_large", "palette", "labels", "colorize"):
        assert name in stages.stdout
    voc = chain_cli("labels", "voc")
    assert voc.returncode == 0 and "tvmonitor" in voc.stdout
    spaces = chain_cli("labels")
    assert all(name in spaces.stdout for name in ("voc", "coco-stuff", "ade20k", "cityscapes", "camvid"))
    info = chain_cli("info", str(carphone))
    assert info.returncode == 0 and "176x144" in info.stdout and "120 frames" in info.stdout


@pytest.mark.slow
def test_run_from_the_command_line(carphone: Path, tmp_path: Path) -> None:
    result = chain_process("run", str(carphone), str(tmp_path / "out.mp4"), "--seg", "palette:voc", "--max-frames", "5",
                       "--masks", str(tmp_path / "masks.mp4"), "--summary", str(tmp_path / "s.json"), "-q")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.mp4").is_file() and (tmp_path / "masks.mp4").is_file() and (tmp_path / "s.json").is_file()


def test_debug_in_process_raises_the_error_itself() -> None:
    from chain.errors import ChainError

    with pytest.raises(ChainError, match="input not found"):
        main(["run", "nope.mp4", "out.mp4", "--debug"])
