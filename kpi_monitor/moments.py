"""`--until` / `--at`: a moment given on the command line, read in the business calendar's zone."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo


def parse_moment(text: str, zone: tzinfo, option: str, now: datetime) -> datetime:
    """An ISO 8601 date or time (`2026-11-18`, `2026-11-18T16:30`, `...+08:00`), at most `now`;
    without an offset it is a wall time of the rules file's zone, as the periods are."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{option} {text!r} is not an ISO 8601 time; give e.g. 2026-11-18T16:30 (the rules "
            "file's time zone) or 2026-11-18T16:30:00+00:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    if moment > now:
        when = f"{now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
        raise ValueError(f"{option} {text!r} is in the future (now is {when})")
    return moment.astimezone(UTC)
