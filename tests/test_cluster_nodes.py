"""`--cluster` on a real multi-node Ray cluster on this machine: a node removed mid-run costs a retry,
not the output (Ray's own retries; chain has no scheduler of its own)."""

from __future__ import annotations

import functools
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import chain
from chain.api import build_chain
from chain.cluster import run_sharded
from chain.config import RunConfig
from chain.media.outputs import Outputs
from chain.stages.base import Segmenter
from tests.test_cluster import CHAIN, FRAMES, make_clip, pngs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def nodes():  # noqa: ANN201
    """A head that runs no tasks and two worker nodes of one CPU each, connected; this module by value."""
    pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[cluster]'")
    from ray import cloudpickle
    from ray.cluster_utils import Cluster

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    cluster = Cluster(initialize_head=True, connect=True,
                      head_node_args={"num_cpus": 0, "include_dashboard": False})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    import ray

    ray.shutdown()
    cluster.shutdown()


class _Stalling(Segmenter):
    """At run frame ``at``, the first time: write the node it runs on to ``marker`` and wait there."""

    def __init__(self, inner: Segmenter, at: int, marker: Path) -> None:
        self.inner, self.at, self.marker = inner, at, marker
        self.label_space, self.description = inner.label_space, inner.description

    def segment(self, frames: np.ndarray, *, indices: np.ndarray,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        if self.at in indices and not self.marker.exists():
            import ray

            self.marker.write_text(ray.get_runtime_context().get_node_id())
            time.sleep(60)  # the node is removed meanwhile
        return self.inner.segment(frames, indices=indices, size=size)


def _stalling_chain(at: int, marker: Path) -> chain.Chain:
    built = build_chain(seg=CHAIN["seg"], synth=CHAIN["synth"], remap=CHAIN["remap"])
    built.segmenter = _Stalling(built.segmenter, at, marker)
    return built


def test_a_removed_node_is_retried_and_the_output_equals_one_machine(nodes, tmp_path: Path) -> None:  # noqa: ANN001
    clip = make_clip(tmp_path / "clip.mp4")
    chain.run(clip, save_labels=tmp_path / "one", seg=CHAIN["seg"], synth=CHAIN["synth"], remap=CHAIN["remap"])
    marker = tmp_path / "stalled-on"
    removed: list[str] = []

    def remove_the_stalled_node() -> None:
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # the node id is written
        node_id = marker.read_text().strip() if marker.exists() else ""
        for node in list(nodes.worker_nodes):
            if node.node_id == node_id:
                nodes.remove_node(node, allow_graceful=False)
                removed.append(node_id)

    remover = threading.Thread(target=remove_the_stalled_node, daemon=True)
    remover.start()
    started = time.monotonic()
    summary = run_sharded(RunConfig(clip, Outputs(labels=tmp_path / "sharded"), cluster="ray", shards=4),
                          factory=functools.partial(_stalling_chain, 40, marker))
    remover.join(timeout=5)
    assert removed, "the stalled shard's node was not found"
    assert time.monotonic() - started < 60  # the retry did not wait out the stall
    assert summary.frames == FRAMES and summary.extra["cluster"]["shards"] == 4
    a, b = pngs(tmp_path / "one"), pngs(tmp_path / "sharded")
    assert len(a) == FRAMES and list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)


class _Dying(Segmenter):
    """Kills the worker process at run frame ``at``, every time it gets there."""

    def __init__(self, inner: Segmenter, at: int) -> None:
        self.inner, self.at = inner, at
        self.label_space, self.description = inner.label_space, inner.description

    def segment(self, frames: np.ndarray, *, indices: np.ndarray,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        if self.at in indices:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner.segment(frames, indices=indices, size=size)


def _dying_chain(at: int) -> chain.Chain:
    built = build_chain(seg=CHAIN["seg"], synth=CHAIN["synth"], remap=CHAIN["remap"])
    built.segmenter = _Dying(built.segmenter, at)
    return built


def test_a_shard_whose_worker_keeps_dying_ends_in_one_line_and_no_output(nodes, tmp_path: Path) -> None:  # noqa: ANN001
    from chain.errors import ChainError

    clip = make_clip(tmp_path / "clip.mp4")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ChainError, match=r"^shard 3 of 4 \(frames 32-47\) failed after 1 retries: .*nothing was written$"):
        run_sharded(RunConfig(clip, Outputs(video=tmp_path / "out.mp4", labels=tmp_path / "labels"), cluster="ray",
                              shards=4), factory=functools.partial(_dying_chain, 40), retries=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
