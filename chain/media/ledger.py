"""chain's record of what it wrote: the proof that an existing output is chain's to replace.

When chain publishes an output it first records, in its state folder, exactly what it is putting
at that path:

- a file: its size and SHA-256 digest;
- a folder: every entry under it (relative name, file or folder, and a file's size and SHA-256).

An existing path counts as chain's own only while what is there matches its record exactly. So
anything else at an output path is refused: a file chain never wrote, a copy or edit put in the
place of chain's output (a stream copy that keeps the container's "written by chain" comment, a
frame retouched in place), an entry added to, removed from or renamed in one of chain's folders,
a folder where chain wrote a file (``000099.png/``), or an output moved here from elsewhere.

Records live in ``$CHAIN_STATE/written`` (default ``$XDG_STATE_HOME/chain``, else
``~/.local/state/chain``), one small JSON file per output path. Losing them costs nothing but
convenience: chain then refuses to replace its old outputs, and says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import warnings
from pathlib import Path
from typing import Any

from chain.errors import ChainError, ChainWarning, describe_os_error

_CHUNK = 1 << 20
_unwritable: set[Path] = set()  # state folders already warned about, once a process


def state_dir() -> Path:
    """chain's state folder: ``$CHAIN_STATE``, else ``$XDG_STATE_HOME/chain``, else ``~/.local/state/chain``."""
    configured = os.environ.get("CHAIN_STATE")
    if configured:
        path = Path(os.path.expanduser(configured))  # leaves an unknown ~user as it is
        if not path.is_absolute():
            raise ChainError(f"CHAIN_STATE={configured} is not an absolute path (a ~user that does not exist?); "
                             "set it to a folder such as ~/.local/state/chain")
        return path
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "chain"
    home = os.path.expanduser("~")
    if not Path(home).is_absolute():
        raise ChainError("chain cannot find your home folder for its state; set CHAIN_STATE to a folder")
    return Path(home) / ".local" / "state" / "chain"


def absolute(path: Path) -> Path:
    """``path`` made absolute through its real parent folder; the last part is kept as named (never followed)."""
    return Path(path).absolute().parent.resolve() / Path(path).name


def _record_file(target: Path) -> Path:
    key = hashlib.sha256(os.fsencode(absolute(target))).hexdigest()[:40]
    return state_dir() / "written" / f"{key}.json"


# Digests computed in this process, by (device, inode, size, mtime, ctime): a run checks each output before
# any work and again when it publishes, and a film's video is gigabytes.
_digests: dict[tuple[int, ...], str] = {}


def _file_digest(path: Path) -> str:
    info = path.stat()
    key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)  # ctime: no edit keeps it
    if key not in _digests:
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
        if len(_digests) > 256:
            _digests.clear()
        _digests[key] = digest.hexdigest()
    return _digests[key]


def describe(path: Path, kind: str, *, digests: bool = True) -> dict[str, Any] | None:
    """What is at ``path`` now, in a record's terms (``kind``: ``"file"`` or ``"folder"``); None if
    it is not that kind of thing (a link, a folder where a file is recorded, missing). Only regular
    files are ever opened (a named pipe would block); ``digests=False`` skips reading them at all."""
    try:
        if path.is_symlink():
            return None
        if kind == "file":
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):
                return None
            return {"size": info.st_size, "sha256": _file_digest(path) if digests else None}
        if not path.is_dir():
            return None
        entries: dict[str, list[Any]] = {}
        for folder, dirs, files in os.walk(path):
            for name in dirs + files:
                entry = Path(folder) / name
                relative = entry.relative_to(path).as_posix()
                info = entry.lstat()
                if stat.S_ISLNK(info.st_mode):
                    entries[relative] = ["link", os.readlink(entry)]
                elif stat.S_ISDIR(info.st_mode):
                    entries[relative] = ["folder"]
                elif stat.S_ISREG(info.st_mode):
                    entries[relative] = ["file", info.st_size, _file_digest(entry) if digests else None]
                else:  # a pipe, socket or device: never chain's, never opened
                    entries[relative] = ["special", stat.S_IFMT(info.st_mode)]
        return {"entries": dict(sorted(entries.items()))}
    except OSError:
        return None


def read(target: Path) -> dict[str, Any] | None:
    """The record for ``target``, or None when chain has none (or cannot read it)."""
    try:
        record = json.loads(_record_file(target).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("path") != os.fsdecode(absolute(target)):
        return None
    return record


def proves(target: Path, kind: str) -> bool:
    """Whether what is at ``target`` is exactly what chain recorded writing there."""
    record = read(target)
    if record is None or record.get("kind") != kind:
        return False
    # First what costs no reading (names, kinds, sizes): a film's video, or a big file of the user's
    # dropped into one of chain's folders, is refused without hashing it.
    if describe(target, kind, digests=False) != _without_digests(record.get("what")):
        return False
    return describe(target, kind) == record.get("what")


def _without_digests(what: Any) -> Any:
    """A record's description as `describe(digests=False)` gives it."""
    if not isinstance(what, dict):
        return what
    if "sha256" in what:
        return {**what, "sha256": None}
    entries = what.get("entries")
    if isinstance(entries, dict):
        return {"entries": {name: entry[:2] + [None] if isinstance(entry, list) and entry[:1] == ["file"] else entry
                            for name, entry in entries.items()}}
    return what


def record(target: Path, written: Path, kind: str) -> dict[str, Any] | None:
    """Record that ``written`` (a finished staging file or folder) is about to become ``target``.

    Returns the record it replaces (for `restore`). A state folder chain cannot write does not stop
    the run: the output is still published, and a later run refuses to replace it.
    """
    previous = read(target)
    what = describe(written, kind)
    if what is None:
        raise ChainError(f"cannot record {target}: its finished part {written} is gone")
    _write(target, {"path": os.fsdecode(absolute(target)), "kind": kind, "what": what})
    return previous


def restore(target: Path, previous: dict[str, Any] | None) -> None:
    """Put back the record `record` replaced (an output that was not published after all)."""
    if previous is None:
        try:
            _record_file(target).unlink(missing_ok=True)
        except OSError:
            pass
    else:
        _write(target, previous)


def _write(target: Path, document: dict[str, Any]) -> None:
    file = _record_file(target)
    temporary = file.with_name(f".{file.name}.{os.getpid()}-{secrets.token_hex(3)}")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(document, separators=(",", ":")))
        os.replace(temporary, file)
    except OSError as error:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass
        if state_dir() not in _unwritable:
            _unwritable.add(state_dir())
            warnings.warn(ChainWarning(
                f"chain cannot keep its record of the outputs it writes in {state_dir()} ({describe_os_error(error)}); "
                "they are written, but a later run will refuse to replace them (set CHAIN_STATE to a folder)"),
                stacklevel=2)
