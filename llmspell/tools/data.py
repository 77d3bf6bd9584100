"""Data tools: data_validation, csv_analyzer, json_processor, graph-builder, database-connector (§19.5)."""

from __future__ import annotations

import csv
import io
import os
import re
import sqlite3
import stat
import statistics
import urllib.parse
from typing import Any

import orjson

from llmspell.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolParamError, choice, need, ok
from llmspell.tools.jq import JqError, run_query
from llmspell.tools.sandbox import SandboxError

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^https?://[^\s/$.?#].[^\s]*$", re.I)


def _type_of(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object"


# ---------------------------------------------------------------------------- data_validation
class DataValidation(Tool):
    """data_validation: required/type/length/range/pattern/enum/email/url/date/array/object rules."""

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "data_validation"
        data = params.get("input")
        rules_param = params.get("rules")
        rules = rules_param.get("rules") if isinstance(rules_param, dict) else rules_param
        if isinstance(rules, dict) and not rules:
            rules = []
        if not isinstance(rules, list):
            raise ToolParamError(f"{name}: parameter 'rules' must be {{rules = {{ {{type = ..., field = ...}}, ... }}}}")
        errors: list[dict[str, Any]] = []
        for rule in rules:
            if not isinstance(rule, dict) or not isinstance(rule.get("type"), str):
                raise ToolParamError(f"{name}: each rule must be a table with a 'type'")
            field = rule.get("field")
            value = data.get(field) if isinstance(data, dict) and field is not None else (None if field else data)
            msg = self._check(rule, value, field is not None and isinstance(data, dict) and field in data)
            if msg:
                errors.append({"field": field or "$", "rule": rule["type"], "message": rule.get("message") or msg})
        return ok("validate", {"valid": not errors, "errors": errors})

    @staticmethod
    def _check(rule: dict[str, Any], v: Any, present: bool) -> str | None:
        kind = rule["type"]
        if kind == "required":
            return None if v is not None and v != "" else "is required"
        if v is None:
            return None
        if kind == "type":
            want = str(rule.get("expected") or rule.get("value") or rule.get("data_type") or "string")
            got = _type_of(v)
            okk = got == want or (want == "number" and got in ("integer", "number"))
            return None if okk else f"must be of type {want}, got {got}"
        if kind == "length":
            n = len(v) if isinstance(v, str | list | dict) else len(str(v))
            lo, hi = rule.get("min"), rule.get("max")
            if lo is not None and n < lo:
                return f"length must be at least {lo}"
            if hi is not None and n > hi:
                return f"length must be at most {hi}"
            return None
        if kind == "range":
            if not isinstance(v, int | float) or isinstance(v, bool):
                return "must be a number"
            lo, hi = rule.get("min"), rule.get("max")
            if lo is not None and v < lo:
                return f"must be >= {lo}"
            if hi is not None and v > hi:
                return f"must be <= {hi}"
            return None
        if kind == "pattern":
            pat = str(rule.get("pattern") or rule.get("value") or "")
            try:
                return None if re.search(pat, str(v)) else f"must match pattern {pat}"
            except re.error as e:
                raise ToolParamError(f"data_validation: invalid pattern: {e}") from None
        if kind == "enum":
            allowed = rule.get("values") or rule.get("allowed") or []
            return None if v in allowed else f"must be one of {allowed}"
        if kind == "email":
            return None if isinstance(v, str) and _EMAIL.match(v) else "must be a valid email address"
        if kind == "url":
            return None if isinstance(v, str) and _URL.match(v) else "must be a valid URL"
        if kind == "date":
            from llmspell.tools.utility import parse_datetime

            try:
                parse_datetime("data_validation", v)
                return None
            except ToolError:
                return "must be a valid date"
        if kind == "array":
            return None if isinstance(v, list) else "must be an array"
        if kind == "object":
            return None if isinstance(v, dict) else "must be an object"
        raise ToolParamError(f"data_validation: unknown rule type '{kind}' (required, type, length, range, pattern, "
                             "enum, email, url, date, array, object)")


# ---------------------------------------------------------------------------- csv_analyzer
def _num(s: str) -> float | None:
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


class CsvAnalyzer(Tool):
    """csv_analyzer: column statistics, conversion to JSON, filtering, sampling and validation."""

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "csv_analyzer"
        op = choice(params, "operation", name, ("analyze", "convert", "filter", "transform", "validate", "sample"),
                    "analyze")
        text = need(params, "input", name)
        opts = params.get("options") or {}
        delim = str(opts.get("delimiter") or ",")
        try:
            reader = csv.DictReader(io.StringIO(text), delimiter=delim)
            rows = list(reader)
            columns = list(reader.fieldnames or [])
        except csv.Error as e:
            if op == "validate":
                return ok(op, {"valid": False, "errors": [str(e)]})
            raise ToolError(f"{name}: invalid CSV: {e}") from None
        if op == "validate":
            errors = [f"row {i + 2}: expected {len(columns)} fields" for i, r in enumerate(rows)
                      if None in r or any(v is None for v in r.values())]
            return ok(op, {"valid": not errors, "errors": errors, "rows": len(rows), "columns": columns})
        if op == "analyze":
            stats: dict[str, Any] = {}
            for c in columns:
                vals = [r.get(c) or "" for r in rows]
                nums = [n for n in (_num(v) for v in vals) if n is not None]
                st: dict[str, Any] = {"count": len(vals), "empty": sum(1 for v in vals if v == ""),
                                      "unique": len(set(vals))}
                if nums and len(nums) == len([v for v in vals if v != ""]):
                    st.update(type="number", min=min(nums), max=max(nums), mean=statistics.fmean(nums),
                              sum=sum(nums))
                else:
                    st["type"] = "string"
                stats[c] = st
            return ok(op, {"rows": len(rows), "columns": columns, "column_stats": stats})
        if op == "filter":
            col, val = opts.get("column"), opts.get("value")
            if col is None:
                raise ToolParamError(f"{name}: filter needs options.column and options.value")
            kept = [r for r in rows if str(r.get(str(col))) == str(val)]
            return ok(op, {"rows": kept, "count": len(kept)})
        if op == "sample":
            n = int(opts.get("n") or 5)
            return ok(op, {"rows": rows[:n], "count": min(n, len(rows))})
        fmt = str(opts.get("format") or "json").lower()
        if fmt == "json":
            return ok(op, {"output": orjson.dumps(rows).decode(), "rows": len(rows)})
        if fmt in ("tsv", "csv"):
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=columns, delimiter="\t" if fmt == "tsv" else ",")
            w.writeheader()
            w.writerows(rows)
            return ok(op, {"output": buf.getvalue(), "rows": len(rows)})
        raise ToolParamError(f"{name}: invalid options.format '{fmt}' (allowed: json, csv, tsv)")


# ---------------------------------------------------------------------------- json_processor
class JsonProcessor(Tool):
    """json_processor: jq-syntax queries, JSON Schema validation, NDJSON streams."""

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "json_processor"
        op = choice(params, "operation", name, ("query", "transform", "jq", "validate", "stream"), "query")
        raw = params.get("input")
        if op == "stream":
            if not isinstance(raw, str):
                raise ToolParamError(f"{name}: stream needs 'input' as NDJSON text")
            items = []
            for i, line in enumerate(raw.splitlines(), 1):
                if line.strip():
                    try:
                        items.append(orjson.loads(line))
                    except orjson.JSONDecodeError as e:
                        raise ToolError(f"{name}: line {i} is not JSON: {e}") from None
            if params.get("query"):
                items = [y for x in items for y in self._query(str(params["query"]), x)]
            return ok(op, {"result": items, "count": len(items)})
        data = self._load(raw)
        if op == "validate":
            schema = params.get("schema")
            if not isinstance(schema, dict):
                raise ToolParamError(f"{name}: validate needs 'schema' (a JSON Schema table)")
            import jsonschema

            try:
                validator = jsonschema.validators.validator_for(schema)(schema)
            except jsonschema.SchemaError as e:
                raise ToolParamError(f"{name}: invalid schema: {e.message}") from None
            errors = [{"path": "/".join(str(p) for p in e.absolute_path), "message": e.message}
                      for e in validator.iter_errors(data)]
            return ok(op, {"valid": not errors, "errors": errors})
        query = params.get("query") or "."
        out = self._query(str(query), data)
        return ok("query", {"result": out[0] if len(out) == 1 else out})

    @staticmethod
    def _load(raw: Any) -> Any:
        if isinstance(raw, str):
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                raise ToolError(f"json_processor: input is not valid JSON: {e}") from None
        return raw

    @staticmethod
    def _query(q: str, data: Any) -> list[Any]:
        try:
            return run_query(q, data)
        except JqError as e:
            raise ToolError(f"json_processor: {e}") from None


# ---------------------------------------------------------------------------- graph-builder
class GraphBuilder(Tool):
    """graph-builder: graphs as JSON {directed, nodes, edges}; add nodes/edges, analyze, export/import."""

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "graph-builder"
        op = choice(params, "operation", name, ("create_graph", "add_node", "add_edge", "analyze", "export_json",
                                                 "import_json"), "create_graph")
        if op == "create_graph":
            kind = choice(params, "graph_type", name, ("directed", "undirected"), "directed")
            return ok(op, {"graph": {"directed": kind == "directed", "nodes": [], "edges": []}})
        g = self._graph(params.get("graph") if params.get("graph") is not None else params.get("input"))
        if op == "add_node":
            nid = str(need(params, "node_id", name))
            if all(n["id"] != nid for n in g["nodes"]):
                g["nodes"].append({"id": nid, "data": params.get("data")})
        elif op == "add_edge":
            a, b = str(need(params, "from", name)), str(need(params, "to", name))
            for nid in (a, b):
                if all(n["id"] != nid for n in g["nodes"]):
                    g["nodes"].append({"id": nid})
            g["edges"].append({"from": a, "to": b, "data": params.get("data")})
        elif op == "analyze":
            return ok(op, self._analyze(g))
        elif op == "export_json":
            return ok(op, {"graph": g, "json": orjson.dumps(g, option=orjson.OPT_SORT_KEYS).decode()})
        return ok(op, {"graph": g})

    @staticmethod
    def _graph(v: Any) -> dict[str, Any]:
        if isinstance(v, str):
            try:
                v = orjson.loads(v)
            except orjson.JSONDecodeError as e:
                raise ToolParamError(f"graph-builder: graph is not valid JSON: {e}") from None
        if not isinstance(v, dict):
            raise ToolParamError("graph-builder: parameter 'graph' must be a graph table or JSON (create_graph first)")
        return {"directed": bool(v.get("directed", True)), "nodes": list(v.get("nodes") or []),
                "edges": list(v.get("edges") or [])}

    @staticmethod
    def _analyze(g: dict[str, Any]) -> dict[str, Any]:
        ids = [n["id"] for n in g["nodes"]]
        degree = {i: 0 for i in ids}
        adj: dict[str, set[str]] = {i: set() for i in ids}
        for e in g["edges"]:
            degree[e["from"]] = degree.get(e["from"], 0) + 1
            degree[e["to"]] = degree.get(e["to"], 0) + 1
            adj.setdefault(e["from"], set()).add(e["to"])
            adj.setdefault(e["to"], set()).add(e["from"])
        seen: set[str] = set()
        components = 0
        for i in adj:
            if i in seen:
                continue
            components += 1
            stack = [i]
            while stack:
                x = stack.pop()
                if x not in seen:
                    seen.add(x)
                    stack.extend(adj[x] - seen)
        return {"nodes": len(adj), "edges": len(g["edges"]), "degree": degree, "components": components}


# ---------------------------------------------------------------------------- database-connector
#: A database parameter that looks like a URI or carries URI syntax (never handed to SQLite as one).
_URI_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(?!\\)|[?#]|%[0-9A-Fa-f]{2}")


class DatabaseConnector(Tool):
    """database-connector: SQLite (configured names or sandboxed paths); writes need allow_write."""

    blocking = True

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "database-connector"
        op = choice(params, "operation", name, ("query", "schema"), "query")
        db = params.get("database")
        dbs = ctx.opt("databases") or {}
        target = dbs.get(db) if isinstance(dbs, dict) and isinstance(db, str) and db in dbs else db
        if isinstance(target, dict):
            target = target.get("path") or target.get("url")
        if not isinstance(target, str) or not target:
            raise ToolParamError(f"{name}: missing 'database' (a name from [tools.database_connector] databases or a "
                                 "SQLite path)")
        plain = target[len("sqlite://"):] if target.startswith("sqlite://") else target
        if _URI_LIKE.search(plain):
            raise ToolParamError(f"{name}: 'database' must be a plain file path, not a URI ({target!r} has a scheme, "
                                 "'?', '#' or %-escapes); give the path of the SQLite file")
        try:
            path = ctx.sandbox.resolve(plain)
        except SandboxError as e:
            raise ToolError(f"{name}: {e}") from None
        write = choice(params, "query_type", name, ("read", "write"), "read") == "write"
        if write and not ctx.opt("allow_write"):
            raise ToolError(f"{name}: write queries need [tools.database_connector] allow_write = true")
        try:
            conn = open_sqlite(ctx.sandbox, path, write)
        except SandboxError as e:
            raise ToolError(f"{name}: {e}") from None
        except (sqlite3.Error, OSError) as e:
            raise ToolError(f"{name}: cannot open {path}: {e}") from None
        try:
            if op == "schema":
                rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name").fetchall()
                return ok(op, {"tables": [r[0] for r in rows]})
            sql = need(params, "query", name)
            cur = conn.execute(sql)
            if write:
                conn.commit()
                return ok(op, {"columns": [], "rows": [], "row_count": cur.rowcount})
            cols = [d[0] for d in cur.description or []]
            data = [list(r) for r in cur.fetchmany(10000)]
            return ok(op, {"columns": cols, "rows": data, "row_count": len(data)})
        except sqlite3.Error as e:
            raise ToolError(f"{name}: query failed: {e}") from None
        finally:
            conn.close()


def open_sqlite(sandbox: Any, path: Any, write: bool) -> sqlite3.Connection:
    """Open a checked SQLite file: a URI we build (quoted path, mode=ro or rw), pinned to the checked file.

    The file is first opened through the sandbox's descriptor walk (no symlink anywhere); after SQLite
    opens it, the descriptor SQLite holds must be that same file (compared through /proc/self/fd),
    so a swap between the check and SQLite's open is refused. ATTACH (and VACUUM INTO) are disabled,
    and read-only connections also set PRAGMA query_only, which the authorizer keeps from being undone.
    """
    flags = (os.O_RDWR | os.O_CREAT) if write else os.O_RDONLY
    fd = sandbox.open(path, flags, 0o666, create_parents=write)
    try:
        pinned = os.fstat(fd)
        if not stat.S_ISREG(pinned.st_mode):
            raise ToolError(f"'{path}' is not a regular file")
        before = _open_fds()
        uri = f"file:{urllib.parse.quote(str(path), safe='/')}?mode={'rw' if write else 'ro'}"
        conn = sqlite3.connect(uri, uri=True, timeout=5, check_same_thread=False)
        try:
            _check_pinned(path, pinned, before)
            conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
            if not write:
                conn.execute("PRAGMA query_only = ON")
            conn.set_authorizer(_authorizer)
        except BaseException:
            conn.close()
            raise
        return conn
    finally:
        os.close(fd)


def _open_fds() -> dict[str, tuple[int, int]] | None:
    """fd number -> (device, inode) of this process's open descriptors; None without /proc."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    out: dict[str, tuple[int, int]] = {}
    for n in names:
        try:
            st = os.stat(f"/proc/self/fd/{n}")
        except OSError:
            continue
        out[n] = (st.st_dev, st.st_ino)
    return out


def _check_pinned(path: Any, pinned: os.stat_result, before: dict[str, tuple[int, int]] | None) -> None:
    """Refuse unless a descriptor SQLite opened during connect is the checked, pinned file."""
    after = _open_fds()
    want = (pinned.st_dev, pinned.st_ino)
    if before is None or after is None:  # no /proc: re-check the path itself
        st = os.stat(path, follow_symlinks=False)
        same = (st.st_dev, st.st_ino) == want
    else:
        same = any(ident == want for n, ident in after.items() if before.get(n) != ident)
    if not same:
        raise SandboxError(f"'{path}' changed between the sandbox check and SQLite's open; refused")


def _authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in ("query_only", "writable_schema") \
            and arg2 is not None:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK
