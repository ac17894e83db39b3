"""The README as a reference (issue 29): every command and flag of `chain --help` has a section that
names it, cross-references are links to headings that exist, and the install lines CI runs are the
README's own."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from chain.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def headings(text: str) -> list[tuple[int, int, str]]:
    """(line number, level, title) of every Markdown heading outside fenced code."""
    found, fenced = [], False
    for number, line in enumerate(text.splitlines()):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"^(#{1,6}) (.+)$", line)):
            found.append((number, len(match.group(1)), match.group(2).strip()))
    return found


def anchor(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but hyphens dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def section(title_has: str) -> str:
    """The text under the first heading whose title holds ``title_has``, to the next heading of its level or above."""
    lines, found = README.splitlines(), headings(README)
    for index, (number, level, title) in enumerate(found):
        if title_has in title:
            end = next((n for n, lvl, _ in found[index + 1:] if lvl <= level), len(lines))
            return "\n".join(lines[number:end])
    raise AssertionError(f"no README heading names {title_has}")


def commands() -> list[tuple[str, list[str]]]:
    """Every command of `chain --help`, as ``"train spade"``, with its long options."""
    found = []

    def walk(command, path: list[str]) -> None:  # noqa: ANN001 (click's Command)
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, [*path, name])
            return
        options = [opt for param in command.params for opt in param.opts if opt.startswith("--") and opt != "--help"]
        found.append((" ".join(path), options))

    walk(typer.main.get_command(app), [])
    return found


@pytest.mark.parametrize(("command", "options"), commands(), ids=[name for name, _ in commands()])
def test_every_command_and_flag_has_a_readme_section(command: str, options: list[str]) -> None:
    text = section(f"`chain {command}`")
    missing = [option for option in options if not re.search(re.escape(option) + r"(?![\w-])", text)]
    assert not missing, f"the README's section on `chain {command}` does not mention {', '.join(missing)}"


def test_cross_references_are_links_to_headings_that_exist() -> None:
    prose = re.sub(r"```.*?```", "", README, flags=re.S)
    dead = re.findall(r"[^.\n]*\b(?:see (?:below|above)|\((?:below|above)\))[^.\n]*", prose, flags=re.I)
    assert not dead, f"'below'/'above' without a link: {dead}"
    anchors = {anchor(title) for _, _, title in headings(README)}
    links = re.findall(r"\]\(#([^)]+)\)", README)
    assert links and not [link for link in links if link not in anchors]
    for _, _, title in headings(README):  # the anchors this test computes are GitHub's: spot-check one
        if title.startswith("Many cores"):
            assert anchor(title) == "many-cores-or-machines---cluster"


def test_readme_pictures_exist() -> None:
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert {"docs/images/bunny_compare.png", "docs/images/ui_preview.png", "docs/images/ui_run.png"} <= set(pictures)
    assert all((ROOT / picture).is_file() for picture in pictures)


def test_the_install_lines_ci_runs_are_the_readmes_and_a_cpu_line_sits_beside_them() -> None:
    setup = section("Set up")
    readme_lines = {tuple(shlex.split(line.split("#")[0])) for line in setup.splitlines() if line.startswith("pip ")}
    ci = (ROOT / ".ci" / "run").read_text()
    ci_lines = [shlex.split(line.replace("python -m pip install --quiet", "pip install"))
                for line in ci.splitlines() if line.startswith("python -m pip install --quiet") and "--upgrade" not in line]
    assert len(ci_lines) == 2 and all(tuple(line) in readme_lines for line in ci_lines), (ci_lines, readme_lines)
    torch_line = next(line for line in ci_lines if line[2].startswith("torch=="))
    assert (*torch_line, "--index-url", "https://download.pytorch.org/whl/cpu") in readme_lines
    assert "WITHOUT an NVIDIA GPU" in setup and "nvidia-*" in setup
