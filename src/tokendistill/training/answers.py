"""How a trained student answers: its prompt as it was trained, greedy generation, or the candidate it scores
highest. Shared by evaluation, evaluation during training and `predict`, so that the three read it alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from tqdm.auto import tqdm

from tokendistill.attribution.choices import score_choices
from tokendistill.attribution.teacher import Teacher
from tokendistill.errors import UserError
from tokendistill.models import LoadedModel, greedy_generate
from tokendistill.student import StudentPrompt
from tokendistill.tasks import Example, Task

AnswerReading = Literal["generation", "choice_sum", "choice_mean"]
INPUT_SHOWN = 200  # characters of each input that a prediction record keeps


def generate(loaded: LoadedModel, prompt: StudentPrompt, texts: Sequence[str], max_input_length: int,
             max_new_tokens: int) -> list[str]:
    """Greedy answers for a batch of inputs, prompted as the student was trained."""
    return greedy_generate(
        loaded.model, loaded.tokenizer, loaded.is_encoder_decoder,
        [prompt.source(text) + prompt.cue for text in texts], max_input_length, max_new_tokens, prompt.decoder_start,
    )


def predict(
    loaded: LoadedModel,
    task: Task,
    examples: Sequence[Example],
    prompt: StudentPrompt,
    batch_size: int,
    max_input_length: int,
    max_new_tokens: int,
    *,
    progress: bool = False,
    answer: AnswerReading = "generation",
) -> tuple[list[dict[str, Any]], float]:
    """Predictions (one record per example) and accuracy under the task's metric.

    ``prompt``: how the student was trained to read an input (student.StudentPrompt). ``answer``: which reading
    is the prediction; with a choice reading each record also keeps the generation and whether it was right.
    """
    loaded.model.eval()
    records = []
    scorer = choice_scorer(loaded, task, examples, prompt, max_input_length, answer)
    for start in tqdm(range(0, len(examples), batch_size), desc="evaluate", disable=not progress, unit="batch"):
        chunk = examples[start : start + batch_size]
        generated = [prompt.answer(text) for text in
                     generate(loaded, prompt, [example.input for example in chunk], max_input_length, max_new_tokens)]
        picked = score_choices(scorer, chunk, task.name).best(answer[len("choice_"):]) if scorer else generated
        for example, text, prediction in zip(chunk, generated, picked):
            # The input's start beside its id (a content hash), so that a reader sees which row it was.
            shown = example.input if len(example.input) <= INPUT_SHOWN else example.input[:INPUT_SHOWN] + "…"
            record = {"id": example.id, "input": shown, "prediction": prediction, "target": example.target,
                      "correct": task.score(prediction, example)}
            if scorer:
                record |= {"generation": text, "generation_correct": task.score(text, example)}
            records.append(record)
    accuracy = sum(record["correct"] for record in records) / len(records)
    return records, accuracy


def choice_scorer(
    loaded: LoadedModel, task: Task, examples: Sequence[Example], prompt: StudentPrompt, max_input_length: int,
    answer: AnswerReading,
) -> Teacher | None:
    """The student wrapped for candidate scoring, prompted exactly as it was trained (None: read generations).

    A small student's free generation can miss every candidate (a near-miss such as "go off" for "go
    downtown" scores zero) while it still ranks the candidates; scoring them reads a closed-set task the way
    the teacher's `--target choice` does.
    """
    if answer == "generation":
        return None
    if not all(example.choices for example in examples):
        raise UserError(f"--answer {answer}: task {task.name!r} has no closed set of answers to score; "
                        "use --answer generation")
    if prompt.in_decoder or (prompt.answer_separator is not None and loaded.is_encoder_decoder):
        raise UserError(f"--answer {answer}: a seq2seq student whose output starts with a task marker or holds "
                        "more than the label (label_then_tokens) is read by its generation; use --answer generation")
    # The causal student was trained on input + its cue -> " " + label (+ separator + words under
    # label_then_tokens): Teacher scores " " + candidate there, a prefix of that output either way.
    scorer = Teacher(loaded, max_input_length, prompt_suffix=prompt.cue)
    scorer.prompt_prefix = prompt.input_prefix
    return scorer
