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
