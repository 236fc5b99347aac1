"""How far to trust one station's weather forecasts, learned from its archive of past forecasts.

A model trained with flagged emulated forecasts (``data.forecast_flag``) reads one weather forecast two
ways: **flagged**, hedging its amounts as it learned to for forecasts in general, and **unflagged**, as if
it were the weather that will come. Which is better depends on how the station's forecasts err, which a
model pretrained on emulated forecasts cannot know. Where the station has an archive of the forecasts it
really had, the issued forecast is

    q_tau = f_tau + a * (u_tau - f_tau),

with ``f`` the flagged and ``u`` the unflagged reading (quantile by quantile) and one ``a`` in [0, 1] per
issue date fitted by least squares of the medians against the flows that came, pooled over the leads:

    a = clip(sum (u - f)(obs - f) / sum (u - f)^2, 0, 1) * n / (n + SHRINK)

over the archived forecasts issued in the ``HISTORY_DAYS`` before the issue date whose valid day is on or
before it (so only what was known on the issue date: walk-forward, causal), ``n`` their number per lead, and
``a = 0`` (the flagged reading, as without an archive) below ``MIN_PAIRS`` of them. One ``a`` for all leads,
not one per lead: a fit per lead on two years is carried by a few storms and moved a lot from one issue date
to the next, which cost up to 0.013 NSE at some leads on validation. The shrinkage keeps a short archive
close to the flagged reading; the window lets the trust follow a weather model's upgrades. Constants and
pooling were chosen on validation years (docs/experiments.md, "A trust learned per station").
"""

from __future__ import annotations

import numpy as np

#: Archived forecasts issued this many days before the issue date at most are learned from.
HISTORY_DAYS = 730
#: Fewer verified forecasts than this per lead: no trust learned (a = 0).
MIN_PAIRS = 60
#: ``a`` is shrunk by n / (n + SHRINK) toward 0 (the flagged reading).
SHRINK = 200.0


def walk_forward_trust(flagged, unflagged, observed, issue_days, history_days: int = HISTORY_DAYS,
                       min_pairs: int = MIN_PAIRS, shrink: float = SHRINK) -> np.ndarray:
    """The trust ``a`` of every issue date, learned from the forecasts verified by it.

    Parameters
    ----------
    flagged, unflagged : array_like, shape [n, L]
        The two readings' medians (m3/s) of the forecasts issued on ``issue_days``, lead 1..L; NaN where
        there was no forecast.
    observed : array_like, shape [n, L]
        The flow that came on each valid day (NaN where not observed).
    issue_days : array_like of int, shape [n]
        Issue days, strictly increasing (any day count: consecutive integers are consecutive days).

    Returns
    -------
    numpy.ndarray, shape [n, L]
        ``a`` in [0, 1] per issue date (the same at every lead), from the pairs (issue day s, lead k) with
        ``t - history_days <= s`` and ``s + k <= t``.
    """
    f = np.asarray(flagged, dtype=np.float64)
    u = np.asarray(unflagged, dtype=np.float64)
    o = np.asarray(observed, dtype=np.float64)
    t = np.asarray(issue_days, dtype=np.int64)
    if t.ndim != 1 or f.shape != u.shape or f.shape != o.shape or f.shape[0] != len(t):
        raise ValueError(f"shapes {f.shape}, {u.shape}, {o.shape} and {t.shape} do not match as [n, L] and [n]")
    if len(t) > 1 and np.any(np.diff(t) <= 0):
        raise ValueError("issue_days must be strictly increasing")
    L = f.shape[1]
    x, r = u - f, o - f
    ok = np.isfinite(x) & np.isfinite(r)
    # prefix sums over issue dates, per lead: the pairs of rows [lo, hi) are one difference away
    cum = lambda v: np.concatenate([np.zeros((1, L)), np.cumsum(np.where(ok, v, 0.0), axis=0)])  # noqa: E731
    sxx, sxr, cnt = cum(x * x), cum(x * r), cum(np.ones_like(x))
    lo = np.searchsorted(t, t - history_days, side="left")
    xx, xr, n = np.zeros(len(t)), np.zeros(len(t)), np.zeros(len(t))
    for j in range(L):
        hi = np.maximum(np.searchsorted(t + j + 1, t, side="right"), lo)   # rows whose valid day <= t
        xx += sxx[hi, j] - sxx[lo, j]
        xr += sxr[hi, j] - sxr[lo, j]
        n += cnt[hi, j] - cnt[lo, j]
    n /= L                                                                  # pairs per lead
    with np.errstate(divide="ignore", invalid="ignore"):
        fit = np.clip(np.where(xx > 0, xr / xx, 0.0), 0.0, 1.0)
        a = np.where((n >= min_pairs) & (n > 0), fit * n / (n + shrink), 0.0)
    return np.repeat(a[:, None], L, axis=1)


def blend_readings(flagged, unflagged, a) -> np.ndarray:
    """``flagged + a (unflagged - flagged)`` for readings [n, L] or [n, L, Q] and trust ``a`` [n, L]."""
    f = np.asarray(flagged, dtype=np.float64)
    u = np.asarray(unflagged, dtype=np.float64)
    w = np.asarray(a, dtype=np.float64)
    w = w.reshape(w.shape + (1,) * (f.ndim - w.ndim))
    return f + w * (u - f)


__all__ = ["HISTORY_DAYS", "MIN_PAIRS", "SHRINK", "blend_readings", "walk_forward_trust"]
