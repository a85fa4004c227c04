"""The analysis stage: what the teacher's words contain, against what chance would give.

A raw share ("the top-k words hold the answer in 68% of examples") misleads on its own: multiple-choice
inputs list the answer among the choices, so even random words often hit it. Every share here therefore
comes with two baselines computed on the same examples and the same k: k random words of the input, and
k random content words (no stopwords, no punctuation). The baselines are exact expectations (hypergeometric
and inclusion-exclusion), not samples, so they carry no sampling noise and the tests can check them exactly.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tokendistill.analysis_text import SUBSETS, markdown, overlap_table  # noqa: F401  (overlap_table: the CLI's)
from tokendistill.artefacts import ANALYSIS_JSON, ANALYSIS_MD
from tokendistill.attribution.words import WORD_PATTERN
from tokendistill.errors import UserError
from tokendistill.folders import write_file
from tokendistill.options import option
from tokendistill.rationales import extraction_settings, iter_rationales, read_manifest, write_json_atomic
from tokendistill.selection import STOPWORDS, candidate_flags, is_punctuation
from tokendistill.tasks.base import TEMPLATE

# The selected words, then the chance baselines (exact expectations) they are compared with.
BASELINES = ("rationale", "random_words", "random_content_words", "random_same_parts")
# Inclusion-exclusion over the distinct answer words costs 2^m terms; answers are short, but cap it.
MAX_ANSWER_WORDS = 12


@dataclass(kw_only=True)
class AnalyzeConfig:
    rationales: list[str] = option(dataclasses.MISSING, "rationale folder(s) written by `extract`", positional=True)
    output: str | None = option(None, "folder for analysis.json and analysis.md (default: the first folder)")
    max_k: int = option(10, "largest k of the share-vs-k curve", minimum=1)
    top_words: int = option(20, "how many of the most frequent rationale words to list", minimum=1)



def normalize_word(word: str) -> str:
    """Lower case; numbers in one spelling, so that "10.0" in an equation matches "10" in the text."""
    word = word.lower()
    try:
        value = float(word.replace(",", ""))
    except ValueError:
        return word
    if not math.isfinite(value):
        return word
    return str(int(value)) if value.is_integer() else repr(value)


def is_content(word: str) -> bool:
    return not is_punctuation(word) and word.lower() not in STOPWORDS


def answer_words(text: str) -> set[str]:
    """The words of an answer that count as "the answer appears": content words, or all words if it has none."""
    words = [match.group() for match in WORD_PATTERN.finditer(text or "")]
    content = [word for word in words if is_content(word)]
    chosen = content or [word for word in words if not is_punctuation(word)]
    return {normalize_word(word) for word in chosen}


@dataclass(frozen=True)
class RecordView:
    """What the statistics need of one record."""

    words: tuple[str, ...]  # normalised
    roles: tuple[str, ...]
    scores: np.ndarray  # NaN where the word got no score
    candidates: np.ndarray  # bool: words the extraction could select
    rationale: tuple[int, ...]  # positions of the selected words
    gold: frozenset[str]
    teacher_answer: frozenset[str]
    teacher_correct: bool | None  # None: not known (extracted with --target gold, the teacher not asked)
    raw_words: tuple[str, ...]


def view_record(record: dict[str, Any], drop_punctuation: bool = True, drop_stopwords: bool = False) -> RecordView:
    raw = tuple(record["words"])
    roles = tuple(record.get("word_roles") or ["input"] * len(raw))
    scores = np.array([np.nan if s is None else s for s in record.get("word_scores", [None] * len(raw))], dtype=float)
    candidates = candidate_flags(raw, roles, drop_punctuation, drop_stopwords) & ~np.isnan(scores)
    gold = record.get("gold_words") or answer_words(record.get("target", ""))
    return RecordView(
        words=tuple(normalize_word(word) for word in raw),
        roles=roles,
        scores=scores,
        candidates=candidates,
        rationale=tuple(record.get("rationale_positions", [])),
        gold=frozenset(normalize_word(word) for word in gold),
        teacher_answer=frozenset(answer_words(record.get("teacher_answer") or "")),
        teacher_correct=None if record.get("teacher_correct") is None else bool(record["teacher_correct"]),
        raw_words=raw,
    )


# ----- exact chance baselines ------------------------------------------------------------------------------
def chance_any(pool: int, hits: int, k: int) -> float:
    """P(a uniform k-subset of ``pool`` positions includes at least one of ``hits`` marked positions)."""
    k = min(k, pool)
    if hits == 0 or k == 0:
        return 0.0
    return 1.0 - math.comb(pool - hits, k) / math.comb(pool, k)


def chance_all(pool: int, groups: Sequence[int], k: int) -> float:
    """P(a uniform k-subset covers every group), each group a disjoint set of positions of the given size.

    Inclusion-exclusion: sum over sets S of groups of (-1)^|S| * P(no position of S is drawn).
    """
    k = min(k, pool)
    if not groups or any(size == 0 for size in groups):
        return 0.0
    groups = list(groups)[:MAX_ANSWER_WORDS]
    total = 0.0
    for size in range(len(groups) + 1):
        for subset in itertools.combinations(groups, size):
            missed = sum(subset)
            total += (-1) ** size * math.comb(pool - missed, k) / math.comb(pool, k)
    return max(0.0, min(1.0, total))


def _hit_any(selected: Iterable[int], words: Sequence[str], answer: frozenset[str]) -> bool:
    return any(words[i] in answer for i in selected)


def _hit_all(selected: Iterable[int], words: Sequence[str], answer: frozenset[str]) -> bool:
    present = {w for w in answer if w in words}
    return bool(present) and present <= {words[i] for i in selected}


def overlap_shares(views: Sequence[RecordView], answer_of: str, k: int | None = None) -> dict[str, Any]:
    """Shares of examples whose selected words hold an answer word ("any") or every answer word that occurs
    in the input ("whole"), beside the two random baselines with the same k, over the examples whose input
    contains an answer word at all. ``k=None`` uses each record's own rationale; otherwise the top k by score.
    """
    sums = defaultdict(float)
    counted = 0
    for view in views:
        answer = view.gold if answer_of == "gold" else view.teacher_answer
        if k is None:
            selected = view.rationale
        else:
            eligible = np.flatnonzero(view.candidates)
            order = eligible[np.lexsort((eligible, -view.scores[eligible]))]
            selected = tuple(order[:k].tolist())
        size = len(selected)
        pools = {
            "random_words": [i for i, role in enumerate(view.roles) if role != TEMPLATE],
            "random_content_words": [
                i for i, role in enumerate(view.roles) if role != TEMPLATE and is_content(view.raw_words[i])
            ],
        }
        if not any(view.words[i] in answer for i in pools["random_words"]) or size == 0:
            continue
        counted += 1
        sums["any/rationale"] += _hit_any(selected, view.words, answer)
        sums["whole/rationale"] += _hit_all(selected, view.words, answer)
        for name, pool in pools.items():
            present = [w for w in answer if any(view.words[i] == w for i in pool)]
            group_sizes = [sum(view.words[i] == w for i in pool) for w in present]
            sums[f"any/{name}"] += chance_any(len(pool), sum(group_sizes), size)
            sums[f"whole/{name}"] += chance_all(len(pool), group_sizes, size) if present else 0.0
        sums["any/random_same_parts"] += 1.0 - _miss_same_parts(view, selected, answer)
    result: dict[str, Any] = {"examples": len(views), "answer_in_input": counted}
    for measure in ("any", "whole"):
        result[measure] = {
            name: (sums[f"{measure}/{name}"] / counted if counted else None)
            for name in BASELINES
            if measure == "any" or name != "random_same_parts"
        }
    return result


def _miss_same_parts(view: RecordView, selected: Sequence[int], answer: frozenset[str]) -> float:
    """P(no answer word) for random candidate words drawn part by part in the rationale's own numbers (as
    many from the choices, as many from the question, ...): on multiple-choice inputs, saliency that merely
    points at the choices gets this share for free."""
    missed = 1.0
    for role, count in Counter(view.roles[i] for i in selected).items():
        pool = [i for i in np.flatnonzero(view.candidates) if view.roles[i] == role]
        hits = sum(view.words[i] in answer for i in pool)
        missed *= 1.0 - chance_any(len(pool), hits, count)
    return missed


def _known_share(values: Sequence[bool | None]) -> float | None:
    known = [value for value in values if value is not None]
    return sum(known) / len(known) if known else None


def subsets(views: Sequence[RecordView]) -> dict[str, list[RecordView]]:
    return {
        "all": list(views),
        "teacher_right": [v for v in views if v.teacher_correct is True],
        "teacher_wrong": [v for v in views if v.teacher_correct is False],
    }


def _picked_and_offered(views: Sequence[RecordView], key: str) -> tuple[Counter[str], Counter[str]]:
    """Counts of a per-word attribute (``words`` or ``roles``) over the rationale words and the candidates."""
    picked: Counter[str] = Counter()
    offered: Counter[str] = Counter()
    for view in views:
        values = getattr(view, key)
        picked.update(values[i] for i in view.rationale)
        offered.update(values[i] for i in np.flatnonzero(view.candidates))
    return picked, offered


def frequent_words(views: Sequence[RecordView], top: int) -> list[dict[str, Any]]:
    """The commonest rationale words, with how much likelier they are to be picked than to occur."""
    picked, offered = _picked_and_offered(views, "words")
    total_picked, total_offered = sum(picked.values()) or 1, sum(offered.values()) or 1
    return [
        {
            "word": word,
            "count": count,
            "share_of_rationale_words": count / total_picked,
            "lift": (count / total_picked) / (offered[word] / total_offered) if offered[word] else None,
        }
        for word, count in picked.most_common(top)
    ]


def positions(views: Sequence[RecordView]) -> dict[str, dict[str, float]]:
    """Per input role (question, choice, premise, ...): its share of rationale words and of candidate words."""
    picked, offered = _picked_and_offered(views, "roles")
    total_picked, total_offered = sum(picked.values()) or 1, sum(offered.values()) or 1
    return {
        role: {"rationale_share": picked[role] / total_picked, "candidate_share": offered[role] / total_offered}
        for role in sorted(offered)
    }


def rank(values: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (as Spearman's correlation needs)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=float)
    for value in np.unique(values):
        tied = values == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 2:
        return None
    ra, rb = rank(a), rank(b)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def agreement(first: dict[str, RecordView], second: dict[str, RecordView]) -> dict[str, Any]:
    """Top-k overlap (shared words / k) and rank correlation of word scores, averaged over shared examples."""
    overlaps, correlations = [], []
    for example_id in sorted(set(first) & set(second)):
        a, b = first[example_id], second[example_id]
        if a.words != b.words:
            continue
        k = min(len(a.rationale), len(b.rationale))
        if k:
            overlaps.append(len(set(a.rationale) & set(b.rationale)) / max(len(a.rationale), len(b.rationale)))
        both = a.candidates & b.candidates
        correlation = spearman(a.scores[both], b.scores[both])
        if correlation is not None:
            correlations.append(correlation)
    return {
        "examples": len(overlaps),
        "top_k_overlap": float(np.mean(overlaps)) if overlaps else None,
        "spearman": float(np.mean(correlations)) if correlations else None,
    }


def analyze_folder(folder: str | Path, max_k: int = 10, top_words: int = 20) -> tuple[dict[str, Any], dict[str, RecordView]]:
    manifest = read_manifest(folder)
    extracted = extraction_settings(folder, manifest)
    records = list(iter_rationales(folder))
    if not records:
        raise UserError(f"{folder} holds no rationale records yet; run or resume `tokendistill extract`")
    views = {record["id"]: view_record(record, extracted.drop_punctuation, extracted.drop_stopwords)
             for record in records}
    ordered = list(views.values())
    groups = subsets(ordered)
    result = {
        "folder": str(folder),
        "task": extracted.task,
        "split": extracted.split,
        "method": extracted.method,
        "teacher": extracted.teacher,
        "target": extracted.target,
        "top_k": extracted.top_k,
        "complete": manifest.get("complete", False),
        "examples": len(ordered),
        "teacher_accuracy": _known_share([v.teacher_correct for v in ordered]),
        "chance_accuracy": (manifest.get("summary") or {}).get("chance_accuracy"),
        "teacher_trained_on": sum(bool(record.get("teacher_trained_on")) for record in records),
        "answer_overlap": {
            answer_of: {name: overlap_shares(group, answer_of) for name, group in groups.items()}
            for answer_of in ("gold", "teacher_answer")
        },
        "by_k": [{"k": k, **overlap_shares(ordered, "gold", k)} for k in range(1, max_k + 1)],
        "frequent_words": frequent_words(ordered, top_words),
        "positions": positions(ordered),
    }
    return result, views


def analyze(config: AnalyzeConfig) -> dict[str, Any]:
    """Analyse one or more rationale folders; writes analysis.json and analysis.md; returns the JSON."""
    if not config.rationales:
        raise UserError("give at least one rationale folder: tokendistill analyze RATIONALES_DIR [...]")
    if config.max_k < 1:
        raise UserError("--max-k must be at least 1")
    sets, views = [], []
    for folder in config.rationales:
        result, folder_views = analyze_folder(folder, config.max_k, config.top_words)
        sets.append(result)
        views.append(folder_views)
    pairs = []
    for (i, a), (j, b) in itertools.combinations(enumerate(sets), 2):
        if a["task"] == b["task"] and a["split"] == b["split"]:
            pairs.append({"a": a["folder"], "b": b["folder"], "method_a": a["method"], "method_b": b["method"],
                          **agreement(views[i], views[j])})
    analysis = {"sets": sets, "agreement": pairs}
    output = Path(config.output or config.rationales[0]) / "analysis"
    output.mkdir(parents=True, exist_ok=True)
    write_json_atomic(output / ANALYSIS_JSON, analysis)
    write_file(output / ANALYSIS_MD, markdown(analysis))
    analysis["output"] = str(output)
    return analysis


# ----- tables -----------------------------------------------------------------------------------------------
