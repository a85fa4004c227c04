"""A training run's rows: every example's training rows for its mode (the teacher's words or the LLM's
rationale joined to it, and checked to belong to it), and the order examples are drawn in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from tokendistill.config import TrainConfig
from tokendistill.errors import UserError
from tokendistill.rationales import extraction_settings, iter_rationales, reselect
from tokendistill.tasks import Example
from tokendistill.training.llm_rationales import load_llm_rationales
from tokendistill.training.modes.base import Mode, TrainingRow


def build_rows(mode: Mode, examples: list[Example], config: TrainConfig) -> list[list[TrainingRow]]:
    """Each example's training rows, joined with its rationale record by id (or its LLM rationale by row)."""
    if mode.needs_llm_rationales:
        return _llm_rows(mode, examples, config)
    if not mode.needs_rationales:
        return [mode.rows(example, None) for example in examples]
    if not config.rationales:
        raise UserError(f"mode {mode.name!r} learns from rationales: pass --rationales FOLDER from `extract`")
    rationales = _read_records(mode, examples, config)
    _check_join(mode, examples, rationales, config.rationales)
    return [mode.rows(example, rationales[example.id]) for example in examples]


def _llm_rows(mode: Mode, examples: list[Example], config: TrainConfig) -> list[list[TrainingRow]]:
    folder = config.llm_rationales or config.data
    if not folder:
        raise UserError(f"mode {mode.name!r} learns from the DSS LLM rationales: pass --llm-rationales FOLDER")
    texts = load_llm_rationales(folder, config.task, config.split)
    rows = []
    for example in examples:
        row = example.meta.get("row", -1)
        if not 0 <= row < len(texts):
            raise UserError(
                f"example {example.id!r} (row {row}) has no LLM rationale: {folder} holds {len(texts)} for "
                f"{config.task}/{config.split}"
            )
        rows.append(mode.rows(example, {"llm_rationale": texts[row]}))
    return rows


def _read_records(mode: Mode, examples: list[Example], config: TrainConfig) -> dict[str, dict[str, Any]]:
    """The training examples' records, read lazily, keeping only what the mode needs of each (the words, and the
    fields it names: a record's per-word scores are most of its size)."""
    wanted = {example.id for example in examples}
    extracted = extraction_settings(config.rationales)  # type: ignore[arg-type]
    rationales = {}
    for record in iter_rationales(config.rationales):  # type: ignore[arg-type]
        if record["id"] in wanted:
            if config.top_k is not None:
                record = reselect(record, config.top_k, extracted.drop_punctuation, extracted.drop_stopwords,
                                  extracted.top_k_cap)
            rationales[record["id"]] = {"rationale": record.get("rationale", []), "input": record.get("input"),
                                        **{name: record.get(name) for name in mode.record_fields}}
    return rationales


def _check_join(mode: Mode, examples: list[Example], rationales: dict[str, dict[str, Any]], folder: str) -> None:
    """Every example has its record, made for its own input, and some record has words."""
    missing = [example.id for example in examples if example.id not in rationales]
    if missing:
        raise UserError(
            f"{len(missing)} of {len(examples)} training examples have no rationale in {folder} "
            f"(first: {missing[0]!r}); extract the same task, split and --limit, or resume the extraction"
        )
    # Ids join rows to records; the stored input proves the join (a reordered file with positional ids, or an
    # edited row, would pair a sentence with another sentence's words).
    paired_wrong = [example.id for example in examples
                    if rationales[example.id]["input"] not in (None, example.input)]
    if paired_wrong:
        raise UserError(
            f"{len(paired_wrong)} of {len(examples)} rationale records in {folder} were made for another "
            f"input than the training row of the same id (first: {paired_wrong[0]!r}): the data changed since "
            "`extract` (reordered or edited rows?); extract again from this data"
        )
    if not any(record["rationale"] for record in rationales.values()):
        raise UserError(
            f"no training example has rationale words in {folder} (an --only-correct extraction of a "
            f"teacher that is never right?): mode {mode.name!r} would learn from labels alone; extract again"
        )


def example_order(count: int, seed: int, skip: int = 0) -> Iterator[int]:
    """An endless stream of example indices: a fresh permutation per epoch, fixed by the seed.

    ``skip`` fast-forwards past draws a resumed run already used, so it sees the same batches next.
    """
    generator = torch.Generator().manual_seed(seed)
    drawn = 0
    while True:
        permutation = torch.randperm(count, generator=generator).tolist()
        if drawn + count <= skip:
            drawn += count
            continue
        start = max(0, skip - drawn)
        drawn += count
        yield from permutation[start:]
