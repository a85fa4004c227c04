"""An instruct teacher's chat template wraps the input; the offsets still point at the input's words."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from tokendistill.attribution.teacher import Teacher
from tokendistill.attribution.words import split_words, token_word_pairs
from tokendistill.cli import main
from tokendistill.models import load_model
from tokendistill.tasks import get_task, load_examples

TEMPLATE = ("{% for m in messages %}<|user|> {{ m['content'] }} <|end|>{% endfor %}"
            "{% if add_generation_prompt %} <|assistant|>{% endif %}")


@pytest.fixture(scope="module")
def chat_llama(tmp_path_factory: pytest.TempPathFactory, llama_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("chat-llama")
    shutil.copytree(llama_dir, folder, dirs_exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = TEMPLATE
    tokenizer.save_pretrained(folder)
    return folder


def test_chat_prompt_wraps_input_and_cue(chat_llama: Path) -> None:
    teacher = Teacher(load_model(str(chat_llama), device="cpu", offsets=True), chat_template=True)
    example = load_examples(get_task("keywords"), "train", limit=1)[0]
    assert teacher.prompt(example) == f"<|user|> {example.input}\nAnswer: <|end|> <|assistant|>"


def test_offsets_point_into_the_input_under_a_chat_template(chat_llama: Path) -> None:
    plain = Teacher(load_model(str(chat_llama), device="cpu", offsets=True))
    chat = Teacher(load_model(str(chat_llama), device="cpu", offsets=True), chat_template=True)
    examples = load_examples(get_task("keywords"), "train", limit=4)
    for teacher in (plain, chat):
        batch = teacher.encode(examples, [e.target for e in examples])
        for example, offsets in zip(examples, batch.offsets):
            words = split_words(example)
            tokens, word_index = token_word_pairs(offsets, words)
            assert sorted(set(word_index.tolist())) == list(range(len(words))), "every word reached by a token"
            for token, word in zip(tokens, word_index):
                start, end = offsets[token]
                assert example.input[start:end] in words[word].text
            assert np.all(offsets[:, 1] <= len(example.input))


def test_chat_template_without_one_is_a_user_error(tmp_path: Path, llama_dir: Path) -> None:
    assert main(["extract", "--task", "keywords", "--teacher", str(llama_dir), "--output", str(tmp_path / "o"),
                 "--limit", "2", "--top-k", "1", "--chat-template", "--device", "cpu"]) == 2


def test_extract_with_chat_template(tmp_path: Path, chat_llama: Path) -> None:
    assert main(["extract", "--task", "keywords", "--teacher", str(chat_llama), "--output", str(tmp_path / "o"),
                 "--limit", "4", "--top-k", "2", "--chat-template", "--max-new-tokens", "2", "--device", "cpu"]) == 0
    records = [json.loads(line) for line in (tmp_path / "o" / "records.jsonl").read_text().splitlines()]
    assert all(len(r["rationale"]) == 2 and None not in r["word_scores"] for r in records)
