"""What chain may replace, and what the user is told when the system refuses a write."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from chain.entry import main
from chain.errors import describe_os_error
from chain.media import targets
from chain.media.sink import ImageFolderSink
from tests.bad_inputs import make_video


def test_staging_names_carry_host_and_pid(tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    staging = targets.staging_path(target)
    assert staging.parent == tmp_path and staging.name.startswith(".out.mp4.partial-") and staging.suffix == ".mp4"
    assert targets._staging_owner(staging.name, target) == (targets._HOST, os.getpid())
    assert targets._staging_owner(".out.mp4.partial-4242.mp4", target) == (targets._HOST, 4242)
    assert targets._staging_owner(".out.mp4.partial-my-laptop-17-beef.mp4", target) == ("my-laptop", 17)
    assert targets._staging_owner(".out.mp4.part", target) is None
    assert targets._staging_owner(".other.mp4.partial-17.mp4", target) is None


def test_a_folder_is_chains_only_with_its_marker_and_nothing_else(tmp_path: Path) -> None:
    sink = ImageFolderSink(tmp_path / "frames")
    sink.write(np.zeros((4, 4, 3), np.uint8), 0.0)
    sink.commit()
    assert targets.written_by_chain(tmp_path / "frames", "folder")
    (tmp_path / "frames" / "notes.txt").write_text("mine")
    assert not targets.written_by_chain(tmp_path / "frames", "folder")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "000000.png").write_bytes(b"x")
    assert not targets.written_by_chain(tmp_path / "theirs", "folder")


@pytest.mark.parametrize("code, reason", [(errno.ENOSPC, "the disk is full"),
                                          (errno.EROFS, "the file system is read-only")])
def test_a_refused_write_names_the_users_path(code: int, reason: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    make_video(tmp_path / "in.mp4")
    monkeypatch.chdir(tmp_path)
    calls = []

    def refuse(image: np.ndarray, path: Path, **options: object) -> None:
        calls.append(path)
        if len(calls) > 2:  # a few frames get written first, as on a disk that fills up
            raise OSError(code, os.strerror(code), str(path))
        Path(path).write_bytes(b"frame")

    monkeypatch.setattr("chain.media.sink.save_png", refuse)
    with pytest.raises(SystemExit) as done:
        main(["run", "in.mp4", "frames", "--seg", "palette:voc", "--synth", "colorize", "-q"])
    assert done.value.code == 4
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0] and "frames" in lines[0] and ".partial" not in lines[0], lines
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]


def test_os_error_messages_hide_staging_names() -> None:
    error = OSError(errno.ENOSPC, "No space left on device", "/films/.out.mp4.partial-host-12-ab.mp4")
    assert describe_os_error(error) == "the system refused writing /films/out.mp4: the disk is full"
    assert describe_os_error(OSError(errno.EIO, "I/O error")) == "the system refused: an input/output error"
    inside = OSError(errno.EROFS, "Read-only file system", "/films/.frames.partial-host-12-ab/000003.png")
    assert describe_os_error(inside) == "the system refused writing /films/frames/000003.png: the file system is read-only"
