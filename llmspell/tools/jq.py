# mypy: disable-error-code="misc"
"""A jq subset for json_processor: paths, iteration, pipes, commas, literals, comparisons, boolean logic,
object/array construction and the common builtins (select, map, keys, length, sort_by, ...)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import orjson


class JqError(ValueError):
    """A jq syntax or runtime error."""


_TOK = re.compile(r"""\s*(?:
    (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|
    (?P<str>"(?:[^"\\]|\\.)*")|
    (?P<field>\.[A-Za-z_][\w]*)|
    (?P<ident>[A-Za-z_][\w]*)|
    (?P<op>\.\.|==|!=|<=|>=|//|[.|,()\[\]{}:;<>+\-*/%?])
)""", re.X)

Filter = Callable[[Any], Iterator[Any]]


def _tokenize(src: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    src = src.strip()
    while pos < len(src):
        m = _TOK.match(src, pos)
        if not m or m.end() == pos:
            raise JqError(f"jq: syntax error at position {pos + 1}: {src[pos:pos + 10]!r}")
        kind = m.lastgroup or ""
        text = m.group(kind)
        if kind == "num":
            out.append(("lit", float(text) if any(c in text for c in ".eE") else int(text)))
        elif kind == "str":
            out.append(("lit", orjson.loads(text)))
        elif kind == "field":
            out.append(("field", text[1:]))
        elif kind == "ident":
            out.append(("ident", text))
        else:
            out.append(("op", text))
        pos = m.end()
    out.append(("end", None))
    return out


def _type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _index(v: Any, key: Any, optional: bool) -> Iterator[Any]:
    if v is None:
        yield None
    elif isinstance(v, dict) and isinstance(key, str):
        yield v.get(key)
    elif isinstance(v, list) and isinstance(key, int):
        yield v[key] if -len(v) <= key < len(v) else None
    elif not optional:
        raise JqError(f"jq: cannot index {_type(v)} with {_type(key)}")


def _iterate(v: Any, optional: bool) -> Iterator[Any]:
    if isinstance(v, list):
        yield from v
    elif isinstance(v, dict):
        yield from v.values()
    elif not optional:
        raise JqError(f"jq: cannot iterate over {_type(v)}")


def _truthy(v: Any) -> bool:
    return v is not None and v is not False


def _sort_key(v: Any) -> tuple[int, Any]:
    order = {"null": 0, "boolean": 1, "number": 2, "string": 3, "array": 4, "object": 5}
    t = _type(v)
    return (order[t], orjson.dumps(v, option=orjson.OPT_SORT_KEYS) if t in ("array", "object") else v)


class _Parser:
    def __init__(self, src: str) -> None:
        self.t = _tokenize(src)
        self.i = 0

    def peek(self) -> tuple[str, Any]:
        return self.t[self.i]

    def at(self, op: str) -> bool:
        k, v = self.t[self.i]
        return k == "op" and v == op or (k == "ident" and v == op)

    def eat(self, op: str) -> None:
        if not self.at(op):
            raise JqError(f"jq: expected '{op}' but found {self.peek()[1]!r}")
        self.i += 1

    def parse(self) -> Filter:
        f = self.pipe()
        if self.peek()[0] != "end":
            raise JqError(f"jq: unexpected {self.peek()[1]!r}")
        return f

    def pipe(self) -> Filter:
        left = self.comma()
        while self.at("|"):
            self.i += 1
            right = self.comma()
            left = (lambda a, b: lambda v: (y for x in a(v) for y in b(x)))(left, right)
        return left

    def comma(self) -> Filter:
        left = self.alt()
        while self.at(","):
            self.i += 1
            right = self.alt()
            left = (lambda a, b: lambda v: _chain(a(v), b(v)))(left, right)
        return left

    def alt(self) -> Filter:
        left = self.orr()
        while self.at("//"):
            self.i += 1
            right = self.orr()

            def f(v: Any, a: Filter = left, b: Filter = right) -> Iterator[Any]:
                vals = [x for x in a(v) if _truthy(x)]
                yield from vals if vals else b(v)

            left = f
        return left

    def orr(self) -> Filter:
        left = self.andd()
        while self.at("or"):
            self.i += 1
            right = self.andd()
            left = (lambda a, b: lambda v: (_truthy(x) or _truthy(y) for x in a(v) for y in b(v)))(left, right)
        return left

    def andd(self) -> Filter:
        left = self.cmp()
        while self.at("and"):
            self.i += 1
            right = self.cmp()
            left = (lambda a, b: lambda v: (_truthy(x) and _truthy(y) for x in a(v) for y in b(v)))(left, right)
        return left

    def cmp(self) -> Filter:
        left = self.add()
        ops: dict[str, Callable[[Any, Any], bool]] = {
            "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
            "<": lambda a, b: _sort_key(a) < _sort_key(b), "<=": lambda a, b: _sort_key(a) <= _sort_key(b),
            ">": lambda a, b: _sort_key(a) > _sort_key(b), ">=": lambda a, b: _sort_key(a) >= _sort_key(b)}
        k, v = self.peek()
        if k == "op" and v in ops:
            self.i += 1
            right = self.add()
            fn = ops[v]
            return lambda x, a=left, b=right: (fn(p, q) for p in a(x) for q in b(x))
        return left

    def add(self) -> Filter:
        left = self.mul()
        while self.peek() in (("op", "+"), ("op", "-")):
            op = self.peek()[1]
            self.i += 1
            right = self.mul()
            left = (lambda a, b, o: lambda v: (_arith(o, p, q) for p in a(v) for q in b(v)))(left, right, op)
        return left

    def mul(self) -> Filter:
        left = self.postfix()
        while self.peek() in (("op", "*"), ("op", "/"), ("op", "%")):
            op = self.peek()[1]
            self.i += 1
            right = self.postfix()
            left = (lambda a, b, o: lambda v: (_arith(o, p, q) for p in a(v) for q in b(v)))(left, right, op)
        return left

    def postfix(self) -> Filter:
        f = self.primary()
        while True:
            k, v = self.peek()
            if k == "field":
                self.i += 1
                opt = self._opt()
                f = (lambda g, key, o: lambda x: (y for z in g(x) for y in _index(z, key, o)))(f, v, opt)
            elif k == "op" and v == "[":
                f = self._bracket(f)
            elif k == "op" and v == "." and self.t[self.i + 1] == ("op", "["):
                self.i += 1
            else:
                return f

    def _opt(self) -> bool:
        if self.at("?"):
            self.i += 1
            return True
        return False

    def _bracket(self, base: Filter) -> Filter:
        self.eat("[")
        if self.at("]"):
            self.i += 1
            opt = self._opt()
            return lambda x: (y for z in base(x) for y in _iterate(z, opt))
        idx = self.pipe()
        self.eat("]")
        opt = self._opt()
        return lambda x: (y for z in base(x) for k in idx(x) for y in _index(z, k, opt))

    def primary(self) -> Filter:
        k, v = self.peek()
        if k == "lit":
            self.i += 1
            return lambda x, c=v: iter([c])
        if k == "field":
            self.i += 1
            opt = self._opt()
            return lambda x, key=v, o=opt: _index(x, key, o)
        if k == "op" and v == ".":
            self.i += 1
            if self.peek() == ("op", "["):
                return self._bracket(lambda x: iter([x]))
            if self.peek()[0] == "lit" and isinstance(self.peek()[1], str):
                key = self.peek()[1]
                self.i += 1
                return lambda x: _index(x, key, False)
            return lambda x: iter([x])
        if k == "op" and v == "..":
            self.i += 1
            return _recurse
        if k == "op" and v == "(":
            self.i += 1
            f = self.pipe()
            self.eat(")")
            return f
        if k == "op" and v == "[":
            self.i += 1
            if self.at("]"):
                self.i += 1
                return lambda x: iter([[]])
            f = self.pipe()
            self.eat("]")
            return lambda x, g=f: iter([list(g(x))])
        if k == "op" and v == "{":
            return self._object()
        if k == "op" and v == "-":
            self.i += 1
            g = self.postfix()
            return lambda x: (-y for y in g(x))
        if k == "ident":
            self.i += 1
            return self._builtin(v)
        raise JqError(f"jq: unexpected {v!r}")

    def _object(self) -> Filter:
        self.eat("{")
        entries: list[tuple[Filter, Filter]] = []
        while not self.at("}"):
            k, v = self.peek()
            if k in ("ident", "lit"):
                self.i += 1
                key_f: Filter = (lambda c: lambda x: iter([c]))(str(v))
                name = str(v)
            elif k == "field":
                raise JqError("jq: object keys are written without a leading '.'")
            elif k == "op" and v == "(":
                self.i += 1
                key_f = self.pipe()
                self.eat(")")
                name = ""
            else:
                raise JqError(f"jq: bad object key {v!r}")
            if self.at(":"):
                self.i += 1
                val_f = self.alt()
            else:
                val_f = (lambda n: lambda x: _index(x, n, False))(name)
            entries.append((key_f, val_f))
            if self.at(","):
                self.i += 1
        self.eat("}")

        def build(x: Any) -> Iterator[Any]:
            results: list[dict[str, Any]] = [{}]
            for kf, vf in entries:
                results = [{**r, str(key): val} for r in results for key in kf(x) for val in vf(x)]
            yield from results

        return build

    def _args(self) -> list[Filter]:
        if not self.at("("):
            return []
        self.i += 1
        args = [self.pipe()]
        while self.at(";"):
            self.i += 1
            args.append(self.pipe())
        self.eat(")")
        return args

    def _builtin(self, name: str) -> Filter:
        args = self._args()
        simple: dict[str, Callable[[Any], Any]] = {
            "length": lambda x: len(x) if isinstance(x, list | dict | str) else (0 if x is None else abs(x)),
            "keys": lambda x: sorted(x) if isinstance(x, dict) else list(range(len(x))),
            "values": lambda x: list(x.values()) if isinstance(x, dict) else x,
            "type": _type, "not": lambda x: not _truthy(x), "sort": lambda x: sorted(x, key=_sort_key),
            "reverse": lambda x: x[::-1], "unique": lambda x: sorted({orjson.dumps(i): i for i in x}.values(),
                                                                     key=_sort_key),
            "min": lambda x: min(x, key=_sort_key) if x else None, "max": lambda x: max(x, key=_sort_key) if x else None,
            "add": _add_all, "first": lambda x: x[0] if x else None, "last": lambda x: x[-1] if x else None,
            "tostring": lambda x: x if isinstance(x, str) else orjson.dumps(x).decode(),
            "tonumber": lambda x: x if isinstance(x, int | float) else (float(x) if "." in x else int(x)),
            "to_entries": lambda x: [{"key": k, "value": v} for k, v in x.items()],
            "from_entries": lambda x: {str(e.get("key", e.get("name"))): e.get("value") for e in x},
            "ascii_downcase": lambda x: x.lower(), "ascii_upcase": lambda x: x.upper(),
            "true": lambda x: True, "false": lambda x: False, "null": lambda x: None, "empty": lambda x: _EMPTY,
            "floor": lambda x: int(x // 1), "sqrt": lambda x: x ** 0.5,
        }
        if name in simple and not args:
            fn = simple[name]
            if name == "empty":
                return lambda x: iter(())
            return lambda x: iter([fn(x)])
        if name == "select" and len(args) == 1:
            return lambda x, c=args[0]: (x for r in c(x) if _truthy(r))
        if name == "map" and len(args) == 1:
            return lambda x, g=args[0]: iter([[y for e in _iterate(x, False) for y in g(e)]])
        if name in ("sort_by", "group_by", "unique_by", "min_by", "max_by") and len(args) == 1:
            g = args[0]

            def keyed(x: Any) -> Iterator[Any]:
                items = sorted(x, key=lambda e: _sort_key(list(g(e))))
                if name == "sort_by":
                    yield items
                elif name in ("min_by", "max_by"):
                    yield (items[0] if name == "min_by" else items[-1]) if items else None
                else:
                    groups: dict[bytes, list[Any]] = {}
                    for e in items:
                        groups.setdefault(orjson.dumps(list(g(e))), []).append(e)
                    yield list(groups.values()) if name == "group_by" else [v[0] for v in groups.values()]

            return keyed
        if name in ("has", "contains", "startswith", "endswith", "split", "join", "test") and len(args) == 1:
            a = args[0]
            ops: dict[str, Callable[[Any, Any], Any]] = {
                "has": lambda x, k: (k in x) if isinstance(x, dict) else (0 <= k < len(x)),
                "contains": _contains, "startswith": lambda x, s: x.startswith(s),
                "endswith": lambda x, s: x.endswith(s), "split": lambda x, s: x.split(s),
                "join": lambda x, s: s.join("" if e is None else e if isinstance(e, str) else orjson.dumps(e).decode()
                                            for e in x),
                "test": lambda x, s: re.search(s, x) is not None}
            op2 = ops[name]
            return lambda x: (op2(x, k) for k in a(x))
        raise JqError(f"jq: unknown function {name}/{len(args)}")


_EMPTY = object()


def _chain(a: Iterator[Any], b: Iterator[Any]) -> Iterator[Any]:
    yield from a
    yield from b


def _recurse(x: Any) -> Iterator[Any]:
    yield x
    if isinstance(x, list):
        for e in x:
            yield from _recurse(e)
    elif isinstance(x, dict):
        for e in x.values():
            yield from _recurse(e)


def _contains(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return b in a
    if isinstance(a, list) and isinstance(b, list):
        return all(any(_contains(x, y) for x in a) for y in b)
    if isinstance(a, dict) and isinstance(b, dict):
        return all(k in a and _contains(a[k], v) for k, v in b.items())
    return bool(a == b)


def _arith(op: str, a: Any, b: Any) -> Any:
    if op == "+":
        if a is None:
            return b
        if b is None:
            return a
        if isinstance(a, dict) and isinstance(b, dict):
            return {**a, **b}
        return a + b
    if op == "-":
        if isinstance(a, list):
            return [x for x in a if x not in b]
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if isinstance(a, str):
            return a.split(b)
        if b == 0:
            raise JqError("jq: division by zero")
        r = a / b
        return int(r) if isinstance(r, float) and r.is_integer() else r
    return a % b


def _add_all(x: Any) -> Any:
    acc: Any = None
    for e in (x.values() if isinstance(x, dict) else x):
        acc = _arith("+", acc, e)
    return acc


def run_query(query: str, data: Any) -> list[Any]:
    """All outputs of `query` applied to `data`."""
    f = _Parser(query).parse()
    try:
        return list(f(data))
    except JqError:
        raise
    except (TypeError, KeyError, ValueError, AttributeError, IndexError) as e:
        raise JqError(f"jq: {e}") from None
