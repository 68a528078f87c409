"""The user's corrections: name, merge, move, remove, ignore, undo.

Each is one transaction, recorded with the rows it changed (``photocluster history``,
``photocluster undo``), and binds every later clustering through pins (this face is this
person) and rejections (this face is never this person); see app.recluster. The SQL of
each lives in :mod:`photocluster.store.corrections`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from photocluster.core.errors import NotFoundError, UsageError
from photocluster.core.ids import MAX_ID, is_id, parse_id
from photocluster.store import Store


@dataclass(frozen=True)
class Correction:
    command: str
    person_id: int | None
    faces: int

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def resolve_person(store: Store, ref: str) -> int:
    """A person given by id (``12``, ``person_0012``) or by name (case-insensitive).

    Digits that are no id (``²``, ``2**63``) are a name, if a person has it, else a
    :class:`UsageError` saying why they are no id."""
    text = ref.strip()
    digits = text.removeprefix("person_")
    if is_id(digits):
        pid = int(digits)
        if store.person_exists(pid):
            return pid
        if text == digits and not store.persons_named(text):
            raise NotFoundError(f"no person with id {pid}")
    found = store.persons_named(text)
    if not found and digits.isdigit():
        parse_id(digits, "a person id")  # raises: why these digits are no id
    if not found:
        raise NotFoundError(f"no person named {text!r} (use an id from `photocluster clusters`)")
    if len(found) > 1:
        raise UsageError(f"{len(found)} persons are named {text!r} (ids {', '.join(map(str, found))}): use an id")
    return found[0]


def face_id_of(ref: str | int) -> int:
    """A face id typed by a person (see :func:`photocluster.core.ids.parse_id`)."""
    return ref if isinstance(ref, int) else parse_id(ref, "a face id")


def _face(store: Store, face_id: int) -> tuple[int, int | None]:
    if not 0 <= face_id <= MAX_ID:
        raise NotFoundError(f"no face with id {face_id}")
    row = store.face_row(face_id)
    if row is None:
        raise NotFoundError(f"no face with id {face_id}")
    return row


def name_person(store: Store, person: str, name: str) -> Correction:
    pid = resolve_person(store, person)
    clean = " ".join(name.split())
    if not clean:
        raise UsageError("a name cannot be empty")
    command = f"name {pid} {clean!r}"
    store.rename_person(pid, clean, command=command)
    return Correction(command, pid, len(store.person_face_ids(pid)))


def merge_persons(store: Store, target: str, others: list[str]) -> Correction:
    """All faces of ``others`` become ``target``'s, pinned there for good. The target keeps
    its name; when it has none it takes the first name among the others."""
    tid = resolve_person(store, target)
    sources = [resolve_person(store, o) for o in others]
    sources = [s for s in dict.fromkeys(sources) if s != tid]
    if not sources:
        raise UsageError("merge needs at least one other person")
    command = f"merge {tid} {' '.join(map(str, sources))}"
    faces = store.merge_persons(tid, sources, command=command)
    return Correction(command, tid, faces)


def move_face(store: Store, face_id: int, person: str) -> Correction:
    """The face is ``person``'s, for good; it will not rejoin the person it leaves."""
    return move_faces(store, [face_id], person)


def move_faces(store: Store, face_ids: Sequence[int], person: str) -> Correction:
    """The faces are ``person``'s, for good: one correction (``undo`` reverts all of it),
    all or nothing (every face is checked before any moves). Faces already there stay."""
    current = _faces_of(store, face_ids)
    pid = resolve_person(store, person)
    moving = {f: p for f, p in current.items() if p != pid}
    if not moving:
        raise UsageError(f"{_face_words(list(current))} already in person {pid}")
    command = f"move {_id_list(moving)} {pid}"
    store.move_faces(moving, pid, command=command)
    return Correction(command, pid, len(moving))


def remove_face(store: Store, face_id: int) -> Correction:
    """The face becomes unknown and never rejoins the person it was in."""
    return remove_faces(store, [face_id])


def remove_faces(store: Store, face_ids: Sequence[int]) -> Correction:
    """The faces become unknown and never rejoin the persons they were in: one correction,
    all or nothing. Faces already in no person stay as they are."""
    current = _faces_of(store, face_ids)
    leaving = {f: p for f, p in current.items() if p is not None}
    if not leaving:
        raise UsageError(f"{_face_words(list(current))} not in any person")
    command = f"remove {_id_list(leaving)}"
    store.remove_faces(leaving, command=command)
    persons = set(leaving.values())
    return Correction(command, persons.pop() if len(persons) == 1 else None, len(leaving))


def _faces_of(store: Store, face_ids: Sequence[int]) -> dict[int, int | None]:
    """Each face's person now, every face checked first (the first unknown id raises)."""
    ids = list(dict.fromkeys(face_ids))
    if not ids:
        raise UsageError("select one face or more")
    return {f: _face(store, f)[1] for f in ids}


def _face_words(ids: list[int]) -> str:
    return f"face {ids[0]} is" if len(ids) == 1 else f"faces {_id_list(ids)} are"


def _id_list(ids: Iterable[int]) -> str:
    return ",".join(map(str, ids))


def ignore_person(store: Store, person: str, ignored: bool = True) -> Correction:
    """Strangers in the background: hidden from listings and exports unless asked for."""
    pid = resolve_person(store, person)
    command = f"{'ignore' if ignored else 'unignore'} {pid}"
    faces = store.set_person_ignored(pid, ignored, command=command)
    return Correction(command, pid, faces)


def undo(store: Store) -> str:
    command = store.undo()
    if command is None:
        raise NotFoundError("nothing to undo")
    return command


def history(store: Store, limit: int = 50) -> list[dict[str, object]]:
    return [
        {"id": cid, "at": at, "command": command, "undone": undone} for cid, at, command, undone in store.history(limit)
    ]
