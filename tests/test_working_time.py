"""Working time on the official Chinese calendar (geoapp/domain/working_time.py).

Every date below is checked against chinesecalendar's own 2026 data first (the State Council's
arrangement as the package publishes it), so a test states the calendar fact it relies on."""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from decimal import Decimal

import chinese_calendar
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from geoapp.config import Settings
from geoapp.domain import working_time
from geoapp.domain.working_time import (OfficeHours, OfficeHoursError, calendar_covers, deadline_for,
                                        is_working_day, working_days_between, working_seconds_between)

CITY = dt.timezone(dt.timedelta(hours=8))   # Asia/Shanghai has had no DST since 1991
UTC = dt.timezone.utc
HOURS = OfficeHours.parse("08:30-12:00,13:30-17:30", "Asia/Shanghai")
DAY = 7.5 * 3600


def local(y, mo, d, h=0, mi=0, s=0, us=0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, s, us, tzinfo=CITY)


def holiday(day: dt.date, name: str) -> None:
    """The library says `day` is a day off for `name`."""
    assert chinese_calendar.get_holiday_detail(day) == (True, name), day
    assert not is_working_day(day)


def make_up_day(day: dt.date, name: str) -> None:
    """The library says `day` is a weekend day worked in exchange for `name`'s holiday (调休)."""
    assert day.weekday() >= 5
    assert chinese_calendar.get_holiday_detail(day) == (False, name), day
    assert is_working_day(day)


def test_the_default_office_hours_make_a_7_5_hour_day():
    hours = OfficeHours.from_settings(Settings(database_url="", secret_key="x"))
    assert (hours.spans, hours.tz) == (HOURS.spans, HOURS.tz)
    assert dt.date(2027, 1, 1) in hours.days_off  # gis_data/calendar.csv, read with the settings
    assert str(hours) == "08:30-12:00,13:30-17:30"
    assert hours.day_seconds == DAY


def test_the_installed_calendar_covers_2026():
    first, last = working_time.calendar_years()
    assert first <= 2026 <= last
    assert calendar_covers(dt.date(2026, 1, 1)) and calendar_covers(dt.date(2026, 12, 31))


# --- deadlines ----------------------------------------------------------------------------------

def test_a_deadline_skips_the_national_day_holiday():
    # 2026: 1–7 October off (with the weekend of 3–4 October inside it), back to work on Thursday 8
    for d in range(1, 8):
        holiday(dt.date(2026, 10, d), "National Day")
    assert is_working_day(dt.date(2026, 9, 30)) and is_working_day(dt.date(2026, 10, 8))
    # 1.5 h left on 30 September, the other 6 h on 8 October
    assert deadline_for(local(2026, 9, 30, 16), 1, HOURS) == local(2026, 10, 8, 16)


def test_a_deadline_counts_the_make_up_working_saturday_after_national_day():
    make_up_day(dt.date(2026, 10, 10), "National Day")   # a Saturday
    # 3 days = 22.5 h: 1.5 h on 30 Sep, 7.5 h on Thu 8 and Fri 9 Oct, the last 6 h on Saturday 10 Oct
    assert deadline_for(local(2026, 9, 30, 16), 3, HOURS) == local(2026, 10, 10, 16)


def test_a_deadline_counts_a_make_up_working_sunday():
    assert not is_working_day(dt.date(2026, 9, 19))        # an ordinary Saturday
    make_up_day(dt.date(2026, 9, 20), "National Day")      # a Sunday, worked
    # Friday 18 Sep 17:00: 0.5 h that day, the remaining 7 h on Sunday 20 Sep
    assert deadline_for(local(2026, 9, 18, 17), 1, HOURS) == local(2026, 9, 20, 17)


def test_a_deadline_skips_an_ordinary_weekend():
    for d in (21, 22):
        assert chinese_calendar.get_holiday_detail(dt.date(2026, 11, d)) == (True, None)
    # Friday 20 Nov 15:00: 2.5 h that day, 5 h on Monday 23 Nov (3.5 h morning, 1.5 h afternoon)
    assert deadline_for(local(2026, 11, 20, 15), 1, HOURS) == local(2026, 11, 23, 15)


def test_a_quarter_day_crosses_the_lunch_break():
    # 0.25 day = 1 h 52.5 min: 11:00–12:00, then 52.5 min from 13:30
    assert deadline_for(local(2026, 11, 24, 11), Decimal("0.25"), HOURS) == local(2026, 11, 24, 14, 22, 30)
    assert deadline_for(local(2026, 11, 24, 11), 0.25, HOURS) == local(2026, 11, 24, 14, 22, 30)


def test_a_start_at_night_begins_at_the_next_opening():
    assert deadline_for(local(2026, 11, 24, 20), 0.25, HOURS) == local(2026, 11, 25, 10, 22, 30)
    # ...and during the lunch break, at 13:30
    assert deadline_for(local(2026, 11, 24, 12, 40), 0.25, HOURS) == local(2026, 11, 24, 15, 22, 30)


def test_a_start_on_a_holiday_begins_on_the_next_working_day():
    holiday(dt.date(2026, 10, 1), "National Day")
    assert deadline_for(local(2026, 10, 1, 10), 0.25, HOURS) == local(2026, 10, 8, 10, 22, 30)
    # Spring Festival 2026: 15–23 February off, Saturday 28 February worked
    holiday(dt.date(2026, 2, 16), "Spring Festival")
    holiday(dt.date(2026, 2, 23), "Spring Festival")
    assert is_working_day(dt.date(2026, 2, 24))
    assert deadline_for(local(2026, 2, 16, 9), 1, HOURS) == local(2026, 2, 24, 17, 30)


def test_a_limit_that_runs_out_at_closing_time_ends_then():
    assert deadline_for(local(2026, 11, 24, 8, 30), 1, HOURS) == local(2026, 11, 24, 17, 30)
    assert deadline_for(local(2026, 11, 24, 8, 30), 0, HOURS) == local(2026, 11, 24, 8, 30)


def test_a_deadline_is_utc():
    deadline = deadline_for(local(2026, 11, 24, 11), 0.25, HOURS)
    assert deadline.utcoffset() == dt.timedelta(0)
    assert deadline == dt.datetime(2026, 11, 24, 6, 22, 30, tzinfo=UTC)


def test_a_thirty_day_limit_counts_working_days_only():
    start = local(2026, 9, 1, 8, 30)
    deadline = deadline_for(start, 30, HOURS)
    days = chinese_calendar.get_workdays(dt.date(2026, 9, 1), deadline.astimezone(CITY).date())
    assert len(days) == 30 and deadline == local(*days[-1].timetuple()[:3], 17, 30)


@pytest.mark.parametrize("days", [-1, float("nan"), float("inf"), "three", 10**6])
def test_a_nonsense_limit_is_refused(days):
    with pytest.raises(ValueError):
        deadline_for(local(2026, 11, 24, 9), days, HOURS)


def test_naive_moments_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        deadline_for(dt.datetime(2026, 11, 24, 9), 1, HOURS)
    with pytest.raises(ValueError, match="timezone-aware"):
        working_seconds_between(local(2026, 11, 24, 9), dt.datetime(2026, 11, 25, 9), HOURS)


# --- working time between two moments -----------------------------------------------------------

def test_working_time_between_two_moments():
    # Tuesday 11:00 to Wednesday 09:00: 1 h + 4 h + 0.5 h
    assert working_seconds_between(local(2026, 11, 24, 11), local(2026, 11, 25, 9), HOURS) == 5.5 * 3600
    assert working_seconds_between(local(2026, 11, 25, 9), local(2026, 11, 24, 11), HOURS) == -5.5 * 3600
    # a whole holiday week is no working time at all
    assert working_seconds_between(local(2026, 10, 1), local(2026, 10, 8), HOURS) == 0
    # the same moment given in another zone is the same moment
    a = local(2026, 11, 24, 11)
    assert working_seconds_between(a, a.astimezone(UTC) + dt.timedelta(hours=1), HOURS) == 3600


def test_a_year_of_working_days():
    expected = len(chinese_calendar.get_workdays(dt.date(2026, 1, 1), dt.date(2026, 12, 31)))
    assert working_days_between(local(2026, 1, 1), local(2027, 1, 1), HOURS) == expected


moments_2026 = st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 12, 31, 23, 59),
                            timezones=st.just(CITY))


@given(a=moments_2026, b=moments_2026)
def test_working_time_is_antisymmetric(a, b):
    forward = working_seconds_between(a, b, HOURS)
    assert forward == -working_seconds_between(b, a, HOURS)
    assert forward >= 0 if b >= a else forward <= 0


@st.composite
def office_moments(draw) -> dt.datetime:
    """A moment inside the office hours of a 2026 working day."""
    day = draw(st.dates(dt.date(2026, 1, 1), dt.date(2026, 12, 31)).filter(chinese_calendar.is_workday))
    opens, closes = draw(st.sampled_from(HOURS.spans))
    length = dt.datetime.combine(day, closes) - dt.datetime.combine(day, opens)
    offset = draw(st.integers(0, length // dt.timedelta(seconds=1) - 1))
    return dt.datetime.combine(day, opens, CITY) + dt.timedelta(seconds=offset)


limits = st.decimals(min_value=0, max_value=30, places=3)


@hsettings(max_examples=60, deadline=None)
@given(start=office_moments(), days=limits)
def test_deadline_and_working_time_agree(start, days):
    deadline = deadline_for(start, days, HOURS)
    assert working_seconds_between(start, deadline, HOURS) == pytest.approx(float(days) * DAY, abs=1e-6)
    assert working_days_between(start, deadline, HOURS) == pytest.approx(float(days), abs=1e-9)
    if days > 0:   # and it is the earliest such moment
        assert working_seconds_between(start, deadline - dt.timedelta(microseconds=1), HOURS) < float(days) * DAY


@hsettings(max_examples=30, deadline=None)
@given(start=moments_2026, days=limits)
def test_deadline_and_working_time_agree_from_any_start(start, days):
    # time outside office hours counts for nothing, so the round trip holds from any start
    deadline = deadline_for(start, days, HOURS)
    assert working_seconds_between(start, deadline, HOURS) == pytest.approx(float(days) * DAY, abs=1e-6)


# --- outside the calendar's years ---------------------------------------------------------------

def test_outside_the_calendar_monday_to_friday_is_assumed_and_said_once(caplog):
    year = working_time.calendar_years()[1] + 5
    working_time.is_working_day.cache_clear()
    working_time._warned_years.discard(year)
    monday = dt.date(year, 1, 1) + dt.timedelta(days=(7 - dt.date(year, 1, 1).weekday()) % 7)
    assert not calendar_covers(monday)
    with caplog.at_level(logging.WARNING, logger="geoapp.domain.working_time"):
        assert [is_working_day(monday + dt.timedelta(days=i)) for i in range(7)] == [True] * 5 + [False] * 2
        start = dt.datetime.combine(monday, dt.time(8, 30), CITY)
        assert deadline_for(start, 5, HOURS) == dt.datetime.combine(monday + dt.timedelta(days=4),
                                                                    dt.time(17, 30), CITY)
    warnings = [r for r in caplog.records if r.name == "geoapp.domain.working_time"]
    assert len(warnings) == 1 and str(year) in warnings[0].getMessage()


# --- the setting --------------------------------------------------------------------------------

def test_other_office_hours_change_the_day():
    hours = OfficeHours.parse(" 09:00 - 17:00 ")
    assert hours.day_seconds == 8 * 3600
    assert deadline_for(local(2026, 11, 24, 16), 0.5, hours) == local(2026, 11, 25, 12)
    settings = Settings(database_url="", secret_key="x", office_hours="08:00-11:30,14:00-18:00")
    assert OfficeHours.from_settings(settings).day_seconds == 7.5 * 3600


@pytest.mark.parametrize("bad, why", [
    ("", "names no office hours"),
    ("8:30-12:00", "HH:MM"),
    ("08:30~12:00", "HH:MM"),
    ("08:30-12:00,11:30-17:30", "overlap"),
    ("13:30-17:30,08:30-12:00", "in order"),
    ("12:00-08:30", "end after it starts"),
    ("08:30-08:30", "end after it starts"),
    ("24:00-25:00", "time of day"),
    ("08:30-12:60", "time of day"),
])
def test_bad_office_hours_are_refused_at_startup(monkeypatch, bad, why):
    with pytest.raises(OfficeHoursError, match=why):
        OfficeHours.parse(bad)
    with pytest.raises(OfficeHoursError, match="OFFICE_HOURS"):
        Settings(database_url="", secret_key="x", office_hours=bad)
    if bad:   # an empty variable means "the default"
        monkeypatch.setenv("OFFICE_HOURS", bad)
        with pytest.raises(OfficeHoursError, match=why):
            Settings(database_url="", secret_key="x")


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(OfficeHoursError, match="DISPLAY_TZ"):
        OfficeHours.parse("08:30-12:00", "Asia/Jinzhou")


def test_the_citys_calendar_file_corrects_the_library(tmp_path):
    """gis_data/calendar.csv: a day the library does not know (2027) and a local day off win over it."""
    path = tmp_path / "calendar.csv"
    path.write_text("# comment\ndate,working,note\n2027-01-01,0,元旦\n2026-12-05,1,调休（假想）\n"
                    "2026-12-07,0,local day off\n", encoding="utf-8")
    base = HOURS
    off, on = working_time.read_calendar_file(path)
    hours = dataclasses.replace(base, days_off=off, workdays=on)
    assert not hours.is_working(dt.date(2027, 1, 1)) and base.is_working(dt.date(2027, 1, 1))
    assert hours.is_working(dt.date(2026, 12, 5))            # a Saturday made a working day
    # Thursday 31 Dec 2026 16:00 + 1 day: Friday 1 Jan is off, so Monday 4 Jan 16:00
    start = dt.datetime(2026, 12, 31, 16, 0, tzinfo=CITY)
    assert deadline_for(start, 1, hours).astimezone(CITY) == dt.datetime(2027, 1, 4, 16, 0, tzinfo=CITY)
    assert deadline_for(start, 1, base).astimezone(CITY) == dt.datetime(2027, 1, 1, 16, 0, tzinfo=CITY)
    # Friday 4 Dec 16:00 + 1 day: Saturday 5 Dec is worked here
    friday = dt.datetime(2026, 12, 4, 16, 0, tzinfo=CITY)
    assert deadline_for(friday, 1, hours).astimezone(CITY) == dt.datetime(2026, 12, 5, 16, 0, tzinfo=CITY)


def test_a_bad_calendar_file_stops_the_app(tmp_path):
    path = tmp_path / "calendar.csv"
    path.write_text("date,working,note\n2027-13-01,0,x\n", encoding="utf-8")
    with pytest.raises(working_time.OfficeHoursError, match="line 2"):
        working_time.read_calendar_file(path)
