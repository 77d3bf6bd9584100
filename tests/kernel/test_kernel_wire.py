"""Wire format: signing, constant-time verification, and every way a frame list is rejected."""

from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest
from jupyter_client.session import Session as JCSession

from llmspell.kernel.wire import DELIM, Message, Session, WireError

KEY = "a0436f6c-1916-498b-8eb9-e81ab9368e84"


def frames(session: Session, msg_type: str = "kernel_info_request", content: dict | None = None) -> list[bytes]:
    return session.serialize(msg_type, content or {}, idents=[b"client-1"])


def test_signature_is_hmac_sha256_of_the_four_json_frames_with_the_utf8_key() -> None:
    s = Session(KEY)
    f = frames(s, content={"x": "é"})
    i = f.index(DELIM)
    sig, h, p, m, c = f[i + 1:i + 6]
    expected = hmac.new(KEY.encode("utf-8"), h + p + m + c, hashlib.sha256).hexdigest().encode()
    assert sig == expected
    assert orjson.loads(h)["msg_type"] == "kernel_info_request"
    assert orjson.loads(h)["version"] == "5.3"
    assert orjson.loads(c) == {"x": "é"}


def test_round_trip_keeps_identities_content_and_buffers() -> None:
    s = Session(KEY)
    r = Session(KEY)
    f = s.serialize("comm_msg", {"comm_id": "c", "data": {}}, {"msg_id": "p"}, metadata={"m": 1},
                    idents=[b"a", b"b"], buffers=[b"\x00\x01"])
    msg = r.deserialize(f)
    assert isinstance(msg, Message)
    assert msg.idents == [b"a", b"b"]
    assert msg.msg_type == "comm_msg"
    assert msg.parent_header == {"msg_id": "p"}
    assert msg.metadata == {"m": 1}
    assert msg.content == {"comm_id": "c", "data": {}}
    assert msg.buffers == [b"\x00\x01"]


def test_messages_signed_by_jupyter_client_verify_and_ours_verify_there() -> None:
    jc = JCSession(key=KEY.encode(), signature_scheme="hmac-sha256")
    ours = Session(KEY)
    wire = jc.serialize(jc.msg("execute_request", {"code": "return 1"}), ident=[b"id"])
    msg = ours.deserialize(wire)
    assert msg.content["code"] == "return 1"
    assert msg.idents == [b"id"]
    back = ours.serialize("execute_reply", {"status": "ok", "execution_count": 1}, msg.header, idents=[b"id"])
    idents, rest = jc.feed_identities(back)
    parsed = jc.deserialize(rest)
    assert parsed["content"]["status"] == "ok"
    assert parsed["parent_header"]["msg_id"] == msg.header["msg_id"]


def test_every_message_gets_a_fresh_id_and_signature() -> None:
    s = Session(KEY)
    a, b = frames(s), frames(s)
    i = a.index(DELIM)
    assert a[i + 1] != b[i + 1]
    assert orjson.loads(a[i + 2])["msg_id"] != orjson.loads(b[i + 2])["msg_id"]


def test_empty_key_means_no_signature() -> None:
    s = Session("")
    f = frames(s)
    assert f[f.index(DELIM) + 1] == b""
    assert Session("").deserialize(f).msg_type == "kernel_info_request"


@pytest.mark.parametrize("mutate, reason", [
    (lambda f, i: f.__setitem__(i + 1, b"0" * 64), "bad signature"),
    (lambda f, i: f.__setitem__(i + 1, b""), "unsigned"),
    (lambda f, i: f.__setitem__(i + 5, f[i + 5] + b" "), "bad signature"),  # content changed after signing
    (lambda f, i: f.remove(DELIM), "delimiter"),
    (lambda f, i: f.__delitem__(slice(i + 3, None)), "expected signature"),
])
def test_tampered_or_broken_frames_are_rejected_with_a_reason(mutate, reason) -> None:  # noqa: ANN001
    s = Session(KEY)
    f = frames(s)
    mutate(f, f.index(DELIM))
    with pytest.raises(WireError, match=reason):
        Session(KEY).deserialize(f)


def _signed(key: str, h: bytes, p: bytes = b"{}", m: bytes = b"{}", c: bytes = b"{}") -> list[bytes]:
    sig = hmac.new(key.encode(), h + p + m + c, hashlib.sha256).hexdigest().encode()
    return [b"x", DELIM, sig, h, p, m, c]


def test_bad_json_and_missing_header_fields_are_rejected_even_when_signed() -> None:
    with pytest.raises(WireError, match="bad JSON in header"):
        Session(KEY).deserialize(_signed(KEY, b"{not json"))
    with pytest.raises(WireError, match="content is not a JSON object"):
        Session(KEY).deserialize(_signed(KEY, b'{"msg_id": "1", "msg_type": "x"}', c=b"[1]"))
    with pytest.raises(WireError, match="header has no msg_type"):
        Session(KEY).deserialize(_signed(KEY, b'{"msg_id": "1"}'))
    with pytest.raises(WireError, match="header has no msg_id"):
        Session(KEY).deserialize(_signed(KEY, b'{"msg_type": "kernel_info_request"}'))


def test_a_replayed_message_is_rejected() -> None:
    s, r = Session(KEY), Session(KEY)
    f = frames(s)
    r.deserialize(f)
    with pytest.raises(WireError, match="replayed"):
        r.deserialize(f)


def test_replay_history_is_bounded() -> None:
    s, r = Session(KEY), Session(KEY, history_size=4)
    first = frames(s)
    r.deserialize(first)
    for _ in range(5):
        r.deserialize(frames(s))
    assert r.deserialize(first).msg_type == "kernel_info_request"  # forgotten after 4 newer ones


def test_oversize_messages_are_rejected_before_parsing() -> None:
    s, r = Session(KEY), Session(KEY, max_message_bytes=10_000)
    with pytest.raises(WireError, match="larger than max_message_bytes"):
        r.deserialize(s.serialize("execute_request", {"code": "x" * 20_000}))
    assert r.deserialize(s.serialize("execute_request", {"code": "x" * 100})).content["code"] == "x" * 100


def test_a_wrong_key_fails_verification() -> None:
    with pytest.raises(WireError, match="bad signature"):
        Session("other-key").deserialize(frames(Session(KEY)))


def test_invalid_utf8_from_lua_becomes_replacement_characters() -> None:
    s = Session(KEY)
    bad = b"caf\xe9".decode("utf-8", "surrogateescape")
    msg = Session(KEY).deserialize(s.serialize("stream", {"name": "stdout", "text": bad}))
    assert msg.content["text"] == "caf\ufffd"
