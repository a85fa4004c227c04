"""Comprehensiveness and sufficiency: checked against occlusion, which removes words the same way."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tokendistill.cli import main


@pytest.mark.parametrize("model_fixture", ["t5_dir", "llama_dir"])
def test_comprehensiveness_of_the_top_occlusion_word_is_its_occlusion_score(
    tmp_path: Path, model_fixture: str, request: pytest.FixtureRequest
) -> None:
    teacher = str(request.getfixturevalue(model_fixture))
    folder = tmp_path / "r"
    assert main(["extract", "--task", "keywords", "--teacher", teacher, "--output", str(folder), "--limit", "8",
                 "--top-k", "1", "--method", "occlusion", "--target", "gold", "--device", "cpu"]) == 0
    assert main(["faithfulness", str(folder), "--device", "cpu", "--batch-size", "3"]) == 0
    (result,) = json.loads((folder / "analysis" / "faithfulness.json").read_text())["results"]
    records = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    # The chosen word's own score (the best candidate's: stop-words and punctuation are never candidates).
    top_scores = [r["word_scores"][r["rationale_positions"][0]] for r in records]
    assert result["examples"] == 8
    # Occlusion clamps drops at zero; the best word's drop is positive here, so the two must agree.
    assert all(score > 0 for score in top_scores)
    assert result["comprehensiveness/rationale"] == pytest.approx(np.mean(top_scores), abs=1e-4)
    assert np.isfinite(result["sufficiency/rationale"]) and np.isfinite(result["sufficiency/random"])
    assert result["comprehensiveness/rationale"] >= result["comprehensiveness/random"] - 1e-6
