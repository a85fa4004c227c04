"""Pushing to the hub, checked offline: the exact files and cards that would be uploaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokendistill.cli import main
from tokendistill.hub import PushConfig, push


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, t5_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("hub")
    common = ["--task", "keywords", "--device", "cpu", "--limit", "8"]
    assert main(["extract", *common, "--teacher", str(t5_dir), "--output", str(root / "words"), "--top-k", "2",
                 "--max-new-tokens", "3"]) == 0
    assert main(["train", *common, "--student", str(t5_dir), "--output", str(root / "student"), "--mode",
                 "multitask", "--rationales", str(root / "words"), "--steps", "1", "--batch-size", "4"]) == 0
    (root / "student" / "checkpoint.pt").write_bytes(b"left over")
    return root


def test_a_student_goes_as_a_model_with_its_card_and_nothing_of_its_bookkeeping(
        made: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["repo"] = (repo_id, kwargs)

    def create_commit(self, repo_id, operations, **kwargs):
        calls["files"] = {op.path_in_repo: op.path_or_fileobj for op in operations}
        calls["commit"] = kwargs

    from huggingface_hub import HfApi

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    names = push(PushConfig(folder=str(made / "student"), repo_id="me/student", private=True))
    assert calls["repo"] == ("me/student", {"private": True, "repo_type": "model", "exist_ok": True})
    assert calls["commit"]["repo_type"] == "model" and names == sorted(calls["files"])
    assert {"README.md", "config.json", "model.safetensors", "tokendistill.json", "config.yaml"} <= set(names)
    assert not {"checkpoint.pt", ".tokendistill.lock", ".card_metrics.json", "train_input_digests.txt"} & set(names)
    card = Path(calls["files"]["README.md"]).read_text()
    assert card.startswith("---\nlibrary_name: transformers") and "## Prompt format" in card
    assert main(["push", str(made / "student"), "--repo-id", "me/student", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["would upload"] == names


def test_a_rationale_folder_goes_as_a_dataset_with_a_dataset_card(made: Path) -> None:
    from tokendistill.hub import upload_plan

    kind, files = upload_plan(made / "words")
    assert kind == "dataset" and {"README.md", "records.jsonl", "manifest.json"} <= set(files)
    card = files["README.md"].decode()
    assert "path: records.jsonl" in card and "| attribution method | saliency |" in card
    assert not (made / "words" / "README.md").exists()  # the card is generated for the upload, not written there


def test_a_folder_of_anything_else_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["push", str(tmp_path), "--repo-id", "me/x"]) == 2
    assert "neither a student folder" in capsys.readouterr().err


def test_train_push_to_hub_uploads_the_finished_student(tmp_path: Path, t5_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pushed = []
    import tokendistill.hub as hub

    monkeypatch.setattr(hub, "push", lambda config: pushed.append((config.folder, config.repo_id)) or [])
    assert main(["train", "--task", "keywords", "--student", str(t5_dir), "--output", str(tmp_path / "s"),
                 "--limit", "8", "--steps", "1", "--batch-size", "4", "--device", "cpu",
                 "--push-to-hub", "me/s"]) == 0
    assert pushed == [(str(tmp_path / "s"), "me/s")] and (tmp_path / "s" / "README.md").is_file()
