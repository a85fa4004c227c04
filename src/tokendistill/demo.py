"""`tokendistill demo`: the whole pipeline offline on a generated task, in a few minutes on two CPU cores.

A from-scratch T5 teacher learns the `keywords` task; saliency picks its top-k words; small T5 students
learn from few examples, standard vs multitask, over several seeds. The demo checks its own premise (a
teacher well above chance whose words hit the key word far more often than random words) and says so if
the premise fails, because the comparison means nothing then.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tokendistill.artefacts import DEMO_SUMMARY
from tokendistill.attribution.extract import extract
from tokendistill.cells import BASELINE_MODE
from tokendistill.config import EvaluateConfig, ExtractConfig, TrainConfig, write_config
from tokendistill.errors import UserError
from tokendistill.evaluation import evaluate
from tokendistill.folders import write_file
from tokendistill.models import save_architecture, tiny_t5_config
from tokendistill.options import option
from tokendistill.rationales import load_rationales
from tokendistill.report import ReportConfig, build_report
from tokendistill.tasks import get_task, load_examples
from tokendistill.tasks.synthetic import DISTRACTORS, KEYWORDS
from tokendistill.training import train
from tokendistill.training.modes import EXPLAIN_PREFIX, PREDICT_PREFIX
from tokendistill.vocab import build_word_tokenizer


@dataclass(kw_only=True)
class DemoConfig:
    output: str = option("runs/demo", "folder for every artefact of the demo")
    seeds: int = option(3, "student seeds per mode", minimum=1)
    train_examples: int = option(200, "training examples each student sees", minimum=1)
    teacher_steps: int = option(300, "teacher training steps (batch 64)", minimum=1)
    student_steps: int = option(200, "student training steps", minimum=1)
    top_k: int = option(3, "rationale words per example", minimum=1)
    test_examples: int = option(500, "held-out examples to score", minimum=1)
    threads: int = option(2, "CPU threads", minimum=1)
    overwrite: bool = option(False, "start over in an existing demo folder")


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def keyword_hit_rates(rationale_folder: Path, examples: list[Any], k: int, seed: int = 0) -> tuple[float, float]:
    """Share of examples whose rationale holds the key word, and the same for k random words of the input."""
    records = load_rationales(rationale_folder)
    rng = random.Random(seed)
    hits = random_hits = 0
    for example in examples:
        keyword = example.meta["keyword"]
        record = records[example.id]
        hits += keyword in record["rationale"]
        random_hits += keyword in rng.sample(record["words"], min(k, len(record["words"])))
    return hits / len(examples), random_hits / len(examples)


def run_demo(config: DemoConfig) -> dict[str, Any]:
    started = time.perf_counter()
    torch.set_num_threads(config.threads)
    root = Path(config.output)
    if root.exists() and any(root.iterdir()) and not config.overwrite:
        raise UserError(f"{root} is not empty; pass --overwrite or choose another --output")
    root.mkdir(parents=True, exist_ok=True)
    write_config(config, root)
    task = get_task("keywords")
    vocabulary = [*DISTRACTORS, *(word for words in KEYWORDS.values() for word in words), *KEYWORDS]
    tokenizer = build_word_tokenizer([" ".join(vocabulary), PREDICT_PREFIX, EXPLAIN_PREFIX])
    teacher_init = save_architecture(tiny_t5_config(len(tokenizer), d_model=128, d_ff=256), tokenizer, root / "tiny-t5-d128")
    student_init = save_architecture(tiny_t5_config(len(tokenizer), d_model=64), tokenizer, root / "tiny-t5-d64")
    common = {"task": "keywords", "device": "cpu", "overwrite": True}

    print(f"1/4 training the teacher from scratch on 10,000 generated examples ({config.teacher_steps} steps) ...")
    teacher = train(
        TrainConfig(
            student=str(teacher_init), init="random", output=str(root / "teacher"), steps=config.teacher_steps,
            batch_size=64, learning_rate=1e-3, **common,
        ),
        progress=True,  # minutes of training: a silent demo looks hung
    )
    teacher_metrics = evaluate(
        EvaluateConfig(model=str(teacher), output=str(root / "teacher" / "eval"), limit=config.test_examples,
                       task="keywords", device="cpu"),
        progress=False,
    )
    chance = 1 / len(KEYWORDS)
    print(f"    teacher accuracy on {config.test_examples} held-out examples: {teacher_metrics['accuracy']:.3f}")

    print(f"2/4 extracting the teacher's top-{config.top_k} saliency words for {config.train_examples} examples ...")
    rationales = extract(
        ExtractConfig(
            teacher=str(teacher), output=str(root / "rationales"), limit=config.train_examples, top_k=config.top_k,
            batch_size=64, **common,
        ),
        progress=True,
    )
    # The held-out examples are attributed too, for the report only (nothing trains on them): there each test
    # example shows the teacher's words beside the students' answers.
    extract(
        ExtractConfig(
            teacher=str(teacher), output=str(root / "rationales-test"), split="test", limit=config.test_examples,
            top_k=config.top_k, batch_size=64, **common,
        ),
        progress=False,
    )
    train_examples = load_examples(task, "train", limit=config.train_examples)
    hit_rate, random_rate = keyword_hit_rates(rationales, train_examples, config.top_k)

    print(f"3/4 training {2 * config.seeds} students ({config.train_examples} examples, {config.student_steps} steps each) ...")
    results: dict[str, list[float]] = {BASELINE_MODE: [], "multitask": []}
    for seed in range(config.seeds):
        for mode in results:
            folder = root / "students" / f"{mode}-seed{seed}"
            train(
                TrainConfig(
                    student=str(student_init), init="random", output=str(folder), mode=mode, seed=seed,
                    rationales=str(rationales), limit=config.train_examples, steps=config.student_steps,
                    batch_size=32, learning_rate=1e-3, **common,
                ),
                progress=True,
            )
            metrics = evaluate(
                EvaluateConfig(model=str(folder), output=str(folder / "eval"), limit=config.test_examples,
                               task="keywords", device="cpu"),
                progress=False,
            )
            results[mode].append(metrics["accuracy"])
            print(f"    {mode:<9} seed {seed}: accuracy {metrics['accuracy']:.3f}")

    print("4/4 summary and report")
    summary = {
        "teacher_accuracy": teacher_metrics["accuracy"],
        "chance_accuracy": chance,
        "rationale_keyword_hit_rate": hit_rate,
        "random_words_keyword_hit_rate": random_rate,
        "students": {mode: {"accuracies": accs, "mean": _mean_sd(accs)[0], "sd": _mean_sd(accs)[1]}
                     for mode, accs in results.items()},
        "seconds": round(time.perf_counter() - started, 1),
        "output": str(root),
    }
    write_file(root / DEMO_SUMMARY, json.dumps(summary, indent=2))
    print(format_summary(summary, config))
    report = build_report(ReportConfig(run_dir=str(root)))
    print(f"report: {report}  (open it in a browser)")
    return summary


def format_summary(summary: dict[str, Any], config: DemoConfig) -> str:
    students = summary["students"]
    lines = [
        "",
        "| what | value |",
        "|---|---|",
        f"| teacher accuracy (test, {config.test_examples} ex.) | {summary['teacher_accuracy']:.3f} "
        f"(chance {summary['chance_accuracy']:.3f}) |",
        f"| teacher's top-{config.top_k} words hold the key word | {summary['rationale_keyword_hit_rate']:.3f} "
        f"(random {config.top_k} words: {summary['random_words_keyword_hit_rate']:.3f}) |",
    ]
    for mode, result in students.items():
        lines.append(
            f"| student {mode} ({config.train_examples} ex., {config.seeds} seeds) | "
            f"{result['mean']:.3f} ± {result['sd']:.3f} |"
        )
    lines.append(f"\noutputs: {summary['output']}  ({summary['seconds']:.0f} s)")
    warnings = []
    if summary["teacher_accuracy"] < summary["chance_accuracy"] + 0.3:
        warnings.append("the teacher is not well above chance: its words carry little knowledge")
    if summary["rationale_keyword_hit_rate"] < summary["random_words_keyword_hit_rate"] + 0.2:
        warnings.append("the teacher's words hit the key word little more often than random words")
    lines += [f"WARNING: {warning}; the student comparison shows nothing" for warning in warnings]
    return "\n".join(lines)
