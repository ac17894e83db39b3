"""Where chain keeps weights: ``$CHAIN_WEIGHTS``, else ``~/.cache/chain/weights``."""

from __future__ import annotations

import os
from pathlib import Path


def weights_dir() -> Path:
    """The user's weights folder (it need not exist yet)."""
    configured = os.environ.get("CHAIN_WEIGHTS")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "chain" / "weights"
