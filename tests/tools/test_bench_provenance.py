"""A benchmark's figures are written with where they were measured: the commit, the date, the machine, the load."""

import importlib.util
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_provenance_names_the_commit_and_the_machine() -> None:
    spec = importlib.util.spec_from_file_location("provenance", ROOT / "bench" / "provenance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    measured = module.provenance()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    assert measured["commit"] == head.strip() and "cores" in measured["machine"]
    line = module.provenance_line(measured)
    assert line.startswith(f"Measured at commit {measured['commit']}") and measured["machine"] in line


def test_every_benchmark_writes_its_provenance() -> None:
    for script in sorted((ROOT / "bench").glob("*.py")):
        if script.name != "provenance.py":
            text = script.read_text()
            assert text.count("measured = provenance()") == text.count('.json").write_text('), script.name
