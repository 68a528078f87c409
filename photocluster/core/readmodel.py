"""The review's read model: what the review pages show, as plain frozen data.

Persons as cards, faces as items, faces in doubt, the library's summary, a page of any of
them, and the suggestions and tag conflicts the index lists. The use cases build them
(:mod:`photocluster.app.browse`, :mod:`photocluster.app.suggest`,
:mod:`photocluster.app.tags`); the writers render them (:mod:`photocluster.exporter.pages`)
without importing a use case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from photocluster.core.types import Box, Person, PersonFace, person_label

T = TypeVar("T")

CARDS_PER_PAGE = 120  # persons on an index page
FACES_PER_PAGE = 240  # faces on a person's page, the doubt page, the unknown page


@dataclass(frozen=True)
class FaceItem:
    """A face as a page shows it. ``distance``: to its person's centre (NaN: unknown face)."""

    id: int
    person_id: int | None
    photo_id: int
    photo_path: Path
    box: Box
    distance: float
    taken: str | None = None  # the day its photo was taken (YYYY-MM-DD), for the age shown

    @classmethod
    def of_person_face(cls, face: PersonFace, person_id: int | None) -> FaceItem:
        return cls(face.face_id, person_id, face.photo_id, face.photo_path, face.box, face.distance, face.taken)


@dataclass(frozen=True)
class Card:
    """A person on the index: counts and the face nearest its centre (``cover``)."""

    id: int
    name: str | None
    faces: int
    photos: int
    cover: FaceItem | None
    ignored: bool = False
    born: str | None = None  # birth date (YYYY-MM-DD): the person's page gives the age at each photo

    @property
    def label(self) -> str:
        return person_label(self.id, self.name)


def cover_of(faces: list[FaceItem]) -> FaceItem | None:
    """A card's cover: of ``faces``, the one nearest the person's centre."""
    return min(faces, key=lambda f: (f.distance, f.id)) if faces else None


def card_of_person(person: Person) -> Card:
    """A listed person (see :func:`photocluster.app.listing.persons`) as a card."""
    assert person.id is not None
    cover = cover_of([FaceItem.of_person_face(f, person.id) for f in person.faces])
    return Card(person.id, person.name, len(person.faces), person.photo_count, cover, person.ignored, person.born)


@dataclass(frozen=True)
class Doubt:
    """A face in doubt: the face, its person, the nearest other person and the score."""

    face: FaceItem
    nearest_person_id: int | None
    nearest_distance: float
    score: float


@dataclass(frozen=True)
class Summary:
    """The library in numbers, for every page's header."""

    persons: int
    faces: int  # in persons
    unknown: int
    doubts: int
    threshold: float | None = None
    min_size: int | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    """Page ``number`` (from 1) of ``pages``; ``total`` items in all."""

    items: list[T]
    number: int
    pages: int
    total: int


def page_count(total: int, per_page: int) -> int:
    return max(1, math.ceil(total / per_page))


def clamp_page(number: int, total: int, per_page: int) -> int:
    return min(max(1, number), page_count(total, per_page))


def slice_page(items: list[T], number: int, per_page: int) -> Page[T]:
    number = clamp_page(number, len(items), per_page)
    start = (number - 1) * per_page
    return Page(items[start : start + per_page], number, page_count(len(items), per_page), len(items))


@dataclass(frozen=True)
class Suggestion:
    """Persons ``a`` and ``b`` may be one: their faces are ``distance`` apart on average."""

    a: int
    b: int
    distance: float
    names: tuple[str | None, str | None]
    faces: tuple[int, int]
    examples: tuple[str | None, str | None]

    def as_dict(self) -> dict[str, object]:
        return {
            "a": {"id": self.a, "name": self.names[0], "faces": self.faces[0], "example": self.examples[0]},
            "b": {"id": self.b, "name": self.names[1], "faces": self.faces[1], "example": self.examples[1]},
            "distance": round(self.distance, 4),
        }


@dataclass(frozen=True)
class Conflict:
    """A tag whose face photocluster puts with someone else: in a person of another name
    (``kind`` "person": a correction or clustering moved it; "weak": a Takeout name), or
    nearer the faces of another named person than those of its own name (``kind`` "model")."""

    kind: str
    path: str
    name: str
    face_id: int
    person_id: int | None
    person_name: str | None
    distance: float | None = None
    own_distance: float | None = None

    def as_dict(self) -> dict[str, object]:
        d = dict(self.__dict__)
        for k in ("distance", "own_distance"):
            d[k] = None if d[k] is None else round(float(d[k]), 4)
        return d

    def describe(self) -> str:
        who = self.person_name or ("no person" if self.person_id is None else f"person {self.person_id}")
        if self.kind in ("person", "weak"):
            tagged = "tagged" if self.kind == "person" else "named (Takeout)"
            return f"{self.path}: face {self.face_id} is {tagged} {self.name!r} but is in {who}"
        return (
            f"{self.path}: face {self.face_id} is tagged {self.name!r} but looks like {who} "
            f"({self.distance:.2f} from {who}'s faces, {self.own_distance:.2f} from {self.name}'s)"
        )


@dataclass(frozen=True)
class Candidate:
    """A face of a person's confirm queue ("is this X?"): ``member`` (in the person, not
    pinned: is it really?) or not (in no person: is it?). ``distance``: to the person's centre
    (for a member, the centre of its other faces); ``affected``: the faces an answer likely
    moves (this one and the queue's faces close to it); ``priority``: how much an answer is
    expected to change (see :func:`photocluster.app.curate.confirm_queue`)."""

    face: FaceItem
    member: bool
    distance: float
    affected: int
    priority: float


@dataclass(frozen=True)
class PhotoFace:
    """A face on a photo's page: the face, its person (id and label; None: unknown) and
    whether the user drew it."""

    face: FaceItem
    person_id: int | None
    person_label: str | None
    added: bool


@dataclass(frozen=True)
class PhotoView:
    """A photo's page: the photo (its size as displayed) and its faces."""

    id: int
    path: Path
    width: int
    height: int
    faces: list[PhotoFace]
