"""Join shards' parts into the run's outputs: video remuxed (no re-encode) with the source's audio
muxed once over the whole, PNG folders renumbered, summaries merged across shard boundaries.

Everything is written under the outputs' staging names (`chain.media.targets`); publishing is
the caller's, once every output is joined.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from chain.media.audio import AudioPassthrough
from chain.media.sink import _VIDEO_FORMATS
from chain.media.targets import FOLDER_MARKER, OWNER_TAG
from chain.media.video import open_container
from chain.version import __version__

_FRAME_FILE = re.compile(r"^(\d{6,})\.png$")


def join_videos(parts: list[Path], staging: Path, target: Path, audio: AudioPassthrough | None) -> bool | None:
    """Remux the video packets of ``parts`` (which carry the run's timestamps) into ``staging``.

    The audio, if any, is interleaved as the video advances, as a one-machine run does.
    Returns whether the audio was copied (None without audio).
    """
    import av  # FFmpeg is loaded on first use, so importing chain stays light

    container_format = _VIDEO_FORMATS[target.suffix.lower()][0]
    with av.open(str(staging), "w", format=container_format) as output:
        output.metadata["comment"] = f"{OWNER_TAG} {__version__}"
        out_stream = None
        heard = 0.0
        try:
            for part in parts:
                with open_container(part) as source:
                    in_stream = source.streams.video[0]
                    if out_stream is None:
                        out_stream = output.add_stream_from_template(in_stream)
                        if audio is not None:
                            audio.attach(output)
                    for packet in source.demux(in_stream):
                        if packet.size == 0 or packet.pts is None:
                            continue  # the demuxer's end-of-stream marker
                        heard = max(heard, float(packet.pts * packet.time_base))
                        packet.stream = out_stream
                        output.mux(packet)
                        if audio is not None:
                            audio.pump(output, heard)
            if audio is not None:
                audio.finish(output)
        finally:
            if audio is not None:
                audio.close()
    return audio.copied if audio is not None else None


def join_folders(parts: list[tuple[Path, int]], staging: Path) -> None:
    """Link the frames of each ``(part folder, its first frame's run index)`` into ``staging``,
    renumbered to the run's frame numbers; side files (marker, ``labels.json``) come from the first.

    Linked, not moved: the parts stay whole until the outputs are published, so a run stopped while
    publishing can be joined again (``--resume``)."""
    staging.mkdir()
    for part, first in parts:
        for entry in sorted(part.iterdir()):
            match = _FRAME_FILE.match(entry.name)
            if match:
                link_or_copy(entry, staging / f"{first + int(match.group(1)):06d}.png")
            elif not (staging / entry.name).exists():
                link_or_copy(entry, staging / entry.name)
    if not (staging / FOLDER_MARKER).exists():  # cannot happen with chain's parts; kept as a guard
        raise RuntimeError(f"joined parts in {staging} lack chain's folder marker")


def link_or_copy(source: Path, destination: Path) -> None:
    """A hard link (no data copied), or a copy where the file system has none."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def part_records(summary_part: Path) -> list[dict]:
    """The per-frame records of a part's summary file."""
    return json.loads(summary_part.read_text())["per_frame"]


def write_records(stream, records: list[dict], *, first: bool) -> None:  # noqa: ANN001 (a text stream)
    """Append per-frame records to a summary file's stream, in `chain.engine.summary`'s layout."""
    for i, record in enumerate(records):
        stream.write(("" if first and i == 0 else ",\n") + json.dumps(record))
