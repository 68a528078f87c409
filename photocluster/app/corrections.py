"""The user's corrections: name, merge, move, remove, ignore, born, undo.

Each is one transaction, recorded with the rows it changed (``photocluster history``,
``photocluster undo``), and binds every later clustering through pins (this face is this
person) and rejections (this face is never this person); see app.recluster. The SQL of
each lives in :mod:`photocluster.store.corrections`.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

from photocluster.core.ages import parse_birth
from photocluster.core.errors import NameTakenError, NotFoundError, UsageError
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
    """A person given by id (``12``, ``person_0012``) or by name (case-insensitive)."""
    text = ref.strip()
    digits = text.removeprefix("person_")
    if digits.isdigit():
        pid = int(digits)
        if store.person_exists(pid):
            return pid
        if text == digits and not store.persons_named(text):
            raise NotFoundError(f"no person with id {pid}")
    found = store.persons_named(text)
    if not found:
        raise NotFoundError(f"no person named {text!r} (use an id from `photocluster clusters`)")
    if len(found) > 1:
        raise UsageError(f"{len(found)} persons are named {text!r} (ids {', '.join(map(str, found))}): use an id")
    return found[0]


def _face(store: Store, face_id: int) -> tuple[int, int | None]:
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
    _, current = _face(store, face_id)
    pid = resolve_person(store, person)
    if current == pid:
        raise UsageError(f"face {face_id} is already in person {pid}")
    check_ages(store, pid, [face_id])
    command = f"move {face_id} {pid}"
    store.move_face(face_id, pid, current, command=command)
    return Correction(command, pid, 1)


def remove_face(store: Store, face_id: int) -> Correction:
    """The face becomes unknown and never rejoins the person it was in."""
    _, current = _face(store, face_id)
    if current is None:
        raise UsageError(f"face {face_id} is not in any person")
    command = f"remove {face_id}"
    store.remove_face(face_id, current, command=command)
    return Correction(command, current, 1)


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
