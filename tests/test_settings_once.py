"""Configuration is read once: no module of llmspell/ touches the process environment except config
(which captures it) and the process-level uses listed here, each with its reason (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "llmspell"

#: (file, enclosing function) -> why it may touch os.environ. A file-wide entry uses "*".
ALLOWED: dict[tuple[str, str], str] = {
    ("config.py", "*"): "the one reader: load_config's snapshot, log settings, environment()",
    ("tools/system.py", "*"): "the `environment` tool reads and sets variables by design; process_executor's child env",
    ("kernel/kernel.py", "Kernel._reexec"): "the replacement process inherits this process's environment (execve)",
    ("kernel/kernel.py", "_resume_state"): "process hand-over: LLMSPELL_KERNEL_RESUME names the file and is removed",
    ("kernel/kernel.py", "_parent_pid"): "process handshake: JPY_PARENT_PID is the launching manager's pid",
    ("kernel/client.py", "KernelConnection.__init__"): "the Jupyter session's username ($USER), as jupyter_client",
}


def _reads(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, enclosing qualified function) of every os.environ / os.getenv / os.putenv / os.unsetenv use."""
    hits: list[tuple[int, str]] = []
    env_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            env_names |= {a.asname or a.name for a in node.names if a.name in ("environ", "getenv", "putenv",
                                                                                 "unsetenv", "environb")}

    def visit(node: ast.AST, scope: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                visit(child, [*scope, child.name])
                continue
            if (isinstance(child, ast.Attribute) and isinstance(child.value, ast.Name) and child.value.id == "os"
                    and child.attr in ("environ", "environb", "getenv", "putenv", "unsetenv")) or (
                    isinstance(child, ast.Name) and child.id in env_names):
                hits.append((child.lineno, ".".join(scope) or "<module>"))
            visit(child, scope)

    visit(tree, [])
    return hits


def environment_uses() -> list[tuple[str, int, str]]:
    """(path relative to llmspell/, line, function) of every environment use in the package."""
    out: list[tuple[str, int, str]] = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for line, scope in _reads(ast.parse(path.read_text(encoding="utf-8"))):
            out.append((rel, line, scope))
    return out


def test_only_config_and_listed_process_level_uses_read_the_environment() -> None:
    bad = [f"llmspell/{rel}:{line} ({scope})" for rel, line, scope in environment_uses()
           if (rel, "*") not in ALLOWED and (rel, scope) not in ALLOWED]
    assert not bad, ("these read the process environment; take the value from config.settings / config.env, or "
                     "add a process-level use to ALLOWED and to docs/ARCHITECTURE.md:\n" + "\n".join(bad))


def test_every_allowed_entry_is_still_used() -> None:
    used = {(rel, scope) for rel, _, scope in environment_uses()} | {(rel, "*") for rel, _, _ in environment_uses()}
    stale = [k for k in ALLOWED if k not in used]
    assert not stale, f"allow-list entries with no use left (remove them): {stale}"


@pytest.mark.parametrize("src", [
    "import os\nx = os.environ.get('A')\n",
    "import os\ndef f():\n    return os.getenv('A')\n",
    "from os import environ\nx = environ['A']\n",
    "from os import getenv as g\ndef f():\n    return g('A')\n",
    "import os\nclass C:\n    def m(self):\n        os.environ['A'] = '1'\n",
])
def test_the_walk_finds_every_form(src: str) -> None:
    assert _reads(ast.parse(src)), "a use of the environment went unseen"
