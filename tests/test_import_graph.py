"""tools/import_graph.py: chain's import graph has no circle, and the tool finds one where there is."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("import_graph", ROOT / "tools" / "import_graph.py")
import_graph = importlib.util.module_from_spec(_spec)
sys.modules["import_graph"] = import_graph  # dataclasses look their module up there
_spec.loader.exec_module(import_graph)


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_chain_has_no_import_circle(capsys: pytest.CaptureFixture[str]) -> None:
    assert import_graph.main(["--root", str(ROOT)]) == 0
    out = capsys.readouterr().out
    assert "no import circle" in out
    assert "no upward import" in out  # the floors of pyproject.toml, typing-only and lazy imports included
    # The registry reaches the built-in stages only lazily, and no stage imports the registry.
    assert "chain.stages.registry -> " in out and "~chain.stages.builtin" in out
    modules, edges = import_graph.build_graph(ROOT)
    stage_modules = {edge.source for edge in edges if edge.target == "chain.stages.spec"} - {"chain.stages"}
    assert {"chain.stages.spade", "chain.stages.lookup", "chain.stages.builtin"} <= stage_modules
    assert not [edge for edge in edges if edge.target == "chain.stages.registry" and edge.source.startswith("chain.stages.")
                and edge.source not in ("chain.stages",)]


def test_lazy_circle_and_layer_violation_are_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(tmp_path, {
        "chain/__init__.py": "",
        "chain/a.py": "from chain.b import thing\n",
        "chain/b.py": "def thing():\n    from chain import a\n    return a\n",
        "chain/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from chain.d import x\n",
        "chain/d.py": "from . import c\n",
        "models/__init__.py": "",
        "models/net.py": "import chain.a\n",
    })
    assert import_graph.main(["--root", str(tmp_path), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "import circle among 2 modules: chain.a, chain.b" in out
    assert "chain.c" not in out.split("import circle")[-1]  # a typing-only import is never run
    assert "layer violation: models.net imports chain.a" in out


def test_upward_and_sideways_imports_are_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(tmp_path, {
        "pyproject.toml": '[[tool.importlinter.contracts]]\nname = "floors"\ntype = "layers"\n'
                          'layers = ["chain.top", "(chain.left) | chain.right", "chain.low"]\n',
        "chain/__init__.py": "from chain.version import __version__\n",
        "chain/version.py": "__version__ = '1'\n",
        "chain/top.py": "from chain import low\n",  # down: fine
        "chain/left.py": "def f():\n    from chain import right\n",  # a neighbour, lazily
        "chain/right.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from chain.top import x\n",
        "chain/low/__init__.py": "",
        "chain/low/deep.py": "def version():\n    from chain import __version__\n",  # the face: above every floor
        "chain/low/mate.py": "from chain.low import deep\n",  # within one floor's package: fine
    })
    assert import_graph.main(["--root", str(tmp_path), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "upward import: chain.low.deep (floor 2) lazily imports chain (floor -1)" in out
    assert "upward import: chain.right (floor 1) for typing imports chain.top (floor 0)" in out
    assert "sideways import: chain.left (floor 1) lazily imports chain.right (floor 1)" in out
    assert "3 imports leave their floor" in out
    assert "chain.top" not in out.split("upward import: chain.right")[0]  # going down is what floors are for
    assert "chain.low.mate" not in out
    assert "no import circle" in out  # a floor violation is reported beside the circle check, not instead
