"""Private files: state databases, logs and records llmspell creates are 0600, their new directories 0700.

They can hold API responses, session timelines and secrets a script stored, so other local users
must not read them whatever the umask. Existing files and directories keep their modes (a user
who widened them on purpose keeps that choice); only what llmspell creates is narrowed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create `path` and any missing parents with mode 0700 (existing ones are left as they are)."""
    p = Path(path)
    missing: list[Path] = []
    q = p
    while not q.exists():
        missing.append(q)
        if q.parent == q:
            break
        q = q.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(d, DIR_MODE)  # mkdir's mode is filtered by the umask; this one is not
    return p


def ensure_private_file(path: str | os.PathLike[str]) -> Path:
    """Create `path` empty with mode 0600 if it does not exist (so SQLite and others open it as is)."""
    p = Path(path)
    private_dir(p.parent)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return p
    os.close(fd)
    return p


def open_private(path: str | os.PathLike[str], mode: str = "a", **kwargs: Any) -> IO[Any]:
    """`open(path, mode)` for writing ("a", "ab", "w", "wb"), creating the file 0600 (and dirs 0700)."""
    p = Path(path)
    private_dir(p.parent)
    flags = os.O_WRONLY | os.O_CREAT
    flags |= os.O_APPEND if mode.startswith("a") else os.O_TRUNC
    fd = os.open(p, flags, FILE_MODE)
    try:
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise
