"""Attribution: a teacher scores every input word by its influence on the answer; the top-k become rationales.

The names below load on first use (PEP 562): the stage and its methods import torch, and what only needs words
(analysis, the CLI's --help) should not wait for it.
"""

from __future__ import annotations

import importlib
from typing import Any

# The stage itself is `tokendistill.attribution.extract.extract` (a lazy package attribute of the same name as
# its module would be the module once that is imported).
_EXPORTS = {"METHODS": "methods", "MethodOptions": "methods", "Teacher": "teacher", "TeacherBatch": "teacher"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
