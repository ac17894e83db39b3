"""The cheap checks of a run, made before torch and the stages are imported: a typo in a path,
a size or a remap rule is reported in a fraction of a second, not after loading networks.

Only `chain.config`, `chain.media` and `chain.labels` are needed here (none imports torch).
"""

from __future__ import annotations

from pathlib import Path

from chain.config import DEFAULT_SEGMENTER, RunConfig, parse_options
from chain.errors import ChainError
from chain.labels import parse_remap
from chain.media import SourceInfo, check_preset, open_source
from chain.media.outputs import check_image_outputs, check_output_paths

#: MPEG-4 Part 2 (the AVI output's codec) codes at most 8191 pixels a side; x264 takes 16384.
MAX_AVI_SIDE = 8191

__all__ = ["DEFAULT_SEGMENTER", "check_run", "parse_options"]  # the first and last live in chain.config


def check_run(config: RunConfig) -> None:
    """The input opens (with its trim, size and frame rate), the remap rules parse, the preset
    exists, no output would overwrite the input, another output or a file chain did not write, an
    image output gets one frame, and ``--seg labels:DIR`` holds a map for every frame: all known
    from headers and folders, before a frame is decoded."""
    with open_source(config.source, trim=config.trim, size=config.size, fps=config.fps) as source:
        info = source.info
    width, height = info.width, info.height
    parse_remap(config.chain.remap)
    check_preset(config.preset)
    check_output_paths(config.source, config.outputs)
    check_image_outputs(config.outputs, info.frame_count)
    check_saved_labels(config.chain.seg, info)
    for name, path in config.outputs.given().items():
        if config.outputs.kind(name) == "video" and path.suffix.lower() == ".avi" and max(width, height) > MAX_AVI_SIDE:
            raise ChainError(f"{path}: AVI's MPEG-4 encoder takes at most {MAX_AVI_SIDE} pixels a side, and the "
                             f"frames are {width}x{height}; write .mp4 or .mkv, or give a smaller --size")


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
