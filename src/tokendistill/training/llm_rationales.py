"""The LLM rationales that ship with the Distilling step-by-step data, parsed as DSS parses them.

Each file ``{task}/llm/{split}_CoT_{i}.json`` is a JSON array of PaLM completions; element j of file i
belongs to row i*B + j of the split, so concatenating the files in index order aligns them with the rows.
A completion runs on into examples the LLM invented: it is cut at the next one ("Q:" for CQA and SVAMP,
"Premise:" for the NLI tasks), then split at the answer phrase; what precedes it is the rationale.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from tokendistill.errors import UserError
from tokendistill.tasks import TASKS

ANSWER_PHRASES = ("So the answer is", "The answer is", "the answer is", "Answer:")
# Untrusted text: bound the work per completion.
MAX_CHARACTERS = 20_000


def parse_llm_output(text: str, task: str) -> tuple[str, str]:
    """(rationale, answer) of one completion; an unparseable one gives ("", "")."""
    text = text[:MAX_CHARACTERS]
    marker = TASKS.get(task).llm_next_example if task in TASKS else None
    if marker:
        text = text.split(marker)[0]
    text = text.rstrip()
    for phrase in ANSWER_PHRASES:
        if phrase in text:
            rationale, _, answer = text.partition(phrase)
            return rationale.strip(), answer.strip().rstrip(".").strip()
    return "", ""


def _file_index(path: Path) -> int:
    match = re.search(r"_CoT_(\d+)\.json$", path.name)
    return int(match.group(1)) if match else -1


@lru_cache(maxsize=8)
def load_llm_rationales(folder: str, task: str, split: str) -> tuple[str, ...]:
    """Rationales of every row of ``split``, in row order."""
    llm = Path(folder).expanduser() / task / "llm"
    files = sorted(llm.glob(f"{split}_CoT_*.json"), key=_file_index)
    if not files:
        raise UserError(
            f"no LLM rationales for {task}/{split} in {llm} (expected {split}_CoT_0.json, ...); the dss mode needs "
            "the Distilling step-by-step data: pass its folder with --llm-rationales or --data"
        )
    rationales: list[str] = []
    for path in files:
        try:
            completions = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise UserError(f"cannot parse {path}: {error}") from None
        rationales += [parse_llm_output(str(text), task)[0] for text in completions]
    return tuple(rationales)
