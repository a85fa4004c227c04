"""multitask_kd: the KL term, its alignment with the teacher, the vocabulary check, and training with it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from tokendistill.cli import main
from tokendistill.errors import UserError
from tokendistill.models import load_model
from tokendistill.tasks import Example, Segment
from tokendistill.training.data import encode_rows, row_losses
from tokendistill.training.distill import AnswerDistiller, distillation_loss
from tokendistill.training.modes import MODES
from tokendistill.vocab import build_word_tokenizer

EXAMPLES = [
    Example("e", (Segment("input", "the tiger went near the river"),), "animal"),
    Example("f", (Segment("input", "a small yellow truck"),), "vehicle"),
]
RATIONALES = [{"rationale": ["tiger", "river"]}, {"rationale": ["truck"]}]


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_distillation_loss_is_the_summed_kl_times_temperature_squared(temperature: float) -> None:
    torch.manual_seed(0)
    student, teacher = torch.randn(4, 7), torch.randn(4, 7)
    expected = 0.0
    for s_row, t_row in zip(student.double().tolist(), teacher.double().tolist()):
        s_norm = math.log(sum(math.exp(v / temperature) for v in s_row))
        t_norm = math.log(sum(math.exp(v / temperature) for v in t_row))
        for s, t in zip(s_row, t_row):
            log_p, log_q = t / temperature - t_norm, s / temperature - s_norm
            expected += math.exp(log_p) * (log_p - log_q)
    expected *= temperature**2
    assert float(distillation_loss(student, teacher, temperature)) == pytest.approx(expected, rel=1e-5)
    assert float(distillation_loss(teacher, teacher, temperature)) == pytest.approx(0.0, abs=1e-6)


def _teacher_answer_logits(loaded, example: Example) -> torch.Tensor:  # noqa: ANN001
    """The teacher's logits for each gold-label token, from a plain forward over prompt + answer."""
    tokenizer = loaded.tokenizer
    if loaded.is_encoder_decoder:
        inputs = tokenizer([example.input], return_tensors="pt")
        labels = tokenizer([example.target], return_tensors="pt")["input_ids"]
        return loaded.model(**inputs, labels=labels).logits[0]
    prompt = tokenizer(example.input + "\nAnswer:")["input_ids"]
    answer = tokenizer(" " + example.target, add_special_tokens=False)["input_ids"]
    logits = loaded.model(input_ids=torch.tensor([prompt + answer])).logits[0]
    return logits[len(prompt) - 1 : len(prompt) - 1 + len(answer)]


@pytest.mark.parametrize("family", ["t5", "llama"])
def test_kd_term_matches_a_direct_computation(family: str, t5_dir: Path, llama_dir: Path) -> None:
    folder = str(t5_dir if family == "t5" else llama_dir)
    student = load_model(folder, device="cpu")
    torch.manual_seed(1)
    with torch.no_grad():  # a student that differs from the teacher, so the KL is not zero
        for parameter in student.model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    distiller = AnswerDistiller(folder, student.tokenizer, 64, 2.0, torch.device("cpu"))
    mode = MODES.get("multitask_kd")
    rows = [row for ex, r in zip(EXAMPLES, RATIONALES) for row in mode.rows(ex, r)]
    encoded = encode_rows(student.tokenizer, rows, student.is_encoder_decoder, 64, 16)
    plan = distiller.plan(rows, encoded, student.is_encoder_decoder)
    inputs = dict(encoded.model_inputs)
    if student.is_encoder_decoder:
        inputs["decoder_input_ids"] = student.model.prepare_decoder_input_ids_from_labels(labels=encoded.labels)
    with torch.no_grad():
        got = distiller.loss_sum(plan, row_losses(student.model, student.model.get_output_embeddings(), inputs,
                                                  encoded.labels, student.is_encoder_decoder))

    teacher = load_model(folder, device="cpu")
    expected, tokens = 0.0, 0
    with torch.no_grad():
        for example in EXAMPLES:
            teacher_logits = _teacher_answer_logits(teacher, example)
            # The student sees its own prompt ("predict: ..."), one row at a time.
            (label_row,) = [r for r in mode.rows(example, None) if r.group == "label"]
            one = encode_rows(student.tokenizer, [label_row], student.is_encoder_decoder, 64, 16)
            one_inputs = dict(one.model_inputs)
            if student.is_encoder_decoder:
                one_inputs["decoder_input_ids"] = student.model.prepare_decoder_input_ids_from_labels(labels=one.labels)
                student_logits = student.model(**one_inputs).logits[0]
            else:
                prompt_length = int((one.labels[0] == -100).sum())
                student_logits = student.model(**one_inputs).logits[0, prompt_length - 1 :]
            length = len(teacher_logits)  # the decoder student's extra EOS has no teacher counterpart
            expected += float(distillation_loss(student_logits[:length], teacher_logits, 2.0))
            tokens += length
    assert plan.tokens == tokens
    assert float(got) == pytest.approx(expected, rel=1e-4)
    assert expected > 0


def test_teacher_with_another_vocabulary_is_refused(tmp_path: Path, llama_dir: Path) -> None:
    tokenizer = build_word_tokenizer(["some other words entirely"])
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, pad_token_id=0, eos_token_id=1)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    student = load_model(str(llama_dir), device="cpu")
    with pytest.raises(UserError, match="vocabulary") as error:
        AnswerDistiller(str(tmp_path), student.tokenizer, 64, 1.0, torch.device("cpu"))
    assert "--mode multitask" in str(error.value)


def test_multitask_kd_without_a_teacher_is_a_user_error(tmp_path: Path, llama_dir: Path) -> None:
    code = main(["train", "--task", "keywords", "--device", "cpu", "--student", str(llama_dir), "--output",
                 str(tmp_path / "s"), "--mode", "multitask_kd", "--rationales", str(tmp_path), "--steps", "1"])
    assert code == 2


@pytest.mark.slow
def test_the_kd_term_pulls_the_student_towards_the_teacher(tmp_path: Path, llama_dir: Path) -> None:
    common = ["--task", "keywords", "--device", "cpu", "--limit", "16"]
    # A teacher with sharp answer distributions: the tiny random model, fine-tuned on the task.
    teacher = tmp_path / "teacher"
    assert main(["train", *common, "--student", str(llama_dir), "--output", str(teacher), "--steps", "30",
                 "--batch-size", "8", "--learning-rate", "3e-3"]) == 0
    rationales = tmp_path / "rationales"
    assert main(["extract", *common, "--teacher", str(teacher), "--output", str(rationales), "--top-k", "2",
                 "--batch-size", "8", "--max-new-tokens", "2"]) == 0
    final_kl = {}
    for weight in ("0", "5"):
        output = tmp_path / f"student-kd{weight}"
        assert main(["train", *common, "--student", str(llama_dir), "--init", "random", "--output", str(output),
                     "--mode", "multitask_kd", "--teacher", str(teacher), "--rationales", str(rationales),
                     "--steps", "20", "--batch-size", "8", "--learning-rate", "3e-3", "--kd-weight", weight]) == 0
        log = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
        assert len(log) == 20 and all(entry["kd_loss"] >= 0 for entry in log)
        final_kl[weight] = sum(entry["kd_loss"] for entry in log[-5:]) / 5
        info = json.loads((output / "tokendistill.json").read_text())
        assert "teacher_fingerprint" in info["inputs"]
    # The KL is logged either way; only with a weight does training drive it down.
    assert final_kl["5"] < 0.5 * final_kl["0"]


def test_kd_term_is_the_same_when_an_examples_rows_share_one_prompt(llama_dir: Path) -> None:
    """--task-marker shared_prompt under multitask_kd: the KL over the packed sequence's label block equals the
    KL over the same rows run separately."""
    from dataclasses import replace

    from tokendistill.training.data import forward_inputs
    from tokendistill.training.modes import marker_after_input

    student = load_model(str(llama_dir), device="cpu")
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in student.model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    student.model.config._attn_implementation = "eager"
    distiller = AnswerDistiller(str(llama_dir), student.tokenizer, 64, 2.0, torch.device("cpu"))
    mode = MODES.get("multitask_kd")
    packed_rows = [marker_after_input(row) for ex, r in zip(EXAMPLES, RATIONALES) for row in mode.rows(ex, r)]
    results = {}
    for name, rows in (("packed", packed_rows), ("separate", [replace(r, shared_prompt=False) for r in packed_rows])):
        encoded = encode_rows(student.tokenizer, rows, False, 64, 16)
        plan = distiller.plan(rows, encoded, False)
        with torch.no_grad():
            losses = row_losses(student.model, student.model.get_output_embeddings(),
                                forward_inputs(student.model, encoded, torch.device("cpu"), False), encoded.labels,
                                False, encoded.packed_targets)
            results[name] = (plan.tokens, float(distiller.loss_sum(plan, losses)))
    assert results["packed"][0] == results["separate"][0] > 0
    assert results["packed"][1] == pytest.approx(results["separate"][1], rel=1e-4) and results["packed"][1] > 0


def test_multitask_kd_trains_with_a_shared_prompt(tmp_path: Path, llama_dir: Path, llama_gold_words: Path) -> None:
    common = ["--task", "keywords", "--device", "cpu", "--limit", "8"]
    rationales = llama_gold_words
    student = tmp_path / "student"
    assert main(["train", *common, "--student", str(llama_dir), "--output", str(student), "--mode", "multitask_kd",
                 "--teacher", str(llama_dir), "--rationales", str(rationales), "--task-marker", "shared_prompt",
                 "--steps", "2", "--batch-size", "4"]) == 0
    log = [json.loads(line) for line in (student / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all("kd_loss" in entry for entry in log)
    assert json.loads((student / "tokendistill.json").read_text())["task_marker"] == "shared_prompt"
