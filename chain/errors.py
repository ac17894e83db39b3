"""The exceptions the CLI turns into a one-line message and a non-zero exit, and the one-line
description of what the system refused (an `OSError`)."""

from __future__ import annotations

import errno
import os
import re


class ChainError(Exception):
    """A mistake the user can fix: bad input, missing weights, unknown names.

    The message is shown as-is, on one line, so it should say what is wrong and what
    to do about it.
    """

    exit_code: int = 2


class MissingWeightsError(ChainError):
    """Pretrained weights are not on disk and cannot be downloaded."""

    exit_code = 3


class ChainWarning(UserWarning):
    """Something the user should know about a run that still goes ahead (a barely trained
    checkpoint, for instance); the CLI shows each as one ``warning:`` line."""


def first_line(error: BaseException) -> str:
    """An exception's first line (its type when it has no text), for one-line messages."""
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines and lines[0].strip() else type(error).__name__


_OS_REASONS = {
    errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted", errno.ENAMETOOLONG: "the name is too long",
    errno.ENOENT: "no such file or folder", errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder", errno.EMFILE: "too many open files", errno.EIO: "an input/output error",
}


def _user_path(name: str | os.PathLike | None) -> str | None:
    """The path to show for an OS error: the output's own name, not its hidden staging name."""
    if name is None:
        return None
    text = os.fspath(name)
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    # ``dir/.out.mp4.partial-HOST-PID-RAND.mp4/000001.png`` → ``dir/out.mp4/000001.png``
    return re.sub(r"(^|/)\.([^/]+?)\.partial-[^/]*", r"\1\2", text)


def describe_os_error(error: OSError) -> str:
    """One line for an OS error: what the system said, about which of the user's paths."""
    reason = _OS_REASONS.get(error.errno) or (error.strerror or str(error)).strip().rstrip(".")
    path = _user_path(error.filename)
    other = _user_path(getattr(error, "filename2", None))
    where = f" writing {path}" if path and not other else f" moving {path} to {other}" if path else ""
    return f"the system refused{where}: {reason}"


def error_line(error: BaseException) -> str:
    """The one line a failure is shown as, by the CLI (`chain.entry`) and the UI alike."""
    if isinstance(error, ChainError):
        return " ".join(str(error).split())
    if isinstance(error, OSError):
        return describe_os_error(error)
    if isinstance(error, MemoryError):
        return "out of memory: try a smaller --size or --batch"
    return f"internal error: {type(error).__name__}: {error}"
