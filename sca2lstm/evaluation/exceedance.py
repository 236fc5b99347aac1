"""Probability that the flow exceeds a level, from a quantile forecast, and when to warn.

The quantile head gives a few points of the predictive distribution, e.g. q05, q25, q50, q75, q95.
The predictive CDF ``F`` is taken through them exactly (so ``P(Q > q95) = 0.05``, ``P(Q > median) = 0.5``):

* between two quantiles, ``F`` is linear in the flow (a uniform density on each interval);
* above the top quantile, an exponential tail ``P(Q > x) = (1 - tau_top) * exp(-(x - q_top) / s)``
  whose scale ``s = (q_top - q_prev) / ln((1 - tau_prev) / (1 - tau_top))`` makes it also pass through the
  quantile below (for q75, q95: the tail's decay is that of the upper quarter). Flood levels usually
  lie above q95 at long leads, so this tail carries most warnings; it is light (exponential, not a power
  law), which keeps it from warning on every wide interval;
* below the lowest quantile, the mirror image, ``P(Q <= x) = tau_0 * exp(-(q_0 - x) / s_lo)``;
  flows are never negative, so ``P(Q > x) = 1`` for ``x < 0``.

Where two quantiles coincide the CDF jumps there (a point mass), and a zero tail scale gives no mass
beyond the top quantile.

A warning for a level is issued at a lead when ``P(Q > level)`` reaches the level's warning
probability. That probability is chosen on validation forecasts, pooled over basins, to maximise the
F1 score of day-by-day warnings (:func:`choose_warn_probability`).
"""

from __future__ import annotations

import numpy as np

from ..errors import UsageError

#: Candidate warning probabilities searched on validation.
WARN_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)
#: The warning probability of a level with too few validation events to choose one.
DEFAULT_WARN_PROBABILITY = 0.5
#: Fewer events (days above the level, pooled) than this on validation: keep the default.
MIN_EVENTS = 10


def _sorted(quantiles, taus):
    q = np.asarray(quantiles, dtype=np.float64)
    t = np.asarray(taus, dtype=np.float64)
    if q.shape[-1] != t.shape[-1] or t.ndim != 1 or len(t) < 2:
        raise UsageError(f"quantiles (last axis {q.shape[-1]}) and levels ({t.shape}): expected the same "
                         "number, at least two")
    if np.any(np.diff(t) <= 0) or t[0] <= 0 or t[-1] >= 1:
        raise UsageError(f"quantile levels {t.tolist()}: expected increasing values strictly between 0 and 1")
    # Quantiles that cross (a head that is not monotone) are sorted: the CDF must not decrease.
    return np.sort(q, axis=-1), t


def exceedance_probability(quantiles, taus, level) -> np.ndarray:
    """P(Q > level) from quantile forecasts.

    Parameters
    ----------
    quantiles : array_like, shape [..., Q]
        Flow quantiles (m3/s), NaN where there is no forecast.
    taus : array_like, shape [Q]
        Their levels, increasing in (0, 1) (e.g. 0.05, 0.25, 0.5, 0.75, 0.95).
    level : float or array_like, broadcastable to [...]
        The threshold(s), m3/s.

    Returns
    -------
    ndarray, shape [...]
        Probability in [0, 1]; NaN where any quantile or the level is NaN.
    """
    q, t = _sorted(quantiles, taus)
    x = np.broadcast_to(np.asarray(level, dtype=np.float64), q.shape[:-1])[..., None]
    nq = len(t)
    # the interval [q_j, q_j+1] holding x (j clipped to the inner intervals)
    j = np.clip((q <= x).sum(axis=-1, keepdims=True) - 1, 0, nq - 2)
    q0 = np.take_along_axis(q, j, -1)
    q1 = np.take_along_axis(q, j + 1, -1)
    t0, t1 = t[j], t[j + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(q1 > q0, (x - q0) / (q1 - q0), 1.0)
        cdf_in = t0 + (t1 - t0) * np.clip(frac, 0.0, 1.0)
        s_hi = (q[..., -1:] - q[..., -2:-1]) / np.log((1 - t[-2]) / (1 - t[-1]))
        upper = (1 - t[-1]) * np.where(s_hi > 0, np.exp(-np.maximum(x - q[..., -1:], 0.0) / s_hi), 0.0)
        s_lo = (q[..., 1:2] - q[..., :1]) / np.log(t[1] / t[0])
        lower = t[0] * np.where(s_lo > 0, np.exp(-np.maximum(q[..., :1] - x, 0.0) / s_lo), 0.0)
    p = np.where(x >= q[..., -1:], upper, np.where(x < q[..., :1], 1.0 - lower, 1.0 - cdf_in))
    p = np.where(x < 0, 1.0, p)
    bad = np.isnan(q).any(axis=-1, keepdims=True) | np.isnan(x)
    return np.where(bad, np.nan, np.clip(p, 0.0, 1.0))[..., 0]


def pit(quantiles, taus, observed) -> np.ndarray:
    """Probability integral transform ``F(observed)`` under the same CDF (shape [...]; NaN where unknown)."""
    return 1.0 - exceedance_probability(quantiles, taus, observed)


def first_warning_lead(p, warn_probability) -> np.ndarray:
    """The first lead (1-based) at which ``p`` reaches ``warn_probability``; 0 where it never does.

    Parameters
    ----------
    p : array_like, shape [..., leads]
        P(Q > level) per lead.
    warn_probability : float or array_like broadcastable to [...]
    """
    p = np.asarray(p, dtype=np.float64)
    w = np.asarray(warn_probability, dtype=np.float64)[..., None]
    hit = p >= w
    return np.where(hit.any(axis=-1), hit.argmax(axis=-1) + 1, 0)


def nest_warnings(warn: dict, values: dict) -> dict:
    """Warnings as issued: a warning for a level is also one for every lower level.

    A flow above a higher level is above every lower one, so warning for the higher level warns for the lower
    ones too, whose own warning probability may not be reached (a rare level warns at a lower probability,
    chosen for its F1).

    Parameters
    ----------
    warn : dict name -> bool array [...]
        Each level's warnings from its own probability.
    values : dict name -> float
        The levels (m3/s), to order them.

    Returns
    -------
    dict name -> bool array [...], nested.
    """
    out, above = {}, None
    for name in sorted(warn, key=lambda n: values[n], reverse=True):
        above = np.asarray(warn[name], dtype=bool) if above is None else above | np.asarray(warn[name], dtype=bool)
        out[name] = above
    return out


def f1_by_threshold(p, event, grid=WARN_GRID) -> np.ndarray:
    """F1 of warning when ``p >= g`` against ``event``, for each ``g`` of ``grid`` (vectorised).

    Parameters
    ----------
    p, event : array_like, shape [N]
        Exceedance probability and whether the level was exceeded (NaN/unknown days left out).

    Returns
    -------
    ndarray [len(grid)] (NaN where there is neither an event nor a warning).
    """
    p = np.asarray(p, dtype=np.float64).ravel()
    e = np.asarray(event, dtype=np.float64).ravel()
    ok = np.isfinite(p) & np.isfinite(e)
    p, e = p[ok], e[ok] > 0.5
    warn = p[None, :] >= np.asarray(grid)[:, None]
    tp = (warn & e).sum(axis=1)
    denom = warn.sum(axis=1) + e.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2.0 * tp / denom, np.nan)


def choose_warn_probability(p, event, grid=WARN_GRID, min_events: int = MIN_EVENTS) -> tuple[float, float, int]:
    """The warning probability that maximises F1 of day-by-day warnings (validation, pooled over basins).

    Among equal best F1 the middle of the plateau is taken (the choice least sensitive to noise).

    Returns
    -------
    (probability, F1 at it, number of event days); (DEFAULT_WARN_PROBABILITY, NaN, n) with fewer than
    ``min_events`` event days.
    """
    e = np.asarray(event, dtype=np.float64)
    n_ev = int(np.nansum(e > 0.5))
    if n_ev < min_events:
        return DEFAULT_WARN_PROBABILITY, float("nan"), n_ev
    f1 = f1_by_threshold(p, event, grid)
    if not np.isfinite(f1).any():
        return DEFAULT_WARN_PROBABILITY, float("nan"), n_ev
    best = np.flatnonzero(f1 >= np.nanmax(f1) - 1e-12)
    k = best[len(best) // 2]
    return float(np.asarray(grid)[k]), float(f1[k]), n_ev


def choose_warn_probabilities(p, event, grid=WARN_GRID, min_events: int = MIN_EVENTS):
    """The warning probability pooled over the leads and one per lead (:func:`choose_warn_probability`).

    ``p``, ``event``: ``[n, L]`` exceedance probabilities and events (1, 0, NaN unobserved) of validation forecasts
    at leads 1..L. A lead whose own choice says nothing (fewer than ``min_events`` event days, or no threshold that
    warns on one of them: F1 0 everywhere, whose plateau's middle would be an arbitrary 0.5) takes the pooled one,
    chosen on the same days.

    Returns
    -------
    (probability, F1 at it, number of event days, [probability per lead])
    """
    p, event = np.asarray(p, dtype=np.float64), np.asarray(event, dtype=np.float64)
    pooled, f1, n = choose_warn_probability(p, event, grid, min_events)
    by_lead = []
    for k in range(p.shape[1]):
        pk, f1k, _ = choose_warn_probability(p[:, k], event[:, k], grid, min_events)
        by_lead.append(pk if np.isfinite(f1k) and f1k > 0 else pooled)
    return pooled, f1, n, by_lead


def quantile_column(level: float) -> str:
    """Column name of a quantile level: 0.05 -> ``q05``; 0.025 -> ``q025`` (thousandths where the level is not a
    whole percent, as the readers of the tables parse three digits).

    Rounded to whole percent, 0.025 was written ``q02`` (and 0.975 ``q98``), which the exceedance probabilities, the
    PIT and the coverage then read as the 2 % quantile.
    """
    percent = level * 100
    if abs(percent - round(percent)) < 1e-9:
        return f"q{round(percent):02d}"
    return f"q{round(level * 1000):03d}"


def quantile_levels(columns) -> dict:
    """Each quantile column of ``columns`` and its level: ``q05`` -> 0.05, ``q025`` -> 0.025 (the inverse of
    :func:`quantile_column`)."""
    out = {}
    for c in map(str, columns):
        if len(c) in (3, 4) and c[0] == "q" and c[1:].isdigit():
            out[c] = int(c[1:]) / 10 ** len(c[1:])
    return out
