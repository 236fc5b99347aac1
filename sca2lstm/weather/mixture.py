"""The flow forecast of a weather ensemble: the mixture of the members' predictive distributions.

Each member of a weather ensemble runs through the model and gets its own predictive distribution of the
flow, given by the quantile head's levels (e.g. 0.05, 0.25, 0.5, 0.75, 0.95). The ensemble's flow forecast
pools them with equal weight: its CDF is the mean of the members' CDFs,

    F(y) = 1/M sum_m F_m(y),

so its intervals hold both the flow uncertainty the model knows for one weather input and the spread
between members: where the members disagree (one wet, one dry), the mixture is wide; where they agree it
is as narrow as one member's. (Averaging the members' quantiles instead would ignore that spread.)

Each member's CDF is taken as piecewise linear through its quantiles, extended to levels 0 and 1 by the
slope of its outer segments (clamped at 0 m3/s): a bounded distribution with the member's quartiles and
5-95 % range. The mixture CDF is then piecewise linear between the union of the members' knots, so its
quantiles (:func:`mixture_quantiles`) and exceedance probabilities (:func:`exceedance_probability`) are
computed exactly for that CDF, with no sampling. With one member the mixture is that member: its quantiles
come back unchanged.
"""

from __future__ import annotations

import numpy as np

#: The most bytes one array of :func:`mixture_quantiles`' CDF evaluation may take (it makes a few at once).
MIXTURE_CHUNK_BYTES = 32 * 2**20
#: Levels at which the CRPS integral is evaluated (midpoints of 50 equal steps).
CRPS_LEVELS = (np.arange(50) + 0.5) / 50


def _knots(q: np.ndarray, levels) -> tuple[np.ndarray, np.ndarray]:
    """Members' CDF knots: values [..., M, Q+2] (sorted) and their levels [Q+2] (0, levels..., 1)."""
    lv = np.asarray(levels, dtype=np.float64)
    q = np.sort(np.asarray(q, dtype=np.float64), axis=-1)       # non-crossing by construction; sort guards
    lo_slope = (q[..., 1] - q[..., 0]) / (lv[1] - lv[0])
    hi_slope = (q[..., -1] - q[..., -2]) / (lv[-1] - lv[-2])
    y0 = np.maximum(q[..., 0] - lo_slope * lv[0], 0.0)
    y1 = q[..., -1] + hi_slope * (1.0 - lv[-1])
    y = np.concatenate([np.minimum(y0, q[..., :1].squeeze(-1))[..., None], q, y1[..., None]], axis=-1)
    t = np.concatenate([[0.0], lv, [1.0]])
    return y, t


def _cdf(y: np.ndarray, t: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Mixture CDF at ``at`` [..., K]: mean over members of their piecewise-linear CDFs [..., M, Q+2]."""
    a = at[..., None, None, :]                                  # [..., 1, 1, K]
    lo, hi = y[..., :-1, None], y[..., 1:, None]                # [..., M, S, 1]
    w = (t[1:] - t[:-1])[:, None]                               # [S, 1]
    width = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(width > 0, np.clip((a - lo) / np.where(width > 0, width, 1.0), 0.0, 1.0),
                        (a >= lo).astype(np.float64))
    return (frac * w).sum(axis=-2).mean(axis=-2)                # [..., K]


def mixture_quantiles(q: np.ndarray, levels, out_levels=None, chunk: int = 2048,
                      skip_missing: bool = False) -> np.ndarray:
    """Quantiles of the equal-weight mixture of the members' distributions.

    Parameters
    ----------
    q : numpy.ndarray [..., M, Q]
        Each member's quantiles at ``levels`` (ascending, including 0.5).
    levels : sequence of float [Q]
    out_levels : sequence of float [R], optional
        Levels wanted (default: ``levels``).
    skip_missing : bool
        A member with a missing (NaN) quantile is left out of that row's mixture, which is then the mixture
        of the others (an archived forecast's incomplete member); NaN only where no member is complete.
        Default: NaN wherever a member is missing.

    Returns
    -------
    numpy.ndarray [..., R]
    """
    q = np.asarray(q, dtype=np.float64)
    out_levels = np.asarray(levels if out_levels is None else out_levels, dtype=np.float64)
    lead_shape, (M, Q) = q.shape[:-2], q.shape[-2:]
    flat = q.reshape(-1, M, Q)
    out = np.full((flat.shape[0], len(out_levels)), np.nan)
    ok_rows = np.isfinite(flat).all(axis=(1, 2))
    idx = np.flatnonzero(ok_rows)
    # The CDF of a row is evaluated as an [M, Q+1, M (Q+2)] array, which grows with the square of the members:
    # rows are taken so that one such array of a chunk stays within MIXTURE_CHUNK_BYTES (50 members in chunks
    # of 2048 rows took 5.6 GB).
    chunk = max(1, min(chunk, MIXTURE_CHUNK_BYTES // (8 * M * (Q + 1) * M * (Q + 2))))
    for lo in range(0, len(idx), chunk):
        r = idx[lo:lo + chunk]
        y, t = _knots(flat[r], levels)                          # [n, M, Q+2]
        at = np.sort(y.reshape(len(r), -1), axis=-1)            # [n, K] the union of the knots
        F = _cdf(y, t, at)                                      # [n, K] non-decreasing
        F = np.maximum.accumulate(F, axis=-1)
        for i in range(len(r)):                                 # invert the piecewise-linear CDF
            f, x = F[i], at[i]
            keep = np.r_[True, np.diff(f) > 0]                  # first knot of each flat stretch
            out[r[i]] = np.interp(out_levels, f[keep], x[keep])
    if skip_missing:  # the few rows with members left out: each the mixture of its complete members
        whole = np.isfinite(flat).all(axis=2)                  # [rows, M]
        for i in np.flatnonzero(~ok_rows & whole.any(axis=1)):
            out[i] = mixture_quantiles(flat[i][whole[i]][None], levels, out_levels)[0]
    return out.reshape(*lead_shape, len(out_levels))


def exceedance_probability(q: np.ndarray, levels, threshold, member_probability=None) -> np.ndarray:
    """P(flow > threshold) under the mixture: the mean over members of each member's probability.

    Parameters
    ----------
    q : numpy.ndarray [..., M, Q]
    threshold : float or array_like, broadcast to [...]
    member_probability : callable, optional
        ``f(quantiles [..., Q], levels, threshold) -> [...]``, one member's P(flow > threshold); pass
        :func:`sca2lstm.evaluation.exceedance.exceedance_probability` (exponential tails beyond the outer
        quantiles) so that an ensemble's warning probability is the mean of its members' as the warnings
        compute them. Default: this module's piecewise-linear CDF (the one :func:`mixture_quantiles` inverts).
    """
    q = np.asarray(q, dtype=np.float64)
    thr = np.broadcast_to(np.asarray(threshold, dtype=np.float64), q.shape[:-2])
    if member_probability is not None:
        return np.asarray(member_probability(q, levels, thr[..., None]), dtype=np.float64).mean(axis=-1)
    y, t = _knots(q, levels)
    p = 1.0 - _cdf(y, t, thr[..., None])[..., 0]
    return np.where(np.isfinite(q).all(axis=(-2, -1)), p, np.nan)


def crps(q: np.ndarray, levels, obs: np.ndarray) -> np.ndarray:
    """CRPS of the mixture for the observations ``obs`` [...]: 2 x the mean pinball loss over ``CRPS_LEVELS``
    (the quantile form of the CRPS integral, CRPS = 2 int_0^1 pinball_tau(y, F^-1(tau)) d tau, on 50
    midpoints). NaN where the observation or a member is missing."""
    qm = mixture_quantiles(q, levels, CRPS_LEVELS)              # [..., 50]
    d = np.asarray(obs, dtype=np.float64)[..., None] - qm
    tau = CRPS_LEVELS
    return 2.0 * np.maximum(tau * d, (tau - 1.0) * d).mean(axis=-1)
