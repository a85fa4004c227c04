"""Typed options: declaring a dataclass field as an option (help, range, registry), reading a mapping (a YAML file,
the command line) into the dataclass with every value checked, and a config whose class one option chooses. The
stages' configs are in config.py."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, Union

import yaml

from tokendistill.errors import UserError

C = TypeVar("C")


def option(default: Any = dataclasses.MISSING, help: str = "", **metadata: Any) -> Any:
    """A dataclass field with help text for ``--help``.

    Numbers declare their range: ``minimum`` / ``maximum`` (inclusive) or ``above`` (exclusive); ``check``
    is a function returning what is wrong with a value (or None). ``build`` enforces them, so a bad value
    fails where it is parsed, before any model loads.
    """
    return field(default=default, metadata={"help": help, **metadata})


def check_range(name: str, value: Any, metadata: Mapping[str, Any]) -> None:
    """The one-line error for a number outside its field's declared range (NaN and infinity included)."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{flag} {value}: must be a finite number")
    bounds = []
    if "minimum" in metadata:
        bounds.append(f">= {metadata['minimum']}")
    if "above" in metadata:
        bounds.append(f"> {metadata['above']}")
    if "maximum" in metadata:
        bounds.append(f"<= {metadata['maximum']}")
    if (("minimum" in metadata and value < metadata["minimum"]) or ("above" in metadata and value <= metadata["above"])
            or ("maximum" in metadata and value > metadata["maximum"])):
        raise UserError(f"{flag} {value}: must be {' and '.join(bounds)}")
    if "check" in metadata and (problem := metadata["check"](value)):
        raise UserError(f"{flag} {value:g}: must be {problem}")


def type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def unwrap_optional(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (Union, types.UnionType):
        arguments = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(arguments) == 1:
            return arguments[0], True
    return hint, False


MAX_CONFIG_BYTES = 1 << 20  # a config of options is a few KB; a huge file is a mistake, read in one line


def load_yaml(path: str | Path) -> dict[str, Any]:
    candidate = Path(path)
    if candidate.exists() and not candidate.is_file():
        kind = "a folder" if candidate.is_dir() else "not a regular file (a pipe or a device)"
        raise UserError(f"config file {path} is {kind}; pass a YAML file")
    if candidate.is_file() and candidate.stat().st_size > MAX_CONFIG_BYTES:
        raise UserError(f"config file {path} is over {MAX_CONFIG_BYTES // 1024} KB: not a config; pass a YAML file")
    try:
        loaded = yaml.safe_load(candidate.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"config file {path} is a folder; pass a YAML file") from None
    except UnicodeDecodeError:
        raise UserError(f"config file {path} is not UTF-8 text; pass a YAML file") from None
    except OSError as error:
        raise UserError(f"cannot read config file {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise UserError(f"config file {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UserError(f"config file {path} should hold a mapping of option: value")
    return loaded


def build(cls: type[C], values: dict[str, Any]) -> C:
    """The dataclass from a mapping, with unknown and missing keys reported as user errors."""
    names = {item.name for item in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(f"unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
    missing = [
        item.name
        for item in dataclasses.fields(cls)  # type: ignore[arg-type]
        if item.default is dataclasses.MISSING and item.name not in values
    ]
    if missing:
        raise UserError("missing required option(s): " + ", ".join("--" + m.replace("_", "-") for m in missing))
    hints = type_hints(cls)
    metadata = {item.name: item.metadata for item in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for name, value in values.items():
        values[name] = _checked_value(name, value, hints[name], metadata[name])
    return cls(**values)


def field_names(cls: type) -> set[str]:
    return {item.name for item in dataclasses.fields(cls)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class ConfigVariants(Generic[C]):
    """A config whose class one of its options chooses: `train`'s --mode picks its mode's subclass of TrainConfig,
    which adds the options only that mode takes. ``lookup`` gives a value's class (a registry, which names an
    unknown value in its own error) and ``values`` every value, both read when called (a registry fills in later)."""

    base: type[C]
    key: str
    lookup: Callable[[str], type[C]]
    values: Callable[[], Sequence[str]]

    def sections(self) -> dict[type[C], list[str]]:
        """Each subclass with the values that choose it (kd and multitask_kd share one)."""
        sections: dict[type[C], list[str]] = {}
        for value in self.values():
            if (chosen := self.lookup(value)) is not self.base:
                sections.setdefault(chosen, []).append(value)
        return sections

    def build(self, values: dict[str, Any]) -> C:
        value = values.get(self.key, field_defaults(self.base)[self.key])
        if not isinstance(value, str):
            raise UserError(f"option {self.key} should be str, got {value!r}")
        chosen = self.lookup(value)
        flag = "--" + self.key.replace("_", "-")
        for cls, owners in self.sections().items():
            if foreign := sorted(set(values) & (field_names(cls) - field_names(chosen))):
                raise UserError(f"--{foreign[0].replace('_', '-')} is an option of {flag} {', '.join(owners)}, not of "
                                f"{flag} {value}: drop it, or choose one of those")
        return build(chosen, values)


def _checked_value(name: str, value: Any, annotation: Any, metadata: Mapping[str, Any]) -> Any:
    """One option's value, checked against its type, choices and range (an int where a float is wanted widened)."""
    hint, optional = unwrap_optional(annotation)
    if value is None and optional:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    elif hint in (int, float, str) and (not isinstance(value, hint) or isinstance(value, bool)):
        # bool is an int to Python; ``limit: true`` in a YAML file is a mistake, not the number 1
        raise UserError(f"option {name} should be {hint.__name__}, got {value!r}")
    elif hint is bool and not isinstance(value, bool):
        raise UserError(f"option {name} should be true or false, got {value!r}")
    elif typing.get_origin(hint) is Literal and value not in typing.get_args(hint):
        raise UserError(f"option {name} should be one of {', '.join(map(str, typing.get_args(hint)))}")
    if hint in (int, float):
        check_range(name, value, metadata)
    elif "check" in metadata and (problem := metadata["check"](value)):
        raise UserError(f"--{name.replace('_', '-')} {value}: must be {problem}")
    return value


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def field_defaults(cls: type) -> dict[str, Any]:
    return {
        item.name: item.default
        for item in dataclasses.fields(cls)  # type: ignore[arg-type]
        if item.default is not dataclasses.MISSING
    }
