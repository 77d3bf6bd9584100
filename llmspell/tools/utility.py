"""Utility tools: base64_encoder, calculator, date_time_handler, diff_calculator, hash_calculator,
template_engine, uuid_generator (§19.5)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import difflib
import hashlib
import hmac
import os
import re
import time
import uuid
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from llmspell.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolParamError, choice, need, ok
from llmspell.tools.calc import FUNCTIONS, CalcError, evaluate
from llmspell.tools.sandbox import SandboxError


def _sandboxed(ctx: ToolContext, tool: str, path: str) -> Any:
    try:
        return ctx.sandbox.resolve(path)
    except SandboxError as e:
        raise ToolError(f"{tool}: {e}") from None


# ---------------------------------------------------------------------------- base64_encoder
class Base64Encoder(Tool):
    """base64_encoder: standard or url-safe encode/decode of text or files."""

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "base64_encoder"
        op = choice(params, "operation", name, ("encode", "decode"), "encode")
        variant = choice(params, "variant", name, ("standard", "url_safe"), "standard")
        enc = base64.urlsafe_b64encode if variant == "url_safe" else base64.b64encode

        def dec(d: bytes) -> bytes:
            d = b"".join(d.split())
            if variant == "url_safe":
                d = d.translate(bytes.maketrans(b"-_", b"+/"))
            return base64.b64decode(d, validate=True)

        if params.get("input_file"):
            data = ctx.sandbox.read_bytes(_sandboxed(ctx, name, str(params["input_file"])))
        elif params.get("input") is not None:
            text = str(params["input"])
            data = text.encode("utf-8", "surrogateescape")
        else:
            raise ToolParamError(f"{name}: missing 'input' (or 'input_file')")
        try:
            out = enc(data) if op == "encode" else dec(data + b"=" * (-len(b"".join(data.split())) % 4))
        except (binascii.Error, ValueError) as e:
            raise ToolError(f"{name}: invalid base64 input: {e}") from None
        if params.get("output_file"):
            target = _sandboxed(ctx, name, str(params["output_file"]))
            ctx.sandbox.write_bytes(target, out)
            return ok(op, {"output_file": str(target), "bytes": len(out)})
        text_out = out.decode("utf-8", "replace") if op == "decode" else out.decode("ascii")
        return ok(op, {"output": text_out, "variant": variant, "length": len(text_out)})


# ---------------------------------------------------------------------------- calculator
class Calculator(Tool):
    """calculator: safe arithmetic (no eval); evaluate, validate, functions."""

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "calculator"
        op = choice(params, "operation", name, ("evaluate", "validate", "functions"), "evaluate")
        if op == "functions":
            return ok(op, {"functions": sorted(FUNCTIONS), "constants": ["e", "pi"],
                           "operators": ["+", "-", "*", "/", "%", "^", "==", "!=", "<", "<=", ">", ">="]})
        expr = params.get("input") or params.get("expression")
        if not isinstance(expr, str) or not expr.strip():
            raise ToolParamError(f"{name}: missing required parameter 'input' (the expression)")
        variables = params.get("variables") or {}
        if not isinstance(variables, dict):
            raise ToolParamError(f"{name}: parameter 'variables' must be a table of numbers")
        try:
            value = evaluate(expr, variables)
        except CalcError as e:
            if op == "validate":
                return ok(op, {"valid": False, "error": str(e)})
            from llmspell.tools.base import fail

            return fail(op, f"cannot evaluate '{expr}': {e}", {"expression": expr})
        if op == "validate":
            return ok(op, {"valid": True})
        return ok(op, {"result": value, "expression": expr})


# ---------------------------------------------------------------------------- date_time_handler
_UNITS = {"second": 1, "seconds": 1, "s": 1, "minute": 60, "minutes": 60, "m": 60, "hour": 3600, "hours": 3600,
          "h": 3600, "day": 86400, "days": 86400, "d": 86400, "week": 604800, "weeks": 604800, "w": 604800}
_FORMATS = ["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%B %d, %Y",
            "%d %B %Y", "%Y/%m/%d", "%a, %d %b %Y %H:%M:%S %z", "%H:%M:%S", "%Y-%m-%dT%H:%M"]


def _tz(tool: str, name: Any) -> dt.tzinfo:
    if name is None or str(name).upper() in ("UTC", "Z"):
        return dt.UTC
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolParamError(f"{tool}: unknown timezone '{name}' (use an IANA name like 'Europe/Paris')") from None


def parse_datetime(tool: str, text: Any, tz: dt.tzinfo = dt.UTC) -> dt.datetime:
    """Parse RFC 3339 / ISO 8601, a Unix timestamp, 'now', or common formats."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return dt.datetime.fromtimestamp(float(text), dt.UTC).astimezone(tz)
    if not isinstance(text, str) or not text.strip():
        raise ToolParamError(f"{tool}: missing date/time 'input'")
    s = text.strip()
    if s.lower() == "now":
        return dt.datetime.now(tz)
    if re.fullmatch(r"-?\d+(\.\d+)?", s):
        return dt.datetime.fromtimestamp(float(s), dt.UTC).astimezone(tz)
    d: dt.datetime | None = None
    try:
        d = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        for f in _FORMATS:
            try:
                d = dt.datetime.strptime(s, f)
                break
            except ValueError:
                continue
    if d is None:
        raise ToolError(f"{tool}: cannot parse date/time '{s}' (use RFC 3339, e.g. 2024-01-31T12:00:00Z)")
    if d.tzinfo is None:
        d = d.replace(tzinfo=tz)
    return d


def _info(d: dt.datetime) -> dict[str, Any]:
    return {"datetime": d.isoformat().replace("+00:00", "Z"), "timestamp": int(d.timestamp()),
            "timezone": str(d.tzinfo), "year": d.year, "month": d.month, "day": d.day, "hour": d.hour,
            "minute": d.minute, "second": d.second, "weekday": d.strftime("%A"),
            "day_of_year": d.timetuple().tm_yday, "iso_week": d.isocalendar()[1],
            "is_leap_year": (d.year % 4 == 0 and d.year % 100 != 0) or d.year % 400 == 0}


def _human(seconds: float) -> str:
    s = int(abs(seconds))
    parts = []
    for label, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        n, s = divmod(s, size)
        if n:
            parts.append(f"{n} {label}{'s' if n != 1 else ''}")
    text = ", ".join(parts) or "0 seconds"
    return text + (" ago" if seconds < 0 else "")


class DateTimeHandler(Tool):
    """date_time_handler: parse, now, timezone conversion, arithmetic, differences, formats."""

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "date_time_handler"
        op = choice(params, "operation", name, ("parse", "now", "convert_timezone", "add", "subtract",
                                                 "difference", "info", "formats"), "now")
        tz = _tz(name, params.get("timezone"))
        if op == "formats":
            return ok(op, {"formats": ["RFC 3339", "ISO 8601", "unix timestamp", *_FORMATS]})
        if op == "now":
            d = dt.datetime.now(tz)
        elif op == "difference":
            a = parse_datetime(name, params.get("start") or params.get("input"), tz)
            b = parse_datetime(name, params.get("end"), tz) if params.get("end") else dt.datetime.now(tz)
            secs = (b - a).total_seconds()
            secs_out: Any = int(secs) if float(secs).is_integer() else secs
            return ok(op, {"seconds": secs_out, "minutes": secs / 60, "hours": secs / 3600, "days": secs / 86400,
                           "human": _human(secs)})
        else:
            d = parse_datetime(name, params.get("input"), tz)
        if op == "convert_timezone":
            d = d.astimezone(_tz(name, params.get("target_timezone") or params.get("timezone")))
        elif op in ("add", "subtract"):
            amount = params.get("amount")
            if isinstance(amount, bool) or not isinstance(amount, int | float):
                raise ToolParamError(f"{name}: {op} needs 'amount' (a number)")
            unit = str(params.get("unit") or "days").lower()
            if unit in ("month", "months", "year", "years"):
                months = int(amount) * (12 if unit.startswith("year") else 1) * (1 if op == "add" else -1)
                y, m = divmod(d.month - 1 + months, 12)
                import calendar

                day = min(d.day, calendar.monthrange(d.year + y, m + 1)[1])
                d = d.replace(year=d.year + y, month=m + 1, day=day)
            else:
                if unit not in _UNITS:
                    raise ToolParamError(f"{name}: invalid unit '{unit}' (allowed: seconds, minutes, hours, days, "
                                         "weeks, months, years)")
                delta = dt.timedelta(seconds=float(amount) * _UNITS[unit])
                d = d + delta if op == "add" else d - delta
        result = _info(d)
        if params.get("format"):
            try:
                result["formatted"] = d.strftime(str(params["format"]))
            except ValueError as e:
                raise ToolParamError(f"{name}: invalid format: {e}") from None
        return ok(op, result)


# ---------------------------------------------------------------------------- diff_calculator
def _json_diff(a: Any, b: Any, path: str, out: list[dict[str, Any]]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            p = f"{path}.{k}" if path else str(k)
            if k not in a:
                out.append({"path": p, "op": "add", "new": b[k]})
            elif k not in b:
                out.append({"path": p, "op": "remove", "old": a[k]})
            else:
                _json_diff(a[k], b[k], p, out)
    elif isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            p = f"{path}[{i + 1}]"
            if i >= len(a):
                out.append({"path": p, "op": "add", "new": b[i]})
            elif i >= len(b):
                out.append({"path": p, "op": "remove", "old": a[i]})
            else:
                _json_diff(a[i], b[i], p, out)
    elif a != b or type(a) is not type(b):
        out.append({"path": path or "$", "op": "replace", "old": a, "new": b})


class DiffCalculator(Tool):
    """diff_calculator: unified/context/inline/simple text diffs and structural JSON diffs."""

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "diff_calculator"
        kind = choice(params, "type", name, ("text", "json"), "text")
        if kind == "json":
            import orjson

            def load(v: Any) -> Any:
                if isinstance(v, str):
                    try:
                        return orjson.loads(v)
                    except orjson.JSONDecodeError as e:
                        raise ToolParamError(f"{name}: invalid JSON: {e}") from None
                return v

            diffs: list[dict[str, Any]] = []
            _json_diff(load(params.get("old_json")), load(params.get("new_json")), "", diffs)
            return ok("json", {"differences": diffs, "changes": len(diffs), "identical": not diffs})
        old = self._text(params, ctx, "old")
        new = self._text(params, ctx, "new")
        fmt = choice(params, "format", name, ("unified", "context", "inline", "simple"), "unified")
        a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
        if fmt == "unified":
            diff = "".join(difflib.unified_diff(a, b, "old", "new"))
        elif fmt == "context":
            diff = "".join(difflib.context_diff(a, b, "old", "new"))
        elif fmt == "inline":
            sm = difflib.SequenceMatcher(None, old, new)
            parts = []
            for tag, i1, i2, j1, j2 in sm.get_opcodes():
                if tag == "equal":
                    parts.append(old[i1:i2])
                if tag in ("delete", "replace"):
                    parts.append(f"[-{old[i1:i2]}-]")
                if tag in ("insert", "replace"):
                    parts.append(f"{{+{new[j1:j2]}+}}")
            diff = "".join(parts)
        else:
            diff = "".join(line for line in difflib.ndiff(a, b) if line[:1] in "+-")
        adds = dels = 0
        for line in difflib.ndiff(old.splitlines(), new.splitlines()):
            if line.startswith("+ "):
                adds += 1
            elif line.startswith("- "):
                dels += 1
        return ok("text", {"diff": diff, "additions": adds, "deletions": dels, "changes": adds + dels,
                           "identical": old == new, "format": fmt})

    @staticmethod
    def _text(params: dict[str, Any], ctx: ToolContext, which: str) -> str:
        if params.get(f"{which}_file"):
            return ctx.sandbox.read_bytes(_sandboxed(ctx, "diff_calculator", str(params[f"{which}_file"]))).decode("utf-8")
        v = params.get(f"{which}_text")
        if v is None:
            raise ToolParamError(f"diff_calculator: missing '{which}_text' (or '{which}_file')")
        return str(v)


# ---------------------------------------------------------------------------- hash_calculator
class HashCalculator(Tool):
    """hash_calculator: md5/sha1/sha256/sha512 of strings or files, hex or base64; verify."""

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "hash_calculator"
        op = choice(params, "operation", name, ("hash", "verify"), "hash")
        algo = choice(params, "algorithm", name, ("md5", "sha1", "sha256", "sha512"), "sha256")
        fmt = choice(params, "format", name, ("hex", "base64"), "hex")
        kind = choice(params, "input_type", name, ("string", "file"), "string")
        if kind == "file" or (params.get("file") and params.get("input") is None):
            path = params.get("file") or params.get("input")
            data = ctx.sandbox.read_bytes(_sandboxed(ctx, name, need({"file": path}, "file", name)))
        else:
            if params.get("input") is None:
                raise ToolParamError(f"{name}: missing 'input' (the string to hash)")
            data = str(params["input"]).encode("utf-8", "surrogateescape")
        h = hashlib.new(algo, data)
        digest = h.hexdigest() if fmt == "hex" else base64.b64encode(h.digest()).decode()
        if op == "verify":
            expected = need(params, "expected_hash", name)
            valid = hmac.compare_digest(digest.lower() if fmt == "hex" else digest,
                                        expected.strip().lower() if fmt == "hex" else expected.strip())
            return ok(op, {"valid": valid, "hash": digest, "algorithm": algo, "format": fmt})
        return ok(op, {"hash": digest, "algorithm": algo, "format": fmt})


# ---------------------------------------------------------------------------- template_engine
_HBS_TAG = re.compile(r"\{\{\{\s*([\w.@]+)\s*\}\}\}|\{\{\s*([#/^]?)\s*([\w.@]+(?:\s+[\w.@]+)?)\s*\}\}")


def _lookup(stack: list[Any], path: str) -> Any:
    if path in ("this", "."):
        return stack[-1]
    parts = path.split(".")
    for scope in reversed(stack):
        if isinstance(scope, dict) and parts[0] in scope:
            v: Any = scope[parts[0]]
            for p in parts[1:]:
                v = v.get(p) if isinstance(v, dict) else None
            return v
    return None


def render_handlebars(template: str, context: dict[str, Any]) -> str:
    """A handlebars subset: {{var}}, {{{raw}}}, {{#if}}/{{else}}, {{#unless}}, {{#each}}, {{#with}}."""
    import html

    tokens: list[tuple[str, str, str]] = []
    pos = 0
    for m in _HBS_TAG.finditer(template):
        tokens.append(("text", template[pos:m.start()], ""))
        if m.group(1):
            tokens.append(("raw", m.group(1), ""))
        else:
            tokens.append(({"#": "open", "/": "close", "^": "inv", "": "var"}[m.group(2)], m.group(3), ""))
        pos = m.end()
    tokens.append(("text", template[pos:], ""))

    def parse(i: int, stop: str | None) -> tuple[list[Any], int]:
        nodes: list[Any] = []
        while i < len(tokens):
            kind, val, _ = tokens[i]
            if kind == "close":
                if stop is None:
                    raise ToolError(f"template_engine: unexpected {{{{/{val}}}}}")
                return nodes, i + 1
            if kind == "var" and val == "else" and stop is not None:
                nodes.append(("else",))
                i += 1
                continue
            if kind == "open":
                body, i = parse(i + 1, val)
                nodes.append(("block", val, body))
                continue
            nodes.append((kind, val))
            i += 1
        if stop is not None:
            raise ToolError(f"template_engine: unclosed {{{{#{stop}}}}}")
        return nodes, i

    def split_else(body: list[Any]) -> tuple[list[Any], list[Any]]:
        for k, n in enumerate(body):
            if n[0] == "else":
                return body[:k], body[k + 1:]
        return body, []

    def emit(nodes: list[Any], stack: list[Any]) -> str:
        out: list[str] = []
        for n in nodes:
            if n[0] == "text":
                out.append(n[1])
            elif n[0] in ("var", "raw"):
                v = _lookup(stack, n[1])
                s = "" if v is None else ("true" if v is True else "false" if v is False else str(v))
                out.append(s if n[0] == "raw" else html.escape(s))
            elif n[0] == "block":
                out.append(block(n[1], n[2], stack))
        return "".join(out)

    def block(head: str, body: list[Any], stack: list[Any]) -> str:
        helper, arg = (head.split(None, 1) + [""])[:2] if " " in head else (head, "")
        yes, no = split_else(body)
        if helper in ("if", "unless", "each", "with"):
            v = _lookup(stack, arg.strip())
        else:
            v = _lookup(stack, helper)
            helper = "section"
        truthy = bool(v) and v != []
        if helper == "if":
            return emit(yes if truthy else no, stack)
        if helper == "unless":
            return emit(no if truthy else yes, stack)
        if helper in ("each", "section") and isinstance(v, list):
            if not v:
                return emit(no, stack)
            return "".join(emit(yes, [*stack, {**(x if isinstance(x, dict) else {}), "this": x, "@index": i}]
                                if isinstance(x, dict) else [*stack, x]) for i, x in enumerate(v))
        if helper in ("with", "section") and truthy:
            return emit(yes, [*stack, v])
        return emit(no, stack)

    nodes, _ = parse(0, None)
    return emit(nodes, [context])


class TemplateEngine(Tool):
    """template_engine: Jinja-style ('tera', sandboxed Jinja2) or handlebars rendering."""

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "template_engine"
        template = need(params, "input", name)
        context = params.get("context") or {}
        if not isinstance(context, dict):
            raise ToolParamError(f"{name}: parameter 'context' must be a table")
        engine = choice(params, "engine", name, ("tera", "handlebars", "hbs", "jinja", "jinja2"), "tera")
        if params.get("auto_detect") and ("{{#" in template or "{{/" in template):
            engine = "handlebars"
        if engine in ("handlebars", "hbs"):
            return ok("render", {"rendered": render_handlebars(template, context), "engine": "handlebars"})
        from jinja2 import StrictUndefined, TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(undefined=StrictUndefined if ctx.opt("strict") else _lenient())
        try:
            rendered = env.from_string(template).render(**context)
        except TemplateError as e:
            raise ToolError(f"{name}: template error: {e}") from None
        return ok("render", {"rendered": rendered, "engine": "tera"})


def _lenient() -> Any:
    from jinja2 import Undefined

    return Undefined


# ---------------------------------------------------------------------------- uuid_generator
def _uuid7() -> uuid.UUID:
    ms = int(time.time() * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64 | 0b10 << 62 | (rand & ((1 << 62) - 1))
    return uuid.UUID(int=value)


_NAMESPACES = {"dns": uuid.NAMESPACE_DNS, "url": uuid.NAMESPACE_URL, "oid": uuid.NAMESPACE_OID,
               "x500": uuid.NAMESPACE_X500}


def _uuid_version(raw: Any) -> int:
    """`version` as 1/4/5/7 from an integer, a digit string or "v4" (the reference's spellings); default 4."""
    if raw is None or raw == "":
        return 4
    if isinstance(raw, bool):
        raise ToolParamError(f"uuid_generator: invalid version {raw!r} (allowed: 1, 4, 5, 7, as integers, "
                             "strings or 'v4')")
    text = str(int(raw)) if isinstance(raw, float) and raw.is_integer() else str(raw).strip().lower()
    if text.startswith("v"):
        text = text[1:]
    if not text.isdigit():
        raise ToolParamError(f"uuid_generator: invalid version {raw!r} (allowed: 1, 4, 5, 7, as integers, "
                             "strings or 'v4')")
    return int(text)


class UuidGenerator(Tool):
    """uuid_generator: v1/v4/v5/v7, formats, component ids, deterministic ids, validation."""

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "uuid_generator"
        op = choice(params, "operation", name, ("generate", "component_id", "deterministic", "custom", "validate"),
                    "generate")
        if op == "validate":
            raw = need(params, "uuid", name) if params.get("uuid") is not None else need(params, "input", name)
            try:
                u = uuid.UUID(str(raw))
            except ValueError:
                return ok(op, {"valid": False, "version": None})
            return ok(op, {"valid": True, "version": u.version})
        version = _uuid_version(params.get("version"))
        if op == "deterministic" or version == 5:
            ns_raw = str(params.get("namespace") or "dns")
            try:
                ns = _NAMESPACES.get(ns_raw.lower()) or uuid.UUID(ns_raw)
            except ValueError:
                raise ToolParamError(f"{name}: invalid namespace '{ns_raw}' (dns, url, oid, x500 or a UUID)") from None
            u = uuid.uuid5(ns, str(need(params, "name", name)))
        elif version == 1:
            u = uuid.uuid1()
        elif version == 7:
            u = _uuid7()
        elif version == 4:
            u = uuid.uuid4()
        else:
            raise ToolParamError(f"{name}: invalid version {version} (allowed: 1, 4, 5, 7)")
        fmt = choice(params, "format", name, ("hyphenated", "simple", "urn"), "hyphenated")
        text = {"hyphenated": str(u), "simple": u.hex, "urn": u.urn}[fmt]
        if params.get("short"):
            text = u.hex[:8]
        if op == "component_id":  # `id` is the reference's field, `uuid` this project's earlier one
            text = f"{params.get('prefix') or 'component'}_{u.hex[:12]}"
            return ok(op, {"id": text, "uuid": text, "version": u.version, "format": fmt})
        if op == "custom":
            text = f"{params.get('prefix') or ''}{text}{params.get('suffix') or ''}"
        return ok(op, {"uuid": text, "version": u.version, "format": fmt})
