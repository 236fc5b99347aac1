"""Input features, all strictly causal.

A feature at day t uses meteorology up to and including day t, and observed discharge only up to day
t - lead_days (the forecast issue time). Nothing looks ahead: rolling windows are trailing, running
counts only look back, and discharge-derived features are shifted by ``lead_days`` before anything
else is done with them.

Raw features are returned unscaled; :mod:`sca2lstm.data.scaling` standardises them with statistics
fitted on the training period only.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from ..config import Config

# How each feature is scaled: "global" (mean/std pooled over training basins), "basin_q" (the basin's
# discharge scaler, like the target) or "basin_ssi" (the basin's log-discharge state scaler).
# A "flag" feature is not scaled (mean 0, standard deviation 1).
GLOBAL, BASIN_Q, BASIN_SSI, FLAG = "global", "basin_q", "basin_ssi", "flag"

#: Derived features computed from precipitation alone (unknown after an issue date without a
#: weather forecast, like the meteorological inputs themselves).
PRECIP_DERIVED = ("precip_sum_7d", "precip_sum_30d", "high_precip_days", "low_precip_days")
#: Calendar features: known on every day.
CALENDAR = ("doy_sin", "doy_cos")
#: ``data.forecast_flag``: 1 on a lead day whose weather inputs come from a weather forecast, else 0. A
#: record never carries it (0 in every file); only the issue-time masking sets it
#: (:func:`sca2lstm.data.issue_time.mask_issue_time`), so the model can tell a forecast, which errs more
#: with every lead, from observed weather.
FORECAST_FLAG = "weather_is_forecast"
#: How a chart of attention weights names the flag on days whose weather is observed (a hindcast, a forecast's issue
#: day): its value is 0 there, so its weight multiplies nothing, which a reader of the chart must be told.
OBSERVED_FLAG_LABEL = f"{FORECAST_FLAG} (= 0: observed weather)"

#: What each input is, in a chart's words (the unit after the comma), for the attention charts: "doy_cos" or "ssi"
#: alone told a hydrologist nothing. ``discharge_lag{n}`` is described by :func:`feature_label`.
FEATURE_TEXT = {
    "precipitation": "precipitation, mm/d", "pet": "potential evapotranspiration (PET), mm/d",
    "peti": "PET with interception, mm/d", "temperature": "air temperature, °C",
    "humidity": "humidity", "shortwave_rad": "shortwave radiation, W/m²", "longwave_rad": "longwave radiation, W/m²",
    "windspeed": "wind speed, m/s", "precip_sum_7d": "precipitation of the last 7 days, mm",
    "precip_sum_30d": "precipitation of the last 30 days, mm", "high_precip_days": "days in a run of heavy-rain days",
    "low_precip_days": "days in a run of dry days", "doy_sin": "day of year, sine", "doy_cos": "day of year, cosine",
    "ssi": "flow state index (standardised log-flow)",
}

SSI_EPS = 1e-3  # m3/s added before the log, so zero flow (ephemeral streams) stays finite
#: The trailing windows of the precipitation sums (``precip_sum_7d``, ``precip_sum_30d``), in days.
PRECIP_SUM_DAYS = (7, 30)
#: The least share of a rain sum's window whose rain is known for the sum to be given (6 of 7 days, 24 of 30); the sum
#: of a window with gaps is that of the days present rescaled to the window (docs/experiments.md, "Rain sums of a
#: patchy rain record": fixed before it was measured, never tuned).
PRECIP_SUM_MIN_SHARE = 0.8


def precip_sum_min_days(days: int) -> int:
    """The least number of days of a ``days``-day window with known rain for its sum (:data:`PRECIP_SUM_MIN_SHARE`)."""
    return math.ceil(round(PRECIP_SUM_MIN_SHARE * days, 9))  # rounded first: 0.8 * 30 must give 24, not 25


def precip_sum(p: pd.Series, days: int) -> np.ndarray:
    """Trailing ``days``-day rain sum of the daily series ``p`` (NaN: unknown), in float64.

    A window with every day known gives the plain sum, bit for bit that of ``p.rolling(days).sum()`` (a model trained
    on complete records sees what it always saw). A window with gaps gives the sum of its known days times
    ``days / known`` where at least :func:`precip_sum_min_days` days are known, else NaN: one scattered gap no longer
    loses the month's rain. A window that reaches before the series' first day is NaN, as it always was.
    """
    plain = p.rolling(days, min_periods=days).sum().to_numpy()
    known = p.notna().astype(np.float64).rolling(days, min_periods=days).sum().to_numpy()  # NaN before a full window
    total = p.rolling(days, min_periods=1).sum().to_numpy()                                # of the known days
    return np.where(np.isfinite(plain), plain, rescaled_sum(total, known, days))


def rescaled_sum(total, known, days: int) -> np.ndarray:
    """The rain sum of a ``days``-day window from ``total``, the sum of its ``known`` days with rain: ``total`` where
    every day is known, ``total * days / known`` where at least :func:`precip_sum_min_days` are, else NaN (also where
    ``known`` is NaN). The one rule of :func:`precip_sum` and of the forecast lead days' sums
    (:class:`sca2lstm.weather.windows.LeadWeather`)."""
    total, known = np.asarray(total, dtype=np.float64), np.asarray(known, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        part = np.where(known >= precip_sum_min_days(days), total * days / known, np.nan)
    return np.where(known == days, total, part)


def feature_spec(cfg: Config) -> list[tuple[str, str]]:
    """Names and scaling kinds of the dynamic input features, in model order (from the config alone)."""
    d = cfg.data
    spec = [(c, GLOBAL) for c in d.dynamic_inputs]
    if d.derived_features:
        spec += [(n, GLOBAL) for n in PRECIP_DERIVED]
    spec += [(n, GLOBAL) for n in CALENDAR]
    if d.forecast_flag:
        spec += [(FORECAST_FLAG, FLAG)]
    if d.use_discharge_input:
        spec += [(f"discharge_lag{d.lead_days}", BASIN_Q)]
        if d.derived_features:
            spec += [("ssi", BASIN_SSI)]
    return spec


def feature_names(cfg: Config) -> list[str]:
    return [n for n, _ in feature_spec(cfg)]


def feature_label(name: str) -> str:
    """How a chart names the input ``name``: what it is and its unit, then its identifier (that of the config, the
    CSV columns and the docs) in brackets where the words do not start with it, e.g. ``"day of year, cosine [doy_cos]"``;
    an input not described keeps its identifier alone."""
    lag = re.fullmatch(r"discharge_lag(\d+)", name)
    if lag:
        n = int(lag.group(1))
        text = f"observed discharge {n} day{'' if n == 1 else 's'} earlier, m³/s"
    else:
        text = FEATURE_TEXT.get(name)
    if not text:
        return name
    return text if text.startswith(f"{name},") else f"{text} [{name}]"  # "precipitation, mm/d" names itself


def feature_labels(names) -> dict:
    """``{name: feature_label(name)}`` for each of ``names`` (the ``labels`` of the attention charts)."""
    return {n: feature_label(n) for n in names}


def required_columns(cfg: Config) -> list[str]:
    cols = list(cfg.data.dynamic_inputs)
    if cfg.data.derived_features and "precipitation" not in cols:
        cols.append("precipitation")
    cols.append(cfg.data.target)
    return cols


def feature_lookback(cfg: Config) -> int:
    """Days before a day ``t`` whose values the features of ``t`` read (trailing windows and lags).

    The runs of high- and low-precipitation days are not counted: they reach back to their start, however
    long ago (a cut of the record must fall on a day that ends them; see
    :func:`sca2lstm.evaluation.operational.recent_part`).
    """
    d = cfg.data
    back = 0
    if d.derived_features:
        back = max(PRECIP_SUM_DAYS) - 1
    if d.use_discharge_input:
        back = max(back, d.lead_days)
        if d.derived_features:  # the SSI state: a trailing mean of the lagged flow
            back = max(back, d.lead_days + d.ssi_window - 1)
    return back


def _run_length(cond: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Length of the run of True in ``cond`` that ends at each day (0 where False); NaN where invalid.

    A missing day breaks a run: the count restarts after it. Vectorised with a running maximum of the
    last index where the run was broken.
    """
    idx = np.arange(len(cond))
    broken = ~(cond & valid)
    last_break = np.maximum.accumulate(np.where(broken, idx, -1))
    run = (idx - last_break).astype(np.float64)
    run[~valid] = np.nan
    return run


def raw_features(df: pd.DataFrame, cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """Compute the raw (unscaled) dynamic features and the target of one basin.

    Parameters
    ----------
    df : pandas.DataFrame
        Output of :func:`sca2lstm.data.reader.read_timeseries`: a daily, gap-free date index.
    cfg : Config

    Returns
    -------
    x : numpy.ndarray, float32, shape [T, N]
        Features in :func:`feature_names` order; NaN where missing.
    y : numpy.ndarray, float32, shape [T]
        The target (``cfg.data.target``, m3/s); NaN where not observed. Never filled.
    """
    d = cfg.data
    cols = []
    for c in d.dynamic_inputs:
        cols.append(df[c].to_numpy(np.float64))
    if d.derived_features:
        p = df["precipitation"]
        for days in PRECIP_SUM_DAYS:
            cols.append(precip_sum(p, days))
        pv = p.to_numpy()
        valid = np.isfinite(pv)
        with np.errstate(invalid="ignore"):
            cols.append(_run_length(pv >= d.high_precip_mm, valid))
            cols.append(_run_length(pv < d.low_precip_mm, valid))
    doy = df.index.day_of_year.to_numpy(np.float64)
    cols.append(np.sin(2 * np.pi * doy / 365.25))
    cols.append(np.cos(2 * np.pi * doy / 365.25))
    if d.forecast_flag:
        cols.append(np.zeros(len(df)))  # observed weather everywhere; issue-time masking sets forecast days
    q = df[d.target]
    if d.use_discharge_input:
        q_lag = q.shift(d.lead_days)
        cols.append(q_lag.to_numpy())
        if d.derived_features:
            # SSI state: log of the trailing mean flow, standardised per basin later (a log-normal SSI).
            mean_q = q_lag.rolling(d.ssi_window, min_periods=max(1, d.ssi_window // 2)).mean()
            cols.append(np.log(mean_q.to_numpy() + SSI_EPS))
    x = np.stack(cols, axis=1).astype(np.float32)
    y = q.to_numpy(np.float32)
    return x, y
