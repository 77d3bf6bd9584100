"""Filesystem tools (§19.2 file_operations and the other filesystem tools), all confined by the sandbox."""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fnmatch
import io
import os
import re
import stat
import tarfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
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
#: An extraction writes at most this many bytes and entries in all (a zip bomb is refused before writing).
MAX_EXTRACT_SIZE = 200 * 1024 * 1024
MAX_EXTRACT_ENTRIES = 10_000

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
            st = ctx.sandbox.lstat(path) if op == "append" else None
            existing = st.st_size if st is not None else 0
            if len(data) + existing > limit:
                raise ToolError(f"content of {len(data) + existing} bytes exceeds max_file_size ({limit} bytes)")
            _ext_ok(ctx, path)
            if op == "write":
                ctx.sandbox.write_bytes(path, data, atomic=bool(ctx.opt("atomic_writes", True)))
                text_out = f"Wrote {len(data)} bytes to {path}"
            else:
                ctx.sandbox.write_bytes(path, data, append=True)
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
        limit = int(ctx.opt("max_file_size", MAX_FILE_SIZE))
        try:
            data = ctx.sandbox.read_bytes(path, limit)
        except IsADirectoryError:
            raise ToolError(f"file_operations: read failed: {path} is a directory (use list_dir)") from None
        except SandboxError:
            raise
        except ToolError as e:
            raise ToolError(f"file_operations: {e}") from None
        enc = str(params.get("encoding") or "utf-8")
        try:
            text = data.decode(enc, "surrogateescape") if enc.lower().replace("-", "") == "utf8" else data.decode(enc)
        except (LookupError, UnicodeDecodeError) as e:
            raise ToolError(f"file_operations: read failed: {e}") from None
        return self._out("read", text, path, size=len(data))

    def _delete(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        path = self._path(params, ctx)
        try:
            ctx.sandbox.remove(path, recursive=bool(params.get("recursive")))
        except IsADirectoryError:
            raise ToolError(f"file_operations: delete failed: {path} is a directory (pass recursive = true)") from None
        return self._out("delete", f"Deleted {path}", path)

    def _create_dir(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        path = self._path(params, ctx)
        ctx.sandbox.mkdirs(path)
        return self._out("create_dir", f"Created directory: {path}", path)

    def _list_dir(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        path = self._path(params, ctx)
        st = ctx.sandbox.lstat(path)
        if st is not None and stat.S_ISLNK(st.st_mode):
            raise SandboxError(f"path '{path}' became a symlink after the sandbox check; refused")
        if st is None or not stat.S_ISDIR(st.st_mode):
            raise ToolError(f"file_operations: list_dir failed: {path} is not a directory")
        depth = int(ctx.opt("max_depth", 10)) if params.get("recursive") else 1
        entries = [{"name": e.rel, "path": str(e.path), "type": "file" if e.kind == "other" else e.kind,
                    "size": e.size} for e in ctx.sandbox.walk(path, max_depth=depth)]
        return self._json_out("list_dir", path, {"path": str(path), "entries": entries, "count": len(entries)})

    def _copy_move(self, op: str, params: dict[str, Any], ctx: ToolContext) -> tuple[Path, Path]:
        src = self._path(params, ctx, "source_path") if params.get("source_path") else self._path(params, ctx)
        dst = self._path(params, ctx, "target_path")
        if ctx.sandbox.lstat(src) is None:
            raise ToolError(f"file_operations: {op} failed: no such file or directory: {src}")
        return src, dst

    def _copy(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        src, dst = self._copy_move("copy", params, ctx)
        src_st, dst_st = ctx.sandbox.lstat(src), ctx.sandbox.lstat(dst)
        if src_st is not None and dst_st is not None and not stat.S_ISDIR(src_st.st_mode) \
                and stat.S_ISDIR(dst_st.st_mode):
            dst = ctx.sandbox.resolve(str(dst / src.name))  # as shutil.copy: into an existing directory
        copy_tree(ctx, src, dst)
        return self._out("copy", f"Copied {src} to {dst}", dst)

    def _move(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        src, dst = self._copy_move("move", params, ctx)
        dst_st = ctx.sandbox.lstat(dst)
        if dst_st is not None and stat.S_ISDIR(dst_st.st_mode):
            dst = ctx.sandbox.resolve(str(dst / src.name))  # as shutil.move: into an existing directory
        if dst == src or src in dst.parents:
            raise ToolError(f"file_operations: move failed: cannot move {src} into itself ({dst})")
        try:
            ctx.sandbox.rename(src, dst)
        except OSError as e:
            if e.errno != errno.EXDEV:
                raise
            copy_tree(ctx, src, dst)
            ctx.sandbox.remove(src, recursive=True)
        return self._out("move", f"Moved {src} to {dst}", dst)

    def _metadata(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        path = self._path(params, ctx)
        st = ctx.sandbox.lstat(path)
        if st is None:
            result: dict[str, Any] = {"path": str(path), "exists": False}
            return self._json_out("metadata", path, result)
        link = stat.S_ISLNK(st.st_mode)
        kind = "dir" if stat.S_ISDIR(st.st_mode) else ("symlink" if link else "file")
        result = {"path": str(path), "exists": True, "type": kind, "size": int(st.st_size),
                  "modified": _iso(st.st_mtime), "created": _iso(getattr(st, "st_birthtime", st.st_ctime)),
                  "permissions": oct(stat.S_IMODE(st.st_mode))[2:].rjust(3, "0"),
                  "is_symlink": link}
        return self._json_out("metadata", path, result)

    def _exists(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        path = self._path(params, ctx)
        return self._json_out("exists", path, {"path": str(path), "exists": ctx.sandbox.lstat(path) is not None})


def copy_tree(ctx: ToolContext, src: Path, dst: Path) -> None:
    """Copy a checked file or directory tree to a checked target through directory descriptors.

    Symlinks inside a copied tree are never followed: one pointing inside the allowed paths is
    recreated (pointing at its resolved target), one pointing outside refuses the whole copy before
    anything is written.
    """
    sb = ctx.sandbox
    st = sb.lstat(src)
    if st is None:
        raise ToolError(f"file_operations: copy failed: no such file or directory: {src}")
    if not stat.S_ISDIR(st.st_mode):
        _copy_file(sb, src, dst, st)
        return
    if dst == src or src in dst.parents:
        raise ToolError(f"file_operations: copy failed: cannot copy {src} into itself ({dst})")
    entries = list(sb.walk(src, max_depth=int(ctx.opt("max_depth", 64)) or 64))
    links = {e.rel: sb.link_target(e.path) for e in entries if e.kind == "symlink"}  # refuses outside
    sb.mkdirs(dst)
    for e in entries:
        target = sb.resolve(str(dst / e.rel))
        if e.kind == "dir":
            sb.mkdirs(target)
        elif e.kind == "symlink":
            with sb.parent(target, create=True) as (pfd, name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=pfd)
                os.symlink(str(links[e.rel]), name, dir_fd=pfd)
        elif e.kind == "file":
            est = sb.lstat(e.path)
            if est is not None:
                _copy_file(sb, e.path, target, est)


def _copy_file(sb: Any, src: Path, dst: Path, st: os.stat_result) -> None:
    sb.copy_file(src, dst)


# ---------------------------------------------------------------------------- archive_handler
class ArchiveHandler(Tool):
    """archive_handler: create, list and extract zip/tar/tar.gz inside the sandbox."""

    blocking = True

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "archive_handler"
        op = choice(params, "operation", name, ("extract", "create", "list"), "list")
        sb = ctx.sandbox
        limit = int(ctx.opt("max_file_size", MAX_FILE_SIZE))
        try:
            path = sb.resolve(need(params, "path", name))
            fmt = params.get("format") or _guess_format(path)
            if op == "create":
                files = params.get("input") or []
                if not isinstance(files, list) or not files:
                    raise ToolParamError(f"{name}: create needs 'input', an array of file paths")
                members = _archive_members(ctx, [sb.resolve(str(f)) for f in files])
                buf = io.BytesIO()
                if fmt == "zip":
                    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                        for arc, real in members:
                            z.writestr(arc, sb.read_bytes(real, limit))
                else:
                    with tarfile.open(fileobj=buf, mode="w:gz" if fmt == "tar.gz" else "w") as t:
                        for arc, real in members:
                            data = sb.read_bytes(real, limit)
                            info = tarfile.TarInfo(arc)
                            info.size = len(data)
                            st = sb.lstat(real)
                            if st is not None:
                                info.mtime, info.mode = int(st.st_mtime), stat.S_IMODE(st.st_mode)
                            t.addfile(info, io.BytesIO(data))
                sb.write_bytes(path, buf.getvalue())
                names = [arc for arc, _ in members]
                return ok(op, {"files": names, "count": len(names), "path": str(path)})
            raw = sb.read_bytes(path)
            if op == "list":
                names = _list_archive(raw, fmt)
                return ok(op, {"files": names, "count": len(names)})
            target = sb.resolve(params.get("target_path") or str(path.parent))
            caps = _ExtractCaps(limit, int(ctx.opt("max_extract_size", MAX_EXTRACT_SIZE)),
                                int(ctx.opt("max_extract_entries", MAX_EXTRACT_ENTRIES)))
            written = _extract(ctx, raw, fmt, target, caps)
            return ok(op, {"files": written, "count": len(written), "target_path": str(target)})
        except SandboxError as e:
            raise ToolError(f"{name}: {e}") from None
        except (OSError, zipfile.BadZipFile, tarfile.TarError) as e:
            raise ToolError(f"{name}: {op} failed: {e}") from None


def _archive_members(ctx: ToolContext, paths: list[Path]) -> list[tuple[str, Path]]:
    """(name in the archive, real path) of each file to pack; directories are walked, symlinks refused."""
    out: list[tuple[str, Path]] = []
    for p in paths:
        st = ctx.sandbox.lstat(p)
        if st is None:
            raise ToolError(f"archive_handler: no such file or directory: {p}")
        if not stat.S_ISDIR(st.st_mode):
            out.append((p.name, p))
            continue
        for e in ctx.sandbox.walk(p, max_depth=64):
            if e.kind == "symlink":
                raise SandboxError(f"'{e.path}' is a symlink; archives are made of regular files only, refused")
            if e.kind == "file":
                out.append((f"{p.name}/{e.rel}", e.path))
    return out


def _guess_format(path: Path) -> str:
    s = path.name.lower()
    if s.endswith((".tar.gz", ".tgz")):
        return "tar.gz"
    if s.endswith(".tar"):
        return "tar"
    return "zip"


def _list_archive(raw: bytes, fmt: str) -> list[str]:
    if fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            return z.namelist()
    with tarfile.open(fileobj=io.BytesIO(raw)) as t:
        return t.getnames()


def _member_target(target: Path, member: str) -> Path:
    """Where an archive entry lands; refuses absolute names and `..` that would leave the target."""
    norm = os.path.normpath(member.replace("\\", "/"))
    if os.path.isabs(norm) or norm == ".." or norm.startswith("../") or member.startswith("/"):
        raise ToolError(f"archive_handler: archive entry '{member}' would escape the target directory; refused")
    return target if norm == "." else target / norm


@dataclass(frozen=True)
class _ExtractCaps:
    """What one extraction may write: per entry, in all, and how many entries."""

    per_entry: int
    total: int
    entries: int

    def check_plan(self, count: int, declared: int) -> None:
        if count > self.entries:
            raise ToolError(f"archive_handler: the archive has {count} entries, over max_extract_entries "
                            f"({self.entries}); refused before writing")
        if declared > self.total:
            raise ToolError(f"archive_handler: the archive expands to {declared} bytes, over max_extract_size "
                            f"({self.total} bytes); refused before writing")


def _extract(ctx: ToolContext, raw: bytes, fmt: str, target: Path, caps: _ExtractCaps) -> list[str]:
    """Extract every entry through the sandbox's descriptor walk (a planted symlink is never followed)."""
    sb = ctx.sandbox
    limit = caps.per_entry
    plan: list[tuple[str, Path, Callable[[], bytes] | None, int | None]] = []
    if fmt == "zip":
        z = zipfile.ZipFile(io.BytesIO(raw))
        infos = z.infolist()
        caps.check_plan(len(infos), sum(i.file_size for i in infos))
        for info in infos:
            dest = _member_target(target, info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ToolError(f"archive_handler: archive entry '{info.filename}' is a symlink; refused")
            if info.file_size > limit:
                raise ToolError(f"archive_handler: archive entry '{info.filename}' is {info.file_size} bytes, over "
                                f"max_file_size ({limit} bytes)")
            plan.append((info.filename, dest, None if info.is_dir() else _zip_reader(z, info, limit), None))
    else:
        t = tarfile.open(fileobj=io.BytesIO(raw))  # noqa: SIM115 - in-memory, read by the plan below
        members: list[tarfile.TarInfo] = []
        declared = 0
        for m in t:  # checked as the headers are read: a bomb stops before its whole index is walked
            members.append(m)
            declared += m.size
            caps.check_plan(len(members), declared)
        for m in members:
            dest = _member_target(target, m.name)
            if not (m.isfile() or m.isdir()):
                raise ToolError(f"archive_handler: archive entry '{m.name}' is a link or special file; refused")
            if m.size > limit:
                raise ToolError(f"archive_handler: archive entry '{m.name}' is {m.size} bytes, over max_file_size "
                                f"({limit} bytes)")

            def read(m: tarfile.TarInfo = m) -> bytes:
                f = t.extractfile(m)
                return b"" if f is None else _read_capped(f, limit, m.name)

            plan.append((m.name, dest, read if m.isfile() else None, m.mode & 0o777 if m.isfile() else None))
    sb.mkdirs(target)
    written: list[str] = []
    total = 0
    for member, dest, reader, mode in plan:
        real = sb.resolve(str(dest))
        if reader is None:
            sb.mkdirs(real)
        else:
            data = reader()
            total += len(data)
            if total > caps.total:
                raise ToolError(f"archive_handler: extraction stopped at '{member}': over max_extract_size "
                                f"({caps.total} bytes); {len(written)} entries written")
            sb.write_bytes(real, data, mode=mode)
        written.append(member)
    return written


def _zip_reader(z: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> Callable[[], bytes]:
    return lambda: _read_capped(z.open(info), limit, info.filename)


def _read_capped(f: Any, limit: int, member: str) -> bytes:
    with f:
        data: bytes = f.read(limit + 1)
    if len(data) > limit:
        raise ToolError(f"archive_handler: archive entry '{member}' is over max_file_size ({limit} bytes)")
    return data


# ---------------------------------------------------------------------------- file_converter
class FileConverter(Tool):
    """file_converter: re-encode, change line endings or indentation of a file."""

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "file_converter"
        op = choice(params, "operation", name, ("encoding", "line_endings", "indentation"), "encoding")
        try:
            src = ctx.sandbox.resolve(need(params, "path", name))
            dst = ctx.sandbox.resolve(params["target_path"]) if params.get("target_path") else src
            raw = ctx.sandbox.read_bytes(src, int(ctx.opt("max_file_size", MAX_FILE_SIZE)))
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
            ctx.sandbox.write_bytes(dst, data)
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
    """file_search: grep-like search of files under a sandboxed directory (symlinks are not followed)."""

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
        exc_dirs = frozenset(params.get("exclude_dirs") or [".git", "node_modules", "__pycache__"])
        max_size = int(params.get("max_file_size") or 10 * 1024 * 1024)
        per_file = int(params.get("max_matches_per_file") or 100)
        max_depth = int(params.get("max_depth") or 20)
        recursive = params.get("recursive", True) is not False
        matches: list[dict[str, Any]] = []
        skipped: list[dict[str, str]] = []
        searched = 0
        st = ctx.sandbox.lstat(root)
        if st is None:
            raise ToolError(f"{name}: no such file or directory: {root}")
        if stat.S_ISDIR(st.st_mode):
            files: list[Path] = []
            for ent in ctx.sandbox.walk(root, max_depth=max_depth if recursive else 1, exclude_dirs=exc_dirs):
                if ent.kind == "file":
                    files.append(ent.path)
                elif ent.kind == "symlink":
                    skipped.append({"file": str(ent.path), "reason": "symlink (not followed)"})
        else:
            files = [root]
        for f in files:
            ext = f.suffix.lstrip(".").lower()
            if (inc and ext not in inc) or ext in exc:
                continue
            try:
                lines = ctx.sandbox.read_bytes(f, max_size).decode("utf-8").splitlines()
            except SandboxError as e:
                skipped.append({"file": str(f), "reason": str(e)})
                continue
            except (ToolError, OSError, UnicodeDecodeError):
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
        return ok("search", {"matches": matches, "files_searched": searched, "total_matches": len(matches),
                             "skipped": skipped})


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
                    snap[str(p)] = p.lstat().st_mtime_ns
                except OSError:
                    continue
        return snap
