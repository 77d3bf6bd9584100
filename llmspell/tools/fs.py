"""Filesystem tools (§19.2 file_operations and the other filesystem tools), all confined by the sandbox."""

from __future__ import annotations

import datetime as _dt
import fnmatch
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from llmspell.tools.base import (
    Tool,
    ToolContext,
    ToolError,
    ToolOutput,
    ToolParamError,
    choice,
    json_text,
    need,
    ok,
)
from llmspell.tools.sandbox import SandboxError

MAX_FILE_SIZE = 50 * 1024 * 1024

_FILE_OPS: dict[str, str] = {
    "read": "read", "write": "write", "append": "append", "delete": "delete", "remove": "delete",
    "create_dir": "create_dir", "mkdir": "create_dir", "list_dir": "list_dir", "ls": "list_dir",
    "dir": "list_dir", "list": "list_dir", "copy": "copy", "cp": "copy", "move": "move", "mv": "move",
    "rename": "move", "metadata": "metadata", "stat": "metadata", "info": "metadata", "exists": "exists",
}


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat().replace("+00:00", "Z")


def _ext_ok(ctx: ToolContext, path: Path) -> None:
    ext = path.suffix.lstrip(".").lower()
    allowed = ctx.opt("allowed_extensions")
    blocked = ctx.opt("blocked_extensions")
    norm = [str(e).lstrip(".").lower() for e in (allowed or [])]
    if allowed and ext not in norm:
        raise ToolError(f"file extension '.{ext}' is not allowed (allowed_extensions: {', '.join(norm)})")
    if blocked and ext in [str(e).lstrip(".").lower() for e in blocked]:
        raise ToolError(f"file extension '.{ext}' is blocked by [tools.file_operations] blocked_extensions")


class FileOperations(Tool):
    """file_operations: read/write/append/delete/mkdir/list/copy/move/metadata/exists (§19.2)."""

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        raw_op = need(params, "operation", "file_operations")
        op = _FILE_OPS.get(raw_op.lower())
        if op is None:
            raise ToolParamError(
                f"file_operations: invalid operation '{raw_op}' (allowed: read, write, append, delete, "
                "create_dir, list_dir, copy, move, metadata, exists)")
        if op in ("write", "append"):
            return self._write(op, params, ctx)
        try:
            return getattr(self, "_" + op)(params, ctx)
        except SandboxError as e:
            raise ToolError(f"file_operations: {e}") from None
        except FileNotFoundError as e:
            raise ToolError(f"file_operations: {op} failed: no such file or directory: {e.filename}") from None
        except OSError as e:
            raise ToolError(f"file_operations: {op} failed: {e.strerror or e}: {e.filename or ''}") from None

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _response(op: str, success: bool, message: str, path: Path | None, result: Any = None,
                  size: int | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"file_path": str(path) if path is not None else None}
        if size is not None:
            meta["file_size"] = size
        resp: dict[str, Any] = {"operation": op, "success": success, "message": message, "metadata": meta}
        if result is not None:
            resp["result"] = result
        return resp

    def _out(self, op: str, text: str, path: Path | None, result: Any = None, size: int | None = None) -> ToolOutput:
        return ToolOutput(text, response=self._response(op, True, text, path, result, size))

    def _json_out(self, op: str, path: Path, result: dict[str, Any]) -> ToolOutput:
        text = json_text({"operation": op, "success": True, "result": result})
        return ToolOutput(text, response=self._response(op, True, f"{op} {path}", path, result))

    @staticmethod
    def _path(params: dict[str, Any], ctx: ToolContext, key: str = "path") -> Path:
        value = params.get(key)
        if not isinstance(value, str) or not value:
            raise ToolParamError(f"file_operations: missing required parameter '{key}' (string)")
        return ctx.sandbox.resolve(value)

    # ---------------------------------------------------------------- write / append (graceful)
    def _write(self, op: str, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        path: Path | None = None
        try:
            path = self._path(params, ctx)
            content = params.get("input")
            if content is None:
                content = params.get("content")
            if content is None:
                raise ToolError("missing 'input' (the content to write)")
            if isinstance(content, dict | list):
                raise ToolError("content is a table; encode it first with JSON.stringify(t)")
            if isinstance(content, bool):
                content = "true" if content else "false"
            text = content if isinstance(content, str) else str(content)
            enc = str(params.get("encoding") or "utf-8")
            data = text.encode(enc, "surrogateescape") if enc.lower().replace("-", "") == "utf8" else text.encode(enc)
            limit = int(ctx.opt("max_file_size", MAX_FILE_SIZE))
            existing = path.stat().st_size if op == "append" and path.exists() else 0
            if len(data) + existing > limit:
                raise ToolError(f"content of {len(data) + existing} bytes exceeds max_file_size ({limit} bytes)")
            _ext_ok(ctx, path)
            path.parent.mkdir(parents=True, exist_ok=True)
            if op == "write":
                if ctx.opt("atomic_writes", True):
                    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
                    try:
                        with os.fdopen(fd, "wb") as f:
                            f.write(data)
                        if path.exists():
                            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
                        else:
                            os.chmod(tmp, 0o666 & ~_umask())
                        os.replace(tmp, path)
                    except BaseException:
                        if os.path.exists(tmp):
                            os.unlink(tmp)
                        raise
                else:
                    path.write_bytes(data)
                text_out = f"Wrote {len(data)} bytes to {path}"
            else:
                with open(path, "ab") as f:
                    f.write(data)
                text_out = f"Appended {len(data)} bytes to {path}"
            return self._out(op, text_out, path, size=len(data))
        except (ToolError, OSError, UnicodeError, LookupError) as e:
            reason = str(e) if not isinstance(e, OSError) else f"{e.strerror or e}"
            if isinstance(e, ToolError) and reason.startswith("file_operations: "):
                reason = reason[len("file_operations: "):]
            text = f"Operation '{op}' failed: {reason}"
            import logging

            logging.getLogger("llmspell.tools").warning("file_operations: %s", text)
            return ToolOutput(text, response=self._response(op, False, text, path))

    # ---------------------------------------------------------------- other operations (raise)
    def _read(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        path = self._path(params, ctx)
        size = path.stat().st_size
        limit = int(ctx.opt("max_file_size", MAX_FILE_SIZE))
        if size > limit:
            raise ToolError(f"file_operations: {path} is {size} bytes, over max_file_size ({limit} bytes)")
        if path.is_dir():
            raise ToolError(f"file_operations: read failed: {path} is a directory (use list_dir)")
        data = path.read_bytes()
        enc = str(params.get("encoding") or "utf-8")
        try:
            text = data.decode(enc, "surrogateescape") if enc.lower().replace("-", "") == "utf8" else data.decode(enc)
        except (LookupError, UnicodeDecodeError) as e:
            raise ToolError(f"file_operations: read failed: {e}") from None
        return self._out("read", text, path, size=size)

    def _delete(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        path = self._path(params, ctx)
        if path.is_dir() and not path.is_symlink():
            if not params.get("recursive"):
                raise ToolError(f"file_operations: delete failed: {path} is a directory (pass recursive = true)")
            shutil.rmtree(path)
        else:
            path.unlink()
        return self._out("delete", f"Deleted {path}", path)

    def _create_dir(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        path = self._path(params, ctx)
        path.mkdir(parents=True, exist_ok=True)
        return self._out("create_dir", f"Created directory: {path}", path)

    def _list_dir(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        path = self._path(params, ctx)
        if not path.is_dir():
            raise ToolError(f"file_operations: list_dir failed: {path} is not a directory")
        max_depth = int(ctx.opt("max_depth", 10))
        entries: list[dict[str, Any]] = []

        def walk(d: Path, depth: int) -> None:
            for child in sorted(d.iterdir(), key=lambda p: p.name):
                kind = "symlink" if child.is_symlink() else ("dir" if child.is_dir() else "file")
                try:
                    size = child.lstat().st_size if kind != "dir" else 0
                except OSError:
                    size = 0
                rel = child.relative_to(path)
                entries.append({"name": str(rel), "path": str(child), "type": kind, "size": size})
                if kind == "dir" and params.get("recursive") and depth < max_depth:
                    walk(child, depth + 1)

        walk(path, 1)
        return self._json_out("list_dir", path, {"path": str(path), "entries": entries, "count": len(entries)})

    def _copy_move(self, op: str, params: dict[str, Any], ctx: ToolContext) -> tuple[Path, Path]:
        src = self._path(params, ctx, "source_path") if params.get("source_path") else self._path(params, ctx)
        dst = self._path(params, ctx, "target_path")
        if not src.exists():
            raise ToolError(f"file_operations: {op} failed: no such file or directory: {src}")
        dst.parent.mkdir(parents=True, exist_ok=True)
        return src, dst

    def _copy(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        src, dst = self._copy_move("copy", params, ctx)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
        return self._out("copy", f"Copied {src} to {dst}", dst)

    def _move(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        src, dst = self._copy_move("move", params, ctx)
        shutil.move(str(src), str(dst))
        return self._out("move", f"Moved {src} to {dst}", dst)

    def _metadata(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        path = self._path(params, ctx)
        if not path.exists() and not path.is_symlink():
            result: dict[str, Any] = {"path": str(path), "exists": False}
            return self._json_out("metadata", path, result)
        st = path.lstat() if path.is_symlink() else path.stat()
        kind = "dir" if path.is_dir() else ("symlink" if path.is_symlink() else "file")
        result = {"path": str(path), "exists": True, "type": kind, "size": int(st.st_size),
                  "modified": _iso(st.st_mtime), "created": _iso(getattr(st, "st_birthtime", st.st_ctime)),
                  "permissions": oct(stat.S_IMODE(st.st_mode))[2:].rjust(3, "0"),
                  "is_symlink": path.is_symlink()}
        return self._json_out("metadata", path, result)

    def _exists(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        path = self._path(params, ctx)
        return self._json_out("exists", path, {"path": str(path), "exists": path.exists()})


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------- archive_handler
class ArchiveHandler(Tool):
    """archive_handler: create, list and extract zip/tar/tar.gz inside the sandbox."""

    blocking = True

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "archive_handler"
        op = choice(params, "operation", name, ("extract", "create", "list"), "list")
        try:
            path = ctx.sandbox.resolve(need(params, "path", name))
            fmt = params.get("format") or _guess_format(path)
            if op == "create":
                files = params.get("input") or []
                if not isinstance(files, list) or not files:
                    raise ToolParamError(f"{name}: create needs 'input', an array of file paths")
                members = [ctx.sandbox.resolve(str(f)) for f in files]
                path.parent.mkdir(parents=True, exist_ok=True)
                if fmt == "zip":
                    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
                        for m in members:
                            z.write(m, m.name)
                else:
                    with tarfile.open(path, "w:gz" if fmt == "tar.gz" else "w") as t:
                        for m in members:
                            t.add(m, m.name)
                names = [m.name for m in members]
                return ok(op, {"files": names, "count": len(names), "path": str(path)})
            names = _list_archive(path, fmt)
            if op == "list":
                return ok(op, {"files": names, "count": len(names)})
            target = ctx.sandbox.resolve(params.get("target_path") or str(path.parent))
            for n in names:
                dest = os.path.realpath(os.path.join(target, n))
                if not dest.startswith(str(target).rstrip(os.sep) + os.sep) and dest != str(target):
                    raise ToolError(f"{name}: archive entry '{n}' would escape the target directory; refused")
            target.mkdir(parents=True, exist_ok=True)
            if fmt == "zip":
                with zipfile.ZipFile(path) as z:
                    z.extractall(target)
            else:
                with tarfile.open(path) as t:
                    t.extractall(target, filter="data")
            return ok(op, {"files": names, "count": len(names), "target_path": str(target)})
        except SandboxError as e:
            raise ToolError(f"{name}: {e}") from None
        except (OSError, zipfile.BadZipFile, tarfile.TarError) as e:
            raise ToolError(f"{name}: {op} failed: {e}") from None


def _guess_format(path: Path) -> str:
    s = path.name.lower()
    if s.endswith((".tar.gz", ".tgz")):
        return "tar.gz"
    if s.endswith(".tar"):
        return "tar"
    return "zip"


def _list_archive(path: Path, fmt: str) -> list[str]:
    if fmt == "zip":
        with zipfile.ZipFile(path) as z:
            return z.namelist()
    with tarfile.open(path) as t:
        return t.getnames()


# ---------------------------------------------------------------------------- file_converter
class FileConverter(Tool):
    """file_converter: re-encode, change line endings or indentation of a file."""

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "file_converter"
        op = choice(params, "operation", name, ("encoding", "line_endings", "indentation"), "encoding")
        try:
            src = ctx.sandbox.resolve(need(params, "path", name))
            dst = ctx.sandbox.resolve(params["target_path"]) if params.get("target_path") else src
            raw = src.read_bytes()
            enc_from = str(params.get("from_encoding") or "utf-8")
            text = raw.decode(enc_from)
            enc_to = enc_from
            if op == "encoding":
                enc_to = str(params.get("to_encoding") or "utf-8")
            elif op == "line_endings":
                le = choice(params, "line_ending", name, ("lf", "crlf"), "lf")
                text = text.replace("\r\n", "\n")
                if le == "crlf":
                    text = text.replace("\n", "\r\n")
            else:
                size = int(params.get("tab_size") or 4)
                if params.get("convert_to_spaces", True):
                    text = "\n".join(line.expandtabs(size) for line in text.split("\n"))
                else:
                    text = "\n".join(_spaces_to_tabs(line, size) for line in text.split("\n"))
            data = text.encode(enc_to)
            dst.write_bytes(data)
            return ok(op, {"path": str(dst), "bytes": len(data)})
        except SandboxError as e:
            raise ToolError(f"{name}: {e}") from None
        except (OSError, UnicodeError, LookupError) as e:
            raise ToolError(f"{name}: {op} failed: {e}") from None


def _spaces_to_tabs(line: str, size: int) -> str:
    stripped = line.lstrip(" ")
    n = len(line) - len(stripped)
    return "\t" * (n // size) + " " * (n % size) + stripped


# ---------------------------------------------------------------------------- file_search
class FileSearch(Tool):
    """file_search: grep-like search of files under a sandboxed directory."""

    blocking = True

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "file_search"
        pattern = need(params, "pattern", name)
        try:
            root = ctx.sandbox.resolve(need(params, "path", name))
        except SandboxError as e:
            raise ToolError(f"{name}: {e}") from None
        flags = 0 if params.get("case_sensitive") else re.IGNORECASE
        try:
            rx = re.compile(pattern if params.get("use_regex") else re.escape(pattern), flags)
        except re.error as e:
            raise ToolParamError(f"{name}: invalid regex pattern: {e}") from None
        ctx_lines = int(params.get("context_lines") or 0)
        inc = {str(e).lstrip(".").lower() for e in params.get("include_extensions") or []}
        exc = {str(e).lstrip(".").lower() for e in params.get("exclude_extensions") or []}
        exc_dirs = set(params.get("exclude_dirs") or [".git", "node_modules", "__pycache__"])
        max_size = int(params.get("max_file_size") or 10 * 1024 * 1024)
        per_file = int(params.get("max_matches_per_file") or 100)
        max_depth = int(params.get("max_depth") or 20)
        recursive = params.get("recursive", True) is not False
        matches: list[dict[str, Any]] = []
        searched = 0
        files = [root] if root.is_file() else self._files(root, recursive, max_depth, exc_dirs)
        for f in files:
            ext = f.suffix.lstrip(".").lower()
            if (inc and ext not in inc) or ext in exc:
                continue
            try:
                if f.stat().st_size > max_size:
                    continue
                lines = f.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                continue
            searched += 1
            found = 0
            for i, line in enumerate(lines):
                m = rx.search(line)
                if not m:
                    continue
                matches.append({"file": str(f), "line": i + 1, "column": m.start() + 1, "text": line,
                                "context_before": lines[max(0, i - ctx_lines):i],
                                "context_after": lines[i + 1:i + 1 + ctx_lines]})
                found += 1
                if found >= per_file:
                    break
        return ok("search", {"matches": matches, "files_searched": searched, "total_matches": len(matches)})

    @staticmethod
    def _files(root: Path, recursive: bool, max_depth: int, exc_dirs: set[str]) -> list[Path]:
        out: list[Path] = []
        base_depth = len(root.parts)
        for dirpath, dirnames, filenames in os.walk(root):
            depth = len(Path(dirpath).parts) - base_depth
            dirnames[:] = sorted(d for d in dirnames if d not in exc_dirs) if recursive and depth < max_depth else []
            out.extend(Path(dirpath) / f for f in sorted(filenames))
        return out


# ---------------------------------------------------------------------------- file_watcher
class FileWatcher(Tool):
    """file_watcher: poll paths for created/modified/deleted files until max_events or the timeout."""

    blocking = True

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "file_watcher"
        op = choice(params, "operation", name, ("watch", "config"), "watch")
        paths = params.get("input") or []
        if isinstance(paths, str):
            paths = [paths]
        try:
            roots = [ctx.sandbox.resolve(str(p)) for p in paths]
        except SandboxError as e:
            raise ToolError(f"{name}: {e}") from None
        timeout_ms = int(params.get("timeout_ms") or (float(params.get("timeout_seconds") or 5) * 1000))
        max_events = int(params.get("max_events") or 10)
        if op == "config":
            return ok(op, {"paths": [str(r) for r in roots], "timeout_ms": timeout_ms, "max_events": max_events,
                           "recursive": bool(params.get("recursive")), "pattern": params.get("pattern")})
        if not roots:
            raise ToolParamError(f"{name}: watch needs 'input', an array of paths")
        pattern = params.get("pattern")
        before = self._snapshot(roots, bool(params.get("recursive")), pattern)
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_ms / 1000.0
        while time.monotonic() < deadline and len(events) < max_events:
            time.sleep(0.05)
            now = self._snapshot(roots, bool(params.get("recursive")), pattern)
            stamp = _iso(time.time())
            for p, m in now.items():
                if p not in before:
                    events.append({"path": p, "kind": "create", "timestamp": stamp})
                elif before[p] != m:
                    events.append({"path": p, "kind": "modify", "timestamp": stamp})
            events.extend({"path": p, "kind": "remove", "timestamp": stamp} for p in before if p not in now)
            before = now
        return ok(op, {"events": events[:max_events]})

    @staticmethod
    def _snapshot(roots: list[Path], recursive: bool, pattern: Any) -> dict[str, float]:
        snap: dict[str, float] = {}
        for r in roots:
            items = [r] if r.is_file() else (r.rglob("*") if recursive else r.glob("*"))
            for p in items:
                if pattern and not fnmatch.fnmatch(p.name, str(pattern)):
                    continue
                try:
                    snap[str(p)] = p.stat().st_mtime_ns
                except OSError:
                    continue
        return snap
