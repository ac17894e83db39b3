"""Shard a run over a Ray cluster (``chain run ... --cluster ray``).

The driver splits the input into equal frame ranges, each decoded from the keyframe before it
(`chain.cluster.plan`),
runs each as a Ray task that writes its part of every output under a hidden name beside the
output (`chain.engine.pipeline.Part`), then joins the parts (`chain.cluster.join`) and publishes the
outputs together. A shard that fails is retried by Ray; one that fails for good stops the run
with nothing left behind. Ray is an optional extra: ``pip install chain[cluster]``.
"""

from __future__ import annotations

from chain.cluster.plan import Shard, plan_shards, run_frames, warmup_frames
from chain.cluster.run import run_sharded

__all__ = ["Shard", "plan_shards", "run_frames", "run_sharded", "warmup_frames"]
