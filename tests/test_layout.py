"""The house stays small-roomed: no module of the package over 400 lines (complexity is ruff's, C90 at 10)."""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "tokendistill"


def test_no_module_is_over_400_lines() -> None:
    sizes = {str(path.relative_to(PACKAGE)): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert {name: lines for name, lines in sizes.items() if lines > 400} == {}
