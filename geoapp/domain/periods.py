"""Spans of the city's calendar days, as every figure reads them: local days, the last one included;
as instants, local midnight of the first day to local midnight after the last. Statistics, the
album and coverage each take their period from here (with their own rules of what a valid one is)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(day: dt.date) -> dt.date:
    """The first day of the month after `day`'s."""
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


@dataclass(frozen=True)
class Days:
    start: dt.date   # the first day
    end: dt.date     # the last day (included)

    def moments(self, tz: str) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) as instants in the zone `tz`."""
        zone = ZoneInfo(tz)
        return (dt.datetime.combine(self.start, dt.time(), zone),
                dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), zone))

    def months(self) -> list[str]:
        """The calendar months the span touches, as YYYY-MM."""
        out, month = [], month_start(self.start)
        while month <= self.end:
            out.append(month.strftime("%Y-%m"))
            month = next_month(month)
        return out

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1
