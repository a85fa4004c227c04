"""Peak memory of extraction against the dataset size: streaming means it should not grow.

Each size runs `tokendistill extract` in a fresh process (peak RSS is a per-process high-water mark) over a
generated JSONL file of that many rows (the `keywords` task's records, read as a `text` task through
datasets' memory-mapped loader) with the same tiny T5 teacher; the result is each run's peak RSS, its ratio
to the smallest run's, and examples/s; `--processes 2` adds runs under torchrun with two processes (the
larger of the processes' peaks). Written to bench/results/extraction_memory-<sizes>-p<processes>.json and .md.

    python bench/extraction_memory.py                                   # 200 and 5,000 examples
    python bench/extraction_memory.py --sizes 5000 100000 --processes 1 2  # the scaling issue's checks
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provenance import provenance, provenance_line  # bench/: where a figure was measured

RESULTS = Path(__file__).parent / "results"

CHILD = r"""
import resource, sys, time
from tokendistill.cli import main
started = time.perf_counter()
code = main(sys.argv[1:])
elapsed = time.perf_counter() - started
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"RESULT {code} {peak_kb} {elapsed}")
"""


def tiny_teacher(folder: Path) -> Path:
    import torch
    from transformers import AutoModelForSeq2SeqLM

    from tokendistill.models import tiny_t5_config
    from tokendistill.tasks.synthetic import DISTRACTORS, KEYWORDS
    from tokendistill.vocab import build_word_tokenizer

    tokenizer = build_word_tokenizer([" ".join([*DISTRACTORS, *(w for ws in KEYWORDS.values() for w in ws), *KEYWORDS])])
    torch.manual_seed(0)
    AutoModelForSeq2SeqLM.from_config(tiny_t5_config(len(tokenizer), d_model=32)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_data(path: Path, size: int) -> Path:
    from tokendistill.tasks.synthetic import generate_records

    with path.open("w", encoding="utf-8") as handle:
        for record in generate_records("train", size):
            handle.write(json.dumps({"id": record["id"], "input": record["input"], "label": record["label"]}) + "\n")
    return path


def run(teacher: Path, data: Path, size: int, processes: int, output: Path) -> dict:
    arguments = ["extract", "--task", "text", "--data", str(data), "--split", "train", "--teacher", str(teacher),
                 "--output", str(output), "--limit", str(size), "--top-k", "3", "--batch-size", "64",
                 "--max-new-tokens", "3", "--device", "cpu"]
    if processes == 1:
        command = [sys.executable, "-c", CHILD, *arguments]
    else:
        script = output.with_suffix(".py")
        script.write_text(CHILD)
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                   str(script), *arguments]
    environment = {**os.environ, "OMP_NUM_THREADS": str(max(1, 2 // processes))}
    output_text = subprocess.run(command, capture_output=True, text=True, check=True, env=environment).stdout
    results = [line.split()[1:] for line in output_text.splitlines() if line.startswith("RESULT")]
    peak = max(int(peak_kb) for _, peak_kb, _ in results)
    elapsed = max(float(seconds) for _, _, seconds in results)
    return {"processes": processes, "examples": size, "peak_rss_mb": peak / 1024, "seconds": elapsed,
            "examples_per_second": size / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 5000])
    parser.add_argument("--processes", type=int, nargs="+", default=[1])
    arguments = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        teacher = tiny_teacher(Path(scratch) / "teacher")
        data = write_data(Path(scratch) / "train.jsonl", max(arguments.sizes))
        for processes in arguments.processes:
            for size in arguments.sizes:
                rows.append(run(teacher, data, size, processes, Path(scratch) / f"r{size}-{processes}"))
                print(rows[-1], flush=True)
    for row in rows:
        base = min(r["peak_rss_mb"] for r in rows if r["processes"] == row["processes"])
        row["rss_ratio_to_smallest"] = row["peak_rss_mb"] / base
    result = {"machine": f"{platform.machine()}, python {platform.python_version()}",
              "date": time.strftime("%Y-%m-%d"), "teacher": "tiny T5 (d_model 32); generated keywords rows read from a JSONL file as a text task", "runs": rows}
    RESULTS.mkdir(exist_ok=True)
    stem = "extraction_memory-" + "-".join(map(str, arguments.sizes)) + "-p" + "-".join(map(str, arguments.processes))
    measured = provenance()
    (RESULTS / f"{stem}.json").write_text(json.dumps({**result, "measured": measured}, indent=2))
    lines = ["# Extraction peak memory vs dataset size", "", f"{result['machine']}; {result['teacher']}.", "",
             "| processes | examples | peak RSS (MB) | ratio to smallest | examples/s |", "|---|---|---|---|---|"]
    lines += [f"| {r['processes']} | {r['examples']:,} | {r['peak_rss_mb']:.0f} | {r['rss_ratio_to_smallest']:.3f} | "
              f"{r['examples_per_second']:.0f} |" for r in rows]
    (RESULTS / f"{stem}.md").write_text("\n".join([*lines, "", provenance_line(measured)]) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
