"""The user's corrections: name, merge, move, remove, ignore, born, undo.

Each is one transaction, recorded with the rows it changed (``photocluster history``,
``photocluster undo``), and binds every later clustering through pins (this face is this
person) and rejections (this face is never this person); see app.recluster. The SQL of
each lives in :mod:`photocluster.store.corrections`.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from photocluster.core.ages import parse_birth
from photocluster.core.errors import NameTakenError, NotFoundError, UsageError
from photocluster.core.ids import MAX_ID, is_id, parse_id
from photocluster.core.types import person_label
from photocluster.store import Store


@dataclass(frozen=True)
class Correction:
    command: str
    person_id: int | None
    faces: int
    note: str = ""  # what became of the names, in words (merge)

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


def name_person(store: Store, person: str, name: str, *, duplicate: bool = False) -> Correction:
    """Name a person. A name another person has already raises :class:`NameTakenError`
    (they may be one person: merge them), unless ``duplicate``: two people of one name."""
    pid = resolve_person(store, person)
    clean = " ".join(name.split())
    if not clean:
        raise UsageError("a name cannot be empty")
    holders = [p for p in store.persons_named(clean) if p != pid]
    if holders and not duplicate:
        raise NameTakenError(pid, store.names_of(holders[:1]).get(holders[0]) or clean, holders)
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
    _check_merge_ages(store, tid, sources)
    command = f"merge {tid} {' '.join(map(str, sources))}"
    names = store.names_of([tid, *sources])
    faces = store.merge_persons(tid, sources, command=command)
    return Correction(command, tid, faces, _merge_note(tid, sources, names))


def _merge_note(target: int, sources: list[int], names: dict[int, str | None]) -> str:
    """Which name stays and which go, as the merge decides: the target's, else the first
    among the others'."""
    joined = " and ".join(f"person {s}" for s in sources)
    head = f"{joined} joined person {target}"
    giver = target if names.get(target) else next((s for s in sources if names.get(s)), None)
    if giver is None:
        return f"{head} (none of them had a name)"
    kept = names[giver]
    head += f"; the name {kept!r} stays" + ("" if giver == target else f" (person {giver}'s)")
    gone = [f"{names[s]!r} (person {s})" for s in sources if names.get(s) and names[s] != kept]
    return head + (f", {' and '.join(gone)} {'goes' if len(gone) == 1 else 'go'}" if gone else "")


def move_face(store: Store, face_id: int, person: str) -> Correction:
    """The face is ``person``'s, for good; it will not rejoin the person it leaves. Refused
    when its photo was taken before the person's birth."""
    return move_faces(store, [face_id], person)


def move_faces(store: Store, face_ids: Sequence[int], person: str) -> Correction:
    """The faces are ``person``'s, for good: one correction (``undo`` reverts all of it),
    all or nothing (every face is checked, its date against a birth date too, before any
    moves). Faces already there stay."""
    current = _faces_of(store, face_ids)
    pid = resolve_person(store, person)
    moving = {f: p for f, p in current.items() if p != pid}
    check_ages(store, pid, list(moving))  # none moves when one cannot
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


def check_ages(store: Store, person_id: int, face_ids: list[int], born: tuple[int, dt.date] | None = None) -> None:
    """Refuse (:class:`UsageError`) to put in the person a face photographed before its
    birth, naming the photo and both dates. ``born``: (the person whose birth it is, the
    date), when not the person's own."""
    if born is None:
        own = store.birth_of(person_id)
        born = None if own is None else (person_id, own)
    if born is None:
        return
    owner, birth = born
    for fid, (path, day) in sorted(store.face_days(face_ids).items()):
        if day < birth:
            who = person_label(owner, store.names_of([owner]).get(owner))
            raise UsageError(
                f"{os.fsdecode(path)}: face {fid} is in a photo taken {day.isoformat()}, "
                f"before {who} was born ({birth.isoformat()}); not done"
            )


def _check_merge_ages(store: Store, target: int, sources: list[int]) -> None:
    """Persons with different birth dates are two people; with one birth date among them,
    no face of the merge may be dated before it."""
    births = {p: b for p in [target, *sources] if (b := store.birth_of(p)) is not None}
    if len(set(births.values())) > 1:
        dates = ", ".join(f"person {p} born {b.isoformat()}" for p, b in births.items())
        raise UsageError(f"cannot merge persons with different birth dates ({dates})")
    if births:
        owner, born = next(iter(births.items()))
        for pid in [target, *sources]:
            check_ages(store, pid, store.person_face_ids(pid), (owner, born))


def set_born(store: Store, person: str, born: str | None) -> Correction:
    """The person was born on ``born`` (``YYYY-MM-DD``; None: forget it). A fact every later
    clustering, recognition, suggestion and correction keeps: no face in a photo taken before
    it is theirs. Its faces dated before it leave the person now (``faces`` counts them)."""
    pid = resolve_person(store, person)
    day = None if born is None else parse_birth(born)
    command = f"born {pid} {'--clear' if day is None else day.isoformat()}"
    taken_out = store.set_birth(pid, day, command=command)
    return Correction(command, pid, len(taken_out))


@dataclass(frozen=True)
class LoggedCorrection:
    """One correction of the log: its number (``undo ID``), when it was made, its command."""

    id: int
    at: float
    command: str
    undone: bool

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def to_undo(store: Store, correction_id: int | None = None) -> LoggedCorrection:
    """The correction :func:`undo` would revert: ``correction_id``, or the latest one not
    undone yet. Raises, saying why, when there is none or it cannot be undone: it is
    already undone, or a later correction changed the same persons or faces since."""
    entry = store.correction_entry(correction_id)
    if entry is None:
        if correction_id is None:
            raise NotFoundError("nothing to undo: every correction is undone, or none was made")
        raise NotFoundError(f"no correction #{correction_id} (see `photocluster history`)")
    found = LoggedCorrection(*entry)
    if found.undone:
        raise UsageError(f"correction #{found.id} ({found.command}) is already undone")
    blockers = store.undo_blockers(found.id)
    if blockers:
        later = ", ".join(f"#{cid} ({command})" for cid, command in blockers)
        raise UsageError(
            f"correction #{found.id} ({found.command}) cannot be undone while later corrections of the same "
            f"persons or faces stand: undo {later} first"
        )
    return found


def undone_since(store: Store, correction: LoggedCorrection) -> list[LoggedCorrection]:
    """The corrections after ``correction`` that are undone already, newest first: the
    ones a person may expect ``undo`` to revert again."""
    return [
        LoggedCorrection(cid, at, command, undone)
        for cid, at, command, undone in store.history_after(correction.id)
        if undone
    ]


def undo(store: Store, correction_id: int | None = None) -> str:
    """Revert correction ``correction_id``, or the latest one not undone yet; returns its
    command. Raises as :func:`to_undo` does when it cannot."""
    found = to_undo(store, correction_id)
    command = store.undo(found.id)
    if command is None:  # undone or built upon meanwhile, by another process
        to_undo(store, found.id)
        raise UsageError(f"correction #{found.id} changed meanwhile: nothing was undone")
    return command


def history(store: Store, limit: int = 50) -> list[dict[str, object]]:
    return [
        {"id": cid, "at": at, "command": command, "undone": undone} for cid, at, command, undone in store.history(limit)
    ]
