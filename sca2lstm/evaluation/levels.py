"""Warning levels of a station: return-period flows fitted on the record, and levels set by the user.

Return-period levels (``q2y``, ``q5y``, ``q10y``, ``q20y``) are fitted on the **annual maxima of daily
mean flow** in the training water years, so they are daily-mean levels, lower than the instantaneous
peak flows of the same return period that agencies publish. A water year starts on the first day of
``water_year_start`` (month; 10 = October, the UK water year; China's flood year is the calendar year,
``1``). A water year counts only when at least ``MIN_YEAR_FRACTION`` of its days are observed: a year
with its wet season missing would give a maximum that is not one.

Distributions, all fitted by L-moments (Hosking & Wallis 1997), robust for the 10-40 maxima a station
has:

* ``glo`` - generalised logistic, the Flood Estimation Handbook's distribution for UK annual maxima
  (FEH vol. 3). scipy has no three-parameter GLO in Hosking's form (``scipy.stats.genlogistic`` is the
  one-shape "type I" logistic), so its quantile function is written out below:
  ``x(F) = xi + alpha / k * (1 - ((1 - F) / F) ** k)`` (``k -> 0``: the logistic).
* ``gev`` - generalised extreme value, ``scipy.stats.genextreme`` (scipy's ``c`` is Hosking's ``k``).
* ``pe3`` - Pearson type III, ``scipy.stats.pearson3``, the distribution of China's SL 44-2006.

**Default: ``glo``.** The records this tool ships with and is benchmarked on are British, where the FEH
recommends GLO for annual maxima; for a 2-year level all three agree closely (the 2-year flow is near
the median of the maxima), and they differ mainly at 20 years, where the record is too short to tell
them apart. A Chinese station should pass ``pe3`` (SL 44).

Each level carries a 90 % confidence interval from a parametric bootstrap: ``n_boot`` samples of the
record's length are drawn from the fitted distribution (seed fixed, so the interval is reproducible),
refitted by L-moments, and the 5th and 95th percentiles of their return-period flows are reported.
Fewer than ``MIN_MAXIMA_FOR_RARE`` (10) maxima give no 10- or 20-year level; fewer than
``MIN_MAXIMA_FIT`` (5) give none.

A river dry for whole years (annual maximum 0) is fitted as a mixed distribution: the distribution on the years
with flow, combined with the share ``p0`` of dry years, ``P(max <= x) = p0 + (1 - p0) F(x)``; a return period
whose flow is 0 (``1 - 1/T <= p0``) gets no level (see :func:`fit_return_levels`).

User levels (``alert=45.0,danger=80.0``) are flows in m3/s, or water levels (m) converted to flow
through the station's rating curve. They come from the station metadata file and the command line.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..data.station_meta import FLOOD_DISTRIBUTIONS
from ..errors import DataError, UsageError
from ..words import Source

log = logging.getLogger(__name__)

# scipy is imported inside the functions that use it, not here: scipy.stats takes about half a second to
# import, which every `sca2lstm forecast` paid (its parser reads this module's choices) though the default glo
# fit needs none of it.

DISTRIBUTIONS = FLOOD_DISTRIBUTIONS
DEFAULT_DISTRIBUTION = "glo"
RETURN_PERIODS = (2, 5, 10, 20)
MIN_MAXIMA_FIT = 5
MIN_MAXIMA_FOR_RARE = 10
MIN_YEAR_FRACTION = 0.9
CI_LEVEL = 0.90
N_BOOT = 200
SEED = 0


@dataclass
class Level:
    """One warning level of a station, as a flow.

    Attributes
    ----------
    name : str
        ``q2y`` .. ``q20y`` for return-period levels, the user's own name otherwise.
    value : float
        The level as a daily-mean flow, m3/s.
    source : str
        Where it came from, e.g. ``"glo, 1970-2000 (30 annual maxima)"`` or ``"user"``.
    ci : (float, float) or None
        90 % confidence interval of a fitted level (m3/s).
    stage : float or None
        The level as a water level (m) where the user gave it so.
    warn_probability : float or None
        The probability of exceedance above which a warning is issued (set later, see
        :mod:`sca2lstm.evaluation.exceedance`).
    """

    name: str
    value: float
    source: str
    ci: tuple | None = None
    stage: float | None = None
    warn_probability: float | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {"value": float(self.value), "unit": "m3/s", "warn_probability": self.warn_probability,
             "source": self.source, "kind": "daily mean"}
        if self.ci is not None:
            d["ci90"] = [float(self.ci[0]), float(self.ci[1])]
        if self.stage is not None:
            d["stage_m"] = float(self.stage)
        d.update(self.extra)
        return d


def return_period_name(t: int) -> str:
    """``2 -> 'q2y'``."""
    return f"q{int(t)}y"


def annual_maxima(dates, q, water_year_start: int = 10, min_fraction: float = MIN_YEAR_FRACTION) -> pd.Series:
    """Annual maxima of daily flow per water year, only for water years observed on enough days.

    Parameters
    ----------
    dates : array_like of dates, shape [T]
    q : array_like, shape [T]
        Daily mean flow (NaN where not observed).
    water_year_start : int
        Month (1-12) on which a water year starts; a water year is named by the calendar year it starts in.
    min_fraction : float
        Share of a water year's days that must be observed for its maximum to count.

    Returns
    -------
    pandas.Series
        Maximum flow, indexed by water year (ascending).
    """
    if not 1 <= int(water_year_start) <= 12:
        raise UsageError(f"water_year_start {water_year_start!r}: expected a month from 1 to 12")
    idx = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates)))
    s = pd.Series(np.asarray(q, dtype=np.float64), index=idx)
    wy = idx.year - (idx.month < int(water_year_start)).astype(int)
    g = s.groupby(wy)
    years = g.count().index.to_numpy()
    first = pd.to_datetime(pd.DataFrame({"year": years, "month": int(water_year_start), "day": 1}))
    nxt = pd.to_datetime(pd.DataFrame({"year": years + 1, "month": int(water_year_start), "day": 1}))
    length = (nxt - first).dt.days.to_numpy()
    enough = g.count().to_numpy() >= min_fraction * length
    out = g.max()[enough]
    return out.dropna().rename("annual_maximum")


def _lmoments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample L-moments along the last axis: (l1, l2, t3), each of shape x.shape[:-1] (NaN where a row holds a NaN,
    l2 with fewer than 2 values, t3 with fewer than 3).

    The unbiased probability-weighted moments of the sorted sample x_(0) <= ... <= x_(n-1) (Hosking 1990),
    ``b_r = 1/n sum_j [C(j, r) / C(n-1, r)] x_(j)``, give ``l1 = b0``, ``l2 = 2 b1 - b0``, ``l3 = 6 b2 - 6 b1 + b0``
    and ``t3 = l3 / l2``: what ``scipy.stats.lmoment`` computes (tests/test_levels.py compares the two), written out
    because importing scipy.stats for it took about half a second of every forecast, whose default glo levels need
    nothing else of scipy.
    """
    x = np.sort(np.asarray(x, dtype=np.float64), axis=-1)     # a NaN sorts last and makes its row's sums NaN
    n = x.shape[-1]
    j = np.arange(n, dtype=np.float64)
    nan = np.full(x.shape[:-1], np.nan)
    b0 = x.mean(axis=-1) if n else nan
    b1 = (j * x).sum(axis=-1) / (n * (n - 1.0)) if n >= 2 else nan
    b2 = (j * (j - 1.0) * x).sum(axis=-1) / (n * (n - 1.0) * (n - 2.0)) if n >= 3 else nan
    l2 = 2.0 * b1 - b0
    with np.errstate(divide="ignore", invalid="ignore"):       # a constant sample: l2 = 0, t3 undefined
        t3 = (6.0 * b2 - 6.0 * b1 + b0) / l2
    return b0, l2, t3


def fit_lmoments(dist: str, x) -> dict:
    """Parameters of ``dist`` from the sample L-moments of ``x`` (last axis; vectorised over the rest).

    Returns
    -------
    dict of arrays (shape x.shape[:-1]): ``glo``/``gev``: xi, alpha, k; ``pe3``: mu, sigma, gamma.
    """
    x = np.asarray(x, dtype=np.float64)
    l1, l2, t3 = _lmoments(x)
    t3 = np.clip(t3, -0.98, 0.98)  # a sample ratio beyond the distributions' ranges (tiny samples)
    if dist == "glo":
        k = -t3
        kp = np.where(np.abs(k) < 1e-6, 1e-6, k) * np.pi
        alpha = l2 * np.sin(kp) / kp
        xi = l1 - alpha * (1.0 / (kp / np.pi) - np.pi / np.sin(kp))
        return {"xi": xi, "alpha": alpha, "k": k}
    if dist == "gev":
        from scipy import special

        z = 2.0 / (3.0 + t3) - math.log(2) / math.log(3)
        k = 7.8590 * z + 2.9554 * z ** 2
        ks = np.where(np.abs(k) < 1e-6, 1e-6, k)
        g = special.gamma(1.0 + ks)
        alpha = l2 * ks / ((1.0 - 2.0 ** (-ks)) * g)
        xi = l1 - alpha * (1.0 - g) / ks
        return {"xi": xi, "alpha": alpha, "k": k}
    if dist == "pe3":
        from scipy import special

        a = np.abs(t3)
        z1 = 3 * np.pi * a ** 2
        z2 = 1.0 - a
        with np.errstate(divide="ignore", invalid="ignore"):
            shape = np.where(a < 1 / 3, (1 + 0.2906 * z1) / (z1 + 0.1882 * z1 ** 2 + 0.0442 * z1 ** 3),
                             (0.36067 * z2 - 0.59567 * z2 ** 2 + 0.25361 * z2 ** 3)
                             / (1 - 2.78861 * z2 + 2.56096 * z2 ** 2 - 0.77045 * z2 ** 3))
        shape = np.minimum(np.where(np.isfinite(shape), shape, 1e6), 1e6)
        gamma = 2.0 * np.sign(t3) / np.sqrt(shape)
        sigma = l2 * np.sqrt(np.pi) * np.sqrt(shape) * np.exp(special.gammaln(shape) - special.gammaln(shape + 0.5))
        return {"mu": l1, "sigma": sigma, "gamma": gamma}
    raise UsageError(f"distribution {dist!r}: expected one of {', '.join(DISTRIBUTIONS)}")


def quantile(dist: str, params: dict, f) -> np.ndarray:
    """Quantile function x(F) of ``dist`` with ``params`` (from :func:`fit_lmoments`), broadcast."""
    f = np.asarray(f, dtype=np.float64)
    if dist == "glo":
        xi, alpha, k = params["xi"], params["alpha"], params["k"]
        y = np.log((1.0 - f) / f)  # ((1-F)/F)^k = exp(k y)
        small = np.abs(k) < 1e-6
        ks = np.where(small, 1.0, k)
        return np.where(small, xi - alpha * y, xi + alpha / ks * (1.0 - np.exp(ks * y)))
    if dist == "gev":
        from scipy import stats

        return stats.genextreme.ppf(f, params["k"], loc=params["xi"], scale=params["alpha"])
    if dist == "pe3":
        from scipy import stats

        return stats.pearson3.ppf(f, params["gamma"], loc=params["mu"], scale=params["sigma"])
    raise UsageError(f"distribution {dist!r}: expected one of {', '.join(DISTRIBUTIONS)}")


def _sample(dist: str, params: dict, size, rng) -> np.ndarray:
    return quantile(dist, params, rng.uniform(1e-9, 1 - 1e-9, size=size))


def _mixed_quantile(dist: str, params: dict, f, p0):
    """Quantile of the annual maximum where a share ``p0`` of years has none (no flow) and the others follow
    ``dist``: ``P(max <= x) = p0 + (1 - p0) F(x)``, so ``x(f) = x_F((f - p0) / (1 - p0))``, and 0 where
    ``f <= p0`` (the level lies in the zero part). ``params`` and ``p0`` broadcast against ``f``."""
    f = np.asarray(f, dtype=np.float64)
    fw = (f - p0) / (1.0 - p0)
    inside = fw > 0
    return np.where(inside, quantile(dist, params, np.where(inside, fw, 0.5)), 0.0)


def _bootstrap_levels(dist: str, params: dict, n: int, p0: float, f: np.ndarray, n_boot: int,
                      rng) -> np.ndarray:
    """Parametric-bootstrap return-period flows, shape [n_boot, T]: records of ``n`` years, each year without
    flow with probability ``p0`` (so the number of dry years varies from record to record, as it would) and
    otherwise drawn from the fitted ``dist``, refitted like the record. A record with fewer than 3 years of flow
    has no L-skewness to fit and gives NaN (left out of the percentiles)."""
    if p0 == 0:
        bp = fit_lmoments(dist, _sample(dist, params, (n_boot, n), rng))
        return quantile(dist, {k: v[:, None] for k, v in bp.items()}, f[None, :])
    wet = rng.binomial(n, 1.0 - p0, size=n_boot)
    out = np.full((n_boot, len(f)), np.nan)
    for m in np.unique(wet[wet >= 3]):  # one vectorised fit per number of wet years
        rows = np.flatnonzero(wet == m)
        bp = fit_lmoments(dist, _sample(dist, params, (len(rows), m), rng))
        out[rows] = _mixed_quantile(dist, {k: v[:, None] for k, v in bp.items()}, f[None, :],
                                    (n - m) / n)
    return out


def fit_return_levels(maxima, dist: str = DEFAULT_DISTRIBUTION, periods=RETURN_PERIODS, n_boot: int = N_BOOT,
                      seed: int = SEED, label: str = "") -> dict:
    """Return-period flows of a series of annual maxima, with bootstrap confidence intervals.

    A river that runs dry for whole years (an ephemeral stream: annual maximum 0) is fitted as a mixed
    distribution, the standard treatment of zero years: ``dist`` is fitted to the maxima above 0 only and
    combined with the share ``p0`` of years without flow, ``P(max <= x) = p0 + (1 - p0) F(x)``. Fitting the zeros
    with the rest would bend a continuous distribution through them and give a tiny 2-year flow that is no
    flood. A return period whose level falls in the zero part (``1 - 1/T <= p0``, e.g. the 2-year flow of a
    river dry in at least half its years) gets **no level**, logged, rather than a level of 0 m3/s: a level of 0
    is exceeded by any flow at all, so it would warn on every day the river runs, and ``verify`` refuses a level
    of 0 as no flow. The bootstrap redraws the number of dry years of each record (binomial with ``p0``).

    Parameters
    ----------
    maxima : array_like, shape [n]
        Annual maxima (m3/s), NaN left out; 0 (or below) for a year without flow.
    dist : {"glo", "gev", "pe3"}
    periods : iterable of int
        Return periods in years.
    n_boot : int
        Parametric-bootstrap samples for the 90 % interval (0: no interval).
    label : str
        The years fitted, for the source text (e.g. ``"1970-2000"``).

    Returns
    -------
    dict
        ``q{T}y -> Level``, in order of T; empty where fewer than ``MIN_MAXIMA_FIT`` maxima are above 0 or where
        they are all alike (logged), without T >= 10 below ``MIN_MAXIMA_FOR_RARE`` years, and without the
        periods whose level lies in the zero part (logged).
    """
    if dist not in DISTRIBUTIONS:
        raise UsageError(f"distribution {dist!r}: expected one of {', '.join(DISTRIBUTIONS)}")
    x = np.asarray(maxima, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    wet = x[x > 0]
    if len(wet) < MIN_MAXIMA_FIT:
        if n >= MIN_MAXIMA_FIT:
            log.warning("annual maxima: only %d of %d years had any flow; a distribution needs %d years with flow, "
                        "so there are no return-period levels", len(wet), n, MIN_MAXIMA_FIT)
        return {}
    if np.ptp(wet) == 0:
        # Maxima that do not vary (a record capped at the top of its rating, say) have no spread to fit: the
        # L-moment fit would give NaN levels, written to levels.json as NaN, which is not JSON.
        log.warning("annual maxima: all %d are %g m3/s; no distribution can be fitted to maxima that do not vary "
                    "(a record capped at the top of its rating?), so there are no return-period levels",
                    len(wet), wet[0])
        return {}
    p0 = (n - len(wet)) / n
    periods = [int(t) for t in periods if n >= MIN_MAXIMA_FOR_RARE or int(t) < 10]
    dry = [t for t in periods if 1.0 - 1.0 / t <= p0]
    if dry:
        log.warning("annual maxima: %d of %d years had no flow, so the %s flow is 0 m3/s; no level is set "
                    "for %s (a level of 0 would warn whenever the river runs)", n - len(wet), n,
                    ", ".join(f"{t}-year" for t in dry), ", ".join(return_period_name(t) for t in dry))
        periods = [t for t in periods if t not in dry]
    if not periods:
        return {}
    f = 1.0 - 1.0 / np.asarray(periods, dtype=np.float64)
    params = fit_lmoments(dist, wet)
    values = _mixed_quantile(dist, params, f, p0)
    ci = None
    if n_boot > 0:
        bq = _bootstrap_levels(dist, params, n, p0, f, n_boot, np.random.default_rng(seed))  # [n_boot, T]
        a = (1 - CI_LEVEL) / 2
        # clipped at 0 like the level itself: a flow is never negative, and the fits can put a low quantile
        # below 0 where several years' maxima are (near) 0
        ci = np.maximum(np.nanquantile(bq, [a, 1 - a], axis=0), 0.0)
    # where it came from, from its parts: said in the reader's language too (sca2lstm forecast --language)
    kind = "fitted_level" if label else "fitted_level_unlabelled"
    src = (Source(f"{kind}_dry", dist=dist, n=n, dry=n - len(wet), **({"years": label} if label else {})) if p0 > 0
           else Source(kind, dist=dist, n=n, **({"years": label} if label else {})))
    return {return_period_name(t): Level(return_period_name(t), float(max(values[j], 0.0)), src,
                                         (float(ci[0, j]), float(ci[1, j])) if ci is not None else None)
            for j, t in enumerate(periods)}


def record_levels(dates, q, train_start, train_end, dist: str = DEFAULT_DISTRIBUTION,
                  water_year_start: int = 10, n_boot: int = N_BOOT) -> dict:
    """Return-period levels of a station from the water years inside [train_start, train_end].

    Parameters
    ----------
    dates, q : array_like, shape [T]
        The daily record (m3/s).
    train_start, train_end : str or date
        The training period; only water years that lie in it (by their first day) are fitted.

    Returns
    -------
    dict ``name -> Level`` (see :func:`fit_return_levels`).
    """
    idx = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates)))
    sel = (idx >= pd.Timestamp(train_start)) & (idx <= pd.Timestamp(train_end))
    am = annual_maxima(idx[sel], np.asarray(q, dtype=np.float64)[sel], water_year_start)
    if not len(am):
        label = ""
    elif water_year_start == 1:
        label = Source("calendar_years", years=f"{am.index.min()}-{am.index.max()}")
    else:
        label = f"{am.index.min()}-{am.index.max() + 1}"
    return fit_return_levels(am.to_numpy(), dist, n_boot=n_boot, label=label)


def parse_levels(text: str, flag: str = "--warning_levels") -> dict:
    """``'alert=45.0,danger=80.0'`` -> ``{'alert': 45.0, 'danger': 80.0}`` (one-line error otherwise)."""
    from ..data.station_meta import check_level, parse_pairs

    out = {name: check_level(name, value, source=flag).value
           for name, value in parse_pairs(text, flag, "alert=45.0,danger=80.0")}
    if not out:
        raise UsageError(f"{flag} {text!r}: no level given; expected e.g. alert=45.0,danger=80.0")
    return out


def parse_probabilities(text: str, flag: str = "--warn_probability") -> dict:
    """``'danger=0.3'`` -> ``{'danger': 0.3}``; each value strictly between 0 and 1."""
    from ..data.station_meta import parse_pairs

    out = {}
    for name, value in parse_pairs(text, flag, "danger=0.3"):
        try:
            p = float(value)
        except ValueError:
            p = float("nan")
        if not 0.0 < p < 1.0:
            raise UsageError(f"{flag} {name}={value!r}: expected NAME=P with P strictly between 0 and 1, e.g. danger=0.3")
        out[name] = p
    return out


def stage_to_flow(rating_curve, stage: float, name: str, day=None) -> float:
    """A water level (m) as a flow through the station's rating curve (one-line error without one), the curve
    valid on ``day`` where given (else the latest)."""
    from ..data import rating

    if not rating_curve:
        raise DataError(f"level {name}={stage} m is a water level, but the station has no rating curve; give "
                        "the curve at import (--rating) or the level in m3/s")
    try:
        return rating.level_discharge(rating_curve, float(stage), day)
    except UsageError as e:  # the curve's message names the stage only: name the level, as the import does
        raise UsageError(f"level {name}={float(stage):g} m: {e}") from None


def station_levels(dates, q, train_start, train_end, meta=None, user_levels=None, levels_in: str = "flow",
                   dist: str = DEFAULT_DISTRIBUTION, water_year_start: int = 10, n_boot: int = N_BOOT,
                   day=None) -> dict:
    """Every warning level of a station: fitted return-period levels, then the station file's, then the user's.

    Parameters
    ----------
    dates, q : array_like, shape [T]
        The record (m3/s).
    train_start, train_end :
        The training period (return-period levels come from its water years).
    meta : StationMeta, optional
        The station metadata (its ``warning_levels`` and ``rating_curve``).
    user_levels : dict, optional
        ``name -> value`` from the command line; override the station file's level of the same name.
    levels_in : {"flow", "stage"}
        Unit of ``user_levels``: m3/s, or water level in m through the rating curve. "stage" without
        ``user_levels`` is refused (UsageError) unless the station file holds water levels.
    day : date, optional
        The day water levels are converted for, through the rating curve valid then (a forecast's issue date);
        None: the latest curve.

    Returns
    -------
    dict ``name -> Level`` (m3/s).
    """
    if levels_in not in ("flow", "stage"):
        raise UsageError(f"--levels_in {levels_in!r}: expected flow or stage")
    curve = getattr(meta, "rating_curve", None)
    stored = getattr(meta, "warning_levels", None) or {}
    if levels_in == "stage" and not user_levels and not any(lv.unit == "m" for lv in stored.values()):
        # --levels_in is only the unit of --warning_levels: alone, the water levels the user meant to warn on
        # would be nowhere, and the forecast would warn on flows only without a word
        held = f"station {meta.station_id}'s file holds" if getattr(meta, "station_id", None) else "the station holds"
        raise UsageError(f"--levels_in stage is the unit of --warning_levels, and none is given ({held} no water "
                         "level either); add e.g. --warning_levels alert=2.5,danger=3.2, or leave --levels_in out")
    out = record_levels(dates, q, train_start, train_end, dist, water_year_start, n_boot)
    for name, lv in stored.items():
        if lv.unit == "m":
            out[name] = Level(name, stage_to_flow(curve, lv.value, name, day), "station metadata (water level)",
                              stage=lv.value, warn_probability=lv.warn_probability)
        else:
            out[name] = Level(name, lv.value, "station metadata", warn_probability=lv.warn_probability)
    for name, v in (user_levels or {}).items():
        unit = "m" if levels_in == "stage" else "m3/s"
        named = next((n for n in stored if n != name and n.casefold() == name.casefold()), None)
        if named is not None:  # Alert beside the station's alert would be a second level, not the one meant
            raise UsageError(f"--warning_levels {name}={v:g}: the station's level is named {named!r}, which differs "
                             f"only in case; give {named}={v:g} to set it, or another name for another level")
        if name in stored and stored[name].unit != unit:
            # The same name in another unit is a forgotten --levels_in, not a new level: 2.5 (m) read as
            # 2.5 m3/s would warn every day.
            flag = "--levels_in stage" if stored[name].unit == "m" else "--levels_in flow (the default)"
            raise UsageError(f"--warning_levels {name}={v:g}: the station's {name} is stored as "
                             f"{stored[name].value:g} {stored[name].unit}; give {flag} to set it in "
                             f"{stored[name].unit}, or another name for a level in {unit}")
        if levels_in == "stage":
            out[name] = Level(name, stage_to_flow(curve, v, name, day), "user (water level)", stage=float(v))
        else:
            out[name] = Level(name, float(v), "user")
    return out
