"""Every artefact's file name is written once, in tokendistill.artefacts, and read from there."""

from __future__ import annotations

import re
from pathlib import Path

from tokendistill import artefacts

SOURCE = Path(artefacts.__file__).parent


def test_each_file_name_is_defined_once() -> None:
    names = {value for key, value in vars(artefacts).items() if key.isupper() and isinstance(value, str)}
    assert {"tokendistill.json", "manifest.json", "metrics.json", "teacher_eval.json", "cell.json"} <= names
    typed_twice = []
    for path in SOURCE.rglob("*.py"):
        if path.name == "artefacts.py":
            continue
        text = path.read_text(encoding="utf-8")
        typed_twice += [f"{path.relative_to(SOURCE)}: {name}" for name in names
                        if re.search(rf"[\"']{re.escape(name)}[\"']", text)]
    assert typed_twice == []
