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


def test_the_readmes_summary_says_the_claims_the_table_computes() -> None:
    """The README's "What to expect" paragraph is prose, so it is checked against verdict.csv: each declared
    comparison's claim, and the claim of kd vs standard, are the table's."""
    import csv

    rows = {row["comparison"]: row for row in csv.DictReader(
        (ROOT / "docs" / "results" / "decisive-esnli-cpu" / "verdict.csv").open(encoding="utf-8"))}
    readme = (ROOT / "README.md").read_text()
    summary = " ".join(readme.split("**What to expect.**")[1].split("\n\n")[0].split())
    said = {
        "multitask_kd (shared_prompt) saliency vs kd": "on top of its answer distribution (`multitask_kd` vs `kd`): **",
        "multitask_kd (shared_prompt) saliency vs multitask_kd (shared_prompt) random_matched":
            "beside the answer distribution (`multitask_kd`): **",
        "multitask (shared_prompt) saliency vs multitask (shared_prompt) random_matched":
            "without the answer distribution (`multitask`): **",
    }
    assert {name for name, row in rows.items() if row["primary"] == "True"} == set(said)
    for comparison, words in said.items():
        assert f"{words}{rows[comparison]['claim']}**" in summary, comparison
        assert rows[comparison]["seeds"] == "5" and "five training seeds" in summary
    assert rows["kd vs standard"]["claim"] != "established" and "not established after Holm's correction" in summary
    small = rows["multitask_kd (shared_prompt) saliency vs multitask_kd (shared_prompt) random_matched"]
    assert float(small["high"]) < 0.02 and "smaller than 2 points" in summary
