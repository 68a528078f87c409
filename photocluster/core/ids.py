"""Ids typed by a person (a face, a person, a count): the one parser every entry point uses,
the CLI's arguments and the review app's paths and forms alike.

An id is ASCII digits only (``int()`` would take ``²``'s neighbours ``١`` and full-width
digits, and ``isdigit()`` says yes to ``²``, which ``int()`` refuses) and fits SQLite's
integer (64 bits, signed): anything else is a :class:`UsageError` with a one-line reason,
never an ``OverflowError`` from the database or a ``ValueError`` from ``int()``.
"""

from __future__ import annotations

from photocluster.core.errors import UsageError

MAX_ID = (1 << 63) - 1  # SQLite's largest integer
_SHOWN = 24  # characters of a bad value repeated in its error


def is_id(text: str) -> bool:
    """Whether ``text`` is an id: ASCII digits, at most :data:`MAX_ID`."""
    return text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= MAX_ID


def parse_id(text: str, what: str = "id") -> int:
    """``text`` (surrounding spaces ignored) as an id, else :class:`UsageError` saying why."""
    value = text.strip()
    if value.isascii() and value.isdigit():
        if is_id(value):
            return int(value)
        raise UsageError(f"{what} {_shown(value)} is out of range (at most {MAX_ID})")
    raise UsageError(f"{what} must be a number written with the digits 0-9, not {_shown(value)!r}")


def _shown(value: str) -> str:
    return value if len(value) <= _SHOWN else value[:_SHOWN] + "..."
