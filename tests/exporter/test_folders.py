"""The layout of DEST: safe folder names."""

from __future__ import annotations

from pathlib import Path

import pytest

from photocluster.exporter.folders import safe_folder_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Alice", "Alice"),
        ("/", "_"),
        ("..", "_"),
        (".", "_"),
        ("", "_"),
        ("\x00", "_"),
        ("a\x00b", "a b"),
        ("a/b\\c", "a_b_c"),
        ("../../etc", "_.._etc"),
        ("line\nbreak\ttab\x1b[31m", "line break tab [31m"),
        ("  spaced   out  ", "spaced out"),
        ("CON", "_CON"),
        ("con.txt", "_con.txt"),
        ("lpt1", "_lpt1"),
        ("unknown", "_unknown"),
        ("index.json", "_index.json"),
        ("<script>", "_script_"),
        ('a:b*c?d"e|f', "a_b_c_d_e_f"),
        ("Zoë", "Zoë"),
        ("Zoe\u0308", "Zoë"),  # NFC
    ],
)
def test_safe_folder_name(name: str, expected: str) -> None:
    assert safe_folder_name(name) == expected


@pytest.mark.parametrize(
    "name",
    ["/", "..", ".", "\x00", "\x00..\x00", "x" * 300, "é" * 300, "😀" * 300, ". . .", "a" * 99 + " .b", "<script>"],
)
def test_safe_folder_name_is_one_usable_path_component(name: str, tmp_path: Path) -> None:
    safe = safe_folder_name(name)
    assert safe not in ("", ".", "..")
    assert "/" not in safe and "\x00" not in safe
    assert len(safe) <= 100
    assert len(safe.encode("utf-8")) <= 255
    (tmp_path / safe).mkdir()  # the file system takes it
    assert [p.name for p in tmp_path.iterdir()] == [safe]


def test_long_names_are_cut_to_100_characters() -> None:
    assert safe_folder_name("x" * 300) == "x" * 100
    assert safe_folder_name("a" * 99 + " b") == "a" * 99
