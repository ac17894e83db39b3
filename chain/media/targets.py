"""Which existing paths chain may replace, and where outputs are staged until they are complete.

The rules (the README's "Your files" section says the same):

- An output path that does not exist is created.
- A file or folder already at an output path is replaced only if chain wrote it: videos carry
  ``written by chain`` in their container's comment, PNG and JPEG images in a text chunk or
  comment, summaries in their first key, PNG folders a ``.chain-output`` marker and nothing but
  the frames and side files chain writes, checkpoints nothing but ``config.json`` and
  ``*.safetensors``.
- An empty folder given where a folder is written is filled.
- Anything else, and the current folder or one above it, is refused before any work.

Outputs are written under ``.NAME.partial-HOST-PID-RANDOM`` beside the target and moved into
place when complete. A run killed with SIGKILL cannot remove its staging file; the next run to
the same target removes those of processes that no longer run on this host.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
from pathlib import Path

from chain.errors import ChainError

OWNER_TAG = "written by chain"
FOLDER_MARKER = ".chain-output"
SUMMARY_PREFIX = '{"written_by": "chain'
# What chain writes into a folder output: frames by index, the label space file, the marker.
_FOLDER_ENTRY = re.compile(r"^(\d{6,}\.png|labels\.json|\.chain-output)$")
_CHECKPOINT_ENTRY = re.compile(r"^(config\.json|[\w.-]+\.safetensors)$")
_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40] or "host"


def staging_path(target: Path) -> Path:
    """A fresh hidden name beside ``target`` for its partial output (the suffix is kept for FFmpeg)."""
    tag = f"{_HOST}-{os.getpid()}-{secrets.token_hex(3)}"
    return target.with_name(f".{target.name}.partial-{tag}{target.suffix}")


def _staging_owner(name: str, target: Path) -> tuple[str, int] | None:
    """``(host, pid)`` of a staging entry for ``target``, or None if ``name`` is not one."""
    prefix = f".{target.name}.partial-"
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix):]
    if target.suffix and rest.endswith(target.suffix):
        rest = rest[:-len(target.suffix)]
    if rest.isdigit():  # the older ``.NAME.partial-PID`` form, always written on this host
        return _HOST, int(rest)
    parts = rest.rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not re.fullmatch(r"[0-9a-f]+", parts[2]):
        return None
    return parts[0], int(parts[1])


def discard(path: Path) -> None:
    """Remove a staging file or folder (never following a link)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def remove_stale_staging(target: Path) -> list[Path]:
    """Remove staging entries for ``target`` left by processes of this host that no longer run."""
    removed = []
    parent = target.parent if str(target.parent) else Path(".")
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        owner = _staging_owner(entry.name, target)
        if owner is None or owner[0] != _HOST or owner[1] == os.getpid() or _alive(owner[1]):
            continue
        discard(entry)
        removed.append(entry)
    return removed


def written_by_chain(path: Path, kind: str) -> bool:
    """Whether the existing ``path`` is an output that chain wrote (so it may be replaced)."""
    try:
        if kind == "folder":
            names = [entry.name for entry in path.iterdir()]
            return FOLDER_MARKER in names and all(_FOLDER_ENTRY.match(name) for name in names)
        if kind == "checkpoint":
            names = [entry.name for entry in path.iterdir()]
            if "config.json" not in names or not all(_CHECKPOINT_ENTRY.match(name) for name in names):
                return False
            return "model" in json.loads((path / "config.json").read_text())
        if kind == "summary":
            with path.open("rb") as stream:
                return stream.read(len(SUMMARY_PREFIX)) == SUMMARY_PREFIX.encode()
        if kind == "video":
            import av  # FFmpeg is loaded on first use, so importing chain stays light

            with av.open(str(path)) as container:
                metadata = {key.lower(): value for key, value in container.metadata.items()}
            return metadata.get("comment", "").startswith(OWNER_TAG)
        if kind == "image":
            from PIL import Image

            with Image.open(path) as image:
                comment = image.info.get("comment", b"")
                comment = comment.decode(errors="replace") if isinstance(comment, bytes) else comment
                return str(image.info.get("Software", "")).startswith(OWNER_TAG) or comment.startswith(OWNER_TAG)
    except Exception:  # an unreadable file is not one chain can vouch for
        return False
    raise ValueError(f"unknown output kind {kind!r}")


def _describe(kind: str) -> str:
    return {"folder": "a folder of PNG frames", "checkpoint": "a checkpoint folder", "summary": "a JSON summary",
            "video": "a video file", "image": "an image file"}[kind]


def check_target(target: Path, kind: str, *, option: str = "output") -> None:
    """Refuse, in one line, an output path that chain may not write (see the module's rules)."""
    resolved = target.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise ChainError(f"the {option} {target} is the current folder or one above it; chain never replaces "
                         "those: give the name of a new folder")
    if target.is_symlink():
        raise ChainError(f"the {option} {target} is a symbolic link; chain does not write through links: "
                         "give a plain path")
    if not target.exists():
        return
    folder_kind = kind in ("folder", "checkpoint")
    if folder_kind and not target.is_dir():
        raise ChainError(f"the {option} {target} is a file, but {_describe(kind)} is written there: "
                         "give the name of a new folder")
    if not folder_kind and target.is_dir():
        raise ChainError(f"the {option} {target} is a folder, but {_describe(kind)} is written there: "
                         "give a file name")
    if folder_kind and not any(target.iterdir()):
        return
    if not written_by_chain(target, kind):
        what = "holds files chain did not write" if folder_kind else "exists and was not written by chain"
        raise ChainError(f"the {option} {target} {what}; chain replaces only its own outputs, to keep yours: "
                         "remove it yourself or choose another name")


def replace_with(staging: Path, target: Path, kind: str) -> None:
    """Move a finished ``staging`` output to ``target``, checking once more that it may go there."""
    check_target(target, kind)
    if target.is_dir():
        # An empty folder, or one chain wrote: swap it out, then delete what chain wrote.
        old = staging_path(target)  # named like staging, so a kill here is cleaned up by the next run
        target.rename(old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)
