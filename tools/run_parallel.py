"""Run grids as several `tokendistill run` processes at once, one per (grid, seed), and print one table of all.

A grid folder takes one run at a time (its lock), and a single process leaves most of a GPU idle with students
of 135M parameters. Here each (grid, seed) gets its own folder under OUTPUT, named after the YAML file and the
seed, with its own copy of the grid's teacher stage (the teacher's fine-tuning does not depend on the student's
seed, so the copies agree; on a GPU it costs seconds). `tokendistill results OUTPUT` then reads every cell of
every folder as one grid. Run the same command again to resume whatever an interruption left unfinished.

    python tools/run_parallel.py configs/decisive/gpu-*.yaml --output runs/gpu-decisive --device cuda --jobs 12
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


def jobs_of(configs: list[str], output: Path, device: str | None) -> list[tuple[str, list[str]]]:
    """(name, command) for every seed of every grid, seeds outermost: the first seeds finish first."""
    from tokendistill.grid_file import load_experiment

    by_grid = {config: load_experiment(config).seeds for config in configs}
    jobs = []
    for seed in sorted({seed for seeds in by_grid.values() for seed in seeds}):
        for config, seeds in by_grid.items():
            if seed in seeds:
                name = f"{Path(config).stem}-seed{seed}"
                command = [sys.executable, "-m", "tokendistill.cli", "run", config, "--output", str(output / name),
                           "--only", f"seed={seed}", *(["--device", device] if device else [])]
                jobs.append((name, command))
    return jobs


def run_all(jobs: list[tuple[str, list[str]]], output: Path, parallel: int) -> list[str]:
    """Run the jobs, at most ``parallel`` at a time, each logging to OUTPUT/NAME.log; the names that failed."""
    output.mkdir(parents=True, exist_ok=True)
    waiting, running, failed = list(jobs), {}, []
    while waiting or running:
        while waiting and len(running) < parallel:
            name, command = waiting.pop(0)
            log = (output / f"{name}.log").open("ab")
            running[name] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                              env={**os.environ, "PYTHONUNBUFFERED": "1"}), log, time.monotonic())
            print(f"started {name}", flush=True)
        for name, (process, log, started) in list(running.items()):
            if process.poll() is not None:
                log.close()
                del running[name]
                print(f"{'finished' if process.returncode == 0 else 'FAILED'} {name} "
                      f"({time.monotonic() - started:.0f} s, exit {process.returncode}; log {output / name}.log)",
                      flush=True)
                if process.returncode:
                    failed.append(name)
        time.sleep(0.5)
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", help="experiment YAML files")
    parser.add_argument("--output", required=True, help="folder that holds one grid folder per (YAML, seed)")
    parser.add_argument("--device", help="auto, cpu or cuda for every stage (default: each YAML's)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes at once")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    output = Path(args.output).resolve()
    started = time.monotonic()
    failed = run_all(jobs_of(args.configs, output, args.device), output, args.jobs)
    from tokendistill.results import ResultsConfig, results_command

    print(results_command(ResultsConfig(folder=str(output))))
    print(f"wall time {time.monotonic() - started:.0f} s")
    if failed:
        print(f"failed: {', '.join(failed)} (run the same command again to resume them)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
