"""Multitask training throughput: tokendistill's multitask step against DSS's two-pass step, same everything.

Distilling step-by-step's `TaskPrefixTrainer.compute_loss` runs the model twice per batch, once on the
`predict:` rows (targets: labels) and once on the `explain:` rows (targets: rationales), each padded on its
own, and returns alpha * label loss + (1 - alpha) * rationale loss, with each loss the mean over its
rows' tokens (HF's default). The re-implementation below does exactly that with the same model, optimizer,
batches and steps. tokendistill's step is the trainer's own code (`forward_batches`, `encode_rows`,
`pass_loss`): the step's rows go through the model in passes of similar length, only the
positions with a target go through the output layer, and per-group mean losses are weighted (the same
quantity, checked at the start). It runs twice, as shipped and with `--batch-by-length false` (one pass for
all rows, as before), and with `--task-marker decoder` (the encoder reads each input once for both rows; a
different model, so its loss is not checked against DSS's). All alternate in one process; the result is
examples/s and the ratios. Written to
bench/results/train_throughput-<model>-<rationale>.json and .md.

    python bench/train_throughput.py --quick                   # t5-small-shaped random T5, teacher words
    python bench/train_throughput.py --rationale llm           # DSS's long LLM rationales as explain targets
    python bench/train_throughput.py --model ~/.cache/offline-models/minilm-seq2seq --task esnli --data DIR
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch

from provenance import provenance, provenance_line  # bench/: where a figure was measured
from tokendistill.models import load_model
from tokendistill.tasks.synthetic import DISTRACTORS
from tokendistill.training.batching import PASS_COST, forward_batches
from tokendistill.training.data import encode_rows, group_token_totals, pass_loss
from tokendistill.training.modes import (
    EXPLAIN_PREFIX,
    MODES,
    PREDICT_PREFIX,
    TrainingRow,
    marker_after_input,
    marker_to_decoder,
)

RESULTS = Path(__file__).parent / "results"


def synthetic_rows(count: int, rationale: str, seed: int = 0) -> list[list[TrainingRow]]:
    """CQA-sized inputs (40-80 words); rationales of 10 words (teacher tokens) or 30-60 words (LLM)."""
    rng = random.Random(seed)
    examples = []
    for _ in range(count):
        text = " ".join(rng.choice(DISTRACTORS) for _ in range(rng.randint(40, 80)))
        label = rng.choice(DISTRACTORS)
        length = 10 if rationale == "tokens" else rng.randint(30, 60)
        explanation = " ".join(rng.choice(DISTRACTORS) for _ in range(length))
        examples.append([TrainingRow(PREDICT_PREFIX + text, label, "label"),
                         TrainingRow(EXPLAIN_PREFIX + text, explanation, "rationale")])
    return examples


SEQ2SEQ = {"value": True}  # set from the model in main(): the same contenders serve decoder-only students


def tokendistill_step(model, tokenizer, rows: list[TrainingRow], alpha: float, by_length: bool = True,
                      pass_cost: float = PASS_COST["cpu"]) -> float:
    """The trainer's step for one process without accumulation; backward included, returns the loss."""
    seq2seq = SEQ2SEQ["value"]
    batches = forward_batches(tokenizer, rows, 1, by_length, pass_cost)
    encoded = [encode_rows(tokenizer, batch, seq2seq, 512, 128) for batch in batches]
    totals = group_token_totals(encoded, seq2seq) if len(encoded) > 1 else None
    value = 0.0
    for part in encoded:
        loss = pass_loss(model, part, torch.device("cpu"), seq2seq, alpha, totals)[0]
        if torch.is_grad_enabled():
            loss.backward()
        value += float(loss.detach())
    return value


def decoder_marker_step(model, tokenizer, rows: list[TrainingRow], alpha: float) -> float:
    """--task-marker decoder: the encoder reads each input once for both rows (another objective)."""
    return tokendistill_step(model, tokenizer, [marker_to_decoder(row) for row in rows], alpha)


def one_pass_step(model, tokenizer, rows: list[TrainingRow], alpha: float) -> float:
    return tokendistill_step(model, tokenizer, rows, alpha, by_length=False)


def shared_prompt_step(model, tokenizer, rows: list[TrainingRow], alpha: float) -> float:
    """--task-marker shared_prompt (decoder students): an example's rows in one sequence over its input."""
    return tokendistill_step(model, tokenizer, [marker_after_input(row) for row in rows], alpha)


def shared_prompt_reference(model, tokenizer, rows: list[TrainingRow], alpha: float) -> float:
    """The shared-prompt objective as two rows per example: what the packed step must equal."""
    return two_pass_step(model, tokenizer, [marker_after_input(row, shared_prompt=False) for row in rows], alpha)


def two_pass_step(model, tokenizer, rows: list[TrainingRow], alpha: float) -> float:
    """DSS: model(**inputs['pred']) and model(**inputs['expl']), each padded on its own, HF's mean loss."""
    if not SEQ2SEQ["value"]:  # a decoder student: each group one pass of its own, its mean token loss
        losses = [pass_loss(model, encode_rows(tokenizer, [r for r in rows if r.group == group], False, 512, 128),
                            torch.device("cpu"), False, 0.5)[0] for group in ("label", "rationale")]
        loss = alpha * losses[0] + (1 - alpha) * losses[1]
        if torch.is_grad_enabled():
            loss.backward()
        return float(loss.detach())
    losses = []
    for group in ("label", "rationale"):
        part = [row for row in rows if row.group == group]
        sources = tokenizer([r.source for r in part], padding=True, truncation=True, max_length=512,
                            return_tensors="pt")
        targets = tokenizer([r.target for r in part], padding=True, truncation=True, max_length=128,
                            return_tensors="pt")
        labels = targets["input_ids"].masked_fill(targets["attention_mask"] == 0, -100)
        losses.append(model(input_ids=sources["input_ids"], attention_mask=sources["attention_mask"],
                            labels=labels).loss)
    loss = alpha * losses[0] + (1 - alpha) * losses[1]
    if torch.is_grad_enabled():
        loss.backward()
    return float(loss.detach())


def task_rows(task_name: str, data: str, split: str, count: int, rationales: str | None) -> list[list[TrainingRow]]:
    """Real inputs with the teacher's words from an `extract` folder as explain targets, or else with their DSS
    LLM rationales (the longest rationales a user trains on)."""
    from tokendistill.rationales import iter_rationales
    from tokendistill.tasks import get_task, load_examples
    from tokendistill.training.llm_rationales import load_llm_rationales

    examples = load_examples(get_task(task_name), split, data, count, 0)
    if rationales and rationales.startswith("random:"):  # k input words: a teacher's top-k, as far as cost goes
        rng, k = random.Random(0), int(rationales.split(":")[1])
        picked = [sorted(rng.sample(range(len(e.input.split())), min(k, len(e.input.split())))) for e in examples]
        return [MODES.get("multitask").rows(e, {"rationale": [e.input.split()[i] for i in chosen]})
                for e, chosen in zip(examples, picked)]
    if rationales:
        words = {record["id"]: record for record in iter_rationales(rationales)}
        return [MODES.get("multitask").rows(example, words[example.id]) for example in examples]
    texts = load_llm_rationales(data, task_name, split)
    return [MODES.get("dss").rows(example, {"llm_rationale": texts[example.meta["row"]]}) for example in examples]


CONTENDERS = {
    "tokendistill": tokendistill_step,
    "tokendistill, one pass (--batch-by-length false)": one_pass_step,
    "DSS (two passes)": two_pass_step,
    "tokendistill --task-marker decoder (not the same model)": decoder_marker_step,
}
DSS = "DSS (two passes)"
OTHER_OBJECTIVE = {"tokendistill --task-marker decoder (not the same model)"}
DECODER_CONTENDERS = {
    "tokendistill": tokendistill_step,
    "DSS (two passes)": two_pass_step,
    "tokendistill --task-marker shared_prompt (not the same model)": shared_prompt_step,
}
SHARED = "tokendistill --task-marker shared_prompt (not the same model)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a seq2seq model folder (default: a t5-small-shaped random T5)")
    parser.add_argument("--rationale", choices=["tokens", "llm"], default="tokens",
                        help="synthetic data: 10-word (teacher) or 30-60-word (LLM) explain targets")
    parser.add_argument("--task", help="real inputs and their DSS LLM rationales instead (cqa, svamp, esnli, anli1)")
    parser.add_argument("--data", help="with --task: the DSS data folder")
    parser.add_argument("--split", default="test", help="with --task: which split's inputs")
    parser.add_argument("--rationales", help="with --task: an extract folder, whose words replace the LLM rationales, "
                        "or random:K for K random input words (a top-K rationale's length)")
    parser.add_argument("--batch-size", type=int, default=16, help="examples per step (2 rows each)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="6 steps")
    parser.add_argument("--pass-costs", default="", help="comma-separated: also race tokendistill with these "
                        "costs per forward pass (in padded tokens) for cutting the step by length")
    arguments = parser.parse_args()
    for cost in filter(None, arguments.pass_costs.split(",")):
        CONTENDERS[f"tokendistill, pass cost {cost}"] = functools.partial(tokendistill_step, pass_cost=float(cost))
    torch.set_num_threads(arguments.threads)
    steps = 6 if arguments.quick else arguments.steps
    with tempfile.TemporaryDirectory() as scratch:
        if arguments.model:
            folder, model_name = arguments.model, Path(arguments.model).name
        else:
            from attribution_speed import save_random_t5

            folder, model_name = save_random_t5(Path(scratch) / "t5"), "t5-small-shaped-random"
        loaded = load_model(folder, device="cpu")
    model, tokenizer = loaded.model.eval(), loaded.tokenizer
    SEQ2SEQ["value"] = loaded.is_encoder_decoder
    if not loaded.is_encoder_decoder:
        CONTENDERS.clear()
        CONTENDERS.update(DECODER_CONTENDERS)
        OTHER_OBJECTIVE.add(SHARED)
    count = arguments.batch_size * (steps + 1)
    if arguments.task:
        examples = task_rows(arguments.task, arguments.data, arguments.split, count, arguments.rationales)
        kind = "llm" if not arguments.rationales else (
            f"top{arguments.rationales.split(':')[1]}-length-words" if arguments.rationales.startswith("random:")
            else "teacher-words")
        rationale = f"{arguments.task}-{kind}"
    else:
        examples, rationale = synthetic_rows(count, arguments.rationale), arguments.rationale
    batches = [[row for example in examples[i : i + arguments.batch_size] for row in example]
               for i in range(0, len(examples), arguments.batch_size)]
    with torch.no_grad():  # the same objective, or the race means nothing
        reference = two_pass_step(model, tokenizer, batches[0], 0.5)
        for name, function in CONTENDERS.items():
            if name in OTHER_OBJECTIVE:
                continue
            got = function(model, tokenizer, batches[0], 0.5)
            assert abs(got - reference) <= 1e-4 * abs(reference) + 1e-5, (name, got, reference)
        if SHARED in CONTENDERS:  # another objective: checked against its own two-row form
            got = shared_prompt_step(model, tokenizer, batches[0], 0.5)
            own = shared_prompt_reference(model, tokenizer, batches[0], 0.5)
            assert abs(got - own) <= 1e-4 * abs(own) + 1e-5, (SHARED, got, own)
    model.train()  # dropout on, as in training; every step draws it alike
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)

    def step(function, rows: list[TrainingRow]) -> float:
        started = time.perf_counter()
        function(model, tokenizer, rows, 0.5)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - started

    for function in CONTENDERS.values():  # warm-up
        step(function, batches[0])
    times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for index in range(1, steps + 1):  # round-robin, so that machine noise hits all alike
        for name, function in CONTENDERS.items():
            times[name].append(step(function, batches[index]))
    medians = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "model": model_name,
        "rationale": rationale,
        "batch_examples": arguments.batch_size,
        "steps": steps,
        "threads": arguments.threads,
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, torch {torch.__version__}",
        "examples_per_second": {name: arguments.batch_size / value for name, value in medians.items()},
        "tokendistill_pass_cost": PASS_COST["cpu"],
        "speedup_over_dss": {name: medians[DSS] / value for name, value in medians.items() if name != DSS},
    }
    RESULTS.mkdir(exist_ok=True)
    stem = f"train_throughput-{model_name}-{rationale}"
    measured = provenance()
    (RESULTS / f"{stem}.json").write_text(json.dumps({**result, "measured": measured}, indent=2))
    lines = [f"# Multitask training throughput: {model_name}, {rationale} rationales", "",
             f"{result['machine']}; batch {arguments.batch_size} examples (x2 rows), median of {steps} steps, "
             "round-robin.", "", "| trainer | examples/s | speed-up over DSS |", "|---|---|---|"]
    lines += [f"| {name} | {value:.2f} | {result['speedup_over_dss'].get(name, 1.0):.2f}x |"
              for name, value in result["examples_per_second"].items()]
    (RESULTS / f"{stem}.md").write_text("\n".join([*lines, "", provenance_line(measured)]) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
