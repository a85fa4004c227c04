"""How a trained student answers: its prompt as it was trained, greedy generation, or the candidate it scores
highest. Shared by evaluation, evaluation during training and `predict`, so that the three read it alike."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from tokendistill.artefacts import STUDENT_INFO
from tokendistill.attribution.choices import score_choices
from tokendistill.attribution.teacher import Teacher
from tokendistill.errors import UserError
from tokendistill.folders import read_json
from tokendistill.models import LoadedModel, greedy_generate
from tokendistill.tasks import Example, Task
from tokendistill.training.data import CAUSAL_CUE, causal_prompt
from tokendistill.training.modes.base import answer_part

AnswerReading = Literal["generation", "choice_sum", "choice_mean"]


def student_info(model_dir: str | Path) -> dict[str, Any]:
    """What `train` recorded about a student; a plain checkpoint gets the standard mode's (empty) prefix."""
    path = Path(model_dir) / STUDENT_INFO
    if not path.exists():
        return {"predict_prefix": ""}
    return read_json(path, f"train the student again into {model_dir} with --overwrite")


def generate(
    loaded: LoadedModel, sources: Sequence[str], max_input_length: int, max_new_tokens: int,
    decoder_prompt: str = "",
) -> list[str]:
    """Greedy answers for a batch of sources, prompted as the student was trained."""
    prompts = list(sources) if loaded.is_encoder_decoder else [causal_prompt(source) for source in sources]
    return greedy_generate(
        loaded.model, loaded.tokenizer, loaded.is_encoder_decoder, prompts, max_input_length, max_new_tokens,
        decoder_prompt,
    )


def predict(
    loaded: LoadedModel,
    task: Task,
    examples: Sequence[Example],
    prefix: str,
    batch_size: int,
    max_input_length: int,
    max_new_tokens: int,
    progress: bool = False,
    separator: str | None = None,
    task_marker: str = "encoder",
    answer: AnswerReading = "generation",
) -> tuple[list[dict[str, Any]], float]:
    """Predictions (one record per example) and accuracy under the task's metric.

    ``task_marker``: where the student was trained to read ``prefix`` (before the input, or, for a seq2seq
    student trained with ``--task-marker decoder``, at the start of its output). ``answer``: which reading
    is the prediction; with a choice reading each record also keeps the generation and whether it was right.
    """
    loaded.model.eval()
    records = []
    in_decoder = task_marker == "decoder" and loaded.is_encoder_decoder
    input_prefix, decoder_prompt = ("", prefix.strip()) if in_decoder else (prefix, "")
    scorer = choice_scorer(loaded, task, examples, input_prefix, max_input_length, answer, in_decoder, separator)
    for start in tqdm(range(0, len(examples), batch_size), desc="evaluate", disable=not progress, unit="batch"):
        chunk = examples[start : start + batch_size]
        generated = generate(loaded, [input_prefix + example.input for example in chunk], max_input_length,
                             max_new_tokens, decoder_prompt)
        generated = [answer_part(text, separator) for text in generated]
        picked = score_choices(scorer, chunk, task.name).best(answer[len("choice_"):]) if scorer else generated
        for example, text, prediction in zip(chunk, generated, picked):
            record = {"id": example.id, "prediction": prediction, "target": example.target,
                      "correct": task.score(prediction, example)}
            if scorer:
                record |= {"generation": text, "generation_correct": task.score(text, example)}
            records.append(record)
    accuracy = sum(record["correct"] for record in records) / len(records)
    return records, accuracy


def choice_scorer(
    loaded: LoadedModel, task: Task, examples: Sequence[Example], input_prefix: str, max_input_length: int,
    answer: AnswerReading, in_decoder: bool, separator: str | None,
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
    if in_decoder or (separator is not None and loaded.is_encoder_decoder):
        raise UserError(f"--answer {answer}: a seq2seq student whose output starts with a task marker or holds "
                        "more than the label (label_then_tokens) is read by its generation; use --answer generation")
    # The causal student was trained on input + CAUSAL_CUE -> " " + label (+ separator + words under
    # label_then_tokens): Teacher scores " " + candidate there, a prefix of that output either way.
    scorer = Teacher(loaded, max_input_length, prompt_suffix="" if loaded.is_encoder_decoder else CAUSAL_CUE)
    scorer.prompt_prefix = input_prefix
    return scorer
