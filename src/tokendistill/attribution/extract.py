"""The attribution stage: teacher answers, token scores, top-k words, streamed into a rationale store."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from tokendistill.artefacts import RECORDS, TRAIN_IDS
from tokendistill.attribution.choices import score_choices
from tokendistill.attribution.methods import METHODS, MethodOptions
from tokendistill.attribution.teacher import Teacher
from tokendistill.attribution.words import (
    candidate_mask,
    merge_to_words,
    select_top_k,
    split_words,
    token_word_pairs,
)
from tokendistill.config import EXTRACT_EARLIER_DEFAULTS, ExtractConfig, fingerprint, write_config
from tokendistill.errors import UserError
from tokendistill.faults import crash_point
from tokendistill.folders import locked, refuse_overlap
from tokendistill.models import load_model, refuse_remote_code
from tokendistill.options import field_defaults
from tokendistill.rationales import RationaleStore, iter_rationales, read_valid_ids, teacher_problems
from tokendistill.runtime import process_state, seed_everything
from tokendistill.tasks import (
    Example,
    Task,
    chance_accuracy,
    get_task,
    iter_examples,
    length_buckets,
    majority_accuracy,
    materialized,
    split_size,
)

log = logging.getLogger(__name__)

# Settings that do not change a single record: a run that differs only in these resumes the same folder.
_NOT_IDENTITY = ("output", "overwrite", "device", "batch_size", "limit", "strict")


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 6)


def attribute_batch(
    teacher: Teacher, task: Task, examples: list[Example], config: ExtractConfig
) -> list[dict[str, Any]]:
    """One record per example of the batch."""
    teacher_answers: list[str | None]
    if config.target == "choice":
        # The teacher's answer is the candidate it scores highest; no generation needed.
        teacher_answers = list(score_choices(teacher, examples, task.name).best(config.choice_scoring))
    elif config.target == "gold" and not config.only_correct:
        # The gold answer is attributed and nothing reads the teacher's own: generating it would be most of the
        # run on a real teacher. Its accuracy is then unknown (teacher-eval measures it).
        teacher_answers = [None] * len(examples)
    else:
        teacher_answers = list(teacher.generate(examples, config.max_new_tokens))
    if config.target == "gold":
        answers = [example.target for example in examples]
        attributed = ["gold"] * len(examples)
    else:
        # An empty generated answer has no tokens to attribute: the gold target stands in, and the record says so.
        answers = [answer or example.target for answer, example in zip(teacher_answers, examples)]
        attributed = [config.target if answer else "gold" for answer in teacher_answers]
    batch = teacher.encode(examples, answers)
    words_per_example = [split_words(example) for example in examples]
    word_pairs = [token_word_pairs(offsets, words) for offsets, words in zip(batch.offsets, words_per_example)]
    method = METHODS.get(config.method)
    options = MethodOptions(ig_steps=config.ig_steps)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if teacher.device.type == "cuda" else nullcontext()
    )
    with autocast:
        token_scores = method(teacher, batch, word_pairs, options).float().cpu().numpy()
    records = []
    for row, (example, words) in enumerate(zip(examples, words_per_example)):
        merge = getattr(method, "merge", config.merge)  # a method may fix how its token scores merge
        scores = merge_to_words(token_scores[row], batch.offsets[row], words, merge)
        candidates = candidate_mask(words, config.drop_punctuation, config.drop_stopwords)
        if word_stage := getattr(method, "word_stage", None):  # a control that redraws the words (controls.py)
            scores = word_stage(scores, [word.role for word in words], candidates, example.id)
        chosen = select_top_k(scores, candidates, config.top_k, config.top_k_cap)
        correct = None if teacher_answers[row] is None else task.score(teacher_answers[row], example)
        withheld = config.only_correct and not correct
        if withheld:
            chosen = chosen[:0]
        records.append(
            {
                "id": example.id,
                "input": example.input,
                "target": example.target,
                "teacher_answer": teacher_answers[row],
                "teacher_correct": correct,
                "attributed_answer": answers[row],
                "attributed": attributed[row],
                "rationale": [words[index].text for index in chosen],
                "rationale_positions": chosen.tolist(),
                "words": [word.text for word in words],
                "word_spans": [[word.start, word.end] for word in words],
                "word_roles": [word.role for word in words],
                "word_scores": [_json_float(score) for score in scores],
                "truncated": bool(batch.truncated[row]),
            }
        )
        if withheld:
            records[-1]["rationale_withheld"] = True
        if evidence := task.evidence_words(example):
            records[-1]["gold_words"] = list(evidence)
    return records


def teacher_training_ids(teacher: str, task: str, split: str) -> set[str] | None:
    """Ids of this split's examples the teacher was fine-tuned on (by `train`), or None when unknown."""
    from tokendistill.student import find_record

    folder = Path(teacher)
    ids_path = folder / TRAIN_IDS
    record = find_record(folder) if ids_path.is_file() else None
    if record is None:
        return None
    if record.config.get("task") != task or record.config.get("split") != split:
        return set()
    return set(ids_path.read_text(encoding="utf-8").splitlines())


PARTS = "parts"


def part_folder(output: str, rank: int, world: int) -> Path:
    return Path(output) / PARTS / f"part-{rank}-of-{world}"


def parts_done(output: str) -> set[str]:
    """Ids already finished in any part (this run's, or an interrupted run's with another process count)."""
    done: set[str] = set()
    folder = Path(output) / PARTS
    if folder.is_dir():
        for part in folder.iterdir():
            done |= finished_ids(part / RECORDS)
    return done


def finished_ids(path: Path) -> set[str]:
    """Ids of the complete records of a records file (read only; a torn tail is ignored)."""
    return read_valid_ids(path)[0] if path.exists() else set()


def merge_parts(store: RationaleStore, config: ExtractConfig, examples: Callable[[], Iterator[Example]]) -> None:
    """Append the parts' records to the main store in batch order (as one process would have written them),
    skipping any already there, then remove the parts. Safe to interrupt: a rerun merges what is missing."""
    folder = Path(config.output) / PARTS
    if not folder.is_dir():
        return
    pending: dict[str, dict[str, Any]] = {}
    readers = [iter_rationales(part) for part in sorted(folder.iterdir()) if (part / RECORDS).exists()]
    for batch in length_buckets(examples(), config.batch_size):
        ids = [example.id for example in batch if example.id not in store.done]
        while readers and any(example_id not in pending for example_id in ids):
            # Each part holds its batches in order; read on until this batch's records are all in hand.
            progressed = False
            for reader in readers:
                record = next(reader, None)
                if record is not None:
                    pending[record["id"]] = record
                    progressed = True
            if not progressed:
                break
        store.append([pending.pop(example_id) for example_id in ids if example_id in pending])
    shutil.rmtree(folder)


def candidate_count(example: Example, config: ExtractConfig) -> int:
    return int(candidate_mask(split_words(example), config.drop_punctuation, config.drop_stopwords).sum())


def check_top_k(top_k: float, examples: Sequence[Example], config: ExtractConfig) -> None:
    """Refuse a k that keeps every word of every input (no selection at all), judged on the first examples."""
    if top_k <= 0:
        raise UserError("--top-k must be positive: a count of words, or a fraction below 1")
    if top_k < 1:
        return
    longest = max(candidate_count(example, config) for example in examples)
    if top_k >= longest:
        raise UserError(
            f"--top-k {top_k:g} keeps every word of every input (the longest has {longest} candidate words); "
            "choose a smaller count or a fraction such as 0.2"
        )


def extract(config: ExtractConfig, progress: bool = True) -> Path:
    """Run the attribution stage; returns the rationale folder. Resumes a folder that holds this config.

    Batches are fixed by the examples alone (length buckets), never by what an earlier run finished: a
    resumed run recomputes an interrupted batch whole, with the same padding as an uninterrupted run, and so
    writes the same records to the last digit.
    """
    config = materialized(config)  # in-memory rows (Python API) become a file named by their content
    METHODS.get(config.method)  # fail on an unknown method before any model is loaded
    refuse_remote_code(config.teacher, config.trust_remote_code)  # the teacher loads only once the folder is open: refused before that
    refuse_overlap(config.output, {"teacher": config.teacher, "data": config.data})
    state = process_state(config.device)
    # The main process holds the folder for the whole run: a second run into it is refused, never interleaved.
    with locked(config.output) if state.is_main_process else nullcontext():
        return _extract(config, state, progress)


@dataclass
class _Extraction:
    """One extraction's parts, as the recipe's steps hand them on."""

    config: ExtractConfig
    state: Any
    task: Task
    identity: dict[str, Any]
    loaded: list[Teacher] = field(default_factory=list)
    store: RationaleStore | None = None
    wanted: set[str] = field(default_factory=set)

    def examples(self) -> Iterator[Example]:
        config = self.config
        return iter_examples(self.task, config.split, config.data, config.limit, config.seed, config.test_fraction,
                             config.valid_fraction)

    def teacher(self) -> Teacher:
        """The teacher, loaded once, on first need (or before --overwrite clears the folder)."""
        if not self.loaded:
            config = self.config
            self.loaded.append(Teacher(load_model(config.teacher, device=config.device, offsets=True,
                                                  trust_remote_code=config.trust_remote_code),
                                       config.max_input_length, config.prompt_suffix, config.chat_template))
        return self.loaded[0]


def _extract(config: ExtractConfig, state: Any, progress: bool) -> Path:
    """The recipe: check the inputs, open the folder, attribute what is not done, then count and finish."""
    task = get_task(config.task, input_column=config.input_column, label_column=config.label_column,
                    free_text=config.free_text)
    identity = {key: value for key, value in config.identity_values().items() if key not in _NOT_IDENTITY}
    # The teacher's weights, not only its path: a teacher retrained into the same folder makes other records.
    identity["teacher_fingerprint"] = fingerprint(config.teacher)
    run = _Extraction(config, state, task, identity)
    _check_inputs(run)
    done, writer = _open(run)
    _attribute(run, done, writer, progress)
    state.wait_for_everyone()
    if not state.is_main_process:
        return Path(config.output)
    merge_parts(run.store, config, run.examples)  # type: ignore[arg-type]
    counts, targets = _count(config, run.wanted)
    _finish(run, counts, targets)
    return Path(config.output)


def _check_inputs(run: _Extraction) -> None:
    first = list(itertools.islice(run.examples(), 4096))
    if run.config.target == "choice" and not all(example.choices for example in first):
        raise UserError(f"task {run.task.name!r} has no closed set of answers; use --target teacher or --target gold")
    check_top_k(run.config.top_k, first, run.config)


def _open(run: _Extraction) -> tuple[set[str], RationaleStore]:
    """The folder opened (by its main process; each process's own part under several), and the ids done."""
    config, state = run.config, run.state
    if state.is_main_process:
        run.store = RationaleStore.open(config.output, run.identity, config.overwrite,
                                        {**field_defaults(ExtractConfig), **EXTRACT_EARLIER_DEFAULTS},
                                        before_clear=run.teacher)
        run.store.record_threads(torch.get_num_threads())
        write_config(config, Path(config.output))
    state.wait_for_everyone()
    main_done = run.store.done if run.store is not None else finished_ids(Path(config.output) / RECORDS)
    # With several processes each writes its own part (resumed on its own), merged in batch order at the end.
    rank, world = state.process_index, state.num_processes
    own_part = RationaleStore.open(part_folder(config.output, rank, world), run.identity, True) if world > 1 else None
    done = set(main_done) | parts_done(config.output)
    if done:
        log.info("resuming: %d examples already done", len(done))
    return done, own_part or run.store  # type: ignore[return-value]


def _attribute(run: _Extraction, done: set[str], writer: RationaleStore, progress: bool) -> None:
    """Every batch of this process that is not done, attributed and appended."""
    config, rank, world = run.config, run.state.process_index, run.state.num_processes
    seen_by_teacher = teacher_training_ids(config.teacher, run.task.name, config.split)
    seed_everything(config.seed)
    bar = None
    # The bar's total where the split's size is known without reading it (one process: each takes every world-th
    # batch, a share a bar need not guess).
    size = split_size(run.task, config.split, config.data, config.limit, config.seed, config.test_fraction,
                      config.valid_fraction) \
        if world == 1 else None
    try:
        for index, batch_examples in enumerate(length_buckets(run.examples(), config.batch_size)):
            run.wanted.update(example.id for example in batch_examples)
            if index % world != rank or all(example.id in done for example in batch_examples):
                continue
            if bar is None:
                bar = tqdm(desc=f"extract {config.method}" + (f" [{rank}/{world}]" if world > 1 else ""),
                           disable=not progress, unit="ex", total=None if size is None else max(0, size - len(done)))
            records = attribute_batch(run.teacher(), run.task, batch_examples, config)
            for record, example in zip(records, batch_examples):
                record["teacher_trained_on"] = None if seen_by_teacher is None else record["id"] in seen_by_teacher
                record["candidate_words"] = candidate_count(example, config)
            new = [record for record in records if record["id"] not in done]
            writer.append(new)
            done.update(record["id"] for record in new)
            crash_point("extract.after_batch")
            bar.update(len(new))
    finally:  # closed on errors too, so that an error message starts a line of its own
        if bar is not None:
            bar.close()


def _count(config: ExtractConfig, wanted: set[str]) -> tuple[Counter[str], list[str]]:
    """What the records of this run's examples hold: right, judged, fallbacks, truncated, trained on, short."""
    counts: Counter[str] = Counter()
    targets: list[str] = []
    for record in iter_rationales(config.output):
        if record["id"] in wanted:
            counts["examples"] += 1
            counts["correct"] += bool(record["teacher_correct"])
            counts["judged"] += record["teacher_correct"] is not None
            counts["fallback"] += record.get("attributed") == "gold" and config.target != "gold"
            targets.append(str(record.get("target", "")))
            counts["truncated"] += bool(record["truncated"])
            counts["trained_on"] += bool(record.get("teacher_trained_on"))
            counts["short"] += config.top_k >= 1 and record.get("candidate_words", config.top_k) < config.top_k
    if counts["examples"] < len(wanted):
        raise UserError(
            f"{len(wanted) - counts['examples']} of {len(wanted)} examples have no record in {config.output}; "
            "run the same command again to finish them"
        )
    return counts, targets


def _finish(run: _Extraction, counts: Counter[str], targets: list[str]) -> None:
    """The manifest's summary written (the folder complete), then what the user should know said."""
    config = run.config
    if counts["short"]:
        log.info("%d inputs have fewer than %g candidate words and keep all of them", counts["short"], config.top_k)
    if counts["truncated"]:
        log.warning("%d of %d inputs were longer than %d teacher tokens and were truncated (counted in the "
                    "manifest); raise --max-input-length to keep them whole", counts["truncated"],
                    counts["examples"], config.max_input_length)
    accuracy = counts["correct"] / counts["judged"] if counts["judged"] else None
    chance = chance_accuracy(run.task, list(itertools.islice(run.examples(), 1)))
    majority = majority_accuracy(targets)
    if accuracy is None:
        log.info("the teacher's accuracy is unknown: --target gold attributes the gold answer without generating "
                 "the teacher's own; `tokendistill teacher-eval` measures it")
    run.store.finish({  # type: ignore[union-attr]
        "examples": counts["examples"], "teacher": config.teacher, "teacher_accuracy": accuracy,
        "chance_accuracy": chance, "majority_accuracy": majority, "gold_fallbacks": counts["fallback"],
        "truncated_inputs": counts["truncated"], "inputs_shorter_than_k": counts["short"],
        "teacher_trained_on": counts["trained_on"], "seed": config.seed,
        # CPU scores are bit-identical only at the same thread count (docs/reliability.md).
        "threads": torch.get_num_threads(), "config": dataclasses.asdict(config),
    })
    for problem in teacher_problems(accuracy, chance, majority, counts["fallback"], counts["examples"]):
        if config.strict:
            raise UserError(f"{problem} (--strict; the records are kept in {config.output})")
        log.warning("%s", problem)
    if config.only_correct and not counts["correct"]:
        raise UserError(
            f"--only-correct kept no words: the teacher was right on none of the {counts['examples']} examples "
            f"(the records are kept in {config.output}); fine-tune the teacher first, or drop --only-correct"
        )
