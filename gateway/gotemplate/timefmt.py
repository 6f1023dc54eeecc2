"""Go time layouts ("2006-01-02T15:04:05Z07:00") applied to Python datetimes, as sprig's date functions need."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .values import cache_short

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# Chunk codes.
(LONG_MONTH, MONTH, NUM_MONTH, ZERO_MONTH, LONG_WEEKDAY, WEEKDAY, DAY, UNDER_DAY, ZERO_DAY, UNDER_YEARDAY,
 ZERO_YEARDAY, HOUR, HOUR12, ZERO_HOUR12, MINUTE, ZERO_MINUTE, SECOND, ZERO_SECOND, LONG_YEAR, YEAR, PM, LOWER_PM,
 TZ, ISO_TZ, ISO_SHORT_TZ, ISO_COLON_TZ, ISO_SECONDS_TZ, ISO_COLON_SECONDS_TZ, ISO_HOUR_TZ, NUM_TZ, NUM_SHORT_TZ,
 NUM_COLON_TZ, NUM_SECONDS_TZ, NUM_COLON_SECONDS_TZ, FRAC0, FRAC9) = range(36)

_ZERO_X = (ZERO_MONTH, ZERO_DAY, ZERO_HOUR12, ZERO_MINUTE, ZERO_SECOND, YEAR)
_TZ_FORMS = (
    ("-07:00:00", NUM_COLON_SECONDS_TZ), ("-070000", NUM_SECONDS_TZ), ("-07:00", NUM_COLON_TZ),
    ("-0700", NUM_TZ), ("-07", NUM_SHORT_TZ),
    ("Z07:00:00", ISO_COLON_SECONDS_TZ), ("Z070000", ISO_SECONDS_TZ), ("Z07:00", ISO_COLON_TZ),
    ("Z0700", ISO_TZ), ("Z07", ISO_HOUR_TZ),
)


def _starts_lower(s: str) -> bool:
    return bool(s) and "a" <= s[0] <= "z"


@cache_short(256)
def parse_layout(layout: str) -> tuple:
    """A layout as (literal text | (code, arg)) chunks, following Go's time.nextStdChunk."""
    chunks: list = []
    lit_start = 0
    i = 0
    n = len(layout)

    def emit(code, width, arg=None):
        nonlocal lit_start, i
        if lit_start < i:
            chunks.append(layout[lit_start:i])
        chunks.append((code, arg))
        i += width
        lit_start = i

    while i < n:
        c = layout[i]
        rest = layout[i:i + 10]  # enough for the longest element; a slice to the end made this quadratic
        if c == "J" and rest.startswith("Jan"):
            if rest.startswith("January"):
                emit(LONG_MONTH, 7)
                continue
            if not _starts_lower(rest[3:]):
                emit(MONTH, 3)
                continue
        elif c == "M" and len(rest) >= 3:
            if rest.startswith("Mon"):
                if rest.startswith("Monday"):
                    emit(LONG_WEEKDAY, 6)
                    continue
                if not _starts_lower(rest[3:]):
                    emit(WEEKDAY, 3)
                    continue
            if rest.startswith("MST"):
                emit(TZ, 3)
                continue
        elif c == "0":
            if len(rest) >= 2 and "1" <= rest[1] <= "6":
                emit(_ZERO_X[int(rest[1]) - 1], 2)
                continue
            if rest.startswith("002"):
                emit(ZERO_YEARDAY, 3)
                continue
        elif c == "1":
            if rest.startswith("15"):
                emit(HOUR, 2)
            else:
                emit(NUM_MONTH, 1)
            continue
        elif c == "2":
            if rest.startswith("2006"):
                emit(LONG_YEAR, 4)
            else:
                emit(DAY, 1)
            continue
        elif c == "_":
            if rest.startswith("_2"):
                if rest.startswith("_2006"):
                    i += 1  # a literal "_" then the year
                    emit(LONG_YEAR, 4)
                else:
                    emit(UNDER_DAY, 2)
                continue
            if rest.startswith("__2"):
                emit(UNDER_YEARDAY, 3)
                continue
        elif c == "3":
            emit(HOUR12, 1)
            continue
        elif c == "4":
            emit(MINUTE, 1)
            continue
        elif c == "5":
            emit(SECOND, 1)
            continue
        elif c == "P" and rest.startswith("PM"):
            emit(PM, 2)
            continue
        elif c == "p" and rest.startswith("pm"):
            emit(LOWER_PM, 2)
            continue
        elif c in "-Z":
            for form, code in _TZ_FORMS:
                if rest.startswith(form):
                    emit(code, len(form))
                    break
            else:
                i += 1
            continue
        elif c in ".," and len(rest) > 1 and rest[1] in "09":
            ch = rest[1]
            j = i + 1
            while j < n and layout[j] == ch:
                j += 1
            if not (j < n and layout[j].isdigit()):
                emit(FRAC0 if ch == "0" else FRAC9, j - i, (c, j - i - 1))
                continue
        i += 1
    if lit_start < n:
        chunks.append(layout[lit_start:])
    return tuple(chunks)


def _offset_parts(dt: datetime) -> tuple[str, int, int, int]:
    off = dt.utcoffset() or timedelta(0)
    secs = int(off.total_seconds())
    sign = "-" if secs < 0 else "+"
    secs = abs(secs)
    return sign, secs // 3600, secs // 60 % 60, secs % 60


def format_layout(dt: datetime, layout: str) -> str:
    """`dt` formatted by a Go reference layout."""
    out = []
    for chunk in parse_layout(layout):
        if type(chunk) is str:
            out.append(chunk)
            continue
        code, arg = chunk
        if code == LONG_YEAR:
            out.append(f"{dt.year:04d}")
        elif code == YEAR:
            out.append(f"{dt.year % 100:02d}")
        elif code == LONG_MONTH:
            out.append(_MONTHS[dt.month - 1])
        elif code == MONTH:
            out.append(_MONTHS[dt.month - 1][:3])
        elif code == NUM_MONTH:
            out.append(str(dt.month))
        elif code == ZERO_MONTH:
            out.append(f"{dt.month:02d}")
        elif code == LONG_WEEKDAY:
            out.append(_DAYS[dt.weekday()])
        elif code == WEEKDAY:
            out.append(_DAYS[dt.weekday()][:3])
        elif code == DAY:
            out.append(str(dt.day))
        elif code == UNDER_DAY:
            out.append(f"{dt.day:2d}")
        elif code == ZERO_DAY:
            out.append(f"{dt.day:02d}")
        elif code == UNDER_YEARDAY:
            out.append(f"{dt.timetuple().tm_yday:3d}")
        elif code == ZERO_YEARDAY:
            out.append(f"{dt.timetuple().tm_yday:03d}")
        elif code == HOUR:
            out.append(f"{dt.hour:02d}")
        elif code == HOUR12:
            out.append(str(dt.hour % 12 or 12))
        elif code == ZERO_HOUR12:
            out.append(f"{dt.hour % 12 or 12:02d}")
        elif code == MINUTE:
            out.append(str(dt.minute))
        elif code == ZERO_MINUTE:
            out.append(f"{dt.minute:02d}")
        elif code == SECOND:
            out.append(str(dt.second))
        elif code == ZERO_SECOND:
            out.append(f"{dt.second:02d}")
        elif code == PM:
            out.append("PM" if dt.hour >= 12 else "AM")
        elif code == LOWER_PM:
            out.append("pm" if dt.hour >= 12 else "am")
        elif code == TZ:
            name = dt.tzname()
            if name and not name.startswith(("+", "-")):
                out.append(name)
            else:
                sign, h, m, _ = _offset_parts(dt)
                out.append(f"{sign}{h:02d}{m:02d}" if m else f"{sign}{h:02d}")
        elif code in (FRAC0, FRAC9):
            sep, width = arg
            nanos = f"{dt.microsecond:06d}000"[:width]
            if code == FRAC9:
                nanos = nanos.rstrip("0")
                if nanos:
                    out.append(sep + nanos)
            else:
                out.append(sep + nanos)
        else:
            sign, h, m, s = _offset_parts(dt)
            if code in (ISO_TZ, ISO_SHORT_TZ, ISO_COLON_TZ, ISO_SECONDS_TZ, ISO_COLON_SECONDS_TZ, ISO_HOUR_TZ) \
                    and (h, m, s) == (0, 0, 0):
                out.append("Z")
                continue
            if code in (ISO_HOUR_TZ, NUM_SHORT_TZ):
                out.append(f"{sign}{h:02d}")
            elif code in (ISO_TZ, NUM_TZ):
                out.append(f"{sign}{h:02d}{m:02d}")
            elif code in (ISO_COLON_TZ, NUM_COLON_TZ):
                out.append(f"{sign}{h:02d}:{m:02d}")
            elif code in (ISO_SECONDS_TZ, NUM_SECONDS_TZ):
                out.append(f"{sign}{h:02d}{m:02d}{s:02d}")
            else:
                out.append(f"{sign}{h:02d}:{m:02d}:{s:02d}")
    return "".join(out)


def go_time_string(dt: datetime) -> str:
    """Go's Time.String() without the monotonic clock reading."""
    return format_layout(dt, "2006-01-02 15:04:05.999999999 -0700 MST")


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
