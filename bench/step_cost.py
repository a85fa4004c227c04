"""The budget of a real comparison: seconds per training step and per evaluated test row, measured here.

Before a grid is designed, its cost is measured: one optimizer step of the trainer's own code
(`forward_batches`, `encode_rows`, `pass_loss`, AdamW) on a decoder student, for the rows of each mode
(`standard`: label rows; `multitask`: label rows plus k-word explain rows; `dss`: label rows plus DSS's LLM
rationales), round-robin so that machine noise hits all alike; and evaluation by generation and by choice
scoring (`evaluation.predict`). The explain rows of `multitask` hold k random input words: the step's cost
depends on their length, not on which words they are. Written to bench/results/step_cost-<model>-<task>.json
and .md; docs/results.md turns the figures into the grid's budget (cells x steps x seconds per step).

    python bench/step_cost.py --model ~/.cache/offline-models/smollm2-135m-instruct --task esnli \
        --data ../shared/data/dss --split valid
    # align (and kd) against standard, through the trainer's step, on a rationale folder's examples:
    python bench/step_cost.py --model ~/.cache/offline-models/smollm2-135m-instruct --task esnli \
        --data ../shared/data/dss --split valid --rationales RATIONALES [--teacher TEACHER]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path

import torch

from provenance import provenance, provenance_line  # bench/: where a figure was measured
from tokendistill.models import load_model
from tokendistill.student import StudentPrompt
from tokendistill.tasks import get_task, load_examples
from tokendistill.training.answers import predict
from tokendistill.training.batching import PASS_COST, forward_batches
from tokendistill.training.data import encode_rows, group_token_totals, pass_loss
from tokendistill.training.llm_rationales import load_llm_rationales
from tokendistill.training.modes import MODES, TrainingRow

RESULTS = Path(__file__).parent / "results"


def mode_rows(task_name: str, data: str, split: str, count: int, k: int) -> dict[str, list[list[TrainingRow]]]:
    examples = load_examples(get_task(task_name), split, data, count, 0)
    rng = random.Random(0)
    texts = load_llm_rationales(data, task_name, split)
    rows: dict[str, list[list[TrainingRow]]] = {"standard": [], "multitask": [], "dss": []}
    for example in examples:
        words = example.input.split()
        picked = sorted(rng.sample(range(len(words)), min(k, len(words))))
        rows["standard"].append(MODES.get("standard").rows(example, None))
        rows["multitask"].append(MODES.get("multitask").rows(example, {"rationale": [words[i] for i in picked]}))
        rows["dss"].append(MODES.get("dss").rows(example, {"llm_rationale": texts[example.meta["row"]]}))
    return rows


def train_step(model, tokenizer, optimizer, rows: list[TrainingRow], is_encoder_decoder: bool) -> float:
    started = time.perf_counter()
    batches = forward_batches(tokenizer, rows, 1, True, PASS_COST["cpu"])
    encoded = [encode_rows(tokenizer, batch, is_encoder_decoder, 128, 64) for batch in batches]
    totals = group_token_totals(encoded, is_encoder_decoder) if len(encoded) > 1 else None
    for part in encoded:
        loss = pass_loss(model, part, torch.device("cpu"), is_encoder_decoder, 0.5, totals)[0]
        loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - started


def signal_costs(arguments: argparse.Namespace) -> None:
    """Seconds per optimizer step of modes that add a loss term of their own (align; kd with --teacher) against
    `standard`, through the trainer's own step (training.step.step_loss, the mode's signal included), on the
    examples of a real rationale folder, round-robin. Written to bench/results/step_cost_signals-<model>-<task>.*"""
    from accelerate import Accelerator

    from tokendistill.config import TrainConfig
    from tokendistill.rationales import load_rationales
    from tokendistill.training.step import step_loss

    loaded = load_model(arguments.model, device="cpu", offsets=True)
    records = load_rationales(arguments.rationales)
    examples = [e for e in load_examples(get_task(arguments.task), arguments.split, arguments.data,
                                         arguments.batch_size * (arguments.steps + 1), 0) if e.id in records]
    modes = ["standard", "align"] + (["kd"] if arguments.teacher else [])
    accelerator, device = Accelerator(cpu=True), torch.device("cpu")
    optimizer = torch.optim.AdamW(loaded.model.parameters(), lr=1e-6)  # tiny: the weights barely move while timed
    loaded.model.train()
    setups = {}
    for mode in modes:
        config = TrainConfig(task=arguments.task, student=arguments.model, output="unused", mode=mode,
                             teacher=arguments.teacher, max_input_length=128, max_target_length=64)
        signal = MODES.get(mode).signal(config, loaded.tokenizer, device)
        rows = [MODES.get(mode).rows(e, records[e.id]) for e in examples]
        setups[mode] = (config, signal, rows)
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    for index in range(arguments.steps + 1):
        for mode, (config, signal, rows) in setups.items():
            batch = [row for example_rows in rows[index * arguments.batch_size:(index + 1) * arguments.batch_size]
                     for row in example_rows]
            started = time.perf_counter()
            step_loss(config, loaded, loaded.model, accelerator, signal, device, batch)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if index:  # the first round warms up
                times[mode].append(time.perf_counter() - started)
    medians = {mode: statistics.median(values) for mode, values in times.items()}
    result = {"model": Path(arguments.model).name, "task": arguments.task, "rationales": str(arguments.rationales),
              "batch_examples": arguments.batch_size, "steps_timed": arguments.steps, "threads": arguments.threads,
              "load_average": os.getloadavg(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
              "step_seconds_median": medians, "step_seconds_all": times,
              "over_standard": {mode: value / medians["standard"] for mode, value in medians.items()}}
    RESULTS.mkdir(exist_ok=True)
    stem = f"step_cost_signals-{result['model']}-{arguments.task}"
    measured = provenance()
    (RESULTS / f"{stem}.json").write_text(json.dumps({**result, "measured": measured}, indent=2))
    lines = [f"# Step cost of modes with a loss term of their own: {result['model']}, {arguments.task}", "",
             f"{result['machine']}, {arguments.threads} threads, load average {result['load_average'][0]:.2f}; "
             f"steps of {arguments.batch_size} examples through training.step.step_loss, median of "
             f"{arguments.steps}, round-robin.", "", "| mode | s / step | over standard |", "|---|---|---|"]
    lines += [f"| {mode} | {value:.2f} | {value / medians['standard']:.2f}x |" for mode, value in medians.items()]
    (RESULTS / f"{stem}.md").write_text("\n".join([*lines, "", provenance_line(measured)]) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--task", default="esnli")
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="valid")
    parser.add_argument("--test-split", default="test")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--eval-rows", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rationales", help="a rationale folder of this task and split: time align (and kd with "
                                            "--teacher) against standard through the trainer's step instead")
    parser.add_argument("--teacher", help="with --rationales: the KD teacher, to time kd too")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    if arguments.rationales:
        signal_costs(arguments)
        return
    loaded = load_model(arguments.model, device="cpu", offsets=True)
    model, tokenizer = loaded.model, loaded.tokenizer
    count = arguments.batch_size * (arguments.steps + 1)
    rows = mode_rows(arguments.task, arguments.data, arguments.split, count, arguments.top_k)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)  # tiny: the weights barely move while timed
    model.train()
    times: dict[str, list[float]] = {mode: [] for mode in rows}
    for index in range(arguments.steps + 1):
        for mode, examples in rows.items():
            batch = [row for example in examples[index * arguments.batch_size:(index + 1) * arguments.batch_size]
                     for row in example]
            seconds = train_step(model, tokenizer, optimizer, batch, loaded.is_encoder_decoder)
            if index:  # the first round warms up
                times[mode].append(seconds)
    task = get_task(arguments.task)
    test = load_examples(task, arguments.test_split, arguments.data, arguments.eval_rows, 0)
    evaluation = {}
    for answer in ("generation", "choice_sum"):
        if answer != "generation" and not all(example.choices for example in test):
            continue
        started = time.perf_counter()
        predict(loaded, task, test, StudentPrompt(is_encoder_decoder=loaded.is_encoder_decoder), 64, 128, 8,
                answer=answer)
        evaluation[answer] = (time.perf_counter() - started) / len(test)
    step_seconds = {mode: statistics.median(values) for mode, values in times.items()}
    result = {
        "model": Path(arguments.model).name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "task": arguments.task,
        "batch_examples": arguments.batch_size,
        "top_k": arguments.top_k,
        "steps_timed": arguments.steps,
        "threads": arguments.threads,
        "load_average": os.getloadavg(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "step_seconds_median": step_seconds,
        "step_seconds_all": times,
        "multitask_over_standard": step_seconds["multitask"] / step_seconds["standard"],
        "eval_seconds_per_row": evaluation,
    }
    RESULTS.mkdir(exist_ok=True)
    stem = f"step_cost-{result['model']}-{arguments.task}"
    measured = provenance()
    (RESULTS / f"{stem}.json").write_text(json.dumps({**result, "measured": measured}, indent=2))
    lines = [f"# Step cost: {result['model']} ({result['parameters'] / 1e6:.0f}M), {arguments.task}", "",
             f"{result['machine']}, {arguments.threads} threads, load average {result['load_average'][0]:.2f}; "
             f"steps of {arguments.batch_size} examples, median of {arguments.steps}.", "",
             "| mode | s / step |", "|---|---|"]
    lines += [f"| {mode} | {value:.2f} |" for mode, value in step_seconds.items()]
    lines += ["", "| evaluation | s / test row |", "|---|---|"]
    lines += [f"| {answer} | {value:.3f} |" for answer, value in evaluation.items()]
    (RESULTS / f"{stem}.md").write_text("\n".join([*lines, "", provenance_line(measured)]) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
