"""The review pages as HTML, shared by the static export and the review app.

Four kinds of page, each paged: the index (persons as cards, largest first), a person
(its faces, most doubtful first), the faces most in doubt, and the unknown faces. Where
links point (files in an export folder, or routes of the app) is a :class:`Links`'
business; with ``Links.live`` the pages also carry the forms that correct the library
(rename, merge the selected persons, move or remove the selected faces, ignore, answer a
suggestion, undo). CSS inline, no script, nothing fetched from the network.

The HTML is Jinja2's, from the templates beside this module (``templates/``: ``base.html``
and one template per page, their shared pieces in ``macros.html``), autoescaped: every value
a template shows is escaped as :func:`text` escapes it. This module chooses what a page shows
and asks the :class:`Links` where each link points; the templates say how it looks.
"""

from __future__ import annotations

import functools
import html
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import jinja2
from markupsafe import Markup

from photocluster.core import types
from photocluster.core.ages import age_label
from photocluster.core.readmodel import Card, Doubt, FaceItem, Page, Summary
from photocluster.version import __version__

if TYPE_CHECKING:
    from photocluster.core.readmodel import Candidate, Conflict, PhotoView, Suggestion

__all__ = [
    "CurationLinks",
    "Links",
    "Summary",
    "confirm_page",
    "distance",
    "doubt_page",
    "error_page",
    "index_page",
    "person_page",
    "photo_page",
    "search_page",
    "text",
    "unknown_page",
]

_EAGER = 60  # thumbnails loaded at once; later ones load as they scroll into view


class Links(Protocol):
    """Where a page's links point. ``live``: the pages are served by the review app and
    carry its forms (posted to ``action(name)`` with ``token``)."""

    live: bool
    token: str

    def thumb(self, face: FaceItem) -> str | None: ...
    def photo(self, face: FaceItem) -> str: ...
    def index(self, number: int = 1) -> str: ...
    def person(self, person_id: int, number: int = 1) -> str: ...
    def doubt(self, number: int = 1) -> str: ...
    def unknown(self, number: int = 1) -> str: ...
    def action(self, name: str) -> str: ...


class CurationLinks(Links, Protocol):
    """The review app's links to its curation pages (not in a static export): a photo's page
    and its image, a person's confirm queue, the search, the app's script."""

    def photo_page(self, photo_id: int) -> str: ...
    def image(self, photo_id: int) -> str: ...
    def photo_file(self, face: FaceItem) -> str: ...
    def confirm(self, person_id: int, skip: Sequence[int] = (), view: str = "") -> str: ...
    def search(self, query: str = "") -> str: ...
    def script(self) -> str: ...


def text(value: object) -> str:
    """Escaped for HTML text and attribute values. File names that are not UTF-8 show
    replacement characters (links keep their exact bytes)."""
    s = str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return html.escape(s, quote=True)


def _finalize(value: object) -> object:
    """Every ``{{ value }}`` of a template is escaped as :func:`text` escapes it: Jinja's own
    escaping (markupsafe's) writes quotes as ``&#34;`` and ``&#39;`` and keeps a file name's
    undecodable bytes, so a value with either goes through :func:`text` here. The others
    (numbers, URLs, most names), and what a macro or a block renders, are left to markupsafe,
    which gives the same bytes faster: a page shows hundreds of faces."""
    if type(value) is str:
        if value.isascii() and '"' not in value and "'" not in value:
            return value
    elif type(value) is int or isinstance(value, Markup):
        return value
    return Markup(text(value))


def _short(label: str, most: int = 200) -> str:
    """A name on a card, cut: however long the names, a page of cards stays small."""
    return label if len(label) <= most else label[: most - 1] + "…"


def distance(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.2f}"


def age(taken: str | None, born: str | None) -> str:
    """The age (``3 y 4 m``) at a photo taken on ``taken`` of a person born on ``born``."""
    return age_label(born, taken) or ""


class _Figure(NamedTuple):
    """A face as a page's figure shows it, its links built once (a page shows hundreds):
    ``item`` is what its caption tells about (the face, or its doubt); ``lazy``: its
    thumbnail loads as it scrolls into view."""

    item: object
    id: int
    photo: str
    thumb: str | None
    title: str
    lazy: bool


def _figures(links: Links, items: Sequence[Any], face: Callable[[Any], FaceItem] = lambda x: x) -> list[_Figure]:
    """The figures of a page's ``items``, ``face(item)`` the face each one shows. Built here
    rather than in the template: a call from a template costs several times a call from Python."""
    out = []
    for n, item in enumerate(items):
        f = face(item)
        title = f"{f.photo_path}  box {f.box.as_list()}"
        out.append(_Figure(item, f.id, links.photo(f), links.thumb(f), title, n >= _EAGER))
    return out


def _pager_window(page: Page[Any]) -> list[int | None]:
    """The page numbers a pager links to: the first, the last and three either side of the
    current one; None where numbers are left out."""
    window = sorted({1, page.pages, *range(max(1, page.number - 3), min(page.pages, page.number + 3) + 1)})
    out: list[int | None] = []
    last = 0
    for n in window:
        if n > last + 1:
            out.append(None)
        out.append(n)
        last = n
    return out


@functools.cache
def _environment() -> jinja2.Environment:
    """The templates beside this module, loaded once per process and compiled once each
    (no up-to-date check per page: an export renders a page per few hundred faces)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    # Filters rather than functions where a page calls them per face: Jinja calls a filter
    # directly, a function through its context.
    env.filters.update(distance=distance, short=_short, basename=os.path.basename, age=age)
    env.globals.update(version=__version__, eager=_EAGER, pager_window=_pager_window)
    return env


def _page(name: str, links: Links, summary: Summary, message: str, **context: object) -> str:
    """The page of template ``name``, its header telling ``summary`` (and, live, ``message``)."""
    settings = []
    if summary.threshold is not None:
        settings.append(f"threshold {summary.threshold}")
    if summary.min_size is not None:
        settings.append(f"min size {summary.min_size}")
    template = _environment().get_template(name)
    return template.render(links=links, summary=summary, settings=", ".join(settings), message=message, **context)


def index_page(
    links: Links,
    summary: Summary,
    cards: Page[Card],
    suggestions: Sequence[Suggestion] = (),
    labels: Mapping[int, str] | None = None,
    message: str = "",
    conflicts: Sequence[Conflict] = (),
) -> str:
    """The persons as cards, largest first; suggestions ("same person?") and the face tags in
    conflict on the first page."""
    labels = labels or {}
    first = cards.number == 1
    shown = [s for s in suggestions if s.a in labels and s.b in labels] if first else []
    return _page(
        "index.html",
        links,
        summary,
        message,
        cards=cards,
        suggestions=shown,
        labels=labels,
        conflicts=conflicts if first else (),
    )


def person_page(links: Links, summary: Summary, card: Card, faces: Page[FaceItem], message: str = "") -> str:
    """One person: name, counts and actions, then its faces, most doubtful first."""
    page_link = functools.partial(links.person, card.id)
    figures = _figures(links, faces.items)
    return _page("person.html", links, summary, message, card=card, faces=faces, figures=figures, page_link=page_link)


def photo_page(links: CurationLinks, summary: Summary, photo: PhotoView, message: str = "") -> str:
    """A photo with its faces' boxes (live only): draw a box to add a face the scan missed."""
    figures = _figures(links, [f.face for f in photo.faces])
    items = dict(zip([f.id for f in figures], photo.faces, strict=True))
    return _page("photo.html", links, summary, message, photo=photo, figures=figures, items=items)


def confirm_page(
    links: CurationLinks,
    summary: Summary,
    card: Card,
    queue: Page[Candidate],
    skipped: Sequence[int] = (),
    one: bool = False,
    message: str = "",
) -> str:
    """A person's confirm queue ("is this X?"), the answers that change the most first:
    one face at a time (``one``) or a grid; yes, no or skip each."""
    figures = _figures(links, queue.items, lambda c: c.face)
    back = links.confirm(card.id, skipped, "one" if one else "")
    skips = {c.face.id: links.confirm(card.id, [*skipped, c.face.id], "one" if one else "") for c in queue.items}
    return _page(
        "confirm.html",
        links,
        summary,
        message,
        card=card,
        queue=queue,
        figures=figures[:1] if one else figures,
        back=back,
        skips=skips,
        one=one,
        skipped=skipped,
    )


def search_page(
    links: CurationLinks, summary: Summary, query: str, found: Sequence[tuple[int, str]], message: str = ""
) -> str:
    """The persons whose name starts with ``query`` (a word of it, case and accents ignored)."""
    return _page("search.html", links, summary, message, query=query, found=found)


def doubt_page(
    links: Links, summary: Summary, doubts: Page[Doubt], labels: Mapping[int, str], message: str = ""
) -> str:
    """The faces most in doubt, most doubtful first."""

    def person_label(pid: int) -> str:
        return labels.get(pid, types.person_label(pid))

    figures = _figures(links, doubts.items, lambda d: d.face)
    return _page("doubt.html", links, summary, message, doubts=doubts, figures=figures, person_label=person_label)


def unknown_page(links: Links, summary: Summary, faces: Page[FaceItem], message: str = "") -> str:
    """The faces in no person."""
    return _page("unknown.html", links, summary, message, faces=faces, figures=_figures(links, faces.items))


def error_page(message: str) -> str:
    """A page of the review app that says what went wrong."""
    return _environment().get_template("error.html").render(message=message)
