"""Outputs that must not cost the user anything: existing folders, parents, files next to the output."""

from __future__ import annotations

from pathlib import Path

from tests.bad_inputs import case, make_video


def _clip(folder: Path) -> str:
    make_video(folder / "in.mp4")
    return "in.mp4"


RUN = ["run", "--seg", "palette:voc", "--synth", "colorize", "-q"]


@case("output-folder-with-user-files", "error", message=r"keep")
def _(folder: Path) -> list[str]:
    (folder / "holiday").mkdir()
    (folder / "holiday" / "beach.jpg").write_bytes(b"not chain's")
    return [*RUN, _clip(folder), "holiday"]
