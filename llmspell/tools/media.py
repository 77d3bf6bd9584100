"""Media tools: image_processor (Pillow), audio_processor (WAV via stdlib `wave`), video_processor (MP4
metadata from the container boxes). Every path is sandboxed."""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path
from typing import Any

from llmspell.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolParamError, choice, ok
from llmspell.tools.sandbox import SandboxError

_AUDIO_MAGIC = ((b"RIFF", 0, "wav"), (b"ID3", 0, "mp3"), (b"\xff\xfb", 0, "mp3"), (b"\xff\xf3", 0, "mp3"),
                (b"fLaC", 0, "flac"), (b"OggS", 0, "ogg"), (b"ftypM4A", 4, "m4a"))
_VIDEO_MAGIC = ((b"ftyp", 4, "mp4"), (b"\x1aE\xdf\xa3", 0, "mkv"), (b"RIFF", 0, "avi"), (b"FLV", 0, "flv"))


def _path(ctx: ToolContext, tool: str, params: dict[str, Any], *keys: str) -> Path:
    for k in keys:
        if params.get(k):
            try:
                return ctx.sandbox.resolve(str(params[k]))
            except SandboxError as e:
                raise ToolError(f"{tool}: {e}") from None
    raise ToolParamError(f"{tool}: missing '{keys[0]}' (a file path)")


def _read(ctx: ToolContext, tool: str, path: Path) -> bytes:
    """The file's bytes through the sandbox's descriptor walk (a swapped-in symlink is refused)."""
    try:
        return bytes(ctx.sandbox.read_bytes(path))
    except SandboxError as e:
        raise ToolError(f"{tool}: {e}") from None
    except OSError as e:
        raise ToolError(f"{tool}: cannot read {path}: {e.strerror or e}") from None


def _write(ctx: ToolContext, tool: str, path: Path, data: bytes) -> None:
    try:
        ctx.sandbox.write_bytes(path, data)
    except SandboxError as e:
        raise ToolError(f"{tool}: {e}") from None


def _sniff(raw: bytes, table: tuple[tuple[bytes, int, str], ...]) -> str | None:
    head = raw[:16]
    for magic, off, fmt in table:
        if head[off:off + len(magic)] == magic:
            if fmt == "wav" and head[8:12] != b"WAVE":
                continue
            if fmt == "avi" and head[8:12] != b"AVI ":
                continue
            return fmt
    return None


class ImageProcessor(Tool):
    """image_processor: detect, metadata, resize, convert, crop, rotate, thumbnail (Pillow)."""

    blocking = True

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "image_processor"
        op = choice(params, "operation", name, ("detect", "metadata", "resize", "convert", "crop", "rotate",
                                                 "thumbnail"), "metadata")
        src = _path(ctx, name, params, "file_path", "source_path")
        raw = _read(ctx, name, src)
        from PIL import Image, UnidentifiedImageError

        try:
            img: Image.Image = Image.open(io.BytesIO(raw))
            img.load()
        except (OSError, UnidentifiedImageError) as e:
            raise ToolError(f"{name}: {src} is not a readable image: {e}") from None
        fmt = (img.format or "").lower()
        if op == "detect":
            return ok(op, {"format": fmt, "width": img.width, "height": img.height})
        if op == "metadata":
            return ok(op, {"format": fmt, "width": img.width, "height": img.height, "mode": img.mode,
                           "size_bytes": len(raw)})
        if op == "resize":
            w, h = int(params.get("width") or 0), int(params.get("height") or 0)
            if w <= 0 and h <= 0:
                raise ToolParamError(f"{name}: resize needs width and/or height (positive integers)")
            if params.get("maintain_aspect_ratio", True) is not False:
                ratio = min(w / img.width if w else 1e9, h / img.height if h else 1e9)
                w, h = max(1, round(img.width * ratio)), max(1, round(img.height * ratio))
            img = img.resize((w or img.width, h or img.height))
        elif op == "crop":
            x, y = int(params.get("x") or 0), int(params.get("y") or 0)
            w, h = int(params.get("width") or img.width - x), int(params.get("height") or img.height - y)
            img = img.crop((x, y, x + w, y + h))
        elif op == "rotate":
            img = img.rotate(-float(params.get("degrees") or 90), expand=True)
        elif op == "thumbnail":
            img.thumbnail((int(params.get("max_width") or 128), int(params.get("max_height") or 128)))
        target_fmt = str(params.get("target_format") or fmt or "png").lower()
        default_target = src.with_name(f"{src.stem}_{op}.{'jpg' if target_fmt == 'jpeg' else target_fmt}")
        target = _path(ctx, name, {"target_path": params.get("target_path") or str(default_target)}, "target_path")
        save_fmt = "JPEG" if target_fmt in ("jpg", "jpeg") else target_fmt.upper()
        if save_fmt == "JPEG" and img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        buf = io.BytesIO()
        try:
            img.save(buf, save_fmt)
        except (OSError, KeyError, ValueError) as e:
            raise ToolError(f"{name}: cannot write {target_fmt}: {e}") from None
        _write(ctx, name, target, buf.getvalue())
        return ok(op, {"format": target_fmt, "width": img.width, "height": img.height, "path": str(target)})


class AudioProcessor(Tool):
    """audio_processor: detect any common format; metadata and convert for WAV (stdlib only)."""

    blocking = True

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "audio_processor"
        op = choice(params, "operation", name, ("detect", "metadata", "convert"), "metadata")
        src = _path(ctx, name, params, "file_path", "source_path")
        raw = _read(ctx, name, src)
        fmt = _sniff(raw, _AUDIO_MAGIC)
        if op == "detect":
            return ok(op, {"format": fmt or "unknown", "size_bytes": len(raw)})
        if fmt != "wav":
            raise ToolError(f"{name}: {op} of {fmt or 'unknown'} audio: not implemented in this version (WAV only)")
        try:
            with wave.open(io.BytesIO(raw), "rb") as w:
                rate, channels, width, frames = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
                data = w.readframes(frames) if op == "convert" else b""
        except (wave.Error, EOFError) as e:
            raise ToolError(f"{name}: invalid WAV file: {e}") from None
        meta = {"format": "wav", "duration_ms": int(frames * 1000 / rate) if rate else 0, "sample_rate": rate,
                "channels": channels, "bits_per_sample": width * 8}
        if op == "metadata":
            return ok(op, meta)
        target_fmt = str(params.get("target_format") or "wav").lower()
        if target_fmt != "wav":
            raise ToolError(f"{name}: convert to '{target_fmt}': not implemented in this version (wav only)")
        target = _path(ctx, name, params, "target_path")
        buf = io.BytesIO()
        with wave.open(buf, "wb") as out:
            out.setnchannels(channels)
            out.setsampwidth(width)
            out.setframerate(rate)
            out.writeframes(data)
        _write(ctx, name, target, buf.getvalue())
        return ok(op, {**meta, "path": str(target)})


def _mp4_boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    out = []
    i = start
    while i + 8 <= end:
        size, kind = struct.unpack(">I4s", data[i:i + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[i + 8:i + 16])[0]
            header = 16
        elif size == 0:
            size = end - i
        if size < header:
            break
        out.append((kind, i + header, min(i + size, end)))
        i += size
    return out


def mp4_metadata(data: bytes) -> dict[str, Any]:
    """Duration (mvhd) and the first video track's size (tkhd) of an MP4/MOV file."""
    meta: dict[str, Any] = {"duration_ms": None, "width": None, "height": None}
    for kind, s, e in _mp4_boxes(data, 0, len(data)):
        if kind != b"moov":
            continue
        for k2, s2, e2 in _mp4_boxes(data, s, e):
            if k2 == b"mvhd":
                version = data[s2]
                if version == 1:
                    timescale, duration = struct.unpack(">IQ", data[s2 + 20:s2 + 32])
                else:
                    timescale, duration = struct.unpack(">II", data[s2 + 12:s2 + 20])
                meta["duration_ms"] = int(duration * 1000 / timescale) if timescale else None
            elif k2 == b"trak" and meta["width"] is None:
                for k3, _s3, e3 in _mp4_boxes(data, s2, e2):
                    if k3 == b"tkhd":
                        w, h = struct.unpack(">II", data[e3 - 8:e3])
                        if w >> 16:
                            meta["width"], meta["height"] = w >> 16, h >> 16
    return meta


class VideoProcessor(Tool):
    """video_processor: detect the container; MP4/MOV metadata; frames need ffmpeg (not bundled)."""

    blocking = True

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "video_processor"
        op = choice(params, "operation", name, ("detect", "metadata", "thumbnail", "extract_frame"), "metadata")
        src = _path(ctx, name, params, "file_path")
        raw = _read(ctx, name, src)
        fmt = _sniff(raw, _VIDEO_MAGIC)
        if op == "detect":
            return ok(op, {"format": fmt or "unknown", "size_bytes": len(raw)})
        if op in ("thumbnail", "extract_frame"):
            raise ToolError(f"{name}: {op}: not implemented in this version (needs ffmpeg)")
        if fmt != "mp4":
            raise ToolError(f"{name}: metadata of {fmt or 'unknown'} video: not implemented in this version (MP4/MOV)")
        meta = mp4_metadata(raw)
        return ok(op, {"format": "mp4", **meta})
