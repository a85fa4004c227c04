"""The report's plots, each a PNG data URL (or None where there is nothing to draw), so that the HTML file holds
them inline. matplotlib loads on the first plot only."""

from __future__ import annotations

import base64
import io
import json
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokendistill.artefacts import TRAIN_LOG
from tokendistill.student import record_or_none

COLORS = {"top-k words": "#d9480f", "random words": "#868e96", "random content words": "#4c6ef5",
          "random words, same input parts": "#12b886"}


def _figure(width: float = 6.4, height: float = 3.6) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(width, height), dpi=110)
    axes.spines[["top", "right"]].set_visible(False)
    return figure, axes


def _png(figure: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def plot_overlap_by_task(analyses: Sequence[dict[str, Any]]) -> str | None:
    rows = [a for a in analyses if a["answer_overlap"]["gold"]["all"]["answer_in_input"]]
    if not rows:
        return None
    figure, axes = _figure()
    width = 0.2
    for offset, (label, key) in enumerate(
        [("top-k words", "rationale"), ("random words", "random_words"), ("random content words", "random_content_words"),
         ("random words, same input parts", "random_same_parts")]
    ):
        values = [100 * (a["answer_overlap"]["gold"]["all"]["any"].get(key) or 0) for a in rows]
        positions = [i + (offset - 1.5) * width for i in range(len(rows))]
        bars = axes.bar(positions, values, width, label=label, color=COLORS[label])
        axes.bar_label(bars, fmt="%.0f", fontsize=7)
    axes.set_xticks(range(len(rows)), [f"{a['task']}\n{a['method']} (k={a['top_k']:g})" for a in rows], fontsize=8)
    axes.set_ylabel("% of examples holding a gold word")
    axes.set_ylim(0, 105)
    axes.set_title("Do the teacher's words contain the answer? (vs chance)", fontsize=10)
    axes.legend(fontsize=8, frameon=False)
    return _png(figure)


def plot_overlap_by_k(analyses: Sequence[dict[str, Any]]) -> str | None:
    rows = [a for a in analyses if a["answer_overlap"]["gold"]["all"]["answer_in_input"]]
    if not rows:
        return None
    figure, axes = _figure()
    for analysis in rows:
        ks = [row["k"] for row in analysis["by_k"]]
        name = f"{analysis['task']}/{analysis['method']}"
        axes.plot(ks, [100 * (row["any"]["rationale"] or 0) for row in analysis["by_k"]], marker="o", label=name)
        axes.plot(ks, [100 * (row["any"]["random_content_words"] or 0) for row in analysis["by_k"]], linestyle="--",
                  color=axes.lines[-1].get_color(), alpha=0.6, label=f"{name}: random content words")
    axes.set_xlabel("k (words kept)")
    axes.set_ylabel("% holding a gold word")
    axes.set_ylim(0, 105)
    axes.set_title("Answer overlap as k grows (dashed: chance)", fontsize=10)
    axes.legend(fontsize=7, frameon=False)
    return _png(figure)


def plot_learning_curves(students: Sequence[Path]) -> str | None:
    curves: dict[str, list[list[tuple[int, float]]]] = defaultdict(list)
    for folder in students:
        record = record_or_none(folder)
        log_path = folder / TRAIN_LOG
        if not log_path.exists():
            continue
        entries = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines() if line.strip()]
        # The label loss is what every mode shares, so curves of different modes compare.
        points = [(e["step"], e.get("label_loss", e["loss"])) for e in entries]
        if points:
            mode = record.mode if record else "?"
            student = Path(str(record.config.get("student", ""))).name if record else ""
            curves[f"{mode} ({student})"].append(points)
    if not curves:
        return None
    figure, axes = _figure()
    for name, runs in sorted(curves.items()):
        steps = [step for step, _ in runs[0]]
        mean = [statistics.fmean(run[i][1] for run in runs if i < len(run)) for i in range(len(steps))]
        window = max(1, len(steps) // 50)
        smooth = [statistics.fmean(mean[max(0, i - window + 1) : i + 1]) for i in range(len(mean))]
        axes.plot(steps, smooth, label=f"{name}, {len(runs)} run(s)")
    axes.set_xlabel("step")
    axes.set_ylabel("label loss (smoothed)")
    axes.set_yscale("log")
    axes.set_title("Learning curves per mode", fontsize=10)
    axes.legend(fontsize=7, frameon=False)
    return _png(figure)


def _cell_label(row: dict[str, Any], with_k: bool = True) -> str:
    parts = [str(row[f]) for f in ("task", "mode", "student", "method") if row[f]]
    parts += [str(row["marker"])] if row.get("marker") else []
    parts += [f"k={row['k']:g}"] if row["k"] is not None and with_k else []
    parts += [f"target {row['target']}"] if row["target"] else []
    parts += [f"n={row['size']}"] if row["size"] else []
    return " · ".join(parts)


def plot_accuracy(table: Sequence[dict[str, Any]]) -> str | None:
    if not table:
        return None
    figure, axes = _figure(6.4, 0.5 + 0.42 * len(table))
    labels = [_cell_label(row) for row in table]
    means = [100 * row["mean"] for row in table]
    errors = [100 * (row["sd"] or 0.0) for row in table]
    axes.barh(range(len(table)), means, xerr=errors, color="#4c6ef5", alpha=0.85, capsize=3)
    axes.set_yticks(range(len(table)), labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("accuracy % (mean ± sd over seeds)")
    axes.set_xlim(0, 100)
    return _png(figure)


def plot_accuracy_by_k(table: Sequence[dict[str, Any]]) -> str | None:
    # One line per cell of every other factor (task, mode, student, method, marker, target, size).
    by_mode: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for row in table:
        if row["k"] is not None:
            by_mode[_cell_label(row, with_k=False)].append((float(row["k"]), 100 * row["mean"]))
    by_mode = {name: sorted(points) for name, points in by_mode.items() if len(points) > 1}
    if not by_mode:
        return None
    figure, axes = _figure()
    for name, points in by_mode.items():
        axes.plot([k for k, _ in points], [a for _, a in points], marker="o", label=name)
    axes.set_xlabel("k (teacher words per example)")
    axes.set_ylabel("student accuracy %")
    axes.legend(fontsize=8, frameon=False)
    return _png(figure)


def plot_agreement(agreement: Sequence[dict[str, Any]]) -> str | None:
    if not agreement:
        return None
    methods = sorted({row["method_a"] for row in agreement} | {row["method_b"] for row in agreement})
    index = {name: i for i, name in enumerate(methods)}
    import numpy as np

    matrix = np.eye(len(methods))
    for row in agreement:
        value = row["top_k_overlap"] or 0.0
        matrix[index[row["method_a"]], index[row["method_b"]]] = matrix[index[row["method_b"]], index[row["method_a"]]] = value
    figure, axes = _figure(4.2, 3.6)
    image = axes.imshow(matrix, vmin=0, vmax=1, cmap="Oranges")
    axes.set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
    axes.set_yticks(range(len(methods)), methods, fontsize=8)
    for i in range(len(methods)):
        for j in range(len(methods)):
            axes.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=8)
    figure.colorbar(image, ax=axes, label="top-k overlap")
    axes.set_title("Agreement between attribution methods", fontsize=10)
    return _png(figure)
