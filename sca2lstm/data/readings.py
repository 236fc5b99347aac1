"""Irregular readings to days: the area method for an excerpt record (摘录).

A Chinese township record often reads the water level once a day at 08:00 and, on flood days, every hour
or few hours. Such a record is neither daily (some days hold several rows) nor regular sub-daily (most
steps are a day long), so it is read as **instantaneous readings**:

- ``"mean"`` columns (discharge, already converted from each stage reading through the rating curve, the
  stage itself, temperature): the value is taken to vary linearly between consecutive readings, and a
  day's mean is the area under that line over the day divided by its length (trapezoids), the values at
  the day's two boundaries interpolated between the readings either side. This is the hydrologist's area
  method for daily means. The day's maximum (``<column>_max``) is the line's highest point in the day.
- ``"sum"`` columns (precipitation, PET): each reading is the amount of the period ending at its time
  (时段雨量), so a day's total is the sum of the readings that fall in it, a reading exactly at the day's
  start closing the day before (08:00's reading is the rain of the 24 hours before); a day whose readings
  are all missing values is missing. A reading whose period (since the previous reading with a value) holds a
  whole station day without any reading (an 08:00 reading missed, a row left out) is the amount of several
  days that cannot be split among them: where it is above 0 the days of its period are missing (counted as
  ``accumulated``), not 0 mm on the unread days and the whole amount on the day it was read; where it is 0
  they are 0 mm, no rain having fallen in the whole period.
- ``"any"`` columns (flags): the largest flag of the readings the day's line is drawn from.

A day is computed only where readings lie on both sides of it (at or beyond its boundaries) and no two
consecutive readings among them are more than :data:`MAX_READING_GAP` apart (``max_gap``; ``sca2lstm station
import --max_reading_gap``); the days inside a longer silence are missing, not interpolated across.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .days import DAY_SECONDS, to_station_time
from .station_meta import check_day_time

#: The longest interval between consecutive readings that is interpolated across: two days lets an ordinary
#: day read once at 08:00 miss one reading (a holiday, a lost sheet) and still be drawn from its neighbours; a
#: longer silence may hide a flood that rose and fell unread, so the days inside it are left missing.
MAX_READING_GAP = pd.Timedelta(days=2)
#: The shortest such interval a user may set (``--max_reading_gap``): an excerpt record reads its ordinary days once
#: a day, so a shorter limit would leave every one of them missing.
MIN_READING_GAP = pd.Timedelta(days=1)
#: The longest: a line drawn across a silence of more than a month would stand for floods and recessions nobody read.
MAX_SETTABLE_READING_GAP = pd.Timedelta(days=30)
#: A record whose steps are a day or longer this often, while some day holds several readings, is an excerpt
#: record: a regular logger has day-long steps only at its outages.
DAY_STEP_SHARE = 0.2


def is_irregular(stamps: pd.DatetimeIndex, days: pd.DatetimeIndex) -> bool:
    """True for an excerpt record: timestamps with a time of day, some station day (``days``, the day of each
    stamp by the day rule) holding several readings, and at least :data:`DAY_STEP_SHARE` of the steps a day or
    longer (ordinary days read once)."""
    if len(stamps) < 3 or (stamps == stamps.normalize()).all() or not days.duplicated().any():
        return False
    steps = np.diff(pd.DatetimeIndex(stamps).sort_values().as_unit("s").asi8)
    return bool((steps >= DAY_SECONDS).mean() >= DAY_STEP_SHARE)


def _area_to(x, tc, vc, area):
    """The area under the line through the readings ``(tc, vc)`` from the first reading to ``x`` (``area``: the
    area up to each reading), and the line's value at ``x``; meaningful between the first and last reading."""
    j = np.clip(np.searchsorted(tc, x, side="right") - 1, 0, len(tc) - 2)
    vx = np.interp(x, tc, vc)
    return area[j] + (x - tc[j]) * (vc[j] + vx) / 2.0, vx


def readings_to_days(frame: pd.DataFrame, how: dict, day_start: str = "00:00", label: str = "start",
                     timezone=None, station_timezone=None, max_gap: pd.Timedelta = MAX_READING_GAP):
    """Daily values from irregular readings by the rules of the module docstring.

    Parameters
    ----------
    frame : pandas.DataFrame
        Readings on a sorted ``DatetimeIndex`` (naive, in ``timezone``), float columns.
    how : dict
        ``{column: "mean" | ("mean", "max") | "sum" | "any"}``; "max" writes ``<column>_max``.
    day_start, label, timezone, station_timezone
        The day rule (:mod:`.days`).
    max_gap : pandas.Timedelta
        The longest interval between readings interpolated across.

    Returns
    -------
    (pandas.DataFrame, dict)
        One row per day from the first to the last reading's day (``DatetimeIndex`` named ``date``), and
        the counts of days: ``one_reading``, ``several_readings``, ``no_reading`` and, per column,
        ``missing`` and (``"sum"`` columns) ``accumulated``: the days left missing because one reading holds the
        amount of several (days that would be computed otherwise).
    """
    hh, mm = (int(x) for x in check_day_time(day_start).split(":"))
    s0 = hh * 3600 + mm * 60
    t = to_station_time(pd.DatetimeIndex(frame.index), timezone, station_timezone).as_unit("s").asi8.astype(np.int64)
    k = np.floor_divide(t - s0, DAY_SECONDS)
    k0, ndays = int(k.min()), int(k.max() - k.min()) + 1
    lo = (np.arange(ndays) + k0) * DAY_SECONDS + s0     # each day's start; it ends at lo + DAY_SECONDS
    hi = lo + DAY_SECONDS
    per_day = np.bincount(k - k0, minlength=ndays)
    gap = max_gap / pd.Timedelta(seconds=1)
    out, accumulated = {}, {}
    for c, h in how.items():
        hs = (h,) if isinstance(h, str) else tuple(h)
        v = frame[c].to_numpy(np.float64)
        ok = np.isfinite(v)
        tc, vc = t[ok], v[ok]
        if len(tc) < 2:
            for name in hs:
                out[f"{c}_max" if name == "max" else c] = np.full(ndays, np.nan)
            continue
        # The readings the day is drawn from: the last at or before its start to the first at or after its end.
        i0 = np.searchsorted(tc, lo, side="right") - 1
        i1 = np.searchsorted(tc, hi, side="left")
        long = np.concatenate([[0], np.cumsum(np.diff(tc) > gap)])   # long gaps up to each reading
        inside = (i0 >= 0) & (i1 < len(tc))
        a, b = np.clip(i0, 0, len(tc) - 1), np.clip(i1, 0, len(tc) - 1)
        covered = inside & (long[b] == long[a])
        with np.errstate(invalid="ignore"):
            if "mean" in hs or "max" in hs:
                # The area under the line from the first reading: trapezoids summed, then the part up to t.
                area = np.concatenate([[0.0], np.cumsum(np.diff(tc) * (vc[1:] + vc[:-1]) / 2.0)])
                f_lo, v_lo = _area_to(lo, tc, vc, area)
                f_hi, v_hi = _area_to(hi, tc, vc, area)
                if "mean" in hs:
                    out[c] = np.where(covered, (f_hi - f_lo) / DAY_SECONDS, np.nan)
                if "max" in hs:
                    mx = np.maximum(v_lo, v_hi)
                    kin = np.floor_divide(tc - s0, DAY_SECONDS) - k0   # readings inside a day raise its max
                    np.maximum.at(mx, kin, vc)
                    out[f"{c}_max"] = np.where(covered, mx, np.nan)
            if "sum" in hs:
                # A reading closes its period: one exactly at a day's start belongs to the day before.
                kend = -np.floor_divide(-(tc - s0), DAY_SECONDS) - 1 - k0
                keep = (kend >= 0) & (kend < ndays)
                total = np.bincount(kend[keep], vc[keep], minlength=ndays)
                # A day whose readings are all missing cells (缺测 on an ordinary day's one reading) has no known
                # total: missing, not 0 mm
                kall = -np.floor_divide(-(t - s0), DAY_SECONDS) - 1 - k0
                inall = (kall >= 0) & (kall < ndays)
                unread = (np.bincount(kall[inall & ~ok], minlength=ndays) > 0) & (
                    np.bincount(kall[inall & ok], minlength=ndays) == 0)
                # A reading's period runs from the previous reading with a value; its amount falls on the days
                # after that reading's day up to its own. Where one of those days (before its own) has no row at all,
                # nobody emptied the gauge then: the amount is several days' rain, which no rule splits by day. A
                # row whose value is missing (缺测) was a visit, and its day is missing by the rule above.
                rowless = np.concatenate([[0], np.cumsum(np.bincount(kall[inall], minlength=ndays) == 0)])
                first = np.clip(kend[:-1] + 1, 0, ndays)
                last = np.clip(kend[1:], 0, ndays)
                several = (rowless[last] - rowless[first] > 0) & (vc[1:] > 0)
                mark = np.zeros(ndays + 1)
                np.add.at(mark, first[several], 1)
                np.add.at(mark, last[several] + 1, -1)
                split = np.cumsum(mark)[:ndays] > 0
                accumulated[c] = int((split & covered & ~unread).sum())
                out[c] = np.where(covered & ~unread & ~split, total, np.nan)
            if "any" in hs:
                out[c] = np.array([vc[x:y + 1].max() if z else np.nan for x, y, z in zip(a, b, covered)])
    first = pd.Timestamp("1970-01-01") + pd.Timedelta(days=k0 + (1 if label == "end" else 0))
    index = pd.date_range(first, periods=ndays, freq="D", name="date")
    daily = pd.DataFrame(out, index=index)
    counts = {"one_reading": int((per_day == 1).sum()), "several_readings": int((per_day > 1).sum()),
              "no_reading": int((per_day == 0).sum()),
              "missing": {c: int(daily[c].isna().sum()) for c in how}, "accumulated": accumulated}
    return daily, counts
