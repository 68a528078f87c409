"""The review app's curation pages and actions: a photo's page (its faces' boxes; draw a box
to add a face the scan missed), a person's confirm queue ("is this X?", yes / no / skip),
split, cover, and the search of persons by name; the script and style sheet they use.

The handlers have the app's signature (request, state, links) and run behind its checks
(:func:`photocluster.web.app.create_app` wraps them); each action is one correction of
:mod:`photocluster.app.curate`. The script is a file served here (no inline script, no
inline handler: a strict Content-Security-Policy holds).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from photocluster.app import browse, curate
from photocluster.core.errors import ImageError, NotFoundError, UsageError
from photocluster.core.readmodel import slice_page
from photocluster.exporter import pages
from photocluster.store import Store

if TYPE_CHECKING:
    from photocluster.web.app import LiveLinks


class _State(Protocol):
    """What the handlers use of the app's state (:class:`photocluster.web.app`'s)."""

    def open(self) -> Store: ...
    def current_doubts(self) -> Sequence[object]: ...


QUEUE_SHOWN = 48  # faces of the confirm queue on its page (as a grid)
_STATIC = {"curate.js": "text/javascript; charset=utf-8", "curate.css": "text/css; charset=utf-8"}
_STATIC_DIR = Path(__file__).with_name("static")

Handler = Callable[[Request, _State, "LiveLinks"], Response]


def routes(guarded: Callable[[Handler], Any]) -> list[Route]:
    """The curation routes, each behind the app's checks (``guarded``)."""
    return [
        Route("/photos/{photo_id:int}", guarded(_photo_page)),
        Route("/image/{photo_id:int}", guarded(_image)),
        Route("/person/{person_id:int}/confirm", guarded(_confirm_page)),
        Route("/search", guarded(_search_page)),
        Route("/search.json", guarded(_search_json)),
        Route("/static/{name:str}", guarded(_static)),
    ]


def _html(text: str, status: int = 200) -> Response:
    return Response(text, status_code=status, media_type="text/html; charset=utf-8")


def _summary(state: _State) -> pages.Summary:
    return browse.summary(state.open(), len(state.current_doubts()))


def _photo_page(request: Request, state: _State, links: LiveLinks) -> Response:
    try:
        view = curate.photo_view(state.open(), int(request.path_params["photo_id"]))
    except (NotFoundError, UsageError) as exc:
        return _html(pages.error_page(f"{exc}."), 404)
    message = request.query_params.get("msg", "")
    return _html(pages.photo_page(links, _summary(state), view, message))


def _image(request: Request, state: _State, links: LiveLinks) -> Response:
    """The photo as its page shows it: decoded from the path the database holds (no path
    comes from the request), turned as displayed, as a JPEG."""
    try:
        data = curate.photo_preview(state.open(), int(request.path_params["photo_id"]))
    except (NotFoundError, UsageError, ImageError) as exc:
        return Response(f"no image: {exc}", status_code=404, media_type="text/plain")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


def _skipped(request: Request) -> list[int]:
    text = request.query_params.get("skip", "")
    return [int(v) for v in text.split(",") if v.isdigit() and len(v) < 12][:1000]


def _confirm_page(request: Request, state: _State, links: LiveLinks) -> Response:
    store = state.open()
    person_id = int(request.path_params["person_id"])
    found = browse.person_page(store, person_id, 1, 1)
    if found is None:
        return _html(pages.error_page("No such person (merged away, or undone?)."), 404)
    skipped = _skipped(request)
    queue = curate.confirm_queue(store, person_id, set(skipped))
    shown = slice_page(queue, 1, QUEUE_SHOWN)
    one = request.query_params.get("view") == "one"
    message = request.query_params.get("msg", "")
    return _html(pages.confirm_page(links, _summary(state), found[0], shown, skipped, one, message))


def _query(request: Request) -> str:
    return request.query_params.get("q", "")[:200]


def _search_page(request: Request, state: _State, links: LiveLinks) -> Response:
    query = _query(request)
    found = curate.search_persons(state.open(), query)
    if len(found) == 1:
        return RedirectResponse(links.person(found[0][0]), status_code=303)
    return _html(pages.search_page(links, _summary(state), query, found))


def _search_json(request: Request, state: _State, links: LiveLinks) -> Response:
    """The names the search box suggests as one types."""
    found = curate.search_persons(state.open(), _query(request), limit=12)
    return JSONResponse([{"id": pid, "name": name, "url": links.person(pid)} for pid, name in found])


def _static(request: Request, state: _State, links: LiveLinks) -> Response:
    name = str(request.path_params["name"])
    if name not in _STATIC:
        return Response("no such file", status_code=404, media_type="text/plain")
    data = (_STATIC_DIR / name).read_bytes()
    return Response(data, media_type=_STATIC[name], headers={"Cache-Control": "private, max-age=300"})


# -- the actions -------------------------------------------------------------------------


def _one(form: dict[str, list[str]], key: str) -> str:
    values = form.get(key) or [""]
    return values[0].strip()


def _number(form: dict[str, list[str]], key: str, what: str) -> int:
    value = _one(form, key)
    if not value.isdigit() or len(value) > 12:
        raise UsageError(f"say which {what}")
    return int(value)


def _person_of_face(store: Store, face_id: int) -> int:
    row = store.face_row(face_id)
    if row is None:
        raise NotFoundError(f"no face with id {face_id}")
    if row[1] is None:
        raise UsageError(f"face {face_id} is in no person")
    return row[1]


def _add_face(store: Store, form: dict[str, list[str]]) -> str:
    photo = _number(form, "photo", "photo")
    if not _one(form, "box"):
        return "Not done: draw a box around the face first."
    added = curate.add_face(store, photo, curate.parse_box(_one(form, "box")), _one(form, "person") or None)
    where = "in no person" if added.person_id is None else f"in person {added.person_id}"
    return f"Done: {added.command} (face {added.face_id}, {where})."


def _split(store: Store, form: dict[str, list[str]]) -> str:
    chosen = [int(v) for v in form.get("face", []) if v.strip().isdigit()]
    if not chosen:
        return "Not done: select the faces of the other person first."
    person = _person_of_face(store, chosen[0])
    done = curate.split_person(store, str(person), chosen, _one(form, "new_name") or None)
    return f"Done: {done.command}: {done.note}."


def _cover(store: Store, form: dict[str, list[str]]) -> str:
    face_id = _number(form, "cover", "face")
    done = curate.choose_cover(store, str(_person_of_face(store, face_id)), face_id)
    return f"Done: {done.command}."


def _confirm(store: Store, form: dict[str, list[str]]) -> str:
    answer = _one(form, "answer")
    if answer not in ("yes", "no"):
        return "Not done: answer yes or no."
    person = _number(form, "person", "person")
    done = curate.confirm(store, str(person), _number(form, "face", "face"), yes=answer == "yes")
    return f"Done: {done.command}."


ACTIONS: dict[str, Callable[[Store, dict[str, list[str]]], str]] = {
    "add-face": _add_face,
    "split": _split,
    "cover": _cover,
    "confirm": _confirm,
}
