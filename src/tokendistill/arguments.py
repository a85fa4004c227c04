"""Command-line options from the typed configs: one `--flag` per dataclass field, grouped in `--help`, and a
config built from the flags a user gave over an optional `--config` YAML file."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

from tokendistill.config import build, load_yaml, type_hints, unwrap_optional

C = TypeVar("C")


# Where each option shows in `--help` (one owner for the grouping; an option not named here is "other").
HELP_GROUPS: dict[str, tuple[str, ...]] = {
    "data": ("task", "data", "input_column", "label_column", "free_text", "test_fraction", "split", "limit", "seed",
             "llm_rationales"),
    "models": ("teacher", "student", "model", "init", "lora_rank", "lora_alpha", "lora_targets", "prompt_suffix",
               "chat_template"),
    "method": ("method", "target", "choice_scoring", "only_correct", "top_k", "merge", "drop_punctuation",
               "drop_stopwords", "ig_steps", "mode", "rationales", "alpha", "kd_weight", "kd_temperature", "align_weight",
               "task_marker", "answer"),
    "training": ("steps", "learning_rate", "batch_size", "gradient_accumulation", "lr_scheduler", "warmup_steps",
                 "max_grad_norm", "max_input_length", "max_target_length", "max_new_tokens", "batch_by_length"),
    "output": ("output", "overwrite", "checkpoint_every", "strict", "device"),
}


def add_arguments(
    parser: argparse.ArgumentParser, cls: type, registries: Mapping[str, Sequence[str]] | None = None
) -> None:
    """One ``--flag`` per dataclass field, grouped as in ``HELP_GROUPS``; defaults are left out so that YAML
    values are only overridden by flags the user actually gave. A boolean takes ``--flag`` / ``--no-flag``."""
    parser.add_argument("--config", help="YAML file with any of these options; flags override it")
    hints = type_hints(cls)
    group_of = {name: group for group, names in HELP_GROUPS.items() for name in names}
    groups: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        hint, _ = unwrap_optional(hints[item.name])
        flag = "--" + item.name.replace("_", "-")
        help_text = item.metadata.get("help", "")
        if (registry := item.metadata.get("registry")) and registries and registry in registries:
            help_text += ": " + ", ".join(registries[registry])  # the registry's names, never a list kept by hand
        shown = item.metadata.get("shown_default", item.default)
        if item.default is dataclasses.MISSING:
            help_text += " (required)"
        elif shown is not None:
            help_text += f" (default: {shown})"
        if item.metadata.get("positional"):
            many = typing.get_origin(hint) is list
            parser.add_argument(item.name, nargs="+" if many else None, help=item.metadata.get("help", ""))
            continue
        name = group_of.get(item.name, "other")
        if name not in groups:
            groups[name] = parser.add_argument_group(f"{name} options")
        target = groups[name]
        kwargs: dict[str, Any] = {"dest": item.name, "default": argparse.SUPPRESS, "help": help_text}
        if hint is bool:
            # A flag takes no value (--flag / --no-flag), so it never swallows the positional after it.
            target.add_argument(flag, action="store_const", const=True, **kwargs)
            target.add_argument("--no-" + flag[2:], dest=item.name, action="store_const", const=False,
                                default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        elif typing.get_origin(hint) is Literal:
            target.add_argument(flag, choices=list(typing.get_args(hint)), **kwargs)
        else:
            target.add_argument(flag, type=hint if hint in (int, float) else str, **kwargs)


def from_arguments(cls: type[C], namespace: argparse.Namespace) -> C:
    values = vars(namespace).copy()
    for key in ("command", "handler", "debug"):
        values.pop(key, None)
    yaml_path = values.pop("config", None)
    merged = load_yaml(yaml_path) if yaml_path else {}
    merged.update(values)
    config = build(cls, merged)
    output = getattr(config, "output", None)
    if yaml_path and isinstance(output, str):
        from tokendistill.folders import refuse_overlap

        # The --config file is an input too: an output that holds it would replace or delete it.
        refuse_overlap(output, {"--config file": str(yaml_path)})
    return config
