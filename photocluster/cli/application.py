"""The ``photocluster`` typer app: the root options (``--version``, ``--verbose``) and every command,
registered in the order ``photocluster --help`` lists them.

Imports point one way: this module imports the command modules, they import
:mod:`photocluster.cli.common`, and nothing imports this module but the package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from photocluster.cli import clusters, corrections, curate, doctor, export, people, review, scan, suggest
from photocluster.cli import eval as eval_commands
from photocluster.cli import tags as tag_commands
from photocluster.cli.common import configure_logging, out
from photocluster.core.errors import PhotoclusterError
from photocluster.core.memory import prefer_small_pages
from photocluster.version import __version__

app = typer.Typer(
    name="photocluster",
    help="Find every face in a photo library and group the faces by person.\n\n"
    "\b\nExample: photocluster scan ~/Pictures && photocluster clusters && photocluster export ~/People",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Named after their functions; `--help` lists them in this order, then `calibrate` and `eval`.
_COMMANDS: tuple[Callable[..., None], ...] = (
    scan.scan,
    clusters.clusters,
    export.export,
    review.review,
    scan.status,
    corrections.name,
    corrections.merge,
    corrections.move,
    corrections.remove,
    corrections.ignore,
    corrections.born,
    curate.add_face,
    corrections.undo,
    corrections.history,
    suggest.suggest,
    people.faces,
    people.photos,
    people.who,
    people.find,
    tag_commands.tags,
    doctor.doctor,
)


def _version(value: bool) -> None:
    if value:
        from photocluster.detect.faces import dlib_build

        try:
            build = dlib_build().describe()
        except PhotoclusterError as exc:
            build = f"dlib unavailable: {exc}"
        out.print(f"photocluster {__version__}, {build}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and dlib build.")
    ] = False,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="Log what is done on stderr, before the command: -v the steps and decisions, -vv each file too.",
            show_default=False,
        ),
    ] = 0,
) -> None:
    configure_logging(verbose)


for _command in _COMMANDS:
    app.command()(_command)
app.add_typer(eval_commands.eval_app, name="eval")
app.command("calibrate")(eval_commands.calibrate_command)


def main() -> None:
    prefer_small_pages()
    app()
