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

The times are local times of the station's timezone (the request asks Open-Meteo for that timezone).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.days import aggregate_to_days
from ..data.tables import parse_dates

#: How each weather input aggregates: an amount over the hour before its stamp, or a state at its stamp.
AMOUNTS = ("precipitation", "et0", "pet", "peti")


def station_days(times, values: dict, day_start: str = "00:00", day_label: str = "start") -> pd.DataFrame:
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

    Returns
    -------
    pandas.DataFrame
        Index ``date`` (the station day), one column per name; NaN for a day without all 24 hours.
    """
    t = parse_dates([str(v) for v in times], column="time", source="hourly weather")
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
