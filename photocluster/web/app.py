"""The review app as a Starlette application: the review pages, live from the database,
with forms that correct the library.

Safety, since a page in any other tab of the browser, and any local user, can send
requests to 127.0.0.1 (the model is in docs/review.md):

- every request carries this run's session cookie or gets 403; a browser gets it from a
  launch address, once (see :mod:`photocluster.web.auth`); no secret is ever in a URL;
- the ``Host`` must be the address served (no DNS rebinding);
- a state-changing request is a POST whose ``Origin`` (else ``Referer``) is the app's own,
  with the form token; an action is one correction, all or nothing;
- ids in paths and forms are parsed by :func:`photocluster.core.ids.parse_id`: a bad one
  is a 404 or "Not done", never a 500;
- no path from a request is opened: thumbnails and photos are addressed by face id, and a
  photo is read only if it is still the regular file scanned (:mod:`photocluster.web.photos`);
- every text on a page is escaped (the templates of :mod:`photocluster.exporter.pages`
  autoescape), and every response carries headers that forbid framing, scripts, other
  sites' resources, referrers, sniffing and caching (:func:`secure_headers`).

The store is opened in the server's event loop thread and every handler runs there
(``async`` handlers that do not await): SQLite's connection stays in one thread, and
requests are served one at a time, which is what one person reviewing needs.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from photocluster.app import browse, corrections
from photocluster.app.suggest import answer, suggest
from photocluster.app.tags import tag_conflicts
from photocluster.app.thumbs import stored_thumbnail
from photocluster.core.errors import DatabaseError, ImageError, PhotoclusterError, UsageError
from photocluster.core.ids import is_id, parse_id
from photocluster.core.readmodel import FaceItem, Page, Suggestion, Summary
from photocluster.core.types import person_label
from photocluster.detect.thumbnail import THUMB_MEDIA_TYPE, THUMB_PARAMS, face_thumbnail
from photocluster.exporter import pages
from photocluster.store import Store
from photocluster.web import curate
from photocluster.web.auth import Gate, Launch, cookie_name
from photocluster.web.photos import media_type, read_scanned

SUGGESTIONS_SHOWN = 20
_MAX_BODY = 1 << 20  # a form of a page of selected faces is a few kB


class LiveLinks:
    """Links between the app's routes (no secret in any: the session is a cookie); forms
    carry the form token."""

    live = True

    def __init__(self, form_token: str, here: str = "/") -> None:
        self.token = form_token
        self.here = here  # the page being shown, where its forms come back to

    def _to(self, path: str, **params: object) -> str:
        query = {k: v for k, v in params.items() if v not in (None, 1)}
        return f"{path}?{urlencode(query)}" if query else path

    def thumb(self, face: FaceItem) -> str | None:
        return self._to(f"/thumb/{face.id}")

    def photo(self, face: FaceItem) -> str:
        """A face's photo: its page in the app (the boxes of its faces, a box to draw)."""
        return self.photo_page(face.photo_id)

    def photo_file(self, face: FaceItem) -> str:
        return self._to(f"/photo/{face.id}")

    def index(self, number: int = 1) -> str:
        return self._to("/", page=number)

    def person(self, person_id: int, number: int = 1) -> str:
        return self._to(f"/person/{person_id}", page=number)

    def doubt(self, number: int = 1) -> str:
        return self._to("/doubt", page=number)

    def unknown(self, number: int = 1) -> str:
        return self._to("/unknown", page=number)

    def action(self, name: str) -> str:
        return f"/action/{name}"

    # The curation pages (photocluster.web.curate).

    def photo_page(self, photo_id: int) -> str:
        return self._to(f"/photos/{photo_id}")

    def image(self, photo_id: int) -> str:
        return self._to(f"/image/{photo_id}")

    def confirm(self, person_id: int, skip: Sequence[int] = (), view: str = "") -> str:
        return self._to(f"/person/{person_id}/confirm", skip=",".join(map(str, skip)) or None, view=view or None)

    def search(self, query: str = "") -> str:
        return self._to("/search", q=query or None)

    def script(self) -> str:
        return self._to("/static/curate.js")

    def style(self) -> str:
        return self._to("/static/curate.css")


@dataclass
class _State:
    db_path: Path
    store: Store | None = None
    doubts: tuple[int, list[browse.Doubt]] | None = None  # (generation, doubts)
    suggestions: tuple[int, list[Suggestion]] | None = None  # (generation, suggestions)

    def open(self) -> Store:
        if self.store is None:
            self.store = Store(self.db_path)
        return self.store

    def current_doubts(self) -> list[browse.Doubt]:
        """The faces in doubt, found again only after the persons changed."""
        store = self.open()
        generation = store.generation()
        if self.doubts is None or self.doubts[0] != generation:
            self.doubts = (generation, browse.doubts(store))
        return self.doubts[1]

    def current_suggestions(self) -> list[Suggestion]:
        """The "same person?" pairs, found again only after the persons changed (each
        search reads every embedding)."""
        store = self.open()
        generation = store.generation()
        if self.suggestions is None or self.suggestions[0] != generation:
            self.suggestions = (generation, suggest(store, SUGGESTIONS_SHOWN))
        return self.suggestions[1]


def create_app(db_path: str | os.PathLike[str], gate: Gate) -> Starlette:
    """The review app over the database at ``db_path``; requests must carry the session
    cookie of ``gate`` (given for a launch code of ``gate``), forms its form token."""
    state = _State(Path(db_path))

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # The store opens with the first request (in the loop's thread); the command checked
        # the database before serving, and a request that cannot open it gets an error page.
        try:
            yield
        finally:
            if state.store is not None:
                state.store.close()
                state.store = None

    def guarded(handler: Callable[[Request, _State, LiveLinks], Response]) -> Callable[[Request], object]:
        async def endpoint(request: Request) -> Response:
            refused = _refused(request, gate)
            if refused is not None:
                return refused
            if request.method == "POST":
                form = await _form(request)
                if form is None:
                    return _page("Bad request: the form could not be read.", 400)
                if not gate.form(form.get("token", [""])[0]):
                    return _forbidden("the form does not carry this run's token")
                request.state.form = form
            try:
                return handler(request, state, LiveLinks(gate.form_token, _here(request)))
            except PhotoclusterError as exc:
                return _page(str(exc), 400 if isinstance(exc, UsageError) else 500)

        return endpoint

    async def launch(request: Request) -> Response:
        return _launch(request, gate)

    routes = [
        Route("/", guarded(_index)),
        Route("/launch", launch),
        Route("/person/{person_id}", guarded(_person)),
        Route("/doubt", guarded(_doubt)),
        Route("/unknown", guarded(_unknown)),
        Route("/thumb/{face_id}", guarded(_thumb)),
        Route("/photo/{face_id}", guarded(_photo)),
        Route("/action/{name:str}", guarded(_action), methods=["POST"]),
        *curate.routes(guarded),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(SecureHeaders, csp=content_security_policy())
    return app


# -- the checks ------------------------------------------------------------------------

# The Host header of a request for this server: its name, and the port it was reached on.
_HOST = re.compile(r"(?:127\.0\.0\.1|localhost)(?::([0-9]{1,5}))?")


def _page(message: str, status: int) -> Response:
    return HTMLResponse(pages.error_page(message), status_code=status)


def _forbidden(why: str) -> Response:
    return _page(f"Forbidden: {why}.", 403)


def _port(request: Request) -> int | None:
    """The port of a request for this server by name (no DNS rebinding), else None."""
    found = _HOST.fullmatch(request.headers.get("host", ""))
    if found is None:
        return None
    return int(found.group(1) or 80)


def _refused(request: Request, gate: Gate) -> Response | None:
    """403 unless the request is for this server by name and carries the session cookie;
    a POST must also come from one of the app's own pages."""
    port = _port(request)
    if port is None:
        return _forbidden("this server answers to 127.0.0.1 only")
    if not gate.session(request.cookies.get(cookie_name(port))):
        return _forbidden("open the address that photocluster review printed (this browser has no session)")
    if request.method == "POST" and not _from_this_app(request):
        return _forbidden("the request does not say it comes from this app")
    return None


def _from_this_app(request: Request) -> bool:
    """Whether a POST comes from one of the app's own pages: its ``Origin`` is the app's;
    or, where the browser withholds it (``Referrer-Policy: no-referrer`` makes a form's
    Origin ``null``), the browser's own ``Sec-Fetch-Site`` says same-origin, or else the
    Referer is one of the app's addresses."""
    own = f"http://{request.headers['host']}"
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        return origin == own
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    referer = request.headers.get("referer", "")
    return referer == own or referer.startswith(own + "/")


def _launch(request: Request, gate: Gate) -> Response:
    """A launch address: its code, good once, becomes the session cookie and the browser
    goes on to ``/`` (the code leaves the address bar and the history's last entry)."""
    port = _port(request)
    if port is None:
        return _forbidden("this server answers to 127.0.0.1 only")
    if request.method != "GET":
        return _page("Not allowed.", 405)
    home = RedirectResponse("/", status_code=303)
    if gate.session(request.cookies.get(cookie_name(port))):
        return home  # this browser has its session already
    outcome = gate.exchange(request.query_params.get("code", ""))
    if outcome is Launch.USED:
        return _forbidden(
            "this launch address was used already (each is good once); use the browser that opened it, "
            "or run photocluster review again"
        )
    if outcome is not Launch.OK:
        return _forbidden("this launch address is unknown or expired: run photocluster review again")
    home.set_cookie(cookie_name(port), gate.token, httponly=True, samesite="strict", path="/")
    return home


# -- the headers -----------------------------------------------------------------------


def content_security_policy() -> str:
    """What the pages need and nothing more: their one inline style sheet (by its hash) and
    the app's own style sheet and script files (``/static/``: keys, drawing a box, search
    suggestions fetched from the app), images from the app (thumbnails, photos) and data:
    URLs, forms posted to the app; no inline script, no frame, no other site."""
    sample = pages.unknown_page(LiveLinks(""), Summary(0, 0, 0, 0), Page([], 1, 1, 0))
    styles = re.findall(r"<style>(.*?)</style>", sample, flags=re.DOTALL)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in styles)
    style = hashes or "'none'"
    return (
        f"default-src 'none'; img-src 'self' data:; style-src 'self' {style}; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


class SecureHeaders:
    """ASGI middleware: the security headers on every response (pages, images, redirects,
    errors from the router), whatever the handler set."""

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", csp.encode()),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"cache-control", b"no-store"),
            (b"cross-origin-resource-policy", b"same-origin"),
        ]
        self.names = {name for name, _ in self.headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in self.names]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        await self.app(scope, receive, send_secured)


async def _form(request: Request) -> dict[str, list[str]] | None:
    """The URL-encoded form of a POST (no multipart: the pages send none)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY:
            return None
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10_000)
    except (UnicodeDecodeError, ValueError):
        return None


# -- the pages ---------------------------------------------------------------------------


def _number(request: Request) -> int:
    value = request.query_params.get("page", "1")
    return int(value) if is_id(value) and len(value) < 9 else 1


def _path_id(request: Request, key: str) -> int | None:
    """An id in the request's path, or None (no such face or person: a 404)."""
    value = str(request.path_params[key])
    return int(value) if is_id(value) else None


def _not_found(what: str) -> Response:
    return Response(f"no such {what}", status_code=404, media_type="text/plain")


def _summary(state: _State) -> pages.Summary:
    store = state.open()
    return browse.summary(store, len(state.current_doubts()))


def _labels(store: Store, ids: set[int]) -> dict[int, str]:
    return {pid: person_label(pid, name) for pid, name in store.names_of(ids).items()}


def _index(request: Request, state: _State, links: LiveLinks) -> Response:
    store = state.open()
    cards = browse.person_cards(store, _number(request))
    found = state.current_suggestions() if cards.number == 1 else []
    labels = _labels(store, {c.id for c in cards.items} | {p for s in found for p in (s.a, s.b)})
    message = request.query_params.get("msg", "")
    conflicts = tag_conflicts(store) if cards.number == 1 else []
    return HTMLResponse(pages.index_page(links, _summary(state), cards, found, labels, message, conflicts))


def _person(request: Request, state: _State, links: LiveLinks) -> Response:
    person_id = _path_id(request, "person_id")
    found = None if person_id is None else browse.person_page(state.open(), person_id, _number(request))
    if found is None:
        return HTMLResponse(pages.error_page("No such person (merged away, or undone?)."), status_code=404)
    card, faces = found
    message = request.query_params.get("msg", "")
    return HTMLResponse(pages.person_page(links, _summary(state), card, faces, message))


def _doubt(request: Request, state: _State, links: LiveLinks) -> Response:
    doubts = browse.slice_page(state.current_doubts(), _number(request), browse.FACES_PER_PAGE)
    ids = {d.face.person_id for d in doubts.items} | {d.nearest_person_id for d in doubts.items}
    labels = _labels(state.open(), {p for p in ids if p is not None})
    message = request.query_params.get("msg", "")
    return HTMLResponse(pages.doubt_page(links, _summary(state), doubts, labels, message))


def _unknown(request: Request, state: _State, links: LiveLinks) -> Response:
    faces = browse.unknown_page(state.open(), _number(request))
    message = request.query_params.get("msg", "")
    return HTMLResponse(pages.unknown_page(links, _summary(state), faces, message))


def _thumb(request: Request, state: _State, links: LiveLinks) -> Response:
    """The face's thumbnail as the scan stored it (one an earlier version stored is
    converted to today's format once); a face without one (scanned before
    thumbnails were stored, or whose photo's metadata changed) gets one cut from its photo,
    if that is still the file scanned, and stored for the next request and the next export."""
    face_id = _path_id(request, "face_id")
    store = state.open()
    data = None if face_id is None else stored_thumbnail(store, face_id)
    if data is None:
        row = None if face_id is None else store.face_rows([face_id]).get(face_id)
        if row is None:
            return _not_found("face")
        photo = read_scanned(row.photo)
        if photo is None:
            return _not_found("thumbnail: the photo is not the file scanned (changed, moved or replaced)")
        try:
            long_side = max(row.photo.width or 0, row.photo.height or 0) or None
            data = face_thumbnail(row.photo.path, long_side, row.box, data=photo)
        except ImageError as exc:
            return _not_found(f"thumbnail: {exc.reason}")
        # A database that cannot be written to now (another process writing) only costs a recut.
        with contextlib.suppress(DatabaseError):
            store.put_thumbnails([(row.id, THUMB_PARAMS, data)], {row.id: row.box})
    return Response(data, media_type=THUMB_MEDIA_TYPE)


def _photo(request: Request, state: _State, links: LiveLinks) -> Response:
    """The photo a face is in, if its path is still the regular file scanned, else 404."""
    face_id = _path_id(request, "face_id")
    row = None if face_id is None else state.open().face_rows([face_id]).get(face_id)
    data = None if row is None else read_scanned(row.photo)
    if row is None or data is None:
        return _not_found("photo")
    return Response(data, media_type=media_type(row.photo))


# -- the actions -------------------------------------------------------------------------


def _here(request: Request) -> str:
    """The path and query of a page request, without its message."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "msg"]
    return request.url.path + (f"?{urlencode(kept)}" if kept else "")


def _back(request: Request, form: dict[str, list[str]], links: LiveLinks) -> str:
    """Where to go after an action: the path the form names, else the page it was sent
    from (the Referer, same origin: checked), else the index; without an old message."""
    back = form.get("back", [""])[0]
    if not back:
        referer = urlsplit(request.headers.get("referer", ""))
        back = referer.path + (f"?{referer.query}" if referer.query else "")
    if not back.startswith("/") or back.startswith("//") or "\\" in back:
        return links.index()
    path, _, query = back.partition("?")
    kept = [(k, v) for k, values in parse_qs(query).items() if k != "msg" for v in values]
    return f"{path}?{urlencode(kept)}" if kept else path


def _action(request: Request, state: _State, links: LiveLinks) -> Response:
    form: dict[str, list[str]] = request.state.form
    name = str(request.path_params["name"])
    act = _ACTIONS.get(name)
    if act is None:
        return HTMLResponse(pages.error_page(f"No action {name!r}."), status_code=404)
    try:
        message = act(state.open(), form)
    except PhotoclusterError as exc:
        message = f"Not done: {exc}"
    back = _back(request, form, links)
    joiner = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{joiner}{urlencode({'msg': message})}", status_code=303)


def _one(form: dict[str, list[str]], key: str) -> str:
    values = form.get(key) or [""]
    return values[0].strip()


def _ids(form: dict[str, list[str]], key: str, what: str) -> list[int]:
    """Every id of the form's ``key``, each checked (one bad: :class:`UsageError`, nothing done)."""
    return list(dict.fromkeys(parse_id(v, what) for v in form.get(key, [])))


def _rename(store: Store, form: dict[str, list[str]]) -> str:
    done = corrections.name_person(store, _one(form, "person"), _one(form, "name"))
    return f"Done: {done.command}."


def _merge(store: Store, form: dict[str, list[str]]) -> str:
    chosen = _ids(form, "persons", "a person id")
    if len(chosen) < 2:
        return "Not done: select two persons or more to merge."
    done = corrections.merge_persons(store, str(chosen[0]), [str(p) for p in chosen[1:]])
    return f"Done: {done.command} ({done.faces} faces)."


def _faces(store: Store, form: dict[str, list[str]]) -> str:
    """Remove or move the selected faces: one correction (one undo), all or nothing."""
    chosen = _ids(form, "face", "a face id")
    if not chosen:
        return "Not done: select one face or more."
    what = _one(form, "do")
    if what == "remove":
        done = corrections.remove_faces(store, chosen)
        return f"Done: removed {done.faces} face(s) from their person."
    target = _one(form, "person")
    if not target:
        return "Not done: say which person to move the faces to."
    done = corrections.move_faces(store, chosen, target)
    return f"Done: moved {done.faces} face(s) to person {done.person_id}."


def _ignore(store: Store, form: dict[str, list[str]]) -> str:
    done = corrections.ignore_person(store, _one(form, "person"), ignored=not _one(form, "undo"))
    return f"Done: {done.command}."


def _answer(store: Store, form: dict[str, list[str]]) -> str:
    done = answer(store, _one(form, "a"), _one(form, "b"), same=_one(form, "same") == "yes")
    return f"Done: {done.command}."


def _undo(store: Store, form: dict[str, list[str]]) -> str:
    return f"Undone: {corrections.undo(store)}."


_ACTIONS: dict[str, Callable[[Store, dict[str, list[str]]], str]] = {
    "rename": _rename,
    "merge": _merge,
    "faces": _faces,
    "ignore": _ignore,
    "answer": _answer,
    "undo": _undo,
    **curate.ACTIONS,
}
