"""Text from files and people reaches the terminal as text: names and paths with rich markup,
escape sequences, bidi overrides and newlines print literally, controls shown as escapes; ids
that are no ids (``²``, ``١``, 2**63) are one usage line; a result already applied is never
followed by a traceback. Through the CLI itself (CliRunner), with real files and a real store."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FakeEmbedder, write_photo
from photocluster.cli import app
from photocluster.cli import clusters as clusters_command
from photocluster.cli.common import err, out
from photocluster.cli.render import SafeConsole, visible

runner = CliRunner()

# A folder a person (or an archive) could make: markup, an unclosed bracket, a title-setting
# OSC sequence, a screen-clearing CSI, a right-to-left override, C1 and DEL.
HOSTILE_DIR = "a[ [/] [bold]B\x1b]0;pwned\x07 \x1b[2J \u202eevil\u0085\x7f"
HOSTILE_DIR_SHOWN = "a[ [/] [bold]B\\x1b]0;pwned\\x07 \\x1b[2J \\u202eevil\\x85\\x7f"
NAME = "Rose [aunt] [/] [red]x\x1b]0;t\x07"


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "400"})  # wide: a path stays on one line
    return result.exit_code, result.stdout, result.stderr


def terminal_safe(text: str) -> bool:
    """No character that acts on a terminal: C0 but newline, DEL, C1, bidi controls."""
    bad = {chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]} - {"\n"}
    bad |= set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
    return not bad & set(text)


@pytest.fixture
def db(tmp_path: Path, fake_embedder: FakeEmbedder) -> str:
    """Three red photos in a hostile folder (one with a newline in its name), scanned and clustered."""
    root = tmp_path / "lib" / HOSTILE_DIR
    for k in range(2):
        write_photo(root / f"red{k}.jpg", (200, 20, 40 + 4 * k))
    write_photo(root / "two\nlines.jpg", (200, 20, 48))
    path = str(tmp_path / "t.db")
    code, _, stderr = run("scan", str(tmp_path / "lib"), "--db", path, "--workers", "1")
    assert code == 0, stderr
    code, _, stderr = run("clusters", "--min-size", "1", "--db", path)
    assert code == 0, stderr
    return path


def test_visible_shows_every_control_and_keeps_text() -> None:
    assert visible("Rose [aunt]") == "Rose [aunt]"
    assert visible("Zoë 李 👩\u200d👩\u200d👧 مهر\u200cداد") == "Zoë 李 👩\u200d👩\u200d👧 مهر\u200cداد"
    assert visible("a\x1b[2Jb\x07\x00\n\t\r") == "a\\x1b[2Jb\\x07\\x00\\n\\t\\r"
    assert visible("\x9b31m\u202eabc\u2066\u2028") == "\\x9b31m\\u202eabc\\u2066\\u2028"
    assert visible(b"caf\xff.jpg") == "caf\\xff.jpg"  # not UTF-8: the byte shown
    assert visible(Path("x\x1by")) == "x\\x1by"
    assert isinstance(out, SafeConsole) and isinstance(err, SafeConsole)


def test_hostile_names_and_paths_print_literally(db: str) -> None:
    code, stdout, stderr = run("clusters", "--db", db, "--min-size", "1")
    assert code == 0, stderr
    assert HOSTILE_DIR_SHOWN in stdout
    assert terminal_safe(stdout + stderr)
    pid = json.loads(run("clusters", "--db", db, "--min-size", "1", "--json")[1])["persons_list"][0]["id"]

    code, stdout, stderr = run("name", str(pid), NAME, "--db", db)
    assert code == 0, stderr
    assert "Rose [aunt] [/] [red]x\\x1b]0;t\\x07" in stdout and terminal_safe(stdout)

    for args in (
        ["clusters", "--min-size", "1"],
        ["faces", str(pid)],
        ["faces", NAME],
        ["history"],
        ["status"],
        ["suggest"],
        ["tags"],
        ["undo", "--yes"],
    ):
        code, stdout, stderr = run(*args, "--db", db)
        assert code == 0, (args, stderr)
        assert terminal_safe(stdout + stderr), args
    code, stdout, _ = run("clusters", "--min-size", "1", "--db", db)
    assert "Rose [aunt]" not in stdout  # undone
    code, stdout, _ = run("faces", str(pid), "--db", db)
    assert HOSTILE_DIR_SHOWN in stdout and "two\\nlines.jpg" in stdout


def test_json_stays_exact(db: str) -> None:
    code, stdout, _ = run("faces", "1", "--db", db, "--json")
    assert code == 0
    photos = {row["photo"] for row in json.loads(stdout)}
    assert any(HOSTILE_DIR in p and p.endswith("two\nlines.jpg") for p in photos)  # the real path, exactly
    assert terminal_safe(stdout)  # escaped by JSON


def test_an_error_naming_a_hostile_name_is_one_safe_line(db: str) -> None:
    code, stdout, stderr = run("faces", "nobody [/]\x1b[2J\u202e", "--db", db)
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and "[/]" in stderr and terminal_safe(stderr)
    code, _, stderr = run("scan", str(Path(db).parent / "gone\x1b]0;x\x07[/]"), "--db", db)
    assert code == 2 and stderr.count("\n") == 1 and "[/]" in stderr and terminal_safe(stderr)


BIG = str(1 << 63)


@pytest.mark.parametrize(
    "args",
    [
        ["name", BIG, "x"],
        ["name", "²", "x"],
        ["merge", "1", BIG],
        ["merge", "١", "1"],
        ["move", BIG, "1"],
        ["move", "²", "1"],
        ["move", "1", BIG],
        ["remove", BIG],
        ["remove", "١"],
        ["remove", "99999999999999999999999"],
        ["ignore", BIG],
        ["ignore", "²"],
        ["faces", BIG],
        ["faces", "person_" + BIG],
        ["history", "--limit", BIG],
        ["history", "--limit", "²"],
        ["history", "--limit", "١"],
        ["scan", ".", "--workers", BIG],
        ["suggest", "--limit", "١"],
    ],
)
def test_ids_that_are_no_ids_are_one_usage_line(db: str, args: list[str]) -> None:
    result = runner.invoke(app, [*args, "--db", db])
    assert result.exit_code == 2, (args, result.stdout, result.stderr, result.exception)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.stderr and terminal_safe(result.stderr)


def test_a_clustering_applied_is_never_followed_by_a_traceback(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("the terminal went away")

    monkeypatch.setattr(clusters_command, "_print_persons", broken)
    result = runner.invoke(app, ["clusters", "--min-size", "1", "--db", db])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "done and saved, but the result could not be printed" in result.stderr
    assert result.stderr.count("\n") == 1
    monkeypatch.undo()
    persons = json.loads(run("clusters", "--plan", "--json", "--min-size", "1", "--db", db)[1])["persons"]
    assert persons >= 1  # the clustering was stored


# -- every way the CLI writes to the terminal goes through the safe console or visible() ------

CLI = Path(__file__).parents[2] / "photocluster" / "cli"
_WRITERS = {"echo", "secho", "prompt", "confirm", "write"}
_SAFE_CALLS = {"visible", "dumps"}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _safe_argument(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Call):
        return _name(node.func) in _SAFE_CALLS
    if isinstance(node, ast.BinOp):
        return _safe_argument(node.left) and _safe_argument(node.right)
    return False


def _numbers_only(node: ast.AST) -> bool:
    """A constant, or an f-string whose every value is formatted as a number (``:.2f``)."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.JoinedStr):
        return all(not isinstance(v, ast.FormattedValue) or v.format_spec is not None for v in node.values)
    if isinstance(node, ast.IfExp):
        return _numbers_only(node.body) and _numbers_only(node.orelse)
    return False


def test_the_cli_writes_text_only_through_the_safe_console() -> None:
    """A structural check behind the behaviour above: outside ``render.py`` the CLI makes no
    rich Console (so every console is a SafeConsole), never asks for markup, builds no Text
    from a value, and writes to the terminal without rich only through ``visible`` (or JSON)."""
    problems = []
    for path in sorted(CLI.glob("*.py")):
        if path.name == "render.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            where = f"{path.name}:{node.lineno}"
            name = _name(node.func)
            if name == "Console" or name in ("from_markup", "from_ansi", "render_markup"):
                problems.append(f"{where}: {name}()")
            if any(
                k.arg == "markup" and not (isinstance(k.value, ast.Constant) and not k.value.value)
                for k in node.keywords
            ):
                problems.append(f"{where}: markup=")
            if name == "Text" and not all(_numbers_only(a) for a in node.args):
                problems.append(f"{where}: Text() of a value (use safe_text)")
            writes = name in _WRITERS and isinstance(node.func, ast.Attribute) and node.args
            # An inline picture is an escape sequence we build around base64 (cli/pictures.py): no text of anyone's.
            picture = writes and isinstance(node.args[0], ast.Call) and _name(node.args[0].func) == "inline_image"
            if writes and not picture and not _safe_argument(node.args[0]):
                problems.append(f"{where}: {name}() of a value not passed through visible()")
            if isinstance(node.func, ast.Name) and node.func.id == "print":
                problems.append(f"{where}: print()")
    assert problems == []


def test_the_consoles_take_the_width_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    """COLUMNS is read when printing, not frozen when the console was made (a command run
    in a narrow terminal at import would otherwise fold every later table)."""
    from photocluster.cli.render import SafeConsole

    monkeypatch.setenv("COLUMNS", "33")
    console = SafeConsole()
    monkeypatch.setenv("COLUMNS", "400")
    assert console.width == 400 and out.width == 400
    assert SafeConsole(width=50).width == 50
