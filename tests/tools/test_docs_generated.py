"""The generated documents are what their scripts print: docs/cli.md is the parser's help (the registries' names
included), and every figure block of the README and docs/ is what the published runs give."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_is_the_parsers_help() -> None:
    tool = load("cli_reference")
    text = tool.reference()
    assert tool.REFERENCE.read_text() == text, "docs/cli.md is stale: run python tools/cli_reference.py"
    from tokendistill.training.modes import MODES

    assert all(f"`{name}`" in text or name in text for name in MODES.names())
    assert "--mode kd, multitask_kd options:" in text and "--align-weight" in text


def test_every_figure_block_is_what_the_published_runs_give() -> None:
    tool = load("figures")
    assert tool.stale() == [], "run python tools/figures.py"
    readme = (ROOT / "README.md").read_text()
    assert len(tool.BLOCK.findall(readme)) >= 1


def test_a_changed_figure_is_found_stale() -> None:
    tool = load("figures")
    readme = (ROOT / "README.md").read_text()
    block = tool.BLOCK.search(readme)
    body = block["body"]
    figure = next(word for word in body.split() if word.startswith("+") and word[1:2].isdigit())
    edited = readme.replace(body, body.replace(figure, "+99.9", 1))
    assert tool.regenerate(edited) == readme != edited
