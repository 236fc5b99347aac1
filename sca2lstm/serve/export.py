"""The record of what the service issued, in the layout ``sca2lstm verify`` scores (a reforecast table), and the
weather forecasts it stored, in the layout of a station's archive of past forecasts (:func:`weather_archive`).

Every stored forecast of a station (by default the daily issue's) becomes one row per lead: ``issue_date,
valid_date, lead_days, median, q05, q25, q75, q95 (the model's own quantile levels), observed, persistence`` and,
for each level any of the forecasts warned on, ``level_<level>``, ``p_exceed_<level>`` and ``warn_<level>``, then
``basin`` (the station, as ``issued_levels.json``'s levels name it too: ``sca2lstm verify`` refuses another
station's levels).
``level_<level>`` is the level's value (m3/s) the row's forecast was issued with: a station's levels change (a
level set, moved or removed), and a forecast is verified against the level it warned on, not today's. A forecast
issued without the level has all three empty: it did not warn on that level, which is no "no warning" (``sca2lstm
verify`` leaves such rows out of that level's scores and says how many). Warnings nest (a warning for a level is
one for every lower level), so ``warn_<level>`` follows from the highest level each lead warned, by the values of
the levels that forecast was issued with. ``observed`` is the flow known now (file and posted days);
``persistence`` the last observed flow up to the issue date. Where an issue date was issued more than once, its
latest forecast with the most leads counts.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

QUANTILES = ("median", "q05", "q25", "q75", "q95")


def _counted(rows: list[dict]) -> dict:
    """issue date -> the forecast that counts for it: the most leads, then the latest."""
    best: dict = {}
    for r in rows:
        key = r["issue_date"]
        if key not in best or (r["leads"], r["id"]) > (best[key]["leads"], best[key]["id"]):
            best[key] = r
    return best


def _own_levels(row: dict) -> dict:
    """The levels (with a value) the stored forecast ``row`` was issued with."""
    return {n: lv for n, lv in (row.get("levels") or {}).items() if lv.get("value") is not None}


def _levels_of(best: dict) -> dict:
    """Every level the counted forecasts ``best`` were issued with, each as the latest of them that has it gave it:
    the latest forecast's levels first, then those only earlier forecasts warned on (a level since removed)."""
    out: dict = {}
    for issue in sorted(best, reverse=True):
        for n, lv in _own_levels(best[issue]).items():
            out.setdefault(n, lv)
    return out


def issued_levels(rows: list[dict], station: str | None = None) -> dict:
    """The levels (``levels.json`` form) the counted forecasts of ``rows`` were issued with, each with the value of
    the latest forecast that has it ({} where none); each row of :func:`issued_table` carries its own value. Each
    level names ``station`` (key ``basin``), where given."""
    own = {"basin": str(station)} if station is not None else {}
    return {n: {**lv, **own} for n, lv in _levels_of(_counted(rows)).items()}


def issued_table(rows: list[dict], flow: pd.Series, station: str | None = None) -> pd.DataFrame:
    """The reforecast-layout table of the stored forecast ``rows``, with the columns of
    :func:`issued_levels`' levels (each row's ``level_<level>``: the value its forecast was issued with).

    Parameters
    ----------
    rows : list of dict
        Stored forecasts (:meth:`sca2lstm.serve.store.Store.forecasts`), any order.
    flow : pandas.Series
        The station's daily observed flow now (m3/s, date index).
    station : str, optional
        The station's id, written in the last column, ``basin`` (left out where None).
    """
    best = _counted(rows)
    last = ["basin"] if station is not None else []
    if not best:
        return pd.DataFrame(columns=["issue_date", "valid_date", "lead_days", *QUANTILES, "observed", "persistence",
                                     *last])
    levels = _levels_of(best)
    known = flow.dropna()
    out = []
    for issue in sorted(best):
        r, t0 = best[issue], pd.Timestamp(issue)
        own = _own_levels(r)   # the levels this forecast warned on, with the values it was issued with
        before = known.loc[:t0]
        pers = float(before.iloc[-1]) if len(before) else np.nan
        for lead in r["table"]:
            valid = pd.Timestamp(lead["valid_date"])
            # the levels the model gave (a forecast stored before they were kept: the five default ones)
            given = lead.get("quantiles") or {q: lead.get(q) for q in QUANTILES[1:]}
            row = {"issue_date": issue, "valid_date": lead["valid_date"], "lead_days": int(lead["lead_days"]),
                   "median": lead.get("median"), **given, "observed": float(flow.get(valid, np.nan)),
                   "persistence": pers}
            top = lead.get("warning")
            top_value = own[top]["value"] if top in own else None
            for name in levels:
                lv = own.get(name)
                if lv is None:  # issued without this level: it warned neither way on it (empty, not False)
                    row.update({f"level_{name}": np.nan, f"p_exceed_{name}": np.nan, f"warn_{name}": None})
                    continue
                p = (lead.get("p_exceed") or {}).get(name)
                row[f"level_{name}"] = float(lv["value"])
                row[f"p_exceed_{name}"] = np.nan if p is None else p
                row[f"warn_{name}"] = bool(top_value is not None and lv["value"] <= top_value)
            if last:  # the last column: the documented ones keep their places
                row["basin"] = str(station)
            out.append(row)
    return pd.DataFrame(out)


#: pandas 3 reads every float back exactly by default (and deprecates the argument); older pandas needs "round_trip"
_EXACT_FLOATS = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}

#: The key columns of an archive of past weather forecasts (:mod:`sca2lstm.weather.archive`), in its order.
ARCHIVE_KEYS = ("issue_date", "lead_days", "valid_date", "member")


def archive_issue_date(row: dict) -> pd.Timestamp:
    """The flow issue date t0 a stored weather forecast (a summary row) is the run of, in an archive: the first issue
    date it serves (:meth:`sca2lstm.serve.weather.WeatherForecasts.add`), the day before its issue date or before its
    first complete valid day, whichever is later. A forecast fetched on the morning after t0 (Open-Meteo's first day
    t0 + 1, its lead 0) is so the run of t0, as the service's forecast of t0 read it, and its day t0 + k lead k."""
    return max(pd.Timestamp(row["issue_date"]), pd.Timestamp(row["first_valid"])) - pd.Timedelta(days=1)


def weather_archive(rows: list[dict]) -> pd.DataFrame:
    """The stored weather forecasts ``rows`` (:meth:`sca2lstm.serve.store.Store.weather_tables`) as a station's archive
    ``issue_date, lead_days, valid_date, member, <inputs>`` (docs/weather.md, "The archive's format"): one run per
    issue date t0 (:func:`archive_issue_date`), its rows valid on t0 + 1 ... with their values as stored (a member
    or day the service left out, incomplete, stays incomplete: the archive's readers leave it out alike); rows valid
    on t0 or before (lead 0: the incomplete first station day of an hourly answer) are no part of t0's forecast.

    Where several stored forecasts are runs of one issue date, the one that counts is the newest issued, then the
    latest stored, as the service's forecasts choose among the forecasts that cover their lead days
    (:meth:`sca2lstm.serve.weather.WeatherForecasts.for_issue`); the others are left out.
    """
    counted: dict = {}
    for r in rows:
        t0 = archive_issue_date(r)
        if t0 not in counted or (r["issue_date"], r["id"]) > (counted[t0]["issue_date"], counted[t0]["id"]):
            counted[t0] = r
    parts = []
    for t0 in sorted(counted):
        # round_trip: each value read back as the float the service stored, not one a last digit off
        t = pd.read_csv(io.StringIO(counted[t0]["table_csv"]), **_EXACT_FLOATS)
        # the store writes its days as YYYY-MM-DD: read so, not by guessing the form of each table (most of the time)
        lead = (pd.to_datetime(t["valid_date"], format="ISO8601") - t0).dt.days
        keep = (lead >= 1).to_numpy()
        values = t.drop(columns=[c for c in ARCHIVE_KEYS if c in t.columns])
        parts.append(pd.concat([pd.DataFrame({"issue_date": str(t0.date()), "lead_days": lead,
                                              "valid_date": t["valid_date"], "member": t["member"].astype(int)}),
                                values], axis=1)[keep])
    if not parts:
        return pd.DataFrame(columns=list(ARCHIVE_KEYS))
    return (pd.concat(parts, ignore_index=True).sort_values(["issue_date", "member", "lead_days"], kind="stable")
            .reset_index(drop=True))
