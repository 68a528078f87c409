"""Showing a picture from the terminal: inline in a terminal that draws images (kitty's
graphics protocol, iTerm2's inline images), or in the desktop's image viewer.

Imports nothing of the CLI; the commands that show pictures import it.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

KITTY = "kitty"
ITERM2 = "iterm2"
_CHUNK = 4096  # kitty takes base64 payloads in chunks of at most 4096 bytes


def inline_protocol(env: Mapping[str, str], stream: TextIO) -> str | None:
    """The image protocol of the terminal ``stream`` writes to, from its environment: kitty
    (kitty, Ghostty), iTerm2 (iTerm2, WezTerm), or None (a terminal that draws no images, a
    pipe, or tmux and screen, which do not pass images on)."""
    if not stream.isatty() or env.get("TMUX") or env.get("TERM", "").startswith("screen"):
        return None
    term, program = env.get("TERM", ""), env.get("TERM_PROGRAM", "")
    if term in ("xterm-kitty", "xterm-ghostty") or env.get("KITTY_WINDOW_ID") or program == "ghostty":
        return KITTY
    if program in ("iTerm.app", "WezTerm"):
        return ITERM2
    return None


def inline_image(png: bytes, protocol: str) -> str:
    """The escape sequence that draws ``png`` at the cursor, followed by a newline."""
    data = base64.standard_b64encode(png).decode("ascii")
    if protocol == ITERM2:
        return f"\x1b]1337;File=inline=1;size={len(png)};preserveAspectRatio=1:{data}\x07\n"
    chunks = [data[k : k + _CHUNK] for k in range(0, len(data), _CHUNK)] or [""]
    parts = []
    for n, chunk in enumerate(chunks):
        more = int(n < len(chunks) - 1)
        control = f"a=T,f=100,m={more}" if n == 0 else f"m={more}"
        parts.append(f"\x1b_G{control};{chunk}\x1b\\")
    return "".join(parts) + "\n"


def show_inline(png: bytes, stream: TextIO | None = None) -> bool:
    """Draw ``png`` in the terminal of ``stream`` (default stderr) if it can; whether it did."""
    stream = stream or sys.stderr
    protocol = inline_protocol(os.environ, stream)
    if protocol is None:
        return False
    stream.write(inline_image(png, protocol))
    stream.flush()
    return True


def viewer_command(env: Mapping[str, str], platform: str = sys.platform) -> list[str] | None:
    """The command that opens a file in the desktop's viewer, or None where there is no
    desktop to open it on (a server, an ssh session without a display)."""
    if platform == "darwin":
        return ["open"]
    if platform.startswith("linux") or "bsd" in platform:
        if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
            return None
        opener = shutil.which("xdg-open")
        return [opener] if opener else None
    return None


def open_in_viewer(path: Path) -> bool:
    """Open ``path`` in the desktop's image viewer, without waiting for it; whether one was started."""
    if sys.platform == "win32":
        os.startfile(path)  # type: ignore[attr-defined]
        return True
    command = viewer_command(os.environ)
    if command is None:
        return False
    try:
        subprocess.Popen(
            [*command, os.fspath(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return False
    return True
