"""What issue-time forecasts learn on validation days: the persistence blend and the spread per lead, and
warning probabilities.

All are fitted on the **validation** days only (never the test days); for the basin a model was fine-tuned
on, only those outside every span its pretraining and fine-tuning trained on, the days its blend is fitted on
(:meth:`~sca2lstm.evaluation.context.BasinContext.blend_days`: a ``--test_start`` can move fine-tuning's
validation part into the pretraining years):

* **Blend per lead.** For lead ``k`` the issued median is
  ``m'_k = a_k * m_k + (1 - a_k) * Q0`` (``Q0`` the last observed flow up to the issue date), with
  ``a_k`` the least-squares weight of :func:`sca2lstm.evaluation.persistence.fit_blend` on the basin's
  validation issue dates; every quantile is shifted by the same ``m'_k - m_k``, so the blend moves the
  distribution towards persistence without narrowing it. On the days it was fitted on, the blended
  median is never worse than persistence or the raw model.
* **Warning probabilities.** Per level (``q2y`` .. ``q20y``), pooled over basins, the probability of
  exceedance above which warning maximises F1 (:func:`choose_warn_probabilities`): one per lead
  (``by_lead``, used by the forecasts: a day-1 forecast is sharper than a day-7 one, so the best
  threshold differs) and one pooled over the leads (``warn_probability``, the figure ``levels.json`` shows), which a
  lead with too few event days or none warned on takes.

* **Spread per lead** (:mod:`sca2lstm.evaluation.spread`): each quantile's distance from the median is
  rescaled per lead, state and weather setting, pooled over basins, so that the 90 % interval holds about
  90 % for a station the model never saw (90-93 % on the calibration basins' validation forecasts, by
  setting: an out-of-sample margin), with as many observations below it as above. Fitted for forecasts without weather, with
  one weather forecast and with a weather ensemble (both emulated where no archive exists: labelled
  so), and with the observed weather (benchmarks). With a weather forecast the blend is one weight per
  lead pooled over basins (``weather_blend``).

They are stored **beside the model** in ``<checkpoint stem>.forecast_calibration.json``, written at the
end of pretraining and fine-tuning (and by ``bench/floods.py`` for a model trained before), so the
checkpoint's format is unchanged. A basin not in the file gets its blend fitted on its own validation
days when first forecast; a model without the file warns at ``DEFAULT_WARN_PROBABILITY``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..data.tables import read_json
from ..errors import DataError
from ..fileio import atomic_write_text, file_sha256, json_text
from ..words import Source
from .exceedance import DEFAULT_WARN_PROBABILITY, choose_warn_probabilities, exceedance_probability
from .levels import RETURN_PERIODS, record_levels, return_period_name
from .persistence import fit_blend
from .recession import RecessionBound, apply_bound, fit_recession
from .spread import FACTOR_RANGE, OUT_OF_SAMPLE_WIDEN, WEATHER_SETTINGS, SpreadCalibration, fit_spread

log = logging.getLogger(__name__)

SUFFIX = ".forecast_calibration.json"
#: Basins sampled (seeded) to choose warning probabilities at the end of pretraining.
MAX_BASINS = 32


def calibration_path(model_path) -> Path:
    p = Path(model_path)
    return p.with_name(p.stem + SUFFIX)


@functools.lru_cache(maxsize=64)
def _model_sha256(path: str, mtime_ns: int, size: int) -> str:
    """The checkpoint's sha256, cached for as long as the file is unchanged (the service reads it often)."""
    return file_sha256(path)


def model_identity(model_path) -> str | None:
    """sha256 of the checkpoint file ``model_path`` (None where there is no such file)."""
    p = Path(model_path)
    try:
        st = p.stat()
    except OSError:
        return None
    return _model_sha256(str(p.resolve()), st.st_mtime_ns, st.st_size)


def read_calibration(model_path) -> dict:
    """The calibration stored beside ``model_path``; ``{}`` where there is none (or no path).

    A calibration records the sha256 of the checkpoint it was fitted for (``model_sha256``). One that
    belongs to another checkpoint (the model was replaced, e.g. a run stopped between writing the model and
    its calibration) is not used: one warning line, and ``{}``, as if there were none.
    """
    if model_path is None:
        return {}
    p = calibration_path(model_path)
    if not p.is_file():
        return {}
    doc = read_json(p, what="forecast calibration (delete it to refit)")
    fitted_for = doc.get("model_sha256") if isinstance(doc, dict) else None
    if fitted_for is not None and fitted_for != model_identity(model_path):
        log.warning("%s was fitted for another checkpoint than %s and is not used; refit it with "
                    "`sca2lstm calibrate --model %s`", p.name, Path(model_path).name, shlex.quote(str(model_path)))
        return {}
    return doc


def calibration_identity(doc: dict) -> str:
    """sha256 of the calibration ``doc`` as read (its keys sorted): forecasts made with another calibration of
    the same checkpoint are other forecasts. ``{}`` (none, or one fitted for another checkpoint) has its own."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def write_calibration(model_path, doc: dict) -> Path:
    """Write ``doc`` beside ``model_path``, tied to that checkpoint's bytes (``model_sha256``).

    Strict JSON: a figure that could not be computed (NaN, an infinity) is ``null``, which its readers turn back
    into NaN (``np.asarray(..., dtype=float)``); ``json.dumps`` wrote ``NaN``, which jq, R and browsers refuse.
    """
    doc = {**doc, "model_sha256": model_identity(model_path)}
    return atomic_write_text(calibration_path(model_path), json_text(doc) + "\n")


def fit_lead_blend(median, observed, last_obs) -> np.ndarray:
    """Blend weight of the model per lead.

    Parameters
    ----------
    median, observed : array_like, shape [n, L]
        Issued median and the flow that came, per issue date and lead (m3/s).
    last_obs : array_like, shape [n]
        The last observed flow up to each issue date (persistence).

    Returns
    -------
    ndarray [L], in [0, 1] (1 where a lead has nothing to fit on).
    """
    med = np.asarray(median, dtype=np.float64)
    pers = np.broadcast_to(np.asarray(last_obs, dtype=np.float64)[:, None], med.shape)
    fit = fit_blend(np.asarray(observed, dtype=np.float64).T, med.T, pers.T)
    return np.atleast_1d(np.asarray(fit.alpha, dtype=np.float64))


def adjust(median, quantiles, last_obs, alpha=None, bound=None, spread=None, levels=None, scale=None):
    """The issued forecast from the model's raw one: blend per lead, spread per lead, then the recession bound.

    Parameters
    ----------
    median : ndarray [n, L]
    quantiles : ndarray [n, L, Q] or None
        Including the median's level if the head has one (they are shifted alike).
    last_obs : ndarray [n]
    alpha : array_like [L] or None
        Blend weights (None: no blend).
    bound : ndarray [n, L] or None
        :meth:`RecessionBound.bound` (None: no bound).
    spread : SpreadCalibration or None
        Rescales the quantiles around the blended median (None: as the head gave them).
    levels : sequence [Q], scale : float or ndarray [n]
        With ``spread``: the quantiles' levels, and the basin's mean training flow of each forecast.

    Returns
    -------
    (median [n, L], quantiles [n, L, Q] or None), m3/s, >= 0, quantiles sorted.
    """
    med = np.asarray(median, dtype=np.float64)
    qs = None if quantiles is None else np.asarray(quantiles, dtype=np.float64)
    if alpha is not None:
        a = np.asarray(alpha, dtype=np.float64)[None, :med.shape[1]]
        pers = np.asarray(last_obs, dtype=np.float64)[:, None]
        new = np.where(np.isfinite(pers), a * med + (1 - a) * pers, med)
        if qs is not None:
            qs = qs + (new - med)[..., None]
        med = new
    if spread is not None and qs is not None:
        qs = spread.apply(med, qs, levels, np.broadcast_to(np.asarray(scale, dtype=np.float64), med.shape[:1]))
    med = np.maximum(med, 0.0)
    if qs is not None:
        qs = np.sort(np.maximum(qs, 0.0), axis=-1)
    if bound is not None:
        med, qs = apply_bound(med, qs, bound)
    return med, qs


@dataclass
class IssueSetup:
    """What turns a basin's raw issue-time forecast into the issued one: ``alpha`` [L] blend weights per
    lead (None: no blend) and where they came from; the recession bound (None where the training
    years have too few falling days); the spread calibration of the weather setting (None: none stored)
    and the basin's mean training flow, the unit of its state; ``tails``: :func:`validation_tails` where the
    blend was fitted on the basin's validation days (None where it was stored or pooled); ``spread_source``:
    where the spread came from, for the user."""

    alpha: np.ndarray | None
    alpha_source: str
    recession: RecessionBound | None
    spread: SpreadCalibration | None = None
    scale: float = 1.0
    tails: dict | None = None
    spread_source: str = ""

    @property
    def sources(self) -> dict:
        """Where the issued blend and spread came from, as a forecast reports them."""
        return {"blend": self.alpha_source, "spread": self.spread_source}

    def adjust(self, median, quantiles, levels, last_obs, bound=None):
        """:func:`adjust` with this setup (``bound``: the recession bound of these forecasts, if any)."""
        alpha = None if self.alpha is None else self.alpha[:np.asarray(median).shape[1]]
        return adjust(median, quantiles, last_obs, alpha, bound, self.spread, levels, self.scale)


def training_flows(ctx) -> np.ndarray:
    """The basin's observed flows (m3/s) in its training part (for the recession and the levels)."""
    i0, i1 = ctx.training_days()
    return ctx.record.y[i0:i1].astype(np.float64), ctx.record.dates[i0:i1]


def spread_origin(calibration: dict, setting: str, basin: str) -> str:
    """Where the stored spread of ``setting`` came from, as a forecast says it: taken from the pretrained model
    (or an earlier calibration), fitted on this basin's own validation days (a fine-tuned model's calibration
    holds that one basin), or pooled over the calibration basins."""
    sp = (calibration.get("spread") or {}).get(setting) or {}
    if sp.get("from"):
        return Source("taken_from", source=str(sp["from"]))
    if calibration.get("basins") == 1 and list(calibration.get("issue_time_blend") or {}) == [basin]:
        return Source("fitted_on_own_validation", days=str(calibration.get("validation_days")))
    return "pooled over the calibration basins"


def station_spread(ctx, spread: SpreadCalibration | None, alpha,
                   origin: str = "pooled over the calibration basins") -> tuple[SpreadCalibration | None, str]:
    """The no-weather spread of a station the model never saw: the pooled one, rescaled per lead and level to
    fit the station's own training years.

    The pooled factors (:mod:`~sca2lstm.evaluation.spread`) fit the calibration basins on average, but some
    stations the model never saw are forecast too high or too low at every lead, year after year, and their
    intervals miss far more than 10 % of days on one side (docs/floods.md). For such a station every year
    before its validation part is out of sample for the model, so its issue-time forecasts of its training
    years (``alpha``: its blend per lead; the pooled spread) are a calibration set of its own, some 30 years
    long for a CAMELS-GB basin: a factor ``g[lead, tau]`` per lead and level is fitted on them exactly as the
    pooled factors are (one state bin), and the issued factors are ``f[lead, state, tau] * g[lead, tau]``.
    Chosen on the validation years of 60 large-sample basins no model saw (docs/floods.md).

    Returns
    -------
    (SpreadCalibration or None, str)
        The spread to issue with, and where it came from (``origin``: :func:`spread_origin` of the stored one).
        The stored ``spread`` itself for a basin the model was trained or fine-tuned on (its training years are
        in sample), or with fewer than ``MIN_OWN_SPREAD_DAYS`` training-year forecasts per lead.
    """
    if spread is None or ctx.in_checkpoint:
        return spread, origin
    i0, i1 = ctx.training_days()
    runs = validation_runs(ctx, i0, i1)
    if runs is None or runs.quantiles is None:
        return spread, Source("no_training_forecasts", origin=origin)
    n = int(np.isfinite(runs.observed).sum(axis=0).min())
    if n < MIN_OWN_SPREAD_DAYS:
        return spread, Source("few_training_forecasts", origin=origin, n=n)
    levels = list(runs.levels)
    scale = float(ctx.scalers.basins[ctx.basin].q_mean)
    med, qs = adjust(runs.median, runs.quantiles, runs.last_obs, alpha, None, spread, levels, scale)
    own = fit_spread(med, qs, levels, runs.observed, np.full(len(med), scale), edges=(), min_days=0)
    factors = spread.factors.copy()
    for j, tau in enumerate(spread.levels):
        if tau in levels:
            g = own.factors[:, 0, levels.index(tau)]                               # [L]
            L = min(len(g), factors.shape[0])
            factors[:L, :, j] = np.clip(factors[:L, :, j] * g[:L, None], *FACTOR_RANGE)
    span = f"{ctx.record.dates[i0]}..{ctx.record.dates[i1 - 1]}"
    return (SpreadCalibration(spread.levels, spread.edges, factors, spread.days),
            Source("rescaled_to_station", span=span, n=n))


def issue_setup(ctx, leads: int, calibration: dict | None = None, weather: str = "none") -> IssueSetup:
    """The blend per lead, the recession bound and the spread of a resolved basin (:class:`BasinContext`).

    Without weather (``weather="none"``) the blend comes from ``calibration["issue_time_blend"][basin]``
    when stored, else it is fitted on the basin's validation days less those the model trained on
    (:meth:`BasinContext.blend_days`) and kept in ``ctx.blend.per_lead``; with a weather forecast (``forecast``, ``ensemble``, ``perfect``)
    it is the setting's pooled weight per lead when stored, else the basin's. ``model.persistence_blend``
    false turns it off. The spread is the stored one of the setting; without weather, for a station the model
    never saw, rescaled to the station's training years (:func:`station_spread`).
    """
    if weather not in WEATHER_SETTINGS:
        raise ValueError(f"weather={weather!r}; expected one of {WEATHER_SETTINGS}")
    calibration = calibration or {}
    q, _ = training_flows(ctx)
    bound = fit_recession(q)
    sp = (calibration.get("spread") or {}).get(weather)
    extra = {"spread": SpreadCalibration.from_dict(sp) if sp else None,
             "scale": float(ctx.scalers.basins[ctx.basin].q_mean)}
    pooled = (calibration.get("weather_blend") or {}).get(weather)
    stored = None if ctx.foreign_id else (calibration.get("issue_time_blend") or {}).get(ctx.basin)
    tails = None
    if not ctx.cfg.model.persistence_blend:
        alpha, source = None, "off (model.persistence_blend is false)"
    elif weather != "none" and pooled is not None:
        alpha, source = np.asarray(pooled, dtype=np.float64), Source("blend_pooled", weather=weather)
    elif stored is not None:
        alpha, source = np.asarray(stored, dtype=np.float64), "stored beside the model"
    else:
        blend = ctx.blend  # (its hindcast weight is fitted on first use: only touched where needed)
        if blend.per_lead is None:
            v0, v1 = ctx.blend_days()   # never a day the model trained on
            runs = validation_runs(ctx, v0, v1)
            if runs is None:
                blend.per_lead = [1.0] * ctx.cfg.training.forecast_leads
                blend.per_lead_source = "raw model (no validation issue dates)"
            else:
                a = fit_lead_blend(runs.median, runs.observed, runs.last_obs)
                blend.per_lead = a.tolist()
                span = f"{ctx.record.dates[v0]}..{ctx.record.dates[v1 - 1]}"
                blend.per_lead_source = Source("blend_fitted", span=span)
                blend.tails = validation_tails(runs, a, bound, _no_weather_spread(ctx, calibration, a),
                                               extra["scale"], span)
                note = tail_note(ctx.basin, blend.tails)
                if note:
                    log.warning(note)
        alpha, source, tails = np.asarray(blend.per_lead, dtype=np.float64), blend.per_lead_source, blend.tails
    if weather == "none":
        extra["spread"] = _no_weather_spread(ctx, calibration, alpha)
    # Without a spread the model's own quantiles are issued: say why (a calibration fitted for some weather
    # settings only is not "no calibration", and refitting the setting is the remedy).
    own = ("the model's own quantiles (no calibration stored beside the model)" if not calibration else
           Source("own_quantiles_no_setting", weather=weather))
    extra["spread_source"] = (own if extra["spread"] is None else ctx.blend.spread_source if weather == "none"
                              else Source("of_setting", origin=spread_origin(calibration, weather, ctx.basin),
                                          weather=weather))
    return IssueSetup(alpha, source or "fitted on the validation days", bound, **extra, tails=tails)


def _no_weather_spread(ctx, calibration: dict, alpha) -> SpreadCalibration | None:
    """The stored ``none`` spread, through :func:`station_spread` once per basin context (kept in its blend)."""
    blend = ctx.blend
    if blend.spread_source is None:
        sp = (calibration.get("spread") or {}).get("none")
        blend.spread, blend.spread_source = station_spread(ctx, SpreadCalibration.from_dict(sp) if sp else None,
                                                           alpha, spread_origin(calibration, "none", ctx.basin))
    return blend.spread


#: A station's issued 90 % interval is flagged when, on its validation days, more than this share of the
#: observed flows falls below q05 or above q95 at some lead: twice the nominal 5 %.
TAIL_ALARM = 0.10
#: Leads with fewer validation forecasts than this are not judged (a share of a few hundred days is noise).
TAIL_MIN_DAYS = 365


def validation_tails(runs, alpha, recession, spread, scale, span: str) -> dict | None:
    """How the issued no-weather forecasts of the validation days fit the flows that came, per lead.

    Parameters
    ----------
    runs : IssueTimeRun
        :func:`validation_runs` of the basin (no weather).
    alpha : ndarray [L]
        Its blend per lead; ``recession``, ``spread`` and ``scale`` as :class:`IssueSetup` holds them.
    span : str
        The validation days, for the message.

    Returns
    -------
    dict ``{"below_q05": [L], "above_q95": [L], "below_median": [L], "days": [L], "validation_days": span}``
    (shares of the observed days per lead), or None where the head has no q05 / q95.
    """
    levels = list(runs.levels or [])
    if runs.quantiles is None or 0.05 not in levels or 0.95 not in levels:
        return None
    L = runs.median.shape[1]
    bnd = recession.bound(runs.last_obs, L) if recession is not None else None
    med, qs = adjust(runs.median, runs.quantiles, runs.last_obs, alpha, bnd, spread, levels, scale)
    obs = np.asarray(runs.observed, dtype=np.float64)
    ok = np.isfinite(obs)
    days = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        below = np.where(ok, obs < qs[..., levels.index(0.05)], False).sum(axis=0) / days
        above = np.where(ok, obs > qs[..., levels.index(0.95)], False).sum(axis=0) / days
        under = np.where(ok, obs < med, False).sum(axis=0) / days
    return {"below_q05": np.round(below, 4).tolist(), "above_q95": np.round(above, 4).tolist(),
            "below_median": np.round(under, 4).tolist(), "days": days.astype(int).tolist(), "validation_days": span}


def tail_note(basin: str, tails: dict | None) -> str | None:
    """One line for the user when a station's 90 % interval missed on its validation days at some lead by
    more than :data:`TAIL_ALARM` on one side (None otherwise): the worst side and lead, and what to do.

    With the pooled spread alone, 18 of 60 large-sample basins no model saw were flagged on their validation
    years, and in the test years their lead-7 flows fell outside the 90 % interval on 22 % of days, against
    8.5 % at the others (docs/floods.md): a flag on validation days foretells the later years. With
    :func:`station_spread` none of the 60 is flagged; a flag remains where a station has too short a
    training record for it, or is a model's own basin.
    """
    if not tails:
        return None
    worst = None
    for side, name in (("below_q05", "below q05"), ("above_q95", "above q95")):
        for k, (share, n) in enumerate(zip(tails[side], tails["days"])):
            if n >= TAIL_MIN_DAYS and np.isfinite(share) and share > TAIL_ALARM and (worst is None or share > worst[0]):
                worst = (share, name, k + 1)
    if worst is None:
        return None
    share, name, lead = worst
    return (f"basin {basin}: on its validation days {tails['validation_days']} the flow fell {name} on "
            f"{share:.0%} of days at lead {lead} (5 % expected): the intervals do not fit this station; fine-tune "
            f"the model on it (fine_train.py), then check a reforecast with sca2lstm verify")


def validation_runs(ctx, v0: int, v1: int, weather: str = "none", lead_weather=None, stride: int = 1):
    """Raw issue-time forecasts of the basin for every (``stride``-th) issue date in [v0, v1) (None if
    empty). ``lead_weather``: a weather forecast of the lead days (``weather="perfect"``), as
    :func:`~sca2lstm.evaluation.operational.issue_time_hindcasts` takes it.

    A lead whose valid day lies at or after ``v1`` (the last issue dates' later leads) has no observed flow
    here: that day belongs to the period after validation (the test days), which nothing is fitted on.
    """
    from .operational import issue_time_hindcasts

    if v1 - v0 < 2 or not np.isfinite(ctx.record.y[v0:v1]).any():
        return None
    cfg = ctx.cfg
    h = issue_time_hindcasts(ctx.model, ctx.sequence_data(), [(v0, v1)], cfg.training.forecast_leads, weather,
                             seq_len=cfg.training.seq_len, lead_days=cfg.data.lead_days, device=ctx.device,
                             lead_weather=lead_weather, stride=stride)[0]
    valid = h.issue_days[:, None] + np.arange(1, h.observed.shape[1] + 1)[None, :]
    h.observed[valid >= v1] = np.nan
    return h


#: How a fine-tuned model's calibration marks what it took from its pretrained model's.
FROM_SOURCE = "the pretrained model"
#: A fine-tuned model fits its own spread only with at least this many validation forecasts per lead.
MIN_OWN_SPREAD_DAYS = 730
#: Members of the emulated weather ensemble that calibrates ``ensemble`` forecasts, and its issue-date stride.
ENSEMBLE_MEMBERS, ENSEMBLE_STRIDE = 10, 3


def _setting_stride(setting: str) -> int:
    """Every how many days a setting's validation runs issue a forecast."""
    return ENSEMBLE_STRIDE if setting == "ensemble" else 1


def _taken_from_source(source: dict | None, cfg, setting: str, issue_dates: int) -> bool:
    """Whether :func:`with_source_calibration` replaces all that ``setting``'s own fit would give (its spread,
    and its weather blend where the model blends): the ``source`` calibration has them, and ``issue_dates``
    validation forecasts per lead, at most, are fewer than :data:`MIN_OWN_SPREAD_DAYS`. ``none`` never is: the
    basin's blend and warning probabilities come from its runs."""
    if not source or setting == "none" or setting not in (source.get("spread") or {}):
        return False
    if cfg.model.persistence_blend and setting not in (source.get("weather_blend") or {}):
        return False
    return issue_dates < MIN_OWN_SPREAD_DAYS


def _setting_runs(ctx, v0, v1, setting: str, seed: int):
    """Validation runs of one weather setting; ``forecast`` and ``ensemble`` on emulated forecasts."""
    if setting in ("none", "perfect"):
        return validation_runs(ctx, v0, v1, setting)
    from ..weather.windows import EmulatedForecast, LeadWeather

    members, stride = (None, 1) if setting == "forecast" else (ENSEMBLE_MEMBERS, _setting_stride(setting))
    emu = EmulatedForecast(LeadWeather.from_model(ctx.scalers, ctx.cfg), ctx.cfg.training.forecast_leads, members,
                           1.0, seed)
    return validation_runs(ctx, v0, v1, "perfect", lead_weather=emu, stride=stride)


def _pooled_blend(parts) -> np.ndarray:
    """One blend weight per lead over basins, each basin's flows in units of its mean flow (so that no
    basin weighs by its size)."""
    med = np.concatenate([r.median / sc for r, sc in parts])
    obs = np.concatenate([r.observed / sc for r, sc in parts])
    last = np.concatenate([r.last_obs / sc for r, sc in parts])
    return fit_lead_blend(med, obs, last)


def calibrate(bundle, model_path, data_dir=None, basins=None, max_basins: int = MAX_BASINS, seed: int = 0,
              settings=WEATHER_SETTINGS, progress: bool = False, source: dict | None = None) -> dict:
    """Fit the blend per lead, the spread per lead and the warning probabilities on validation days, and store
    them beside the model.

    Parameters
    ----------
    bundle : tuple
        ``load_model(...)``'s (model, cfg, scalers, ckpt).
    model_path : path or None
        The checkpoint file; the calibration is written beside it (None: not written).
    basins : list of str, optional
        Default: the basins of the checkpoint's scalers; a seeded sample of ``max_basins`` of them is
        used (every sampled basin stores its blend).
    settings : sequence of str
        Weather settings whose spread is fitted (:data:`~sca2lstm.evaluation.spread.WEATHER_SETTINGS`);
        ``none`` is always fitted: the blend and the warning probabilities come from it.
    progress : bool
        A bar over the basins on a terminal (tqdm; nothing when redirected).
    source : dict, optional
        The calibration :func:`with_source_calibration` completes this one from afterwards (a fine-tuned
        model's pretrained model's). With one basin, a weather setting with fewer issue dates than
        :data:`MIN_OWN_SPREAD_DAYS` (e.g. ``ensemble``, every third day of a five-year validation part), whose
        own spread that function would replace, is not run: its entries are the source's, as that function
        writes them. Its runs (the ensemble's: half of a fine-tuned model's calibration) were thrown away.

    Returns
    -------
    dict, as written.
    """
    from .context import BasinContext

    cfg = bundle[1]
    if cfg.training.forecast_leads <= 0:
        return {}
    settings = ["none"] + [w for w in settings if w != "none"]
    basins = list(basins if basins is not None else bundle[2].basins)
    if len(basins) > max_basins:
        rng = np.random.default_rng(seed)
        basins = sorted(rng.choice(np.array(basins, dtype=object), size=max_basins, replace=False).tolist())
    blend = {}
    runs = {w: [] for w in settings}        # setting -> [(runs, basin mean flow, recession bound rule, levels)]
    taken = set()                           # settings whose entries are the source's (not run)
    span = None
    for b in tqdm(basins, desc="calibration", unit="basin", disable=None if progress else True):
        try:
            ctx = BasinContext.resolve(bundle, data_dir, b, allow_missing_inputs=True, warn_missing_inputs=False)
            if ctx.foreign_id:
                log.info("calibration: basin %s skipped (a station of %s that only shares the id of a basin the "
                         "model knew)", b, data_dir)
                continue
            # The basin the model was fine-tuned on: the days its blend is fitted on, its validation part less every
            # day the model trained on (a --test_start can move that part into the pretraining years)
            tuned = ctx.ckpt.get("finetuned_basin") == b
            v0, v1 = ctx.blend_days() if tuned else ctx.validation_days()
            trained = _trained_validation_days(ctx, v0, v1)
            if trained:
                log.info("calibration: basin %s skipped (its validation days %s..%s hold %d observed days the model "
                         "trained on: a fit there would be in-sample)", b, ctx.record.dates[v0],
                         ctx.record.dates[v1 - 1], trained)
                continue
            skip = {w for w in settings if len(basins) == 1 and
                    _taken_from_source(source, cfg, w, len(range(v0, v1, _setting_stride(w))))}
            got = {w: _setting_runs(ctx, v0, v1, w, seed) for w in settings if w not in skip}
            if tuned and (v0, v1) != ctx.validation_days():
                _say_too_few_days(ctx, got["none"])
        except DataError as e:
            log.info("calibration: basin %s skipped (%s)", b, e)
            continue
        if got["none"] is None or got["none"].quantiles is None:
            continue
        span = f"{ctx.record.dates[v0]}..{ctx.record.dates[v1 - 1]}"
        if cfg.model.persistence_blend:
            blend[b] = [float(a) for a in fit_lead_blend(got["none"].median, got["none"].observed, got["none"].last_obs)]
        q, d = training_flows(ctx)
        lv = record_levels(d, q, d[0] if len(d) else None, d[-1] if len(d) else None, n_boot=0)
        scale = float(ctx.scalers.basins[b].q_mean)
        for w, r in got.items():
            if r is not None and r.quantiles is not None:
                runs[w].append((r, scale, fit_recession(q), lv, b))
        taken |= skip
    weather_blend, spread = {}, {}
    for w in settings:
        if w in taken:  # in the settings' order, where its own fit would stand
            spread[w] = {**source["spread"][w], "from": FROM_SOURCE}
            if cfg.model.persistence_blend:
                weather_blend[w] = source["weather_blend"][w]
            continue
        parts = runs[w]
        if not parts:
            continue
        if cfg.model.persistence_blend:
            # with weather: the forecasts' blend; without: a fallback for tools that have no basin blend
            weather_blend[w] = [float(a) for a in _pooled_blend([(r, sc) for r, sc, *_ in parts])]
        meds, qss, obs, scales = [], [], [], []
        for r, sc, _, _, b in parts:
            alpha = blend.get(b) if w == "none" else weather_blend.get(w)
            m, qq = adjust(r.median, r.quantiles, r.last_obs, alpha)
            meds.append(m)
            qss.append(qq)
            obs.append(r.observed)
            scales.append(np.full(len(m), sc))
        spread[w] = fit_spread(np.concatenate(meds), np.concatenate(qss), parts[0][0].levels, np.concatenate(obs),
                               np.concatenate(scales), widen=OUT_OF_SAMPLE_WIDEN[w])
    pooled = {return_period_name(t): ([], []) for t in RETURN_PERIODS}
    for r, sc, rb, lv, b in runs["none"]:
        bnd = rb.bound(r.last_obs, r.median.shape[1]) if rb is not None else None
        _, qs = adjust(r.median, r.quantiles, r.last_obs, blend.get(b), bnd, spread.get("none"), r.levels, sc)
        for name, level in lv.items():
            p = exceedance_probability(qs, r.levels, level.value)
            pooled[name][0].append(p)
            pooled[name][1].append(np.where(np.isfinite(r.observed), r.observed > level.value, np.nan))
    warn = {}
    for name, (ps, es) in pooled.items():
        if not ps:
            continue
        p_all, e_all = np.concatenate(ps), np.concatenate(es)  # [n, L] over basins
        p, f1, n, by_lead = choose_warn_probabilities(p_all, e_all)
        warn[name] = {"warn_probability": p, "f1": None if np.isnan(f1) else f1, "event_days": n,
                      "by_lead": by_lead}
    emulated = [w for w in spread if w in ("forecast", "ensemble")]
    doc = {"what": "issue-time persistence blend per lead, spread per lead and weather setting, and warning "
                   "probabilities, fitted on validation days",
           "validation_days": span, "basins": len(blend) or len(runs["none"]),
           "issue_time_blend": blend, "weather_blend": weather_blend,
           "spread": {w: c if isinstance(c, dict) else c.to_dict() for w, c in spread.items()},
           "spread_weather": {w: ("emulated weather forecasts (sca2lstm/weather/emulator.py)" if w in emulated else
                                  "observed weather" if w == "perfect" else "no weather after the issue date")
                              for w in spread},
           "warn_probability": warn}
    if model_path is not None:
        write_calibration(model_path, doc)
    return doc


def _say_too_few_days(ctx, runs) -> None:
    """One line where the fine-tuned basin's validation part, less the days the model trained on
    (:meth:`~sca2lstm.evaluation.context.BasinContext.blend_days`), gives fewer issue-time forecasts per lead
    (``runs``: :func:`validation_runs` of those days, or None) than its own spread needs
    (:data:`MIN_OWN_SPREAD_DAYS`): its calibration then falls back as a short validation part does
    (:func:`with_source_calibration`)."""
    n = 0 if runs is None else int(np.isfinite(runs.observed).sum(axis=0).min())
    if n >= MIN_OWN_SPREAD_DAYS:
        return
    w0, w1 = ctx.validation_days()
    what = ("its blend per lead is fitted on them; its spread, and the warning probabilities where the pretrained "
            "model's rest on more event days, are the pretrained model's" if runs is not None else
            "its blend per lead is the raw model; its spread and warning probabilities are the pretrained model's")
    log.info("calibration: basin %s: its validation part %s..%s, less the days the model trained on, gives %d "
             "forecasts per lead, fewer than the %d its own spread needs: %s", ctx.basin, ctx.record.dates[w0],
             ctx.record.dates[w1 - 1], n, MIN_OWN_SPREAD_DAYS, what)


def _trained_validation_days(ctx, v0: int, v1: int) -> int:
    """Observed days of the basin's validation days [v0, v1) inside the checkpoint's training spans of it.

    A pretraining basin whose record does not cover the configured periods takes its validation part from its
    own record (:mod:`sca2lstm.data.periods`), which can lie in the years the model trained on; its blend and
    spread fitted there would be in-sample, narrower than any forecast will be. The basin a checkpoint was
    fine-tuned on is fitted on :meth:`~sca2lstm.evaluation.context.BasinContext.blend_days` instead, which
    leaves out the days both its pretraining and its fine-tuning trained on.
    """
    return int((ctx.trained_days(v0, v1) & np.isfinite(ctx.record.y[v0:v1])).sum())


def warn_probabilities(calibration: dict, levels: dict, override: dict | None = None) -> dict:
    """Warning probability of each level: the user's (``--warn_probability``), the level's own (station
    file), the calibrated one of a return-period level, else that of the return-period level nearest in
    flow (a user level is judged like the flood it is closest to), else the default.

    Returns
    -------
    dict ``name -> (probability, source, per-lead probabilities or None)``.
    """
    override = override or {}
    stored = (calibration or {}).get("warn_probability") or {}
    rp = {n: lv.value for n, lv in levels.items() if n in stored}
    out = {}
    for name, lv in levels.items():
        if name in override:
            out[name] = (float(override[name]), "user", None)
        elif lv.warn_probability is not None:
            out[name] = (float(lv.warn_probability), "station metadata", None)
        elif name in stored:
            # A fine-tuned model keeps its pretrained model's where those rest on more event days: say whose
            # validation days chose it, or a forecaster reads it as chosen on their own station's.
            whose = stored[name].get("from")
            out[name] = (float(stored[name]["warn_probability"]),
                         Source("chosen_taken_from", source=str(whose)) if whose else "chosen on validation (F1)",
                         stored[name].get("by_lead"))
        elif rp:
            near = min(rp, key=lambda n: abs(np.log(rp[n] / lv.value)))
            out[name] = (float(stored[near]["warn_probability"]), Source("as_nearest", near=near),
                         stored[near].get("by_lead"))
        elif not calibration:
            out[name] = (DEFAULT_WARN_PROBABILITY, "default, as no calibration lies beside the model", None)
        elif not stored:
            out[name] = (DEFAULT_WARN_PROBABILITY, "default, as the calibration holds no warning probability", None)
        else:
            out[name] = (DEFAULT_WARN_PROBABILITY, "default, as this station's record gives no return-period "
                         "level whose calibrated probability it could take", None)
    unknown = sorted(set(override) - set(levels))
    if unknown:
        from ..errors import UsageError

        known = (f"the levels are {', '.join(levels)}" if levels else "this forecast has no level: none was fitted "
                 "on the record and none given (--warning_levels NAME=VALUE sets one)")
        raise UsageError(f"--warn_probability: no level named {unknown[0]!r}; {known}")
    return out


def with_earlier_settings(doc: dict, earlier: dict) -> list[str]:
    """Complete a refit ``doc`` with the spreads (and weather blends) of the weather settings it did not fit,
    from ``earlier``, the calibration of the same checkpoint it replaces (``sca2lstm calibrate --settings``
    refits only the settings named: the others keep theirs rather than fall back to the model's own, uncalibrated
    quantiles). ``doc`` is changed in place; returns the settings kept."""
    kept = []
    for w, sp in (earlier.get("spread") or {}).items():
        if w in (doc.get("spread") or {}):
            continue
        doc.setdefault("spread", {})[w] = {**sp, "from": sp.get("from", "an earlier calibration of this model")}
        for key in ("weather_blend", "spread_weather"):
            if w in (earlier.get(key) or {}):
                doc.setdefault(key, {})[w] = earlier[key][w]
        kept.append(w)
    return kept


def with_source_calibration(doc: dict, src: dict) -> dict:
    """A fine-tuned model's calibration ``doc`` (fitted on its own basin) completed from its pretrained model's
    ``src``: the warning probabilities of a level where the pretrained model's rest on more event days, and
    the spread (and weather blend) of a setting where its own basin has fewer than ``MIN_OWN_SPREAD_DAYS``
    validation forecasts per lead. ``doc`` is changed in place and returned."""
    for name, w in (src.get("warn_probability") or {}).items():
        own = doc.setdefault("warn_probability", {}).get(name)
        if own is None or (w.get("event_days") or 0) > (own.get("event_days") or 0):
            doc["warn_probability"][name] = {**w, "from": FROM_SOURCE}
    for w, sp in (src.get("spread") or {}).items():
        own = (doc.get("spread") or {}).get(w)
        if own is None or min(np.sum(own["days"], axis=1)) < MIN_OWN_SPREAD_DAYS:
            doc.setdefault("spread", {})[w] = {**sp, "from": FROM_SOURCE}
            if w in (src.get("weather_blend") or {}):
                doc.setdefault("weather_blend", {})[w] = src["weather_blend"][w]
    return doc


def calibrate_after_training(model_path, data_dir=None, basins=None, source_model=None, shown_as=None) -> dict:
    """:func:`calibrate` at the end of pretraining or fine-tuning; a failure is logged, never raised (the
    trained model is already saved, and forecasts fit what is missing on first use).

    A fine-tuned model (``source_model``: the pretrained checkpoint) keeps the pretrained model's warning
    probabilities, chosen over many basins, where they rest on more event days than its own basin's, and
    its spread (and weather blend) for a weather setting where its own basin has fewer than
    ``MIN_OWN_SPREAD_DAYS`` validation forecasts per lead (a short record's quantile of a few hundred ratios
    is noisier than the many basins' factors).

    ``shown_as``: the path the model will have (it is calibrated under a staging name), for the log.
    """
    from ..checkpoint import load_model
    from ..errors import Sca2lstmError

    try:
        bundle = load_model(model_path)
        if bundle[1].training.forecast_leads <= 0:
            return {}
        ids = list(basins if basins is not None else bundle[2].basins)
        which = f"basin {ids[0]}" if len(ids) == 1 else f"up to {min(len(ids), MAX_BASINS)} basins"
        log.info("fitting the forecast calibration (blend and spread per lead, warning probabilities) on the "
                 "validation days of %s; this takes a minute to a few minutes", which)
        src = read_calibration(source_model) if source_model is not None else None
        doc = calibrate(bundle, None, data_dir, basins, progress=True, source=src)
        if src is not None:
            with_source_calibration(doc, src)
        write_calibration(model_path, doc)
        # Name the spread too, and for a fine-tuned model whose it is: whether the station's intervals are fitted
        # on its own validation days is what its forecaster needs to know (the line named the blend only).
        spread = "spread per lead"
        if source_model is not None:
            kept = ((doc.get("spread") or {}).get("none") or {}).get("from")
            spread = f"the pretrained model's {spread}" if kept else f"its own {spread}"
        log.info("forecast calibration (blend per lead, %s, warning probabilities; validation days %s) saved to %s",
                 spread, doc.get("validation_days") or "none of its own", calibration_path(shown_as or model_path))
        return doc
    except (Sca2lstmError, OSError, ValueError) as e:
        log.warning("forecast calibration not written (%s); forecasts fit the blend on first use", e)
        return {}
