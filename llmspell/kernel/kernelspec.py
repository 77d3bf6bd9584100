"""Kernelspec: kernel.json plus a logo (drawn here as SVG and rasterised to PNG), and its install.

    python -m llmspell.kernel.kernelspec install [--user | --sys-prefix | --prefix P] [--name N]
        [--display-name D] [--interrupt-mode signal|message]

kernel.json's argv is ``[sys.executable, "-m", "llmspell.kernel", "-f", "{connection_file}"]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

KERNEL_NAME = "llmspell"
DISPLAY_NAME = "llmspell (Lua 5.4)"
INTERRUPT_MODES = ("signal", "message")

# The logo: a navy rounded square, a blue planet, a gold moon and a white four-point spark.
_BG, _PLANET, _MOON, _SPARK = (27, 42, 74), (63, 127, 216), (242, 193, 78), (255, 255, 255)
_PLANET_C, _MOON_C = (27.0, 37.0, 17.0), (47.0, 17.0, 7.5)
_SPARK_DIAMONDS = (((47, 38), (50, 47), (47, 56), (44, 47)), ((38, 47), (47, 44), (56, 47), (47, 50)))

LOGO_SVG = f"""<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">
  <title>llmspell</title>
  <rect x="0" y="0" width="64" height="64" rx="12" ry="12" fill="rgb{_BG}"/>
  <circle cx="{_PLANET_C[0]:g}" cy="{_PLANET_C[1]:g}" r="{_PLANET_C[2]:g}" fill="rgb{_PLANET}"/>
  <circle cx="{_MOON_C[0]:g}" cy="{_MOON_C[1]:g}" r="{_MOON_C[2]:g}" fill="rgb{_MOON}"/>
  <path d="M47 38 L50 47 L47 56 L44 47 Z M38 47 L47 44 L56 47 L47 50 Z" fill="rgb{_SPARK}"/>
</svg>
"""


def kernel_json(display_name: str = DISPLAY_NAME, interrupt_mode: str = "message",
                env: dict[str, str] | None = None) -> dict[str, Any]:
    """The kernel.json contents for this Python and this package."""
    if interrupt_mode not in INTERRUPT_MODES:
        raise ValueError(f"interrupt_mode must be one of {INTERRUPT_MODES}, not {interrupt_mode!r}")
    spec: dict[str, Any] = {
        "argv": [sys.executable, "-m", "llmspell.kernel", "-f", "{connection_file}"],
        "display_name": display_name,
        "language": "lua",
        "interrupt_mode": interrupt_mode,
        "metadata": {"debugger": True},
        "kernel_protocol_version": "5.3",
    }
    if env:
        spec["env"] = dict(env)
    return spec


def _inside(x: float, y: float, poly: Sequence[tuple[float, float]]) -> bool:
    sign = 0
    n = len(poly)
    for i in range(n):
        (x1, y1), (x2, y2) = poly[i], poly[(i + 1) % n]
        cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
        if cross != 0:
            s = 1 if cross > 0 else -1
            if sign and s != sign:
                return False
            sign = s
    return True


def _logo_pixel(x: float, y: float) -> tuple[int, int, int, int]:
    """The colour at a point of the 64x64 logo (transparent outside the rounded square)."""
    r = 12.0
    cx = min(max(x, r), 64 - r)
    cy = min(max(y, r), 64 - r)
    if (x - cx) ** 2 + (y - cy) ** 2 > r * r:
        return (0, 0, 0, 0)
    for poly in _SPARK_DIAMONDS:
        if _inside(x, y, poly):
            return (*_SPARK, 255)
    mx, my, mr = _MOON_C
    if (x - mx) ** 2 + (y - my) ** 2 <= mr * mr:
        return (*_MOON, 255)
    px, py, pr = _PLANET_C
    if (x - px) ** 2 + (y - py) ** 2 <= pr * pr:
        return (*_PLANET, 255)
    return (*_BG, 255)


def render_png(size: int, samples: int = 4) -> bytes:
    """Rasterise the logo to a size x size RGBA PNG (supersampled anti-aliasing)."""
    scale = 64.0 / size
    rows = bytearray()
    n = samples * samples
    for j in range(size):
        rows.append(0)  # filter: none
        for i in range(size):
            acc = [0, 0, 0, 0]
            for sj in range(samples):
                for si in range(samples):
                    px = _logo_pixel((i + (si + 0.5) / samples) * scale, (j + (sj + 0.5) / samples) * scale)
                    a = px[3]
                    acc[0] += px[0] * a
                    acc[1] += px[1] * a
                    acc[2] += px[2] * a
                    acc[3] += a
            alpha = acc[3]
            if alpha:
                rows.extend((acc[0] // alpha, acc[1] // alpha, acc[2] // alpha, alpha // n))
            else:
                rows.extend((0, 0, 0, 0))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
            + chunk(b"IEND", b""))


def write_kernel_spec(path: str | Path, **kwargs: Any) -> Path:
    """Write kernel.json and the logos into directory `path` (created if missing)."""
    d = Path(path)
    d.mkdir(parents=True, exist_ok=True)
    (d / "kernel.json").write_text(json.dumps(kernel_json(**kwargs), indent=1) + "\n", encoding="utf-8")
    (d / "logo-svg.svg").write_text(LOGO_SVG, encoding="utf-8")
    for size in (32, 64):
        (d / f"logo-{size}x{size}.png").write_bytes(render_png(size))
    return d


def install(*, user: bool = False, sys_prefix: bool = False, prefix: str | None = None,
            kernel_name: str = KERNEL_NAME, display_name: str = DISPLAY_NAME,
            interrupt_mode: str = "message", env: dict[str, str] | None = None) -> str:
    """Install the kernelspec (replacing an older one); returns the installed directory.

    With no location flag it installs for the current user.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    if sys_prefix:
        prefix = sys.prefix
    if prefix is None and not user:
        user = True
    from llmspell.settings import scratch_dir

    tmp = scratch_dir("kernelspec")
    try:
        src = write_kernel_spec(tmp / kernel_name, display_name=display_name, interrupt_mode=interrupt_mode,
                                env=env)
        return str(KernelSpecManager().install_kernel_spec(str(src), kernel_name=kernel_name, user=user,
                                                           prefix=prefix))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def add_install_arguments(p: argparse.ArgumentParser) -> None:
    """The install options shared by this module's CLI and `llmspell kernel install`."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for the current user (the default)")
    where.add_argument("--sys-prefix", action="store_true", help=f"install into {sys.prefix} (venv, CI)")
    where.add_argument("--prefix", default=None, metavar="PREFIX", help="install into PREFIX/share/jupyter/kernels")
    p.add_argument("--name", default=KERNEL_NAME, help=f"kernelspec name (default {KERNEL_NAME})")
    p.add_argument("--display-name", default=DISPLAY_NAME, help=f"name shown by frontends (default {DISPLAY_NAME!r})")
    p.add_argument("--interrupt-mode", choices=INTERRUPT_MODES, default=None,
                   help="how frontends interrupt a cell: SIGINT to the kernel (signal) or an "
                        "interrupt_request on control (message) (default: [kernel] interrupt_mode, "
                        "which is signal unless the config says otherwise)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="environment variable for the kernel process (repeatable)")


def install_from_args(args: argparse.Namespace) -> str:
    env = {}
    for item in args.env or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--env expects KEY=VALUE, got {item!r}")
        env[key] = value
    mode = args.interrupt_mode
    if mode is None:
        try:
            from llmspell.config import load_config

            mode = load_config(getattr(args, "config", None)).settings.kernel.interrupt_mode
        except Exception:  # noqa: BLE001 - a broken config must not block installing the spec
            mode = ""
        mode = mode if mode in INTERRUPT_MODES else "signal"  # the [kernel] interrupt_mode default
    return install(user=args.user, sys_prefix=args.sys_prefix, prefix=args.prefix, kernel_name=args.name,
                   display_name=args.display_name, interrupt_mode=mode, env=env or None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmspell.kernel.kernelspec",
                                     description="Install the llmspell Jupyter kernelspec.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_install_arguments(sub.add_parser("install", help="install the kernelspec"))
    args = parser.parse_args(argv)
    path = install_from_args(args)
    print(f"Installed kernelspec {args.name} in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
