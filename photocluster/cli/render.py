"""Text for the terminal: whatever the CLI prints is plain text, one line per value, with the
characters that would act on the terminal shown as escapes.

Names and paths come from people and from files (a folder named ``a[``, an XMP tag
``Rose [aunt]``, a name holding ``ESC ]0;`` that would retitle the terminal or ``ESC [2J``
that would clear it, a right-to-left override that reverses what follows). They reach the
terminal through one function, :func:`visible`, by two ways:

- the consoles (:class:`SafeConsole`, the only kind the CLI makes) read no rich markup
  and no emoji codes, and pass every string they render, a table's cells and titles and
  a status line's text included, through :func:`visible`;
- what is written without rich (a prompt, a URL) calls :func:`visible` itself, and a
  renderable the CLI builds takes its text from :func:`safe_text` or :func:`lines`.

``--json`` needs none of it: :func:`json.dumps` with ``ensure_ascii`` escapes every
control character and every non-ASCII one.

Imports nothing from photocluster.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable
from typing import Any

from rich.console import Console, RenderableType
from rich.status import Status
from rich.text import Text

# Format characters that are part of how words are written (Persian, Indic scripts, emoji
# sequences) and do nothing to a terminal: kept. Every other format character (the bidi
# overrides and isolates, zero-width spaces, the BOM) is shown as an escape.
_JOINERS = frozenset("\u200c\u200d")
# Categories shown as escapes: controls (C0, DEL, C1), format, surrogates, unassigned,
# line and paragraph separators.
_ESCAPED = frozenset({"Cc", "Cf", "Cs", "Cn", "Zl", "Zp"})


def visible(value: object) -> str:
    """``value`` as one line of plain text: a path or bytes decoded as the file system does,
    every control character, bidi override and line separator shown as its escape
    (``\\x1b``, ``\\n``, ``\\u202e``) and a byte that is not UTF-8 as ``\\xff``."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bytes | os.PathLike):
        text = os.fsdecode(value)
    else:
        text = str(value)
    if text.isascii() and text.isprintable():
        return text
    return "".join(_shown(ch) for ch in text)


def _shown(ch: str) -> str:
    if ch == " " or ch in _JOINERS or unicodedata.category(ch) not in _ESCAPED:
        return ch
    if "\udc80" <= ch <= "\udcff":  # a byte that os.fsdecode could not decode
        return f"\\x{ord(ch) - 0xDC00:02x}"
    return ascii(ch)[1:-1]


def safe_text(value: object, style: str = "") -> Text:
    """``value`` as a rich :class:`~rich.text.Text` of :func:`visible` text (never markup)."""
    return Text(visible(value), style=style)


def lines(values: Iterable[object]) -> Text:
    """Several values, each :func:`visible`, one per line (a table cell of several paths)."""
    return Text("\n").join(safe_text(v) for v in values)


class _SafeStatus(Status):
    """A status line whose text, set again with :meth:`update`, is :func:`visible` text."""

    def update(self, status: RenderableType | None = None, **kwargs: Any) -> None:
        super().update(safe_text(status) if isinstance(status, str) else status, **kwargs)


class SafeConsole(Console):
    """A rich console for text from people and files: no markup, no emoji codes, no
    highlighting, and every string :func:`visible` (so ``[/]`` is two brackets and a slash,
    and an escape sequence is shown, never sent)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(markup=False, emoji=False, highlight=False, **kwargs)
        # rich freezes COLUMNS/LINES as they are when the console is made (at import, here);
        # read them when printing instead, so the width is the terminal's of the moment.
        if "width" not in kwargs:
            self._width = None
        if "height" not in kwargs:
            self._height = None

    def render_str(self, text: str, **kwargs: Any) -> Text:
        kwargs.update(markup=False, emoji=False)
        return super().render_str(visible(text), **kwargs)

    def status(self, status: RenderableType, **kwargs: Any) -> Status:
        return _SafeStatus(safe_text(status) if isinstance(status, str) else status, console=self, **kwargs)
