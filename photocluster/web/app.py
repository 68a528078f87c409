"""The review app as a Starlette application: the review pages, live from the database,
with forms that correct the library.

Safety, since a page in any other tab of the browser can send requests to 127.0.0.1:

- every request carries the token (``?token=`` or a form field) or gets 403; the token is
  random per run and compared in constant time;
- the ``Host`` must be the address served (no DNS rebinding);
- a state-changing request is a POST whose ``Origin`` (else ``Referer``) is the app's own;
- no path from a request is opened: thumbnails and photos are addressed by face id and
  read from the database (a thumbnail the scan stored) or the path it holds;
- every text on a page is escaped (the templates of :mod:`photocluster.exporter.pages` autoescape).

The store is opened in the server's event loop thread and every handler runs there
(``async`` handlers that do not await): SQLite's connection stays in one thread, and
requests are served one at a time, which is what one person reviewing needs.
"""

from __future__ import annotations

import contextlib
import hmac
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from photocluster.app import browse, corrections
from photocluster.app.suggest import answer, suggest
from photocluster.app.tags import tag_conflicts
from photocluster.app.thumbs import ensure_thumbnails
from photocluster.core.errors import DatabaseError, ImageError, PhotoclusterError, UsageError
from photocluster.core.readmodel import FaceItem, Suggestion
from photocluster.core.types import person_label
from photocluster.detect.thumbnail import THUMB_PARAMS, face_thumbnail
from photocluster.exporter import pages
from photocluster.store import Store
from photocluster.web import curate

SUGGESTIONS_SHOWN = 20
_MAX_BODY = 1 << 20  # a form of a page of selected faces is a few kB


class LiveLinks:
    """Links between the app's routes, each carrying the token."""

    live = True

    def __init__(self, token: str) -> None:
        self.token = token

    def _to(self, path: str, **params: object) -> str:
        query = {k: v for k, v in params.items() if v not in (None, 1) or k == "token"}
        return f"{path}?{urlencode({**query, 'token': self.token})}"

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
    token: str
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


def create_app(db_path: str | os.PathLike[str], token: str) -> Starlette:
    """The review app over the database at ``db_path``; requests must carry ``token``."""
    state = _State(Path(db_path), token)
    links = LiveLinks(token)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        state.open()
        try:
            yield
        finally:
            if state.store is not None:
                state.store.close()

    def guarded(handler: Callable[[Request, _State, LiveLinks], Response]) -> Callable[[Request], object]:
        async def endpoint(request: Request) -> Response:
            refused = _refused(request, token)
            if refused is not None:
                return refused
            if request.method == "POST":
                form = await _form(request)
                if form is None or not hmac.compare_digest(form.get("token", [""])[0], token):
                    return _forbidden("the form does not carry this run's token")
                request.state.form = form
            try:
                return handler(request, state, links)
            except PhotoclusterError as exc:
                return HTMLResponse(pages.error_page(str(exc)), status_code=400 if isinstance(exc, UsageError) else 500)

        return endpoint

    routes = [
        Route("/", guarded(_index)),
        Route("/person/{person_id:int}", guarded(_person)),
        Route("/doubt", guarded(_doubt)),
        Route("/unknown", guarded(_unknown)),
        Route("/thumb/{face_id:int}", guarded(_thumb)),
        Route("/photo/{face_id:int}", guarded(_photo)),
        Route("/action/{name:str}", guarded(_action), methods=["POST"]),
        *curate.routes(guarded),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


# -- the checks ------------------------------------------------------------------------


def _forbidden(why: str) -> Response:
    return HTMLResponse(pages.error_page(f"Forbidden: {why}."), status_code=403)


def _refused(request: Request, token: str) -> Response | None:
    """403 unless the request is for this server by name and carries the token; a POST
    must also come from one of the app's own pages."""
    host = request.headers.get("host", "")
    if urlsplit(f"//{host}").hostname not in ("127.0.0.1", "localhost"):
        return _forbidden("this server answers to 127.0.0.1 only")
    if request.method == "POST":
        own = f"{request.url.scheme}://{host}"
        origin = request.headers.get("origin")
        referer = request.headers.get("referer")
        if origin is not None:
            if origin != own:
                return _forbidden("the request comes from another site")
        elif referer is None or not (referer == own or referer.startswith(own + "/")):
            return _forbidden("the request does not say it comes from this app")
        return None
    if not hmac.compare_digest(request.query_params.get("token", ""), token):
        return _forbidden("the address does not carry this run's token")
    return None


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
    return int(value) if value.isdigit() and len(value) < 9 else 1


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
    found = browse.person_page(state.open(), int(request.path_params["person_id"]), _number(request))
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
    """The face's thumbnail as the scan stored it; a face without one (scanned before
    thumbnails were stored, or whose photo's metadata changed) gets one cut from its photo
    and stored for the next request and the next export (:func:`ensure_thumbnails`)."""
    face_id = int(request.path_params["face_id"])
    store = state.open()
    data = store.thumbnail(face_id, THUMB_PARAMS)
    if data is None:
        row = store.face_rows([face_id]).get(face_id)
        if row is None:
            return Response("no such face", status_code=404, media_type="text/plain")
        # A database that cannot be written to now (another process writing) only costs a recut.
        with contextlib.suppress(DatabaseError):
            ensure_thumbnails(store, face_ids=[face_id])
        data = store.thumbnail(face_id, THUMB_PARAMS)
        if data is None:
            # Not stored: the photo changed since its scan (its faces may no longer match:
            # served, not kept), or it cannot be read (said so).
            try:
                long_side = max(row.photo.width or 0, row.photo.height or 0) or None
                data = face_thumbnail(row.photo.path, long_side, row.box)
            except ImageError as exc:
                return Response(f"no thumbnail: {exc}", status_code=404, media_type="text/plain")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


def _photo(request: Request, state: _State, links: LiveLinks) -> Response:
    face_id = int(request.path_params["face_id"])
    row = state.open().face_rows([face_id]).get(face_id)
    if row is None or not row.photo.path.is_file():
        return Response("no such photo", status_code=404, media_type="text/plain")
    return FileResponse(row.photo.path)


# -- the actions -------------------------------------------------------------------------


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


def _ids(form: dict[str, list[str]], key: str) -> list[int]:
    return [int(v) for v in form.get(key, []) if v.strip().isdigit()]


def _rename(store: Store, form: dict[str, list[str]]) -> str:
    done = corrections.name_person(store, _one(form, "person"), _one(form, "name"))
    return f"Done: {done.command}."


def _merge(store: Store, form: dict[str, list[str]]) -> str:
    chosen = _ids(form, "persons")
    if len(chosen) < 2:
        return "Not done: select two persons or more to merge."
    done = corrections.merge_persons(store, str(chosen[0]), [str(p) for p in chosen[1:]])
    return f"Done: {done.command} ({done.faces} faces)."


def _faces(store: Store, form: dict[str, list[str]]) -> str:
    chosen = _ids(form, "face")
    if not chosen:
        return "Not done: select one face or more."
    what = _one(form, "do")
    if what == "remove":
        for face_id in chosen:
            corrections.remove_face(store, face_id)
        return f"Done: removed {len(chosen)} face(s) from their person."
    target = _one(form, "person")
    if not target:
        return "Not done: say which person to move the faces to."
    pid = corrections.resolve_person(store, target)
    corrections.check_ages(store, pid, chosen)  # none moved when one cannot be
    for face_id in chosen:
        corrections.move_face(store, face_id, str(pid))
    return f"Done: moved {len(chosen)} face(s) to person {pid}."


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
