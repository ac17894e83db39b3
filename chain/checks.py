"""The cheap checks of a run, made before torch and the stages are imported: a typo in a path,
a size or an output is reported in a fraction of a second, not after loading networks.

`check_run` is the one place a run's input and outputs are checked; what it passed travels on as a
`CheckedRun`, which `chain.api.run` and the `Chain` take without checking again. (The options' own
syntax, remap rules and ``--smooth`` included, is parsed once as the `RunConfig` is built.) Only
`chain.config` and `chain.media` are needed here (neither imports torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chain.config import RunConfig
from chain.errors import ChainError
from chain.media import SourceInfo, check_preset, open_source
from chain.media.outputs import check_image_outputs, check_output_paths

#: MPEG-4 Part 2 (the AVI output's codec) codes at most 8191 pixels a side; x264 takes 16384.
MAX_AVI_SIDE = 8191



@dataclass(frozen=True)
class CheckedRun:
    """A run whose input and outputs `check_run` has passed, with what it read of the input."""

    config: RunConfig
    #: The input's header, at the run's trim, size and frame rate.
    info: SourceInfo


def check_run(config: RunConfig) -> CheckedRun:
    """The input opens (with its trim, size and frame rate), the preset exists, no output would
    overwrite the input, another output or a file chain did not write, an image output gets one
    frame, and ``--seg labels:DIR`` holds a map for every frame: all known from headers and
    folders, before a frame is decoded."""
    with open_source(config.source, trim=config.trim, size=config.working_size, fps=config.fps) as source:
        info = source.info
    width, height = info.width, info.height
    check_preset(config.preset)
    check_output_paths(config.source, config.outputs)
    check_image_outputs(config.outputs, info.frame_count)
    check_saved_labels(config.chain.seg, info)
    for name, path in config.outputs.given().items():
        if config.outputs.kind(name) == "video" and path.suffix.lower() == ".avi" and max(width, height) > MAX_AVI_SIDE:
            raise ChainError(f"{path}: AVI's MPEG-4 encoder takes at most {MAX_AVI_SIDE} pixels a side, and the "
                             f"frames are {width}x{height}; write .mp4 or .mkv, or give a smaller --size")
    return CheckedRun(config, info)


def check_saved_labels(seg: str | None, info: SourceInfo) -> None:
    """``--seg labels:DIR`` reads map N for frame N: refuse a folder that runs out before the input does."""
    name, _, folder_text = (seg or "").partition(":")
    if name.strip().lower() != "labels" or not folder_text.strip() or info.frame_count is None:
        return
    folder = Path(folder_text.strip())
    if not folder.is_dir():
        return  # the stage names a missing folder in its own words
    names = {entry.name for entry in folder.iterdir()}
    maps = next((index for index in range(info.frame_count) if f"{index:06d}.png" not in names), info.frame_count)
    # A count estimated from the duration (no frame count in the header) may be one over.
    needed = info.frame_count if info.exact_count else info.frame_count - 1
    if maps >= needed:
        return
    if maps == 0:
        raise ChainError(f"--seg labels:{folder} holds no map for frame 0 (000000.png); point it at a folder "
                         "written by --save-labels")
    raise ChainError(f"--seg labels:{folder} holds maps for frames 0-{maps - 1} only ({maps:06d}.png is missing) "
                     f"but {info.path} gives {info.frame_count} frames; pass --max-frames {maps}, or the --start, "
                     "--duration and --fps the maps were saved with")
