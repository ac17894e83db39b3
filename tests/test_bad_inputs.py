"""Every case of the bad-inputs corpus ends well: an output, one line and a non-zero exit, or a
one-line warning and a partial output; and no file that chain did not create is touched."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from chain.entry import main
from tests.bad_inputs import CASES, Case


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` with a digest of its content (folders: their listing)."""
    seen: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        relative = str(path.relative_to(folder))
        if path.is_symlink():
            seen[relative] = "link:" + os.readlink(path)
        elif path.is_dir():
            seen[relative] = "dir"
        elif not path.is_file():  # a named pipe or socket a case made: reading it would block or fail
            seen[relative] = f"special:{path.stat().st_mode:o}"
        else:
            seen[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return seen


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        main(args)
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("item", [pytest.param(c, id=c.name, marks=c.marks) for c in CASES])
def test_bad_input_ends_well(item: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("COLUMNS", "300")
    args = item.build(work)
    capsys.readouterr()
    before = _snapshot(tmp_path)

    code, stderr = run_cli(args, capsys)

    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    if item.expect == "error":
        assert code not in (0, 1), f"exit {code}: {stderr}"
        assert len(lines) == 1, stderr
        assert item.matches(lines[0]), lines[0]
    else:
        assert code == 0, stderr
        for output in item.outputs:
            assert (work / output).exists(), f"{output} missing; stderr: {stderr}"
        if item.expect == "warning":
            warnings = [line for line in lines if line.startswith("warning:")]
            assert len(warnings) == 1, stderr
            assert item.matches(warnings[0]), warnings[0]
    if item.exit_code is not None:
        assert code == item.exit_code, stderr
    after = _snapshot(tmp_path)
    allowed = [str(Path("work") / pattern) for pattern in item.may_change]
    for relative, digest in before.items():
        if any(relative == p or relative.startswith(p + "/") or (p.endswith("*") and relative.startswith(p[:-1]))
               for p in allowed):
            continue
        assert after.get(relative) == digest, f"chain changed or removed {relative}"
    leftovers = [p for p in after if ".partial" in p and p not in before]
    assert not leftovers, f"temporary parts left behind: {leftovers}"
    if item.check is not None:
        item.check(work)
