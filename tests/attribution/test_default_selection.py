"""The rationale words' defaults fit the input: a fraction of its candidate words with a cap, stop-words never
chosen; and folders made under the earlier defaults keep their identity."""

import json
from pathlib import Path

import numpy as np

from tokendistill.cli import main
from tokendistill.config import EXTRACT_EARLIER_DEFAULTS, ExtractConfig
from tokendistill.options import field_defaults
from tokendistill.selection import STOPWORDS, resolve_k, select_top_k


def test_the_default_k_is_a_quarter_of_the_candidates_at_most_ten() -> None:
    defaults = field_defaults(ExtractConfig)
    assert (defaults["top_k"], defaults["top_k_cap"], defaults["drop_stopwords"]) == (0.25, 10, True)
    assert resolve_k(0.25, 20, cap=10) == 5  # a 20-word input: 5 words, not half of it
    assert resolve_k(0.25, 400, cap=10) == 10
    assert resolve_k(0.25, 2, cap=10) == 1
    assert resolve_k(12, 400, cap=10) == 12  # a count is kept as given
    assert len(select_top_k(np.arange(100.0), np.ones(100, bool), 0.25, 10)) == 10


def test_extract_drops_stop_words_by_default_and_keeps_them_when_asked(tmp_path: Path, t5_dir: Path) -> None:
    def chosen(output: Path, *extra: str) -> list[list[str]]:
        assert main(["extract", "--task", "keywords", "--teacher", str(t5_dir), "--output", str(output), "--limit",
                     "12", "--max-new-tokens", "3", "--device", "cpu", *extra]) == 0
        return [json.loads(line)["rationale"] for line in (output / "records.jsonl").read_text().splitlines()]

    default = chosen(tmp_path / "default")
    assert default and not any(word.lower() in STOPWORDS for words in default for word in words)
    kept = chosen(tmp_path / "kept", "--no-drop-stopwords", "--top-k", "0.9", "--top-k-cap", "40")
    assert any(word.lower() in STOPWORDS for words in kept for word in words)
    manifest = json.loads((tmp_path / "default" / "manifest.json").read_text())
    assert manifest["identity"]["top_k"] == 0.25 and manifest["identity"]["top_k_cap"] == 10


def test_a_count_records_no_cap() -> None:
    assert ExtractConfig(task="t", teacher="t", output="o", top_k=5).identity_values()["top_k_cap"] is None
    assert ExtractConfig(task="t", teacher="t", output="o", top_k=0.2).identity_values()["top_k_cap"] == 10


def test_settings_at_the_earlier_defaults_keep_the_hash_they_had(tmp_path: Path) -> None:
    # Hashes from the code before the defaults changed (commit 51afbbe), for top_k 5 and 10 with stop-words kept,
    # and 10 with them dropped: the same settings are the same run, whatever today's defaults.
    from tokendistill.attribution.extract import _NOT_IDENTITY
    from tokendistill.rationales import identity_hash

    known = {**field_defaults(ExtractConfig), **EXTRACT_EARLIER_DEFAULTS}
    hashes = []
    for settings in ({"top_k": 5, "drop_stopwords": False}, {"top_k": 10, "drop_stopwords": False},
                     {"top_k": 10, "drop_stopwords": True}):
        values = ExtractConfig(task="keywords", teacher="t", output="o", **settings).identity_values()
        identity = {key: value for key, value in values.items() if key not in _NOT_IDENTITY}
        hashes.append(identity_hash(identity, known))
    assert hashes == ["3eb22552acca5965", "f1a02e73e0d9a2f9", "69415ac840934f2f"]
