"""Birth dates and photo dates: when a photo was taken, and how old a person was in it.

A photo's day is its EXIF DateTimeOriginal (as the scan stored it, ``photos.taken_at``),
else the day of the file's modification time in local time. A copied file's mtime is the
day of the copy, later than the photo's: the fallback can only make a photo look younger
than it is, never older, so a birth date never rules out a face it should not.

Days are compared as :meth:`datetime.date.toordinal` numbers (arrays of them in grouping).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from photocluster.core.errors import UsageError

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def photo_day(taken_at: str | None, mtime_ns: int) -> dt.date:
    """The day a photo was taken: its EXIF date (``YYYY-MM-DDTHH:MM:SS``), else its file's
    modification day (local time)."""
    if taken_at and _ISO_DAY.match(taken_at):
        try:
            return dt.date.fromisoformat(taken_at[:10])
        except ValueError:
            pass  # an EXIF date such as 2019-02-30: the file's day instead
    return dt.datetime.fromtimestamp(mtime_ns / 1e9).date()


def parse_birth(text: str, today: dt.date | None = None) -> dt.date:
    """A birth date as the user typed it, ``YYYY-MM-DD``; a bad or future date is a
    :class:`UsageError` that says which."""
    clean = text.strip()
    if not _ISO_DAY.fullmatch(clean):
        raise UsageError(f"birth date {text!r}: expected YYYY-MM-DD, e.g. 2019-05-31")
    try:
        day = dt.date.fromisoformat(clean)
    except ValueError as exc:
        raise UsageError(f"birth date {text!r}: not a date ({exc})") from None
    today = today or dt.date.today()
    if day > today:
        raise UsageError(f"birth date {clean} is in the future (today is {today.isoformat()})")
    return day


@dataclass(frozen=True)
class Age:
    """Completed years, months beyond the years and days beyond the months."""

    years: int
    months: int
    days: int

    @property
    def label(self) -> str:
        """``12 d`` for a newborn, ``7 m`` in the first year, ``3 y 4 m`` under 6, ``age 12`` after."""
        if self.years == 0 and self.months == 0:
            return f"{self.days} d"
        if self.years == 0:
            return f"{self.months} m"
        if self.years < 6:
            return f"{self.years} y {self.months} m"
        return f"age {self.years}"

    def as_dict(self) -> dict[str, object]:
        return {"years": self.years, "months": self.months, "text": self.label}


def age_at(born: dt.date, day: dt.date) -> Age | None:
    """How old someone born on ``born`` was on ``day``; None before the birth."""
    if day < born:
        return None
    months = (day.year - born.year) * 12 + day.month - born.month
    if day.day < born.day:
        months -= 1
    # The day the last month was completed (the 31st of a short month counts as its end).
    anchor_year, anchor_month = born.year + (born.month - 1 + months) // 12, (born.month - 1 + months) % 12 + 1
    anchor = dt.date(anchor_year, anchor_month, min(born.day, _month_days(anchor_year, anchor_month)))
    return Age(months // 12, months % 12, (day - anchor).days)


def _month_days(year: int, month: int) -> int:
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    return (following - dt.timedelta(days=1)).day


def age_label(born: str | None, taken: str | None) -> str | None:
    """The age label of a face taken on ``taken`` of a person born on ``born`` (ISO days), if both are known."""
    if not born or not taken:
        return None
    age = age_at(dt.date.fromisoformat(born), dt.date.fromisoformat(taken))
    return None if age is None else age.label
