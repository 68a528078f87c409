"""Persons named by the weak labels of their faces: Takeout names on one-face photos.

A scan keeps such a name beside the face (:mod:`photocluster.app.tags`) without pinning it
anywhere; each clustering then names the unnamed persons whose weak labels agree. Kept apart
from the tags' import, so that a clustering run loads neither the tag readers nor the detector.
"""

from __future__ import annotations

from collections import defaultdict

from photocluster.store import Store


def name_from_weak_labels(store: Store, min_faces: int = 2) -> int:
    """Name each unnamed person whose weak labels (Takeout names on one-face photos) all
    give one name, on ``min_faces`` faces or more, when no other person has that name.
    Returns the number of persons named."""
    by_person: dict[int, list[str]] = defaultdict(list)
    named: dict[int, str | None] = {}
    for person, name, person_name in store.weak_labels():
        by_person[person].append(name)
        named[person] = person_name
    taken = {n.casefold() for n in store.person_names().values() if n}
    names: dict[int, str] = {}
    for person, labels in by_person.items():
        agreed = {n.casefold() for n in labels}
        if (
            named[person] is None
            and len(labels) >= min_faces
            and len(agreed) == 1
            and labels[0].casefold() not in taken
        ):
            names[person] = labels[0]
            taken.add(labels[0].casefold())
    if names:
        store.name_persons(names)
    return len(names)
