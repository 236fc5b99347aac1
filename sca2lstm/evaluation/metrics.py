"""Goodness-of-fit metrics for discharge forecasts.

Every function takes observed and simulated values of the same shape (numpy broadcasting is allowed),
works along the **last** axis and ignores every position where either value is not finite (pairwise
deletion). A 1-D input gives a Python ``float``; an ``[basins, days]`` input gives one value per basin
as an array of shape ``[basins]``. Nothing here loops over samples: all reductions are masked numpy
sums, so a whole test period of many basins is scored at once.

A metric that is undefined for the valid days it is given is ``NaN`` rather than an error or an
infinite value: fewer than two valid days, constant observations (NSE, KGE, r), a zero observed mean
(KGE's beta) or a zero observed total (PBIAS).
"""

from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np

__all__ = ["valid_mask", "nse", "kge", "rmse", "mae", "pbias", "r2", "all_metrics",
           "paired_metrics", "skill_vs_persistence", "metrics_table", "METRIC_NAMES", "fhv", "flood_stats",
           "after_gap_scores"]

#: Keys of :func:`all_metrics`, in display order.
METRIC_NAMES = ("nse", "kge", "kge_r", "kge_alpha", "kge_beta", "rmse", "mae", "pbias", "r2", "n_days")


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------

def true_runs(mask) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of True in the 1-D ``mask`` (events, warnings, gaps), in order (vectorised)."""
    edges = np.flatnonzero(np.diff(np.r_[0, np.asarray(mask, bool).astype(np.int8), 0]))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def valid_mask(*arrays) -> np.ndarray:
    """Positions where every array holds a finite number.

    Parameters
    ----------
    *arrays : array_like
        Arrays of broadcast-compatible shapes.

    Returns
    -------
    numpy.ndarray of bool
        ``True`` where all arrays are finite (not NaN, not +-inf), in the broadcast shape.
    """
    if not arrays:
        raise ValueError("valid_mask needs at least one array")
    mask = np.ones((), dtype=bool)
    for a in arrays:
        mask = mask & np.isfinite(np.asarray(a, dtype=np.float64))
    return mask


class _Pairs:
    """Masked, float64 views of ``obs`` and ``sim`` with their sufficient statistics along the last axis.

    Invalid positions are replaced by zeros in ``o``/``s`` (and in the deviations), so plain sums over
    the last axis are the sums over valid days only.
    """

    def __init__(self, obs, sim):
        obs = np.asarray(obs, dtype=np.float64)
        sim = np.asarray(sim, dtype=np.float64)
        try:
            obs, sim = np.broadcast_arrays(obs, sim)
        except ValueError:
            raise ValueError(f"obs and sim have incompatible shapes {obs.shape} and {sim.shape}") from None
        if obs.ndim == 0:
            obs, sim = obs.reshape(1), sim.reshape(1)
        self.mask = valid_mask(obs, sim)
        self.n = self.mask.sum(axis=-1)
        self.o = np.where(self.mask, obs, 0.0)
        self.s = np.where(self.mask, sim, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.mean_o = self.o.sum(axis=-1) / self.n
            self.mean_s = self.s.sum(axis=-1) / self.n
        # Two-pass deviations (numerically safer than sum of squares minus square of sums).
        self.do = np.where(self.mask, self.o - self.mean_o[..., None], 0.0)
        self.ds = np.where(self.mask, self.s - self.mean_s[..., None], 0.0)

    def constant(self, which: str) -> np.ndarray:
        """True where the valid values of ``obs`` (``which='o'``) or ``sim`` (``'s'``) are all equal.

        Tested as max == min over the valid values, which is exact, unlike a variance test that can
        leave round-off residue of a mean that is not representable.
        """
        a = self.o if which == "o" else self.s
        hi = np.where(self.mask, a, -np.inf).max(axis=-1, initial=-np.inf)
        lo = np.where(self.mask, a, np.inf).min(axis=-1, initial=np.inf)
        return ~(hi > lo)  # also True when there are no valid values

    def ss_o(self) -> np.ndarray:
        return np.square(self.do).sum(axis=-1)

    def ss_s(self) -> np.ndarray:
        return np.square(self.ds).sum(axis=-1)


def _out(x):
    """A 0-d result as a Python float, anything else as a float64 array."""
    x = np.asarray(x, dtype=np.float64)
    return float(x) if x.ndim == 0 else x


def _out_int(x):
    x = np.asarray(x)
    return int(x) if x.ndim == 0 else x.astype(np.int64)


def _nse(p: _Pairs) -> np.ndarray:
    sse = np.square(p.s - p.o).sum(axis=-1)  # invalid positions are 0 - 0
    with np.errstate(invalid="ignore", divide="ignore"):
        val = 1.0 - sse / p.ss_o()
    return np.where((p.n >= 2) & ~p.constant("o") & (p.ss_o() > 0), val, np.nan)


def _pearson(p: _Pairs) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (p.do * p.ds).sum(axis=-1) / np.sqrt(p.ss_o() * p.ss_s())
    r = np.clip(r, -1.0, 1.0)  # round-off can push |r| a hair above 1
    return np.where((p.n >= 2) & ~p.constant("o") & ~p.constant("s"), r, np.nan)


def _kge(p: _Pairs):
    r = _pearson(p)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Population standard deviations; the ratio is the same for any ddof.
        alpha = np.sqrt(p.ss_s() / p.ss_o())
        beta = p.mean_s / p.mean_o
    ok = (p.n >= 2) & ~p.constant("o") & (p.ss_o() > 0)
    alpha = np.where(ok, alpha, np.nan)
    beta = np.where(ok & (p.mean_o != 0), beta, np.nan)
    kge_ = 1.0 - np.sqrt(np.square(r - 1.0) + np.square(alpha - 1.0) + np.square(beta - 1.0))
    return kge_, r, alpha, beta


def _rmse(p: _Pairs) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(np.square(p.s - p.o).sum(axis=-1) / p.n)  # 0/0 -> NaN when no valid days


def _mae(p: _Pairs) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(p.s - p.o).sum(axis=-1) / p.n


def _pbias(p: _Pairs) -> np.ndarray:
    total = p.o.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        val = 100.0 * (p.s - p.o).sum(axis=-1) / total
    return np.where((p.n >= 1) & (total != 0), val, np.nan)


# --------------------------------------------------------------------------------------------------
# public metrics
# --------------------------------------------------------------------------------------------------

def nse(obs, sim):
    """Nash-Sutcliffe efficiency.

    ``NSE = 1 - sum((sim - obs)^2) / sum((obs - mean(obs))^2)`` over the valid days. 1 is a perfect
    fit, 0 is no better than predicting the observed mean, and it is unbounded below.

    Parameters
    ----------
    obs, sim : array_like
        Observed and simulated values; the last axis is time.

    Returns
    -------
    float or numpy.ndarray
        NaN where fewer than two days are valid or the valid observations are constant.
    """
    return _out(_nse(_Pairs(obs, sim)))


def kge(obs, sim) -> dict:
    """Kling-Gupta efficiency and its components (Gupta et al., 2009).

    ``KGE = 1 - sqrt((r - 1)^2 + (alpha - 1)^2 + (beta - 1)^2)`` with ``r`` the Pearson correlation,
    ``alpha = std(sim) / std(obs)`` and ``beta = mean(sim) / mean(obs)``.

    Parameters
    ----------
    obs, sim : array_like
        Observed and simulated values; the last axis is time.

    Returns
    -------
    dict
        ``{'kge', 'r', 'alpha', 'beta'}``, each a float (1-D input) or an array. ``r`` is NaN when
        either series is constant, ``beta`` when the observed mean is 0, and ``kge`` whenever a
        component is NaN.
    """
    kge_, r, alpha, beta = _kge(_Pairs(obs, sim))
    return {"kge": _out(kge_), "r": _out(r), "alpha": _out(alpha), "beta": _out(beta)}


def rmse(obs, sim):
    """Root-mean-square error, in the unit of the data.

    Parameters
    ----------
    obs, sim : array_like
        Observed and simulated values; the last axis is time.

    Returns
    -------
    float or numpy.ndarray
        NaN where no day is valid.
    """
    return _out(_rmse(_Pairs(obs, sim)))


def mae(obs, sim):
    """Mean absolute error, in the unit of the data.

    Parameters
    ----------
    obs, sim : array_like
        Observed and simulated values; the last axis is time.

    Returns
    -------
    float or numpy.ndarray
        NaN where no day is valid.
    """
    return _out(_mae(_Pairs(obs, sim)))


def pbias(obs, sim):
    """Percent bias of the simulated volume.

    ``PBIAS = 100 * sum(sim - obs) / sum(obs)``. **Positive means the simulation overestimates**
    the observed volume, negative that it underestimates it. (``hydroeval.pbias`` uses the opposite
    sign, ``sum(obs - sim)``.)

    Parameters
    ----------
    obs, sim : array_like
        Observed and simulated values; the last axis is time.

    Returns
    -------
    float or numpy.ndarray
        NaN where no day is valid or the observed total is 0.
    """
    return _out(_pbias(_Pairs(obs, sim)))


def r2(obs, sim):
    """Coefficient of determination as the squared Pearson correlation of ``obs`` and ``sim``.

    Note this is insensitive to bias and scale (unlike NSE, which is sometimes also called R^2).

    Parameters
    ----------
    obs, sim : array_like
        Observed and simulated values; the last axis is time.

    Returns
    -------
    float or numpy.ndarray
        NaN where fewer than two days are valid or either series is constant.
    """
    return _out(np.square(_pearson(_Pairs(obs, sim))))


def all_metrics(obs, sim) -> dict:
    """Every metric of this module at once (the shared statistics are computed once).

    Parameters
    ----------
    obs, sim : array_like
        Observed and simulated values; the last axis is time.

    Returns
    -------
    dict
        Keys :data:`METRIC_NAMES`: ``nse, kge, kge_r, kge_alpha, kge_beta, rmse, mae, pbias, r2``
        (floats or arrays) and ``n_days``, the number of valid days (int or int array).
    """
    p = _Pairs(obs, sim)
    kge_, r, alpha, beta = _kge(p)
    return {
        "nse": _out(_nse(p)),
        "kge": _out(kge_),
        "kge_r": _out(r),
        "kge_alpha": _out(alpha),
        "kge_beta": _out(beta),
        "rmse": _out(_rmse(p)),
        "mae": _out(_mae(p)),
        "pbias": _out(_pbias(p)),
        "r2": _out(np.square(r)),
        "n_days": _out_int(p.n),
    }


def skill_vs_persistence(obs, sim, pers):
    """Skill against persistence, ``1 - MSE(sim) / MSE(pers)``, on the days where all three are finite.

    Parameters
    ----------
    obs, sim, pers : array_like, shape [..., T]
        Observations, the forecast scored, and persistence (obs(t - L)); broadcast-compatible.

    Returns
    -------
    float or ndarray [...]
        1 is a perfect forecast, 0 as good as persistence, < 0 worse. NaN with fewer than two valid
        days or where persistence has no error at all.
    """
    obs, sim, pers = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (obs, sim, pers)))
    mask = valid_mask(obs, sim, pers)
    o, s, p = (np.where(mask, a, 0.0) for a in (obs, sim, pers))
    n = mask.sum(axis=-1)
    sse_s = np.square(s - o).sum(axis=-1)
    sse_p = np.square(p - o).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # a tiny persistence error: -inf skill
        val = 1.0 - sse_s / sse_p
    return _out(np.where((n >= 2) & (sse_p > 0), val, np.nan))


def paired_metrics(obs, model, persistence) -> dict:
    """Score a model and the persistence baseline on exactly the same days.

    Only days where ``obs``, ``model`` and ``persistence`` are all finite count, so a forecast with
    a gap cannot look better by skipping hard days.

    Parameters
    ----------
    obs, model, persistence : array_like
        Observations and the two forecasts; the last axis is time (normally 1-D).

    Returns
    -------
    dict
        ``{'n_days': int, 'model': {**all_metrics(...), 'skill_vs_persistence': ...},
        'persistence': all_metrics(...)}``; with N-D input, ``n_days`` and the metric values are
        arrays over the leading axes.
    """
    obs = np.asarray(obs, dtype=np.float64)
    model = np.asarray(model, dtype=np.float64)
    persistence = np.asarray(persistence, dtype=np.float64)
    try:
        obs, model, persistence = np.broadcast_arrays(obs, model, persistence)
    except ValueError:
        raise ValueError(f"obs, model and persistence have incompatible shapes {obs.shape}, "
                         f"{model.shape} and {persistence.shape}") from None
    mask = np.atleast_1d(valid_mask(obs, model, persistence))
    obs_c = np.where(mask, np.atleast_1d(obs), np.nan)
    return {
        "n_days": _out_int(mask.sum(axis=-1)),
        "model": {**all_metrics(obs_c, model),
                  "skill_vs_persistence": skill_vs_persistence(obs_c, model, persistence)},
        "persistence": all_metrics(obs_c, persistence),
    }


# --------------------------------------------------------------------------------------------------
# high flows and gaps
# --------------------------------------------------------------------------------------------------

def fhv(obs, sim, top: float = 0.02):
    """Percent bias of the high-flow volume of the flow duration curve (FHV; Yilmaz et al., 2008).

    ``FHV = 100 * (sum(sim_h) - sum(obs_h)) / sum(obs_h)``, where ``obs_h`` and ``sim_h`` are the
    ``h = ceil(top * n)`` largest of the ``n`` valid days of each series, ranked **separately** (the
    top of each flow duration curve, not the same days): whether the model produces floods of the
    right size, whenever they come. Negative: the high flows are too low.

    Parameters
    ----------
    obs, sim : array_like [..., days]
    top : float in (0, 1]
        Share of the flow duration curve that counts as high flow (Yilmaz et al.: 2 %).

    Returns
    -------
    float or numpy.ndarray [...]
        NaN with fewer than two valid days or a zero observed high-flow volume.
    """
    if not 0 < top <= 1:
        raise ValueError(f"top={top!r}: expected a share in (0, 1]")
    p = _Pairs(obs, sim)
    h = np.ceil(top * p.n).astype(np.int64)[..., None]
    rank = np.arange(p.mask.shape[-1])
    # descending sort of the valid values; invalid days sort last as -inf and are never in the top h
    o = -np.sort(np.where(p.mask, -p.o, np.inf), axis=-1)
    s = -np.sort(np.where(p.mask, -p.s, np.inf), axis=-1)
    in_top = rank < h
    o_h = np.where(in_top, o, 0.0).sum(axis=-1)
    s_h = np.where(in_top, s, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        val = 100.0 * (s_h - o_h) / o_h
    return _out(np.where((p.n >= 2) & (o_h != 0), val, np.nan))


def flood_stats(obs, sim, top: float = 0.01) -> dict:
    """How a forecast does on the days of the largest observed flows (the same days, unlike :func:`fhv`).

    The flood days are the valid days whose observed flow is at or above the ``1 - top`` quantile of
    the valid observations (linear interpolation, as ``numpy.quantile``).

    Parameters
    ----------
    obs, sim : array_like [..., days]
    top : float in (0, 1)
        Share of the valid days that counts as floods (the benchmark uses 1 %).

    Returns
    -------
    dict of float or numpy.ndarray [...]
        ``max_obs``, ``max_sim``: the largest valid values; ``top_bias``: ``sum(sim - obs) /
        sum(obs)`` over the flood days (a fraction: -0.5 is half the flood volume; negative, floods
        under-forecast); ``top_sq_error_share``: the flood days' share of the squared error over all
        valid days (what they cost in NSE; NaN for a perfect forecast); ``n_top``: number of flood days.
    """
    if not 0 < top < 1:
        raise ValueError(f"top={top!r}: expected a share in (0, 1)")
    p = _Pairs(obs, sim)
    o_nan = np.where(p.mask, p.o, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: a basin without valid days
        q = np.nanquantile(o_nan, 1.0 - top, axis=-1, keepdims=True)
    flood = p.mask & (o_nan >= q)
    sq = np.square(p.s - p.o)
    top_obs = np.where(flood, p.o, 0.0).sum(axis=-1)
    top_sq, all_sq = np.where(flood, sq, 0.0).sum(axis=-1), sq.sum(axis=-1)
    none = p.n == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        bias = np.where(flood, p.s - p.o, 0.0).sum(axis=-1) / top_obs
        share = np.where(all_sq > 0, top_sq / all_sq, np.nan)
    return {
        "max_obs": _out(np.where(none, np.nan, np.where(p.mask, p.o, -np.inf).max(axis=-1))),
        "max_sim": _out(np.where(none, np.nan, np.where(p.mask, p.s, -np.inf).max(axis=-1))),
        "top_bias": _out(np.where(top_obs != 0, bias, np.nan)),
        "top_sq_error_share": _out(share),
        "n_top": _out_int(flood.sum(axis=-1)),
    }


def after_gap_scores(obs, sim, persistence, after_gap) -> dict:
    """NSE of a forecast and of persistence on every scored day and on the days right after a gap.

    A model fed with observed discharge meets its hardest days when the observation it would start
    from is missing; a score over all days hides them among many easy ones. Both forecasts are scored
    on the same days: ``obs``, ``sim`` and ``persistence`` all finite (and, for the after-gap scores,
    ``after_gap`` true).

    Parameters
    ----------
    obs, sim, persistence : array_like [..., days]
        Observed flow, the forecast, and the persistence forecast (the last observed flow).
    after_gap : array_like of bool [..., days]
        Days whose usual input observation (day ``t - lead``) is missing.

    Returns
    -------
    dict of float or numpy.ndarray [...]
        ``nse``, ``persistence_nse`` (all scored days), ``after_gap_nse``,
        ``after_gap_persistence_nse`` (NaN with fewer than two such days), ``n_days``,
        ``n_after_gap``.
    """
    obs, sim, persistence, after_gap = np.broadcast_arrays(np.asarray(obs, dtype=np.float64),
                                                           np.asarray(sim, dtype=np.float64),
                                                           np.asarray(persistence, dtype=np.float64),
                                                           np.asarray(after_gap, dtype=bool))
    ok = valid_mask(obs, sim, persistence)
    aft = ok & after_gap
    o_all, o_aft = np.where(ok, obs, np.nan), np.where(aft, obs, np.nan)
    return {"nse": nse(o_all, sim), "persistence_nse": nse(o_all, persistence),
            "after_gap_nse": nse(o_aft, sim), "after_gap_persistence_nse": nse(o_aft, persistence),
            "n_days": _out_int(ok.sum(axis=-1)), "n_after_gap": _out_int(aft.sum(axis=-1))}


def bootstrap_interval(data, statistic, level: float = 0.9, n_resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``statistic`` over paired samples (``scipy.stats.bootstrap``).

    Parameters
    ----------
    data : tuple of array_like [n]
        Samples resampled together (the same indices for each), e.g. one row per basin or per year.
    statistic : callable
        ``statistic(*data, axis=-1)``, vectorised over leading axes.

    Returns
    -------
    (float, float)
        The percentiles of the resamples where the statistic is defined (e.g. an F1 is not where a resample
        holds neither an event nor a warning); NaN where it is defined in fewer than half of them, or with
        fewer than 3 samples.
    """
    from scipy.stats import DegenerateDataWarning, bootstrap

    data = tuple(np.asarray(d, dtype=np.float64) for d in data)
    if data[0].shape[-1] < 3:
        return float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        res = bootstrap(data, statistic, paired=len(data) > 1, vectorized=True, axis=-1, confidence_level=level,
                        n_resamples=n_resamples, method="percentile", rng=np.random.default_rng(seed))
    # the percentile interval from the resamples themselves: scipy's is NaN as soon as one resample is
    # undefined, or when all are alike (it warns of degenerate data)
    dist = np.asarray(res.bootstrap_distribution, dtype=np.float64).ravel()
    dist = dist[np.isfinite(dist)]
    if dist.size < n_resamples / 2:
        return float("nan"), float("nan")
    lo, hi = np.quantile(dist, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def median_interval(values, level: float = 0.9, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median of per-basin scores, resampling basins.

    A benchmark's "median NSE over basins" is one draw of basins; the checks of a target run on other
    basins. This interval says how far the median moves with the basin sample alone (the days and the
    model held fixed), so a figure 0.01 above a target is read for what it is.

    Parameters
    ----------
    values : array_like [n]
        One score per basin (NaN ignored).
    level : float
        Confidence level of the interval.

    Returns
    -------
    (float, float)
        The interval's ends (:func:`bootstrap_interval`).
    """
    v = np.asarray(values, dtype=np.float64)
    return bootstrap_interval((v[np.isfinite(v)],), np.median, level, n_resamples, seed)


def metrics_table(rows: Mapping[str, Mapping]):
    """A table of metric dicts, one row per name.

    Parameters
    ----------
    rows : mapping of str to mapping
        ``name -> metrics``; nested dicts (e.g. the output of :func:`paired_metrics`) are flattened
        with dotted column names such as ``model.nse``.

    Returns
    -------
    pandas.DataFrame
        Index: the names; columns: the metric keys in first-seen order.
    """
    import pandas as pd

    flat = {str(name): _flatten(m) for name, m in rows.items()}
    columns: list[str] = []
    for m in flat.values():
        columns.extend(k for k in m if k not in columns)
    return pd.DataFrame.from_dict(flat, orient="index", columns=columns or None)


def _flatten(d: Mapping, prefix: str = "") -> dict:
    out: dict = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v.item() if isinstance(v, np.generic) else v
    return out
