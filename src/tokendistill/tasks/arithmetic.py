"""A safe evaluator for the arithmetic expressions SVAMP uses as targets.

Model output is untrusted text, so this is a small recursive-descent parser over numbers, + - * / and
parentheses, never ``eval``; length and nesting are bounded so the work per string is bounded too.
"""

from __future__ import annotations

import math
import re

MAX_EXPRESSION_CHARS = 512
MAX_DEPTH = 64
_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|(.))")


class ArithmeticError_(ValueError):
    """The text is not a plain arithmetic expression."""


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    for number, symbol in _TOKEN.findall(text):
        if number:
            out.append(number)
        elif symbol.strip():
            if symbol not in "+-*/()":
                raise ArithmeticError_(f"unexpected character {symbol!r}")
            out.append(symbol)
    return out


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.position = 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ArithmeticError_("expression ends too early")
        self.position += 1
        return token

    def expression(self, depth: int) -> float:
        value = self.term(depth)
        while self.peek() in ("+", "-"):
            value = value + self.term(depth) if self.take() == "+" else value - self.term(depth)
        return value

    def term(self, depth: int) -> float:
        value = self.factor(depth)
        while self.peek() in ("*", "/"):
            operator = self.take()
            right = self.factor(depth)
            if operator == "*":
                value *= right
            elif right == 0:
                raise ArithmeticError_("division by zero")
            else:
                value /= right
        return value

    def factor(self, depth: int) -> float:
        if depth > MAX_DEPTH:
            raise ArithmeticError_("expression nested too deeply")
        token = self.take()
        if token == "-":
            return -self.factor(depth + 1)
        if token == "+":
            return self.factor(depth + 1)
        if token == "(":
            value = self.expression(depth + 1)
            if self.take() != ")":
                raise ArithmeticError_("missing ')'")
            return value
        if token in "*/)":
            raise ArithmeticError_(f"unexpected {token!r}")
        return float(token)


def evaluate_arithmetic(text: str) -> float:
    """Value of an expression such as ``"( 10.0 - ( 6.0 + 3.0 ) )"``; raises ``ValueError`` on anything else."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ArithmeticError_(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    tokens = _tokens(text)
    if not tokens:
        raise ArithmeticError_("empty expression")
    parser = _Parser(tokens)
    value = parser.expression(0)
    if parser.peek() is not None:
        raise ArithmeticError_(f"unexpected {parser.peek()!r} after the expression")
    if not math.isfinite(value):
        raise ArithmeticError_("expression is not finite")
    return value


def same_value(prediction: str, target: str, tolerance: float = 1e-4) -> bool:
    """True when both expressions evaluate to the same number; an unparsable prediction is simply wrong."""
    try:
        predicted = evaluate_arithmetic(prediction)
        expected = evaluate_arithmetic(target)
    except (ValueError, OverflowError, RecursionError):
        return False
    return math.isclose(predicted, expected, rel_tol=tolerance, abs_tol=tolerance)
