"""An analysis as Markdown: the answer-overlap tables against their chance baselines, each rationale folder's
commonest words and input parts, and the agreement between methods."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# The examples each share is reported for: all, and those the teacher got right or wrong.
SUBSETS = ("all", "teacher_right", "teacher_wrong")


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def overlap_table(sets: Sequence[dict[str, Any]], answer_of: str = "gold", measure: str = "any") -> str:
    lines = [
        "| task | method | examples | subset | with answer in input | top-k words | random words | random content words "
        "| random words from the same input parts |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in sets:
        for subset in SUBSETS:
            shares = result["answer_overlap"][answer_of][subset]
            row = shares[measure]
            lines.append(
                f"| {result['task']} | {result['method']} | {shares['examples']} | {subset} | "
                f"{shares['answer_in_input']} | {_share(row['rationale'])} | {_share(row['random_words'])} | "
                f"{_share(row['random_content_words'])} | {_share(row.get('random_same_parts'))} |"
            )
    return "\n".join(lines)


def _set_markdown(result: dict[str, Any]) -> list[str]:
    """One rationale folder's section: the teacher's accuracy, the share by k, the commonest words, the parts."""
    parts = [f"## {result['task']} / {result['method']}: {result['folder']}", "",
             f"Teacher accuracy on these examples: {_share(result['teacher_accuracy'])} "
             f"(chance {_share(result['chance_accuracy'])}).", ""]
    if result["answer_overlap"]["gold"]["all"]["answer_in_input"]:
        parts += ["| k | top-k words hold a gold word | random words | random content words |", "|---|---|---|---|"]
        parts += [f"| {row['k']} | {_share(row['any']['rationale'])} | {_share(row['any']['random_words'])} | "
                  f"{_share(row['any']['random_content_words'])} |" for row in result["by_k"]]
    parts += ["", "| word | count | share of rationale words | lift over its frequency |", "|---|---|---|---|"]
    for row in result["frequent_words"]:
        lift = "n/a" if row["lift"] is None else f"{row['lift']:.2f}"
        parts.append(f"| {row['word']} | {row['count']} | {_share(row['share_of_rationale_words'])} | {lift} |")
    parts += ["", "| input part | share of rationale words | share of candidate words |", "|---|---|---|"]
    parts += [f"| {role} | {_share(row['rationale_share'])} | {_share(row['candidate_share'])} |"
              for role, row in result["positions"].items()]
    return [*parts, ""]


def markdown(analysis: dict[str, Any]) -> str:
    parts = ["# Rationale analysis", ""]
    checkable = any(result["answer_overlap"]["gold"]["all"]["answer_in_input"] for result in analysis["sets"])
    if checkable:
        for answer_of, title in (("gold", "the gold answer"), ("teacher_answer", "the teacher's own answer")):
            for measure, wording in (("any", "any word of"), ("whole", "every word of")):
                parts += [f"## Top-k words holding {wording} {title}", "",
                          overlap_table(analysis["sets"], answer_of, measure), ""]
    else:
        # A classification's labels ("positive", "entailment") are not words of its inputs: no share to show.
        parts += ["The answers never occur in these inputs (a classification's labels, say), so whether the words "
                  "hold the answer cannot be measured; below: which words and which input parts the teacher picks.",
                  ""]
    for result in analysis["sets"]:
        parts += _set_markdown(result)
    if analysis["agreement"]:
        parts += ["## Agreement between methods", "", "| method a | method b | examples | top-k overlap | Spearman |",
                  "|---|---|---|---|---|"]
        for row in analysis["agreement"]:
            spearman_text = "n/a" if row["spearman"] is None else f"{row['spearman']:.3f}"
            parts.append(f"| {row['method_a']} | {row['method_b']} | {row['examples']} | "
                         f"{_share(row['top_k_overlap'])} | {spearman_text} |")
    return "\n".join(parts) + "\n"

