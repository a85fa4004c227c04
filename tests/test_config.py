"""Run identity: which settings make a different run, across versions that add options."""

from tokendistill.config import ExtractConfig, differing_keys, field_defaults


def test_an_option_added_at_its_default_keeps_old_runs_resumable() -> None:
    defaults = field_defaults(ExtractConfig)
    held = {"task": "cqa", "top_k": 10.0}  # written before chat_template existed
    assert differing_keys(held, {"task": "cqa", "top_k": 10.0, "chat_template": False}, defaults) == []
    assert differing_keys(held, {"task": "cqa", "top_k": 10.0, "chat_template": True}, defaults) == ["chat_template"]
    assert differing_keys(held, {"task": "cqa", "top_k": 5.0}, defaults) == ["top_k"]


def test_removed_options_are_ignored_and_tuples_equal_lists() -> None:
    assert differing_keys({"gone": 1, "a": [1, 2]}, {"a": (1, 2)}, {}) == []
