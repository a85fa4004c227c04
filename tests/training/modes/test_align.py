"""align: the student's word saliency pulled toward the teacher's stored word scores, by a double backward."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tokendistill.attribution.words import split_words
from tokendistill.cli import main
from tokendistill.models import load_model
from tokendistill.tasks import Example, Segment
from tokendistill.training.modes import MODES
from tokendistill.training.modes.align import SaliencyAlignment, StudentAttribution, alignment

TEXTS = [("the tiger went near the river", "animal"), ("a small yellow truck drove by", "vehicle")]


def with_teacher_words(example: Example, scores: list[float | None]) -> Example:
    words = split_words(example)
    record = {"words": [w.text for w in words], "word_spans": [[w.start, w.end] for w in words],
              "word_roles": [w.role for w in words], "word_scores": scores}
    return MODES.get("align").rows(example, record)[0].example


def examples_scored_by(scores_of: callable) -> list[Example]:
    result = []
    for i, (text, label) in enumerate(TEXTS):
        example = Example(f"e{i}", (Segment("input", text),), label)
        result.append(with_teacher_words(example, scores_of(example)))
    return result


def student(llama_dir: Path) -> StudentAttribution:
    loaded = load_model(str(llama_dir), device="cpu", offsets=True)
    model = loaded.model.double()
    torch.manual_seed(0)
    with torch.no_grad():  # away from the tiny model's symmetric start, so that saliency differs between words
        for parameter in model.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    return StudentAttribution(model, loaded.tokenizer, False, 64)


def own_word_scores(scorer: StudentAttribution, example: Example) -> list[float]:
    """The student's own saliency of the label, merged into words (the numpy path of attribution)."""
    from tokendistill.attribution.methods import MethodOptions, saliency
    from tokendistill.attribution.words import merge_to_words, token_word_pairs

    batch = scorer.encode([example], [example.target])
    words = split_words(example)
    tokens = saliency(scorer, batch, [token_word_pairs(batch.offsets[0], words)], MethodOptions())[0]
    return merge_to_words(tokens.detach().numpy(), batch.offsets[0], words, "sum").tolist()


def test_the_term_is_zero_when_the_students_word_saliency_is_the_teachers(llama_dir: Path) -> None:
    scorer = student(llama_dir)
    examples = examples_scored_by(lambda example: own_word_scores(scorer, example))
    terms = SaliencyAlignment(scorer.tokenizer, 64, 1.0).terms(scorer, examples)
    assert terms.detach().abs().max() < 1e-6
    # Scores of another shape are not aligned: a positive term.
    other = examples_scored_by(lambda example: [1.0 if i == 0 else 0.0 for i in range(len(split_words(example)))])
    assert SaliencyAlignment(scorer.tokenizer, 64, 1.0).terms(scorer, other).detach().min() > 0.01


def test_the_gradient_of_the_term_matches_a_finite_difference(llama_dir: Path) -> None:
    scorer = student(llama_dir)
    rng = np.random.default_rng(0)
    examples = examples_scored_by(lambda example: rng.random(len(split_words(example))).tolist())
    signal = SaliencyAlignment(scorer.tokenizer, 64, 1.0)
    weight = scorer.model.model.layers[0].mlp.up_proj.weight
    direction = torch.randn_like(weight)

    def value() -> torch.Tensor:
        return signal.terms(scorer, examples).sum()

    (gradient,) = torch.autograd.grad(value(), weight)
    analytic = float((gradient * direction).sum())
    step = 1e-3  # log-probabilities are taken in float32 (Teacher.answer_log_prob): a step above their rounding
    with torch.no_grad():
        weight.add_(step * direction)
    plus = float(value().detach())
    with torch.no_grad():
        weight.sub_(2 * step * direction)
    minus = float(value().detach())
    with torch.no_grad():
        weight.add_(step * direction)
    numeric = (plus - minus) / (2 * step)
    assert abs(analytic) > 1e-6  # the term depends on these weights through the saliency's own gradient
    assert analytic == pytest.approx(numeric, rel=2e-3)


def test_alignment_is_scale_free_and_bounded() -> None:
    teacher = torch.tensor([1.0, 2.0, 0.0])
    assert float(alignment(teacher * 7, teacher)) == pytest.approx(0.0, abs=1e-7)
    assert float(alignment(torch.tensor([0.0, 0.0, 1.0]), teacher)) == pytest.approx(1.0)


@pytest.mark.slow
def test_align_trains_from_a_rationale_folder_and_logs_its_term(tmp_path: Path, llama_dir: Path,
                                                                 llama_gold_words: Path) -> None:
    common = ["--task", "keywords", "--device", "cpu", "--limit", "8"]
    rationales = llama_gold_words
    output = tmp_path / "s"
    assert main(["train", *common, "--student", str(llama_dir), "--output", str(output), "--mode", "align",
                 "--rationales", str(rationales), "--steps", "2", "--batch-size", "4", "--align-weight", "2"]) == 0
    log = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(-1e-6 <= entry["align_loss"] <= 1 for entry in log)
    # Its own teacher, whose words are its own saliency: the first step's term is zero (to rounding).
    assert abs(log[0]["align_loss"]) < 1e-6
    assert all(entry["loss"] == pytest.approx(entry["label_loss"] + 2 * entry["align_loss"], rel=1e-5) for entry in log)
