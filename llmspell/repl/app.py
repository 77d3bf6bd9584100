"""The interactive front end (prompt_toolkit): history file, multi-line input, completion, Ctrl-C/Ctrl-D."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.key_binding.key_processor import KeyPressEvent

from llmspell.repl.backends import Backend
from llmspell.repl.session import ExitRepl, ReplSession

BANNER = "llmspell REPL (Lua 5.4). Type .help for commands, Ctrl-D to exit."
PROMPT, CONTINUATION = "lua> ", "...> "


class LuaCompleter(Completer):
    """Completes Lua keywords, globals and table fields through the backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        cursor = document.cursor_position
        try:
            got = self.backend.complete(document.text, cursor)
        except Exception:  # noqa: BLE001 - completion must never break input
            return
        for m in got.matches:
            yield Completion(m, start_position=got.start - cursor)


def _bindings(backend: Backend, single_line: list[bool]) -> KeyBindings:
    kb = KeyBindings()

    @kb.add("enter")
    def _enter(event: KeyPressEvent) -> None:
        buf = event.current_buffer
        text = buf.text
        if single_line[0] or text.strip().startswith(".") or not text.strip():
            buf.validate_and_handle()
            return
        try:
            status = backend.is_complete(text)
        except Exception:  # noqa: BLE001 - when unsure, run it and let the error show
            status = "complete"
        if status == "incomplete":
            buf.insert_text("\n")
        else:
            buf.validate_and_handle()

    return kb


def _stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def run_repl(backend: Backend, *, history_file: str | None = None, input: Any = None, output: Any = None,
             banner: bool = True, write: Callable[[str], None] = _stdout) -> int:
    """The read-eval-print loop until Ctrl-D or .exit; returns the exit code (0)."""
    single_line = [False]  # True while the debugger prompts: Enter always submits
    history: History = InMemoryHistory()
    if history_file:
        os.makedirs(os.path.dirname(os.path.abspath(history_file)), exist_ok=True)
        history = FileHistory(history_file)
    prompt: PromptSession[str] = PromptSession(
        history=history, multiline=True, completer=LuaCompleter(backend), key_bindings=_bindings(backend, single_line),
        prompt_continuation=lambda width, line_number, wrap_count: CONTINUATION.rjust(width),
        complete_while_typing=False, input=input, output=output)

    def read_line(p: str) -> str | None:
        single_line[0] = True
        try:
            return prompt.prompt(p, handle_sigint=False)
        except EOFError:
            return None
        except KeyboardInterrupt:
            return ""
        finally:
            single_line[0] = False

    session = ReplSession(backend, write, write, read_line)
    if banner:
        write(BANNER + "\n")
    try:
        while True:
            try:
                text = prompt.prompt(PROMPT, handle_sigint=False)
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            try:
                session.handle(text)
            except ExitRepl:
                break
            except KeyboardInterrupt:
                write("interrupted\n")
            except (OSError, ValueError) as e:
                write(f"error: {e}\n")
    finally:
        session.close()
    return 0
