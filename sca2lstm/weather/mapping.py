"""Quantile mapping of an archive's forecast precipitation to the station's observed climatology.

A coarse weather model often forecasts drizzle on days the station stays dry and damps its storms; its
lead-k forecasts then have another distribution than the rain the model was trained on. Quantile mapping
(``forecast --precip_mapping quantile``) replaces each forecast amount by the observed amount of the same
rank: the forecast's rank among the archive's lead-k forecasts issued before its issue date, the observed
amount of that rank among the station's daily precipitation of its training years. Only precipitation is
mapped. Mapping every forecast cost wet-biased forecasts with heavy peaks a little skill, so the default,
``auto``, maps only forecasts that are drizzly with damped storms (:func:`drizzly`; docs/experiments.md,
"Forecasts that err otherwise, and quantile mapping of forecast precipitation"). Which archive a forecast is
ranked among, and whether a model's own training rules the mapping out, is decided per basin in
:mod:`sca2lstm.evaluation.rain_mapping`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..errors import DataError
from ..notes import Note, said_value
from ..words import say

#: The ways of mapping forecast precipitation (``forecast --precip_mapping``).
PRECIP_MAPPINGS = ("none", "quantile", "auto")
#: A lead with forecasts of fewer earlier issue dates than this is left as the archive gives it: its forecast
#: climatology is too short a sample to rank against. Counted in issue dates, not values: the 50 members of a few
#: days in a dry spell are one weather situation, not 200 independent forecasts.
MIN_ISSUE_DATES = 180
#: Above the largest forecast of its sample an amount keeps its ratio to it, where that largest is a wet day's
#: rain (mm/d) at least; below that the ratio has no scale (0.1 mm would turn 5 mm into thousands), and the
#: amount is left as given.
WET_MM = 1.0
#: The archive's rain is compared with the observed (:func:`archive_rain`) on at least this many valid days of a
#: lead: a 99th percentile of fewer days is one storm or none, and the comparison says nothing.
MIN_COMPARED_DAYS = 60
#: Forecasts are called drizzly with damped storms, the case ``--precip_mapping quantile`` helped in the experiment
#: (docs/experiments.md; ``auto`` maps only those, a reforecast's comparison hints at the mapping for them), where
#: their share of wet days (>= :data:`WET_MM`) is more than ``DRIZZLY_WET_RATIO`` times the observed one AND their
#: 99th percentile less than ``DAMPED_P99_RATIO`` times the observed one: a clear excess of wet days and a clear
#: deficit of storms together, not one alone (wet-biased forecasts with heavy peaks have more wet days too, and
#: the mapping cost them a little skill). Set before any scoring.
DRIZZLY_WET_RATIO = 1.2
DAMPED_P99_RATIO = 0.85


def quantile_map(x, forecast_sample, observed_sample, *, assume_sorted: bool = False) -> np.ndarray:
    """Forecast amounts mapped from the forecast's climatology to the observed one, by rank.

    Each value's plotting position is its mid-rank in the forecast sample, ``(#{F < x} + #{F <= x}) / 2 / n``
    (ties, such as many equal drizzle amounts, take the middle of their ranks); the result is the observed
    sample's value at that position, by linear interpolation between the observed values at their
    positions ``(i + 0.5) / m`` (and the smallest / largest observed beyond the first / last). A forecast
    of 0 stays 0; one above the largest forecast of the sample is the largest observed times
    ``x / max(F)`` (a storm beyond the sample keeps its ratio, not capped at the largest observed) where
    ``max(F)`` is a wet day's rain (:data:`WET_MM`), else left as it is (a sample of zeros, or of drizzle only,
    ranks no storm).

    Parameters
    ----------
    x : array_like, shape [...]
        Forecast amounts (mm/d, >= 0); NaN stays NaN.
    forecast_sample : array_like, shape [n]
        The forecast climatology (finite, n >= 1).
    observed_sample : array_like, shape [m]
        The observed climatology (finite, m >= 1).
    assume_sorted : bool
        Both samples are sorted ascending already (saves the sorts in a loop over issue dates).

    Returns
    -------
    numpy.ndarray, float64, shape of ``x``
        The mapped amounts.
    """
    x = np.asarray(x, dtype=np.float64)
    f = np.asarray(forecast_sample, dtype=np.float64)
    o = np.asarray(observed_sample, dtype=np.float64)
    if not assume_sorted:
        f, o = np.sort(f), np.sort(o)
    if f.size == 0 or o.size == 0:
        raise ValueError(f"empty sample: {f.size} forecast and {o.size} observed values")
    rank = (np.searchsorted(f, x, "left") + np.searchsorted(f, x, "right")) / (2.0 * f.size)
    y = np.interp(rank, (np.arange(o.size) + 0.5) / o.size, o)
    # Above the sample: its ratio to the largest forecast, where that is a wet day's rain; a sample of zeros or
    # drizzle only (an archive begun in a dry spell) has no scale: o[-1] * x / 1e-9 was 10^9 times too much rain
    y = np.where(x > f[-1], o[-1] * x / f[-1] if f[-1] >= WET_MM else x, y)
    y = np.where(x <= 0, 0.0, y)
    return np.where(np.isnan(x), np.nan, y)


def drizzly(forecast_sample, observed_sample) -> bool:
    """Whether a forecast climatology is drizzly with damped storms against the observed one (``auto``): a share of
    days >= :data:`WET_MM` above :data:`DRIZZLY_WET_RATIO` times the observed share, and a 99th percentile
    below :data:`DAMPED_P99_RATIO` times the observed one. Samples [n], [m], finite."""
    f = np.asarray(forecast_sample, dtype=np.float64)
    o = np.asarray(observed_sample, dtype=np.float64)
    return damped_drizzle(np.count_nonzero(f >= WET_MM) / f.size, np.count_nonzero(o >= WET_MM) / o.size,
                          np.quantile(f, 0.99), np.quantile(o, 0.99))


def damped_drizzle(wet_forecast, wet_observed, p99_forecast, p99_observed) -> bool:
    """The one rule of "drizzly with damped storms" (:data:`DRIZZLY_WET_RATIO`, :data:`DAMPED_P99_RATIO`) on the
    shares of days >= :data:`WET_MM` and the 99th percentiles of forecast and observed rain (False where one is
    NaN): what ``auto`` maps and what a reforecast's comparison hints at."""
    return bool(wet_forecast > DRIZZLY_WET_RATIO * wet_observed and p99_forecast < DAMPED_P99_RATIO * p99_observed)


def _sample(values: np.ndarray, issues: np.ndarray) -> tuple[np.ndarray, int]:
    """A forecast sample: the finite ``values`` sorted, and how many of ``issues`` (their issue dates) hold one."""
    finite = np.isfinite(values)
    return np.sort(values[finite]), int(np.unique(issues[finite]).size)


def forecast_samples(table: pd.DataFrame, before) -> dict[int, tuple[np.ndarray, int]]:
    """Per lead (days), the forecast sample :func:`map_precipitation` ranks a forecast issued on ``before`` among:
    the finite precipitation of the lead's forecasts in ``table`` (an archive: ``issue_date``, ``valid_date``,
    ``precipitation``) issued strictly before it, sorted, and the number of issue dates it holds. A lead the table
    lacks is absent (an empty sample). What one forecast ranked among a station's archive reads of that archive:
    kept, it is not sorted again for the next forecast of that date (``samples`` of :func:`map_precipitation`)."""
    issue = table["issue_date"].to_numpy("datetime64[D]")
    lead = (table["valid_date"].to_numpy("datetime64[D]") - issue).astype(np.int64)
    p = table["precipitation"].to_numpy(np.float64)
    early = issue < pd.Timestamp(before).to_datetime64().astype("datetime64[D]")
    issue, lead, p = issue[early], lead[early], p[early]
    order = np.argsort(lead, kind="stable")
    leads, starts = np.unique(lead[order], return_index=True)
    ends = np.r_[starts[1:], len(order)]
    return {int(k): _sample(p[order[a:b]], issue[order[a:b]]) for k, a, b in zip(leads, starts, ends)}


def map_precipitation(table: pd.DataFrame, observed, issue_dates,
                      min_issue_dates: int = MIN_ISSUE_DATES, method: str = "quantile",
                      samples: dict | None = None, ranked_among=None) -> tuple[pd.DataFrame, dict]:
    """An archive's precipitation of the forecasts issued on ``issue_dates`` quantile-mapped, per lead.

    The forecast sample of issue date t and lead k is the lead-k precipitation of every forecast in
    ``table`` issued strictly before t (all members pooled): nothing issued on or after t, so a forecast
    is mapped with what was known when it was issued, and a reforecast maps each date as a single forecast
    of that date does. The observed sample is ``observed``.

    Parameters
    ----------
    table : pandas.DataFrame, shape [rows, ...]
        A long table (:class:`sca2lstm.weather.files.WeatherForecast` ``table``): ``issue_date``,
        ``valid_date`` and ``precipitation``; the lead is ``valid_date - issue_date`` in days.
    observed : array_like, shape [days]
        The station's observed daily precipitation (its training years); NaN are left out.
    issue_dates : iterable of dates
        The issue dates whose rows are mapped; the other rows are returned as they are.
    min_issue_dates : int
        A lead whose forecast sample comes from fewer issue dates (with an amount of the lead: NaN is none) is
        left unmapped (:data:`MIN_ISSUE_DATES`).
    method : {'quantile', 'auto'}
        ``auto``: a date's lead is mapped only where its forecast sample is :func:`drizzly`.
    samples : dict, optional
        The forecast samples of the first date mapped (:func:`forecast_samples` of the archive its forecasts are
        ranked among), where ``table`` holds no forecast issued before that date: one forecast ranked among a
        station's archive, without the archive put beside it and sorted again for every forecast.
    ranked_among : array_like, optional
        The precipitation of ``table``'s rows the forecast samples are read from (None: ``table``'s own): an archive
        whose issue dates' runs were combined with their earlier runs (:mod:`sca2lstm.weather.lagged`) is ranked
        among its runs as issued, as a single forecast of a date, combined alone, is.

    Returns
    -------
    (pandas.DataFrame, dict)
        A copy of ``table`` with the mapped precipitation, and ``{issue date: [(lead, values in its forecast
        sample's issue dates), ...]}`` for the leads left unmapped for too few (dates with none left out).
    """
    o = np.asarray(observed, dtype=np.float64)
    o = np.sort(o[np.isfinite(o)])
    if o.size == 0:
        raise ValueError("no observed precipitation to map the forecasts to")
    out = table.copy()
    issue = out["issue_date"].to_numpy("datetime64[D]")
    lead = (out["valid_date"].to_numpy("datetime64[D]") - issue).astype(np.int64)
    p = out["precipitation"].to_numpy(np.float64).copy()
    wanted = np.isin(issue, pd.DatetimeIndex(list(issue_dates)).to_numpy("datetime64[D]"))
    short: dict = {}
    given = p.copy()                                 # the amounts mapped
    # the archive's amounts: what later dates rank among (its runs as issued where the table's were combined)
    p0 = given.copy() if ranked_among is None else np.asarray(ranked_among, dtype=np.float64)
    for k in np.unique(lead[wanted]):
        sel = np.flatnonzero(lead == k)
        sel = sel[np.argsort(issue[sel], kind="stable")]
        days, starts = np.unique(issue[sel], return_index=True)
        ends = np.r_[starts[1:], len(sel)]
        target = np.isin(days, issue[sel][wanted[sel]])
        first = int(np.flatnonzero(target)[0])
        # The dates before the first one mapped are sorted in one go (one forecast of today, ranked among ten years
        # of an archive, would otherwise insert the years date by date); from there the sample grows date by date.
        head = sel[:starts[first]]
        if samples is not None and head.size:
            raise ValueError("samples are those of the forecasts issued before the first date mapped; the table "
                             "holds some too")
        # the lead's amounts issued before days[j], sorted, and the issue dates before days[j] with an amount of the
        # lead (one without, nulls, is no sample)
        f, n = _sample(p0[head], issue[head]) if samples is None else samples.get(int(k), (np.empty(0), 0))
        for j in range(first, int(np.flatnonzero(target)[-1]) + 1):
            rows = sel[starts[j]:ends[j]]
            if target[j]:
                if n < min_issue_dates:
                    short.setdefault(pd.Timestamp(days[j]), []).append((int(k), n))
                elif method != "auto" or drizzly(f, o):
                    p[rows] = quantile_map(given[rows], f, o, assume_sorted=True)
            v = np.sort(p0[rows][np.isfinite(p0[rows])])
            n += v.size > 0
            f = np.insert(f, np.searchsorted(f, v), v)  # one pass over the dates: a copy per date, not a mask
    out["precipitation"] = p
    return out, short


def check_mappable(weather, mapping: str, given: str | None = None, station_archive: bool = False) -> None:
    """A one-line DataError where ``mapping`` (``--precip_mapping quantile``) maps precipitation but has nothing to
    rank it among: ``weather`` is no archive of past forecasts (a :class:`~sca2lstm.weather.files.WeatherForecast`
    of several issue dates), whose earlier forecasts are the forecast climatology, and the station has no archive
    of its own (``station_archive``: one forecast is then ranked among that archive's forecasts); a ValueError for
    an unknown ``mapping``. ``given``: the file as the user named it (None: none given)."""
    from .files import WeatherForecast

    if mapping not in PRECIP_MAPPINGS:
        raise ValueError(f"precip_mapping {mapping!r}: expected one of {list(PRECIP_MAPPINGS)}")
    if mapping != "quantile":   # auto (the default) maps an archive where it applies, and nothing else
        return
    if weather is None:
        raise DataError(f"--precip_mapping {mapping} maps the forecasts of an archive of past weather forecasts; give "
                        "one with --weather_forecast ARCHIVE (issue_date, lead_days, valid_date[, member], <inputs>)")
    if (not isinstance(weather, WeatherForecast) or len(weather.issue_dates) < 2) and not station_archive:
        what = "a table of one forecast's days" if not isinstance(weather, WeatherForecast) else "one forecast"
        raise DataError(f"--precip_mapping {mapping}: --weather_forecast {given or getattr(weather, 'source', '')} holds "
                        f"{what}, not an archive of past forecasts (several issue dates) to rank its precipitation "
                        "among, and the station has no archive of its own (DATA_DIR/weather_archive/<id>.csv); give "
                        "the archive, or --precip_mapping none")


def unmapped_text(short: dict, min_issue_dates: int = MIN_ISSUE_DATES, given: str = "the archive",
                  source="the weather forecast") -> Note | None:
    """One sentence naming the issue dates and leads :func:`map_precipitation` left unmapped (None: none), "left as
    ``given`` gives it", of the weather forecast ``source``: a :class:`~sca2lstm.notes.Note`, said in Chinese too."""
    if not short:
        return None
    first = min(short)
    values = {"source": source, "leads": [int(k) for k, _ in short[first]], "day": str(first.date()),
              "min_issue_dates": int(min_issue_dates), "most": int(max(n for _, n in short[first])), "given": given}
    if len(short) > 1:
        return Note("unmapped_leads_later", **values, later=len(short) - 1)
    return Note("unmapped_leads", **values)


def rain_statistics(forecast, observed) -> dict:
    """Forecast precipitation against the observed on the same valid days: wet days, 99th percentile, total, correlation.

    Members are pooled: each member's amount is a pair with the observed amount of its valid day. A pair with a
    NaN on either side is left out.

    Parameters
    ----------
    forecast : array_like, shape [..., days, members]
        Forecast amounts (mm/d) per valid day and member; NaN where there is none.
    observed : array_like, shape [..., days]
        The observed amounts (mm/d) of the same valid days; NaN where not observed.

    Returns
    -------
    dict of numpy.ndarray, each of shape [...]
        ``days`` (valid days with an observed amount and a forecast one), ``wet_forecast`` / ``wet_observed``
        (the share of pairs >= :data:`WET_MM`), ``p99_forecast`` / ``p99_observed`` (mm/d, linear
        interpolation), ``total_ratio`` (forecast total / observed total) and ``correlation`` (Pearson, of the
        pairs); NaN where undefined (no pairs, no observed rain, a constant side).
    """
    f = np.asarray(forecast, dtype=np.float64)
    o = np.broadcast_to(np.asarray(observed, dtype=np.float64)[..., None], f.shape)
    ok = np.isfinite(f) & np.isfinite(o)
    fm, om = np.where(ok, f, np.nan), np.where(ok, o, np.nan)
    flat = f.shape[:-2] + (-1,)
    n = ok.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)           # all-NaN slices: NaN is the answer
        fc = fm - np.nanmean(fm.reshape(flat), axis=-1)[..., None, None]
        oc = om - np.nanmean(om.reshape(flat), axis=-1)[..., None, None]
        return {
            "days": ok.any(axis=-1).sum(axis=-1),
            "wet_forecast": (ok & (f >= WET_MM)).sum(axis=(-2, -1)) / n,
            "wet_observed": (ok & (o >= WET_MM)).sum(axis=(-2, -1)) / n,
            "p99_forecast": np.nanpercentile(fm.reshape(flat), 99, axis=-1),
            "p99_observed": np.nanpercentile(om.reshape(flat), 99, axis=-1),
            "total_ratio": np.nansum(fm, axis=(-2, -1)) / np.nansum(om, axis=(-2, -1)),
            "correlation": np.nansum(fc * oc, axis=(-2, -1))
            / np.sqrt(np.nansum(fc ** 2, axis=(-2, -1)) * np.nansum(oc ** 2, axis=(-2, -1))),
        }


def _lead_arrays(table: pd.DataFrame, issue_dates: np.ndarray, leads: np.ndarray) -> np.ndarray:
    """[leads, issue dates, members] precipitation of ``table`` (NaN where it has none)."""
    issue = table["issue_date"].to_numpy("datetime64[D]")
    lead = (table["valid_date"].to_numpy("datetime64[D]") - issue).astype(np.int64)
    members, m = np.unique(table["member"].to_numpy(), return_inverse=True)
    li, di = np.searchsorted(leads, lead), np.searchsorted(issue_dates, issue)
    take = (li < len(leads)) & (di < len(issue_dates))
    take[take] &= (leads[li[take]] == lead[take]) & (issue_dates[di[take]] == issue[take])
    out = np.full((len(leads), len(issue_dates), max(len(members), 1)), np.nan)
    out[li[take], di[take], m[take]] = table["precipitation"].to_numpy(np.float64)[take]
    return out


def _num(x, digits: int = 4):
    x = float(x)
    return round(x, digits) if np.isfinite(x) else None


def archive_rain(table: pd.DataFrame, observed: pd.Series, issue_dates, leads, mapped: pd.DataFrame | None = None,
                 min_days: int = MIN_COMPARED_DAYS) -> dict:
    """An archive's forecast precipitation of ``issue_dates`` against the station's observed, per lead (a record).

    This verifies past forecasts on days already observed: every valid day's observed amount is used, not only
    what was known on the issue date.

    Parameters
    ----------
    table : pandas.DataFrame, shape [rows, ...]
        The archive as given (``issue_date``, ``valid_date``, ``member``, ``precipitation``), before any mapping.
    observed : pandas.Series, shape [days]
        The station's observed daily precipitation (mm/d), indexed by date.
    issue_dates : iterable of dates
        The issue dates compared (a reforecast's).
    leads : iterable of int
        The leads compared (lead 1 and the reforecast's last).
    mapped : pandas.DataFrame or None
        The same archive with its precipitation mapped (``--precip_mapping``): its share of wet days is added.
    min_days : int
        A lead compared on fewer valid days is left out (:data:`MIN_COMPARED_DAYS`).

    Returns
    -------
    dict
        ``{"wet_mm", "min_days", "leads": {"<k>": {"days", "wet_days_forecast", "wet_days_observed", "p99_forecast",
        "p99_observed", "total_ratio", "correlation"[, "wet_days_mapped"], "drizzly_with_damped_storms"}}}``
        (JSON-ready; a figure that is undefined is None).
    """
    d = np.unique(pd.DatetimeIndex(list(issue_dates)).to_numpy("datetime64[D]"))
    k = np.unique(np.asarray(list(leads), dtype=np.int64))
    obs = observed.copy()
    obs.index = pd.DatetimeIndex(obs.index)
    o = obs.reindex(pd.DatetimeIndex((d[None, :] + k[:, None]).ravel())).to_numpy(np.float64).reshape(len(k), len(d))
    st = rain_statistics(_lead_arrays(table, d, k), o)
    wet_mapped = rain_statistics(_lead_arrays(mapped, d, k), o)["wet_forecast"] if mapped is not None else None
    out: dict = {}
    for j, lead in enumerate(k):
        if st["days"][j] < min_days:
            continue
        r = {"days": int(st["days"][j]), "wet_days_forecast": _num(st["wet_forecast"][j]),
             "wet_days_observed": _num(st["wet_observed"][j]), "p99_forecast": _num(st["p99_forecast"][j], 2),
             "p99_observed": _num(st["p99_observed"][j], 2), "total_ratio": _num(st["total_ratio"][j]),
             "correlation": _num(st["correlation"][j])}
        if wet_mapped is not None:
            r["wet_days_mapped"] = _num(wet_mapped[j])
        r["drizzly_with_damped_storms"] = damped_drizzle(st["wet_forecast"][j], st["wet_observed"][j],
                                                         st["p99_forecast"][j], st["p99_observed"][j])
        out[str(int(lead))] = r
    return {"wet_mm": WET_MM, "min_days": min_days, "leads": out}


def archive_rain_text(record: dict | None, mapping: str = "none", not_mapped_because: str | None = None,
                      language: str = "en") -> str | None:
    """One line of :func:`archive_rain`'s lead 1 (None: no record, or too few days to say anything), with the
    hint to map the precipitation where the forecasts are drizzly with damped storms (``not_mapped_because``: why
    the mapping asked for was not made, which the line says instead), in ``language``
    (:data:`sca2lstm.words.WORDS`): the figures the same in each."""
    r = (record or {}).get("leads", {}).get("1")
    if r is None:
        return None
    na = say("not_available", language)

    def pct(x):
        return na if x is None else f"{100 * x:.0f} %"

    def mm(x):
        return na if x is None else f"{x:.1f}"

    mapped = say("archive_rain_mapped", language, pct=pct(r["wet_days_mapped"])) if "wet_days_mapped" in r else ""
    text = say("archive_rain", language, days=r["days"], wet_mm=record["wet_mm"],
               wet_forecast=pct(r["wet_days_forecast"]), mapped=mapped, wet_observed=pct(r["wet_days_observed"]),
               p99_forecast=mm(r["p99_forecast"]), p99_observed=mm(r["p99_observed"]),
               total=na if r["total_ratio"] is None else f"x{r['total_ratio']:.2f}",
               corr=na if r["correlation"] is None else f"{r['correlation']:.2f}")
    if r["drizzly_with_damped_storms"] and not_mapped_because:
        text += say("drizzly_not_mapped", language, why=said_value(not_mapped_because, language))
    elif r["drizzly_with_damped_storms"]:
        text += say(f"drizzly_{mapping}", language)
    return text
