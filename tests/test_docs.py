"""The docs cannot drift from the code: every command is in the generated CLI reference, and
the README stays a short page that names the two set-up commands CI and users run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import typer.main

from photocluster.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _command_paths(group: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in getattr(group, "commands", {}).items():
        yield (*path, name)
        yield from _command_paths(command, (*path, name))


COMMANDS = sorted(_command_paths(typer.main.get_command(app)))


def test_the_cli_has_commands_to_document() -> None:
    assert ("scan",) in COMMANDS
    assert ("eval", "pairs") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_is_in_the_cli_reference(path: tuple[str, ...]) -> None:
    heading = "#" * (3 if len(path) > 1 else 2)
    reference = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert f"\n{heading} photocluster {' '.join(path)}\n" in reference, (
        f"docs/cli.md has no section for `photocluster {' '.join(path)}`: run `make docs-update`"
    )
    assert f"Usage: photocluster {' '.join(path)} " in reference


def test_the_cli_reference_is_generated_from_the_commands() -> None:
    reference = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert "[[[cog" in reference
    assert "[[[end]]]" in reference


def test_the_readme_is_short_and_names_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 200
    for command in ("make test", "make demo"):
        assert command in readme
    for use in ("photocluster scan ~/Pictures", "photocluster clusters", "photocluster export ~/People"):
        assert use in readme


def test_every_docs_page_is_in_the_site_navigation() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in sorted(DOCS.glob("*.md")):
        assert f" {page.name}\n" in config, f"{page.name} is not in mkdocs.yml's nav"


def test_the_readme_links_only_to_docs_pages_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for part in readme.split("](docs/")[1:]:
        target = part.split(")", 1)[0].split("#", 1)[0]
        assert (DOCS / target).is_file(), f"README links to docs/{target}, which does not exist"
