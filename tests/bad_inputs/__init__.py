"""A corpus of bad inputs, faults and hostile files, generated on the fly (no binaries in the repo).

Each `Case` builds its files in an empty folder and returns the ``chain`` arguments to run there.
`tests/test_bad_inputs.py` runs every case through the CLI and checks that it ends in one of
three ways, and never deletes or changes a file that chain did not create:

- ``"output"``: exit 0 and a correct output;
- ``"error"``: a one-line message and a non-zero exit (never 1, which means an internal error);
- ``"warning"``: exit 0, a one-line warning and a correct partial output.

Cases live in the modules below, one per kind of trouble; each registers itself with `case`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

Outcome = str  # "output", "error" or "warning"


@dataclass(frozen=True)
class Case:
    """One hostile input.

    Args:
        name: a short id (the pytest parameter id).
        build: makes the case's files in the folder it is given; returns the ``chain`` arguments
            (relative paths are relative to that folder, which is the working directory).
        expect: ``"output"``, ``"error"`` or ``"warning"``.
        message: a regular expression the one-line message (error or warning) must match.
        exit_code: the exact exit code expected, when it matters.
        outputs: paths (relative) that must exist after an ``"output"`` or ``"warning"`` case.
        may_change: pre-existing paths that chain itself created in ``build`` and may replace.
        check: more assertions on the folder after the run.
    """

    name: str
    build: Callable[[Path], list[str]]
    expect: Outcome
    message: str | None = None
    exit_code: int | None = None
    outputs: tuple[str, ...] = ()
    may_change: tuple[str, ...] = ()
    check: Callable[[Path], None] | None = None
    marks: tuple = field(default=())

    def matches(self, line: str) -> bool:
        return self.message is None or re.search(self.message, line) is not None


CASES: list[Case] = []


def case(name: str, expect: Outcome, **kwargs: object) -> Callable[[Callable[[Path], list[str]]], Case]:
    """Register the decorated builder as a `Case`."""

    def register(build: Callable[[Path], list[str]]) -> Case:
        item = Case(name, build, expect, **kwargs)
        CASES.append(item)
        return item

    return register


def make_video(path: Path, *, frames: int = 12, size: tuple[int, int] = (64, 48), fps: int | Fraction = 10,
               codec: str = "libx264", times: list[float] | None = None) -> Path:
    """A small clip of moving colour bars (so frames differ), written with PyAV.

    ``times`` gives each frame's presentation time in seconds (variable frame rate).
    """
    import av

    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for i in range(frames):
            x = np.arange(width)[None, :, None]
            y = np.arange(height)[:, None, None]
            rgb = np.concatenate([(x * 4 + i * 8) % 256 + 0 * y, (y * 5) % 256 + 0 * x,
                                  np.full((height, width, 1), (i * 20) % 256)], axis=2).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if times is not None:
                frame.pts = round(times[i] * 1000)
                frame.time_base = Fraction(1, 1000)
            else:
                frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


# Register the cases of each kind (imported for their side effect).
from tests.bad_inputs import images as _images  # noqa: E402,F401
from tests.bad_inputs import media as _media  # noqa: E402,F401
from tests.bad_inputs import options as _options  # noqa: E402,F401
from tests.bad_inputs import outputs as _outputs  # noqa: E402,F401
from tests.bad_inputs import stages as _stages  # noqa: E402,F401
from tests.bad_inputs import weights as _weights  # noqa: E402,F401
