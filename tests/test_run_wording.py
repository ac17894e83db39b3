"""What `chain run` says (issue 29): one speed, outputs named for what they are, flags without
types in --help, and lines a log keeps whole."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chain.engine.summary import frames_per_second
from tests.test_cli import chain_cli

SPEED = re.compile(r"([0-9]+\.[0-9]{2}) frames/s")


def test_help_shows_no_type_after_flags() -> None:
    result = chain_cli("run", "--help")
    assert result.returncode == 0
    assert "--quiet" in result.stdout and "--strict" in result.stdout and "--compile" in result.stdout
    assert "<bool>" not in result.stdout
    assert re.search(r"--batch\s+N\s", result.stdout)  # options that take a value still name it


def test_an_image_output_is_reported_as_an_image_of_one_frame(carphone: Path, tmp_path: Path) -> None:
    result = chain_cli("run", str(carphone), str(tmp_path / "x.png"), "--seg", "palette:voc", "--max-frames", "1",
                       "--compare", str(tmp_path / "c.png"), "--save-labels", str(tmp_path / "maps"))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert any(line.startswith("1 frame at 176x144, ") for line in lines), result.stderr
    assert f"wrote image: {tmp_path / 'x.png'}" in lines
    assert f"wrote compare image: {tmp_path / 'c.png'}" in lines
    assert f"wrote label maps: {tmp_path / 'maps'}" in lines
    assert not any(line.startswith("wrote video:") for line in lines)


@pytest.mark.slow
def test_progress_and_closing_line_give_one_speed_and_a_log_keeps_lines_whole(carphone: Path, tmp_path: Path) -> None:
    # stderr is a pipe here, 40 columns wide: a terminal's bar would be cut to that width.
    output = tmp_path / ("a-long-name-that-does-not-fit-in-forty-columns-" * 2 + ".mp4")
    done = subprocess.run([sys.executable, "-m", "chain", "run", str(carphone), str(output), "--seg", "palette:voc",
                           "--max-frames", "30"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "40"})
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    progress = [line for line in lines if line.startswith(f"{carphone.name}: ")]
    closing = [line for line in lines if line.startswith("30 frames at ")]
    assert progress and progress[-1].startswith(f"{carphone.name}: 30/30 frames, "), done.stderr
    assert len(closing) == 1
    assert SPEED.findall(progress[-1]) == SPEED.findall(closing[0])  # one figure, one definition
    assert f"wrote video: {output}" in lines  # whole, not wrapped or cut at 40 columns


def test_the_one_definition_of_speed() -> None:
    assert frames_per_second(30, 2.0) == 15.0
    assert frames_per_second(0, 0.0) == 0.0
