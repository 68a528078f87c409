"""The review pages as HTML, shared by the static export and the review app.

Four kinds of page, each paged: the index (persons as cards, largest first), a person
(its faces, most doubtful first), the faces most in doubt, and the unknown faces. Where
links point (files in an export folder, or routes of the app) is a :class:`Links`'
business; with ``Links.live`` the pages also carry the forms that correct the library
(rename, merge the selected persons, move or remove the selected faces, ignore, answer a
suggestion, undo). CSS inline, no script, nothing fetched from the network. Every text
and attribute value goes through :func:`text`.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from photocluster.core.readmodel import Card, Doubt, FaceItem, Page, Summary
from photocluster.version import __version__

if TYPE_CHECKING:
    from photocluster.core.readmodel import Conflict, Suggestion

__all__ = ["CSS", "Links", "Summary", "distance", "doubt_page", "index_page", "person_page", "text", "unknown_page"]

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


def text(value: object) -> str:
    """Escaped for HTML text and attribute values. File names that are not UTF-8 show
    replacement characters (links keep their exact bytes)."""
    s = str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return html.escape(s, quote=True)


def _short(label: str, most: int = 200) -> str:
    """A name on a card, cut: however long the names, a page of cards stays small."""
    return label if len(label) <= most else label[: most - 1] + "…"


def distance(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.2f}"


def _head(title: str, links: Links, summary: Summary, message: str = "") -> list[str]:
    nav = [
        f'<a href="{text(links.index())}">Persons ({summary.persons})</a>',
        f'<a href="{text(links.doubt())}" id="nav-doubt">In doubt ({summary.doubts})</a>',
        f'<a href="{text(links.unknown())}" id="nav-unknown">Unknown faces ({summary.unknown})</a>',
    ]
    settings = []
    if summary.threshold is not None:
        settings.append(f"threshold {summary.threshold}")
    if summary.min_size is not None:
        settings.append(f"min size {summary.min_size}")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="photocluster {text(__version__)}">',
        f"<title>{text(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<header><h1>{text(title)}</h1>",
        f'<p class="summary"><span id="n-persons">{summary.persons}</span> persons · '
        f'<span id="n-faces">{summary.faces}</span> faces in persons · '
        f'<span id="n-unknown">{summary.unknown}</span> unknown faces'
        + (f" · {text(', '.join(settings))}" if settings else "")
        + "</p>",
        f"<nav>{' · '.join(nav)}</nav>",
    ]
    if links.live:
        out.append(_form(links, "undo", '<button type="submit" id="undo">Undo the last correction</button>', "inline"))
        if message:
            out.append(f'<p class="message" id="message">{text(message)}</p>')
    else:
        out.append(
            '<p class="help">Every face shows its id (<b>#12</b>), every person its id: type them into the '
            "corrections: <code>photocluster name PERSON NAME</code>, <code>photocluster merge PERSON OTHER...</code>, "
            "<code>photocluster move FACE PERSON</code>, <code>photocluster remove FACE</code>; or correct them "
            "in the browser with <code>photocluster review</code>.</p>"
        )
    out.append("</header><main>")
    return out


def _tail() -> list[str]:
    return [
        f"</main><footer>Written by photocluster {text(__version__)}.</footer>",
        "</body></html>",
    ]


def _form(links: Links, action: str, body: str, cls: str = "") -> str:
    """A POST form of the app with its token."""
    klass = f' class="{cls}"' if cls else ""
    return (
        f'<form method="post" action="{text(links.action(action))}"{klass}>'
        f'<input type="hidden" name="token" value="{text(links.token)}">{body}</form>'
    )


def _pager(page: Page[Any], link: Callable[[int], str]) -> str:
    """Links to the pages of a paged list (``link(number)``): previous, a window, next."""
    if page.pages <= 1:
        return ""
    window = sorted({1, page.pages, *range(max(1, page.number - 3), min(page.pages, page.number + 3) + 1)})
    parts = []
    if page.number > 1:
        parts.append(f'<a rel="prev" href="{text(link(page.number - 1))}">‹ previous</a>')
    last = 0
    for n in window:
        if n > last + 1:
            parts.append("…")
        if n == page.number:
            parts.append(f'<span class="current">{n}</span>')
        else:
            parts.append(f'<a href="{text(link(n))}">{n}</a>')
        last = n
    if page.number < page.pages:
        parts.append(f'<a rel="next" href="{text(link(page.number + 1))}">next ›</a>')
    return f'<nav class="pager" data-page="{page.number}" data-pages="{page.pages}">{" ".join(parts)}</nav>'


def _img(links: Links, face: FaceItem, n: int) -> str:
    src = links.thumb(face)
    alt = f"face {face.id}"
    if not src:
        return f'<span class="nothumb" title="{text(alt)}">no preview</span>'
    lazy = "" if n < _EAGER else ' loading="lazy"'
    return f'<img src="{text(src)}" alt="{text(alt)}" width="96" height="96"{lazy}>'


def _face(links: Links, face: FaceItem, n: int, caption: str, cls: str = "") -> str:
    pick = (
        f'<input type="checkbox" name="face" value="{face.id}" aria-label="select face {face.id}">'
        if links.live
        else ""
    )
    title = f"{face.photo_path}  box {face.box.as_list()}"
    klass = f"face {cls}".strip()
    return (
        f'<figure class="{klass}" data-face-id="{face.id}">'
        f'<a href="{text(links.photo(face))}" title="{text(title)}">{_img(links, face, n)}</a>'
        f"<figcaption>{pick}{caption}</figcaption></figure>"
    )


def _face_actions(links: Links, back: str, can_remove: bool) -> str:
    """The form around a page's faces: move the selected ones to a person, or remove them."""
    remove = '<button type="submit" name="do" value="remove" id="remove">Remove selected</button>' if can_remove else ""
    return (
        f'<p class="actions"><input type="hidden" name="back" value="{text(back)}">'
        '<label>Move selected faces to person <input name="person" id="move-to" size="12" '
        'placeholder="id or name"></label> <button type="submit" name="do" value="move" id="move">Move</button> '
        f"{remove}</p>"
    )


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
    out = _head("Faces by person", links, summary, message)
    if cards.number == 1:
        out += _suggestions(links, suggestions, labels or {})
        out += _conflicts(links, conflicts)
    title = f"Persons {cards.number}/{cards.pages}" if cards.pages > 1 else "Persons"
    out.append(f'<section id="persons" class="group"><h2>{title}</h2>')
    out.append(_pager(cards, links.index))
    grid = ['<div class="cards">']
    for n, c in enumerate(cards.items):
        pick = (
            f'<input type="checkbox" name="persons" value="{c.id}" aria-label="select person {c.id}">'
            if links.live
            else ""
        )
        cover = _img(links, c.cover, n) if c.cover else '<span class="nothumb">no face</span>'
        grid.append(
            f'<article class="card" data-person-id="{c.id}">'
            f'<a href="{text(links.person(c.id))}">{cover}</a>'
            f'<div>{pick}<a href="{text(links.person(c.id))}">'
            f'<span class="name">{text(_short(c.label))}</span></a></div>'
            f'<div class="pid">person {c.id} · <span class="n-faces">{c.faces}</span> faces · '
            f'<span class="n-photos">{c.photos}</span> photos</div></article>'
        )
    grid.append("</div>")
    if links.live:
        merge = (
            '<p class="actions">Merge the selected persons into the first one selected: '
            '<button type="submit" id="merge">Merge selected</button></p>'
        )
        back = f'<input type="hidden" name="back" value="{text(links.index(cards.number))}">'
        out.append(_form(links, "merge", back + merge + "".join(grid)))
    else:
        out += grid
    out.append(_pager(cards, links.index))
    out.append("</section>")
    return "\n".join(out + _tail()) + "\n"


def _suggestions(links: Links, found: Sequence[Suggestion], labels: Mapping[int, str]) -> list[str]:
    shown = [s for s in found if s.a in labels and s.b in labels]
    if not shown:
        return []
    how = (
        "Yes merges the two; no keeps them apart for good."
        if links.live
        else "Yes: <code>photocluster merge A B</code>; no, two people: answer with "
        "<code>photocluster suggest --ask</code>."
    )
    out = [
        '<section id="suggest" class="group suggest"><h2>Same person?</h2>',
        f'<p class="note">Pairs of persons whose faces are close on average, most likely first. {how}</p><ol>',
    ]
    for s in shown:
        a, b = (
            f'<a href="{text(links.person(p))}">{text(labels[p])}</a> <span class="pid">(person {p})</span>'
            for p in (s.a, s.b)
        )
        if links.live:
            pair = f'<input type="hidden" name="a" value="{s.a}"><input type="hidden" name="b" value="{s.b}">'
            buttons = (
                '<button type="submit" name="same" value="yes">Yes, one person</button> '
                '<button type="submit" name="same" value="no">No, two people</button>'
            )
            answer = _form(links, "answer", pair + buttons, "inline")
        else:
            answer = f"<code>photocluster merge {s.a} {s.b}</code>"
        out.append(
            f'<li data-pair="{s.a}-{s.b}">{a} and {b}: <span class="d">{distance(s.distance)}</span> apart on '
            f"average · {answer}</li>"
        )
    out.append("</ol></section>")
    return out


def _conflicts(links: Links, found: Sequence[Conflict]) -> list[str]:
    """Faces whose tag (from Lightroom, digiKam, Picasa...) names someone photocluster does not see there."""
    if not found:
        return []
    how = "move the face from its person's page" if links.live else "<code>photocluster move FACE NAME</code>"
    out = [
        '<section id="conflicts" class="group conflicts"><h2>Face tags in conflict</h2>',
        '<p class="note">The tag you gave the face in another program names one person; photocluster puts the '
        f"face with another. Nothing was changed: if the tag is right, {how}.</p><ul>",
    ]
    for c in found:
        who = text(c.person_name or "no person")
        if c.person_id is not None:
            link = text(links.person(c.person_id))
            who = f'<a href="{link}">{who}</a> <span class="pid">(person {c.person_id})</span>'
        verb = "looks like" if c.kind == "model" else "is in"
        out.append(
            f'<li id="conflict-{c.face_id}">face <b>#{c.face_id}</b> ({text(os.path.basename(c.path))}) tagged '
            f"<b>{text(c.name)}</b> {verb} {who}</li>"
        )
    out.append("</ul></section>")
    return out


def person_page(links: Links, summary: Summary, card: Card, faces: Page[FaceItem], message: str = "") -> str:
    """One person: name, counts and actions, then its faces, most doubtful first."""
    out = _head(f"{card.label} · person {card.id}", links, summary, message)
    out.append(
        f'<section id="person-{card.id}" class="group person" data-person-id="{card.id}">'
        f'<h2><span class="name">{text(card.label)}</span> <span class="pid">person {card.id}</span></h2>'
        f'<p class="counts"><span class="n-faces">{card.faces}</span> faces · '
        f'<span class="n-photos">{card.photos}</span> photos'
        + (" · ignored" if card.ignored else "")
        + " · most doubtful first (farthest from the person's other faces)</p>"
    )
    if links.live:
        who = f'<input type="hidden" name="person" value="{card.id}">'
        rename = (
            f'{who}<label>Name <input name="name" id="name" value="{text(card.name or "")}" size="24"></label> '
            '<button type="submit" id="rename">Rename</button>'
        )
        ignore = (
            f'{who}<button type="submit" id="ignore">{"Show again" if card.ignored else "Ignore (a stranger)"}</button>'
        )
        if card.ignored:
            ignore += '<input type="hidden" name="undo" value="1">'
        out.append(
            '<div class="actions">'
            + _form(links, "rename", rename, "inline")
            + _form(links, "ignore", ignore, "inline")
            + "</div>"
        )
    out.append(_pager(faces, lambda n: links.person(card.id, n)))
    figures = [
        _face(links, f, n, f'<b>#{f.id}</b> <span class="d">{distance(f.distance)}</span>')
        for n, f in enumerate(faces.items)
    ]
    out += _faces_block(links, figures, links.person(card.id, faces.number), can_remove=True)
    out.append(_pager(faces, lambda n: links.person(card.id, n)))
    out.append("</section>")
    return "\n".join(out + _tail()) + "\n"


def _faces_block(links: Links, figures: Iterable[str], back: str, can_remove: bool) -> list[str]:
    body = '<div class="faces">' + "".join(figures) + "</div>"
    if not links.live:
        return [body]
    return [_form(links, "faces", _face_actions(links, back, can_remove) + body)]


def doubt_page(
    links: Links, summary: Summary, doubts: Page[Doubt], labels: Mapping[int, str], message: str = ""
) -> str:
    """The faces most in doubt, most doubtful first."""
    out = _head("Faces most in doubt", links, summary, message)
    out.append('<section id="doubt" class="group doubt"><h2>Faces most in doubt</h2>')
    if not doubts.items:
        out.append('<p class="note">No face stands out: every face is well inside its person.</p></section>')
        return "\n".join(out + _tail()) + "\n"
    out.append(
        '<p class="note">Far from the centre of their person, or nearly as close to another person: '
        "look at these first. Numbers are descriptor distances (same person: usually under 0.6).</p>"
    )

    def person_link(pid: int | None) -> str:
        if pid is None:
            return "no other person"
        label = labels.get(pid, f"person_{pid:04d}")
        return f'<a href="{text(links.person(pid))}">{text(label)}</a> <span class="pid">(person {pid})</span>'

    figures = []
    for n, d in enumerate(doubts.items):
        nearest = "no other person"
        if d.nearest_person_id is not None:
            nearest = f'<span class="d">{distance(d.nearest_distance)}</span> from {person_link(d.nearest_person_id)}'
        caption = (
            f"<b>#{d.face.id}</b> in {person_link(d.face.person_id)}<br>"
            f'<span class="d">{distance(d.face.distance)}</span> from its centre<br>{nearest}'
        )
        figures.append(_face(links, d.face, n, caption, "doubtful"))
    out.append(_pager(doubts, links.doubt))
    out += _faces_block(links, figures, links.doubt(doubts.number), can_remove=True)
    out.append(_pager(doubts, links.doubt))
    out.append("</section>")
    return "\n".join(out + _tail()) + "\n"


def unknown_page(links: Links, summary: Summary, faces: Page[FaceItem], message: str = "") -> str:
    """The faces in no person."""
    out = _head("Unknown faces", links, summary, message)
    out.append(
        f'<section id="unknown" class="group unknown"><h2>Unknown faces <span class="pid">{faces.total}</span></h2>'
    )
    if not faces.items:
        out.append('<p class="counts">None.</p></section>')
        return "\n".join(out + _tail()) + "\n"
    out.append('<p class="counts">In no person: too few faces alike.</p>')
    out.append(_pager(faces, links.unknown))
    figures = [_face(links, f, n, f"<b>#{f.id}</b>") for n, f in enumerate(faces.items)]
    out += _faces_block(links, figures, links.unknown(faces.number), can_remove=False)
    out.append(_pager(faces, links.unknown))
    out.append("</section>")
    return "\n".join(out + _tail()) + "\n"


CSS = """
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
nav { display: flex; flex-wrap: wrap; gap: 4px 12px; margin: 8px 0 12px; }
.pager .current { font-weight: bold; }
.message { padding: 6px 10px; background: var(--card); border: 1px solid var(--line); border-radius: 6px; }
form.inline { display: inline-block; margin: 0 8px 8px 0; }
.group { border-top: 1px solid var(--line); padding: 12px 0 8px; }
.doubt h2 { color: var(--doubt); }
.pid { color: var(--muted); font-weight: normal; font-size: 13px; }
.faces, .cards { display: flex; flex-wrap: wrap; gap: 8px; }
article.card { width: 150px; padding: 6px; background: var(--card); border: 1px solid var(--line);
  border-radius: 6px; text-align: center; overflow-wrap: anywhere; }
figure.face { margin: 0; width: 104px; padding: 4px; background: var(--card); border: 1px solid var(--line);
  border-radius: 6px; text-align: center; font-size: 12px; overflow-wrap: anywhere; }
figure.doubtful { width: 150px; border-color: var(--doubt); }
img, .nothumb { display: block; width: 96px; height: 96px; margin: 0 auto 2px; border-radius: 4px;
  object-fit: cover; background: var(--line); }
.nothumb { line-height: 96px; color: var(--muted); }
.d { color: var(--muted); }
code { font-size: 13px; background: var(--card); border: 1px solid var(--line); border-radius: 3px; padding: 0 3px; }
footer { margin-top: 24px; color: var(--muted); font-size: 12px; }
""".strip()
