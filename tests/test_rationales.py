import json
from pathlib import Path

import pytest

from tokendistill.errors import UserError
from tokendistill.rationales import RECORDS, RationaleStore, load_rationales


def test_store_resumes_and_cuts_a_torn_last_line(tmp_path: Path) -> None:
    store = RationaleStore.open(tmp_path, {"method": "saliency"})
    store.append([{"id": "a", "rationale": ["x"]}, {"id": "b", "rationale": ["y"]}])
    with (tmp_path / RECORDS).open("a") as handle:
        handle.write('{"id": "c", "ratio')  # killed mid-write
    reopened = RationaleStore.open(tmp_path, {"method": "saliency"})
    assert reopened.done == {"a", "b"}
    reopened.append([{"id": "c", "rationale": ["z"]}])
    lines = (tmp_path / RECORDS).read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b", "c"]


def test_store_refuses_a_different_configuration_unless_overwriting(tmp_path: Path) -> None:
    RationaleStore.open(tmp_path, {"method": "saliency", "top_k": 10}).append([{"id": "a"}])
    with pytest.raises(UserError, match="differs in: method"):
        RationaleStore.open(tmp_path, {"method": "occlusion", "top_k": 10})
    assert load_rationales(tmp_path) == {"a": {"id": "a"}}
    fresh = RationaleStore.open(tmp_path, {"method": "occlusion", "top_k": 10}, overwrite=True)
    assert fresh.done == set()


def test_reading_a_folder_that_is_not_a_store_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="run `tokendistill extract` first"):
        load_rationales(tmp_path)


def test_a_folders_settings_come_back_as_the_extract_config(tmp_path: Path) -> None:
    """Settings the identity names come back typed; one it leaves out (at its default) gets ExtractConfig's
    default; the run's other settings (limit) come from the finished summary; a manifest without a task is
    refused in one line."""
    from tokendistill.config import ExtractConfig
    from tokendistill.rationales import extraction_settings

    store = RationaleStore.open(tmp_path, {"task": "esnli", "teacher": "t", "method": "occlusion", "top_k": 3.0,
                                           "drop_stopwords": True, "teacher_fingerprint": "x"})
    store.finish({"config": {"limit": 40, "batch_size": 4, "method": "ignored: the identity wins"}})
    settings = extraction_settings(tmp_path)
    assert isinstance(settings, ExtractConfig)
    assert (settings.task, settings.method, settings.top_k, settings.drop_stopwords) == ("esnli", "occlusion", 3.0, True)
    assert settings.drop_punctuation is ExtractConfig.__dataclass_fields__["drop_punctuation"].default
    assert (settings.limit, settings.batch_size, settings.output) == (40, 4, str(tmp_path))
    RationaleStore.open(tmp_path / "bare", {"method": "saliency"})
    with pytest.raises(UserError, match="names no task"):
        extraction_settings(tmp_path / "bare")
