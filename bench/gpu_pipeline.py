"""The one-GPU path end to end: `extract` with a FLAN-T5-XL-shaped teacher and `train` of a t5-base-shaped
student, both random (built from their published configs: nothing downloaded), on the keyword task.

On a GPU both commands run as users run them (`--device cuda`: bf16 autocast in extraction, bf16 mixed
precision in training); the script times each, and the floor of the card (one forward+backward of the
teacher to its input embeddings, batch by batch, bf16 autocast) in the same process, and writes
bench/results/gpu_pipeline-<card>.json and .md. On a CPU, `--teacher-shape t5-small --student-shape t5-small`
checks the script itself in a minute.

    python bench/gpu_pipeline.py                                   # a lent GPU
    python bench/gpu_pipeline.py --device cpu --teacher-shape t5-small --student-shape t5-small --examples 32
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from pathlib import Path

import torch

from attribution_speed import RESULTS, SHAPES, save_random_t5, synchronized
from provenance import provenance, provenance_line  # bench/: where a figure was measured
from tokendistill.attribution.methods import input_gradient
from tokendistill.attribution.teacher import Teacher
from tokendistill.cli import main as tokendistill
from tokendistill.models import load_model
from tokendistill.tasks import get_task, load_examples


def timed_command(arguments: list[str]) -> float:
    started = time.perf_counter()
    if tokendistill(arguments) != 0:
        raise SystemExit(f"tokendistill {' '.join(arguments)} failed")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--teacher-shape", default="flan-t5-xl", choices=sorted(SHAPES))
    parser.add_argument("--student-shape", default="t5-base", choices=sorted(SHAPES))
    parser.add_argument("--examples", type=int, default=2048, help="examples to extract rationales for")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100, help="student training steps")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    card = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        teacher_path = save_random_t5(root / "teacher", args.teacher_shape)
        student_path = save_random_t5(root / "student", args.student_shape)
        common = ["--task", "keywords", "--device", args.device, "--limit", str(args.examples)]
        extract_seconds = timed_command(["extract", *common, "--teacher", teacher_path, "--output",
                                         str(root / "rationales"), "--batch-size", str(args.batch_size),
                                         "--top-k", "3", "--max-new-tokens", "4"])
        train_seconds = timed_command(["train", *common, "--student", student_path, "--mode", "multitask",
                                       "--rationales", str(root / "rationales"), "--output", str(root / "out"),
                                       "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                                       "--checkpoint-every", "0"])
        # The card's floor on the same teacher and inputs: forward + backward to the input embeddings.
        teacher = Teacher(load_model(teacher_path, device=args.device, offsets=True), max_input_length=128)
        examples = load_examples(get_task("keywords"), "train", limit=min(args.examples, 8 * args.batch_size))
        batches = [teacher.encode(examples[i : i + args.batch_size],
                                  [e.target for e in examples[i : i + args.batch_size]])
                   for i in range(0, len(examples), args.batch_size)]
        on_gpu = args.device.startswith("cuda")
        with torch.autocast("cuda", dtype=torch.bfloat16) if on_gpu else contextlib.nullcontext():
            input_gradient(teacher, batches[0])  # warm-up
            synchronized(args.device)
            started = time.perf_counter()
            for batch in batches:
                input_gradient(teacher, batch)
            synchronized(args.device)
            floor_seconds = time.perf_counter() - started
        parameters = sum(p.numel() for p in teacher.model.parameters())
    result = {
        "card": card, "teacher_shape": args.teacher_shape, "teacher_parameters": parameters,
        "student_shape": args.student_shape, "examples": args.examples, "batch_size": args.batch_size,
        "extract_seconds": round(extract_seconds, 2),
        "extract_examples_per_s": round(args.examples / extract_seconds, 2),
        "train_steps": args.steps, "train_seconds": round(train_seconds, 2),
        "train_examples_per_s": round(args.steps * args.batch_size / train_seconds, 2),
        "floor_examples_per_s": round(len(examples) / floor_seconds, 2),
        "torch": torch.__version__,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    stem = f"gpu_pipeline-{card.replace(' ', '-')}-{args.teacher_shape}"
    measured = provenance()
    (args.results / f"{stem}.json").write_text(json.dumps({**result, "measured": measured}, indent=2))
    lines = [f"# one-device pipeline: {card}", "", "| what | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in result.items()]
    (args.results / f"{stem}.md").write_text("\n".join([*lines, "", provenance_line(measured)]) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
