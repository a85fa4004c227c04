"""Attribution speed: tokendistill against the floor (one forward + backward) and against Captum, same inputs.

Runs in one process on one teacher: a plain batched forward (no grad), a batched forward+backward to the
input embeddings (the floor), tokendistill's saliency, Captum's Saliency, tokendistill's integrated
gradients and Captum's IntegratedGradients (20 steps each), and prints examples/s and each time as a ratio
to the floor. Results go to bench/results/attribution_speed-<model>.json and .md.

    python bench/attribution_speed.py --quick                 # random t5-small-shaped teacher
    python bench/attribution_speed.py --model PATH_TO_DECODER  # a real model folder (e.g. from shared/tools)
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from tokendistill.attribution.methods import METHODS, MethodOptions, input_gradient
from tokendistill.attribution.teacher import Teacher, TeacherBatch
from tokendistill.models import load_model
from tokendistill.tasks import get_task, load_examples

RESULTS = Path(__file__).parent / "results"


def t5_small_shaped(folder: Path) -> str:
    from transformers import AutoModelForSeq2SeqLM, T5Config

    from tokendistill.tasks.synthetic import DISTRACTORS, KEYWORDS
    from tokendistill.vocab import build_word_tokenizer

    tokenizer = build_word_tokenizer([" ".join([*DISTRACTORS, *(w for ws in KEYWORDS.values() for w in ws), *KEYWORDS])])
    config = T5Config(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8,
                      feed_forward_proj="relu", decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    torch.manual_seed(0)
    AutoModelForSeq2SeqLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def timed(function: Callable[[], object], repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def captum_forward(teacher: Teacher, batch: TeacherBatch) -> Callable[..., torch.Tensor]:
    def forward(embeds: torch.Tensor, attention_mask: torch.Tensor, answer_ids: torch.Tensor,
                answer_mask: torch.Tensor) -> torch.Tensor:
        rows = embeds.shape[0]
        repeats = rows // batch.input_ids.shape[0]
        view = TeacherBatch(batch.examples * repeats, batch.answers * repeats, batch.input_ids.repeat(repeats, 1),
                            attention_mask, batch.offsets * repeats, answer_ids, answer_mask, 0)
        return teacher.answer_log_prob(embeds, attention_mask, view)

    return forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="teacher folder; default: a random t5-small-shaped T5")
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ig-steps", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="fewer examples and repeats (under 2 minutes)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.quick:
        args.examples, args.repeats = 32, 2
    torch.set_num_threads(args.threads)
    temporary = tempfile.TemporaryDirectory()
    model_path = args.model or t5_small_shaped(Path(temporary.name))
    name = Path(args.model).name if args.model else "t5-small-shaped-random"
    teacher = Teacher(load_model(model_path, device="cpu", offsets=True), max_input_length=128)
    examples = load_examples(get_task("keywords"), "test", limit=args.examples)
    batches = [teacher.encode(examples[i : i + args.batch_size], [e.target for e in examples[i : i + args.batch_size]])
               for i in range(0, len(examples), args.batch_size)]

    def over_batches(step: Callable[[TeacherBatch], object]) -> Callable[[], None]:
        return lambda: [step(batch) for batch in batches] and None

    # tokendistill's default row budget (64: on these CPUs smaller chunks ran faster than all 320 rows at once);
    # Captum runs with its default (all examples x steps in one pass).
    options = MethodOptions(ig_steps=args.ig_steps)
    timings: dict[str, float] = {}

    @torch.no_grad()
    def plain_forward(batch: TeacherBatch) -> object:
        return teacher.answer_log_prob(teacher.embed(batch.input_ids), batch.attention_mask, batch)

    timings["forward (no grad)"] = timed(over_batches(plain_forward), args.repeats)
    timings["floor: forward+backward"] = timed(over_batches(lambda b: input_gradient(teacher, b)), args.repeats)
    timings["tokendistill saliency"] = timed(
        over_batches(lambda b: METHODS.get("saliency")(teacher, b, [], options)), args.repeats
    )
    timings["tokendistill integrated_gradients"] = timed(
        over_batches(lambda b: METHODS.get("integrated_gradients")(teacher, b, [], options)), 1
    )
    try:
        from captum.attr import IntegratedGradients, Saliency
    except ImportError:
        print("captum is not installed: pip install captum to compare with it")
    else:
        def captum_saliency(batch: TeacherBatch) -> torch.Tensor:
            embeds = teacher.embed(batch.input_ids).detach()
            extra = (batch.attention_mask, batch.answer_ids, batch.answer_mask)
            gradient = Saliency(captum_forward(teacher, batch)).attribute(embeds, abs=False, additional_forward_args=extra)
            return gradient.norm(dim=-1)

        def captum_ig(batch: TeacherBatch) -> torch.Tensor:
            embeds = teacher.embed(batch.input_ids).detach()
            baseline = teacher.embed(torch.full_like(batch.input_ids, teacher.tokenizer.pad_token_id)).detach()
            extra = (batch.attention_mask, batch.answer_ids, batch.answer_mask)
            return IntegratedGradients(captum_forward(teacher, batch)).attribute(
                embeds, baselines=baseline, additional_forward_args=extra, n_steps=args.ig_steps,
            )

        timings["captum saliency"] = timed(over_batches(captum_saliency), args.repeats)
        timings["captum integrated_gradients"] = timed(over_batches(captum_ig), 1)

    floor = timings["floor: forward+backward"]
    rows = [{"what": what, "seconds": round(seconds, 4), "examples_per_s": round(len(examples) / seconds, 2),
             "ratio_to_floor": round(seconds / floor, 3)} for what, seconds in timings.items()]
    ratios = {}
    if "captum integrated_gradients" in timings:
        ratios["captum_ig / tokendistill_ig"] = round(
            timings["captum integrated_gradients"] / timings["tokendistill integrated_gradients"], 3)
        ratios["captum_saliency / tokendistill_saliency"] = round(
            timings["captum saliency"] / timings["tokendistill saliency"], 3)
    result = {
        "model": name, "examples": len(examples), "batch_size": args.batch_size, "ig_steps": args.ig_steps,
        "threads": args.threads, "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, CPU",
        "torch": torch.__version__, "rows": rows, "ratios": ratios,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"attribution_speed-{name}.json").write_text(json.dumps(result, indent=2))
    table = ["| what | s | examples/s | x floor |", "|---|---|---|---|"]
    table += [f"| {r['what']} | {r['seconds']} | {r['examples_per_s']} | {r['ratio_to_floor']} |" for r in rows]
    table += [f"\n{key}: {value}" for key, value in ratios.items()]
    text = f"# attribution speed: {name}\n\n{len(examples)} examples, batch {args.batch_size}, CPU {args.threads} threads\n\n" + "\n".join(table) + "\n"
    (RESULTS / f"attribution_speed-{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
