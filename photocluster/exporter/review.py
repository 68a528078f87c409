"""The review pages of an export: ``index.html`` and ``pages/``.

Static files, their CSS inline, no script and nothing fetched from the network: they
open from the file system in any browser. ``index.html`` lists the persons as cards,
largest first, a page of :data:`~photocluster.app.browse.CARDS_PER_PAGE` at a time
(``pages/index-2.html`` ...), so it stays small whatever the library's size; each person
has its page (``pages/person-<id>.html``, its faces most doubtful first, paged beyond
:data:`~photocluster.app.browse.FACES_PER_PAGE`), and the faces most in doubt and the
unknown faces have theirs (``pages/doubt.html``, ``pages/unknown.html``). The HTML is
:mod:`photocluster.app.pages`', which the review app serves too; this module says where
the links of a static export point, which files it writes, and writes them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from photocluster.app import pages
from photocluster.app.browse import (
    CARDS_PER_PAGE,
    FACES_PER_PAGE,
    Card,
    Doubt,
    FaceItem,
    card_of_person,
    page_count,
    slice_page,
)
from photocluster.core.files import atomic_write
from photocluster.core.types import Person
from photocluster.exporter.folders import PAGES_FOLDER, REVIEW_PAGE, check_inside, file_names, warn

if TYPE_CHECKING:
    from photocluster.app.suggest import Suggestion
    from photocluster.app.tags import Conflict


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
        return None if rel is None else self._to(rel)

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


def page_files(people: Sequence[Person], doubts: int) -> list[str]:
    """Every review page an export of ``people`` writes (known before any is written, so
    the manifest can claim them first)."""
    persons = [p for p in people if p.id is not None]
    unknown = sum(len(p.faces) for p in people if p.id is None)
    files = [index_file(n) for n in range(1, page_count(len(persons), CARDS_PER_PAGE) + 1)]
    for p in persons:
        assert p.id is not None
        files += [person_file(p.id, n) for n in range(1, page_count(len(p.faces), FACES_PER_PAGE) + 1)]
    files += [doubt_file(n) for n in range(1, page_count(doubts, FACES_PER_PAGE) + 1)]
    files += [unknown_file(n) for n in range(1, page_count(unknown, FACES_PER_PAGE) + 1)]
    return files


@dataclass
class Site:
    """What the review pages of one export show, and where they go."""

    dest: Path
    people: list[Person]
    folders: Mapping[int | None, str]
    thumbs: Mapping[int, str]
    missing: set[str]
    doubts: list[Doubt]
    suggestions: Sequence[Suggestion] = ()
    conflicts: Sequence[Conflict] = ()
    summary: pages.Summary = field(default_factory=lambda: pages.Summary(0, 0, 0, 0))

    def entries_of(self, person: Person) -> dict[int, str]:
        names = file_names(person)
        return {f.face_id: f"{self.folders[person.id]}/{names[f.photo_id]}" for f in person.faces}

    def links(self, rel: str, entries: Mapping[int, str]) -> StaticLinks:
        return StaticLinks("../" if "/" in rel else "", self.thumbs, entries, self.missing)

    def render(self) -> Iterator[tuple[str, str]]:
        """(file, HTML) of every page, a person at a time."""
        persons = [p for p in self.people if p.id is not None]
        labels = {p.id: p.label for p in persons if p.id is not None}
        doubt_ids = {d.face.id for d in self.doubts}
        shown: dict[int, str] = {}  # entries of the faces the index and doubt pages show
        cards: list[Card] = []
        for p in persons:
            assert p.id is not None
            entries = self.entries_of(p)
            card = card_of_person(p)
            cards.append(card)
            shown.update({f: e for f, e in entries.items() if f in doubt_ids or (card.cover and card.cover.id == f)})
            # Most doubtful first: the listing has them nearest first.
            faces = [FaceItem.of_person_face(f, p.id) for f in reversed(p.faces)]
            for n in range(1, page_count(len(faces), FACES_PER_PAGE) + 1):
                page = slice_page(faces, n, FACES_PER_PAGE)
                rel = person_file(p.id, n)
                yield rel, pages.person_page(self.links(rel, entries), self.summary, card, page)
        yield from self._lists(cards, labels, shown)

    def _lists(
        self, cards: list[Card], labels: Mapping[int, str], shown: Mapping[int, str]
    ) -> Iterator[tuple[str, str]]:
        n_cards = page_count(len(cards), CARDS_PER_PAGE)
        for n in range(1, n_cards + 1):
            page = slice_page(cards, n, CARDS_PER_PAGE)
            rel = index_file(n)
            links = self.links(rel, shown)
            yield rel, pages.index_page(links, self.summary, page, self.suggestions, labels, conflicts=self.conflicts)
        n_doubt = page_count(len(self.doubts), FACES_PER_PAGE)
        for n in range(1, n_doubt + 1):
            doubts = slice_page(self.doubts, n, FACES_PER_PAGE)
            rel = doubt_file(n)
            yield rel, pages.doubt_page(self.links(rel, shown), self.summary, doubts, labels)
        unknown = next((p for p in self.people if p.id is None), None)
        faces = [FaceItem.of_person_face(f, None) for f in unknown.faces] if unknown else []
        entries = self.entries_of(unknown) if unknown else {}
        n_unknown = page_count(len(faces), FACES_PER_PAGE)
        for n in range(1, n_unknown + 1):
            rel = unknown_file(n)
            yield rel, pages.unknown_page(self.links(rel, entries), self.summary, slice_page(faces, n, FACES_PER_PAGE))


def write_site(
    site: Site, previous: Mapping[str, str], warnings: list[str], on_page: Callable[[int], None] | None = None
) -> set[str]:
    """Write the pages of ``site`` that may be written; returns the files written.
    ``on_page(done)``: called after each page."""
    written: set[str] = set()
    for done, (rel, text) in enumerate(site.render(), start=1):
        if on_page is not None:
            on_page(done)
        path = site.dest / rel
        if not page_is_ours(path, rel in previous):
            warn(warnings, path, "not written: a file that photocluster did not write is in the way")
            continue
        if "/" in rel:
            check_inside(site.dest, rel, (2,))
            path.parent.mkdir(exist_ok=True)
        write_page(path, text)
        written.add(rel)
    return written


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
