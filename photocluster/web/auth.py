"""Who may use the review app: the holder of this run's session cookie.

- The **session token** is random per run, lives in memory and in an ``HttpOnly``,
  ``SameSite=Strict`` cookie of the browser, and nowhere else: never in a URL, a page, a
  command line or a log.
- A browser gets the cookie by opening a **launch address** (``/launch?code=...``): the
  code is random, good for one use and a short while (:data:`LAUNCH_TTL_S`), and
  exchanged for the cookie, then the browser is sent to the plain ``/``. The browser
  launcher's command line (readable by every local user in ``/proc``) only ever holds a
  code of its own, dead once the browser used it; a code used a second time is refused
  and reported (someone else may have raced the browser to it).
- Forms carry a separate **form token** (against cross-site requests, on top of the
  ``SameSite`` cookie and the Origin check).

Secrets are compared as bytes, in constant time, whatever a request sends (``é``, a NUL).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass, field
from enum import Enum

log = logging.getLogger(__name__)

LAUNCH_TTL_S = 120.0  # how long a launch code waits for its browser
_COOKIE_PREFIX = "photocluster_review_"


def same_secret(given: str | None, expected: str) -> bool:
    """Whether ``given`` is ``expected``, in constant time; any text (non-ASCII, a lone
    surrogate, None) is just not equal."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def cookie_name(port: int) -> str:
    """The session cookie of the app on ``port`` (cookies do not tell ports apart: two apps
    on two ports keep two cookies)."""
    return f"{_COOKIE_PREFIX}{port}"


class Launch(Enum):
    OK = "ok"
    USED = "used"  # good once, and used already
    UNKNOWN = "unknown"  # never issued, or expired


def _key(code: str) -> bytes:
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).digest()


@dataclass
class Gate:
    """This run's secrets: the session token, the form token and the launch codes."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    form_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    _codes: dict[bytes, float] = field(default_factory=dict)  # sha256(code) -> expiry (monotonic)
    _used: set[bytes] = field(default_factory=set)

    def launch_code(self, ttl_s: float = LAUNCH_TTL_S) -> str:
        """A new code good for one exchange within ``ttl_s`` seconds."""
        code = secrets.token_urlsafe(24)
        self._codes[_key(code)] = time.monotonic() + ttl_s
        return code

    def exchange(self, code: str) -> Launch:
        """Spend ``code``: :attr:`Launch.OK` the first time (within its time), else why not."""
        key = _key(code)
        expiry = self._codes.pop(key, None)
        if expiry is not None:
            self._used.add(key)
            return Launch.OK if time.monotonic() <= expiry else Launch.UNKNOWN
        if key in self._used:
            log.warning(
                "a launch address of the review app was used a second time: if that was not you, "
                "stop the app (Ctrl-C) and start it again"
            )
            return Launch.USED
        return Launch.UNKNOWN

    def session(self, cookie: str | None) -> bool:
        return same_secret(cookie, self.token)

    def form(self, value: str | None) -> bool:
        return same_secret(value, self.form_token)
