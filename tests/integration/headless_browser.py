"""Headless Chromium (Debian's `chromium`, tools/host-packages.txt) for the report tests: a
screenshot of a page and its DOM after rendering, and a small PNG reader to check the screenshot
(size, and that it is not one flat colour) without an imaging library.

Used by tests/integration/test_estate_report_browser.py and molecule/stack/tests/test_report.py."""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
# Flags that work as root on a machine without a display, GPU or network for the browser.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
SKIP_REASON = (
    f"{CHROMIUM} is missing (Debian package chromium, in tools/host-packages.txt: make host-packages)"
)


def available() -> bool:
    return Path(CHROMIUM).is_file() and shutil.which(CHROMIUM) is not None


def _run(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile.") as profile:
        return subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def screenshot(url: str, png: Path, width: int = 1400, height: int = 900) -> subprocess.CompletedProcess:
    run = _run(f"--screenshot={png}", f"--window-size={width},{height}", url)
    if not png.is_file():
        raise AssertionError(f"chromium wrote no screenshot ({run.returncode}): {run.stderr[-2000:]}")
    return run


def dump_dom(url: str) -> str:
    run = _run("--dump-dom", url)
    if run.returncode or "<html" not in run.stdout:
        raise AssertionError(f"chromium --dump-dom failed ({run.returncode}): {run.stderr[-2000:]}")
    return run.stdout


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and the rows of pixels (bytes, RGB or RGBA) of an 8-bit, non-interlaced PNG."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError(f"{path} is not a PNG")
    pos, chunks, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, colour, _compression, _filter, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise AssertionError(f"{path}: PNG of depth {depth}, colour type {colour}: not read here")
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * bpp
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                line[i] = (line[i] + _paeth(left, up, corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, rows


def colours(rows: list[bytes], bpp: int, step: int = 7) -> set[bytes]:
    """The distinct pixel values of a sample of the picture (every ``step``-th pixel of every row)."""
    return {row[i : i + bpp] for row in rows for i in range(0, len(row), bpp * step)}
