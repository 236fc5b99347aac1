"""Issued forecasts with warnings: one issue date (``forecast``) or every day of a span (reforecasts).

Both paths run the model the same way (:mod:`sca2lstm.evaluation.operational`), then turn its raw
quantiles into the issued forecast (:func:`sca2lstm.evaluation.calibration.adjust`: the persistence
blend per lead, the recession bound) and add, for each warning level of the station
(:mod:`sca2lstm.evaluation.levels`), ``p_exceed_<level>`` = P(Q > level)
(:mod:`sca2lstm.evaluation.exceedance`) and ``warn_<level>`` = whether it reaches the level's warning
probability. A reforecast is the table of :func:`reforecast`, one row per issue date and lead, with the
flow that came (``observed``) and persistence (``persistence``, the last observed flow up to the issue
date) for ``sca2lstm verify``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..data.station_meta import WarningLevel, check_level_flows
from ..errors import DataError, UsageError
from ..fileio import atomic_write_text, json_text
from ..notes import Note, note_value
from ..words import Said, listed, phrase, say
from .calibration import IssueSetup, issue_setup, read_calibration, training_flows, warn_probabilities
from .exceedance import exceedance_probability, first_warning_lead, nest_warnings, quantile_levels
from .levels import DEFAULT_DISTRIBUTION, Level, station_levels

log = logging.getLogger(__name__)
#: The most windows (issue dates x weather members) of a reforecast's model run: about 0.8 GB with the default
#: model; an ensemble's issue dates are taken that many // members at a time.
ENSEMBLE_WINDOWS = 2048


@dataclass
class Warnings:
    """A station's levels and how they are warned on: ``levels`` name -> Level (m3/s), with
    ``warn_probability`` set; ``warn_source`` name -> where the probability came from; ``basin`` the station they
    are of (None: not known)."""

    levels: dict
    warn_source: dict = field(default_factory=dict)
    basin: str | None = None

    def to_json(self) -> dict:
        """``levels.json``: ``{"q2y": {"value": .., "unit": "m3/s", "warn_probability": .., "source": ..,
        "basin": ..}}``. Each level names its station: ``sca2lstm verify --levels`` refuses another station's."""
        own = {"basin": self.basin} if self.basin is not None else {}
        return {n: {**lv.to_dict(), "warn_probability_source": self.warn_source.get(n), **own}
                for n, lv in self.levels.items()}

    def json_text(self, first: dict | None = None) -> str:
        """``levels.json``'s text, strict JSON: a figure that could not be computed (the NaN 90 % interval of a
        level fitted on few annual maxima) is ``null``, not ``NaN``, which jq, R and browsers refuse. ``first``
        (name -> the first lead that warns, or None) adds each level's ``first_warning_lead``."""
        doc = self.to_json()
        for n, lead in (first or {}).items():
            doc[n]["first_warning_lead"] = lead or None   # null: no lead reaches the level's warning probability
        return json_text(doc) + "\n"


def resolve_warnings(ctx, calibration: dict, user_levels=None, levels_in: str = "flow", warn_override=None,
                     dist: str | None = None, water_year_start: int | None = None, day=None) -> Warnings:
    """The station's levels (fitted on its training years, from its metadata file, from the user) and
    their warning probabilities (:func:`sca2lstm.evaluation.calibration.warn_probabilities`). ``dist`` and
    ``water_year_start`` of the return-period levels: as given, else the station metadata's (``flood_frequency``),
    else GLO on October water years. ``day``: the day a level given as a water level is a flow for, through the
    rating curve valid then (a single forecast's issue date; None: the latest curve)."""
    dist = dist or ctx.meta.distribution or DEFAULT_DISTRIBUTION
    water_year_start = water_year_start or ctx.meta.water_year_start
    unit, curve = ("m", ctx.meta.rating_curve) if levels_in == "stage" else ("m3/s", None)
    if user_levels and (unit == "m3/s" or curve is not None):  # no curve: station_levels says what is missing
        # as at import: a level the record could never warn on (typed in l/s, say), or would every day
        # (quietly: station_levels converts the water levels again, and says once which lie above the gauged range)
        check_level_flows(ctx.record.y, {n: WarningLevel(float(v), unit) for n, v in user_levels.items()}, curve,
                          warn=False)
    q, d = training_flows(ctx)
    if len(d):
        levels = station_levels(d, q, d[0], d[-1], meta=ctx.meta, user_levels=user_levels, levels_in=levels_in,
                                dist=dist, water_year_start=water_year_start, day=day)
    else:
        levels = station_levels([], [], None, None, meta=ctx.meta, user_levels=user_levels, levels_in=levels_in,
                                day=day)
    probs = warn_probabilities(calibration, levels, warn_override)
    for n, (p, source, by_lead) in probs.items():
        levels[n].warn_probability = p
        levels[n].extra["warn_probability_source"] = source
        if by_lead is not None:
            levels[n].extra["warn_probability_by_lead"] = [float(v) for v in by_lead]
    return Warnings(levels, {n: s for n, (_, s, _) in probs.items()}, basin=str(ctx.basin))


def _quantile_columns(table: pd.DataFrame) -> tuple[list, np.ndarray]:
    levels = quantile_levels(table.columns)
    cols, taus = list(levels), list(levels.values())
    order = np.argsort(taus)
    return [cols[i] for i in order], np.asarray(taus)[order]


def add_level_flows(table: pd.DataFrame, warnings: Warnings, curve) -> pd.DataFrame:
    """A copy of a reforecast ``table`` with ``level_<name>`` (m3/s) for each level given as a water level at a
    station whose rating ``curve`` changed (periods of validity): its flow on each row's ``valid_date`` through
    the curve valid then (the latest where none is), as the station's observed flows were converted from its
    stages. Unchanged where there is no such level or the curve has one period: the level's one flow serves."""
    from ..data.rating import as_curve

    staged = {n: lv for n, lv in warnings.levels.items() if getattr(lv, "stage", None) is not None}
    if not staged or curve is None or len(as_curve(curve).periods()) < 2:
        return table
    c = as_curve(curve)
    out = table.copy()
    for name, lv in staged.items():
        q = c.discharge(np.full(len(out), float(lv.stage)), pd.DatetimeIndex(out["valid_date"])).q
        # no curve valid on the day (after the last period) or the stage below that day's curve: the level's flow
        out[f"level_{name}"] = np.where(np.isfinite(q), q, lv.value)
    return out


def add_exceedance(table: pd.DataFrame, warnings: Warnings) -> pd.DataFrame:
    """``p_exceed_<level>`` and ``warn_<level>`` for every level, from the table's median and quantile columns;
    against the row's ``level_<name>`` where the table has it (:func:`add_level_flows`), else the level's flow."""
    cols, taus = _quantile_columns(table)
    all_taus = np.sort(np.r_[taus, 0.5])
    q = np.concatenate([table[cols].to_numpy(np.float64), table[["median"]].to_numpy(np.float64)], axis=1)
    q = q[:, np.argsort(np.r_[taus, 0.5], kind="stable")]
    out = table.copy()
    for name, lv in warnings.levels.items():
        # to the 4 decimals the files hold, so that a written 0.1500 against a warning probability of 0.15 warns
        flow = out[f"level_{name}"].to_numpy(np.float64) if f"level_{name}" in out.columns else lv.value
        p = np.round(exceedance_probability(q, all_taus, flow), 4)
        out[f"p_exceed_{name}"] = p
        by_lead = lv.extra.get("warn_probability_by_lead")
        if by_lead is not None and "lead_days" in out.columns:
            k = np.clip(out["lead_days"].to_numpy(int) - 1, 0, len(by_lead) - 1)
            out[f"warn_{name}"] = p >= np.asarray(by_lead)[k]
        else:
            out[f"warn_{name}"] = p >= lv.warn_probability
    nested = nest_warnings({n: out[f"warn_{n}"].to_numpy(bool) for n in warnings.levels},
                           {n: lv.value for n, lv in warnings.levels.items()})
    for name, w in nested.items():
        out[f"warn_{name}"] = w
    return out


def apply_issue_setup(table: pd.DataFrame, setup: IssueSetup, last_obs: float, gap: int) -> pd.DataFrame:
    """One forecast's table (one row per lead) blended and bounded as :func:`adjust` does: the median and
    the quantile columns are shifted alike, then raised to the recession bound."""
    cols, taus = _quantile_columns(table)
    med = table["median"].to_numpy(np.float64)[None]
    full = np.concatenate([table[cols].to_numpy(np.float64), med[0][:, None]], axis=1)[None]
    order = np.argsort(np.r_[taus, 0.5], kind="stable")
    L = med.shape[1]
    bound = setup.recession.bound([last_obs], L, gap) if setup.recession is not None else None
    med2, q2 = setup.adjust(med, full[..., order], np.r_[taus, 0.5][order], [last_obs], bound)
    out = table.copy()
    out["median"] = med2[0]
    for k, j in enumerate(order):
        if j < len(cols):
            out[cols[j]] = q2[0, :, k]
    return out


def last_observation(y: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For issue indices ``i`` [n] of a daily series ``y``: the last observed value up to each and its age
    in days (NaN / 0 where none)."""
    idx = np.where(np.isfinite(y), np.arange(len(y)), -1)
    last = np.maximum.accumulate(idx)[i]
    val = np.where(last >= 0, y[np.maximum(last, 0)], np.nan)
    return val, np.where(last >= 0, i - last, 0)


def weather_setting(fc) -> str:
    """The spread calibration's weather setting of an issued forecast (its table's ``setting`` and
    members): ``none``, ``forecast`` (one weather run) or ``ensemble``."""
    from .operational import SETTING_WEATHER, member_setting

    if fc.table["setting"].iloc[0] != SETTING_WEATHER:
        return "none"
    return member_setting(1 if fc.members is None else len(fc.members))


def warned_forecast(bundle, basin, data_dir=None, issue_date=None, leads=7, weather_forecast=None, timeseries=None,
                    allow_missing_inputs: bool = False, context=None, model_path=None, user_levels=None,
                    levels_in: str = "flow", warn_override=None, dist: str | None = None, precip_mapping: str = "auto",
                    weather_lags: str = "auto"):
    """An issued forecast with warnings: :func:`~sca2lstm.evaluation.operational.issue_forecast`, blended per
    lead and bounded by the recession, with ``p_exceed_<level>`` and ``warn_<level>`` columns.

    Returns
    -------
    (OperationalForecast, Warnings, dict)
        The forecast (its ``table`` extended), the levels, and the first warning lead per level (0: none).
    """
    from ..data.rating import add_stage_columns
    from .context import BasinContext
    from .operational import add_note, issue_forecast

    ctx = context or BasinContext.resolve(bundle, data_dir, basin, timeseries=timeseries,
                                          allow_missing_inputs=allow_missing_inputs)
    fc = issue_forecast(bundle, basin, issue_date=issue_date, leads=leads, weather_forecast=weather_forecast,
                        context=ctx, precip_mapping=precip_mapping, allow_missing_inputs=allow_missing_inputs,
                        weather_lags=weather_lags)
    calib = read_calibration(model_path)
    setup = issue_setup(ctx, ctx.cfg.training.forecast_leads, calib, weather_setting(fc))
    i = int(np.searchsorted(ctx.record.dates, np.datetime64(fc.issue_date.date(), "D")))
    y = ctx.frame[ctx.cfg.data.target].to_numpy(np.float64)
    last, gap = last_observation(y, np.array([min(i, len(y) - 1)]))
    fc.table = apply_issue_setup(fc.table, setup, float(last[0]), int(gap[0]))
    if fc.members is not None:  # each member's median as issued too: blended and bounded like the forecast's
        m = fc.members.to_numpy(np.float64)
        L = m.shape[1]
        bound = setup.recession.bound(np.full(len(m), last[0]), L, int(gap[0])) if setup.recession is not None \
            else None
        fc.members = pd.DataFrame(setup.adjust(m, None, None, np.full(len(m), last[0]), bound)[0],
                                  columns=fc.members.columns, index=fc.members.index)
    fc.calibration = setup.sources
    warnings = resolve_warnings(ctx, calib, user_levels, levels_in, warn_override, dist, day=fc.issue_date)
    # a water level's flow on each lead day by the curve valid then, as its reforecast row has it (a past issue date)
    fc.table = add_exceedance(add_level_flows(fc.table, warnings, ctx.meta.rating_curve if ctx.meta is not None
                                              else None), warnings)
    fc.rating_curve = ctx.meta.rating_curve if ctx.meta is not None else None
    fc.table = add_stage_columns(fc.table, fc.rating_curve)
    first = {n: int(first_warning_lead(fc.table[f"warn_{n}"].to_numpy(float), 0.5)) for n in warnings.levels}
    add_note(fc.data, in_sample_note(ctx.basin, fc.table["valid_date"], ctx.seen_days(fc.table["valid_date"])))
    return fc, warnings, first


def in_sample_note(basin: str, valid_dates, seen):
    """The note of a forecast of past days the model learned from (``seen``: [leads] bool of ``valid_dates``,
    :meth:`~sca2lstm.evaluation.context.BasinContext.seen_days`): a check of it there is no test. None where no
    valid day is one of them."""
    seen = np.asarray(seen, bool)
    if not seen.any():
        return None
    days = pd.DatetimeIndex(valid_dates)[seen]
    return Note("in_sample", basin=basin, first=str(days.min().date()), last=str(days.max().date()))


def level_stages(levels: dict, curve, day, digits: int | None = None) -> dict:
    """name -> each of ``levels`` (:class:`Level`) as a water level (m) at a station with a rating ``curve``: as it
    was given, else its flow through the curve valid on ``day`` (the issue date), rounded to ``digits`` decimals
    where given (2: the centimetre a gauge is read to); what the command's level lines and the service's levels
    (``stage``) say. Without a curve, only the levels given as water levels; none where a flow lies below the curve."""
    from ..data.rating import discharge_to_stage

    out = {}
    for name, lv in levels.items():
        h = getattr(lv, "stage", None)
        if h is None and curve is not None:
            h = float(discharge_to_stage(curve, [lv.value], day)[0])
            h = round(h, digits) if digits is not None and np.isfinite(h) else h
        if h is not None and np.isfinite(h):
            out[name] = float(h)
    return out


def warning_sentence(basin: str, first: dict, warnings: Warnings, table: pd.DataFrame, observed=None,
                     language: str = "en", stages: dict | None = None) -> str:
    """One sentence: which levels are forecast to be crossed, from which day, and how likely (the highest first).

    ``observed``: ``(date, flow m3/s)`` of the last observed flow the forecast starts from; where it is already
    above a level, a second sentence says so (a forecast of the days after does not: a falling river above its
    danger level is forecast to cross nothing). ``language``: one of :data:`sca2lstm.words.LANGUAGES`; the
    numbers, dates and level names are the same in each. ``stages``: each level's water level (:func:`level_stages`),
    said after its flow; without it, only a level given as a water level says one."""
    now = _already_above(observed, warnings, language)
    parts = []
    for n, lead in sorted(first.items(), key=lambda kv: -warnings.levels[kv[0]].value):
        if lead:
            row = table.iloc[lead - 1]
            p_max = float(table[f"p_exceed_{n}"].max())
            lv = warnings.levels[n]
            h = getattr(lv, "stage", None)
            h = (stages or {}).get(n) if h is None else h
            stage = say("warning_stage", language, stage=h) if h is not None else ""
            parts.append(say("warning_part", language, name=n, value=lv.value, stage=stage, lead=lead,
                             day=pd.Timestamp(row["valid_date"]).date(), p=p_max))
    if not parts:
        levels = (say("levels_named", language, names=", ".join(warnings.levels)) if warnings.levels
                  else say("no_levels", language))
        return say("no_warning", language, basin=basin, days=len(table), levels=levels, now=now)
    return say("warning_for", language, basin=basin, parts=say("warning_parts_separator", language).join(parts),
               now=now)


def _already_above(observed, warnings: Warnings, language: str = "en") -> str:
    """`` Observed on DATE: Q m3/s, above L1, L2.`` for the levels the last observed flow exceeds (highest
    first), or ``""``."""
    if observed is None or not np.isfinite(observed[1]):
        return ""
    day, flow = observed
    above = sorted((n for n, lv in warnings.levels.items() if flow > lv.value), key=lambda n: -warnings.levels[n].value)
    return (say("already_above", language, day=pd.Timestamp(day).date(), flow=flow, names=listed(above, language))
            if above else "")


def reforecast(bundle, basin, start, end, leads=None, data_dir=None, model_path=None, user_levels=None,
               levels_in: str = "flow", warn_override=None, dist: str | None = None, weather: str = "none",
               allow_missing_inputs: bool = False, context=None, batch_size: int = 256, weather_archive=None,
               precip_mapping: str = "auto", progress: bool = False, weather_lags: str = "auto"):
    """Issue a forecast on every day of [start, end], batched: the reforecast table.

    Issue dates without an observed flow in the ``RECENT_OBS_DAYS`` up to them are left out, as a single
    forecast refuses them, and so are the days of the span outside the basin's record (a span wholly outside it is
    refused). With ``weather_archive`` (a :class:`sca2lstm.weather.files.WeatherForecast` of
    past forecasts by issue date, sca2lstm/weather/archive.py) each issue date takes the forecast issued on
    it (all its members, the quantiles from their mixture), and issue dates the archive lacks are left out.
    ``batch_size``: issue dates per model run (an ensemble's at most :data:`ENSEMBLE_WINDOWS` windows in all).
    ``precip_mapping``: ``auto`` (default; only drizzly forecasts) or ``quantile`` maps the archive's precipitation
    of each issue date as a single forecast of that date maps it (:func:`sca2lstm.evaluation.rain_mapping.mapped_weather`).
    ``weather_lags``: ``auto`` combines each issue date's precipitation with the same days' forecasts of the archive's
    earlier issue dates before any mapping, as a single forecast of that date does
    (:func:`sca2lstm.evaluation.rain_mapping.lagged_weather`); ``none`` reads the archive's runs as given.
    ``progress``: a bar over the issue dates on a terminal.
    With an archive, ``attrs["weather"]`` is what
    :func:`write_reforecast` writes to ``weather.json``: the source, the mapping (None: none) and its notes, and
    ``archive_rain``, the archive's precipitation as given against the observed on the issued dates' valid days
    at lead 1 and the last lead (:func:`sca2lstm.weather.mapping.archive_rain`).

    Returns
    -------
    (pandas.DataFrame, Warnings)
        One row per issue date and lead: issue_date, valid_date, lead_days, median, q05, q25, q75, q95,
        observed, persistence, weather_members (the weather runs the date was issued from: 0 without a weather
        forecast or with the observed weather, 1 for one forecast, N for an ensemble's complete members),
        setting, in_sample (the valid day is one the model or its blend learned
        from: :meth:`BasinContext.seen_days`), then ``p_exceed_<level>`` and ``warn_<level>`` per level.
        Its ``attrs["left_out"]``: each issue date left out -> why (:func:`left_out_text` shows them).
    """
    from ..data.rating import add_stage_columns
    from .context import BasinContext
    from .operational import (RECENT_OBS_DAYS, _check_leads, _forecast_leads, check_recent_inputs,
                              issue_time_hindcasts, member_setting, quantile_column)
    from ..weather.mapping import check_mappable
    from .rain_mapping import is_archive, lagged_weather, mapped_weather
    from .settings import SETTING_ARCHIVE, SETTING_ISSUE, SETTING_PERFECT

    ctx = context or BasinContext.resolve(bundle, data_dir, basin, allow_missing_inputs=allow_missing_inputs)
    cfg = ctx.cfg
    trained = _forecast_leads(cfg)
    leads = _check_leads(leads if leads is not None else min(7, trained), trained)
    from ..data.periods import parse_day
    s, e = parse_day(start, "--from"), parse_day(end, "--to")
    if e < s:
        raise UsageError(f"--from {s.date()} is after --to {e.date()}")
    dates = ctx.record.dates
    rec_first, rec_last = pd.Timestamp(dates[0]), pd.Timestamp(dates[-1])
    if e < rec_first or s > rec_last:
        raise DataError(f"--from {s.date()} --to {e.date()}: outside the data of basin {ctx.basin} "
                        f"({dates[0]}..{dates[-1]})")
    # A span reaching past the record (to today, while the data end last week) issues the days the record holds,
    # as a single forecast would, and names the others among those left out: no forecast is made without data.
    outside = pd.date_range(s, e, freq="D")
    outside = outside[(outside < rec_first) | (outside > rec_last)]
    s, e = max(s, rec_first), min(e, rec_last)
    i0, i1 = ctx.record.period(np.datetime64(s.date(), "D"), np.datetime64(e.date(), "D"))
    y = ctx.record.y.astype(np.float64)
    issue = np.arange(i0, i1)
    last, gap = last_observation(y, issue)
    keep = np.isfinite(last) & (gap < RECENT_OBS_DAYS)
    # why each issue date left out was: a forecaster fills the gauge's gap, or the archive's, and runs again
    why = {i: Said("no_recent_flow", days=RECENT_OBS_DAYS) for i in issue[~keep]}
    if not keep.any():
        raise DataError(f"basin {ctx.basin}: no issue date in {s.date()}..{e.date()} has an observed flow in the "
                        f"{RECENT_OBS_DAYS} days up to it")
    lead_weather = None
    mapping = None
    lagged = None
    pet_note = None
    if weather_archive is None:
        check_mappable(None, precip_mapping)   # quantile without an archive: refused in one line, nothing to map
    if weather_archive is not None:
        from ..weather.archive import ArchivedForecast, with_model_pet
        from ..weather.files import gauge_latitude, pet_history_note, pet_way_counts
        from ..weather.windows import LeadWeather

        # each run's PET as the single forecast of its date gets it: of the kind the basin's history read
        arch = with_model_pet(weather_archive, cfg, gauge_latitude(ctx.data_dir, ctx.basin), ctx.pet_rule)
        days = arch.issue_dates
        if not ((days >= s) & (days <= e)).any():
            # before the rain's mapping and combination, which rank the span's runs: a span the archive does not
            # reach is the user's to move, so say where its forecasts are
            raise DataError(f"{weather_archive.source}: holds no forecast for an issue date in {s.date()}..{e.date()}"
                            + (f" (its forecasts are issued {days.min().date()}..{days.max().date()})" if len(days)
                               else ""))
        days = days[(days >= s) & (days <= e)]
        # how the span's runs got their PET, each as the forecast of its date alone gets it (weather.json, a line)
        pet_runs = pet_way_counts(arch.pet_runs, days)
        # the runs' PET of the kind the station's history read where the config alone would say otherwise: said why
        t = weather_archive.table
        pet_note = pet_history_note(ctx.pet_rule, t[t["issue_date"].isin(days)], weather_archive.source)
        if pet_note:
            log.warning("%s", pet_note)
        # the earlier runs of each day first: a mapping then ranks the combined forecast among the archive's runs,
        # whose climate the combination keeps; only the issue dates with a recent observed flow, which the
        # reforecast issues: its line and weather.json counted the gauge's gaps among the dates combined
        issued = days[days.isin(pd.DatetimeIndex(dates[issue[keep]]))]
        runs = arch.table["precipitation"].to_numpy() if "precipitation" in arch.table.columns else None
        arch, lagged = lagged_weather(ctx, arch, issued, weather_lags)
        if (lagged or {}).get("may_have_learned"):
            log.warning("%s", lagged["may_have_learned"])
        # each issue date mapped from the forecasts issued before it: an archive's own, or for one forecast (its
        # one issue date in the span) the station's archive's, as a forecast of that date maps it
        if precip_mapping != "none" and (is_archive(arch) or len(days) == 1):
            # ranked among the archive's runs as issued: a forecast of one date ranks among them (only its own
            # date is combined), so a row of the reforecast equals it whatever the span's first date
            rain = mapped_weather(ctx, arch, days, precip_mapping, ranked_among=runs)
            arch = rain.weather
            if rain.note:
                log.warning("%s", rain.note)
            mapping = {"notes": [rain.note] if rain.note else [], "precip_mapping": rain.record}
        # Only the span's issue dates: its members, its setting and whether it mixes one forecast a day with an
        # ensemble are the span's own (the refusal of such a mix says to reforecast the spans apart).
        t = arch.table
        span = replace(arch, table=t[(t["issue_date"] >= s) & (t["issue_date"] <= e)])
        lead_weather = ArchivedForecast(LeadWeather.from_model(ctx.scalers, cfg), span, dates[0], leads, trained)
        archived = lead_weather.available(issue)
        why.update((i, lead_weather.why_unavailable(i)) for i in issue[keep & ~archived])
        keep &= archived
        if not keep.any():
            t = arch.table
            reach = int((t["valid_date"] - t["issue_date"]).dt.days.max()) if len(t) else 0
            hint = (f"; its forecasts reach lead {reach}: give --leads {reach}" if 1 <= reach < leads else
                    "; its first lead day must be the day after the issue date" if reach < 1 else "")
            raise DataError(f"{weather_archive.source}: holds no forecast for an issue date in {s.date()}..{e.date()} "
                            f"with every lead 1..{leads}{hint}")
        part = lead_weather.partial(issue[keep])
        if part:
            day, used, held = part[0]
            log.warning("%s", Note("reforecast_members_left_out", source=note_value(weather_archive.source),
                                   n=len(part), day=str(pd.Timestamp(dates[day]).date()), used=int(used),
                                   held=int(held)))
        weather = "perfect"
        # the runs an issue date holds, as a single forecast counts them: not the member numbers the archive
        # uses over all its dates (one forecast a day, numbered by run, is not an ensemble)
        setting = member_setting(lead_weather.members)
        members_used = lead_weather.used(issue)
        # an ensemble's date left with one complete member: a single forecast of it runs that member as one
        # weather forecast (flagged, with the forecast spread), so its reforecast row does too
        alone = keep & (members_used == 1) & (lead_weather.members > 1)
        if alone.any():
            log.warning("%s", Note("reforecast_member_alone", source=note_value(weather_archive.source),
                                   n=int(alone.sum()), day=str(pd.Timestamp(dates[issue[alone][0]]).date())))
    else:
        setting = weather
        # no weather after the issue date, or the observed weather (a perfect forecast): no weather member
        members_used = np.zeros(len(issue), dtype=np.int64)
        alone = np.zeros(len(issue), dtype=bool)
    # as a single forecast says it: an issue date without its own observed flow starts from an older one (a gauge's
    # gap), which the forecaster may not know when reading the table (persistence carries that flow too)
    stale = issue[keep][gap[keep] > 0]
    if len(stale):
        log.warning("%s", Note("reforecast_stale_flow", basin=ctx.basin, n=len(stale),
                               first=str(pd.Timestamp(dates[stale[0]]).date()),
                               last=str(pd.Timestamp(dates[stale[-1]]).date()), days=int(gap[keep].max())))
    # as a single forecast says it: an issue date too close to the record's start reads a window partly before it
    early = issue[keep][issue[keep] < cfg.training.seq_len - 1 - trained]
    if len(early):
        log.warning("%s", Note("reforecast_short_record", basin=ctx.basin, n=len(early),
                               first=str(pd.Timestamp(dates[early[0]]).date()),
                               last=str(pd.Timestamp(dates[early[-1]]).date()), window=int(cfg.training.seq_len - trained)))
    # the rule of a single forecast: an issue date whose days read lack precipitation the record holds is refused
    for line in check_recent_inputs(Note("basin_named", basin=ctx.basin), ctx.frame, dates[issue[keep]], cfg,
                                    allow_missing_inputs or ctx.allow_missing_inputs):
        log.warning("%s", line)
    # Each issue date of an ensemble runs once per member: at most ENSEMBLE_WINDOWS windows per model run (256
    # dates of 50 members at once took 6 GB with the default model; fewer windows cost time in the recurrence).
    per = batch_size if lead_weather is None else max(1, min(batch_size, ENSEMBLE_WINDOWS // lead_weather.members))
    run = issue_time_hindcasts(ctx.model, ctx.sequence_data(), [(i0, i1)], trained, weather, seq_len=cfg.training.seq_len,
                               lead_days=cfg.data.lead_days, device=ctx.device, batch_size=per,
                               lead_weather=lead_weather, progress=progress)[0]
    calib = read_calibration(model_path)
    setup = issue_setup(ctx, trained, calib, setting)
    bound = setup.recession.bound(last, trained, gap) if setup.recession is not None else None
    med, qs = setup.adjust(run.median, run.quantiles, run.levels, last, bound)
    if alone.any():
        med, qs = _issue_alone(ctx, lead_weather.alone(), issue, alone, (med, qs), last, gap, calib, cfg,
                               trained, progress)
    med, obs = med[keep, :leads], run.observed[keep, :leads]
    n = int(keep.sum())
    idates = pd.DatetimeIndex(dates[issue[keep]])
    tab = pd.DataFrame({"issue_date": np.repeat(idates, leads),
                        "valid_date": (np.repeat(idates, leads) + pd.to_timedelta(np.tile(np.arange(1, leads + 1),
                                                                                           n), unit="D")),
                        "lead_days": np.tile(np.arange(1, leads + 1), n), "median": med.ravel()})
    if qs is not None:
        qs = qs[keep, :leads]
        for j, lev in enumerate(run.levels):
            if lev != 0.5:
                tab[quantile_column(lev)] = qs[:, :, j].ravel()
    tab["observed"] = obs.ravel()
    tab["persistence"] = np.repeat(last[keep], leads)
    # the weather runs each issue date was issued from (0: none, or the observed weather; 1: one forecast; N: an
    # ensemble's complete members), which an archive's dates may differ in
    tab["weather_members"] = np.repeat(members_used[keep], leads)
    tab["setting"] = (SETTING_ARCHIVE if lead_weather is not None
                      else SETTING_PERFECT if weather == "perfect" else SETTING_ISSUE)
    # A valid day the model trained or was validated on, or whose flow its blend was fitted on: a score on
    # it is in-sample (sca2lstm verify says so).
    tab["in_sample"] = ctx.seen_days(tab["valid_date"])
    # a water level as the flow of the span's last issue date (levels.json, the level line); each row's own below
    warnings = resolve_warnings(ctx, calib, user_levels, levels_in, warn_override, dist, day=e)
    curve = ctx.meta.rating_curve if ctx.meta is not None else None
    tab = add_stage_columns(tab, curve)
    # a water level's flow on each valid day, through the curve the station's flows of that day were read by
    tab = add_exceedance(add_level_flows(tab, warnings, curve), warnings)
    # the station the rows are of: verify refuses another station's levels.json, or a table of several stations.
    # Last, so that the documented columns (issue_date, valid_date, lead_days, median, ...) keep their places.
    tab["basin"] = str(ctx.basin)
    tab.attrs["left_out"] = {pd.Timestamp(dates[i]): r for i, r in sorted(why.items())}
    tab.attrs["left_out"].update((d, Said("outside_record", basin=ctx.basin, first=str(rec_first.date()),
                                          last=str(rec_last.date()))) for d in outside)
    if weather_archive is not None:
        caution = [n for n in ((lagged or {}).get("may_have_learned"), pet_note) if n]
        tab.attrs["weather"] = {"source": weather_archive.source, "precip_mapping": None,
                                **(mapping or {}), "notes": caution + (mapping or {}).get("notes", []),
                                **({"lagged": lagged} if lagged else {}),
                                **({"pet": pet_runs} if pet_runs else {}),
                                # the runs' column read as the model's PET, where it is not the model's name
                                **({"pet_column": ctx.pet_rule.column}
                                   if pet_runs.get("given") and ctx.pet_rule.column != ctx.pet_rule.pet else {}),
                                "archive_rain": _archive_rain(ctx, weather_archive, arch if _mapped_by(mapping) else None,
                                                              idates, leads)}
    return tab, warnings


def _issue_alone(ctx, one, issue, alone, issued, last, gap, calib, cfg, trained: int, progress: bool):
    """``issued`` (median [n, leads], quantiles [n, leads, Q] or None, adjusted) with the rows of the issue dates
    ``alone`` [n] replaced by their forecast from the one weather run ``one`` (:meth:`ArchivedForecast.alone`),
    adjusted with the forecast setting's blend and spread: as a single forecast of such a date issues it."""
    from .operational import issue_time_hindcasts

    med, qs = (None if a is None else a.copy() for a in issued)
    at = np.flatnonzero(alone)
    # a run per stretch of consecutive such dates (``issue`` is consecutive days): one span from the first to the
    # last would run every date between them, years of an archive for a few scattered dates
    spans = np.split(at, np.flatnonzero(np.diff(at) > 1) + 1)
    runs = issue_time_hindcasts(ctx.model, ctx.sequence_data(), [(issue[s[0]], issue[s[-1]] + 1) for s in spans],
                                trained, "perfect", seq_len=cfg.training.seq_len, lead_days=cfg.data.lead_days,
                                device=ctx.device, basin_indices=[0] * len(spans), lead_weather=one,
                                progress=progress)   # basin 0: the context's one basin
    raw_q = [r.quantiles for r in runs]
    setup = issue_setup(ctx, trained, calib, "forecast")
    bound = setup.recession.bound(last[at], trained, gap[at]) if setup.recession is not None else None
    m1, q1 = setup.adjust(np.concatenate([r.median for r in runs]), None if raw_q[0] is None else np.concatenate(raw_q),
                          runs[0].levels, last[at], bound)
    med[at] = m1
    if qs is not None and q1 is not None:
        qs[at] = q1
    return med, qs


def _mapped_by(mapping: dict | None) -> bool:
    """Whether a reforecast's archive went through the mapping (``auto`` leaves the archive a model trained on as
    given: it then has no mapped share of wet days to report)."""
    return bool(mapping) and not (mapping.get("precip_mapping") or {}).get("not_mapped_because")


def _archive_rain(ctx, given, mapped, issue_dates, leads) -> dict | None:
    """The archive's precipitation as given (and mapped) against the basin's observed, at lead 1 and ``leads``
    (:func:`sca2lstm.weather.mapping.archive_rain`); None where the model or the archive has no precipitation."""
    from ..weather.mapping import archive_rain

    obs = ctx.observed_precipitation()
    if obs is None or "precipitation" not in given.table.columns:
        return None
    return archive_rain(given.table, obs, issue_dates, sorted({1, leads}),
                        mapped=mapped.table if mapped is not None else None)


def left_out_text(left: dict, most: int = 8, language: str = "en") -> str:
    """The issue dates a reforecast left out (``left``: date -> why), consecutive dates of one reason as a
    span: ``"2010-01-03..2010-01-05 (why), 2010-02-10 (why)"``; past ``most`` spans, how many more. In
    ``language`` (a reason that is a :class:`~sca2lstm.words.Said` is said in it too), the dates as they are."""
    spans: list = []
    for day, why in sorted(left.items()):
        if spans and spans[-1][2] == why and day - spans[-1][1] == pd.Timedelta(days=1):
            spans[-1][1] = day
        else:
            spans.append([day, day, why])
    text = say("left_out_separator", language).join(
        say("left_out_span", language, days=f"{a.date()}" + (f"..{b.date()}" if b > a else ""),
            why=phrase(why, language)) for a, b, why in spans[:most])
    return text + (say("left_out_more", language, n=len(spans) - most) if len(spans) > most else "")


def write_reforecast(table: pd.DataFrame, warnings: Warnings, folder) -> None:
    """``folder`` with ``reforecast.csv`` and ``levels.json``, built beside it and swapped in whole: an earlier
    reforecast's folder (and the ``verify`` scores of it) is replaced, never mixed with the new table. A table
    of an archive's forecasts (``attrs["weather"]``: its source, the mapping of its precipitation, its rain
    against the observed) writes that to ``weather.json``."""
    from ..fileio import folder_built_aside

    with folder_built_aside(folder) as tmp:
        atomic_write_text(tmp / "reforecast.csv", table.to_csv(index=False, float_format="%.4f", date_format="%Y-%m-%d"))
        atomic_write_text(tmp / "levels.json", warnings.json_text())
        doc = table.attrs.get("weather")
        if doc:
            atomic_write_text(tmp / "weather.json", json_text(doc) + "\n")


__all__ = ["Warnings", "add_exceedance", "apply_issue_setup", "last_observation", "left_out_text", "reforecast",
           "level_stages", "resolve_warnings", "warned_forecast", "warning_sentence", "weather_setting", "write_reforecast", "Level"]
