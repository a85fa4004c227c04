"""Command-line options from the typed configs: one `--flag` per dataclass field, grouped in `--help`, and a
config built from the flags a user gave over an optional `--config` YAML file."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

from tokendistill.options import ConfigVariants, build, field_names, load_yaml, type_hints, unwrap_optional

C = TypeVar("C")


# Where each option shows in `--help` (one owner for the grouping; an option not named here is "other").
HELP_GROUPS: dict[str, tuple[str, ...]] = {
    "data": ("task", "data", "input_column", "label_column", "free_text", "test_fraction", "valid_fraction", "split", "limit", "seed",
             "llm_rationales"),
    "models": ("teacher", "student", "model", "init", "base_model_id", "trust_remote_code", "lora_rank", "lora_alpha",
               "lora_targets", "prompt_suffix", "chat_template"),
    "method": ("method", "target", "choice_scoring", "only_correct", "top_k", "top_k_cap", "merge", "drop_punctuation",
               "drop_stopwords", "ig_steps", "mode", "rationales", "alpha", "task_marker", "answer", "generate"),
    "training": ("steps", "learning_rate", "weight_decay", "batch_size", "gradient_accumulation", "lr_scheduler",
                 "warmup_steps", "max_grad_norm", "max_input_length", "max_target_length", "max_new_tokens",
                 "batch_by_length"),
    "validation": ("eval_every", "eval_split", "eval_limit", "keep_best"),
    "output": ("output", "overwrite", "checkpoint_every", "strict", "device", "report_to", "push_to_hub",
               "update_card"),
}


def add_arguments(
    parser: argparse.ArgumentParser, spec: type | ConfigVariants[Any], registries: Mapping[str, Sequence[str]] | None = None
) -> None:
    """One ``--flag`` per dataclass field, grouped as in ``HELP_GROUPS``; defaults are left out so that YAML
    values are only overridden by flags the user actually gave. A boolean takes ``--flag`` / ``--no-flag``. For a
    config with variants (train's modes), each variant's own options form a group named for the values that take them."""
    parser.add_argument("--config", help="YAML file with any of these options; flags override it")
    base = spec.base if isinstance(spec, ConfigVariants) else spec
    group_of = {name: group for group, names in HELP_GROUPS.items() for name in names}
    groups: dict[str, Any] = {}

    def group(name: str) -> Any:
        if name not in groups:
            groups[name] = parser.add_argument_group(f"{name} options")
        return groups[name]

    for item in dataclasses.fields(base):
        _add_field(parser, group(group_of.get(item.name, "other")), item, type_hints(base), registries)
    if isinstance(spec, ConfigVariants):
        flag = "--" + spec.key.replace("_", "-")
        for cls, values in spec.sections().items():
            for item in dataclasses.fields(cls):
                if item.name not in field_names(base):
                    _add_field(parser, group(f"{flag} {', '.join(values)}"), item, type_hints(cls), registries,
                               required=f" (required with {flag} {', '.join(values)})")


def _add_field(parser: argparse.ArgumentParser, target: Any, item: dataclasses.Field[Any], hints: Mapping[str, Any],
               registries: Mapping[str, Sequence[str]] | None, required: str = " (required)") -> None:
    hint, _ = unwrap_optional(hints[item.name])
    flag = "--" + item.name.replace("_", "-")
    help_text = item.metadata.get("help", "")
    if (registry := item.metadata.get("registry")) and registries and registry in registries:
        help_text += ": " + ", ".join(registries[registry])  # the registry's names, never a list kept by hand
    shown = item.metadata.get("shown_default", item.default)
    if item.default is dataclasses.MISSING:
        help_text += required
    elif shown is not None:
        help_text += f" (default: {shown})"
    if item.metadata.get("positional"):
        many = typing.get_origin(hint) is list
        parser.add_argument(item.name, nargs="+" if many else None, help=item.metadata.get("help", ""))
        return
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


def from_arguments(spec: type[C] | ConfigVariants[C], namespace: argparse.Namespace) -> C:
    values = vars(namespace).copy()
    for key in ("command", "handler", "debug"):
        values.pop(key, None)
    yaml_path = values.pop("config", None)
    merged = load_yaml(yaml_path) if yaml_path else {}
    merged.update(values)
    config = spec.build(merged) if isinstance(spec, ConfigVariants) else build(spec, merged)
    output = getattr(config, "output", None)
    if yaml_path and isinstance(output, str):
        from tokendistill.folders import refuse_overlap

        # The --config file is an input too: an output that holds it would replace or delete it.
        refuse_overlap(output, {"--config file": str(yaml_path)})
    return config
