"""Change windows: is a site inside one of its maintenance windows at a given moment, when does
the next one open, and may a change go ahead (DESIGN rule 2: Live changes only inside the
customer's maintenance window unless an explicit override with a reason is given).

Windows have the shape the inventory plugin gives them (``estate_sites[].maintenance_windows``):
``{"days": ["sun"], "start": "02:00", "end": "04:00", "timezone": "Europe/London"}``; the written
forms (``"sun 02:00-04:00 Europe/London"``) are accepted too and normalised by
:func:`estate.parse_window`, so there is one parser and one set of error messages.

Semantics, in the window's own time zone, by the local wall clock:

- ``days`` are the days a window *starts* on; the start is inclusive, the end exclusive;
- an end at or before the start runs past midnight into the next day (``fri 23:00-01:00`` is
  open on Saturday 00:30); ``24:00`` ends at midnight;
- on a daylight-saving change the window is open while the clock *reads* a time inside it: a
  spring-forward gap shortens it, a fall-back hour that repeats is inside it both times.

Pure Python (standard library + the estate module), unit-tested without Ansible.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from ansible.module_utils.estate import DAYS, TIERS, EstateError, parse_window

UTC = timezone.utc  # datetime.UTC is 3.11+; the hosts run 3.9 too

# A window lasts at most a day, so two weeks of starts (plus the day before) hold the next opening
# even when this week's falls into a spring-forward gap.
_LOOKAHEAD_DAYS = 15


class ChangeWindowError(ValueError):
    """Bad input (a window, a time); the message names the site and the input."""


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def normalise_windows(windows, site: str, default_timezone: str = "UTC") -> list[dict]:
    """Windows as the inventory gives them (or as written in an estate), validated."""
    if windows is None:
        return []
    if isinstance(windows, (str, dict)):
        windows = [windows]
    if not isinstance(windows, (list, tuple)):
        raise ChangeWindowError(f"site {site}: windows must be a list of maintenance windows")
    try:
        return [
            parse_window(item, f"maintenance_windows[{i}]", f"site {site}", default_timezone)
            for i, item in enumerate(windows)
        ]
    except EstateError as exc:
        raise ChangeWindowError(str(exc)) from None


def parse_at(value, site: str) -> datetime:
    """An ISO-8601 time (``2026-11-29T02:30:00+00:00``, ``...Z``); no offset means UTC."""
    if value in (None, ""):
        return datetime.now(UTC).replace(microsecond=0)
    try:
        text = str(value).strip()
        if text[-1:] in ("Z", "z"):  # fromisoformat reads a Z suffix only from 3.11
            text = text[:-1] + "+00:00"
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ChangeWindowError(
            f"site {site}: at: {value!r} is not an ISO-8601 time (e.g. 2026-11-29T02:30:00+00:00)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def describe(window: dict) -> str:
    """``sun 02:00-04:00 Europe/London``: a normalised window as people write it."""
    days = "*" if len(window["days"]) == len(DAYS) else ",".join(window["days"])
    return f"{days} {window['start']}-{window['end']} {window['timezone']}"


def _span(window: dict, day: date) -> tuple[datetime, datetime]:
    """The wall-clock (naive) start and end of the window's opening that starts on ``day``."""
    start, end = _minutes(window["start"]), _minutes(window["end"])
    if end <= start:
        end += 24 * 60
    midnight = datetime.combine(day, datetime.min.time())
    return midnight + timedelta(minutes=start), midnight + timedelta(minutes=end)


def _wall(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def window_at(windows: list[dict], moment: datetime) -> dict | None:
    """The first window that is open at ``moment`` (an aware datetime), or None."""
    for window in windows:
        wall = _wall(moment, ZoneInfo(window["timezone"]))
        for day in (wall.date(), wall.date() - timedelta(days=1)):
            if DAYS[day.weekday()] in window["days"]:
                start, end = _span(window, day)
                if start <= wall < end:
                    return window
    return None


def _first_instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first moment (UTC) at which the local clock reads ``wall`` or later.

    Usually the one instant of that wall time; on a fall-back the first of the two; in a
    spring-forward gap (a time the clock never reads) the moment the clock jumps past it.
    """
    earliest = min(wall.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1))
    moment = earliest
    # Offsets change on whole minutes; a gap is at most a few hours (scan is bounded by a day).
    for _minute in range(24 * 60):
        if _wall(moment, tz) >= wall:
            return moment
        moment += timedelta(minutes=1)
    return earliest  # pragma: no cover - no time zone has a gap of a day


def _openings(windows: list[dict], since: datetime):
    """(opens, closes, window) for every opening that starts within the lookahead of ``since``."""
    for window in windows:
        tz = ZoneInfo(window["timezone"])
        first_day = _wall(since, tz).date() - timedelta(days=1)
        for offset in range(_LOOKAHEAD_DAYS + 1):
            day = first_day + timedelta(days=offset)
            if DAYS[day.weekday()] in window["days"]:
                start, end = _span(window, day)
                opens, closes = _first_instant(start, tz), _first_instant(end, tz)
                if opens < closes:  # a window inside a spring-forward gap never opens
                    yield opens, closes, window


def next_opening(windows: list[dict], moment: datetime) -> tuple[datetime, dict] | None:
    """When the next window opens after ``moment``, and which one (None: none ever opens)."""
    starts = [(opens, window) for opens, _closes, window in _openings(windows, moment) if opens > moment]
    return min(starts, key=lambda item: item[0], default=None)


def open_until(windows: list[dict], moment: datetime) -> datetime | None:
    """When the open period around ``moment`` ends (windows that touch or overlap are one
    period); None when closed at ``moment`` or when the windows never close (``* 00:00-24:00``)."""
    until = moment
    for _day in range(_LOOKAHEAD_DAYS):
        ends = [closes for opens, closes, _window in _openings(windows, until) if opens <= until < closes]
        if not ends:
            return None if until == moment else until
        until = max(ends)
    return None


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _local(moment: datetime, window: dict) -> str:
    local = moment.astimezone(ZoneInfo(window["timezone"]))
    return f"{local:%a %Y-%m-%d %H:%M} {window['timezone']}"


def check(
    site: str,
    windows,
    at=None,
    override_reason: str | None = None,
    tier: str | None = None,
    default_timezone: str = "UTC",
) -> dict:
    """Decide whether a change to ``site`` may go ahead at ``at``.

    Returns ``open``, ``overridden``, ``allowed`` (open or overridden), ``window`` (the open one),
    ``next_open``/``open_until`` (ISO, UTC), ``reason`` (the override reason when it was used),
    ``windows`` (normalised) and ``msg`` (one sentence saying why).
    """
    if tier is None:  # site names are <customer>-<tier>
        suffix = site.rsplit("-", 1)[-1]
        tier = suffix if suffix in TIERS else "live"
    moment = parse_at(at, site)
    norm = normalise_windows(windows, site, default_timezone)
    reason = (override_reason or "").strip() or None
    result = {
        "site": site,
        "tier": tier,
        "at": _iso(moment),
        "windows": norm,
        "open": False,
        "overridden": False,
        "allowed": False,
        "window": None,
        "next_open": None,
        "open_until": None,
        "reason": None,
    }

    if not norm:
        if tier != "live":
            result.update(
                open=True, allowed=True, msg=f"{site}: {tier} has no maintenance windows: no constraint"
            )
            return result
        closed = f"{site} has no maintenance window at all, so Live is always closed to changes"
    else:
        window = window_at(norm, moment)
        if window:
            until = open_until(norm, moment)
            closing = f"until {_local(until, window)}" if until else "always"
            result.update(
                open=True,
                allowed=True,
                window=window,
                next_open=_iso(moment),
                open_until=_iso(until),
                msg=f"{site}: maintenance window {describe(window)} is open ({closing})",
            )
            return result
        upcoming = next_opening(norm, moment)
        when = "none opens"
        if upcoming:
            result["next_open"] = _iso(upcoming[0])
            when = f"the next opens {_local(*upcoming)} ({_iso(upcoming[0])})"
        listed = "; ".join(describe(w) for w in norm)
        closed = f"{site} is outside its maintenance windows ({listed}) at {_iso(moment)}; {when}"

    if reason:
        result.update(overridden=True, allowed=True, reason=reason, msg=f"{closed}; overridden: {reason}")
    else:
        result.update(
            msg=f"{closed}. To change it anyway, give an override reason "
            "(override_window_reason=... in the playbooks); the override is recorded.",
        )
    return result
