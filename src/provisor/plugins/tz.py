"""Time-zone facts for plugins: standard offset and daylight-saving rules of an IANA zone.

Phones do not know IANA names: each vendor wants an offset and DST rules in its own shape
("month/week/weekday/hour" for Yealink, "3/-1/7/2:0:0" for Cisco, a table index for others).
This module derives the facts once from the system tz database (``zoneinfo``) so each plugin
only formats them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from provisor.errors import InvalidInput

__all__ = ["DstRule", "TzInfo", "format_offset", "posix_tz", "timezone_info"]


@dataclass(frozen=True, slots=True)
class DstRule:
    """When a DST change happens, in local wall-clock time before the change."""

    month: int  # 1..12
    day: int  # day of month in the year the rule was read
    week: int  # 1..4, or 5 meaning "last" week of the month
    weekday: int  # ISO: 1 = Monday … 7 = Sunday
    hour: int
    minute: int


@dataclass(frozen=True, slots=True)
class TzInfo:
    """Standard UTC offset and DST rules of a zone."""

    name: str
    utcoffset_minutes: int  # standard (winter) offset, e.g. -300 for America/Montreal
    dst_save_minutes: int  # 0 when the zone has no DST
    dst_start: DstRule | None
    dst_end: DstRule | None

    @property
    def has_dst(self) -> bool:
        """True when the zone observes daylight-saving time."""
        return self.dst_start is not None


def format_offset(minutes: int, *, sep: str = ":", plus_zero: bool = True) -> str:
    """Format an offset in minutes as ``+01:00`` / ``-05:30``."""
    sign = "-" if minutes < 0 else "+"
    if minutes == 0 and not plus_zero:
        sign = ""
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}{sep}{m:02d}"


@lru_cache(maxsize=512)
def timezone_info(name: str, year: int | None = None) -> TzInfo:
    """The offset and DST rules of IANA zone ``name`` (for ``year``, default this year)."""
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"timezone: unknown time zone {name!r}") from None
    year = year or datetime.now(UTC).year
    changes = _transitions(zone, year)
    offsets = [_offset(zone, datetime(year, m, 15, tzinfo=UTC)) for m in (1, 7)]
    if not changes:
        return TzInfo(name, offsets[0], 0, None, None)
    standard = min(offsets)
    save = max(offsets) - standard
    start = end = None
    for when_utc, before, after in changes:
        local_before = (when_utc + timedelta(minutes=before)).replace(tzinfo=None)
        rule = _rule(local_before)
        if after > before:
            start = rule
        else:
            end = rule
    return TzInfo(name, standard, save, start, end)


def _offset(zone: ZoneInfo, when_utc: datetime) -> int:
    delta = when_utc.astimezone(zone).utcoffset()
    return int(delta.total_seconds() // 60) if delta else 0


def _transitions(zone: ZoneInfo, year: int) -> list[tuple[datetime, int, int]]:
    """UTC instants (to the minute) where the offset changes during ``year``."""
    out: list[tuple[datetime, int, int]] = []
    t = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    step = timedelta(days=1)
    prev = _offset(zone, t)
    while t < end:
        nxt = t + step
        cur = _offset(zone, nxt)
        if cur != prev:
            lo, hi = t, nxt
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                if _offset(zone, mid) == prev:
                    lo = mid
                else:
                    hi = mid
            out.append((hi.replace(second=0, microsecond=0), prev, cur))
            prev = cur
        t = nxt
    return out


def _rule(local: datetime) -> DstRule:
    next_week = local + timedelta(days=7)
    week = 5 if next_week.month != local.month else (local.day - 1) // 7 + 1
    return DstRule(
        month=local.month,
        day=local.day,
        week=week,
        weekday=local.isoweekday(),
        hour=local.hour,
        minute=local.minute,
    )


def posix_tz(info: TzInfo, std: str = "STD", dst: str = "DST") -> str:
    """A POSIX TZ string (``STD-1DST,M3.5.0/2,M10.5.0/3``) for phones that take one."""

    def offset(minutes: int) -> str:
        # POSIX offsets are west-positive: UTC+1 is "-1"
        sign = "-" if minutes > 0 else "+" if minutes < 0 else ""
        h, m = divmod(abs(minutes), 60)
        return f"{sign}{h}" + (f":{m:02d}" if m else "")

    text = f"{std}{offset(info.utcoffset_minutes)}"
    if info.dst_start is None or info.dst_end is None:
        return text

    def rule(r: DstRule) -> str:
        return f"M{r.month}.{r.week}.{r.weekday % 7}/{r.hour}" + (
            f":{r.minute:02d}" if r.minute else ""
        )

    return f"{text}{dst},{rule(info.dst_start)},{rule(info.dst_end)}"
