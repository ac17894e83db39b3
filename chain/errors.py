"""The one exception type the CLI turns into a one-line message and a non-zero exit."""

from __future__ import annotations


class ChainError(Exception):
    """A mistake the user can fix: bad input, missing weights, unknown names.

    The message is shown as-is, on one line, so it should say what is wrong and what
    to do about it.
    """

    exit_code: int = 2


class MissingWeightsError(ChainError):
    """Pretrained weights are not on disk and cannot be downloaded."""

    exit_code = 3


def first_line(error: BaseException) -> str:
    """An exception's first line (its type when it has no text), for one-line messages."""
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines and lines[0].strip() else type(error).__name__
