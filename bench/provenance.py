"""Where and on what a benchmark figure was measured, written beside it: the commit (and whether the tree had
uncommitted changes), the date, the machine and the load. A timing means nothing without them."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _git(*arguments: str) -> str | None:
    try:
        return subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance() -> dict[str, Any]:
    import torch

    return {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{_cpu()}, {os.cpu_count()} cores, {platform.machine()}",
        "load_average_1min": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def provenance_line(measured: dict[str, Any]) -> str:
    dirty = " (with uncommitted changes)" if measured["uncommitted_changes"] else ""
    return (f"Measured at commit {measured['commit']}{dirty}, {measured['date']}, on {measured['machine']} "
            f"(load {measured['load_average_1min']}, torch {measured['torch']}, {measured['threads']} threads).")
