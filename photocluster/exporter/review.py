"""The review page: ``index.html`` in the export folder.

One static file, its CSS inline, no script and nothing fetched from the network: it opens
from the file system in any browser. First the faces most in doubt, then every person
(largest first) as a row of face thumbnails, then the unknown faces. Every face shows its
id and every person its id, the numbers the correction commands take. Each thumbnail
links to its photo. Every text and attribute value goes through :func:`html.escape`.
The thumbnails it shows are cut by :mod:`photocluster.exporter.thumbnails`.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from photocluster import __version__
from photocluster.core.files import atomic_write
from photocluster.grouping.doubt import DoubtfulFace

if TYPE_CHECKING:
    from photocluster.app.suggest import Suggestion
    from photocluster.app.tags import Conflict

_EAGER = 120  # thumbnails loaded at once; later ones load as they scroll into view


def _text(value: object) -> str:
    """Escaped for HTML text and attribute values. File names that are not UTF-8 show
    replacement characters (their links keep the exact bytes)."""
    s = str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return html.escape(s, quote=True)


def _href(rel: str) -> str:
    """A relative URL for a path inside the export folder, byte-exact."""
    return quote(os.fsencode(rel), safe="/")


def _photo_href(face: Mapping[str, Any], missing: set[str]) -> str:
    """The photo's entry in the export folder, or the original when the entry is not there."""
    if face["file"] not in missing:
        return _href(face["file"])
    return Path(face["photo"]).as_uri()


def _person_label(person: Mapping[str, Any]) -> str:
    return person["name"] or f"person_{person['id']:04d}"


def _img(face: Mapping[str, Any], n: int) -> str:
    alt = f"face {face['id']}"
    if not face.get("thumbnail"):
        return f'<span class="nothumb" title="{_text(alt)}">no preview</span>'
    lazy = "" if n < _EAGER else ' loading="lazy"'
    return f'<img src="{_href(face["thumbnail"])}" alt="{_text(alt)}" width="96" height="96"{lazy}>'


class _Page:
    def __init__(self, missing: set[str]) -> None:
        self.missing = missing
        self.images = 0

    def face(self, face: Mapping[str, Any], caption: str, extra_class: str = "", anchor: str = "") -> str:
        title = f"{face['photo']}  box {face['box']}"
        cls = f"face {extra_class}".strip()
        ident = f' id="{anchor}"' if anchor else ""
        html_ = (
            f'<figure class="{cls}"{ident} data-face-id="{int(face["id"])}">'
            f'<a href="{_text(_photo_href(face, self.missing))}" title="{_text(title)}">{_img(face, self.images)}</a>'
            f"<figcaption>{caption}</figcaption></figure>"
        )
        self.images += 1
        return html_


def _distance(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.2f}"


def render_page(
    index: Mapping[str, Any],
    doubts: Sequence[DoubtfulFace] = (),
    missing: Iterable[str] = (),
    suggestions: Sequence[Suggestion] = (),
    conflicts: Sequence[Conflict] = (),
) -> str:
    """The review page for an ``index.json`` document (see ``schema/index.schema.json``).

    ``doubts`` come first (see :func:`photocluster.app.recluster.doubtful_faces`); ``missing``
    lists entries (``folder/file``) the export could not write, whose thumbnails link to
    the original photo instead. ``suggestions`` (see :func:`photocluster.app.suggest.suggest`)
    are listed after the doubtful faces, as questions with the commands that answer them;
    then the face tags photocluster disagrees with (:func:`photocluster.app.tags.tag_conflicts`).
    """
    page = _Page(set(missing))
    persons: list[Mapping[str, Any]] = list(index["persons"])
    unknown: list[Mapping[str, Any]] = list(index["unknown"]["faces"])
    by_face = {int(f["id"]): f for p in persons for f in p["faces"]}
    shown = [d for d in doubts if d.face_id in by_face]
    out = _header(index, persons, unknown, len(shown))
    labels = {int(p["id"]): _person_label(p) for p in persons}
    out += _doubt_section(page, shown, by_face, labels)
    out += _suggestion_section([s for s in suggestions if s.a in labels and s.b in labels], labels)
    out += _conflict_section(page, [c for c in conflicts if c.face_id in by_face], by_face, labels)
    for p in persons:
        out += _person_section(page, p)
    out += _unknown_section(page, unknown)
    out.append(
        f'<footer>Written by photocluster {_text(__version__)}. Data: <a href="index.json">index.json</a>.</footer>'
    )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _header(
    index: Mapping[str, Any], persons: list[Mapping[str, Any]], unknown: list[Mapping[str, Any]], n_doubts: int
) -> list[str]:
    """The page up to ``<main>``: title, summary, how to correct, and the navigation."""
    n_faces = sum(len(p["faces"]) for p in persons)
    photos = {f["photo"] for p in persons for f in p["faces"]} | {f["photo"] for f in unknown}
    title = f"photocluster review: {len(persons)} persons, {n_faces + len(unknown)} faces"
    settings = []
    if index.get("threshold") is not None:
        settings.append(f"threshold {index['threshold']}")
    if index.get("min_size") is not None:
        settings.append(f"min size {index['min_size']}")
    nav = [f'<a href="#doubt">In doubt ({n_doubts})</a>']
    nav += [f'<a href="#person-{int(p["id"])}">{_text(_person_label(p))} ({len(p["faces"])})</a>' for p in persons]
    nav.append(f'<a href="#unknown">Unknown ({len(unknown)})</a>')
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="photocluster {_text(__version__)}">',
        f"<title>{_text(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<header><h1>Faces by person</h1>",
        f'<p class="summary"><span id="n-persons">{len(persons)}</span> persons · '
        f'<span id="n-faces">{n_faces}</span> faces in persons · '
        f'<span id="n-unknown">{len(unknown)}</span> unknown faces · {len(photos)} photos'
        + (f" · {_text(', '.join(settings))}" if settings else "")
        + "</p>",
        '<p class="help">Every face shows its id (<b>#12</b>), every person its id '
        '(<span class="pid">person 3</span>): type them into the corrections: '
        "<code>photocluster name PERSON NAME</code>, "
        "<code>photocluster merge PERSON OTHER...</code>, <code>photocluster move FACE PERSON</code>, "
        "<code>photocluster remove FACE</code>. Click a face to open its photo.</p>",
        f"<nav>{' '.join(nav)}</nav></header><main>",
    ]


def _doubt_section(
    page: _Page, shown: list[DoubtfulFace], by_face: Mapping[int, Mapping[str, Any]], labels: Mapping[int, str]
) -> list[str]:
    def person_link(pid: int | None) -> str:
        if pid is None or pid not in labels:
            return "no other person"
        return f'<a href="#person-{pid}">{_text(labels[pid])}</a> <span class="pid">(person {pid})</span>'

    out = ['<section id="doubt" class="group doubt"><h2>Faces most in doubt</h2>']
    if not shown:
        out.append('<p class="note">No face stands out: every face is well inside its person.</p>')
        out.append("</section>")
        return out
    out.append(
        '<p class="note">Far from the centre of their person, or nearly as close to another person: '
        "look at these first. Numbers are descriptor distances (same person: usually under 0.6).</p>"
    )
    out.append('<div class="faces">')
    for d in shown:
        nearest = "no other person"
        if d.nearest_person_id is not None:
            other = person_link(d.nearest_person_id)
            nearest = f'<span class="d">{_distance(d.nearest_distance)}</span> from {other}'
        caption = (
            f"<b>#{d.face_id}</b> in {person_link(d.person_id)}<br>"
            f'<span class="d">{_distance(d.distance)}</span> from its centre<br>{nearest}'
        )
        out.append(page.face(by_face[d.face_id], caption, "doubtful", anchor=f"doubt-{d.face_id}"))
    out.append("</div>")
    out.append("</section>")
    return out


def _suggestion_section(found: Sequence[Suggestion], labels: Mapping[int, str]) -> list[str]:
    if not found:
        return []
    out = [
        '<section id="suggest" class="group suggest"><h2>Same person?</h2>',
        '<p class="note">Pairs of persons whose faces are close on average, most likely first. '
        "Yes: <code>photocluster merge A B</code>; no, two people: answer with "
        "<code>photocluster suggest --ask</code>.</p><ol>",
    ]
    for s in found:
        a, b = (
            f'<a href="#person-{p}">{_text(labels[p])}</a> <span class="pid">(person {p})</span>' for p in (s.a, s.b)
        )
        out.append(
            f'<li data-pair="{s.a}-{s.b}">{a} and {b}: <span class="d">{_distance(s.distance)}</span> apart on '
            f"average · <code>photocluster merge {s.a} {s.b}</code></li>"
        )
    out.append("</ol></section>")
    return out


def _conflict_section(
    page: _Page, found: Sequence[Conflict], by_face: Mapping[int, Mapping[str, Any]], labels: Mapping[int, str]
) -> list[str]:
    """Faces whose tag (from Lightroom, digiKam, Picasa...) names someone photocluster does not see there."""
    if not found:
        return []
    out = [
        '<section id="conflicts" class="group conflicts"><h2>Face tags in conflict</h2>',
        '<p class="note">The tag you gave the face in another program names one person; photocluster puts the '
        "face with another. Nothing was changed: if the tag is right, <code>photocluster move FACE NAME</code>.</p>",
        '<div class="faces">',
    ]
    for c in found:
        who = _text(c.person_name or "no person")
        if c.person_id is not None and c.person_id in labels:
            who = f'<a href="#person-{c.person_id}">{_text(labels[c.person_id])}</a>'
        verb = "looks like" if c.kind == "model" else "is in"
        caption = f"<b>#{c.face_id}</b> tagged <b>{_text(c.name)}</b><br>{verb} {who}"
        out.append(page.face(by_face[c.face_id], caption, "doubtful", anchor=f"conflict-{c.face_id}"))
    out.append("</div></section>")
    return out


def _person_section(page: _Page, p: Mapping[str, Any]) -> list[str]:
    pid = int(p["id"])
    name = f'<span class="name">{_text(_person_label(p))}</span> <span class="pid">person {pid}</span>'
    out = [
        f'<section id="person-{pid}" class="group person" data-person-id="{pid}"><h2>{name}</h2>',
        f'<p class="counts"><span class="n-faces">{int(p["face_count"])}</span> faces · '
        f'<span class="n-photos">{int(p["photo_count"])}</span> photos · '
        f'folder <a href="{_text(_href(p["folder"]))}/">{_text(p["folder"])}</a></p><div class="faces">',
    ]
    for f in p["faces"]:
        out.append(page.face(f, f'<b>#{int(f["id"])}</b> <span class="d">{_distance(f["distance"])}</span>'))
    out.append("</div></section>")
    return out


def _unknown_section(page: _Page, unknown: list[Mapping[str, Any]]) -> list[str]:
    count = f'<span class="pid">{len(unknown)}</span>'
    out = [f'<section id="unknown" class="group unknown"><h2>Unknown faces {count}</h2>']
    if unknown:
        out.append('<p class="counts">In no person: too few faces alike.</p><div class="faces">')
        out += [page.face(f, f"<b>#{int(f['id'])}</b>") for f in unknown]
        out.append("</div>")
    else:
        out.append('<p class="counts">None.</p>')
    out.append("</section></main>")
    return out


def page_is_ours(page: Path, written_before: bool) -> bool:
    """Whether the export may write the review page at ``page``: not through a link, and
    not over a file someone else put there (``written_before``: an earlier export wrote it)."""
    return not (page.is_symlink() or (page.exists() and not written_before))


def write_page(page: Path, text: str) -> None:
    # Rewritten only when it changed, so an unchanged export leaves the file's mtime alone.
    if not page.exists() or page.read_text(encoding="utf-8", errors="replace") != text:
        atomic_write(page, text)


_CSS = """
:root { color-scheme: light dark; --bg: #fafafa; --fg: #1d1d1f; --muted: #6e6e73; --card: #fff;
  --line: #d2d2d7; --doubt: #d9480f; --link: #0b57d0; }
@media (prefers-color-scheme: dark) { :root { --bg: #161618; --fg: #ececf0; --muted: #a1a1a6;
  --card: #232326; --line: #3a3a3f; --doubt: #ff8a4c; --link: #8ab4f8; } }
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 24px 48px; background: var(--bg); color: var(--fg);
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
a { color: var(--link); text-decoration: none; }
a:hover { text-decoration: underline; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 0 0 2px; }
.summary, .help, .note, .counts { margin: 2px 0 8px; color: var(--muted); }
nav { display: flex; flex-wrap: wrap; gap: 4px 12px; margin: 8px 0 16px; }
.group { border-top: 1px solid var(--line); padding: 12px 0 8px; }
.doubt h2 { color: var(--doubt); }
.pid { color: var(--muted); font-weight: normal; font-size: 13px; }
.faces { display: flex; flex-wrap: wrap; gap: 8px; }
figure.face { margin: 0; width: 104px; padding: 4px; background: var(--card); border: 1px solid var(--line);
  border-radius: 6px; text-align: center; font-size: 12px; overflow-wrap: anywhere; }
figure.doubtful { width: 150px; border-color: var(--doubt); }
figure.face img, .nothumb { display: block; width: 96px; height: 96px; margin: 0 auto 2px; border-radius: 4px;
  object-fit: cover; background: var(--line); }
.nothumb { line-height: 96px; color: var(--muted); }
.d { color: var(--muted); }
code { font-size: 13px; background: var(--card); border: 1px solid var(--line); border-radius: 3px; padding: 0 3px; }
footer { margin-top: 24px; color: var(--muted); font-size: 12px; }
""".strip()
