"""CPU threads: decided once (`chain.device.cpu_threads`), 1 unless --threads or $OMP_NUM_THREADS says otherwise."""

from __future__ import annotations

import pytest
import torch

import chain
from chain.device import cpu_threads, onnx_threads
from chain.errors import ChainError
from tests.test_cli import chain_cli


@pytest.fixture
def keep_threads():
    """Restore torch's thread count: `build_chain` sets it process-wide."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_default_is_one_thread_unless_the_user_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpu_threads() == 1
    assert cpu_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert cpu_threads() == 2
    assert cpu_threads(1) == 1  # --threads wins over the environment


def test_onnx_runtime_takes_every_core_unless_the_user_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert onnx_threads() == 0  # ONNX Runtime's own default: one thread per physical core
    assert onnx_threads(1) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert onnx_threads() == 3


def test_bad_thread_counts_are_one_line_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    with pytest.raises(ChainError, match="OMP_NUM_THREADS=many.*--threads"):
        cpu_threads()
    with pytest.raises(ChainError, match="--threads 0 is out of range"):
        cpu_threads(0)


def test_build_chain_sets_torch_threads_and_records_them(monkeypatch: pytest.MonkeyPatch, keep_threads) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)
    pipeline = chain.build_chain(seg="palette:voc", synth="colorize", device="cpu")
    assert torch.get_num_threads() == 1 and pipeline.request["threads"] == 1
    pipeline = chain.build_chain(seg="palette:voc", synth="colorize", device="cpu", threads=2)
    assert torch.get_num_threads() == 2 and pipeline.request["threads"] == 2


def test_cli_threads_reaches_the_run(tmp_path, keep_threads) -> None:
    from PIL import Image

    Image.new("RGB", (32, 24), (200, 30, 30)).save(tmp_path / "in.png")
    result = chain_cli("run", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--seg", "palette:voc",
                       "--device", "cpu", "--threads", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    assert torch.get_num_threads() == 2
    refused = chain_cli("run", str(tmp_path / "in.png"), str(tmp_path / "o2.png"), "--threads", "0")
    assert refused.returncode == 2 and "--threads" in refused.stderr


def test_openmp_threads_sleep_instead_of_spinning_unless_the_user_says() -> None:
    # Read by OpenMP when torch loads: chain must set it before torch is imported, in a fresh process.
    import os
    import subprocess
    import sys

    probe = "import chain, os; print(os.environ['OMP_WAIT_POLICY'])"
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    assert subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    assert subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "ACTIVE"
