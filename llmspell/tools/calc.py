"""A safe arithmetic evaluator for the calculator tool: a tokenizer and a precedence-climbing parser, no eval."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class CalcError(ValueError):
    """A syntax or evaluation error in an expression."""


FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt, "abs": abs, "min": min, "max": max, "floor": math.floor, "ceil": math.ceil,
    "round": round, "exp": math.exp, "ln": math.log, "log": math.log, "log10": math.log10, "sin": math.sin,
    "cos": math.cos, "tan": math.tan,
}
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|([A-Za-z_]\w*)|"
                    r"(\*\*|==|!=|<=|>=|&&|\|\||[-+*/%^(),<>!]))")

# binary operator -> (precedence, right associative)
_BINARY: dict[str, tuple[int, bool]] = {
    "||": (1, False), "&&": (2, False), "==": (3, False), "!=": (3, False), "<": (4, False), "<=": (4, False),
    ">": (4, False), ">=": (4, False), "+": (5, False), "-": (5, False), "*": (6, False), "/": (6, False),
    "%": (6, False), "^": (8, True), "**": (8, True),
}
_MAX_LEN = 10_000


@dataclass
class _Tok:
    kind: str  # num | name | op | end
    value: Any
    pos: int


def _tokenize(src: str) -> list[_Tok]:
    if len(src) > _MAX_LEN:
        raise CalcError(f"expression is longer than {_MAX_LEN} characters")
    toks: list[_Tok] = []
    pos = 0
    src = src.rstrip()
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m:
            raise CalcError(f"unexpected character {src[pos:].strip()[:1]!r} at position {pos + 1}")
        if m.group(1):
            text = m.group(1)
            toks.append(_Tok("num", float(text) if any(c in text for c in ".eE") else int(text), m.start(1)))
        elif m.group(2):
            toks.append(_Tok("name", m.group(2), m.start(2)))
        else:
            toks.append(_Tok("op", m.group(3), m.start(3)))
        pos = m.end()
    toks.append(_Tok("end", None, len(src)))
    return toks


class _Parser:
    def __init__(self, src: str, variables: Mapping[str, Any]) -> None:
        self.toks = _tokenize(src)
        self.i = 0
        self.vars = variables
        self.depth = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, op: str) -> None:
        t = self.take()
        if t.kind != "op" or t.value != op:
            raise CalcError(f"expected '{op}' at position {t.pos + 1}")

    def parse(self) -> Any:
        v = self.expr(0)
        t = self.peek()
        if t.kind != "end":
            raise CalcError(f"unexpected '{t.value}' at position {t.pos + 1}")
        return v

    def expr(self, min_prec: int) -> Any:
        self.depth += 1
        if self.depth > 200:
            raise CalcError("expression nests too deeply")
        left = self.unary()
        while True:
            t = self.peek()
            if t.kind != "op" or t.value not in _BINARY:
                break
            prec, right = _BINARY[t.value]
            if prec < min_prec:
                break
            self.take()
            rhs = self.expr(prec if right else prec + 1)
            left = _apply(t.value, left, rhs)
        self.depth -= 1
        return left

    def unary(self) -> Any:
        t = self.peek()
        if t.kind == "op" and t.value in ("-", "+", "!"):
            self.take()
            v = self.expr(7)
            if t.value == "-":
                return -_num(v)
            if t.value == "!":
                return not v
            return _num(v)
        return self.primary()

    def primary(self) -> Any:
        t = self.take()
        if t.kind == "num":
            return t.value
        if t.kind == "op" and t.value == "(":
            v = self.expr(0)
            self.expect(")")
            return v
        if t.kind == "name":
            nxt = self.peek()
            if nxt.kind == "op" and nxt.value == "(":
                self.take()
                args: list[Any] = []
                if not (self.peek().kind == "op" and self.peek().value == ")"):
                    args.append(self.expr(0))
                    while self.peek().kind == "op" and self.peek().value == ",":
                        self.take()
                        args.append(self.expr(0))
                self.expect(")")
                fn = FUNCTIONS.get(t.value)
                if fn is None:
                    raise CalcError(f"unknown function '{t.value}' (available: {', '.join(sorted(FUNCTIONS))})")
                try:
                    if t.value == "log" and len(args) == 2:
                        return math.log(_num(args[0]), _num(args[1]))
                    return fn(*[_num(a) for a in args])
                except (TypeError, ValueError) as e:
                    raise CalcError(f"{t.value}: {e}") from None
            if t.value in self.vars:
                return _num(self.vars[t.value])
            if t.value in CONSTANTS:
                return CONSTANTS[t.value]
            if t.value in ("true", "false"):
                return t.value == "true"
            raise CalcError(f"unknown variable '{t.value}'")
        if t.kind == "end":
            raise CalcError("unexpected end of expression")
        raise CalcError(f"unexpected '{t.value}' at position {t.pos + 1}")


def _num(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | float):
        return v
    if isinstance(v, str):
        try:
            return float(v) if any(c in v for c in ".eE") else int(v)
        except ValueError:
            pass
    raise CalcError(f"not a number: {v!r}")


def _apply(op: str, a: Any, b: Any) -> Any:
    if op in ("&&", "||"):
        return (bool(a) and bool(b)) if op == "&&" else (bool(a) or bool(b))
    if op in ("==", "!=", "<", "<=", ">", ">="):
        x, y = _num(a), _num(b)
        return {"==": x == y, "!=": x != y, "<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]
    x, y = _num(a), _num(b)
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if op == "/":
        if y == 0:
            raise CalcError("division by zero")
        return x / y
    if op == "%":
        if y == 0:
            raise CalcError("modulo by zero")
        return math.fmod(x, y) if isinstance(x, float) or isinstance(y, float) else x % y
    if abs(_num(y)) > 10_000 and abs(_num(x)) > 1:
        raise CalcError("exponent too large")
    try:
        return x ** y
    except OverflowError:
        raise CalcError("result too large") from None


def evaluate(expression: str, variables: Mapping[str, Any] | None = None) -> Any:
    """Evaluate an arithmetic expression; integral results come back as ints."""
    v = _Parser(expression, variables or {}).parse()
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            raise CalcError("result is not a finite number")
        if v.is_integer() and abs(v) < 2**63:
            return int(v)
    return v
