"""Sub-daily records to days, by the station's day rule.

The rule (stored per station in ``meta/<id>.json``, see :mod:`.station_meta`):

- **Day boundary** ``day_start`` (``HH:MM``) in the station's *standard* time, without daylight saving
  (China's hydrological day runs 08:00 to 08:00 Beijing time; the UK's 09:00 is GMT all year).
- **Label**: a day is named by the date on which it starts (``label="start"``: 08:00 on 1 June to
  08:00 on 2 June is 1 June, the hydrological convention), or on which it ends (``"end"``, e.g. the
  Chinese meteorological day 20:00 to 20:00).
- **Stamp**: a timestamp marks the start of the interval its value stands for (``stamp="start"``: the
  value at 08:00 covers 08:00 to the next timestamp), or its end (``"end"``, e.g. 时段雨量, the rain
  of the hour before).
- **Time zones**: ``timezone`` is the zone the timestamps are written in (an IANA name such as
  ``Asia/Shanghai`` or ``Europe/London``, or a fixed offset such as ``UTC+08:00``); a zone with
  daylight saving is read as clock time with its shifts. ``station_timezone`` is the zone whose
  standard time the day boundary is in (default: ``timezone``). Without either, timestamps are taken
  to be in the station's standard time already.

Each value holds over its interval, from its timestamp to the next (a step, not a trapezoid), so
irregular sampling is weighted by time. A value holds at most ``hold`` (default: the record's usual
spacing, the larger of the median and the 90th percentile of its time steps): a longer silence is a
gap. An interval that crosses a day boundary is split by time.

- ``"sum"`` (precipitation, amounts per interval): the day's total, each amount spread evenly over its
  interval. Not scaled up for missing time: the day is missing instead when too much is missing.
- ``"mean"`` (temperature, discharge, stage): the time-weighted mean over the covered part of the day.
- ``"max"``: the largest value whose interval touches the day (written as ``<column>_max``).

**Missing days.** A day whose values cover less than ``1 - max_missing`` of its 24 hours is missing,
not partial. The default ``max_missing`` is 0.1: up to 2 of 24 hourly values (or 28 of 288 five-minute
values) may be absent. Then a daily mean of a slowly varying series (discharge, stage, temperature)
moves by a small fraction of its diurnal range, and a daily rain total misses at most 2.4 hours of
rain; allowing more would let one missed storm hour in three pass as a dry day. Days with full
coverage are counted as complete.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import DataError, UsageError
from .station_meta import DAY_LABELS, STAMPS, check_day_time

DAY_SECONDS = 86400
DEFAULT_MAX_MISSING = 0.1
HOWS = ("sum", "mean", "max")
_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


def parse_zone(name, flag: str = "--timezone") -> _dt.tzinfo:
    """A time zone: an IANA name (``Asia/Shanghai``), ``UTC``, or a fixed offset (``UTC+08:00``, ``+8``)."""
    text = str(name).strip()
    if text.upper() in ("UTC", "GMT", "Z"):
        return _dt.timezone.utc
    m = _OFFSET.match(text)
    if m:
        sign = 1 if m[1] == "+" else -1
        hours, minutes = int(m[2]), int(m[3] or 0)
        if hours > 14 or minutes > 59:
            raise UsageError(f"{flag} {name!r}: an offset must lie within UTC-14:00 .. UTC+14:00")
        return _dt.timezone(sign * _dt.timedelta(hours=hours, minutes=minutes))
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"{flag} {name!r} is not a time zone; give an IANA name (e.g. Asia/Shanghai, "
                         "Europe/London) or an offset (e.g. UTC+08:00)") from None


def standard_offset(zone: _dt.tzinfo, year: int = 2000) -> _dt.timedelta:
    """The zone's offset from UTC without daylight saving (taken in January or July of ``year``)."""
    for month in (1, 7):
        t = _dt.datetime(year, month, 1, 12, tzinfo=zone)
        if not t.dst():
            return t.utcoffset()
    return _dt.datetime(year, 1, 1, 12, tzinfo=zone).utcoffset()  # pragma: no cover - always-DST zones


def to_station_time(stamps: pd.DatetimeIndex, timezone=None, station_timezone=None) -> pd.DatetimeIndex:
    """Naive timestamps written in ``timezone`` -> naive timestamps in the station's standard time."""
    if timezone is None and station_timezone is None:
        return pd.DatetimeIndex(stamps)
    src = parse_zone(timezone or station_timezone)
    dst = parse_zone(station_timezone, "--station_timezone") if station_timezone else src
    try:
        utc = pd.DatetimeIndex(stamps).tz_localize(src, ambiguous="infer", nonexistent="raise").tz_convert("UTC")
    except Exception as e:  # pytz/pandas raise several kinds for ambiguous or skipped clock times
        std = standard_offset(src, int(stamps[0].year) if len(stamps) else 2000)
        minutes = int(std.total_seconds() // 60)
        fixed = f"UTC{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        raise DataError(f"timestamps in {timezone or station_timezone}: {str(e).splitlines()[0].split('. Try')[0].rstrip('.')} (a clock time "
                        "repeated or skipped by a daylight-saving change); a logger that keeps standard time all "
                        f"year wrote them in --timezone {fixed} ({timezone or station_timezone} without summer "
                        "time)") from None
    off = standard_offset(dst, int(stamps[0].year) if len(stamps) else 2000)
    return pd.DatetimeIndex((utc + off).tz_localize(None))


@dataclass
class DailyResult:
    """Days from a sub-daily record.

    ``frame``: one row per day (``DatetimeIndex`` named ``date``, labelled by the rule), the aggregated
    columns (NaN where a day is missing). ``coverage``: the same shape, the share of each day covered by
    each input column's values (0..1). ``counts``: per input column, days ``complete`` / ``partial``
    (kept) / ``missing``. ``step``: the record's median time step.
    """

    frame: pd.DataFrame
    coverage: pd.DataFrame
    counts: dict = field(default_factory=dict)
    step: pd.Timedelta | None = None
    hold: pd.Timedelta | None = None

    def summary(self, max_missing: float) -> str:
        """One line: how many days were complete, partial and missing (over every column)."""
        cov = self.coverage.to_numpy()
        full = (cov >= 1.0 - 1e-9).all(axis=1).sum() if cov.size else 0
        kept = (cov >= 1.0 - max_missing - 1e-9).all(axis=1).sum() if cov.size else 0
        return (f"{len(self.frame)} days from {_fmt_step(self.step)} records: {int(full)} complete, "
                f"{int(kept - full)} partial (at most {max_missing:.0%} of the day missing, kept), "
                f"{len(self.frame) - int(kept)} with a column missing more (left missing)")


def _fmt_step(step) -> str:
    if step is None:
        return "?"
    minutes = step / pd.Timedelta(minutes=1)
    return f"{minutes:g}-minute" if minutes < 60 else f"{minutes / 60:g}-hour"


def _seconds(stamps: pd.DatetimeIndex) -> np.ndarray:
    return (pd.DatetimeIndex(stamps).as_unit("s").asi8).astype(np.int64)


def aggregate_to_days(frame: pd.DataFrame, day_start: str = "00:00", timezone=None, stamp: str = "start",
                      label: str = "start", how: dict | None = None, max_missing: float = DEFAULT_MAX_MISSING,
                      station_timezone=None, hold=None) -> DailyResult:
    """Aggregate a sub-daily (or irregular) record to days by the day rule of the module docstring.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``DatetimeIndex`` (naive, in ``timezone``; unsorted allowed, duplicates refused), float columns.
    day_start : str
        ``HH:MM``, the day boundary in the station's standard time.
    timezone, station_timezone : str, optional
        See the module docstring.
    stamp, label : {"start", "end"}
    how : dict
        ``{column: "sum" | "mean" | "max" | ("mean", "max")}``; "max" writes ``<column>_max``.
        Default: every column ``"mean"``.
    max_missing : float
        Share of a day (0..1) that may lack values before the day is missing.
    hold : pandas.Timedelta, optional
        The longest a value holds (default: the record's usual spacing).

    Returns
    -------
    DailyResult
    """
    start = check_day_time(day_start)
    if stamp not in STAMPS:
        raise UsageError(f"--stamp {stamp!r} is not one of {', '.join(STAMPS)}")
    if label not in DAY_LABELS:
        raise UsageError(f"--day_label {label!r} is not one of {', '.join(DAY_LABELS)}")
    if not (0.0 <= float(max_missing) < 1.0):
        raise UsageError(f"--max_missing {max_missing!r} must lie in [0, 1): the share of a day that may lack values")
    how = {c: "mean" for c in frame.columns} if how is None else dict(how)
    for c, h in how.items():
        hs = (h,) if isinstance(h, str) else tuple(h)
        if c not in frame.columns or not hs or any(x not in HOWS for x in hs):
            raise UsageError(f"aggregation {c}={h!r}: the column must exist and the rule be one of {', '.join(HOWS)}")
    if len(frame) < 2:
        raise DataError("a sub-daily record needs at least two timestamps")
    frame = frame.sort_index()
    local = to_station_time(pd.DatetimeIndex(frame.index), timezone, station_timezone)
    dup = local.duplicated()
    if dup.any():
        raise DataError(f"timestamp {frame.index[np.flatnonzero(dup)[0]]} appears twice; expected one row per time")
    t = _seconds(local)
    steps = np.diff(t)
    step = int(np.median(steps))
    cap = int(hold / pd.Timedelta(seconds=1)) if hold is not None else max(step, int(np.percentile(steps, 90)))
    if stamp == "start":
        a = t.copy()
        b = t + np.minimum(np.append(steps, step), cap)
    else:
        b = t.copy()
        a = t - np.minimum(np.insert(steps, 0, step), cap)
    hh, mm = (int(x) for x in start.split(":"))
    s0 = hh * 3600 + mm * 60
    ka = np.floor_divide(a - s0, DAY_SECONDS)
    kb = np.floor_divide(b - 1 - s0, DAY_SECONDS)
    k0, k1 = int(ka.min()), int(kb.max())
    ndays = k1 - k0 + 1
    # Split every interval at the day boundaries it crosses: pieces (row, day, seconds).
    rows, days, secs = [], [], []
    for j in range(int((kb - ka).max()) + 1):
        sel = np.flatnonzero(ka + j <= kb)
        k = ka[sel] + j
        lo = np.maximum(a[sel], k * DAY_SECONDS + s0)
        hi = np.minimum(b[sel], (k + 1) * DAY_SECONDS + s0)
        rows.append(sel)
        days.append(k - k0)
        secs.append(hi - lo)
    rows, days, secs = np.concatenate(rows), np.concatenate(days), np.concatenate(secs).astype(np.float64)
    length = (b - a).astype(np.float64)

    out, cov_out = {}, {}
    for c, h in how.items():
        hs = (h,) if isinstance(h, str) else tuple(h)
        v = frame[c].to_numpy(np.float64)[rows]
        ok = np.isfinite(v)
        cov = np.bincount(days[ok], secs[ok], minlength=ndays)
        keep = cov >= (1.0 - float(max_missing)) * DAY_SECONDS - 1e-6
        cov_out[c] = cov / DAY_SECONDS
        with np.errstate(invalid="ignore", divide="ignore"):
            if "sum" in hs:
                total = np.bincount(days[ok], v[ok] * secs[ok] / length[rows][ok], minlength=ndays)
                out[c] = np.where(keep, total, np.nan)
            if "mean" in hs:
                wsum = np.bincount(days[ok], v[ok] * secs[ok], minlength=ndays)
                out[c] = np.where(keep, wsum / cov, np.nan)
            if "max" in hs:
                mx = np.full(ndays, -np.inf)
                np.maximum.at(mx, days[ok], v[ok])
                out[f"{c}_max"] = np.where(keep, mx, np.nan)
    first = pd.Timestamp("1970-01-01") + pd.Timedelta(days=k0 + (1 if label == "end" else 0))
    index = pd.date_range(first, periods=ndays, freq="D", name="date")
    res = pd.DataFrame(out, index=index)
    coverage = pd.DataFrame(cov_out, index=index)
    counts = {}
    for c in how:
        cv = coverage[c].to_numpy()
        full = int((cv >= 1.0 - 1e-9).sum())
        kept = int((cv >= 1.0 - float(max_missing) - 1e-9).sum())
        counts[c] = {"complete": full, "partial": kept - full, "missing": ndays - kept}
    return DailyResult(res, coverage, counts, pd.Timedelta(seconds=step), pd.Timedelta(seconds=cap))


def days_of(stamps: pd.DatetimeIndex, day_start: str = "00:00", stamp: str = "start", label: str = "start",
            timezone=None, station_timezone=None, step: pd.Timedelta | None = None) -> pd.DatetimeIndex:
    """The day (by the rule) each value of a daily record belongs to: the day in which its interval starts."""
    start = check_day_time(day_start)
    local = to_station_time(pd.DatetimeIndex(stamps), timezone, station_timezone)
    begin = local - (step if step is not None else pd.Timedelta(days=1)) if stamp == "end" else local
    hh, mm = (int(x) for x in start.split(":"))
    day = (begin - pd.Timedelta(hours=hh, minutes=mm)).normalize()
    return pd.DatetimeIndex(day + pd.Timedelta(days=1) if label == "end" else day, name="date")
