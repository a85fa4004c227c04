"""Peak memory of extraction against the dataset size: streaming means it should not grow.

Each size runs `tokendistill extract` in a fresh process (peak RSS is a per-process high-water mark) on the
generated `keywords` task with the same tiny T5 teacher; the result is each run's peak RSS, its ratio to the
smallest run's, and examples/s. Written to bench/results/extraction_memory.json and .md.

    python bench/extraction_memory.py                       # 200 and 5,000 examples
    python bench/extraction_memory.py --sizes 5000 100000   # the scaling issue's check
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 5000])
    arguments = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        teacher = tiny_teacher(Path(scratch) / "teacher")
        for size in arguments.sizes:
            command = [sys.executable, "-c", CHILD, "extract", "--task", "keywords", "--split", "train",
                       "--teacher", str(teacher), "--output", str(Path(scratch) / f"r{size}"), "--limit", str(size),
                       "--top-k", "3", "--batch-size", "64", "--max-new-tokens", "3", "--device", "cpu"]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            code, peak_kb, elapsed = next(line for line in output.splitlines() if line.startswith("RESULT")).split()[1:]
            rows.append({"examples": size, "exit": int(code), "peak_rss_mb": int(peak_kb) / 1024,
                         "seconds": float(elapsed), "examples_per_second": size / float(elapsed)})
            print(rows[-1], flush=True)
    base = rows[0]["peak_rss_mb"]
    for row in rows:
        row["rss_ratio_to_smallest"] = row["peak_rss_mb"] / base
    result = {"machine": f"{platform.machine()}, python {platform.python_version()}",
              "date": time.strftime("%Y-%m-%d"), "teacher": "tiny T5 (d_model 32), keywords task", "runs": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "extraction_memory.json").write_text(json.dumps(result, indent=2))
    lines = ["# Extraction peak memory vs dataset size", "", f"{result['machine']}; {result['teacher']}.", "",
             "| examples | peak RSS (MB) | ratio to smallest | examples/s |", "|---|---|---|---|"]
    lines += [f"| {r['examples']:,} | {r['peak_rss_mb']:.0f} | {r['rss_ratio_to_smallest']:.3f} | "
              f"{r['examples_per_second']:.0f} |" for r in rows]
    (RESULTS / "extraction_memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
