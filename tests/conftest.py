"""Shared test fixtures: where ../shared is, small real clips, tiny label maps."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

try:  # the test extra has Hypothesis; a checkout without it still runs every other test
    from hypothesis import HealthCheck, settings
except ImportError:  # pragma: no cover
    settings = None
if settings is not None:
    # dev (default): few examples, for the fast loop; ci: HYPOTHESIS_PROFILE=ci, more. Both derandomized
    # (the examples follow from the test, no database), so a failure in CI is the same failure here.
    _COMMON = dict(deadline=None, derandomize=True, database=None, print_blob=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    settings.register_profile("dev", max_examples=20, **_COMMON)
    settings.register_profile("ci", max_examples=150, **_COMMON)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

SHARED = Path(os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
VIDEOS = SHARED / "data" / "videos"


@pytest.fixture(autouse=True, scope="session")
def _session_weights_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """chain's weights folder in this session's temporary folder, unless $CHAIN_WEIGHTS names one:
    the ONNX exports of the checkpoints tests import (a new stamp each session) would otherwise pile
    up in the developer's ~/.cache/chain/weights/onnx, 30 MB a run. Tests that need their own set it."""
    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get("CHAIN_WEIGHTS"):
            patch.setenv("CHAIN_WEIGHTS", str(tmp_path_factory.mktemp("chain-weights")))
        # chain's record of the outputs it wrote (chain.media.ledger): the tests' outputs are not the user's
        patch.setenv("CHAIN_STATE", str(tmp_path_factory.mktemp("chain-state")))
        yield


def shared_file(relative: str) -> Path:
    """A file under ../shared, or skip the test with the reason (a user's fresh clone has none)."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} not found: tests with real footage need ../shared (or CHAIN_SHARED)")
    return path


@pytest.fixture
def carphone() -> Path:
    """176x144, 29.97 fps, 120 frames, no audio: small and quick."""
    return shared_file("data/videos/carphone_pristine.mp4")


@pytest.fixture
def bunny() -> Path:
    """1280x720, 25 fps, 132 frames, AAC 5.1 audio."""
    return shared_file("data/videos/bigbuckbunny.mp4")


@pytest.fixture(scope="session")
def voc_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real DeepLabV3-MobileNetV2 (PASCAL VOC) from ../shared's TF Lite file, imported once."""
    from chain.importers.tflite import save_imported

    tflite = shared_file("weights/deeplabv3_mnv2_voc_257.tflite")
    return save_imported(tflite, tmp_path_factory.mktemp("weights") / "deeplab-mnv2-voc", label_space="voc")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Ctrl-C as a terminal delivers it. A suite started in the background by a non-interactive shell
    (``nohup … &``) inherits SIGINT ignored, and every process it starts would too: the tests of
    stopping runs, training and the web page with Ctrl-C would then test nothing but that."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
