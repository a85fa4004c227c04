"""Multitask training throughput: tokendistill's one-pass step against DSS's two-pass step, same everything.

Distilling step-by-step's `TaskPrefixTrainer.compute_loss` runs the model twice per batch, once on the
`predict:` rows (targets: labels) and once on the `explain:` rows (targets: rationales), each padded on its
own, and returns alpha * label loss + (1 - alpha) * rationale loss, with each loss the mean over its
rows' tokens (HF's default). The re-implementation below does exactly that with the same model, optimizer,
batches and steps; tokendistill's step puts both groups into one forward pass and weights per-group mean
losses (the same quantity, checked at the start). Both alternate in one process; the result is examples/s
and the ratio. Written to bench/results/train_throughput-<model>-<rationale>.json and .md.

    python bench/train_throughput.py --quick                   # t5-small-shaped random T5, teacher words
    python bench/train_throughput.py --rationale llm           # DSS's long LLM rationales as explain targets
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch

from tokendistill.models import load_model
from tokendistill.tasks.synthetic import DISTRACTORS
from tokendistill.training.data import encode_rows, multitask_loss, token_losses
from tokendistill.training.modes import EXPLAIN_PREFIX, PREDICT_PREFIX, TrainingRow

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


def one_pass_loss(model, tokenizer, rows: list[TrainingRow], alpha: float) -> torch.Tensor:
    encoded = encode_rows(tokenizer, rows, True, 512, 128)
    inputs = dict(encoded.model_inputs)
    inputs["decoder_input_ids"] = model.prepare_decoder_input_ids_from_labels(labels=encoded.labels)
    logits = model(**inputs).logits
    row_loss, row_tokens = token_losses(logits, encoded.labels, True)
    return multitask_loss(row_loss, row_tokens, encoded.groups, alpha)[0]


def two_pass_loss(model, tokenizer, rows: list[TrainingRow], alpha: float) -> torch.Tensor:
    """DSS: model(**inputs['pred']) and model(**inputs['expl']), each padded on its own, HF's mean loss."""
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
    return alpha * losses[0] + (1 - alpha) * losses[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a seq2seq model folder (default: a t5-small-shaped random T5)")
    parser.add_argument("--rationale", choices=["tokens", "llm"], default="tokens")
    parser.add_argument("--batch-size", type=int, default=16, help="examples per step (2 rows each)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="6 steps")
    arguments = parser.parse_args()
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
    examples = synthetic_rows(arguments.batch_size * (steps + 1), arguments.rationale)
    batches = [[row for example in examples[i : i + arguments.batch_size] for row in example]
               for i in range(0, len(examples), arguments.batch_size)]
    with torch.no_grad():
        one, two = one_pass_loss(model, tokenizer, batches[0], 0.5), two_pass_loss(model, tokenizer, batches[0], 0.5)
    torch.testing.assert_close(one, two, rtol=1e-4, atol=1e-5)  # the same objective, or the race means nothing
    model.train()  # dropout on, as in training; both steps draw it alike
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)

    def step(loss_function, rows: list[TrainingRow]) -> float:
        started = time.perf_counter()
        loss_function(model, tokenizer, rows, 0.5).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - started

    step(one_pass_loss, batches[0])  # warm-up
    step(two_pass_loss, batches[0])
    times = {"tokendistill (one pass)": [], "DSS (two passes)": []}
    for index in range(1, steps + 1):  # alternate, so that machine noise hits both alike
        times["tokendistill (one pass)"].append(step(one_pass_loss, batches[index]))
        times["DSS (two passes)"].append(step(two_pass_loss, batches[index]))
    medians = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "model": model_name,
        "rationale": arguments.rationale,
        "batch_examples": arguments.batch_size,
        "steps": steps,
        "threads": arguments.threads,
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, torch {torch.__version__}",
        "examples_per_second": {name: arguments.batch_size / value for name, value in medians.items()},
        "speedup_one_pass_over_two": medians["DSS (two passes)"] / medians["tokendistill (one pass)"],
    }
    RESULTS.mkdir(exist_ok=True)
    stem = f"train_throughput-{model_name}-{arguments.rationale}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2))
    lines = [f"# Multitask training throughput: {model_name}, {arguments.rationale} rationales", "",
             f"{result['machine']}; batch {arguments.batch_size} examples (x2 rows), median of {steps} steps.", "",
             "| trainer | examples/s |", "|---|---|"]
    lines += [f"| {name} | {value:.2f} |" for name, value in result["examples_per_second"].items()]
    lines += ["", f"one pass / two passes speed-up: **{result['speedup_one_pass_over_two']:.2f}x**"]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
