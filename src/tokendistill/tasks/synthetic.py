"""A generated task for the offline demo: the label follows from one key word hidden among distractors.

A from-scratch model learns it in one step (find the key word, map it to its class), which the prototype
in shared/notes found essential: two-step generated tasks left a small teacher at chance.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from typing import Any

from tokendistill.tasks.base import Example, Segment, Task
from tokendistill.tasks.builtin import TASKS

KEYWORDS: dict[str, tuple[str, ...]] = {
    "animal": ("cat", "horse", "tiger", "rabbit", "eagle", "wolf", "otter", "camel"),
    "fruit": ("apple", "banana", "mango", "cherry", "grape", "lemon", "peach", "plum"),
    "tool": ("hammer", "wrench", "drill", "chisel", "pliers", "shovel", "ladder", "axe"),
    "vehicle": ("truck", "bicycle", "train", "boat", "tractor", "scooter", "bus", "van"),
    "instrument": ("violin", "drum", "flute", "piano", "guitar", "trumpet", "harp", "cello"),
    "clothing": ("jacket", "scarf", "boots", "hat", "gloves", "sweater", "coat", "skirt"),
}
DISTRACTORS: tuple[str, ...] = tuple(
    ["the", "a", "quiet", "river", "morning", "village", "yesterday", "near", "under", "happy", "green", "small", "large", "painted", "carried", "found", "left", "beside", "table", "window", "garden", "street", "friend", "teacher", "letter", "market", "corner", "yellow", "bright", "slowly", "often", "perhaps", "chair", "lamp", "book", "door", "road", "cloud", "stone", "paper", "soft", "heavy", "early", "late", "went", "saw", "kept", "next", "blue"]
)
SPLIT_SEEDS = {"train": 1, "valid": 2, "test": 3}
SPLIT_SIZES = {"train": 10_000, "valid": 500, "test": 1_000}


def generate_records(split: str, size: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Deterministic records ``{"id", "input", "label", "keyword"}``; each split draws from its own stream."""
    rng = random.Random(seed * 1000 + SPLIT_SEEDS.get(split, 9))
    labels = sorted(KEYWORDS)
    for index in range(size):
        label = rng.choice(labels)
        keyword = rng.choice(KEYWORDS[label])
        words = [rng.choice(DISTRACTORS) for _ in range(rng.randint(8, 14))]
        words.insert(rng.randint(0, len(words)), keyword)
        yield {"id": f"{split}-{index}", "input": " ".join(words), "label": label, "keyword": keyword}


@TASKS.register("keywords")
class KeywordTask(Task):
    """Which kind of thing does the sentence mention? (generated; used by ``tokendistill demo``)"""

    name = "keywords"
    labels = tuple(sorted(KEYWORDS))
    splits = ("train", "valid", "test")

    def format(self, record: Mapping[str, Any], index: int, split: str) -> Example:
        label = self.check_label(str(self.require(record, "label")))
        return Example(
            str(record.get("id", f"{split}-{index}")),
            (Segment("input", str(self.require(record, "input"))),),
            label,
            self.labels,
            meta={"keyword": record.get("keyword", "")},
        )

    def evidence_words(self, example: Example) -> tuple[str, ...]:
        keyword = example.meta.get("keyword")
        return (keyword,) if keyword else ()

    def generated(self, split: str, seed: int = 0) -> Iterator[dict[str, Any]]:
        # The data are the data: a run's seed (a student's, say) must not draw other sentences under the same
        # ids, or its rationales, extracted at another seed, would describe other inputs.
        del seed
        return generate_records(split, SPLIT_SIZES.get(split, 1_000))
