"""citation-formatter, pdf-processor, image_processor, audio_processor and video_processor."""

from __future__ import annotations

import struct
import wave
from pathlib import Path
from typing import Any

from tests.tools.conftest import invoke, invoke_error

BIB = """@article{smith2020,
  author = {Smith, John and Doe, Jane},
  title = {Deep {Lua} Agents},
  journal = {Journal of Scripts},
  year = 2020, volume = {4}, number = {2}, pages = {10--20}
}
@book{lee2019, author = "Ann Lee", title = "Orchestration", publisher = "Press", year = "2019"}"""


def test_citations(rt: Any) -> None:
    styles = invoke(rt, "citation-formatter", '{operation = "list_styles"}')["result"]["styles"]
    assert styles == ["apa", "mla", "chicago", "harvard", "ieee"]
    apa = invoke(rt, "citation-formatter", f"{{input = [[{BIB}]], style = 'apa'}}")["result"]["citations"]
    assert apa[0] == {"id": "smith2020", "text": "Smith, J., & Doe, J. (2020). Deep Lua Agents. Journal of Scripts, 4(2), 10–20."}
    assert apa[1]["text"] == "Lee, A. (2019). Orchestration. Press."
    mla = invoke(rt, "citation-formatter", f"{{input = [[{BIB}]], style = 'mla', cite_keys = {{'lee2019'}}}}")["result"]
    assert mla["count"] == 1 and mla["citations"][0]["text"] == 'Lee, Ann. "Orchestration." Press, 2019.'
    ieee = invoke(rt, "citation-formatter", f"{{input = [[{BIB}]], style = 'ieee'}}")["result"]["citations"][0]["text"]
    assert ieee.startswith('[1] J. Smith and J. Doe, "Deep Lua Agents,"')
    yaml_in = "- id: x1\\n  title: T\\n  author: [A B]\\n  year: 2001\\n- id: x2\\n  title: U"
    v = invoke(rt, "citation-formatter", f'{{operation = "validate_bibliography", input = "{yaml_in}"}}')["result"]
    assert v["valid"] is False and {(e["entry"], e["field"]) for e in v["errors"]} == {("x2", "author"), ("x2", "year")}
    assert "unknown cite keys: nope" in invoke_error(rt, "citation-formatter", f"{{input = [[{BIB}]], cite_keys = {{'nope'}}}}")


def _pdf(text: str) -> bytes:
    content = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            b"<< /Title (Test Doc) /Author (Ann) >>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + o + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{off:010d} 00000 n \n".encode() for off in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R /Info 6 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_pdf_processor(rt: Any, tmp_path: Path) -> None:
    p = tmp_path / "doc.pdf"
    p.write_bytes(_pdf("Hello PDF world"))
    t = invoke(rt, "pdf-processor", f'{{input = "{p}"}}')["result"]
    assert "Hello PDF world" in t["text"] and t["pages"] == 1
    m = invoke(rt, "pdf-processor", f'{{operation = "extract_metadata", input = "{p}"}}')["result"]
    assert m["title"] == "Test Doc" and m["author"] == "Ann" and m["pages"] == 1
    pages = invoke(rt, "pdf-processor", f'{{operation = "extract_pages", input = "{p}", start_page = 1, end_page = 1}}')
    assert pages["result"]["pages"][0]["page"] == 1
    assert "outside 1-1" in invoke_error(rt, "pdf-processor", f'{{input = "{p}", start_page = 2}}')
    (tmp_path / "bad.pdf").write_text("nope")
    assert "cannot read" in invoke_error(rt, "pdf-processor", f'{{input = "{tmp_path}/bad.pdf"}}')
    assert "outside the allowed paths" in invoke_error(rt, "pdf-processor", '{input = "/etc/x.pdf"}')


def test_image_processor(rt: Any, tmp_path: Path) -> None:
    from PIL import Image

    src = tmp_path / "img.png"
    Image.new("RGBA", (40, 20), (255, 0, 0, 255)).save(src)
    assert invoke(rt, "image_processor", f'{{operation = "detect", file_path = "{src}"}}')["result"]["format"] == "png"
    r = invoke(rt, "image_processor", f'{{operation = "resize", file_path = "{src}", width = 20, target_path = "{tmp_path}/s.png"}}')
    assert (r["result"]["width"], r["result"]["height"]) == (20, 10) and Path(r["result"]["path"]).exists()
    c = invoke(rt, "image_processor", f'{{operation = "convert", file_path = "{src}", target_format = "jpeg", '
                                      f'target_path = "{tmp_path}/c.jpg"}}')
    assert Image.open(c["result"]["path"]).format == "JPEG"
    rot = invoke(rt, "image_processor", f'{{operation = "rotate", file_path = "{src}", degrees = 90, target_path = "{tmp_path}/r.png"}}')
    assert (rot["result"]["width"], rot["result"]["height"]) == (20, 40)
    cr = invoke(rt, "image_processor", f'{{operation = "crop", file_path = "{src}", x = 5, y = 5, width = 10, height = 5, '
                                       f'target_path = "{tmp_path}/k.png"}}')
    assert (cr["result"]["width"], cr["result"]["height"]) == (10, 5)
    (tmp_path / "x.png").write_text("not an image")
    assert "not a readable image" in invoke_error(rt, "image_processor", f'{{file_path = "{tmp_path}/x.png"}}')


def test_audio_processor(rt: Any, tmp_path: Path) -> None:
    src = tmp_path / "a.wav"
    with wave.open(str(src), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 2 * 4000)
    m = invoke(rt, "audio_processor", f'{{operation = "metadata", file_path = "{src}"}}')["result"]
    assert m == {"format": "wav", "duration_ms": 500, "sample_rate": 8000, "channels": 2, "bits_per_sample": 16}
    c = invoke(rt, "audio_processor", f'{{operation = "convert", source_path = "{src}", target_path = "{tmp_path}/b.wav"}}')
    assert Path(c["result"]["path"]).stat().st_size == src.stat().st_size
    mp3 = tmp_path / "s.mp3"
    mp3.write_bytes(b"ID3\x03\x00" + b"\x00" * 20)
    assert invoke(rt, "audio_processor", f'{{operation = "detect", file_path = "{mp3}"}}')["result"]["format"] == "mp3"
    assert "not implemented in this version" in invoke_error(rt, "audio_processor", f'{{file_path = "{mp3}"}}')


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def test_video_processor(rt: Any, tmp_path: Path) -> None:
    mvhd = _box(b"mvhd", b"\x00" * 4 + b"\x00" * 8 + struct.pack(">II", 1000, 2500) + b"\x00" * 80)
    tkhd = _box(b"tkhd", b"\x00" * 76 + struct.pack(">II", 640 << 16, 360 << 16))
    mp4 = _box(b"ftyp", b"isom\x00\x00\x02\x00") + _box(b"moov", mvhd + _box(b"trak", tkhd))
    p = tmp_path / "v.mp4"
    p.write_bytes(mp4)
    assert invoke(rt, "video_processor", f'{{operation = "detect", file_path = "{p}"}}')["result"]["format"] == "mp4"
    m = invoke(rt, "video_processor", f'{{file_path = "{p}"}}')["result"]
    assert m == {"format": "mp4", "duration_ms": 2500, "width": 640, "height": 360}
    assert "not implemented in this version" in invoke_error(rt, "video_processor", f'{{operation = "thumbnail", file_path = "{p}"}}')
