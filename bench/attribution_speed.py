"""Attribution speed: tokendistill against the floor (one forward + backward), Captum and Inseq, same inputs.

Runs in one process on one teacher: a plain batched forward (no grad), a batched forward+backward to the
input embeddings (the floor), then saliency and integrated gradients (20 steps) by tokendistill, by Captum
and by Inseq, and prints examples/s and each time as a ratio to the floor. Results go to
bench/results/attribution_speed-<model>.json and .md.

Captum runs twice: with the forward a Captum user writes (the model's logits at every position, then the
answer tokens' log-probabilities) and with tokendistill's own forward (only the answer positions reach a
decoder's output layer), so that the table says which part of a difference comes from the forward and which
from the attribution loop. For a seq2seq teacher the two forwards are the same. Inseq attributes every
answer token in a step of its own (its design); it gets the same answers and batch size.

    python bench/attribution_speed.py --quick                 # random t5-small-shaped teacher
    python bench/attribution_speed.py --model PATH_TO_DECODER --task esnli --data ../shared/data/dss
    python bench/attribution_speed.py --shape flan-t5-xl --device cuda   # a lent GPU: bf16 autocast, 3B random
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from provenance import provenance, provenance_line  # bench/: where a figure was measured
from tokendistill.attribution.methods import (
    METHODS,
    MethodOptions,
    input_gradient,
    integrated_gradients_attributions,
)
from tokendistill.attribution.teacher import Teacher, TeacherBatch
from tokendistill.models import LoadedModel, load_model
from tokendistill.tasks import get_task, load_examples

RESULTS = Path(__file__).parent / "results"


# Published shapes (vocabulary 32,128): t5-small (60M), t5-base (220M) and FLAN-T5-XL (2.8B), the paper's teacher.
SHAPES = {
    "t5-small": dict(d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8, feed_forward_proj="relu"),
    "t5-base": dict(d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12, feed_forward_proj="relu"),
    "flan-t5-xl": dict(d_model=2048, d_kv=64, d_ff=5120, num_layers=24, num_heads=32,
                       feed_forward_proj="gated-gelu", tie_word_embeddings=False),
}


def random_t5(shape: str, device: str) -> LoadedModel:
    """A T5 of a published shape with random weights (built from its config: nothing downloaded), and a
    word-level tokenizer for the keyword task's words."""
    from transformers import AutoModelForSeq2SeqLM, T5Config

    from tokendistill.tasks.synthetic import DISTRACTORS, KEYWORDS
    from tokendistill.vocab import build_word_tokenizer

    tokenizer = build_word_tokenizer([" ".join([*DISTRACTORS, *(w for ws in KEYWORDS.values() for w in ws), *KEYWORDS])])
    config = T5Config(vocab_size=32128, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, **SHAPES[shape])
    torch.manual_seed(0)
    model = AutoModelForSeq2SeqLM.from_config(config).to(device)
    return LoadedModel(model, tokenizer, True, f"{shape}-shaped-random")


def save_random_t5(folder: Path, shape: str = "t5-small") -> str:
    """A random T5 of ``shape``, saved to ``folder`` (for benchmarks that load by path)."""
    loaded = random_t5(shape, "cpu")
    loaded.model.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    return str(folder)


def synchronized(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def race(contenders: dict[str, tuple[Callable[[], object], int]], device: str = "cpu") -> dict[str, float]:
    """Median seconds per contender, timed round-robin: on a shared, noisy machine a slow spell then hits every
    contender alike instead of whichever happened to run during it. Contenders timed more than once are run
    once first as a warm-up."""
    for function, repeats in contenders.values():
        if repeats > 1:
            function()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for round_number in range(max(repeats for _, repeats in contenders.values())):
        for name, (function, repeats) in contenders.items():
            if round_number < repeats:
                synchronized(device)
                started = time.perf_counter()
                function()
                synchronized(device)
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def full_head_log_prob(teacher: Teacher, embeds: torch.Tensor, attention_mask: torch.Tensor,
                       batch: TeacherBatch) -> torch.Tensor:
    """log p(answer) as a Captum user computes it: every position's logits, then the answer positions'."""
    if teacher.is_encoder_decoder:
        return teacher.answer_log_prob(embeds, attention_mask, batch)
    hidden, answer_positions = teacher.causal_hidden_states(embeds, attention_mask, batch)
    log_probs = torch.log_softmax(teacher.output_logits(hidden).float(), dim=-1)  # (B, T + A, V)
    answer_log_probs = log_probs.gather(1, answer_positions.unsqueeze(-1).expand(-1, -1, log_probs.shape[-1]))
    token_log_probs = answer_log_probs.gather(-1, batch.answer_ids.unsqueeze(-1)).squeeze(-1)
    return (token_log_probs * batch.answer_mask).sum(dim=-1)


def captum_forward(teacher: Teacher, batch: TeacherBatch, natural: bool) -> Callable[..., torch.Tensor]:
    log_prob = full_head_log_prob if natural else Teacher.answer_log_prob

    def forward(embeds: torch.Tensor, attention_mask: torch.Tensor, answer_ids: torch.Tensor,
                answer_mask: torch.Tensor) -> torch.Tensor:
        rows = embeds.shape[0]
        repeats = rows // batch.input_ids.shape[0]
        view = TeacherBatch(batch.examples * repeats, batch.answers * repeats, batch.input_ids.repeat(repeats, 1),
                            attention_mask, batch.offsets * repeats, answer_ids, answer_mask, [False] * rows)
        return log_prob(teacher, embeds, attention_mask, view)

    return forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="teacher folder; default: a random T5 of --shape")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="t5-small", help="the random T5's shape")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (bf16 autocast there, as `extract` does)")
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ig-steps", type=int, default=20)
    parser.add_argument("--ig-repeats", type=int, default=2, help="timed runs of each integrated-gradients contender")
    parser.add_argument("--quick", action="store_true", help="fewer examples and repeats (under 2 minutes)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--task", default="keywords", help="task of the inputs (default: the generated keyword task)")
    parser.add_argument("--data", help="the task's data folder (e.g. ../shared/data/dss)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the result files")
    parser.add_argument("--max-rows", type=int, default=MethodOptions.max_rows,
                        help="tokendistill's rows per forward for integrated gradients")
    args = parser.parse_args()
    if args.quick:
        args.examples, args.repeats, args.ig_repeats = 32, 2, 1
    torch.set_num_threads(args.threads)
    loaded = (load_model(args.model, device=args.device, offsets=True) if args.model
              else random_t5(args.shape, args.device))
    name = (Path(args.model).name if args.model else loaded.name) + ("" if args.task == "keywords" else f"-{args.task}")
    if args.device.startswith("cuda"):
        name += "-" + torch.cuda.get_device_name().replace(" ", "-")
    teacher = Teacher(loaded, max_input_length=128)
    examples = load_examples(get_task(args.task), args.split, args.data, limit=args.examples)
    batches = [teacher.encode(examples[i : i + args.batch_size], [e.target for e in examples[i : i + args.batch_size]])
               for i in range(0, len(examples), args.batch_size)]

    def over_batches(step: Callable[[TeacherBatch], object]) -> Callable[[], None]:
        return lambda: [step(batch) for batch in batches] and None

    # Captum runs with its default (all examples x steps in one pass), tokendistill with --max-rows.
    options = MethodOptions(ig_steps=args.ig_steps, max_rows=args.max_rows)
    contenders: dict[str, tuple[Callable[[], object], int]] = {}

    @torch.no_grad()
    def plain_forward(batch: TeacherBatch) -> object:
        return teacher.answer_log_prob(teacher.embed(batch.input_ids), batch.attention_mask, batch)

    contenders["forward (no grad)"] = (over_batches(plain_forward), args.repeats)
    contenders["floor: forward+backward"] = (over_batches(lambda b: input_gradient(teacher, b)), args.repeats)
    saliency, integrated_gradients = METHODS.get("saliency"), METHODS.get("integrated_gradients")
    contenders["tokendistill saliency"] = (over_batches(lambda b: saliency(teacher, b, [], options)), args.repeats)
    contenders["tokendistill integrated_gradients"] = (
        over_batches(lambda b: integrated_gradients(teacher, b, [], options)), args.ig_repeats
    )
    try:
        from captum.attr import IntegratedGradients, Saliency
    except ImportError:
        print("captum is not installed: pip install captum to compare with it")
    else:
        for natural, label in ((True, "captum"), (False, "captum (tokendistill forward)")):
            if natural is False and teacher.is_encoder_decoder:
                continue  # the same forward as above

            def captum_saliency(batch: TeacherBatch, natural: bool = natural) -> torch.Tensor:
                embeds = teacher.embed(batch.input_ids).detach()
                extra = (batch.attention_mask, batch.answer_ids, batch.answer_mask)
                gradient = Saliency(captum_forward(teacher, batch, natural)).attribute(
                    embeds, abs=False, additional_forward_args=extra)
                return gradient.norm(dim=-1)

            def captum_ig(batch: TeacherBatch, natural: bool = natural) -> torch.Tensor:
                embeds = teacher.embed(batch.input_ids).detach()
                baseline = teacher.embed(torch.full_like(batch.input_ids, teacher.tokenizer.pad_token_id)).detach()
                extra = (batch.attention_mask, batch.answer_ids, batch.answer_mask)
                return IntegratedGradients(captum_forward(teacher, batch, natural)).attribute(
                    embeds, baselines=baseline, additional_forward_args=extra, n_steps=args.ig_steps,
                )

            contenders[f"{label} saliency"] = (over_batches(captum_saliency), args.repeats)
            contenders[f"{label} integrated_gradients"] = (over_batches(captum_ig), args.ig_repeats)
    try:
        import inseq
    except ImportError:
        print("inseq is not installed: pip install inseq to compare with it")
    else:
        inseq_models = {
            method: inseq.load_model(teacher.model, method, tokenizer=teacher.tokenizer)
            for method in ("saliency", "integrated_gradients")
        }
        inputs = [teacher.prompt(example) for example in examples]
        answers = [example.target for example in examples]

        def inseq_run(method: str, **options: object) -> Callable[[], None]:
            def run() -> None:
                inseq_models[method].attribute(inputs, generated_texts=answers, batch_size=args.batch_size,
                                               show_progress=False, **options)
            return run

        if not teacher.is_encoder_decoder:
            # A decoder's generated text starts with its prompt in Inseq.
            answers = [prompt + " " + answer for prompt, answer in zip(inputs, answers)]
        contenders["inseq saliency"] = (inseq_run("saliency"), args.repeats)
        contenders["inseq integrated_gradients"] = (
            inseq_run("integrated_gradients", n_steps=args.ig_steps), args.ig_repeats
        )

    if args.device.startswith("cuda"):
        # As `extract` runs on a GPU: float32 weights, bf16 autocast.
        def autocast(function: Callable[[], object]) -> Callable[[], object]:
            def run() -> object:
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    return function()
            return run

        contenders = {name: (autocast(function), repeats) for name, (function, repeats) in contenders.items()}
    timings = race(contenders, args.device)
    floor = timings["floor: forward+backward"]
    # Speed beside accuracy: completeness (attributions summing to f(input) - f(baseline)) on every batch,
    # as the mean absolute gap per example, in nats of log p(answer); the same steps for each contender.
    completeness: dict[str, float | None] = {}
    gaps = []
    for batch in batches:
        attributions, at_input, at_baseline = integrated_gradients_attributions(teacher, batch, options)
        gaps.append((attributions.sum(dim=-1) - (at_input - at_baseline).float()).abs())
    completeness["tokendistill integrated_gradients"] = float(torch.cat(gaps).mean())
    if "captum integrated_gradients" in contenders:
        for natural, label in ((True, "captum"), (False, "captum (tokendistill forward)")):
            if f"{label} integrated_gradients" not in contenders:
                continue
            deltas = []
            for batch in batches:
                embeds = teacher.embed(batch.input_ids).detach()
                baseline = teacher.embed(torch.full_like(batch.input_ids, teacher.tokenizer.pad_token_id)).detach()
                _, delta = IntegratedGradients(captum_forward(teacher, batch, natural)).attribute(
                    embeds, baselines=baseline, n_steps=args.ig_steps, return_convergence_delta=True,
                    additional_forward_args=(batch.attention_mask, batch.answer_ids, batch.answer_mask))
                deltas.append(delta.abs().float())
            completeness[f"{label} integrated_gradients"] = float(torch.cat(deltas).mean())
    if "inseq integrated_gradients" in contenders:
        completeness["inseq integrated_gradients"] = None  # Inseq attributes p (not log p) from its own baseline
    rows = [{"what": what, "seconds": round(seconds, 4), "examples_per_s": round(len(examples) / seconds, 2),
             "ratio_to_floor": round(seconds / floor, 3),
             "completeness_error": None if completeness.get(what) is None else round(completeness[what], 6)}
            for what, seconds in timings.items()]
    ratios = {}
    for peer in ("captum", "captum (tokendistill forward)", "inseq"):
        for method in ("saliency", "integrated_gradients"):
            if f"{peer} {method}" in timings:
                ratios[f"{peer} {method} / tokendistill {method}"] = round(
                    timings[f"{peer} {method}"] / timings[f"tokendistill {method}"], 3)
    result = {
        "model": name, "task": args.task, "examples": len(examples), "batch_size": args.batch_size,
        "ig_steps": args.ig_steps, "max_rows": args.max_rows,
        "threads": args.threads, "machine": (torch.cuda.get_device_name() + ", bf16 autocast"
                                             if args.device.startswith("cuda")
                                             else f"{platform.machine()}, {torch.get_num_threads()} threads, CPU"),
        "parameters": sum(p.numel() for p in teacher.model.parameters()),
        "input_tokens": int(sum(int(batch.attention_mask.sum()) for batch in batches)),
        "torch": torch.__version__, "rows": rows, "ratios": ratios,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    measured = provenance()
    (args.results / f"attribution_speed-{name}.json").write_text(json.dumps({**result, "measured": measured}, indent=2))
    table = ["| what | s | examples/s | x floor | completeness error (nats) |", "|---|---|---|---|---|"]
    table += [f"| {r['what']} | {r['seconds']} | {r['examples_per_s']} | {r['ratio_to_floor']} | "
              f"{'' if r['completeness_error'] is None else r['completeness_error']} |" for r in rows]
    table += [f"\n{key}: {value}" for key, value in ratios.items()]
    text = (f"# attribution speed: {name}\n\n{len(examples)} {args.task} examples, batch {args.batch_size}, "
            f"IG {args.ig_steps} steps ({args.max_rows} rows per forward), CPU {args.threads} threads\n\n"
            + "\n".join(table) + "\n")
    (args.results / f"attribution_speed-{name}.md").write_text(text + "\n" + provenance_line(measured) + "\n")
    print(text)


if __name__ == "__main__":
    main()
