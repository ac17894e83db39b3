"""What a run writes (`Outputs`) and the checks on those paths made before any work."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from chain.errors import ChainError
from chain.media import ledger
from chain.media.ledger import absolute
from chain.media.sink import output_kind
from chain.media.targets import check_target
from chain.options import option


@dataclass(frozen=True)
class Outputs:
    """Where a run writes. Any subset may be given; at least one is needed."""

    # The command line's options (`chain.options`); text there, as a trailing slash names a folder.
    video: Path | None = None      # the synthesized video (or PNG folder, or image): `chain run`'s argument
    masks: Path | None = option("Write colourised labels with class names and a legend.", str | None, default=None, page=False)
    overlay: Path | None = option("Write labels blended over the input.", str | None, default=None, page=False)
    compare: Path | None = option("Write input | labels | synthesized side by side.", str | None, default=None, page=False)
    #: Lossless label PNGs by frame index.
    labels: Path | None = option("Write lossless label PNGs (000000.png…) to a folder.", Path | None, default=None,
                                 keyword="save_labels", page=False)
    #: JSON: per-frame class shares, timings, totals.
    summary: Path | None = option("Write a JSON summary: per-frame classes, timings.", Path | None, default=None, page=False)
    #: Outputs named with a trailing slash (``out.v2/``): folders of PNG frames, whatever their suffix.
    folders: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, **paths: str | Path | None) -> Outputs:
        """Outputs from paths given as text or `Path` (None for those not written); text that ends
        in a slash names a folder (`Path` drops the slash, so it is read here)."""
        folders = frozenset(name for name, value in paths.items()
                            if isinstance(value, str) and value.endswith(("/", os.sep)))
        return cls(**{name: Path(value) if value is not None else None for name, value in paths.items()},
                   folders=folders)

    def given(self) -> dict[str, Path]:
        return {f.name: Path(getattr(self, f.name)) for f in fields(self)
                if f.name != "folders" and getattr(self, f.name) is not None}

    def kind(self, name: str) -> str:
        """What output ``name`` is: ``"video"``, ``"image"``, ``"folder"`` or ``"summary"``."""
        if name == "summary":
            return "summary"
        if name == "labels" or name in self.folders:  # --save-labels always names a folder
            return "folder"
        return output_kind(Path(getattr(self, name)))


def check_output_paths(source: Path, outputs: Outputs) -> None:
    """Refuse, before any work, outputs that would overwrite the input, hold it, coincide with or
    hold one another, or replace anything chain cannot prove it wrote (`chain.media.targets`).

    Checking every output against every other here is what lets a run publish all of them or none:
    no output can be refused at the end because another one is in its way.
    """
    ledger.state_dir()  # a bad $CHAIN_STATE is refused now, not when the outputs are published
    given = outputs.given()
    resolved = {name: absolute(path) for name, path in given.items()}
    real_source, source = Path(source).resolve(), absolute(source)
    for name, path in resolved.items():
        if path in (source, real_source):
            raise ChainError(f"the {option_name(name)} {given[name]} would overwrite the input")
    for name, path in given.items():
        check_target(path, outputs.kind(name), option=option_name(name))
    for name, path in resolved.items():
        if path in source.parents or path in real_source.parents:
            raise ChainError(f"the {option_name(name)} {given[name]} holds the input {source}; give a new folder")
    for (name, path), (other, other_path) in itertools.permutations(resolved.items(), 2):
        if path == other_path:
            raise ChainError(f"the {option_name(name)} and the {option_name(other)} are both {given[name]}; "
                             "give each output its own path")
        if other_path in path.parents:
            raise ChainError(f"the {option_name(name)} {given[name]} is inside the {option_name(other)} "
                             f"{given[other]}, which chain replaces whole; give outputs that do not hold one another")


def check_image_outputs(outputs: Outputs, frame_count: int | None) -> None:
    """Refuse an image file as an output (``out.png``) when more than one frame will be made:
    known from the input's header, so it is said before anything is decoded or loaded."""
    if (frame_count or 0) <= 1:
        return
    for name in ("video", "masks", "overlay", "compare"):
        if getattr(outputs, name) is not None and outputs.kind(name) == "image":
            raise ChainError(f"{getattr(outputs, name)} is an image file but {frame_count} frames will be made; "
                             "write to a video file or a folder, or pass --max-frames 1")


_OPTION_NAMES = {"video": "output", "masks": "--masks output", "overlay": "--overlay output",
                 "compare": "--compare output", "labels": "--save-labels folder", "summary": "--summary file"}


def option_name(output: str) -> str:
    """How the user named an output (``"--masks output"``), for messages."""
    return _OPTION_NAMES[output]
