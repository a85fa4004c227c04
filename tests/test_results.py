"""The results table: summary over seeds, paired differences with intervals and power, against hand-worked
examples and a brute-force bootstrap."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from tokendistill.results import (
    TABLE_HEADERS,
    collect,
    results_markdown,
    seed_table,
    summarize,
    table_details,
)
from tokendistill.statistics import Z_95, Z_POWER_80, paired_difference


def rows_right(count: int, prefix: str) -> frozenset[str]:
    return frozenset(f"{prefix}{i}" for i in range(count))


def test_one_seed_interval_is_mcnemars_wald_interval() -> None:
    # 200 test rows: 30 right only here, 10 right only there, 160 alike (80 right in both).
    ids = [f"r{i}" for i in range(200)]
    both, only_here, only_there = set(ids[:80]), set(ids[80:110]), set(ids[110:120])
    difference = paired_difference({0: frozenset(both | only_here)}, {0: frozenset(both | only_there)}, ids)
    assert difference.mean == pytest.approx(0.1)
    # By hand: the per-row differences are +1 (30), -1 (10), 0 (160); sum of squared deviations 40 - 200 * 0.01.
    error = math.sqrt(38 / 199 / 200)
    # McNemar's Wald interval, sqrt(((b + c) / n - ((b - c) / n)^2) / n), with the n - 1 of a sample variance.
    assert error == pytest.approx(math.sqrt((40 / 200 - 0.1**2) / 200) * math.sqrt(200 / 199))
    assert (difference.low, difference.high) == pytest.approx((0.1 - 1.959964 * error, 0.1 + 1.959964 * error))
    assert difference.low == pytest.approx(0.03944, abs=1e-5) and difference.high == pytest.approx(0.16056, abs=1e-5)
    assert difference.detectable == pytest.approx(2.801585 * error) == pytest.approx(0.08657, abs=1e-5)
    assert (difference.only_here, difference.only_there, difference.rows, difference.seeds) == (30, 10, 200, 1)


def test_seeds_pool_per_test_row() -> None:
    # Rows a-d, two seeds; per-row differences averaged over the seeds: a 0.5, b 0, c 0.5, d 0.
    here = {0: frozenset("ab"), 1: frozenset("ac")}
    there = {0: frozenset("a"), 1: frozenset("b")}
    difference = paired_difference(here, there, "abcd")
    assert difference.mean == pytest.approx(0.25)
    error = math.sqrt((4 * 0.25**2) / 3) / 2
    assert difference.low == pytest.approx(0.25 - Z_95 * error) and difference.high == pytest.approx(0.25 + Z_95 * error)
    assert (difference.only_here, difference.only_there) == (3, 1)  # seed 0: b; seed 1: a, c; and b under there


def test_interval_agrees_with_a_brute_force_bootstrap() -> None:
    generator = random.Random(7)
    ids = [f"r{i}" for i in range(300)]
    here = {s: frozenset(i for i in ids if generator.random() < 0.62) for s in range(3)}
    there = {s: frozenset(i for i in ids if generator.random() < 0.55) for s in range(3)}
    difference = paired_difference(here, there, ids)
    per_row = [sum((i in here[s]) - (i in there[s]) for s in range(3)) / 3 for i in ids]
    means = []
    for _ in range(3000):  # resample test rows with replacement, each keeping its seeds
        sample = [per_row[generator.randrange(len(ids))] for _ in ids]
        means.append(sum(sample) / len(sample))
    means.sort()
    low, high = means[int(0.025 * len(means))], means[int(0.975 * len(means)) - 1]
    assert difference.low == pytest.approx(low, abs=0.006) and difference.high == pytest.approx(high, abs=0.006)


def test_the_detectable_difference_is_found_four_times_in_five() -> None:
    # Rows whose true difference is the design's detectable one (400 rows; the cells disagree on 60% of them),
    # drawn 2,000 times: the 95% interval excludes 0 in about 80% of the draws, and the detectable difference
    # the design reports matches the true one.
    rows, spread, shift = 400, 0.6, 0.1
    for _ in range(50):  # shift = (z_0.975 + z_0.8) * sd(row difference) / sqrt(rows), solved by iteration
        shift = (Z_95 + Z_POWER_80) * math.sqrt((spread - shift**2) / rows)
    up = (spread + shift) / 2
    generator = np.random.default_rng(3)
    rejected, detectable = 0, []
    names = [str(i) for i in range(rows)]
    for _ in range(2000):
        draws = generator.choice([1, -1, 0], size=rows, p=[up, spread - up, 1 - spread])
        difference = paired_difference({0: frozenset(str(i) for i in np.flatnonzero(draws == 1))},
                                       {0: frozenset(str(i) for i in np.flatnonzero(draws == -1))}, names)
        rejected += difference.low > 0 or difference.high < 0
        detectable.append(difference.detectable)
    assert rejected / 2000 == pytest.approx(0.80, abs=0.03)
    assert float(np.mean(detectable)) == pytest.approx(shift, rel=0.02)


def test_results_table_arithmetic() -> None:
    rows = [
        {"task": "t", "size": 10, "mode": "standard", "k": None, "target": None, "seed": s, "accuracy": a}
        for s, a in ((0, 0.5), (1, 0.7), (2, 0.6))
    ] + [
        {"task": "t", "size": 10, "mode": "multitask", "k": 5.0, "target": "teacher", "seed": s, "accuracy": a}
        for s, a in ((0, 0.6), (1, 0.9), (2, 0.9))
    ] + [
        {"task": "t", "size": 10, "mode": "dss", "k": None, "target": None, "seed": s, "accuracy": a}
        for s, a in ((0, 0.8), (3, 0.2))
    ] + [{"task": "t", "size": 10, "mode": "label_then_tokens", "k": 5.0, "target": "teacher", "seed": 1,
          "accuracy": 0.75}]
    summary = {entry["mode"]: entry for entry in summarize(rows)}
    assert summary["standard"]["mean"] == pytest.approx(0.6) and summary["standard"]["sd"] == pytest.approx(0.1)
    assert summary["multitask"]["mean"] == pytest.approx(0.8) and summary["multitask"]["sd"] == pytest.approx(0.1732051)
    assert summary["multitask"]["vs_standard"] == pytest.approx(0.2) and summary["standard"]["vs_standard"] is None
    # Paired on the seeds both ran: dss's seed 0 against standard's seed 0 only (+30), not 0.5 - 0.6.
    assert summary["dss"]["vs_standard"] == pytest.approx(0.3) and summary["dss"]["vs_standard_seeds"] == 1
    assert summary["label_then_tokens"]["sd"] is None  # one seed: no spread measured
    assert summary["multitask"]["vs_standard_low"] is None  # no predictions given: no interval
    table = results_markdown(list(summary.values()), {"t": {"accuracy": {"generation": 0.75}, "best": "generation"}})
    # One interval per comparison, the seeds' (the rows' and each seed's difference are its details).
    assert ("| t | 75.0% on its test rows (generation) |  | 10 | multitask |  | 5 | teacher | 3 |  | 80.0 ± 17.3 | "
            "+20.0 [-4.8, +44.8] |  |  |") in table
    details = table_details(list(summary.values()))
    assert details[list(summary).index("multitask")] == {TABLE_HEADERS[11]: "by seed +10.0, +20.0, +30.0"}
    assert summary["multitask"]["vs_standard_per_seed"] == pytest.approx([0.1, 0.2, 0.3])
    # By hand: mean 0.2, sd 0.1, 3 seeds: 0.2 -/+ 4.303 x 0.1 / sqrt(3) = [-0.0484, 0.4484].
    assert (summary["multitask"]["vs_standard_seed_low"], summary["multitask"]["vs_standard_seed_high"]) == \
        pytest.approx((-0.04843, 0.44843), abs=1e-4)
    assert "| dss |  |  |  | 2 |  | 50.0 ± 42.4 | +30.0 (on 1 of its 2 seeds: no interval) |" in table
    assert "| label_then_tokens |  | 5 | teacher | 1 |  | 75.0 | +5.0 (one seed: no interval) |" in table
    by_seed = seed_table(rows)
    assert summary["dss"]["only_here"] is None  # no predictions given: no per-row counts
    assert by_seed.splitlines()[0] == ("| task | student | train size | mode | method | k | target | seed 0 | seed 1 "
                                       "| seed 2 | seed 3 |")
    assert "| t |  | 10 | dss |  |  |  | 80.0 |  |  | 20.0 |" in by_seed
    assert "| t |  | 10 | multitask |  | 5 | teacher | 60.0 | 90.0 | 90.0 |  |" in by_seed


def test_rows_right_only_here_count_over_the_paired_seeds() -> None:
    def row(mode: str, seed: int, right: set[str]) -> dict:
        return {"task": "t", "size": 4, "mode": mode, "k": None, "target": None, "seed": seed,
                "accuracy": len(right) / 4, "right": frozenset(right), "ids": frozenset("abcd"), "examples": 4}

    rows = [row("standard", 0, {"a", "b"}), row("standard", 1, {"a"}),
            row("dss", 0, {"b", "c", "d"}), row("dss", 1, {"a", "b"}), row("dss", 2, {"a"})]
    (dss,) = [entry for entry in summarize(rows) if entry["mode"] == "dss"]
    # seed 0: c, d only under dss, a only under standard; seed 1: b only under dss; seed 2 has no standard.
    assert (dss["only_here"], dss["only_standard"]) == (3, 1)
    assert dss["vs_standard"] == pytest.approx(((0.75 - 0.5) + (0.5 - 0.25)) / 2)
    assert "| 3 / 1 |" in results_markdown(summarize(rows), {})


def test_every_mode_is_compared_with_the_random_word_control() -> None:
    ids = frozenset(f"r{i}" for i in range(10))

    def row(mode: str, method: str | None, right: int, seed: int = 0) -> dict:
        return {"task": "t", "student": "s", "size": 10, "mode": mode, "method": method, "k": None if method is None
                else 5.0, "target": None if method is None else "teacher", "seed": seed, "accuracy": right / 10,
                "right": rows_right(right, "r"), "ids": ids, "examples": 10}

    rows = [row("standard", None, 4), row("multitask", "saliency", 7), row("multitask", "random", 5),
            row("dss", None, 6)]
    summary = {(e["mode"], e["method"]): e for e in summarize(rows)}
    assert summary["multitask", "saliency"]["vs_control"] == pytest.approx(0.2)
    assert summary["multitask", "saliency"]["vs_standard"] == pytest.approx(0.3)
    assert summary["dss", None]["vs_control"] == pytest.approx(0.1)  # dss has no k: the task's one control
    assert summary["multitask", "random"]["vs_control"] is None and summary["standard", None]["vs_control"] is None
    assert summary["multitask", "random"]["vs_standard"] == pytest.approx(0.1)
    low, high = summary["multitask", "saliency"]["vs_control_low"], summary["multitask", "saliency"]["vs_control_high"]
    assert low < 0.2 < high


def test_collect_reads_cells_and_folders_run_did_not_write(tmp_path: Path) -> None:
    cell = tmp_path / "grid" / "t" / "n10" / "multitask-k5-teacher" / "seed0"
    (cell / "eval").mkdir(parents=True)
    # A cell written before the method was a factor: its words came from saliency.
    (cell / "cell.json").write_text(json.dumps({"task": "t", "student": "s", "size": 10, "mode": "multitask",
                                                "k": 5.0, "target": "teacher", "seed": 0}))
    (cell / "eval" / "metrics.json").write_text(json.dumps({"task": "t", "accuracy": 0.5, "examples": 2}))
    (cell / "eval" / "predictions.jsonl").write_text('{"id": "a", "correct": true}\n{"id": "b", "correct": false}\n'
                                                     "{damaged\n")
    (tmp_path / "grid" / "broken" / "eval").mkdir(parents=True)
    (tmp_path / "grid" / "broken" / "eval" / "metrics.json").write_text("{not json")
    rows, teachers = collect(tmp_path / "grid")
    assert len(rows) == 1 and teachers == {}
    assert rows[0]["method"] == "saliency" and rows[0]["right"] == {"a"} and rows[0]["ids"] == {"a", "b"}


def test_a_teacher_check_is_found_wherever_the_user_wrote_it_and_a_grids_wins(tmp_path: Path) -> None:
    from tokendistill.results import collect

    def check(folder: Path, accuracy: float) -> None:
        folder.mkdir(parents=True)
        (folder / "teacher_eval.json").write_text(json.dumps(
            {"task": "text", "accuracy": {"generation": accuracy}, "best": "generation"}))

    check(tmp_path / "my-checks" / "teacher", 0.7)  # `teacher-eval --output my-checks/teacher`
    check(tmp_path / "b" / "teacher-eval-before", 0.3)  # a base model's check is never the teacher's
    assert collect(tmp_path)[1]["text"]["accuracy"]["generation"] == 0.7
    check(tmp_path / "b" / "teacher-eval", 0.8)
    teacher = collect(tmp_path)[1]["text"]
    assert teacher["accuracy"]["generation"] == 0.8 and teacher["before_finetuning"]["accuracy"]["generation"] == 0.3


def _cell_rows(mode: str, method: str | None, accuracies: dict[int, float], rows: int = 400) -> list[dict]:
    """A cell's per-seed rows: seed s answers the first accuracy x rows test rows right."""
    ids = [f"r{i}" for i in range(rows)]
    return [{"task": "t", "student": "s", "size": 10, "mode": mode, "method": method, "k": 5.0 if method else None,
             "target": "teacher" if method else None, "marker": None, "seed": seed, "accuracy": accuracy,
             "examples": rows, "ids": frozenset(ids), "right": frozenset(ids[: round(accuracy * rows)])}
            for seed, accuracy in accuracies.items()]


def test_the_verdict_puts_declared_comparisons_first_and_claims_at_the_seed_level() -> None:
    from tokendistill.results import summarize, verdict

    rows = (_cell_rows("standard", None, {0: 0.60, 1: 0.62, 2: 0.61, 3: 0.60})
            + _cell_rows("multitask", "saliency", {0: 0.70, 1: 0.71, 2: 0.69, 3: 0.70})
            + _cell_rows("multitask", "random_matched", {0: 0.70, 1: 0.70, 2: 0.70, 3: 0.70}))
    found = verdict(summarize(rows), rows, 0.02, ["multitask saliency vs multitask random_matched"])
    first = found[0]
    assert first["primary"] and first["comparison"] == "multitask saliency vs multitask random_matched"
    # Level with its control on every seed, within ±2 points at the seed level: the words' effect is excluded.
    assert first["claim"] == "excluded" and first["seeds"] == 4 and -0.02 < first["low"] < first["high"] < 0.02
    versus_standard = next(row for row in found if row["comparison"] == "multitask saliency vs standard")
    assert not versus_standard["primary"] and versus_standard["claim"] == "established"
    assert versus_standard["p_holm"] >= versus_standard["p"]
    # The control's comparison names the matched control, not the uniform one.
    assert not any(row["comparison"].endswith(" random") for row in found)


def test_the_claims_in_words_are_the_verdicts() -> None:
    from tokendistill.results import claims_markdown, summarize, verdict

    rows = (_cell_rows("standard", None, {0: 0.60, 1: 0.62, 2: 0.61, 3: 0.60})
            + _cell_rows("multitask", "saliency", {0: 0.70, 1: 0.71, 2: 0.69, 3: 0.70})
            + _cell_rows("multitask", "random_matched", {0: 0.70, 1: 0.70, 2: 0.70, 3: 0.70})
            + _cell_rows("kd", None, {0: 0.55, 1: 0.70, 2: 0.60, 3: 0.66}))
    found = verdict(summarize(rows), rows, 0.02, ["multitask saliency vs multitask random_matched", "kd vs standard"])
    lines = claims_markdown(found, 0.02).splitlines()
    assert lines[0] == "What the seeds allow (against the declared 2 points):"
    # The declared ones first, each with its claim and its seed-level interval as the table has them.
    words, kd = lines[2], lines[3]
    assert words.startswith("- **excluded**: multitask saliency vs multitask random_matched (t): +0.0 points over 4 seeds")
    assert words.endswith("inside ±2 points.")
    kd_row = next(row for row in found if row["comparison"] == "kd vs standard")
    assert kd_row["claim"] == "inconclusive"
    assert kd.startswith("- **inconclusive**: kd vs standard (t): ")
    assert kd.endswith(f"about {kd_row['seeds_needed']} seeds would detect 2 points at 80% power.")
    assert f"[{100 * kd_row['low']:+.1f}, {100 * kd_row['high']:+.1f}]" in kd
    # A secondary comparison appears only when established after Holm's correction; the rest are counted.
    established = [row for row in found if not row["primary"] and row["claim"] == "established"]
    assert established and all(f"- **established**: {row['comparison']} (t)" in "\n".join(lines) for row in established)
    secondary = sum(not row["primary"] for row in found)
    assert lines[-1].startswith(f"- Of the {secondary} secondary comparisons, {len(established)} ")
    # On fewer seeds than the grid planned, a declared comparison's claim says it is interim; a finished one does not.
    interim = claims_markdown(found, 0.02, planned=5).splitlines()
    assert interim[2] == words + " Interim: 4 of the 5 seeds planned." and interim[3].endswith("seeds planned.")
    assert claims_markdown(found, 0.02, planned=4) == claims_markdown(found, 0.02)
    left_out = [row for row in found if not row["primary"] and row["claim"] != "established"]
    assert left_out and not any(f": {row['comparison']} (t)" in "\n".join(lines) for row in left_out)


def test_an_established_declared_claim_says_what_a_correction_over_the_declared_would_do() -> None:
    from tokendistill.results import claims_markdown

    def row(name: str, claim: str, low: float, high: float, p: float) -> dict:
        return {"task": "t", "comparison": name, "primary": True, "seeds": 5, "difference": (low + high) / 2,
                "low": low, "high": high, "p": p, "seeds_needed": 9, "claim": claim}

    small = row("a vs b", "established", 0.001, 0.015, 0.03)
    lines = claims_markdown([small, row("c vs d", "inconclusive", -0.03, 0.04, 0.5)], 0.02).splitlines()
    # Inside ±2 points: established, and smaller than the effect; Holm over the two declared: 2 x 0.03 = 0.06.
    assert lines[2] == ("- **established**: a vs b (t): +0.8 points over 5 seeds, 95% [+0.1, +1.5], inside ±2 points "
                        "(smaller than the effect declared worth finding). Not corrected for the other declared "
                        "comparisons: with Holm's correction over them its p 0.03 would be 0.06, and it would read "
                        "inconclusive.")
    # One that survives the correction (2 x 0.001), or stands alone, says nothing of it.
    clear = claims_markdown([row("a vs b", "established", 0.03, 0.05, 0.001),
                             row("c vs d", "inconclusive", -0.03, 0.04, 0.5)], 0.02).splitlines()[2]
    assert clear == "- **established**: a vs b (t): +4.0 points over 5 seeds, 95% [+3.0, +5.0]."
    assert "Not corrected" not in claims_markdown([small], 0.02)


def test_declarations_come_from_the_grid_plans(tmp_path: Path) -> None:
    from tokendistill.results import declarations

    (tmp_path / "experiment.yaml").write_text("# tokendistill run x.yaml\neffect_of_interest: 2\nprimary: [a vs b]\n")
    (tmp_path / "experiment-other.yaml").write_text("effect_of_interest: 1\nprimary: [c vs d]\n")
    (tmp_path / "experiment-broken.yaml").write_bytes(b"\xff\xfe: [")
    effect, primary = declarations(tmp_path)
    assert effect == 0.02 and sorted(primary) == ["a vs b", "c vs d"]
    from tokendistill.results import planned_seeds

    # A verdict is interim until the seeds of the plans that declared comparisons have run.
    assert planned_seeds(tmp_path) is None
    (tmp_path / "experiment-seeds.yaml").write_text("seeds: [0, 1, 2, 3, 4]\nprimary: [e vs f]\n")
    (tmp_path / "experiment-undeclared.yaml").write_text("seeds: [0, 1, 2, 3, 4, 5, 6]\n")
    assert planned_seeds(tmp_path) == 5
