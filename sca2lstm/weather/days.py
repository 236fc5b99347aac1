"""Hourly weather values to a station's days (its day rule: start hour, label, timezone).

Open-Meteo's daily values run from local midnight. A station whose day starts at another hour (08:00 in
many Chinese hydrological yearbooks) needs hourly values summed (precipitation, ET0) or averaged
(temperature) over its own day. The rule is the station's, from ``DIR/meta/<id>.json``
(:class:`sca2lstm.data.station_meta.StationMeta`: ``day_start``, ``day_label``):

* an hourly **amount** (precipitation, ET0) stamped at time ``t`` is the sum over the hour ending at ``t``
  (Open-Meteo's convention: "preceding hour sum"), so it belongs to the day that holds ``t - 1 h``;
* an hourly **state** (temperature) stamped at ``t`` is the value at ``t``, so it belongs to the day that
  holds ``t``;
* a day runs from ``day_start`` on one date to ``day_start`` on the next and is named by its start date
  (``day_label: start``) or its end date (``end``);
* a day needs all 24 hours of a variable, else it is NaN (a partial first or last day of a response).

The times are local clock times of the answer's ``timezone`` (the request asks Open-Meteo for the station's).
Like an imported record's (:mod:`sca2lstm.data.days`), the day boundary is in that zone's *standard* time, so
the times are moved to it first (:func:`standard_times`): Open-Meteo writes a whole answer at one UTC offset
(``utc_offset_seconds``, that of its first hour), so an answer across a daylight-saving change keeps 24 hours a
calendar day; an answer written in the zone's true clock (a 23-hour and a 25-hour day, the repeated hour in
order) is read by that clock. Either way every station day gets its 24 hours.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.days import aggregate_to_days, parse_zone, standard_offset, to_station_time
from ..data.tables import parse_dates
from ..errors import DataError, UsageError, WeatherSourceError

#: How each weather input aggregates: an amount over the hour before its stamp, or a state at its stamp.
AMOUNTS = ("precipitation", "et0", "pet", "peti")


def standard_times(t: pd.DatetimeIndex, timezone=None, utc_offset=None, source: str = "hourly weather") -> pd.DatetimeIndex:
    """Local times ``t`` of an answer in ``timezone`` as times of that zone's standard time (no daylight saving).

    Parameters
    ----------
    t : pandas.DatetimeIndex
        Naive local times, in the answer's order.
    timezone : str, optional
        The answer's zone (an IANA name, ``GMT``); None: ``t`` is taken as it is.
    utc_offset : float, optional
        The answer's ``utc_offset_seconds``: the one offset of times one hour apart each (Open-Meteo's way);
        without it, the zone's offset at the first time.
    source : str
        Named in the error.

    Returns
    -------
    pandas.DatetimeIndex
        Naive times in the zone's standard time.

    Raises
    ------
    WeatherSourceError
        Times that are not a clock of the zone (a repeated hour out of order). A zone the time-zone database
        does not know leaves ``t`` as it is.
    """
    if not timezone or len(t) == 0:
        return t
    try:
        zone = parse_zone(timezone)
    except UsageError:  # a zone this machine's time-zone database lacks: its clock, as it is
        return t
    std = pd.Timedelta(standard_offset(zone, int(t[0].year)))
    steps = np.diff(t.as_unit("s").asi8)
    if (steps == 3600).all():  # one offset throughout (Open-Meteo's): that of the answer, else of its first hour
        try:
            off = pd.Timedelta(seconds=float(utc_offset))
        except (TypeError, ValueError):  # none stated (or not a number)
            off = pd.Timedelta(t[0].to_pydatetime().replace(tzinfo=zone).utcoffset())
        return t - off + std
    try:  # the zone's true clock (an hour skipped in spring, one repeated in autumn), read as a record's stamps are
        return to_station_time(t, timezone)
    except DataError:  # its advice is a logger's (--timezone); an answer's times are the service's
        raise WeatherSourceError(f"{source}: the times are not hours of the {timezone} clock (a clock time skipped "
                                 "or repeated out of order)") from None


def station_days(times, values: dict, day_start: str = "00:00", day_label: str = "start", timezone=None,
                 utc_offset=None) -> pd.DataFrame:
    """Aggregate hourly values to station days, through the station importer's day rule.

    Parameters
    ----------
    times : array_like of str or datetime [H]
        Local hourly timestamps (ISO 8601, e.g. ``2024-05-01T08:00``).
    values : dict of name -> array_like [H]
        Hourly values; ``precipitation`` and ET0/PET are summed, anything else averaged.
    day_start : str
        ``HH:MM`` at which the station's day starts.
    day_label : {"start", "end"}
    timezone, utc_offset : optional
        The answer's ``timezone`` and ``utc_offset_seconds``: the times are moved to the zone's standard
        time, in which the station's day starts (:func:`standard_times`). None: taken as they are.

    Returns
    -------
    pandas.DataFrame
        Index ``date`` (the station day), one column per name; NaN for a day without all 24 hours.
    """
    t = standard_times(parse_dates([str(v) for v in times], column="time", source="hourly weather"), timezone,
                       utc_offset)
    frame = pd.DataFrame({n: pd.to_numeric(pd.Series(np.asarray(v, dtype=object)), errors="coerce")
                          .to_numpy(np.float64) for n, v in values.items()}, index=t)
    parts = []
    # An amount is stamped at the end of its hour, a state at its start; a day needs all 24 hours.
    for stamp, names in (("end", [n for n in frame if n in AMOUNTS]), ("start", [n for n in frame if n not in AMOUNTS])):
        if names:
            how = {n: "sum" if stamp == "end" else "mean" for n in names}
            parts.append(aggregate_to_days(frame[names], day_start, stamp=stamp, label=day_label, how=how,
                                           max_missing=0.0, hold=pd.Timedelta(hours=1)).frame)
    df = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=pd.DatetimeIndex([], name="date"))
    df.index = pd.DatetimeIndex(df.index, name="date")
    return df[list(values)].sort_index()
