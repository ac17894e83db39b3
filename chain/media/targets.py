"""Which existing paths chain may replace, where outputs are staged until they are complete, and
how a run's outputs are moved into place together.

The rules (the README's "Your files" section says the same):

- An output path that does not exist is created. An empty folder given where a folder is
  written is filled.
- Anything already there is replaced only if it is exactly what chain recorded writing there
  (`chain.media.ledger`: a file's size and digest, a folder's every entry). Anything else, and
  the current folder or one above it, is refused before any work, in one line naming the rule.
- A run's outputs are published together (`publish_all`): each target is checked again, then all
  are moved into place, or, if one cannot be, none is.

Outputs are written under ``.NAME.partial-HOST-PID-RANDOM`` beside the target and moved into
place when complete. A run killed with SIGKILL cannot remove its staging file; the next run to
the same target removes those of processes that no longer run on this host.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import shutil
import socket
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from chain.errors import ChainError
from chain.media import ledger

OWNER_TAG = "written by chain"  # in videos' and images' metadata: for people; the proof is the ledger
FOLDER_MARKER = ".chain-output"
SUMMARY_PREFIX = '{"written_by": "chain'
_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40] or "host"
_NAME_MAX = 255  # bytes in one path component on the file systems chain meets (ext4, APFS, NTFS)
_TAG_MAX = len(f"{_HOST}-{2**22}-{'0' * 14}")  # host, pid (Linux's pid_max is at most 2**22), random and seal
_STAGING = re.compile(r"^(\..*\.partial-)([A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*)-(\d+)-([0-9a-f]{6})([0-9a-f]{8})(.*)$")
_keys: dict[str, bytes] = {}


def _key() -> bytes:
    """chain's secret for sealing the names it makes (kept in its state folder, made on first use;
    for this process alone where that folder cannot be written)."""
    path = ledger.state_dir() / "staging.key"
    if str(path) not in _keys:
        try:
            key = path.read_bytes()
        except OSError:
            key = b""
        if len(key) != 32:
            key = secrets.token_bytes(32)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "wb") as stream:
                    stream.write(key)
            except OSError:
                try:  # another chain made it meanwhile: use theirs
                    theirs = path.read_bytes()
                    key = theirs if len(theirs) == 32 else key
                except OSError:  # no state folder to keep it in: this process's own
                    pass
        _keys[str(path)] = key
    return _keys[str(path)]


def seal(text: str) -> str:
    """8 hex digits that only chain (with its key) makes for ``text``: what proves a name or marker chain's."""
    return hmac.new(_key(), text.encode(), hashlib.sha256).hexdigest()[:8]


def _staging_prefix(target: Path) -> str:
    """``.NAME.partial-``, with NAME shortened (and a digest of it added) when the staging name would
    be too long for the file system: a valid output name must never be refused for its hidden part."""
    name, suffix = target.name, target.suffix
    budget = _NAME_MAX - len(".") - len(".partial-") - _TAG_MAX - len(os.fsencode(suffix))
    if len(os.fsencode(name)) <= budget:
        return f".{name}.partial-"
    short = os.fsencode(name)[:budget - 9].decode(errors="ignore")
    return f".{short}~{hashlib.sha256(os.fsencode(name)).hexdigest()[:8]}.partial-"


def staging_path(target: Path, *, pid: int | None = None) -> Path:
    """A fresh hidden name beside ``target`` for its partial output (the suffix is kept for FFmpeg).

    The name is sealed (`seal`): a file of the user's that merely looks like one is never taken
    for a part chain left behind. ``pid`` names another process of this host as its maker (for
    tests of the clean-up of killed runs).
    """
    prefix, pid, random = _staging_prefix(target), pid or os.getpid(), secrets.token_hex(3)
    mark = seal(f"{prefix}|{_HOST}|{pid}|{random}")
    return target.with_name(f"{prefix}{_HOST}-{pid}-{random}{mark}{target.suffix}")


def staging_owner(name: str) -> tuple[str, int] | None:
    """``(host, pid)`` of a name `staging_path` made (for any target), or None if chain did not make it."""
    match = _STAGING.match(name)
    if match is None:
        return None
    prefix, host, pid, random, mark = match.group(1, 2, 3, 4, 5)
    if not hmac.compare_digest(mark, seal(f"{prefix}|{host}|{pid}|{random}")):
        return None
    return host, int(pid)


def _staging_owner(name: str, target: Path) -> tuple[str, int] | None:
    """``(host, pid)`` of a staging entry chain made for ``target``, or None if ``name`` is not one."""
    if not name.startswith(_staging_prefix(target)) or not name.endswith(target.suffix):
        return None
    return staging_owner(name)


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
    except (PermissionError, OverflowError):  # it exists under another user; or no pid at all
        return True
    return True


def stale_staging(target: Path, *, own_except: Collection[Path] | None = None) -> list[Path]:
    """Staging entries for ``target`` left by processes of this host that no longer run. With
    ``own_except``, this process's own entries count too, except those listed (still in use): what
    an earlier, stopped call of the Python API left."""
    parent = target.parent if str(target.parent) else Path(".")
    try:
        entries = list(parent.iterdir())
    except OSError:
        return []
    stale = []
    for entry in entries:
        owner = _staging_owner(entry.name, target)
        if owner is None or owner[0] != _HOST:
            continue
        if owner[1] == os.getpid():
            if own_except is not None and entry not in own_except:
                stale.append(entry)
        elif not _alive(owner[1]):
            stale.append(entry)
    return stale


def remove_stale_staging(target: Path) -> list[Path]:
    """Remove staging entries for ``target`` left by processes of this host that no longer run."""
    removed = stale_staging(target)
    for entry in removed:
        discard(entry)
    return removed


def _ledger_kind(kind: str) -> str:
    return "folder" if kind in ("folder", "checkpoint") else "file"


def written_by_chain(path: Path, kind: str) -> bool:
    """Whether the existing ``path`` is exactly what chain recorded writing there (so it may be replaced)."""
    if kind not in ("folder", "checkpoint", "summary", "video", "image"):
        raise ValueError(f"unknown output kind {kind!r}")
    return ledger.proves(path, _ledger_kind(kind))


def _describe(kind: str) -> str:
    return {"folder": "a folder of PNG frames", "checkpoint": "a checkpoint folder", "summary": "a JSON summary",
            "video": "a video file", "image": "an image file"}[kind]


def check_path(target: Path, *, option: str = "output") -> None:
    """Refuse a path chain could only write somewhere else than it reads: the current folder or one
    above it, a name that is ``.`` or ``..``, a ``..`` after a folder that does not exist (``new/..``
    would only exist once chain had made ``new``), or a path through a file."""
    resolved = target.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise ChainError(f"the {option} {target} is the current folder or one above it; chain never replaces "
                         "those: give the name of a new folder")
    if target.name in ("", ".", ".."):
        raise ChainError(f"the {option} {target} ends in {target.name or '/'}; give the output's own name")
    walked = Path(target.anchor) if target.is_absolute() else Path()
    for part in target.parts[len(walked.parts):]:
        if part == ".." and not walked.is_dir():
            raise ChainError(f"the {option} {target} goes up (..) from {walked}, which is not a folder; "
                             "give the path without it")
        walked = walked / part
    ancestor = target.parent
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if os.path.lexists(ancestor) and not ancestor.is_dir():
        raise ChainError(f"the {option} {target} is inside {ancestor}, which is a file, not a folder; "
                         "give another path")


def check_target(target: Path, kind: str, *, option: str = "output") -> None:
    """Refuse, in one line, an output path that chain may not write (see the module's rules)."""
    check_path(target, option=option)
    if target.is_symlink():
        raise ChainError(f"the {option} {target} is a symbolic link; chain does not write through links: "
                         "give a plain path")
    if not target.exists():
        return
    folder_kind = kind in ("folder", "checkpoint")
    if folder_kind and not target.is_dir():
        raise ChainError(f"the {option} {target} is a file, but {_describe(kind)} is written there: "
                         "give the name of a new folder")
    if not folder_kind and not target.is_file():
        what = "a folder" if target.is_dir() else "not a regular file"
        raise ChainError(f"the {option} {target} is {what}, but {_describe(kind)} is written there: "
                         "give a file name")
    if folder_kind and not any(target.iterdir()):
        return
    if not written_by_chain(target, kind):
        what = ("holds files chain did not write, or changed since chain wrote it" if folder_kind
                else "exists and was not written by chain, or changed since")
        raise ChainError(f"the {option} {target} {what}; chain replaces only what is exactly as it recorded "
                         "writing it, to keep your files: remove it yourself or choose another name")


def adopt(target: Path, kind: str) -> None:
    """Record what is at ``target`` now as chain's own, for an output another rule has already
    proven: a training run's checkpoint inside its run folder (`chain.training.common`), which a
    resumed run replaces even where the folder was copied or moved from elsewhere."""
    ledger.record(target, target, _ledger_kind(kind))


@dataclass(frozen=True)
class Staged:
    """A finished output under its staging name, waiting to be published at ``target``."""

    staging: Path
    target: Path
    kind: str  # "video", "image", "folder", "summary" or "checkpoint"
    option: str = "output"  # how the user named it, for messages (e.g. "--masks output")


def publish_all(outputs: list[Staged], *, record: bool = True) -> None:
    """Move every finished output into place, or none of them.

    Each target is checked again (a file may have appeared there since the run began), chain's
    ledger records what each will hold, the old outputs being replaced are moved aside (a folder's
    entries, so that the folder itself, its permissions and a mount point stay), and the new ones
    moved in; if any step fails, everything done is undone and the error raised. The caller holds
    stop signals for these milliseconds (`chain.signals.deferred_signals`). ``record=False`` skips
    the ledger, for parts written inside chain's own staging folders.
    """
    for item in outputs:
        check_target(item.target, item.kind, option=item.option)
    # What each target held when proven: an empty folder, or what chain's ledger says it wrote.
    proven = {item.target: _proven_content(item) for item in outputs if os.path.lexists(item.target)}
    records: list[tuple[Path, dict | None]] = []
    aside: list[Path] = []
    moves: list[tuple[Path, Path]] = []  # every move made, in order, to undo backwards
    try:
        for item in outputs if record else ():
            records.append((item.target, ledger.record(item.target, item.staging, _ledger_kind(item.kind))))
        for item in outputs:
            if item.target in proven:
                _move_aside(item, proven[item.target], moves, aside)
        for item in outputs:
            if item.target.is_dir():
                _fill(item, moves)
            else:
                _place(item.staging, item.target)
                moves.append((item.target, item.staging))
    except BaseException:
        for moved, back in reversed(moves):
            _undo(shutil.move, moved, back)
        for target, previous in records:
            _undo(ledger.restore, target, previous)
        for folder in aside:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    for moved in aside:
        discard(moved)
    for item in outputs:
        if item.staging.is_dir():
            item.staging.rmdir()


def _move_aside(item: Staged, proven: dict | None, moves: list[tuple[Path, Path]], aside: list[Path]) -> None:
    """Move the old output out of the way (a folder's entries; a file whole) under a sealed hidden
    name, where it must still be what was proven: a file saved into it since (while the outputs'
    digests were taken, say) sends everything back."""
    kind = _ledger_kind(item.kind)
    moved = staging_path(item.target)  # a kill now leaves it for the next run to clean
    aside.append(moved)
    if kind == "folder":
        moved.mkdir()
        for entry in sorted(item.target.iterdir()):
            shutil.move(entry, moved / entry.name)
            moves.append((moved / entry.name, entry))
        changed = any(item.target.iterdir())
    else:
        os.rename(item.target, moved)
        moves.append((moved, item.target))
        changed = False
    if changed or proven is None or ledger.describe(moved, kind) != proven:
        raise _changed_while_publishing(item)


def _fill(item: Staged, moves: list[tuple[Path, Path]]) -> None:
    """Move the staged folder's entries into the (emptied) folder at its target."""
    if any(item.target.iterdir()):
        raise _changed_while_publishing(item)
    for entry in sorted(item.staging.iterdir()):
        shutil.move(entry, item.target / entry.name)  # a rename, or a copy onto another file system
        moves.append((item.target / entry.name, entry))


def _changed_while_publishing(item: Staged) -> ChainError:
    return ChainError(f"the {item.option} {item.target} changed while chain was publishing; "
                      "nothing was published and it is as it was: run again, or choose another name")


def _proven_content(item: Staged) -> dict | None:
    """What `check_target` found at an existing target: its ledger description (None: not proven)."""
    kind = _ledger_kind(item.kind)
    if kind == "folder" and item.target.is_dir() and not any(item.target.iterdir()):
        return {"entries": {}}
    record = ledger.read(item.target)
    return record.get("what") if record is not None and record.get("kind") == kind else None


def _place(staging: Path, target: Path) -> None:
    """Move ``staging`` to ``target``, never over something that appeared there meanwhile."""
    if staging.is_dir():
        os.rename(staging, target)  # fails on a non-empty folder; a file there fails too
        return
    try:
        os.link(staging, target)  # fails if anything is at ``target``
    except FileExistsError:
        raise ChainError(f"{target} appeared while chain was publishing it; nothing was published: "
                         "run again, or choose another name") from None
    except OSError:  # a file system without hard links
        if os.path.lexists(target):
            raise
        os.replace(staging, target)
        return
    staging.unlink()


def _undo(action, *args: object) -> None:  # noqa: ANN001 (a callable)
    try:
        action(*args)
    except OSError:  # the original error is what the user must see
        pass


def replace_with(staging: Path, target: Path, kind: str, *, option: str = "output") -> None:
    """Publish one finished output (`publish_all` of one)."""
    publish_all([Staged(staging, target, kind, option)])
