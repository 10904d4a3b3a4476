"""Standard offset and DST rules of an IANA zone in the shape wazo plugins format.

The facts come from provisor's own time-zone module (provisor.plugins.tz, read from the
system tz database); this module only reshapes them: offsets as :class:`Time`, a DST change as
month, ``"W<week>.<iso weekday>"`` and the local time of the change. The week is counted as
wazo-provd counts it (Monday-started weeks since the first of the month, plus one), so files
come out as they did there.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from provisor.errors import InvalidInput
from provisor.plugins.tz import DstRule, posix_tz, timezone_info

__all__ = [
    "TextTimezoneInfoDB",
    "Time",
    "TimezoneNotFoundError",
    "get_timezone_info",
    "week_start_on_monday",
]


class TimezoneNotFoundError(Exception):
    """The zone name is not in the tz database."""


class Time:
    """A duration in seconds with the views plugins ask for."""

    def __init__(self, raw_seconds: int) -> None:
        self._raw_seconds = raw_seconds

    @property
    def as_seconds(self) -> int:
        """Whole seconds."""
        return self._raw_seconds

    @property
    def as_minutes(self) -> int:
        """Whole minutes (floor)."""
        return self._raw_seconds // 60

    @property
    def as_hours(self) -> int:
        """Whole hours (floor)."""
        return self._raw_seconds // 3600

    @property
    def as_hms(self) -> list[int]:
        """[hours, minutes, seconds]; a negative time puts its sign on the first non-zero part."""
        total = abs(self._raw_seconds)
        parts = [total // 3600, total // 60 % 60, total % 60]
        if self._raw_seconds < 0:
            for i, part in enumerate(parts):
                if part:
                    parts[i] = -part
                    break
        return parts

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Time) and other._raw_seconds == self._raw_seconds

    def __hash__(self) -> int:
        return hash(self._raw_seconds)

    def __repr__(self) -> str:
        return f"Time({self._raw_seconds})"


def _week_of_month(day: date) -> int:
    # Monday-started week numbers (strftime %W) of the day and of the 1st, one-based
    return int(day.strftime("%W")) - int(day.replace(day=1).strftime("%W")) + 1


def _change(rule: DstRule, year: int) -> dict[str, Any]:
    day = date(year, rule.month, rule.day)
    return {
        "month": rule.month,
        "day": f"W{_week_of_month(day)}.{day.isoweekday()}",
        "time": Time(rule.hour * 3600 + rule.minute * 60),
    }


def get_timezone_info(timezone_name: str) -> dict[str, Any]:
    """``{"utcoffset": Time, "dst": None | {"start", "end", "save", "as_string"}}``."""
    year = date.today().year
    try:
        info = timezone_info(timezone_name, year)
    except InvalidInput:
        raise TimezoneNotFoundError(timezone_name) from None
    dst: dict[str, Any] | None = None
    if info.dst_start is not None and info.dst_end is not None:
        dst = {
            "start": _change(info.dst_start, year),
            "end": _change(info.dst_end, year),
            "save": Time(info.dst_save_minutes * 60),
            "as_string": posix_tz(info),
        }
    return {"utcoffset": Time(info.utcoffset_minutes * 60), "dst": dst}


def week_start_on_monday(weekday: int) -> int:
    """Renumber a Sunday-first weekday (1 = Sunday) so that Monday is 1 and Sunday 7."""
    return (weekday + 5) % 7 + 1


class TextTimezoneInfoDB:
    """The older object interface some plugins still instantiate."""

    def get_timezone_info(self, timezone_name: str) -> dict[str, Any]:
        """See :func:`get_timezone_info`."""
        return get_timezone_info(timezone_name)
