"""Bad input over real sockets: every bad message is dropped with a logged reason, the kernel keeps serving."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import BlockingKernelClient
from jupyter_client.session import Session as JCSession

from tests.integration.kernel_wire import RawSocket, module_kernel, wait_for_log
from tests.kernel.kernel_support import (
    execute,
    iopub_until_idle,
    jupyter_env,  # noqa: F401 - fixture
    kernel_info_ok,
    request,
    shell_reply,
    start_kernel,
    stop_kernel,
)

pytestmark = pytest.mark.timeout(180)

LIMIT = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory, jupyter_env: dict[str, str]) -> Any:  # noqa: F811
    yield from module_kernel(tmp_path_factory, jupyter_env, "kernel-bad-input",
                             f"[kernel]\nmax_message_bytes = {LIMIT}\n\n[runtime]\nscript_timeout_seconds = 3\n")


@pytest.fixture
def kc(kernel: Any) -> Any:
    return kernel[1]


class RawClient(RawSocket):
    """A DEALER socket speaking (or mangling) the wire protocol by hand."""

    def frames(self, msg_type: str = "kernel_info_request", content: dict | None = None,
               session: JCSession | None = None) -> list[bytes]:
        s = session or self.session
        return s.serialize(s.msg(msg_type, content or {}))

    def kernel_info_roundtrip(self, timeout: float = 20.0) -> dict[str, Any]:
        """Send a good kernel_info; the first reply on this socket must be for it."""
        msg = self.good.msg("kernel_info_request", {})
        self.sock.send_multipart(self.good.serialize(msg))
        assert self.sock.poll(int(timeout * 1000)), "no reply from the kernel"
        _, rest = self.good.feed_identities(self.sock.recv_multipart())
        reply = self.good.deserialize(rest)
        assert reply["parent_header"]["msg_id"] == msg["header"]["msg_id"], "got a reply to a dropped message"
        return reply


@pytest.fixture
def raw(kernel: Any) -> Any:
    client = RawClient(kernel[0])
    yield client
    client.close()


def test_bad_hmac_is_dropped_and_logged(kernel: Any, raw: RawClient) -> None:
    raw.send(raw.frames(session=JCSession(key=b"not-the-key", signature_scheme="hmac-sha256")))
    assert raw.kernel_info_roundtrip()["content"]["status"] == "ok"
    wait_for_log(kernel, "dropped a message on shell: bad signature")


def test_unsigned_message_is_dropped(kernel: Any, raw: RawClient) -> None:
    raw.send(raw.frames(session=JCSession(key=b"", signature_scheme="hmac-sha256")))
    raw.kernel_info_roundtrip()
    wait_for_log(kernel, "unsigned message")


def test_replayed_message_is_dropped(kernel: Any, raw: RawClient) -> None:
    frames = raw.frames("execute_request", {"code": "replay_count = (replay_count or 0) + 1", "silent": False,
                                            "store_history": True, "user_expressions": {}, "allow_stdin": False,
                                            "stop_on_error": True})
    raw.send(frames)
    assert raw.sock.poll(20000)
    raw.sock.recv_multipart()  # the execute_reply of the first copy
    raw.send(frames)  # identical bytes: a replay
    raw.kernel_info_roundtrip()
    wait_for_log(kernel, "replayed message")
    _, out = execute(kernel[1], "return replay_count")
    assert next(m for m in out if m["msg_type"] == "execute_result")["content"]["data"]["text/plain"] == "1"


@pytest.mark.parametrize("frames, reason", [
    ([b"garbage"], "no <IDS|MSG> delimiter"),
    ([os.urandom(64), os.urandom(3), os.urandom(900)], "no <IDS|MSG> delimiter"),
    ([b"<IDS|MSG>"], "expected signature"),
    ([b"<IDS|MSG>", b"abc", b"{}"], "expected signature"),
])
def test_garbage_frames_are_dropped(kernel: Any, raw: RawClient, frames: list[bytes], reason: str) -> None:
    raw.send(frames)
    raw.kernel_info_roundtrip()
    wait_for_log(kernel, reason)


def _signed(session: JCSession, header: bytes, content: bytes = b"{}") -> list[bytes]:
    parts = [header, b"{}", b"{}", content]
    return [b"<IDS|MSG>", session.sign(parts), *parts]


def test_signed_but_malformed_messages_are_dropped(kernel: Any, raw: RawClient) -> None:
    s = raw.good
    raw.send(_signed(s, b"{this is not json"))
    raw.send(_signed(s, b'{"msg_id": "m1", "session": "s", "username": "u", "version": "5.3"}'))
    raw.send(_signed(s, b'{"msg_id": "m2", "msg_type": "execute_request"}', b"[1, 2]"))
    raw.kernel_info_roundtrip()
    wait_for_log(kernel, "bad JSON in header")
    wait_for_log(kernel, "header has no msg_type")
    wait_for_log(kernel, "content is not a JSON object")


def test_a_50_mb_message_is_dropped_and_a_10_mb_one_served(kernel: Any, raw: RawClient) -> None:
    raw.send(raw.frames("execute_request", {"code": "-- " + "x" * (50 * 1024 * 1024), "silent": False,
                                            "store_history": False, "user_expressions": {},
                                            "allow_stdin": False, "stop_on_error": True}))
    raw.kernel_info_roundtrip()
    wait_for_log(kernel, "larger than max_message_bytes")
    reply, out = execute(kernel[1], "return #[[" + "y" * (10 * 1024 * 1024) + "]]", store_history=False)
    assert reply["content"]["status"] == "ok"
    assert next(m for m in out if m["msg_type"] == "execute_result")["content"]["data"]["text/plain"] == str(
        10 * 1024 * 1024)


def test_bad_messages_on_control_are_dropped_too(kernel: Any) -> None:
    ctl = RawClient(kernel[0], "control")
    try:
        ctl.send(ctl.frames(session=JCSession(key=b"wrong", signature_scheme="hmac-sha256")))
        ctl.send([b"junk"])
        assert ctl.kernel_info_roundtrip()["content"]["status"] == "ok"
        wait_for_log(kernel, "dropped a message on control: bad signature")
    finally:
        ctl.close()


def test_unknown_msg_type_is_logged_without_reply(kernel: Any, raw: RawClient) -> None:
    raw.send(raw.good.serialize(raw.good.msg("no_such_request", {})))
    raw.kernel_info_roundtrip()
    wait_for_log(kernel, "unknown type 'no_such_request'")


def test_syntax_error_and_coroutine_error_keep_the_kernel_serving(kc: Any) -> None:
    reply, _ = execute(kc, "function (")
    assert reply["content"]["ename"] == "SyntaxError"
    reply, _ = execute(kc, "local co = coroutine.create(function() local t = nil; return t.x end)\n"
                           "local ok, err = coroutine.resume(co)\nerror(err)")
    assert reply["content"]["status"] == "error"
    assert "attempt to index" in reply["content"]["evalue"]
    kernel_info_ok(kc)


def _new_client(km: Any) -> BlockingKernelClient:
    """A separate frontend: its own session, so its own socket identities (km.client() shares them)."""
    c = BlockingKernelClient(connection_file=km.connection_file)
    c.load_connection_file()
    c.start_channels()
    return c


def _client(km: Any) -> BlockingKernelClient:
    c = _new_client(km)
    c.wait_for_ready(timeout=30)
    return c


def test_a_client_that_disconnects_mid_execute(kernel: Any) -> None:
    km = kernel[0]
    a = _client(km)
    msg_id = a.execute("Utils.sleep(500); print('done after disconnect')")
    while True:
        m = a.iopub_channel.get_msg(timeout=20)
        if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "execute_input":
            break
    a.stop_channels()
    b = _client(km)
    try:
        kernel_info_ok(b)
        reply, _ = execute(b, "return 'still here'")
        assert reply["content"]["status"] == "ok"
    finally:
        b.stop_channels()


def test_a_client_that_disconnects_while_its_cell_waits_for_input(kernel: Any) -> None:
    km = kernel[0]
    a = _client(km)
    msg_id = a.execute("return io.read()", allow_stdin=True)
    assert a.stdin_channel.get_msg(timeout=20)["msg_type"] == "input_request"
    a.stop_channels()
    b = _new_client(km)
    try:
        # shell is busy with the waiting cell; control (its own thread) still answers and interrupts it
        assert request(b, "kernel_info_request", {}, channel="control")["content"]["status"] == "ok"
        assert request(b, "interrupt_request", {}, channel="control")["content"]["status"] == "ok"
        b.wait_for_ready(timeout=30)
        kernel_info_ok(b)
        reply, _ = execute(b, "return 2")
        assert reply["content"]["status"] == "ok"
    finally:
        b.stop_channels()
    assert msg_id


def test_two_clients_executing_at_once_are_queued_in_order(kernel: Any) -> None:
    km = kernel[0]
    a, b = _client(km), _client(km)
    try:
        ids = {"A": [], "B": []}
        for i in range(20):
            ids["A"].append(a.execute(f"return 'A{i}'"))
            ids["B"].append(b.execute(f"return 'B{i}'"))
        counts = []
        for name, client in (("A", a), ("B", b)):
            for msg_id in ids[name]:
                reply = client.get_shell_msg(timeout=30)  # replies come back in request order
                assert reply["parent_header"]["msg_id"] == msg_id
                assert reply["content"]["status"] == "ok"
                counts.append(reply["content"]["execution_count"])
        assert len(set(counts)) == 40
        a_counts, b_counts = counts[:20], counts[20:]
        assert a_counts == sorted(a_counts) and b_counts == sorted(b_counts)
        iopub_until_idle(b, ids["B"][-1])  # every client sees the output of both
        kernel_info_ok(a)
    finally:
        a.stop_channels()
        b.stop_channels()


def test_sigterm_during_execution_shuts_down_cleanly(tmp_path: Path, jupyter_env: dict[str, str]) -> None:  # noqa: F811
    km, kc, log = start_kernel(tmp_path, jupyter_env)
    try:
        conn = Path(km.connection_file)
        assert conn.exists()
        runtime_dir = Path(jupyter_env["JUPYTER_RUNTIME_DIR"])
        pid = km.provisioner.pid
        assert (runtime_dir / f"llmspell-pid-{pid}.json").exists()
        msg_id = kc.execute("while true do end")
        while True:
            m = kc.iopub_channel.get_msg(timeout=20)
            if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "execute_input":
                break
        os.kill(pid, signal.SIGTERM)
        assert km.provisioner.process.wait(timeout=20) == 0
        assert not conn.exists()
        assert not (runtime_dir / f"llmspell-pid-{pid}.json").exists()
        assert "SIGTERM: shutting down" in log.read_text(encoding="utf-8")
        reply = shell_reply(kc, msg_id)  # the running cell still got its (interrupted) reply
        assert reply["content"]["status"] == "error"
    finally:
        stop_kernel(km, kc, now=True)


def test_a_runaway_cell_is_stopped_by_the_script_timeout(kc: Any) -> None:
    reply, out = execute(kc, "print('start'); while true do end")
    assert reply["content"]["status"] == "error"
    assert "script timed out after 3 s" in reply["content"]["evalue"]
    assert [m["content"]["text"] for m in out if m["msg_type"] == "stream"] == ["start\n"]
    reply, _ = execute(kc, "return 'fine'")
    assert reply["content"]["status"] == "ok"


def test_kernel_info_after_everything(kc: Any) -> None:
    kernel_info_ok(kc)
