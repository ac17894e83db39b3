"""Outputs that must not cost the user anything: existing folders and files, parents, files next
to the output, stale parts of killed runs, and places the system will not let chain write."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable
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


def _check_stale_parts_gone(folder: Path) -> None:
    left = sorted(entry.name for entry in folder.iterdir() if ".partial-" in entry.name)
    assert left == [], f"chain's own parts of a killed run were left: {left}"


@case("stale-parts-of-a-killed-run-are-removed", "output", outputs=("out.mp4", "frames/000000.png"),
      may_change=(".out.mp4.partial-*", ".frames.partial-*"), check=_check_stale_parts_gone)
def _(folder: Path) -> list[str]:
    from chain.media.targets import staging_path

    dead = _dead_pid()
    staging_path(folder / "out.mp4", pid=dead).write_bytes(b"half a video")
    (staging_path(folder / "frames", pid=dead) / "000000.png").parent.mkdir()
    (staging_path(folder / "frames", pid=dead)).mkdir()
    return [*RUN, _clip(folder), "out.mp4", "--masks", "frames/"]


# Files and folders of the user's named like chain's parts, of dead processes: chain's seal is not on
# their names, so they are the user's (the snapshot check: nothing of theirs may change).
for _look_alike in (".out.mp4.partial-{host}-{dead}-0a1b2c.mp4", ".out.mp4.partial-{dead}.mp4",
                    ".out.mp4.partial-{host}-{dead}-0a1b2c3d4e5f6a.mp4", ".out.mp4.partial-{host}-4000000-00beef.mp4",
                    ".frames.partial-{host}-{dead}-123456/", ".frames.partial-{host}-{dead}-1234567890abcd/"):
    def _build(folder: Path, pattern: str = _look_alike) -> list[str]:
        name = pattern.format(host=_host(), dead=_dead_pid())
        if name.endswith("/"):
            (folder / name).mkdir()
            (folder / name / "thesis.txt").write_text("the user's thesis")
        else:
            (folder / name).write_text("the user's file")
        return [*RUN, _clip(folder), "out.mp4", "--masks", "frames/"]

    case(f"user-file-named-like-a-part-{_look_alike.replace('{', '').replace('}', '').strip('./')}", "output",
         outputs=("out.mp4", "frames/000000.png"))(_build)


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


@case("train-into-the-current-folder", "error", message=r"--out (folder )?\. is the current folder")
def _(folder: Path) -> list[str]:
    return ["train", "spade", "--data", _clip(folder), "--seg", "palette:voc", "--out", ".", "-q"]


@case("output-the-system-refuses", "error", exit_code=4,
      message=r"the system refused writing /sys/chain-test-output\.mp4: permission denied")
def _(folder: Path) -> list[str]:
    return [*RUN, _clip(folder), "/sys/chain-test-output.mp4"]


# --- Generated: every kind of output, as chain wrote it and after each kind of edit -----------------------------
# An output is chain's to replace only while it is exactly what chain recorded writing there
# (chain.media.ledger); each edit below must turn a replaceable output into a refused one.

_FILE_OUTPUTS = [("", "out.mp4"), ("", "out.mkv"), ("", "out.mov"), ("", "out.avi"), ("", "out.webm"),
                 ("--masks", "m.mp4"), ("--compare", "c.png"), ("--compare", "c.jpg"), ("--compare", "c.webp"),
                 ("--overlay", "o.tif"), ("--masks", "m.bmp"), ("--summary", "run.json")]
_IMAGE_SUFFIXES = (".png", ".jpg", ".webp", ".tif", ".bmp")


def _output_args(option: str, name: str) -> list[str]:
    frames = "1" if name.endswith(_IMAGE_SUFFIXES) else "3"
    return [*([option, name] if option else [name]), "--max-frames", frames]


def _edited_copy(path: Path) -> None:
    """What another tool leaves when it edits chain's output and keeps its tags: a video stream-copied
    (the container's comment kept), an image re-saved with its text, a summary rewritten."""
    if path.suffix in _IMAGE_SUFFIXES:
        from PIL import Image

        with Image.open(path) as image:
            edited, info = image.convert("RGB").rotate(180), dict(image.info)
        options = {"pnginfo": _png_text(info)} if path.suffix == ".png" else {}
        options.update({"comment": info["comment"]} if "comment" in info else {})
        edited.save(path, **options)
    elif path.suffix == ".json":
        document = json.loads(path.read_text())
        document["run"]["frames"] = 99
        path.write_text(json.dumps(document))
    else:
        import av

        copy = path.with_name("copy" + path.suffix)
        with av.open(str(path)) as source, av.open(str(copy), "w") as target:
            target.metadata.update(source.metadata)
            stream = target.add_stream_from_template(source.streams.video[0])
            packets = [packet for packet in source.demux(source.streams.video[0]) if packet.size]
            for packet in packets[:2]:  # a trimmed copy, as `ffmpeg -c copy -t` makes
                packet.stream = stream
                target.mux(packet)
        copy.replace(path)


def _png_text(info: dict) -> object:
    from PIL.PngImagePlugin import PngInfo

    text = PngInfo()
    for key, value in info.items():
        if isinstance(value, str):
            text.add_text(key, value)
    return text


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _link_to_it(path: Path) -> None:
    kept = path.with_name("kept-" + path.name)
    path.rename(kept)
    path.symlink_to(kept.name)


_FILE_EDITS = {
    "as-written": None,
    "a-byte-appended": lambda path: path.open("ab").write(b"\0"),
    "a-byte-changed": _flip_a_byte,
    "an-edited-copy": _edited_copy,
    "a-link-in-its-place": _link_to_it,
}

def _edited_output(option: str, name: str, edit: Callable[[Path], object] | None) -> Callable[[Path], list[str]]:
    """A case's build: chain writes the output, ``edit`` changes it, and the same run is asked again."""
    def build(folder: Path) -> list[str]:
        _chain(folder, *RUN, _clip(folder), *_output_args(option, name))
        if edit is not None:
            edit(folder / name)
        return [*RUN, "in.mp4", *_output_args(option, name)]

    return build


for option, name in _FILE_OUTPUTS:
    for edit_name, edit in _FILE_EDITS.items():
        _build = _edited_output(option, name, edit)
        tag = f"{option.lstrip('-') or 'output'}-{name}-{edit_name}"
        if edit is None:
            case(f"chains-{tag}-is-replaced", "output", outputs=(name,), may_change=(name,))(_build)
        else:
            message = (r"is a symbolic link" if edit_name == "a-link-in-its-place"
                       else rf"{re.escape(name)} exists and was not written by chain, or changed since")
            case(f"chains-{tag}-is-kept", "error", message=message)(_build)


def _frame_made_a_folder(folder: Path) -> None:
    (folder / "000001.png").unlink()
    (folder / "000001.png").mkdir()
    (folder / "000001.png" / "holiday.jpg").write_bytes(b"the user's photo")


_FOLDER_EDITS = {
    "as-written": None,
    "a-file-added": lambda folder: (folder / "beach.jpg").write_bytes(b"the user's photo"),
    "a-frame-edited": lambda folder: _flip_a_byte(folder / "000000.png"),
    "a-frame-made-a-folder": _frame_made_a_folder,
    "a-frame-removed": lambda folder: (folder / "000002.png").unlink(),
    "its-marker-rewritten": lambda folder: (folder / ".chain-output").write_text('{"written_by": "chain"}'),
}

for option, name in (("", "frames"), ("--save-labels", "labels"), ("--masks", "m.v2/")):
    for edit_name, edit in _FOLDER_EDITS.items():
        _build = _edited_output(option, name, edit)
        tag = f"{option.lstrip('-') or 'output'}-{name.rstrip('/')}-{edit_name}"
        if edit is None:
            case(f"chains-{tag}-is-replaced", "output", outputs=(f"{name.rstrip('/')}/000002.png",),
                 may_change=(name.rstrip("/"),))(_build)
        else:
            case(f"chains-{tag}-is-kept", "error",
                 message=rf"{re.escape(name.rstrip('/'))} holds files chain did not write")(_build)


# --- Generated: outputs checked against one another before any work ----------------------------------------------

_HOLDERS = [("", "m/"), ("--masks", "m/"), ("--save-labels", "m")]
_INSIDE = [("", "X/out.mp4"), ("--compare", "X/c.png"), ("--summary", "X/run.json"), ("--overlay", "X/o/"),
           ("--save-labels", "X/labels")]

for holder_option, holder in _HOLDERS:
    for inner_option, inner in _INSIDE:
        if inner_option == holder_option:
            continue
        inner = inner.replace("X", holder.rstrip("/"))

        def _build(folder: Path, pair: tuple = (holder_option, holder, inner_option, inner)) -> list[str]:
            first = [pair[0], pair[1]] if pair[0] else [pair[1]]
            second = [pair[2], pair[3]] if pair[2] else [pair[3]]
            return [*RUN, _clip(folder), *first, *second, "--max-frames", "1"]

        case(f"nested-outputs-{inner_option.lstrip('-') or 'output'}-inside-{holder_option.lstrip('-') or 'output'}",
             "error", message=r"is inside the .*which chain replaces whole",
             check=lambda folder: (folder / "m").exists() and (_ for _ in ()).throw(AssertionError("m was made")))(_build)

for first, second in ((["--masks", "a.mp4"], ["--overlay", "a.mp4"]), (["a.mp4"], ["--compare", "./a.mp4"]),
                      (["--masks", "here/a.mp4"], ["--overlay", "a.mp4"])):
    def _build(folder: Path, first: list = first, second: list = second) -> list[str]:
        (folder / "here").symlink_to(".")
        return [*RUN, _clip(folder), *first, *second, "--max-frames", "1"]

    case(f"two-outputs-one-path-{'-'.join(first + second).replace('/', '_')}", "error",
         message=r"are both .*give each output its own path")(_build)


# --- Generated: long output names (the hidden part's name must fit too) ------------------------------------------

for length, letter in ((200, "a"), (240, "b"), (251, "c"), (240, "é")):
    def _build(folder: Path, length: int = length, letter: str = letter) -> list[str]:
        stem = letter * ((length - 4) // len(letter.encode()))
        return [*RUN, _clip(folder), stem + "x" * (length - 4 - len(stem.encode())) + ".mp4", "--max-frames", "2"]

    case(f"output-name-of-{length}-bytes-{'ascii' if letter.isascii() else 'utf8'}", "output",
         check=lambda folder: len(list(folder.glob("*.mp4"))) == 2 or
         (_ for _ in ()).throw(AssertionError("the long-named output is missing")))(_build)


# --- Generated: training run folders are judged by what their entries are, not their names -----------------------

_RUN_LOOKALIKES = {
    "samples-is-a-file": lambda run: (run / "samples").write_text("the user's notes"),
    "losses-log-is-a-folder": lambda run: ((run / "losses.jsonl").mkdir(), (run / "losses.jsonl" / "a.txt").write_text("x")),
    "checkpoint-is-a-link": lambda run: (run / "checkpoint").symlink_to(".."),
    "frames-without-any-run": lambda run: ((run / "frames").mkdir(), (run / "frames" / "holiday.jpg").write_bytes(b"jpg")),
    "a-marker-and-a-user-file": lambda run: ((run / ".chain-run").write_text("{}"), (run / "beach.jpg").write_bytes(b"jpg")),
}

for lookalike, make in _RUN_LOOKALIKES.items():
    for trainer in ("vaegan", "spade"):
        def _build(folder: Path, make: object = make, trainer: str = trainer) -> list[str]:
            (folder / "films").mkdir()
            make(folder / "films")
            clip = _clip(folder)
            data = [clip] if trainer == "vaegan" else ["--data", clip, "--seg", "palette:voc"]
            return ["train", trainer, *data, "--out", "films", "--max-steps", "1", "-q"]

        case(f"train-{trainer}-into-a-run-lookalike-{lookalike}", "error",
             message=r"--out films holds files that are not a chain training run")(_build)


# --- Training runs: what a hostile review found (generated neighbours included) ----------------------------------

TRAIN = ["train", "vaegan", "in.mp4", "--size", "64x48", "--batch", "2", "-q"]


def _trained(folder: Path, name: str = "run", steps: int = 1) -> Path:
    _clip(folder)
    _chain(folder, *TRAIN, "--out", name, "--max-steps", str(steps))
    return folder / name


def _hidden_parts_only(run: Path) -> None:
    run.mkdir()
    (run / "thesis.partial-draft.tex").write_text("the user's draft")
    (run / f".checkpoint.partial-{_host()}-999999-abcdef").mkdir()
    (run / f".checkpoint.partial-{_host()}-999999-abcdef" / "data.txt").write_text("the user's data")


def _user_marker(run: Path) -> None:
    run.mkdir()
    (run / ".chain-run").write_text("")
    (run / "losses.jsonl").write_text('{"my": 1}\n')
    (run / "samples").mkdir()
    (run / "samples" / "epoch_001.png").write_bytes(b"the user's picture")


for _name, _make in (("hidden-parts-only", _hidden_parts_only), ("a-marker-the-user-made", _user_marker)):
    def _build(folder: Path, make: object = _make) -> list[str]:
        _clip(folder)
        make(folder / "run")
        return [*TRAIN, "--out", "run", "--max-steps", "1"]

    case(f"train-into-{_name}", "error", message=r"--out run holds files that are not a chain training run")(_build)


for _where in ("frames/frames.json", "frames/.frames.json.partial", "samples/epoch_009.png", "checkpoint"):
    def _build(folder: Path, where: str = _where) -> list[str]:
        run = _trained(folder)
        (folder / "precious.txt").write_text("the user's file")
        target = run / where
        if target.is_dir():
            import shutil

            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        target.parent.mkdir(exist_ok=True)
        target.symlink_to(folder / "precious.txt")
        return [*TRAIN, "--out", "run", "--max-steps", "2", "--resume"]

    case(f"resume-a-run-with-a-link-at-{_where.replace('/', '-')}", "error",
         message=r"--out run holds files that are not a chain training run", may_change=("run",))(_build)


for _stray in ("notes.txt", "finetuned.safetensors", "sub/"):
    def _build(folder: Path, stray: str = _stray) -> list[str]:
        run = _trained(folder)
        if stray.endswith("/"):
            (run / "checkpoint" / stray).mkdir()
        else:
            (run / "checkpoint" / stray).write_text("the user's")
        return [*TRAIN, "--out", "run", "--max-steps", "2", "--resume"]

    case(f"resume-with-a-user-file-in-the-checkpoint-{_stray.strip('/')}", "error",
         message=r"run/checkpoint holds files a checkpoint does not", may_change=("run",))(_build)


@case("resume-keeps-a-hard-linked-backup-of-the-loss-log", "output", outputs=("run/checkpoint/config.json",),
      may_change=("run",))
def _(folder: Path) -> list[str]:
    run = _trained(folder)
    (folder / "snap").mkdir()
    os.link(run / "losses.jsonl", folder / "snap" / "losses.jsonl")  # `cp -al run snap`, as a backup
    return [*TRAIN, "--out", "run", "--max-steps", "2", "--resume"]


@case("resume-with-a-loss-log-line-chain-did-not-write", "output", outputs=("run/checkpoint/config.json",),
      may_change=("run",))
def _(folder: Path) -> list[str]:
    run = _trained(folder)
    with (run / "losses.jsonl").open("a") as log:
        log.write('{"note": "mine"}\n[1, 2]\n{"step": "three"}\n')
    return [*TRAIN, "--out", "run", "--max-steps", "2", "--resume"]


# --- Paths that only exist once chain has made them, and paths through files -------------------------------------

for _args, _message in (
        (["--out", "t5/new/.."], r"t5/new/\.\. ends in \.\."),
        (["--out", "t5/new/../run"], r"goes up \(\.\.\) from t5/new, which is not a folder"),
        (["--out", "in.mp4/run"], r"is inside in\.mp4, which is a file"),
        (["--out", "t5/.."], r"t5/\.\. is the current folder or one above it"),
):
    def _build(folder: Path, args: list = _args) -> list[str]:
        _clip(folder)
        (folder / "t5").mkdir()
        (folder / "t5" / "losses.jsonl").write_text('{"user": 1}\n')
        return [*TRAIN, *args, "--max-steps", "1"]

    case(f"train-out-{'-'.join(_args).replace('/', '_')}", "error", message=_message)(_build)

for _option, _path, _message in (
        ("--masks", "w/q/../m.mp4", r"goes up \(\.\.\) from w/q, which is not a folder"),
        ("--save-labels", "w/q/..", r"ends in \.\."),
        ("--summary", "in.mp4/run.json", r"is inside in\.mp4, which is a file"),
        ("--compare", "note.txt/c.png", r"is inside note\.txt, which is a file"),
):
    def _build(folder: Path, option: str = _option, path: str = _path) -> list[str]:
        (folder / "w").mkdir()
        (folder / "note.txt").write_text("the user's note")
        return [*RUN, _clip(folder), option, path, "--max-frames", "1"]

    case(f"run-output-path-{_option.strip('-')}-{_path.replace('/', '_')}", "error", message=_message,
         check=lambda folder: (folder / "w" / "q").exists() and (_ for _ in ()).throw(AssertionError("w/q made")))(_build)


for _left in ("notes.txt", "model.safetensors", "sub/"):
    def _build(folder: Path, left: str = _left) -> list[str]:
        run = _trained(folder)
        (run / "checkpoint" / "config.json").unlink()  # no run to resume: a new run would save here
        if left.endswith("/"):
            (run / "checkpoint" / left).mkdir()
        else:
            (run / "checkpoint" / left).write_text("the user's")
        return [*TRAIN, "--out", "run", "--max-steps", "1"]

    case(f"new-run-over-a-checkpoint-folder-holding-{_left.strip('/')}", "error",
         message=r"checkpoint folder run/checkpoint holds files chain did not write", may_change=("run",),
         check=lambda folder: (folder / "run" / "losses.jsonl").read_text().count("step") == 1 or
         (_ for _ in ()).throw(AssertionError("the loss log was rewritten")))(_build)


@case("saved-labels-that-claim-to-be-huge", "error", message=r"000000.png says it is .*decompression bombs")
def _(folder: Path) -> list[str]:
    from PIL import Image

    from tests.bad_inputs.images import claim_size

    (folder / "labels").mkdir()
    (folder / "labels" / "labels.json").write_text('{"label_space": "voc"}')
    Image.new("L", (8, 8)).save(folder / "labels" / "000000.png")
    claim_size(folder / "labels" / "000000.png", 20000, 10000)
    return ["run", _clip(folder), "o.png", "--seg", "labels:labels", "--synth", "colorize", "-q", "--max-frames", "1"]
