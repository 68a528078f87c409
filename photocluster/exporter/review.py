"""The review pages of an export: ``index.html`` and ``pages/``.

Static files, their CSS inline, no script and nothing fetched from the network: they
open from the file system in any browser. ``index.html`` lists the persons as cards,
largest first, a page of :data:`~photocluster.core.readmodel.CARDS_PER_PAGE` at a time
(``pages/index-2.html`` ...), so it stays small whatever the library's size; each person
has its page (``pages/person-<id>.html``, its faces most doubtful first, paged beyond
:data:`~photocluster.core.readmodel.FACES_PER_PAGE`), and the faces most in doubt and the
unknown faces have theirs (``pages/doubt.html``, ``pages/unknown.html``). The HTML is
:mod:`photocluster.exporter.pages`', which the review app serves too; this module says where
the links of a static export point, which files it writes, and writes them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from photocluster.core.files import atomic_write
from photocluster.core.readmodel import (
    CARDS_PER_PAGE,
    FACES_PER_PAGE,
    Card,
    Doubt,
    FaceItem,
    Page,
    card_of_person,
    page_count,
    slice_page,
)
from photocluster.core.types import Person
from photocluster.exporter import pages
from photocluster.exporter.folders import PAGES_FOLDER, REVIEW_PAGE

if TYPE_CHECKING:
    from photocluster.core.readmodel import Conflict, Suggestion


# Read at call time from here (tests page with small numbers).
__all__ = ["CARDS_PER_PAGE", "FACES_PER_PAGE"]


def _href(rel: str) -> str:
    """A relative URL for a path inside the export folder, byte-exact."""
    return quote(os.fsencode(rel), safe="/")


def index_file(number: int) -> str:
    return REVIEW_PAGE if number == 1 else f"{PAGES_FOLDER}/index-{number}.html"


def person_file(person_id: int, number: int = 1) -> str:
    return f"{PAGES_FOLDER}/person-{person_id}{'' if number == 1 else f'-{number}'}.html"


def doubt_file(number: int = 1) -> str:
    return f"{PAGES_FOLDER}/doubt{'' if number == 1 else f'-{number}'}.html"


def unknown_file(number: int = 1) -> str:
    return f"{PAGES_FOLDER}/unknown{'' if number == 1 else f'-{number}'}.html"


class StaticLinks:
    """Links between the files of an export, from a page ``prefix`` deep ("" or "../")."""

    live = False
    token = ""

    def __init__(self, prefix: str, thumbs: Mapping[int, str], entries: Mapping[int, str], missing: set[str]) -> None:
        self.prefix = prefix
        self.thumbs = thumbs
        self.entries = entries
        self.missing = missing

    def _to(self, rel: str) -> str:
        return self.prefix + _href(rel)

    def thumb(self, face: FaceItem) -> str | None:
        rel = self.thumbs.get(face.id)
        # Thumbnail files are named by photocluster (folder, ids, hex keys): nothing to quote.
        return None if rel is None else self.prefix + rel

    def photo(self, face: FaceItem) -> str:
        """The photo's entry in the export folder, or the original when the entry is not there."""
        entry = self.entries.get(face.id)
        if entry is not None and entry not in self.missing:
            return self._to(entry)
        # What Path.as_uri() gives for an absolute path, without a Path per face.
        return "file://" + quote(os.fsencode(face.photo_path), safe="/")

    def index(self, number: int = 1) -> str:
        return self._to(index_file(number))

    def person(self, person_id: int, number: int = 1) -> str:
        return self._to(person_file(person_id, number))

    def doubt(self, number: int = 1) -> str:
        return self._to(doubt_file(number))

    def unknown(self, number: int = 1) -> str:
        return self._to(unknown_file(number))

    def action(self, name: str) -> str:
        raise AssertionError("a static page has no actions")


def _prefix(rel: str) -> str:
    return "../" if "/" in rel else ""


def person_page_files(person_id: int | None, faces: int, first: int = 1) -> list[str]:
    """The page files of a person of ``faces`` faces; or, id None, of a chunk of that many
    unknown faces, pages ``first`` on."""
    count = page_count(faces, FACES_PER_PAGE)
    if person_id is None:
        return [unknown_file(first + k) for k in range(count)]
    return [person_file(person_id, n) for n in range(1, count + 1)]


def person_pages(
    person: Person,
    summary: pages.Summary,
    thumbs: Mapping[int, str],
    entries: Mapping[int, str],
    missing: set[str],
    first: int = 1,
    total: int | None = None,
) -> Iterator[tuple[str, str]]:
    """(file, HTML) of each page of one person, its faces most doubtful first (the listing
    has them nearest first); or, id None, of the unknown faces in ``person.faces``: pages
    ``first`` on of the ``total`` unknown faces, by id."""
    files = person_page_files(person.id, len(person.faces), first)
    if person.id is None:
        faces = [FaceItem.of_person_face(f, None) for f in person.faces]
        total = len(faces) if total is None else total
        for k, rel in enumerate(files):
            links = StaticLinks(_prefix(rel), thumbs, entries, missing)
            items = faces[k * FACES_PER_PAGE : (k + 1) * FACES_PER_PAGE]
            page = Page(items, first + k, page_count(total, FACES_PER_PAGE), total)
            yield rel, pages.unknown_page(links, summary, page)
        return
    card = card_of_person(person)
    faces = [FaceItem.of_person_face(f, person.id) for f in reversed(person.faces)]
    for n, rel in enumerate(files, start=1):
        links = StaticLinks(_prefix(rel), thumbs, entries, missing)
        yield rel, pages.person_page(links, summary, card, slice_page(faces, n, FACES_PER_PAGE))


@dataclass
class Lists:
    """What the pages that list persons and doubts show: the persons' cards (largest first),
    the faces in doubt, the suggestions and tag conflicts, and the thumbnails and photo
    entries of the faces these pages show (covers and doubts)."""

    summary: pages.Summary
    doubts: list[Doubt]
    cards: list[Card] = field(default_factory=list)
    thumbs: dict[int, str] = field(default_factory=dict)
    entries: dict[int, str] = field(default_factory=dict)
    suggestions: Sequence[Suggestion] = ()
    conflicts: Sequence[Conflict] = ()

    def __post_init__(self) -> None:
        self._doubt_ids = {d.face.id for d in self.doubts}

    def add(self, card: Card, thumbs: Mapping[int, str], entries: Mapping[int, str]) -> None:
        """A person's card, keeping what its cover and its faces in doubt link to."""
        self.cards.append(card)
        shown = [f for f in entries if f in self._doubt_ids or (card.cover is not None and card.cover.id == f)]
        self.entries.update((f, entries[f]) for f in shown)
        self.thumbs.update((f, thumbs[f]) for f in shown if f in thumbs)

    def files(self) -> list[str]:
        return [index_file(n) for n in range(1, page_count(len(self.cards), CARDS_PER_PAGE) + 1)] + [
            doubt_file(n) for n in range(1, page_count(len(self.doubts), FACES_PER_PAGE) + 1)
        ]

    def render(self, missing: set[str]) -> Iterator[tuple[str, str]]:
        """(file, HTML) of the index pages and the doubt pages."""
        labels = {c.id: c.label for c in self.cards}
        for n in range(1, page_count(len(self.cards), CARDS_PER_PAGE) + 1):
            rel = index_file(n)
            links = StaticLinks(_prefix(rel), self.thumbs, self.entries, missing)
            page = slice_page(self.cards, n, CARDS_PER_PAGE)
            yield rel, pages.index_page(links, self.summary, page, self.suggestions, labels, conflicts=self.conflicts)
        for n in range(1, page_count(len(self.doubts), FACES_PER_PAGE) + 1):
            rel = doubt_file(n)
            links = StaticLinks(_prefix(rel), self.thumbs, self.entries, missing)
            yield rel, pages.doubt_page(links, self.summary, slice_page(self.doubts, n, FACES_PER_PAGE), labels)


def page_is_ours(page: Path, written_before: bool) -> bool:
    """Whether the export may write the review page at ``page``: not through a link, and
    not over a file someone else put there (``written_before``: an earlier export wrote it)."""
    return not (page.is_symlink() or (page.exists() and not written_before))


def write_page(page: Path, text: str) -> None:
    # Rewritten only when it changed, so an unchanged export leaves the file's mtime alone.
    try:
        same = page.stat().st_size == len(text.encode("utf-8")) and page.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        same = False
    if not same:
        atomic_write(page, text)
