"""Training modes, by name in ``MODES``: the base (``modes.base``) and one module per built-in mode family. Importing
this package registers them all."""

from tokendistill.training.modes import align, kd, multitask_kd, paper  # noqa: F401  (registers the built-in modes)
from tokendistill.training.modes.align import AlignConfig
from tokendistill.training.modes.base import (
    EXPLAIN_CUE,
    EXPLAIN_PREFIX,
    LABEL,
    MODES,
    PREDICT_PREFIX,
    RATIONALE,
    TRAIN_CONFIGS,
    LossGroup,
    Mode,
    RationaleSource,
    Signal,
    TrainingRow,
    answer_part,
    marker_after_input,
    marker_to_decoder,
    rationale_text,
    train_config,
)
from tokendistill.training.modes.multitask_kd import KDConfig
from tokendistill.training.modes.paper import LABEL_THEN_TOKENS_SEPARATOR

__all__ = ["EXPLAIN_CUE", "EXPLAIN_PREFIX", "LABEL", "TRAIN_CONFIGS", "AlignConfig", "KDConfig", "train_config", "LABEL_THEN_TOKENS_SEPARATOR", "MODES", "PREDICT_PREFIX",
           "RATIONALE", "LossGroup", "Mode", "RationaleSource", "Signal", "TrainingRow", "answer_part",
           "marker_after_input", "marker_to_decoder", "rationale_text"]
