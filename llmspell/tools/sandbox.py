"""The file sandbox of lua-api.md §19.1: every tool path must resolve under an allowed root.

A path is checked once (made absolute, `..` and symlinks resolved, compared with the real roots),
then *used* only through directory descriptors: the walk from the root opens every component with
O_NOFOLLOW, so a component swapped for a symlink between the check and the use is refused instead
of followed. Recursive walks never follow symlinks; entries that are symlinks are reported to the
caller, which refuses those that point outside the roots.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmspell.config import is_trusted
from llmspell.settings import default_tool_roots, is_under, settings_of
from llmspell.tools.base import ToolError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 16

#: Test seam: called with the checked real path between the check and the first open (a race test
#: swaps a component for a symlink here). None in normal operation.
between_check_and_use: Callable[[Path], None] | None = None


class SandboxError(ToolError):
    """A path outside the allowed roots, or one that changed into a symlink during the operation."""


class TooLargeError(ToolError):
    """A file read through the sandbox is larger than the limit the caller gave."""


def default_roots(cwd: str | None = None) -> list[str]:
    """The CWD at start plus the system temp directory (`settings.default_tool_roots`)."""
    return list(default_tool_roots(cwd))


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for r in items:
        if r not in seen:
            seen.append(r)
    return seen


@dataclass(frozen=True)
class Entry:
    """One entry met by a recursive walk: its path relative to the walk's top, kind and lstat size."""

    rel: str
    path: Path
    kind: str  # "file" | "dir" | "symlink" | "other"
    size: int


@dataclass(frozen=True)
class Sandbox:
    """Resolves paths against the CWD, checks them against real roots, and opens them race-free."""

    roots: tuple[str, ...]
    #: When set, every path is refused with this message (an untrusted config widened the roots).
    refusal: str | None = None

    @classmethod
    def from_config(cls, allowed: Iterable[str] | None, cwd: str | None = None) -> Sandbox:
        raw = list(allowed) if allowed else default_roots(cwd)
        return cls(tuple(_dedupe(os.path.realpath(os.path.expanduser(str(r))) for r in raw)))

    # ------------------------------------------------------------ checking
    def resolve(self, path: str) -> Path:
        """The absolute, resolved path; raises SandboxError when it lies outside every root."""
        if self.refusal is not None:
            raise SandboxError(self.refusal)
        if not isinstance(path, str) or path == "":
            raise SandboxError("path must be a non-empty string")
        if "\x00" in path:
            raise SandboxError("path must not contain NUL characters")
        real = os.path.realpath(os.path.join(os.getcwd(), os.path.expanduser(path)))
        if self.root_of(real) is not None:
            return Path(real)
        raise SandboxError(
            f"path '{path}' is outside the allowed paths ({', '.join(self.roots)}); add it to "
            "[tools.file_operations] allowed_paths")

    def root_of(self, real: str | os.PathLike[str]) -> str | None:
        """The longest allowed root containing the real path `real`, or None."""
        s = os.fspath(real)
        best: str | None = None
        for root in self.roots:
            if is_under(s, root) and (best is None or len(root) > len(best)):
                best = root
        return best

    def contains(self, path: str) -> bool:
        try:
            self.resolve(path)
        except SandboxError:
            return False
        return True

    def inside(self, real: str | os.PathLike[str]) -> bool:
        """Whether an already-real path lies under a root."""
        return self.root_of(real) is not None

    # ------------------------------------------------------------ descriptor walks
    def _split(self, real: Path) -> tuple[str, list[str]]:
        root = self.root_of(real)
        if root is None:
            raise SandboxError(f"path '{real}' is outside the allowed paths ({', '.join(self.roots)}); add it to "
                               "[tools.file_operations] allowed_paths")
        rel = os.path.relpath(real, root)
        return root, ([] if rel == "." else rel.split(os.sep))

    def _step(self, fd: int, name: str, real: Path, create: bool) -> int:
        """Open directory `name` under `fd` without following a symlink (creating it when asked)."""
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise
            with suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=fd)
            return self._step(fd, name, real, False)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(fd, name):
                raise _swapped(real, name) from None
            raise

    @contextmanager
    def parent(self, real: Path, *, create: bool = False) -> Iterator[tuple[int, str]]:
        """(descriptor of the parent directory, final name) of a checked path, walked with O_NOFOLLOW."""
        root, parts = self._split(real)
        if not parts:
            raise SandboxError(f"'{real}' is an allowed root itself; this operation needs a path inside it")
        hook = between_check_and_use
        if hook is not None:
            hook(real)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for comp in parts[:-1]:
                nfd = self._step(fd, comp, real, create)
                os.close(fd)
                fd = nfd
            yield fd, parts[-1]
        finally:
            os.close(fd)

    @contextmanager
    def opendir(self, real: Path) -> Iterator[int]:
        """A descriptor of the checked directory `real` (no component may be a symlink)."""
        root, parts = self._split(real)
        if not parts:
            hook = between_check_and_use
            if hook is not None:
                hook(real)
            fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        else:
            with self.parent(real) as (pfd, name):
                fd = self._step(pfd, name, real, False)
        try:
            yield fd
        finally:
            os.close(fd)

    def open(self, real: Path, flags: int, mode: int = 0o666, *, create_parents: bool = False) -> int:
        """os.open of a checked path relative to its parent's descriptor, never following a symlink."""
        with self.parent(real, create=create_parents) as (pfd, name):
            return _open_at(pfd, name, flags, mode, real)

    def lstat(self, real: Path) -> os.stat_result | None:
        """lstat of a checked path through its parent descriptor; None when it does not exist."""
        try:
            if not self._split(real)[1]:
                return os.stat(real)
            with self.parent(real) as (pfd, name):
                return os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None

    def read_bytes(self, real: Path, limit: int | None = None) -> bytes:
        """The content of a checked regular file; raises ToolError past `limit` bytes."""
        fd = self.open(real, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, "is a directory", str(real))
            if not stat.S_ISREG(st.st_mode):
                raise ToolError(f"'{real}' is not a regular file")
            if limit is not None and st.st_size > limit:
                raise TooLargeError(f"{real} is {st.st_size} bytes, over max_file_size ({limit} bytes)")
            data = f.read() if limit is None else f.read(limit + 1)
            if limit is not None and len(data) > limit:
                raise TooLargeError(f"{real} is over max_file_size ({limit} bytes)")
            return data

    def write_bytes(self, real: Path, data: bytes, *, append: bool = False, atomic: bool = True,
                    mode: int | None = None, mtime_ns: tuple[int, int] | None = None) -> None:
        """Write (atomically: temp file + rename in the same directory descriptor) or append."""
        with self.parent(real, create=True) as (pfd, name):
            if append:
                fd = _open_at(pfd, name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666, real)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                return
            if not atomic:
                fd = _open_at(pfd, name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666, real)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                return
            try:
                old: os.stat_result | None = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                old = None
            if old is not None and stat.S_ISDIR(old.st_mode):
                raise IsADirectoryError(errno.EISDIR, "is a directory", str(real))
            tmp = f".{name}.{secrets.token_hex(4)}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666, dir_fd=pfd)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    if mode is not None:
                        os.fchmod(f.fileno(), mode)
                    elif old is not None and stat.S_ISREG(old.st_mode):
                        os.fchmod(f.fileno(), stat.S_IMODE(old.st_mode))
                if mtime_ns is not None:
                    os.utime(tmp, ns=mtime_ns, dir_fd=pfd, follow_symlinks=False)
                os.replace(tmp, name, src_dir_fd=pfd, dst_dir_fd=pfd)
            except BaseException:
                with suppress(OSError):
                    os.unlink(tmp, dir_fd=pfd)
                raise

    def copy_file(self, src: Path, dst: Path) -> None:
        """Stream a checked regular file to a checked target (temp file + rename), keeping mode and times."""
        sfd = self.open(src, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(sfd, "rb") as fin:
            st = os.fstat(fin.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ToolError(f"'{src}' is not a regular file")
            with self.parent(dst, create=True) as (pfd, name):
                tmp = f".{name}.{secrets.token_hex(4)}.tmp"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                             dir_fd=pfd)
                try:
                    with os.fdopen(fd, "wb") as fout:
                        while chunk := fin.read(_CHUNK * 16):
                            fout.write(chunk)
                        os.fchmod(fout.fileno(), stat.S_IMODE(st.st_mode))
                    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=pfd, follow_symlinks=False)
                    os.replace(tmp, name, src_dir_fd=pfd, dst_dir_fd=pfd)
                except BaseException:
                    with suppress(OSError):
                        os.unlink(tmp, dir_fd=pfd)
                    raise

    def mkdirs(self, real: Path) -> None:
        """Create a checked directory and its missing parents (fine if it exists)."""
        if not self._split(real)[1]:
            return
        with self.parent(real, create=True) as (pfd, name):
            os.close(self._step(pfd, name, real, True))

    def remove(self, real: Path, *, recursive: bool) -> None:
        """Delete a checked file, or a directory tree when `recursive` (descriptor-based, no symlink followed)."""
        with self.parent(real) as (pfd, name):
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                if not recursive:
                    raise IsADirectoryError(errno.EISDIR, "is a directory", str(real))
                _rmtree_at(pfd, name)
            else:
                os.unlink(name, dir_fd=pfd)

    def rename(self, src: Path, dst: Path) -> None:
        """Rename a checked path to another within one filesystem (OSError EXDEV otherwise)."""
        with self.parent(src) as (spfd, sname), self.parent(dst, create=True) as (dpfd, dname):
            os.rename(sname, dname, src_dir_fd=spfd, dst_dir_fd=dpfd)

    def walk(self, top: Path, *, max_depth: int, exclude_dirs: frozenset[str] = frozenset()) -> Iterator[Entry]:
        """Every entry under a checked directory, depth-first in name order, never following symlinks.

        Depth 1 is the directory's own entries; a directory at depth `max_depth` is not entered.
        """
        with self.opendir(top) as fd:
            yield from self._walk_fd(fd, top, "", 1, max_depth, exclude_dirs)

    def _walk_fd(self, fd: int, top: Path, prefix: str, depth: int, max_depth: int,
                 exclude: frozenset[str]) -> Iterator[Entry]:
        with os.scandir(fd) as it:
            items = sorted(it, key=lambda e: e.name)
        for e in items:
            rel = f"{prefix}{e.name}"
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                kind = "symlink"
            elif stat.S_ISDIR(st.st_mode):
                kind = "dir"
            elif stat.S_ISREG(st.st_mode):
                kind = "file"
            else:
                kind = "other"
            yield Entry(rel, top / rel, kind, 0 if kind == "dir" else int(st.st_size))
            if kind == "dir" and depth < max_depth and e.name not in exclude:
                try:
                    sub = os.open(e.name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue  # swapped or vanished since the scan: not entered
                try:
                    yield from self._walk_fd(sub, top, rel + os.sep, depth + 1, max_depth, exclude)
                finally:
                    os.close(sub)

    def link_target(self, link: Path) -> Path:
        """Where a symlink met by a walk points, resolved; SandboxError when that is outside every root."""
        target = Path(os.path.realpath(link))
        if not self.inside(target):
            raise SandboxError(f"'{link}' is a symlink to '{target}', outside the allowed paths "
                               f"({', '.join(self.roots)}); refused")
        return target


def _open_at(pfd: int, name: str, flags: int, mode: int, real: Path) -> int:
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=pfd)
    except OSError as e:
        if e.errno == errno.ELOOP or (e.errno in (errno.ENOTDIR, errno.EEXIST) and _is_link(pfd, name)):
            raise _swapped(real, name) from None
        if e.filename is None:
            e.filename = str(real)
        raise


def _is_link(fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _swapped(real: Path, name: str) -> SandboxError:
    return SandboxError(f"path '{real}' is not usable: its component '{name}' is a symlink (it changed after the "
                        "sandbox check, or points elsewhere); refused")


def _rmtree_at(pfd: int, name: str) -> None:
    fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
    try:
        with os.scandir(fd) as it:
            items = list(it)
        for e in items:
            if e.is_dir(follow_symlinks=False):
                _rmtree_at(fd, e.name)
            else:
                os.unlink(e.name, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=pfd)


def sandbox_refusal(config: Any, roots: tuple[str, ...], cwd: str) -> str | None:
    """Why an untrusted working-directory config may not use these file-tool roots, or None.

    Such a file may narrow `allowed_paths` (roots inside the working or temp directory) but not
    widen it: a root outside them would let an agent's tool call read the user's files.
    """
    env: Mapping[str, str] = getattr(config, "env", None) or {}  # the environment config captured
    path = getattr(config, "path", None)
    if getattr(config, "origin", "") != "cwd" or path is None or settings_of(config).tools.roots_from_env:
        return None
    defaults = Sandbox.from_config(None, cwd).roots
    wide = [r for r in roots if not any(is_under(r, d) for d in defaults)]
    if not wide or is_trusted(Path(path), env):
        return None
    p = Path(path).resolve()
    return (f"{p} (found in the working directory, not trusted) widens [tools.file_operations] allowed_paths to "
            f"{', '.join(wide)}, outside the working and temp directories; refused — check that file, then run "
            f"`llmspell config trust {p}` (or pass it with -c)")
