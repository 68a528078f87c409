"""Pictures from the terminal: which terminals draw images inline, the escape sequences of
kitty's and iTerm2's protocols, and when there is a desktop viewer to open."""

from __future__ import annotations

import base64
import io
import re

import pytest

from photocluster.cli.pictures import ITERM2, KITTY, inline_image, inline_protocol, viewer_command


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TERM": "xterm-kitty"}, KITTY),
        ({"TERM": "xterm-256color", "KITTY_WINDOW_ID": "1"}, KITTY),
        ({"TERM": "xterm-ghostty"}, KITTY),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "iTerm.app"}, ITERM2),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"}, ITERM2),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "vscode"}, None),
        ({"TERM": "xterm-kitty", "TMUX": "/tmp/tmux-0/default,1,0"}, None),
        ({"TERM": "screen-256color", "TERM_PROGRAM": "iTerm.app"}, None),
        ({}, None),
    ],
)
def test_the_inline_protocol_follows_the_terminal(env: dict[str, str], expected: str | None) -> None:
    assert inline_protocol(env, Terminal()) == expected


def test_never_inline_into_a_pipe() -> None:
    assert inline_protocol({"TERM": "xterm-kitty"}, io.StringIO()) is None


def test_kitty_gets_the_png_in_chunks_of_4096() -> None:
    png = bytes(range(256)) * 40  # 10240 bytes: 13656 in base64, four chunks
    sequence = inline_image(png, KITTY)
    chunks = re.findall(r"\x1b_G([^;]*);([^\x1b]*)\x1b\\", sequence)
    assert [control for control, _ in chunks] == ["a=T,f=100,m=1", "m=1", "m=1", "m=0"]
    assert all(len(data) <= 4096 for _, data in chunks)
    assert base64.b64decode("".join(data for _, data in chunks)) == png
    assert sequence.endswith("\n")


def test_iterm2_gets_the_png_in_one_sequence() -> None:
    png = b"\x89PNG fake"
    sequence = inline_image(png, ITERM2)
    assert sequence == f"\x1b]1337;File=inline=1;size=9;preserveAspectRatio=1:{base64.b64encode(png).decode()}\x07\n"


def test_a_viewer_only_where_there_is_a_desktop() -> None:
    assert viewer_command({}, "darwin") == ["open"]
    assert viewer_command({}, "linux") is None  # a server, ssh without X forwarding
    command = viewer_command({"DISPLAY": ":0"}, "linux")
    assert command is None or command[0].endswith("xdg-open")
