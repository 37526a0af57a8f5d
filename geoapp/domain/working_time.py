"""Working time on the official Chinese calendar: when an item's time limit runs out, and how much
working time lies between two moments (how late a unit was, how long handling took).

An item's time limit (categories.csv `deadline_days`: 0.25, 1, 3, 7…) is counted in working days,
and a working day is its office hours (OFFICE_HOURS, by default 08:30–12:00 and 13:30–17:30, in the
city's time zone): 3 days is 3 × 7.5 h of office time, counted only inside the office spans of
working days. Which days are worked is the State Council's yearly arrangement, as published in the
`chinesecalendar` package: weekends and public holidays are off, and the make-up working days (调休,
a Saturday or Sunday worked in exchange for a longer holiday) are on.

The package carries one year's arrangement per release (it is announced each November or December).
For a date outside its data we fall back to Monday–Friday, say so once per year in the log, and
`calendar_covers(date)` lets a caller show that a deadline is only an estimate; upgrading the package
brings the new year in.

Everything here is pure: no database, no clock. Moments are aware datetimes; days are the city's
local dates. Time is counted in whole microseconds (timedelta), so a deadline and the working time
up to it agree exactly.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import functools
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar

log = logging.getLogger(__name__)

DEFAULT_OFFICE_HOURS = "08:30-12:00,13:30-17:30"
DEFAULT_TZ = "Asia/Shanghai"

_SPAN = re.compile(r"^\s*(\d{2}):(\d{2})\s*-\s*(\d{2}):(\d{2})\s*$")
_ZERO = dt.timedelta(0)
# A time limit longer than this is a typing mistake; it also bounds deadline_for's day-by-day walk.
MAX_DEADLINE_DAYS = 3650


class OfficeHoursError(ValueError):
    """OFFICE_HOURS (or DISPLAY_TZ) cannot be understood; raised at startup, read by an operator."""


@dataclass(frozen=True)
class OfficeHours:
    """The office spans of every working day, in local wall-clock time of `tz`; and the city's own
    corrections to the official calendar (gis_data/calendar.csv: a year chinesecalendar does not know
    yet, or a local day off), which win over it."""
    spans: tuple[tuple[dt.time, dt.time], ...]
    tz: ZoneInfo
    days_off: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()

    @classmethod
    def parse(cls, text: str, tz: str = DEFAULT_TZ) -> OfficeHours:
        """"08:30-12:00,13:30-17:30": one or more HH:MM-HH:MM spans, in order, not overlapping."""
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise OfficeHoursError(f"DISPLAY_TZ {tz!r} is not a known time zone (e.g. Asia/Shanghai)") from exc
        parts = [p for p in (text or "").split(",") if p.strip()]
        if not parts:
            raise OfficeHoursError(
                f"OFFICE_HOURS {text!r} names no office hours; expected e.g. {DEFAULT_OFFICE_HOURS!r}")
        spans: list[tuple[dt.time, dt.time]] = []
        for part in parts:
            opens, closes = _parse_span(part, text)
            if spans and opens < spans[-1][1]:
                raise OfficeHoursError(
                    f"OFFICE_HOURS {text!r}: span {part.strip()!r} starts before the previous one ends; "
                    "spans must be in order and must not overlap")
            spans.append((opens, closes))
        return cls(spans=tuple(spans), tz=zone)

    @classmethod
    def from_settings(cls, settings) -> OfficeHours:
        hours = cls.parse(settings.office_hours, settings.display_tz)
        off, on = read_calendar_file(settings.calendar_file)
        return dataclasses.replace(hours, days_off=off, workdays=on)

    def is_working(self, day: dt.date) -> bool:
        if day in self.days_off:
            return False
        if day in self.workdays:
            return True
        return is_working_day(day)

    @functools.cached_property
    def day_length(self) -> dt.timedelta:
        """One working day: the office spans added up (7.5 h by default)."""
        return sum((_wall(closes) - _wall(opens) for opens, closes in self.spans), _ZERO)

    @property
    def day_seconds(self) -> float:
        return self.day_length.total_seconds()

    def __str__(self) -> str:
        return ",".join(f"{o:%H:%M}-{c:%H:%M}" for o, c in self.spans)

    def intervals_on(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """The office spans of `day` as UTC moments; none on a day off."""
        if not self.is_working(day):
            return []
        utc = dt.timezone.utc
        return [(dt.datetime.combine(day, opens, self.tz).astimezone(utc),
                 dt.datetime.combine(day, closes, self.tz).astimezone(utc)) for opens, closes in self.spans]


def _parse_span(part: str, text: str) -> tuple[dt.time, dt.time]:
    match = _SPAN.match(part)
    if not match:
        raise OfficeHoursError(
            f"OFFICE_HOURS {text!r}: {part.strip()!r} is not a span like 08:30-12:00 (HH:MM-HH:MM, 24-hour)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise OfficeHoursError(f"OFFICE_HOURS {text!r}: {part.strip()!r} is not a time of day (00:00-23:59)")
    opens, closes = dt.time(h1, m1), dt.time(h2, m2)
    if closes <= opens:
        raise OfficeHoursError(f"OFFICE_HOURS {text!r}: span {part.strip()!r} must end after it starts")
    return opens, closes


def _wall(t: dt.time) -> dt.timedelta:
    return dt.timedelta(hours=t.hour, minutes=t.minute)


# --- the calendar -------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def read_calendar_file(path) -> tuple[frozenset[dt.date], frozenset[dt.date]]:
    """(days off, working days) from a CSV of `date,working,note` (working: 0 a day off, 1 a working
    day); a missing file corrects nothing. A bad line stops the app at start, naming it."""
    if path is None or not Path(path).is_file():
        return frozenset(), frozenset()
    off, on = set(), set()
    with open(path, newline="", encoding="utf-8") as fh:
        for n, row in enumerate(csv.DictReader(line for line in fh if not line.startswith("#")), start=2):
            try:
                day = dt.date.fromisoformat((row.get("date") or "").strip())
                working = {"0": False, "1": True}[(row.get("working") or "").strip()]
            except (ValueError, KeyError):
                raise OfficeHoursError(f"{path}: line {n} {row!r}: expected date (YYYY-MM-DD) and working (0 or 1)") from None
            (on if working else off).add(day)
    return frozenset(off), frozenset(on)


@functools.cache
def calendar_years() -> tuple[int, int]:
    """The first and last year the installed chinesecalendar has the official arrangement for
    (the package checks a date the same way)."""
    years = [d.year for d in chinese_calendar.holidays]
    return min(years), max(years)


def calendar_covers(day: dt.date) -> bool:
    """Whether `day`'s working-day status comes from the official arrangement (else: Monday–Friday)."""
    first, last = calendar_years()
    return first <= day.year <= last


_warned_years: set[int] = set()


@functools.lru_cache(maxsize=8192)
def is_working_day(day: dt.date) -> bool:
    """Official working day: weekdays that are not public holidays, plus make-up working days."""
    if calendar_covers(day):
        return chinese_calendar.is_workday(day)
    if day.year not in _warned_years:
        _warned_years.add(day.year)
        first, last = calendar_years()
        log.warning("chinesecalendar %s has the official holidays for %d-%d only; %d is counted as "
                    "Monday-Friday working days without holidays (upgrade chinesecalendar once the year's "
                    "arrangement is published)", chinese_calendar.__version__, first, last, day.year)
    return day.weekday() < 5


# --- working time -------------------------------------------------------------------------------

def deadline_for(start: dt.datetime, deadline_days: Decimal | float | int, hours: OfficeHours) -> dt.datetime:
    """When `deadline_days` working days from `start` run out (UTC). Counting begins at `start` if it
    is inside office hours, else at the next span's opening; a limit that runs out exactly at a span's
    close ends there (17:30), not at the next opening."""
    _require_aware(start, "start")
    remaining = _as_duration(deadline_days, hours)
    cursor = start.astimezone(dt.timezone.utc)
    if remaining == _ZERO:
        return cursor
    day = start.astimezone(hours.tz).date()
    while True:
        for opens, closes in hours.intervals_on(day):
            if closes <= cursor:
                continue
            begin = max(opens, cursor)
            if closes - begin >= remaining:
                return begin + remaining
            remaining -= closes - begin
        day += dt.timedelta(days=1)


def working_seconds_between(a: dt.datetime, b: dt.datetime, hours: OfficeHours) -> float:
    """Working time from a to b in seconds; negative when b is before a."""
    return working_time_between(a, b, hours).total_seconds()


def working_days_between(a: dt.datetime, b: dt.datetime, hours: OfficeHours) -> float:
    """Working time from a to b in working days (of `hours.day_length`); negative when b is before a."""
    return working_time_between(a, b, hours) / hours.day_length


def working_time_between(a: dt.datetime, b: dt.datetime, hours: OfficeHours) -> dt.timedelta:
    _require_aware(a, "a")
    _require_aware(b, "b")
    if b < a:
        return -working_time_between(b, a, hours)
    a, b = a.astimezone(dt.timezone.utc), b.astimezone(dt.timezone.utc)
    total = _ZERO
    day, last = a.astimezone(hours.tz).date(), b.astimezone(hours.tz).date()
    while day <= last:   # one step per day: a year is 366 small steps
        for opens, closes in hours.intervals_on(day):
            overlap = min(closes, b) - max(opens, a)
            if overlap > _ZERO:
                total += overlap
        day += dt.timedelta(days=1)
    return total


def _as_duration(deadline_days: Decimal | float | int, hours: OfficeHours) -> dt.timedelta:
    """deadline_days × the working day, to the microsecond. A float goes through its shortest decimal
    form, so 0.1 means one tenth and not 0.1000000000000000055…"""
    try:
        days = deadline_days if isinstance(deadline_days, Decimal) else Decimal(str(deadline_days))
    except InvalidOperation as exc:
        raise ValueError(f"deadline_days must be a number, not {deadline_days!r}") from exc
    if not days.is_finite() or not 0 <= days <= MAX_DEADLINE_DAYS:
        raise ValueError(f"deadline_days must be a number from 0 to {MAX_DEADLINE_DAYS}, not {deadline_days!r}")
    micros = days * (hours.day_length // dt.timedelta(microseconds=1))
    return dt.timedelta(microseconds=int(micros.to_integral_value()))


def _require_aware(moment: dt.datetime, name: str) -> None:
    if not isinstance(moment, dt.datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, not {moment!r}")
