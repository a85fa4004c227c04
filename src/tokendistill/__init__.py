"""tokendistill: train small students on the input words a teacher relies on (Ballout et al., 2024).

The stages as Python functions, each taking the same typed config as its command (docs/python.md):

    from tokendistill import ExtractConfig, TrainConfig, EvaluateConfig, extract, train, evaluate, answer

(`answer` is `tokendistill.predict.answer`, `check_teacher` is `tokendistill.teacher_eval.teacher_eval`: the
submodules `predict` and `teacher_eval` keep their own names.)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Imported on first use: `tokendistill --version` and `import tokendistill` stay fast (no torch).
_LAZY = {
    "ExtractConfig": "tokendistill.config",
    "TrainConfig": "tokendistill.config",
    "EvaluateConfig": "tokendistill.config",
    # A mode's own options come with its config class: TrainConfig plus the options only that mode takes.
    "KDConfig": "tokendistill.training.modes",
    "AlignConfig": "tokendistill.training.modes",
    "TeacherEvalConfig": "tokendistill.teacher_eval",
    # Any of these configs from a dict or a YAML's mapping, checked as the command line checks its flags.
    "build": "tokendistill.options",
    "extract": "tokendistill.attribution.extract",
    "train": "tokendistill.training.trainer",
    "evaluate": "tokendistill.evaluation",
    "check_teacher": "tokendistill.teacher_eval",
    "answer": "tokendistill.predict",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'tokendistill' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(_LAZY[name])
    return getattr(module, "teacher_eval" if name == "check_teacher" else name)
