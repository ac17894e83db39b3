"""chain.weights.fit: configs checked against weights on the meta device; short mismatch summaries; safe torch.load."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from torch import nn

from chain.errors import ChainError
from chain.weights.fit import build_fitted, check_fit, describe_mismatch, read_torch_file


def test_mismatch_summary_counts_and_names_a_few() -> None:
    expected = {f"w{i}": torch.zeros(2, 3) for i in range(10)}
    given = {**{f"w{i}": torch.zeros(2, 3) for i in range(5)}, "w5": torch.zeros(4, 3),
             **{f"extra{i}": torch.zeros(1) for i in range(500)}}
    summary = describe_mismatch(expected, given)
    assert summary.startswith("4 missing: w6, w7, w8, … (1 more); 500 unexpected: extra0, extra1, extra2, … (497 more); "
                              "1 mis-shaped (file vs network): w5 [4, 3] vs [2, 3]"), summary
    assert len(summary) < 300
    assert describe_mismatch(expected, dict(expected)) is None
    assert describe_mismatch(expected, {k: v for k, v in expected.items() if k != "w9"},
                             optional=lambda key: key == "w9") is None


def test_check_fit_builds_on_the_meta_device_and_leaves_the_random_state() -> None:
    devices = []

    def factory() -> nn.Module:
        devices.append(torch.empty(0).device)
        return nn.Linear(4, 3)

    torch.manual_seed(5)
    state = torch.random.get_rng_state()
    check_fit(factory, nn.Linear(4, 3).state_dict(), source="weights", what="test net")
    assert devices == [torch.device("meta")]
    torch.manual_seed(5)
    assert torch.equal(torch.random.get_rng_state(), state)  # the check drew nothing from it
    with pytest.raises(ChainError, match=r"^here: the weights do not fit the test net \(2 mis-shaped .*weight "
                                         r"\[3, 4\] vs \[1048576, 4\]"):
        check_fit(lambda: nn.Linear(4, 2 ** 20), nn.Linear(4, 3).state_dict(), source="here", what="test net")


def test_check_fit_turns_a_bad_config_into_one_line() -> None:
    with pytest.raises(ChainError, match=r"^cfg: cannot build the test net \(") as caught:
        check_fit(lambda: nn.Linear(4, "wide"), {}, source="cfg", what="test net")  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


def test_build_fitted_loads_the_weights() -> None:
    reference = nn.Linear(4, 3)
    model = build_fitted(lambda: nn.Linear(4, 3), reference.state_dict(), source="x", what="test net")
    assert torch.equal(model.weight, reference.weight) and model.weight.device.type == "cpu"


def test_read_torch_file_refuses_objects_without_advising_to_unpickle(tmp_path: Path) -> None:
    torch.save({"w": torch.ones(2)}, tmp_path / "plain.pth")
    assert torch.equal(read_torch_file(tmp_path / "plain.pth")["w"], torch.ones(2))
    torch.save({"args": argparse.Namespace(a=1)}, tmp_path / "objects.pth")
    (tmp_path / "text.pth").write_text("hello")
    (tmp_path / "empty.pth").write_bytes(b"")
    data = (tmp_path / "plain.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    for name, message in [("objects.pth", r"holds argparse\.Namespace\); chain never unpickles code"),
                          ("text.pth", "not a PyTorch state_dict file"), ("empty.pth", "not a PyTorch state_dict file"),
                          ("cut.pth", "not a PyTorch state_dict file, or is damaged"),
                          ("missing.pth", "weights file not found")]:
        with pytest.raises(ChainError, match=message) as caught:
            read_torch_file(tmp_path / name)
        text = str(caught.value)
        assert "\n" not in text and "weights_only" not in text and str(tmp_path / name) in text
