"""Operational (issue-time) forecasts: the flow of the next days, from what is known on the issue date.

:func:`issue_forecast` answers "what will the flow be on each of the next ``leads`` days, and how
sure are we?" for one basin and one issue date. Only the data up to the issue date is read: the
basin's record is cut after it, the lead days are appended empty (or filled with a weather forecast),
the features are computed on that, and the window is masked by the same rule training used
(:func:`sca2lstm.data.issue_time.mask_issue_time`). Nothing after the issue date can reach the
forecast. Flows are in m3/s, clamped at 0 (after inverse scaling: a monotone map, so quantiles stay
ordered); the point forecast is the median (q50) of the quantile head.

:func:`issue_time_hindcasts` makes the same forecast for every day of a period as an issue date, in
one batched pass over a :class:`~sca2lstm.data.dataset.SequenceData` (for the benchmark).

Two information settings are named in every output: ``issue-time`` (weather up to the issue date
only) and ``issue-time+weather-forecast`` (the lead days' weather from a forecast file, or in the
benchmark the observed weather as a perfect forecast).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..fileio import folder_built_aside, json_text
from ..data.dataset import SequenceData
from ..data.features import (FEATURE_TEXT, FORECAST_FLAG, OBSERVED_FLAG_LABEL, feature_labels, feature_lookback, raw_features,
                             required_columns)
from ..data.pet import PET_COLUMNS
from ..data.issue_time import issue_time_columns, mask_issue_time
from ..errors import DataError, UsageError
from ..notes import Note, note_value
from ..weather.files import (PetRule, WeatherForecast, check_weather_values, complete_pet, forecast_dates,
                             gauge_latitude, masked_inputs, never_derived_text, note_oudin_pet, pet_history_note,
                             pet_input, pet_rule, pet_ways, station_pet, station_pet_names)
from ..weather.mixture import mixture_quantiles
from ..words import say
from .context import ESSENTIAL_INPUTS, BasinContext
from .exceedance import quantile_column, quantile_levels
from .rain_mapping import lagged_weather, mapped_weather
from .settings import SETTING_ISSUE, SETTING_WEATHER

log = logging.getLogger(__name__)

#: The output folder of a forecast (or reforecast) with a weather forecast ends so: it never replaces the one
#: without, of the same issue date (or span).
WEATHER_FOLDER_SUFFIX = "_with_weather_forecast"
#: The folder suffix of a forecast run through a weather ensemble (several members).
ENSEMBLE_FOLDER_SUFFIX = "_with_weather_ensemble"
#: An issue date needs an observed discharge within this many days up to it (inclusive). Older than
#: that, every discharge input (the lagged flow, the SSI state of the last ``data.ssi_window`` = 30
#: days) is missing at the issue date, a state training never shows: issue-time windows hide at most
#: ``training.forecast_leads`` days, discharge dropout single days.
RECENT_OBS_DAYS = 30
#: Observed days shown up to the issue date beside a forecast (its table, its plot, the service's
#: history): two months hold the recession the forecast continues and the last events before it.
HISTORY_DAYS = 60


@dataclass
class OperationalForecast:
    """One issue-time forecast.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per lead day: issue_date, valid_date, lead_days, median, q05, q25, q75, q95 (m3/s,
        >= 0; one column per quantile level of the model besides the median) and setting.
    weights : pandas.Series
        Attention weight of each feature on the issue day.
    day_weights : pandas.DataFrame or None
        [issue day + leads, features] the attention weights of the issue day and of each lead day (index: the days;
        mean over weather members): what each lead's forecast read. A missing input (a lead day's weather without a
        weather forecast) has weight 0.
    history : pandas.DataFrame
        The last 60 days up to the issue date: date, observed (m3/s, NaN where not observed).
    observed_after : pandas.DataFrame or None
        The lead days: date, observed (m3/s, NaN where not observed yet): a forecast of a past issue date is
        judged against them (written as forecast.csv's ``observed``, drawn on the fan chart).
    """

    basin: str
    table: pd.DataFrame
    weights: pd.Series
    history: pd.DataFrame
    model_path: str | None
    seconds: float
    missing_inputs: list = field(default_factory=list)  # inputs absent from the basin's whole data
    members: pd.DataFrame | None = None  # [M, leads] each weather member's median flow (m3/s), if several; index: member numbers
    day_weights: pd.DataFrame | None = None  # [1 + leads, N] the weights of the issue day and each lead day
    day_flag: np.ndarray | None = None  # [1 + leads] the weather_is_forecast input on those days (None: no flag)
    calibration: dict = field(default_factory=dict)  # where the issued blend and spread came from (warned_forecast)
    data: dict = field(default_factory=dict)  # what it read (BasinContext.data_record)
    # the notes of ``data`` this issue added to its data checks' (a record shorter than the window, a stale flow, an
    # older weather forecast, members left out, the rain mapping): the service, whose checks run on the whole
    # record, adds these to its own
    issue_notes: list = field(default_factory=list)
    rating_curve: dict | None = None  # the station's (metadata file): the fan chart gets a water-level axis
    point_only: bool = False  # a model without quantiles: a weather ensemble's flow is its members' mean
    observed_after: pd.DataFrame | None = None  # the lead days' observed flow, where the record holds it

    @property
    def members_phrase(self) -> str:
        """How the forecast combines its weather members (``""`` without several): :func:`members_phrase`."""
        return self.members_said("en")

    def members_said(self, language: str) -> str:
        """:attr:`members_phrase` in ``language``."""
        return "" if self.members is None else members_phrase(len(self.members), self.point_only, language)

    @property
    def setting(self) -> str:
        return str(self.table["setting"].iloc[0])

    @property
    def issue_date(self) -> pd.Timestamp:
        return pd.Timestamp(self.table["issue_date"].iloc[0])


def input_words() -> dict:
    """``{input: its words}`` (``"doy_cos" -> "day of year, cosine"``), as the attention charts name the inputs,
    without the identifier they add: for the service's page, which shows it as each bar's tooltip."""
    return dict(FEATURE_TEXT)


def members_phrase(members: int, point_only: bool = False, language: str = "en") -> str:
    """How the flow forecast of ``members`` weather members combines them, as the outputs say it in ``language``
    (:data:`~sca2lstm.words.WORDS`): the mixture of their distributions, or for a model without quantiles
    (``point_only``), which gives each member one flow and no distribution to mix, the mean of those flows."""
    return say("members_mean" if point_only else "members_mixture", language, n=members)


def interval_bands(table: pd.DataFrame) -> dict:
    """The intervals a fan chart shades, ``"90 %" -> (lo column, hi column)``: the widest pair of quantile columns
    symmetric about the median (q05/q95 for the default levels; q10/q90 gives ``80 %``), and the pair nearest the
    50 % interval if it is another. Columns without a value on every lead (a model without quantiles) give none."""
    lv = {round(v, 6): c for c, v in quantile_levels(table.columns).items() if table[c].notna().all()}
    pairs = sorted((lo, lv[lo], lv[round(1 - lo, 6)]) for lo in lv if lo < 0.5 and round(1 - lo, 6) in lv)
    if not pairs:
        return {}
    chosen = [pairs[0]] + [p for p in [min(pairs, key=lambda p: abs(1 - 2 * p[0] - 0.5))] if p != pairs[0]]
    return {f"{round((1 - 2 * lo) * 100, 1):g} %": (a, b) for lo, a, b in chosen}


def _forecast_leads(cfg) -> int:
    leads = cfg.training.forecast_leads
    if leads <= 0:
        raise UsageError("this model is hindcast-only (training.forecast_leads 0): it cannot make an issue-time "
                         "forecast; use predict for the hindcast, or train with training.forecast_leads >= 1")
    return leads


def _check_leads(leads, trained: int) -> int:
    if isinstance(leads, bool) or not isinstance(leads, (int, np.integer)) or not 1 <= leads <= trained:
        raise UsageError(f"--leads {leads!r}: expected an integer from 1 to {trained} "
                         "(the lead days this model was trained for, training.forecast_leads)")
    return int(leads)


def _issue_date(df: pd.DataFrame, basin: str, target: str, issue_date) -> pd.Timestamp:
    obs = df[target]
    if issue_date is None:
        if not obs.notna().any():
            raise DataError(f"basin {basin}: no observed discharge in its data, so no default issue date")
        t0 = obs.last_valid_index()
    else:
        from ..data.periods import parse_day
        t0 = parse_day(issue_date, "--issue_date")
        first, last = df.index[0], df.index[-1]
        if not first <= t0 <= last:
            raise DataError(f"--issue_date {t0.date()} is outside the data of basin {basin} "
                            f"({first.date()}..{last.date()})")
    recent = obs.loc[t0 - pd.Timedelta(days=RECENT_OBS_DAYS - 1):t0]
    if not recent.notna().any():
        raise DataError(f"--issue_date {t0.date()}: basin {basin} has no observed discharge in the "
                        f"{RECENT_OBS_DAYS} days up to it; choose a date with recent observations")
    return t0


def history_days(cfg) -> int:
    """Days before the issue day that an issue-time forecast of a model with config ``cfg`` reads: its
    window (``seq_len`` days, the last ``forecast_leads`` of them after the issue day), what the
    features of the window's first day look back (:func:`~sca2lstm.data.features.feature_lookback`),
    and at least the days searched for a recent observed flow."""
    window = cfg.training.seq_len - 1 - cfg.training.forecast_leads
    return max(window + feature_lookback(cfg), RECENT_OBS_DAYS)


def recent_part(ts: pd.DataFrame, issue: pd.Timestamp, cfg) -> pd.DataFrame:
    """The part of ``ts`` from which an issue-time forecast for ``issue`` comes out the same as from all of it.

    Days after the issue day are not known at issue time, so they go. Before it, :func:`history_days`
    are kept; the runs of high- and low-precipitation days count back to their start, so the cut moves
    back to the last day at or before the window's first day that ends both runs (rain neither high nor
    low, or missing): every feature of the window is then computed from the same values as with the whole
    record. Nothing is cut where no such day exists. The discharge scale of a station the model does not
    know must come from the whole record (:func:`~sca2lstm.evaluation.live.station_setup`).

    Parameters
    ----------
    ts : pandas.DataFrame
        Daily data [T, columns] on a gap-free date index.
    issue : pandas.Timestamp
    cfg : Config
        The model's config.
    """
    back = history_days(cfg)
    cut = issue - pd.Timedelta(days=back)
    if cut <= ts.index[0]:
        return ts.loc[:issue]
    if cfg.data.derived_features and "precipitation" in ts.columns:
        first = issue - pd.Timedelta(days=cfg.training.seq_len - 1 - cfg.training.forecast_leads)
        p = ts["precipitation"].loc[:first].to_numpy(np.float64)
        with np.errstate(invalid="ignore"):
            ends_both = ~np.isfinite(p) | ((p >= cfg.data.low_precip_mm) & (p < cfg.data.high_precip_mm))
        if not ends_both.any():
            return ts.loc[:issue]
        cut = min(cut, ts.index[int(np.flatnonzero(ends_both)[-1])])
    return ts.loc[cut:issue]


#: What a user of ``sca2lstm forecast`` can do about an input missing from the days a forecast reads.
FORECAST_FIX = ("add the missing days to its file, or pass --allow_missing_inputs to forecast anyway (the outputs "
                "then name the missing input)")


def check_recent_inputs(who: str, ts: pd.DataFrame, issues, cfg, allow: bool = False,
                        fix: str = FORECAST_FIX) -> list[str]:
    """Refuse forecasts issued on ``issues`` that would read no value of an input the model cannot go without
    (:data:`~sca2lstm.evaluation.context.ESSENTIAL_INPUTS`) though the record ``ts`` holds it elsewhere: a feed
    that stopped (the last 400 days empty, years before not), or an issue date before it began. Another input
    missing so (temperature, PET: days posted to the service without it) is not refused but named: the model runs
    with it masked, and the forecast's notes must say so.

    The one rule of ``sca2lstm forecast`` (its issue date, or every issue date of a ``--from/--to`` span) and of
    the service (:func:`~sca2lstm.evaluation.live.forecast_part`): a forecast reads the :func:`recent_part` of
    the record, and where that holds no value of such an input the model runs with it masked through its whole
    window, on other data than the record holds. An input absent from the whole record is left to the basin's
    own check (:func:`~sca2lstm.evaluation.context.check_missing_inputs`), which says so.

    Parameters
    ----------
    who : str
        How the line names the record: ``basin 32006``, ``station 10002`` (a :class:`~sca2lstm.notes.Note`
        ``basin_named`` or ``station_named``: said in the reader's language too).
    ts : pandas.DataFrame
        Daily data on a date index: the record, or the part of it a caller holds.
    issues : sequence of dates
    cfg : Config
        The model's config.
    allow : bool
        ``--allow_missing_inputs``: forecast anyway; the lines are returned instead, to be shown as warnings.
    fix : str
        What the reader of a refusal can do.

    Returns
    -------
    list of Note
        One line per input the model can go without that is missing so (said in the reader's language too), and
        with ``allow`` one per essential input missing so; empty where nothing is missing so.

    Raises
    ------
    DataError
        Without ``allow``: ``basin ...: no precipitation in the N days read for the forecast issued DAY
        (FIRST..LAST); its last value is on DAY. The model would run blind to it: <fix>``; for several issue
        dates, how many lack it and the first.
    """
    issues = pd.DatetimeIndex(issues)
    back = pd.Timedelta(days=history_days(cfg))
    lines = []
    for col in (c for c in required_columns(cfg) if c != cfg.data.target and c in ts.columns):
        vals = pd.to_numeric(ts[col], errors="coerce")
        seen = vals.notna().to_numpy()
        if not seen.any():
            continue
        days = vals.index
        last_seen = np.maximum.accumulate(np.where(seen, np.arange(len(seen)), -1))  # per day: the last with a value
        blind = []
        for issue, at in zip(issues, days.searchsorted(issues, side="right") - 1):
            last = days[last_seen[at]] if at >= 0 and last_seen[at] >= 0 else None
            if last is not None and last >= issue - back:
                continue  # within the days every forecast of this issue date reads
            part = recent_part(ts, issue, cfg)
            if not pd.to_numeric(part[col], errors="coerce").notna().any():
                blind.append((issue, part, last))
        if not blind:
            continue
        issue, part, last = blind[0]
        # as notes: said in the reader's language too (sca2lstm forecast --language, the service's page)
        read = Note("days_read", n=len(part), day=str(issue.date()), first=str(part.index[0].date()),
                    last=str(part.index[-1].date()))
        when = (Note("last_value_on", day=str(last.date())) if last is not None
                else Note("first_value_on", day=str(vals.first_valid_index().date())))
        what = (Note("no_recent_input", who=note_value(who), col=col, read=read, when=when) if len(issues) == 1 else
                Note("no_recent_input_several", who=note_value(who), col=col, n=len(blind), issues=len(issues),
                     first=str(issues[0].date()), last=str(issues[-1].date()), read=read, when=when))
        if col not in ESSENTIAL_INPUTS:  # forecast without it, but said: a log line alone reaches no reader
            lines.append(Note("masked_input", what=what, col=col))
        elif not allow:
            raise DataError(f"{what}. The model would run blind to it: {fix}")
        else:
            lines.append(Note("blind_input", what=what, col=col))
    return lines


def _weather_rows(weather_forecast, cols: list[str], t0: pd.Timestamp, leads: int, absent=(),
                  names=None) -> pd.DataFrame:
    """The forecast weather of days t0+1..t0+leads, validated (one line naming what is wrong). ``absent``:
    inputs the station's record never had: not needed, and masked (NaN) whatever the table says. ``names``: column
    -> the name the user's table gives it, where it was renamed (:func:`~sca2lstm.weather.files.station_pet_names`)."""
    wf = weather_forecast
    if not isinstance(wf, pd.DataFrame):
        raise DataError(f"weather forecast: expected a table with columns date, {', '.join(cols)}")
    wf = wf.reset_index() if "date" not in wf.columns and wf.index.name == "date" else wf
    wf = wf.assign(**{c: np.nan for c in absent if c in cols})
    expected = ["date", *cols]
    missing = [c for c in expected if c not in wf.columns]
    extra = [c for c in wf.columns if c not in expected]
    if missing or extra:
        pet = [c for c in cols if c in PET_COLUMNS]
        note = f" ({pet[0]} may be left out: it is derived from temperature)" if pet else ""
        raise DataError(f"weather forecast: wrong columns (missing {missing}, unexpected {extra}); "
                        f"expected {expected}{note}")
    dates = forecast_dates(wf["date"], "date", "weather forecast")
    if dates.has_duplicates:
        raise DataError(f"weather forecast: duplicate date {dates[dates.duplicated()][0].date()}")
    early = dates[dates <= t0]
    if len(early):
        raise DataError(f"weather forecast: date {early[0].date()} is not after the issue date {t0.date()}; "
                        "one row per valid date t0+1 ... t0+leads")
    want = pd.date_range(t0 + pd.Timedelta(days=1), periods=leads, freq="D")
    have = set(dates)
    lacking = [d for d in want if d not in have]
    if lacking:
        raise DataError(f"weather forecast: covers {leads - len(lacking)} of the {leads} lead days asked for "
                        f"(first missing date {lacking[0].date()}); one row per valid date "
                        f"{want[0].date()}..{want[-1].date()}")
    vals = pd.DataFrame({c: pd.to_numeric(wf[c], errors="coerce").to_numpy(np.float64) for c in cols},
                        index=dates).loc[want]
    check_weather_values(vals.rename_axis("date").reset_index(), "weather forecast")
    bad = vals.drop(columns=[c for c in absent if c in cols]).isna()
    if bad.to_numpy().any():
        col = bad.columns[bad.any(axis=0).to_numpy()][0]
        raise DataError(f"weather forecast: column {(names or {}).get(col, col)!r} has no numeric value on "
                        f"{vals.index[bad[col].to_numpy()][0].date()}")
    return vals


def issue_forecast(bundle, basin, data_dir=None, issue_date=None, leads=7, weather_forecast=None,
                   timeseries=None, allow_missing_inputs: bool = False,
                   context: BasinContext | None = None, precip_mapping: str = "auto",
                   station_rain=None, weather_lags: str = "auto") -> OperationalForecast:
    """Forecast ``basin`` for the ``leads`` days after ``issue_date`` from what is known on it.

    Parameters
    ----------
    bundle : tuple
        ``load_model(...)`` output: (model, cfg, scalers, ckpt).
    basin : str or int
    data_dir : path, optional
        CAMELS-GB folder (static attributes; the timeseries unless ``timeseries`` is given).
    issue_date : str or date, optional
        Default: the last day with observed discharge.
    leads : int
        1 .. the model's ``training.forecast_leads``.
    weather_forecast : pandas.DataFrame, optional
        ``date`` + the meteorological input columns, one row per valid date t0+1 .. t0+leads.
    timeseries : pandas.DataFrame, optional
        The basin's raw daily data (date index or column, its input and discharge columns), used
        instead of its file.
    allow_missing_inputs : bool
        Forecast even when precipitation, or every meteorological input, is absent from the data, or
        precipitation from the days the forecast reads (:func:`check_recent_inputs`; a note names it).
    context : BasinContext, optional
        The basin already resolved for this model (:mod:`sca2lstm.evaluation.context`): its data,
        discharge scale (a basin the checkpoint does not know gets it by the rule every command uses),
        static attributes and blend.
    precip_mapping : {'none', 'quantile', 'auto'}
        ``quantile``: the precipitation of ``weather_forecast`` quantile-mapped per lead to the basin's observed
        climatology, ranked among the archive's earlier forecasts, or for one forecast among those of the
        station's own archive (:func:`sca2lstm.evaluation.rain_mapping.mapped_weather`); ``auto`` (default): so
        only where those earlier forecasts of the lead are drizzly with damped storms, and not for a station whose
        archive the model trained on; ``none``: read as the file gives it. One forecast of a station without an
        archive is never mapped.
    station_rain : StationRain, optional
        What the precipitation is mapped with (:class:`sca2lstm.evaluation.rain_mapping.StationRain`), taken from
        the station's whole record where ``timeseries`` is only its recent part (the service); default: from
        the context.
    weather_lags : {'auto', 'none'}
        ``auto``: an archive's forecast of ``issue_date`` combined with the same days' forecasts of its earlier issue
        dates (:func:`sca2lstm.evaluation.rain_mapping.lagged_weather`), as a reforecast combines it; one
        deterministic forecast so with the station's own archive's earlier runs, where it has one; ``none``: the
        issue date's run as given. An ensemble is never combined.

    Returns
    -------
    OperationalForecast
    """
    t_start = time.perf_counter()
    model, cfg, scalers, ckpt = bundle
    basin = str(basin)
    trained = _forecast_leads(cfg)
    leads = _check_leads(leads, trained)
    ctx = context or BasinContext.resolve(bundle, data_dir, basin, timeseries=timeseries,
                                          allow_missing_inputs=allow_missing_inputs)
    df, scalers = ctx.frame, ctx.scalers
    target = cfg.data.target
    t0 = _issue_date(df, basin, target, issue_date)
    blind = check_recent_inputs(Note("basin_named", basin=basin), df, [t0], cfg, allow_missing_inputs or ctx.allow_missing_inputs)
    # an archive's earlier runs combined with its run of t0, or one forecast with its station archive's: by the rain
    # of the whole record (the context's, or the station's rain where the context holds its recent part only)
    weather_forecast, lagged = lagged_weather(station_rain or ctx, weather_forecast, [t0], weather_lags)
    rain = mapped_weather(station_rain or ctx, weather_forecast, [t0], precip_mapping, leads=leads)
    weather_forecast = rain.weather
    in_cols = [c for c in required_columns(cfg) if c != target]
    # Only what is known on the issue date: the record up to it, then the lead days (empty, or the
    # forecast weather; one window per member of a weather ensemble).
    future = pd.date_range(t0 + pd.Timedelta(days=1), periods=trained, freq="D", name="date")
    base = pd.concat([df.loc[:t0, required_columns(cfg)], pd.DataFrame(np.nan, index=future, columns=required_columns(cfg))])
    member_ids = None  # the members' numbers in the weather forecast file (forecast_members.csv names them so)
    if weather_forecast is None:
        member_rows = [None]
    elif isinstance(weather_forecast, WeatherForecast):
        read = weather_members(weather_forecast, t0, leads, in_cols, cfg, gauge_latitude(ctx.data_dir, basin),
                               ctx.missing_inputs, ctx.pet_rule)
        member_ids = [m.attrs.get("member", i) for i, m in enumerate(read)]
        member_rows = [_weather_rows(m, in_cols, t0, leads, masked_inputs(cfg, ctx.missing_inputs, ctx.pet_rule))
                       for m in read]
    else:  # a plain table: its PET completed as the basin's history had it, as for a forecast file
        member_rows = [_weather_rows(_plain_with_pet(weather_forecast, cfg, gauge_latitude(ctx.data_dir, basin),
                                                     ctx.missing_inputs, ctx.pet_rule), in_cols, t0, leads,
                                     masked_inputs(cfg, ctx.missing_inputs, ctx.pet_rule),
                                     station_pet_names(getattr(weather_forecast, "columns", ()), ctx.pet_rule))]
    p = len(df.loc[:t0]) - 1                                    # the issue day's row
    L = cfg.training.seq_len
    pos = L - 1 - trained                                       # issue day's position in the window
    idx = p - pos + np.arange(L)
    ok = idx >= 0
    cols = issue_time_columns(scalers.feature_names, scalers.kinds)
    xws, misses = [], []
    for wx in member_rows:
        ext = base.copy()
        if wx is not None:
            ext.loc[wx.index, in_cols] = wx.to_numpy()
        x_raw, y_raw = raw_features(ext, cfg)
        xs = scalers.transform_x(x_raw, basin)
        ys = scalers.transform_y(y_raw, basin)
        xw = np.where(ok[:, None], xs[np.clip(idx, 0, None)], np.float32(np.nan))
        qw = np.where(ok, ys[np.clip(idx, 0, None)], np.float32(np.nan))
        miss = np.isnan(xw)
        xw = np.where(miss, np.float32(0), xw)
        xw, miss, qw = mask_issue_time(xw, miss, qw, pos, cols, cfg.data.lead_days,
                                       weather_known=weather_forecast is not None,
                                       weather_forecast=weather_forecast is not None
                                       and flags_forecast(len(member_rows)))
        xws.append(xw)
        misses.append(miss)
    M = len(xws)
    st, stm = np.repeat(ctx.static, M, axis=0), np.repeat(ctx.static_missing, M, axis=0)
    med, qs, levels, w = _run(model, np.stack(xws), np.stack(misses), st, stm, np.repeat(qw[None], M, axis=0),
                              first_step=pos + 1)
    sl = slice(pos + 1, pos + 1 + leads)
    to_flow = lambda a: np.maximum(scalers.inverse_y(a.astype(np.float64), basin), 0.0)  # noqa: E731
    members = None
    member_index = pd.Index(member_ids if member_ids is not None else range(M), name="member")
    if M > 1 and qs is not None:  # the mixture over members (sca2lstm/weather/mixture.py)
        member_q = to_flow(qs[:, sl]).transpose(1, 0, 2)        # [leads, M, Q]
        mix = mixture_quantiles(member_q, levels)               # [leads, Q]
        med_flow = mix[:, levels.index(0.5)]
        q_flow = {lev: mix[:, j] for j, lev in enumerate(levels)}
        members = pd.DataFrame(member_q[:, :, levels.index(0.5)].T, columns=list(future[:leads]), index=member_index)
    else:
        med_flow = to_flow(med[:, sl]).mean(axis=0)
        q_flow = {lev: to_flow(qs[0, sl, j]) for j, lev in enumerate(levels)} if qs is not None else {}
        if M > 1:  # a model without a quantile head: still an ensemble (its blend, its members drawn and written)
            members = pd.DataFrame(to_flow(med[:, sl]), columns=list(future[:leads]), index=member_index)
    table = pd.DataFrame({"issue_date": t0, "valid_date": future[:leads], "lead_days": np.arange(1, leads + 1),
                          "median": med_flow})
    for lev in levels:
        if lev != 0.5:
            table[quantile_column(lev)] = q_flow.get(lev, np.nan)
    table["setting"] = SETTING_WEATHER if weather_forecast is not None else SETTING_ISSUE
    if M > 1:
        table["weather_members"] = M
    weights = pd.Series(w[:, pos].mean(axis=0), index=list(scalers.feature_names), name="weight")
    day_weights = pd.DataFrame(w[:, pos:pos + 1 + leads].mean(axis=0), columns=list(scalers.feature_names),
                               index=pd.DatetimeIndex([t0, *future[:leads]], name="date"))
    # the flag's own value on those days (0 or 1, as the model read it): where 0 its weight multiplies nothing
    day_flag = (xws[0][pos:pos + 1 + leads, cols.forecast_flag].astype(np.float64)
                if cols.forecast_flag is not None else None)
    hist = df.loc[t0 - pd.Timedelta(days=HISTORY_DAYS - 1):t0, target]
    history = pd.DataFrame({"date": hist.index, "observed": hist.to_numpy()})
    # the record may go on past a past issue date: the flows the forecast can be judged against (never read above)
    came = df[target].reindex(future[:leads])
    observed_after = pd.DataFrame({"date": future[:leads], "observed": came.to_numpy(np.float64)})
    src = ckpt.get("source_path") if isinstance(ckpt, dict) else None
    data = ctx.data_record()
    checked = len(data["notes"])  # the data checks' notes; those after them are this issue's
    for line in blind:  # an input the days read lack, forecast without it (or anyway, as asked): the outputs name it
        add_note(data, line)
    if p < pos:  # the window reaches back before the record: the state starts from empty days
        add_note(data, Note("short_record", basin=basin, days=int(p + 1), day=str(t0.date()), window=int(pos + 1)))
    add_note(data, stale_flow_note(basin, df[target], t0))
    if isinstance(weather_forecast, WeatherForecast):  # which weather forecast it read, for the record
        wf = weather_forecast
        data["weather_forecast"] = {
            "source": wf.source, "members": M,
            # how the members' flows are combined: a model without quantiles has no distributions to mix
            **({"combined": "mean" if qs is None else "mixture"} if M > 1 else {}),
            "issue_date": (str(wf.issue_dates[0].date()) if len(wf.issue_dates) == 1 else  # an archive: t0's
                           str(t0.date()) if len(wf.issue_dates) > 1 else None),
            "location": list(wf.location) if wf.location is not None else None}
        add_note(data, wf.age_note(t0))
        add_note(data, members_note(wf, t0, M, point_only=qs is None), warn=False)
    plain = {"source": "a table of the lead days (date, <inputs>)"}
    if weather_forecast is not None:  # PET of the kind the station's history read, where the config alone differs
        wf = weather_forecast
        runs = wf.table if isinstance(wf, WeatherForecast) else wf
        if isinstance(wf, WeatherForecast) and len(wf.issue_dates) > 1:  # an archive: its runs of t0
            runs = runs[runs["issue_date"] == t0.normalize()]
        add_note(data, pet_history_note(ctx.pet_rule, runs, wf.source if isinstance(wf, WeatherForecast)
                                        else "the weather forecast"))
    if lagged:  # an archive's (or the station archive's) earlier runs combined with the run of t0 (or why not)
        data.setdefault("weather_forecast", dict(plain))["lagged"] = lagged
        add_note(data, lagged.get("may_have_learned"))   # the model may have learned the runs as given
    if rain.record is not None:  # its precipitation was mapped, or could have been (rain_mapping.py)
        data.setdefault("weather_forecast", dict(plain))["precip_mapping"] = rain.record
        add_note(data, rain.note)
    return OperationalForecast(basin, table, weights, history, src, time.perf_counter() - t_start,
                               list(ctx.missing_inputs), members, day_weights, day_flag, data=data,
                               issue_notes=data["notes"][checked:], point_only=qs is None,
                               observed_after=observed_after)


def add_note(data: dict, note: str | None, warn: bool = True) -> None:
    """Append ``note`` (None: nothing) to a forecast's ``data["notes"]``, logged as a warning unless ``warn`` is
    False (a note the command has printed already)."""
    if note:
        if warn:
            log.warning("%s", note)
        data["notes"] = [*data.get("notes", []), note]


def members_note(wf, t0: pd.Timestamp, used: int, point_only: bool = False) -> str | None:
    """The note of a forecast issued on ``t0`` that read ``used`` of the members the weather forecast ``wf``
    holds for it (an archive: those of ``t0``); None where it read them all. ``point_only``: a model without
    quantiles, whose forecast is the mean of the members' flows (:func:`members_phrase`).

    Members without data on a lead day (Open-Meteo's nulls) are left out by ``wf.members``; the command and
    the service say so in the same words.
    """
    held = wf.table.loc[wf.table["issue_date"] == t0, "member"].nunique() if len(wf.issue_dates) > 1 \
        else wf.n_members
    if used >= held:
        return None
    # one left: issued as one run; a model without quantiles: the mean of the members' point forecasts
    kind = ("members_left_one" if used == 1 else "members_left_mean" if point_only else "members_left_out")
    return Note(kind, source=note_value(wf.source), left=int(held - used), held=int(held), used=int(used))


def stale_flow_note(basin: str, flow: pd.Series, t0: pd.Timestamp) -> str | None:
    """The note of a forecast issued on ``t0`` without an observed flow that day: which flow (of the daily
    series ``flow``, m3/s) and day it starts from; None where ``t0``'s flow was observed.

    An issue date past the last observed flow (up to ``RECENT_OBS_DAYS``) forecasts from an older flow, and
    nothing else in the outputs says so: the duty officer may think the gauge reported that day.
    """
    last_day = flow.loc[:t0].last_valid_index()
    if last_day is None or last_day >= t0:
        return None
    return Note("stale_flow", basin=basin, day=str(t0.date()), flow=float(flow.loc[last_day]),
                last=str(last_day.date()), days=int((t0 - last_day).days))


def _plain_with_pet(wf, cfg, lat, absent=(), rule: PetRule | None = None):
    """A plain ``date, <inputs>`` weather table with the model's PET (sca2lstm/weather/files.py), when it lacks it.

    A PET column of another kind than the model reads (``pet`` for a model on ``peti``, or any PET for a model
    that reads none) is dropped, with one line: the model's PET is derived as its config says, never swapped.
    ``rule``: the basin's :class:`~sca2lstm.weather.files.PetRule` (its PET of the kind of its history; None: the
    config's). The column read as the model's PET (its own name, or the station's: :func:`station_pet`) is the
    table's PET where it holds a value, as a forecast file's run is (:func:`~sca2lstm.weather.files.pet_ways`): a lead
    day without one is refused (:func:`_weather_rows`), never filled with another kind on every day.
    """
    pet = pet_input(cfg)
    rule = rule or pet_rule(cfg)
    if not isinstance(wf, pd.DataFrame) or "date" not in wf.columns:
        return wf                                   # _weather_rows names what is wrong
    wf = station_pet(wf.assign(date=forecast_dates(wf["date"], "date", "weather forecast")), rule)
    other = [c for c in PET_COLUMNS if c in wf.columns and c != pet]
    if other:
        log.info("weather forecast: column %s is not the PET this model reads (%s); %s", other[0], pet or "none",
                 "derived from temperature instead" if pet and cfg.data.pet_from_temperature != "never"
                 else "left out")
        wf = wf.drop(columns=other)
    note_oudin_pet(wf, pet, rule.mode, "weather forecast", rule)
    if pet is None or (pet in wf.columns and wf[pet].notna().any() and rule.mode != "always"):
        return wf
    return complete_pet(wf, pet, rule.mode, lat, absent, et0=rule.et0)


def weather_members(wf, t0, leads, in_cols, cfg, lat, absent=(), rule: PetRule | None = None):
    """Each member of a forecast file for issue date t0 as ``date, <inputs>``, its PET completed as the
    model's config derives PET (sca2lstm/weather/files.py), each run's its own way (:func:`pet_ways`: a run with
    ET0 and one without, in one file, get theirs as each alone would); one line naming the file on error.
    ``absent``: inputs the station's record never had, which the file need not give (they stay masked). Each
    table's ``attrs["member"]`` is its member's number in the file. ``rule``: the basin's
    :class:`~sca2lstm.weather.files.PetRule` (PET of the kind of its history; None: the config's)."""
    pet = pet_input(cfg)
    rule = rule or pet_rule(cfg)
    mode = rule.mode
    need = [c for c in in_cols if c != pet and c not in absent]
    names = station_pet_names(wf.table.columns, rule)  # a gap is named by the file's column
    wf = replace(wf, table=station_pet(wf.table, rule))  # the station's own PET name read as the model's
    note_oudin_pet(wf.table, pet, mode, wf.source, rule)
    runs = wf.table
    if len(wf.issue_dates) > 1:  # an archive: the runs issued on t0 (members() names a date it lacks)
        runs = runs[runs["issue_date"] == pd.Timestamp(t0).normalize()]
    ways = pet_ways(runs, pet, mode, absent, rule.et0)
    if len(ways) and (ways == "none").all():
        raise DataError(f"{wf.source}: {never_derived_text(pet)}")
    # a member with a gap in the source of its PET is incomplete, as a reforecast from the same file leaves it out
    source = {"given": pet, "et0": "et0", "oudin": "temperature", "none": pet}
    also = {int(m): [source[w]] for m, w in zip(runs["member"], ways) if w in source}
    out = []
    for m in wf.members(t0, leads, need, also, names):
        member = m.attrs.get("member")
        try:
            m = complete_pet(m, pet, mode, lat, absent, gaps=True, et0=rule.et0)
        except DataError as e:
            raise DataError(f"{wf.source}: {e}") from None
        m = m[["date", *in_cols]].copy()
        m.attrs["member"] = member  # its number in the file, which the outputs name it by
        out.append(m)
    return out


_DEFAULT_LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)

@torch.no_grad()
def _run(model, x, miss, st, stm, q, first_step: int = 0):
    """Model forward on numpy windows [B, L, ...]: (median [B, L], quantiles [B, L, Q] or None,
    levels, weights [B, L, N]), all scaled. The median is q50 of the quantile head, or the point
    forecast of a model without one; with a head, both are NaN before ``first_step``."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    t = [torch.from_numpy(np.ascontiguousarray(a)).to(dev) for a in (x, miss, st, stm, q)]
    head = getattr(model, "quantile_head", None) is not None
    out = model(*t[:4], q_obs=t[4], return_weights=True, return_quantiles=head, quantiles_from=first_step)
    model.train(was_training)
    if head:
        pred, w, qs = out
        levels = list(model.quantiles)
        qs = qs.float().cpu().numpy()
        med = qs[..., levels.index(0.5)]
        return med, qs, levels, w.float().cpu().numpy()
    pred, w = out
    return pred.float().cpu().numpy(), None, list(_DEFAULT_LEVELS), w.float().cpu().numpy()


@dataclass
class IssueTimeHindcast:
    """Issue-time forecasts of one basin for every (``stride``-th) issue day of [i0, i1) (m3/s, >= 0).

    ``median`` [n, leads]; ``quantiles`` [n, leads, Q] (levels ``levels``) or None; ``observed``
    [n, leads] the flows that came (NaN where not observed); ``last_obs`` [n] the last observed flow
    up to each issue day (NaN if none in the window).
    """

    basin: str
    i0: int
    i1: int
    levels: list
    median: np.ndarray
    quantiles: np.ndarray | None
    observed: np.ndarray
    last_obs: np.ndarray
    member_quantiles: np.ndarray | None = None  # [n, leads, M, Q] with a weather ensemble
    stride: int = 1

    @property
    def issue_days(self) -> np.ndarray:
        """[n] the basin-local issue day of each row."""
        return np.arange(self.i0, self.i1, self.stride, dtype=np.int64)


def member_setting(members: int) -> str:
    """The weather setting of a weather forecast of ``members`` members: ``forecast`` (one run) or ``ensemble``.
    It picks the calibration's spread and blend, and whether the forecast is flagged (:func:`flags_forecast`)."""
    return "forecast" if members == 1 else "ensemble"


def flags_forecast(members: int) -> bool:
    """Whether a weather forecast of ``members`` members is flagged as a forecast (``data.forecast_flag``).

    One forecast is: the model, trained with emulated forecasts, then hedges its amounts, since nothing else
    carries its error. An ensemble's members are not: each runs as if it were the weather that will come,
    and the members' disagreement carries the uncertainty (hedging each member as well lost 0.07 lead-3 NSE on
    validation, docs/experiments.md).
    """
    return member_setting(members) == "forecast"


def _run_members(model, members, y, st, stm, pos, cols, lead_days, leads, absent=None):
    """Run every member's windows (list of (x, miss) [B, L, N]) in one batch: (median [B, leads] scaled or
    None, member quantiles [B, leads, M, Q] scaled or None, levels). ``absent`` [B, M] bool: members left out
    of a window (NaN quantiles, not in its median)."""
    M = len(members)
    x = np.concatenate([m[0] for m in members])
    miss = np.concatenate([m[1] for m in members])
    B = members[0][0].shape[0]
    rep = lambda a: np.concatenate([a] * M)  # noqa: E731
    x, miss, q = mask_issue_time(x, miss, rep(y), pos, cols, lead_days, weather_known=True,
                                 weather_forecast=flags_forecast(M))
    med, qs, levels, _ = _run(model, x, miss, rep(st), rep(stm), q, first_step=pos + 1)
    sl = slice(pos + 1, pos + 1 + leads)
    gone = np.zeros((B, M), dtype=bool) if absent is None else np.asarray(absent, dtype=bool)
    if qs is None:  # a model without a quantile head: the members' mean as the point forecast
        mm = med[:, sl].astype(np.float64).reshape(M, B, leads)
        mm[gone.T] = np.nan
        return np.nanmean(mm, axis=0), None, levels
    mq = qs[:, sl].astype(np.float64).reshape(M, B, leads, -1).transpose(1, 2, 0, 3)
    mq[np.broadcast_to(gone[:, None, :], mq.shape[:3])] = np.nan
    return np.nanmean(mq[..., :, levels.index(0.5)], axis=-1), mq, levels


def issue_time_hindcasts(model, data: SequenceData, periods, leads: int, weather: str = "none", *,
                         seq_len: int = 270, lead_days: int = 1, device="cpu", batch_size: int = 256,
                         basin_indices=None, lead_weather=None, stride: int = 1,
                         progress: bool = False) -> list[IssueTimeHindcast]:
    """Issue-time forecasts with every day of each period as an issue date, in batches.

    Parameters
    ----------
    data : SequenceData
        Scaled basins (padding >= ``leads``); the forecasts read from it only what each issue date
        knows (the windows are masked by :func:`mask_issue_time`).
    periods : list of (i0, i1)
        Half-open ranges of issue days, one per basin of ``basin_indices`` (default: all).
    leads : int
        The model's ``training.forecast_leads``: windows end ``leads`` days after the issue day.
    weather : {"none", "perfect"}
        Without weather after the issue day, or with the observed weather as a perfect forecast.
    seq_len, lead_days : int
        ``training.seq_len`` and ``data.lead_days`` of the model's config.
    lead_weather : callable, optional
        A weather forecast for the lead days (with ``weather="perfect"``): ``lead_weather(x, miss, b, t,
        pos)`` for windows [B, L, N] of basin index ``b`` issued at basin days ``t`` [B] returns a list of
        (x, miss), one per member, with the forecast in place of the observed weather (e.g.
        :class:`sca2lstm.weather.windows.EmulatedForecast`). Several members run as one batch; the
        quantiles are those of the mixture over members (:mod:`sca2lstm.weather.mixture`), and
        ``member_quantiles`` keeps each member's. Where ``lead_weather`` has ``absent(t)`` ([B, M] bool: an
        archive's incomplete members), those members are left out of their window's mixture (NaN in
        ``member_quantiles``).
    stride : int
        Every ``stride``-th day of each period is an issue date (1: every day).
    progress : bool
        A bar over the issue dates on a terminal (tqdm; nothing when redirected): years of issue dates with a
        full-size model take minutes.

    Returns
    -------
    list of IssueTimeHindcast, one per period.
    """
    if weather not in ("none", "perfect"):
        raise UsageError(f"weather={weather!r}; expected 'none' or 'perfect'")
    if data.pad < leads:
        raise ValueError(f"the data's padding ({data.pad}) is shorter than the leads ({leads})")
    basin_indices = list(range(len(data.basins))) if basin_indices is None else list(basin_indices)
    cols = issue_time_columns(data.scalers.feature_names, data.scalers.kinds)
    pos = seq_len - 1 - leads
    out = []
    from tqdm import tqdm

    periods = list(periods)   # counted for the bar, then run: a generator would be spent by the count
    total = sum(len(range(i0, i1, stride)) for i0, i1 in periods)
    bar = tqdm(total=total, desc="issue dates", unit="day", disable=None if progress else True, leave=False)
    for b, (i0, i1) in zip(basin_indices, periods):
        basin = data.basins[b]
        issue = np.arange(i0, i1, stride, dtype=np.int64)
        med_all, q_all, mq_all, levels = [], [], [], list(_DEFAULT_LEVELS)
        inv = data.scalers.inverse_y
        for lo in range(0, len(issue), batch_size):
            t = issue[lo:lo + batch_size]
            bar.update(len(t))
            bb = np.full(len(t), b, dtype=np.int64)
            x, miss, y, st, stm = data.gather(bb, t - pos, seq_len)
            if lead_weather is None:
                x, miss, q = mask_issue_time(x, miss, y, pos, cols, lead_days, weather_known=weather == "perfect")
                med, qs, levels, _ = _run(model, x, miss, st, stm, q, first_step=pos + 1)
                med_all.append(med[:, pos + 1:pos + 1 + leads])
                if qs is not None:
                    q_all.append(qs[:, pos + 1:pos + 1 + leads])
                continue
            absent = lead_weather.absent(t) if hasattr(lead_weather, "absent") else None
            med, mq, levels = _run_members(model, lead_weather(x, miss, b, t, pos), y, st, stm, pos, cols,
                                           lead_days, leads, absent)
            med_all.append(med)
            if mq is not None:
                mq_all.append(np.maximum(inv(mq, basin), 0.0))
        med = np.maximum(inv(np.concatenate(med_all).astype(np.float64), basin), 0.0)
        qs = np.maximum(inv(np.concatenate(q_all).astype(np.float64), basin), 0.0) if q_all else None
        member_q = None
        if mq_all:  # quantiles and median from the mixture over members, in m3/s
            member_q = np.concatenate(mq_all)
            qs = mixture_quantiles(member_q, levels, skip_missing=True)
            med = qs[..., levels.index(0.5)]
        o = data.offsets[b]
        g = o + issue[:, None] + np.arange(1, leads + 1)[None, :]
        observed = inv(data.y[g].astype(np.float64), basin)
        # Last observed flow up to each issue day (persistence carries it forward).
        yb = data.y[o + i0 - seq_len:o + i1].astype(np.float64)
        last = pd.Series(yb).ffill().to_numpy()[seq_len:][::stride]
        out.append(IssueTimeHindcast(basin, i0, i1, levels, med, qs, observed, inv(last, basin), member_q, stride))
    bar.close()
    return out



def with_observed(fc: OperationalForecast) -> pd.DataFrame:
    """``fc.table`` with a column ``observed`` after its quantiles (as a reforecast's table has it): each lead day's
    observed flow (m3/s) where the record holds it, a forecast of a past issue date, NaN where not observed yet."""
    t = fc.table.drop(columns="observed", errors="ignore")
    came = fc.observed_after
    obs = (pd.Series(np.nan, index=t.index) if came is None else
           t["valid_date"].map(came.set_index("date")["observed"]).astype(np.float64))
    flows = ["median", *quantile_levels(t.columns)]
    at = max(t.columns.get_loc(c) for c in flows if c in t.columns) + 1
    t = t.copy()
    t.insert(at, "observed", obs.to_numpy())
    return t


def write_forecast(fc: OperationalForecast, out_dir, fmt: str = "csv", levels: dict | None = None,
                   extra_files: dict | None = None, language: str = "en", level_stages: dict | None = None) -> Path:
    """Write ``out_dir/basin_{id}_issued_{date}/`` (``..._with_weather_forecast/`` for a forecast with one,
    ``..._with_weather_ensemble/`` with several members, so the three kinds of forecast of one issue date do
    not replace each other; the same kind issued again does): forecast.csv (+ forecast.json for ``fmt="json"``),
    forecast_fan_chart.png, forecast_attention_weights.csv/.png (the issue day), forecast_attention_by_day.csv/.png
    (the issue day and each lead day) and report.html.

    ``levels`` (name -> m3/s) are drawn on the fan chart; ``extra_files`` (file name -> text, e.g.
    levels.json and warnings.txt) are written into the folder before the report is built; ``level_stages`` (name ->
    water level in m, at a station with a rating curve) are written in the levels' labels. ``language``
    (:data:`sca2lstm.words.LANGUAGES`): the words of the fan chart (where matplotlib has a font for them,
    :func:`~sca2lstm.evaluation.plots.chart_language`) and of the report's forecast section; the tables keep
    their English columns and keys.

    Built in a temporary folder and swapped in: a failure midway leaves an earlier output untouched.
    """
    from ..words import say
    from .plots import chart_language, plot_day_weights, plot_fan_chart, plot_feature_weights
    from .report import build_report

    out_dir = Path(out_dir)
    suffix = "" if fc.setting != SETTING_WEATHER else (ENSEMBLE_FOLDER_SUFFIX if fc.members is not None
                                                      else WEATHER_FOLDER_SUFFIX)
    name = f"basin_{fc.basin}_issued_{fc.issue_date.date()}{suffix}"
    final = out_dir / name
    with folder_built_aside(final) as tmp:
        t = with_observed(fc)
        t.to_csv(tmp / "forecast.csv", index=False, float_format="%.4f", date_format="%Y-%m-%d")
        if fmt == "json":
            rows = t.assign(issue_date=t["issue_date"].dt.strftime("%Y-%m-%d"),
                            valid_date=t["valid_date"].dt.strftime("%Y-%m-%d")).to_dict(orient="records")
            # "units" is the flows'; a station with a rating curve also has stage_* columns, water levels in m
            stage = {"stage_units": "m"} if any(c.startswith("stage_") for c in t.columns) else {}
            doc = {"basin": fc.basin, "model_checkpoint": fc.model_path, "setting": fc.setting,
                   "units": "m3/s", **stage, "forecast": rows, "attention_weights_issue_day": fc.weights.to_dict(),
                   **({} if fc.day_weights is None else {"attention_weights_by_day": {
                       str(d.date()): row.to_dict() for d, row in fc.day_weights.iterrows()}}),
                   "missing_inputs": list(fc.missing_inputs), "calibration": dict(fc.calibration),
                   "data": dict(fc.data)}
            (tmp / "forecast.json").write_text(json_text(doc, default=float), encoding="utf-8")  # NaN: null
        bands = {label: (t[lo], t[hi]) for label, (lo, hi) in interval_bands(t).items()}
        stage = None
        if fc.rating_curve is not None:  # the water levels a stage-gauge's forecaster reads, beside the flows
            from ..data.rating import stage_scale
            top = max(((c, lev) for c, lev in quantile_levels(t.columns).items() if t[c].notna().any()),
                      key=lambda cl: cl[1], default=("median", 0.5))[0]      # the highest level the model gave
            flows = [fc.history["observed"].max(), t["observed"].max(), t[top].max(), *(levels or {}).values()]
            stage = stage_scale(fc.rating_curve, fc.issue_date, q_top=2.0 * float(np.nanmax(flows)) + 1.0)
        chart = chart_language(language)
        plot_fan_chart(fc.history["date"], fc.history["observed"], t["valid_date"], t["median"], bands,
                       tmp / "forecast_fan_chart.png", observed_after=t["observed"],
                       title=say("fan_title", chart, basin=fc.basin, day=fc.issue_date.date(), setting=fc.setting),
                       levels=levels, members=None if fc.members is None else fc.members.to_numpy(),
                       stage_axis=stage, members_point=fc.point_only, language=chart, level_stages=level_stages)
        if fc.members is not None:  # each weather member's median flow, one row per member
            fc.members.rename(columns=lambda d: str(pd.Timestamp(d).date())).rename_axis("member").to_csv(
                tmp / "forecast_members.csv", float_format="%.4f")
        for fname, text in (extra_files or {}).items():
            (tmp / fname).write_text(text, encoding="utf-8")
        fc.weights.rename_axis("feature").reset_index().to_csv(tmp / "forecast_attention_weights.csv", index=False,
                                                               float_format="%.5f")
        plot_feature_weights(list(fc.weights.index), fc.weights.to_numpy(), tmp / "forecast_attention_weights.png",
                             title=f"Basin {fc.basin}: attention weights on the issue day {fc.issue_date.date()}",
                             labels={**feature_labels(fc.weights.index),
                                     FORECAST_FLAG: OBSERVED_FLAG_LABEL})  # the issue day's weather is observed
        if fc.day_weights is not None:  # what each lead's forecast read: a forecaster asks what drove day 3
            fc.day_weights.to_csv(tmp / "forecast_attention_by_day.csv", float_format="%.5f", date_format="%Y-%m-%d")
            plot_day_weights(fc.day_weights, tmp / "forecast_attention_by_day.png",
                             values=None if fc.day_flag is None else {FORECAST_FLAG: fc.day_flag},
                             labels=feature_labels(fc.day_weights.columns),
                             title=f"Basin {fc.basin}: attention weights, issue day {fc.issue_date.date()} and "
                                   "lead days")
        build_report(tmp, title=say("report_title", language, basin=fc.basin, day=fc.issue_date.date()),
                     folder_name=final.name, language=language)
    return final
