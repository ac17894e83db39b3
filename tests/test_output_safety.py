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
    assert targets._staging_owner(".out.mp4.partial-my-laptop-17-beef01.mp4", target) == ("my-laptop", 17)
    # Names chain never hands out are never taken for its parts: they may be the user's.
    for name in (".out.mp4.partial-4242.mp4", ".out.mp4.partial-host-17-beef.mp4", ".out.mp4.part",
                 ".other.mp4.partial-host-17-beef01.mp4", ".out.mp4.partial-host-17-beef01.mkv"):
        assert targets._staging_owner(name, target) is None, name


@pytest.mark.parametrize("length", [200, 240, 255])
def test_a_long_output_name_gets_a_staging_name_the_file_system_takes(length: int, tmp_path: Path) -> None:
    target = tmp_path / ("é" * ((length - 4) // 2) + "x" * ((length - 4) % 2) + ".mp4")
    assert len(os.fsencode(target.name)) == length
    staging = targets.staging_path(target)
    assert len(os.fsencode(staging.name)) <= 255 and staging.suffix == ".mp4"
    staging.write_bytes(b"part")  # the file system takes it
    assert targets._staging_owner(staging.name, target) == (targets._HOST, os.getpid())
    other = target.with_name("é" * ((length - 4) // 2) + "y" * ((length - 4) % 2 or 1) + ".mp4")
    assert targets._staging_owner(staging.name, other) is None


def test_a_folder_is_chains_only_while_it_holds_what_chain_recorded(tmp_path: Path) -> None:
    def chains_folder() -> Path:
        sink = ImageFolderSink(tmp_path / "frames")
        for _ in range(3):
            sink.write(np.zeros((4, 4, 3), np.uint8), 0.0)
        sink.commit()
        assert targets.written_by_chain(tmp_path / "frames", "folder")
        return tmp_path / "frames"

    import shutil

    edits = {
        "a file added": lambda folder: (folder / "notes.txt").write_text("mine"),
        "a frame replaced by a folder of that name": lambda folder: (
            (folder / "000002.png").unlink(), (folder / "000002.png").mkdir(),
            (folder / "000002.png" / "holiday.jpg").write_bytes(b"photo")),
        "a frame edited": lambda folder: (folder / "000001.png").write_bytes(b"retouched"),
        "a frame removed": lambda folder: (folder / "000000.png").unlink(),
        "a frame renamed": lambda folder: (folder / "000000.png").rename(folder / "000007.png"),
        "the marker replaced": lambda folder: (folder / ".chain-output").write_text("{}"),
        "a frame touched": lambda folder: os.utime(folder / "000001.png", ns=(1, 1)),
        "a link added": lambda folder: (folder / "000003.png").symlink_to(folder / "000001.png"),
    }
    for what, edit in edits.items():
        folder = chains_folder()
        edit(folder)
        assert not targets.written_by_chain(folder, "folder"), what
        shutil.rmtree(folder)
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "000000.png").write_bytes(b"x")
    (tmp_path / "theirs" / ".chain-output").write_text('{"written_by": "chain 0.1.0"}')
    assert not targets.written_by_chain(tmp_path / "theirs", "folder")


def test_a_moved_output_is_not_chains_where_it_lands(tmp_path: Path) -> None:
    sink = ImageFolderSink(tmp_path / "frames")
    sink.write(np.zeros((4, 4, 3), np.uint8), 0.0)
    sink.commit()
    (tmp_path / "frames").rename(tmp_path / "elsewhere")
    assert not targets.written_by_chain(tmp_path / "elsewhere", "folder")


def test_without_its_record_chain_refuses_its_own_old_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = ImageFolderSink(tmp_path / "frames")
    sink.write(np.zeros((4, 4, 3), np.uint8), 0.0)
    sink.commit()
    monkeypatch.setenv("CHAIN_STATE", str(tmp_path / "another-state"))
    assert not targets.written_by_chain(tmp_path / "frames", "folder")


def test_an_unwritable_state_folder_still_publishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "state").write_text("a file where chain's state folder would be")
    monkeypatch.setenv("CHAIN_STATE", str(tmp_path / "state"))
    sink = ImageFolderSink(tmp_path / "frames")
    sink.write(np.zeros((4, 4, 3), np.uint8), 0.0)
    sink.commit()
    assert (tmp_path / "frames" / "000000.png").is_file()
    assert not targets.written_by_chain(tmp_path / "frames", "folder")  # unproven: a later run refuses it


@pytest.mark.parametrize("value", ["~nosuchuser/state", "relative/state"])
def test_chain_state_must_name_a_folder(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from chain.errors import ChainError
    from chain.media import ledger

    monkeypatch.setenv("CHAIN_STATE", value)
    with pytest.raises(ChainError, match="CHAIN_STATE"):
        ledger.state_dir()


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
