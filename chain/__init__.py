"""chain: re-imagine films through neural networks — segment, remap, synthesize, frame by frame.

    import chain
    chain.run("lastjedi.mp4", "out.mp4", seg="deeplab-mnv2:voc", synth="colorize", remap=["person=cat"])

The API is loaded lazily so that ``chain.labels`` and ``chain.media`` import without torch.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from chain.version import __version__  # noqa: F401  (the package's version, as chain.__version__)

# OpenMP threads (torch's) spin after each parallel region by default. Beside a busy core, or beside
# ONNX Runtime's own pool, the spinning starves the thread doing the work: the deeplab-mnv2 stage
# at --threads 2 fell from 81 to 13 frames/s (benchmarks/cpu_segmenter_speed.py). Sleeping
# instead costs nothing measurable. Read once, when torch loads: so set here, before chain imports
# it; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["Chain", "ChainConfig", "ChainError", "Outputs", "RunConfig", "RunSummary", "build_chain", "run"]

_EXPORTS = {
    "run": "chain.api", "build_chain": "chain.api", "Chain": "chain.engine.pipeline", "Outputs": "chain.media.outputs",
    "RunSummary": "chain.engine.summary", "ChainError": "chain.errors", "RunConfig": "chain.config",
    "ChainConfig": "chain.config",
}

if TYPE_CHECKING:
    from chain.api import build_chain, run
    from chain.config import ChainConfig, RunConfig
    from chain.engine.pipeline import Chain
    from chain.engine.summary import RunSummary
    from chain.errors import ChainError
    from chain.media.outputs import Outputs


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'chain' has no attribute {name!r}")
