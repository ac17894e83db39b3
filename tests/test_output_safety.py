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
from tests.test_bad_inputs import run_cli


def test_staging_names_carry_host_and_pid(tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    staging = targets.staging_path(target)
    assert staging.parent == tmp_path and staging.name.startswith(".out.mp4.partial-") and staging.suffix == ".mp4"
    assert targets._staging_owner(staging.name, target) == (targets._HOST, os.getpid())
    # Names chain never handed out are never taken for its parts: they may be the user's. Only
    # chain's seal (a keyed digest of the name) tells its names from look-alikes.
    sealed = staging.name
    forged = sealed[:-12] + ("0" if sealed[-12] != "0" else "1") + sealed[-11:]
    for name in (".out.mp4.partial-4242.mp4", ".out.mp4.partial-host-17-beef01.mp4", ".out.mp4.part",
                 ".out.mp4.partial-vm-999999-abcdef.mp4", forged, sealed.replace(".mp4", ".mkv"),
                 sealed.replace(".out.mp4", ".other.mp4")):
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


def _edit_keeping_size_and_time(folder: Path) -> None:
    frame = folder / "000001.png"
    times, data = frame.stat(), bytearray(frame.read_bytes())
    data[-20] ^= 1
    frame.write_bytes(bytes(data))
    os.utime(frame, ns=(times.st_atime_ns, times.st_mtime_ns))


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
        "a frame edited keeping its size and time": _edit_keeping_size_and_time,
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


RUN = ["run", "in.mp4", "--seg", "palette:voc", "--synth", "colorize", "-q"]


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """`tests.test_bad_inputs.run_cli`, with stderr as its non-blank lines."""
    code, stderr = run_cli(args, capsys)
    return code, [line for line in stderr.splitlines() if line.strip()]


def test_a_file_appearing_at_a_second_output_mid_run_publishes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    make_video(tmp_path / "in.mp4")
    monkeypatch.chdir(tmp_path)
    assert _run([*RUN, "out.mp4", "--max-frames", "2"], capsys)[0] == 0
    before = (tmp_path / "out.mp4").read_bytes()
    original = ImageFolderSink.write

    def write_then_the_user_saves(self: ImageFolderSink, image: np.ndarray, time: float) -> None:
        original(self, image, time)
        (tmp_path / "masks.mp4").write_bytes(b"the user's video, saved while chain ran")

    monkeypatch.setattr(ImageFolderSink, "write", write_then_the_user_saves)
    code, lines = _run([*RUN, "out.mp4", "--save-labels", "labels", "--masks", "masks.mp4"], capsys)
    assert code == 2 and len(lines) == 1 and "masks.mp4 exists and was not written by chain" in lines[0], lines
    assert (tmp_path / "out.mp4").read_bytes() == before, "the first output was replaced all the same"
    assert not (tmp_path / "labels").exists()
    assert (tmp_path / "masks.mp4").read_bytes() == b"the user's video, saved while chain ran"
    assert not [name for name in os.listdir(tmp_path) if ".partial" in name]


def test_a_move_that_fails_at_publishing_puts_everything_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    make_video(tmp_path / "in.mp4")
    monkeypatch.chdir(tmp_path)
    assert _run([*RUN, "out.mp4", "--save-labels", "labels", "--max-frames", "2"], capsys)[0] == 0
    before = {name: (tmp_path / name).read_bytes() for name in ("out.mp4", "labels/000001.png")}
    real_fill = targets._fill

    def fail_on_the_labels(item: targets.Staged, moves: list) -> None:
        real_fill(item, moves)  # every entry moved in, then the disk fails: all of it must go back
        if item.target.name == "labels":
            raise OSError(errno.EIO, "Input/output error", str(item.staging))

    monkeypatch.setattr(targets, "_fill", fail_on_the_labels)
    code, lines = _run([*RUN, "out.mp4", "--save-labels", "labels", "--max-frames", "3"], capsys)
    assert code == 4 and len(lines) == 1 and "labels" in lines[0] and ".partial" not in lines[0], lines
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    assert not (tmp_path / "labels" / "000002.png").exists()
    assert not [name for name in os.listdir(tmp_path) if ".partial" in name]
    monkeypatch.setattr(targets, "_fill", real_fill)  # and the old outputs are still provably chain's:
    assert _run([*RUN, "out.mp4", "--save-labels", "labels", "--max-frames", "3"], capsys)[0] == 0
    assert (tmp_path / "labels" / "000002.png").exists()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_under_summary_names_it_and_leaves_no_part(
        code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import chain.engine.summary

    make_video(tmp_path / "in.mp4")
    monkeypatch.chdir(tmp_path)

    class FullDisk:
        """The summary's file once the disk is full: writes and the last flush fail, naming no file
        (as Python's buffered writes do)."""

        def __init__(self, file: object) -> None:
            self.file = file

        def write(self, text: str) -> int:
            raise OSError(code, os.strerror(code))

        def close(self) -> None:
            self.file.close()
            raise OSError(code, os.strerror(code))

    real_init = chain.engine.summary.SummaryFile.__init__

    def init(self: chain.engine.summary.SummaryFile, target: Path) -> None:
        real_init(self, target)  # the header is written; then the disk fills
        self.stream._stream = FullDisk(self.stream._stream)

    monkeypatch.setattr(chain.engine.summary.SummaryFile, "__init__", init)
    status, lines = _run([*RUN, "out.mp4", "--summary", "run.json", "--max-frames", "3"], capsys)
    assert status == 4 and len(lines) == 1, lines
    assert "run.json" in lines[0] and ".partial" not in lines[0], lines
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]


def test_import_never_replaces_another_tools_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The hostile case: a folder holding another tool's config.json (with a "model" key) and weights."""
    from tests.conftest import shared_file

    tflite = shared_file("weights/deeplabv3_mnv2_voc_257.tflite")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "config.json").write_text('{"model": "their-net", "epochs": 40}')
    (tmp_path / "theirs" / "finetuned-epoch40.safetensors").write_bytes(b"their weights")
    command = ["import", "tflite", str(tflite), "--labels", "voc", "--out"]
    code, lines = _run([*command, "theirs"], capsys)
    assert code == 2 and "theirs holds files chain did not write" in lines[0], lines
    assert (tmp_path / "theirs" / "finetuned-epoch40.safetensors").read_bytes() == b"their weights"

    assert _run([*command, "ours"], capsys)[0] == 0
    assert _run([*command, "ours"], capsys)[0] == 0  # chain's own import, as written: replaced
    config = tmp_path / "ours" / "config.json"
    config.write_text(config.read_text().replace('"voc"', '"VOC"'))  # an edit the user made
    code, lines = _run([*command, "ours"], capsys)
    assert code == 2 and "ours holds files chain did not write, or changed since" in lines[0], lines
    assert '"VOC"' in config.read_text()


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_a_change_while_publishing_sends_everything_back(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A file saved into chain's old output between its last check and its move aside (while the new
    outputs' digests are taken, say) is kept, and so is everything else."""
    from chain.media import ledger

    make_video(tmp_path / "in.mp4")
    monkeypatch.chdir(tmp_path)
    target = "frames" if kind == "folder" else "out.mp4"
    assert _run([*RUN, target, "--max-frames", "2"], capsys)[0] == 0
    real_record = ledger.record

    def record_while_the_user_saves(target_path: Path, written: Path, ledger_kind: str) -> object:
        if kind == "folder":
            (tmp_path / "frames" / "user-notes.txt").write_text("saved just now")
        else:
            (tmp_path / "out.mp4").write_bytes(b"the user's video, saved over chain's just now")
        return real_record(target_path, written, ledger_kind)

    monkeypatch.setattr(ledger, "record", record_while_the_user_saves)
    code, lines = _run([*RUN, target, "--max-frames", "3"], capsys)
    assert code == 2 and len(lines) == 1 and "changed while chain was publishing" in lines[0], lines
    if kind == "folder":
        assert (tmp_path / "frames" / "user-notes.txt").read_text() == "saved just now"
        assert sorted(p.name for p in (tmp_path / "frames").glob("0*.png")) == ["000000.png", "000001.png"]
    else:
        assert (tmp_path / "out.mp4").read_bytes() == b"the user's video, saved over chain's just now"
    assert not [name for name in os.listdir(tmp_path) if ".partial" in name]


def test_an_empty_folder_is_filled_and_a_chain_folder_refilled_never_replaced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The folder itself is the user's: its inode, permissions (a private 0750, setgid) and a mount stay."""
    make_video(tmp_path / "in.mp4")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames").chmod(0o2750)
    before = (tmp_path / "frames").stat()
    for frames in ("2", "3"):
        assert _run([*RUN, "frames", "--max-frames", frames], capsys)[0] == 0
        after = (tmp_path / "frames").stat()
        assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert sorted(p.name for p in (tmp_path / "frames").glob("0*.png")) == ["000000.png", "000001.png", "000002.png"]
    assert not [name for name in os.listdir(tmp_path) if ".partial" in name]


def test_a_pipe_or_a_big_file_in_chains_folder_is_refused_without_reading_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from chain.media import ledger

    make_video(tmp_path / "in.mp4")
    monkeypatch.chdir(tmp_path)
    assert _run([*RUN, "frames", "--max-frames", "2"], capsys)[0] == 0
    os.mkfifo(tmp_path / "frames" / "000001.png.pipe")  # opening it to hash it would block for ever
    (tmp_path / "frames" / "zz_big.bin").write_bytes(b"\0" * 4096)
    real_digest = ledger._file_digest

    def digest(path: Path) -> str:
        assert path.name != "zz_big.bin", "a file the record does not name was read"
        return real_digest(path)

    monkeypatch.setattr(ledger, "_file_digest", digest)
    code, lines = _run([*RUN, "frames", "--max-frames", "2"], capsys)
    assert code == 2 and "frames holds files chain did not write" in lines[0], lines
