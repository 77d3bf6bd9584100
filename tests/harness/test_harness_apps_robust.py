"""The apps cope with any model output: every app, in-process, against a real local HTTP server
that answers every chat request with an empty reply, or with noise that looks almost parseable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import APPS_DIR
from harness.judge import file_failures, output_failures
from harness.manifest import AppManifest, discover
from harness.profile import merge, to_toml
from llmspell.cli.main import main
from tests.support.llm_server import LLMServer

APPS = discover(APPS_DIR)

NOISE = ("Score: 99/10 | ```python\n``` {{topic}} --- 1) \n- \n* x\nSeven? UNSUPPORTED maybe supported; "
         "express international standard; é\u2028\u0000 \ud7ff " * 3)
REPLIES = {"empty": lambda body: "", "noise": lambda body: NOISE}


def _config(app: AppManifest, base_url: str, dest: Path) -> Path:
    import tomllib

    data = tomllib.loads(app.config_path.read_text(encoding="utf-8"))
    route = {"provider_type": "openai", "base_url": base_url, "api_key_required": False, "max_retries": 0}
    dest.write_text(to_toml(merge(data, {"providers": {"openai": dict(route), "anthropic": dict(route)}})))
    return dest


@pytest.mark.slow
@pytest.mark.parametrize("style", sorted(REPLIES))
@pytest.mark.parametrize("app", APPS, ids=[a.name for a in APPS])
def test_app_survives_any_model_output(app: AppManifest, style: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def reply(body: dict[str, Any]) -> str:
        return REPLIES[style](body)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMSPELL_STATE_PATH", str(tmp_path / "state.sqlite3"))
    out = tmp_path / "out"
    with LLMServer(reply_fn=reply) as server:
        cfg = _config(app, server.base_url, tmp_path / "config.toml")
        code = main(["-c", str(cfg), "apps", "run", app.name, "--apps-dir", str(APPS_DIR), "--",
                     "--output-dir", str(out)])
        calls = len(server.chat_requests())
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    assert calls > 0, "the app made no model call"
    assert file_failures(app, out) == []
    assert output_failures(app, captured.out) == []


INPUTS: dict[str, tuple[str, str, str, str]] = {
    # app: (option, file name, file content, a line the app must print)
    "personal-assistant": ("--notes", "notes.txt", "Need to call the bank on Monday.\nBuy milk.\n", "tasks extracted:"),
    "communication-manager": ("--inbox", "inbox.json",
                              '[{"id": "a", "subject": "Refund", "body": "Refund me"}, {"id": "b", "body": "Hi"},'
                              ' {"id": "c", "subject": "Demo", "body": "Can we meet?"}]', "messages triaged: 3 over 2 runs"),
    "process-orchestrator": ("--orders", "orders.txt", "ORD-1|express|a lamp|Oslo\n\nnot an order\n",
                             "orders processed: 2 (fulfilled 1, needs review 0, failed and recovered 1)"),
    "code-review-assistant": ("--file", "mod.py", "def f(x):\n    return eval(x)\n", "aspects reviewed: 5 in parallel"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(INPUTS))
def test_apps_take_their_inputs_from_args(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    app = next(a for a in APPS if a.name == name)
    option, filename, content, line = INPUTS[name]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMSPELL_STATE_PATH", str(tmp_path / "state.sqlite3"))
    (tmp_path / filename).write_text(content)
    with LLMServer(reply_fn=lambda body: NOISE) as server:
        cfg = _config(app, server.base_url, tmp_path / "config.toml")
        code = main(["-c", str(cfg), "apps", "run", name, "--apps-dir", str(APPS_DIR), "--",
                     "--output-dir", str(tmp_path / "out"), option, str(tmp_path / filename)])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    assert line in captured.out


@pytest.mark.slow
def test_file_organizer_organizes_a_given_folder_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    app = next(a for a in APPS if a.name == "file-organizer")
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "downloads"
    folder.mkdir()
    for name in ("a.py", "b.csv", "c.jpg"):
        (folder / name).write_text(name)
    with LLMServer(reply_fn=lambda body: "code") as server:
        cfg = _config(app, server.base_url, tmp_path / "config.toml")
        code = main(["-c", str(cfg), "apps", "run", "file-organizer", "--apps-dir", str(APPS_DIR), "--",
                     "--output-dir", str(tmp_path / "out"), "--folder", str(folder)])
    out = capsys.readouterr().out
    assert code == 0 and "files classified: 3 (3 by the model, 0 by extension)" in out
    assert sorted(p.name for p in folder.iterdir()) == ["a.py", "b.csv", "c.jpg"], "the folder is only read"
    assert (tmp_path / "out" / "organized" / "code" / "b.csv").read_text() == "b.csv"
