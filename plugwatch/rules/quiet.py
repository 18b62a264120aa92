"""Quiet hours: is a moment inside a rule's daily quiet window, and when does the window end."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from plugwatch.rules.model import QuietHours


def quiet_until(quiet: QuietHours, now: float, tz: tzinfo) -> float | None:
    """The end of the quiet window containing `now` (epoch s), or None when `now` is not quiet."""
    local = datetime.fromtimestamp(now, tz)
    minute = local.hour * 60 + local.minute
    start, end = quiet.minutes("start"), quiet.minutes("end")
    if start == end:
        return None
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    ends = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
    if ends <= local:
        ends = (ends.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=tz)
    return ends.timestamp()
