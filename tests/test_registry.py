"""Registries: users pick tasks, methods and modes by name; a wrong name is told the valid ones."""

import pytest

from tokendistill.errors import UserError
from tokendistill.registry import Registry


def test_an_unknown_name_is_refused_with_every_valid_name() -> None:
    registry: Registry[int] = Registry("colour")
    registry.register("red")(1)
    registry.register("blue")(2)
    assert registry.get("red") == 1 and "blue" in registry and list(registry) == ["blue", "red"]
    with pytest.raises(UserError, match=r"unknown colour 'green'; choose one of: blue, red"):
        registry.get("green")


def test_a_name_registered_twice_is_a_programming_error() -> None:
    registry: Registry[int] = Registry("colour")
    registry.register("red")(1)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("red")(2)
