"""`tokendistill faithfulness`: do the selected words carry what the teacher relies on?

Per example, with the teacher's attributed answer a and its top-k words S (DeYoung et al. 2020, ERASER):
comprehensiveness = log p(a | input) - log p(a | input without S)   (higher: S was needed)
sufficiency       = log p(a | input) - log p(a | only S)            (lower: S was enough)
Words are removed by masking their tokens out of attention, as occlusion does, so the input length and
positions stay as they were. Each score is shown beside the same score for k random candidate words of the
same example, which is what an uninformative method would get.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tokendistill.artefacts import FAITHFULNESS
from tokendistill.attribution.teacher import Teacher
from tokendistill.attribution.words import split_words, token_word_pairs
from tokendistill.config import device_problem
from tokendistill.errors import UserError
from tokendistill.models import load_model
from tokendistill.options import option
from tokendistill.rationales import extraction_settings, iter_rationales, write_json_atomic
from tokendistill.selection import is_candidate
from tokendistill.tasks import get_task, load_examples
from tokendistill.tasks.base import TEMPLATE


@dataclass(kw_only=True)
class FaithfulnessConfig:
    rationales: list[str] = option(dataclasses.MISSING, "rationale folder(s) written by `extract`", positional=True)
    teacher: str | None = option(None, "teacher to measure with (default: the one that made the rationales)")
    output: str | None = option(None, "folder for faithfulness.json (default: the first rationale folder)")
    limit: int | None = option(200, "examples per folder", minimum=1)
    batch_size: int = option(16, "examples per batch", minimum=1)
    seed: int = option(0, "seed of the random-word baseline", minimum=0)
    device: str = option("auto", "auto, cpu or cuda", check=device_problem)


def masks_for(batch_mask: torch.Tensor, pairs: tuple[np.ndarray, np.ndarray], words: list[Any],
              chosen: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention masks (T,) without the chosen words, and with only them (plus template and special tokens)."""
    tokens, word_index = pairs
    chosen_set = set(chosen)
    without, only = batch_mask.clone(), batch_mask.clone()
    for token, word in zip(tokens.tolist(), word_index.tolist()):
        if word in chosen_set:
            without[token] = 0
        elif words[word].role != TEMPLATE:
            only[token] = 0
    return without, only


@torch.no_grad()
def measure_folder(folder: str, config: FaithfulnessConfig, rng: random.Random) -> dict[str, Any]:
    extracted = extraction_settings(folder)
    task = get_task(extracted.task, input_column=extracted.input_column, label_column=extracted.label_column,
                    free_text=extracted.free_text)
    examples = {e.id: e for e in load_examples(task, extracted.split, extracted.data, extracted.limit,
                                               extracted.seed, extracted.test_fraction,
                                               extracted.valid_fraction)}
    records = [r for r in iter_rationales(folder) if r["id"] in examples and r.get("rationale_positions")]
    records = records[: config.limit]
    if not records:
        raise UserError(f"{folder} has no records with rationale words to measure")
    teacher_name = config.teacher or extracted.teacher
    if not teacher_name:
        raise UserError(f"{folder} does not name its teacher; pass --teacher MODEL")
    teacher = Teacher(load_model(teacher_name, device=config.device, offsets=True), extracted.max_input_length,
                      extracted.prompt_suffix, extracted.chat_template)
    scores: dict[str, list[float]] = {name: [] for name in (
        "comprehensiveness/rationale", "comprehensiveness/random", "sufficiency/rationale", "sufficiency/random")}
    for start in range(0, len(records), config.batch_size):
        chunk = records[start : start + config.batch_size]
        chunk_examples = [examples[r["id"]] for r in chunk]
        batch = teacher.encode(chunk_examples, [r["attributed_answer"] for r in chunk])
        embeds = teacher.embed(batch.input_ids)
        base = teacher.answer_log_prob(embeds, batch.attention_mask, batch)
        masks = {name: [] for name in scores}
        for row, (record, example) in enumerate(zip(chunk, chunk_examples)):
            words = split_words(example)
            pairs = token_word_pairs(batch.offsets[row], words)
            chosen = record["rationale_positions"]
            candidates = [i for i, w in enumerate(words) if is_candidate(w.text, w.role)]
            random_words = rng.sample(candidates, min(len(chosen), len(candidates)))
            for kind, selection in (("rationale", chosen), ("random", random_words)):
                without, only = masks_for(batch.attention_mask[row], pairs, words, selection)
                masks[f"comprehensiveness/{kind}"].append(without)
                masks[f"sufficiency/{kind}"].append(only)
        for name, rows in masks.items():
            changed = teacher.answer_log_prob(embeds, torch.stack(rows), batch)
            scores[name] += (base - changed).float().cpu().tolist()
    summary = {name: float(np.mean(values)) for name, values in scores.items()}
    return {
        "folder": folder, "task": extracted.task, "method": extracted.method, "teacher": teacher_name,
        "top_k": extracted.top_k, "examples": len(records), **summary,
    }


def faithfulness(config: FaithfulnessConfig) -> dict[str, Any]:
    rng = random.Random(config.seed)
    results = [measure_folder(folder, config, rng) for folder in config.rationales]
    output = Path(config.output or config.rationales[0]) / "analysis"
    write_json_atomic(output / FAITHFULNESS, {"results": results})
    return {"results": results, "output": str(output)}


def format_table(results: list[dict[str, Any]]) -> str:
    lines = ["| task | method | k | examples | comprehensiveness: top-k | random-k | sufficiency: top-k | random-k |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['task']} | {r['method']} | {r['top_k']:g} | {r['examples']} | "
            f"{r['comprehensiveness/rationale']:.3f} | {r['comprehensiveness/random']:.3f} | "
            f"{r['sufficiency/rationale']:.3f} | {r['sufficiency/random']:.3f} |"
        )
    lines.append("(nats of the answer's log-probability; comprehensiveness higher and sufficiency lower = more faithful)")
    return "\n".join(lines)
