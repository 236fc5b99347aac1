"""A lower bound on the next days' flow from the basin's own recessions: the lower tail follows physics.

Without rain a river recedes; it cannot fall faster than its catchment drains. The training years
show how fast: for each day with a fall, the recession rate ``-dQ/dt`` (here the daily log change
``r = ln Q(t+1) - ln Q(t) < 0``) against the flow ``Q(t)``. The envelope of those points on the fast
side (in a Brutsaert-Nieber plot of ``-dQ/dt`` against ``Q``, the boundary beyond which no recession of
the training years lies; as a bound on flow, the lower envelope of ``Q(t+1)`` against ``Q(t)``) is
estimated per flow class as the ``ENVELOPE_QUANTILE`` (1 %) quantile of ``r`` - a low quantile
rather than the minimum, so one gauge error does not set the bound - and interpolated in ``ln Q``
(held constant beyond the classes).

From the last observed flow ``Q0`` the bound after ``k`` days follows the fastest recession step by
step, ``B(k+1) = B(k) * exp(r_env(B(k)))``: it depends on the current flow and on how long the river has
been receding, unlike a fixed clip. Issue-time quantiles (and the median) below it are raised to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Quantile of the daily log change on falling days that marks the envelope.
ENVELOPE_QUANTILE = 0.01
#: Flow classes (equal counts of falling days) the envelope is estimated in.
N_CLASSES = 10
#: Fewer falling days than this: no bound.
MIN_FALLING_DAYS = 50


@dataclass
class RecessionBound:
    """The fastest recession of a basin: ``log_q`` [C] class centres (ln m3/s) and ``rate`` [C] the
    envelope's daily log change (< 0) at them. ``None`` from :func:`fit_recession` where the record has
    too few falling days."""

    log_q: np.ndarray
    rate: np.ndarray

    def step_rate(self, q) -> np.ndarray:
        """Envelope log change per day at flow ``q`` (any shape; ``q <= 0`` gives the lowest class's)."""
        lq = np.log(np.maximum(np.asarray(q, dtype=np.float64), 1e-12))
        return np.interp(lq, self.log_q, self.rate)

    def bound(self, q0, leads: int, gap=0) -> np.ndarray:
        """Lower bound on the flow of leads ``1..leads`` after an issue day.

        Parameters
        ----------
        q0 : array_like, shape [n]
            The last observed flow up to each issue day (m3/s; NaN: no bound).
        leads : int
        gap : int or array_like [n]
            Days from that observation to the issue day (0 when the issue day itself was observed).

        Returns
        -------
        ndarray [n, leads] (0 where ``q0`` is NaN or not positive).
        """
        q = np.atleast_1d(np.asarray(q0, dtype=np.float64)).copy()
        gap = np.broadcast_to(np.asarray(gap, dtype=np.int64), q.shape)
        ok = np.isfinite(q) & (q > 0)
        q = np.where(ok, q, 1.0)
        steps = int(gap.max(initial=0)) + leads
        path = np.empty((len(q), steps))
        for s in range(steps):  # a few steps: the loop is over lead days, vectorised over issue days
            q = q * np.exp(self.step_rate(q))
            path[:, s] = q
        idx = gap[:, None] + np.arange(leads)[None, :]
        out = np.take_along_axis(path, idx, axis=1)
        return np.where(ok[:, None], out, 0.0)

    def to_dict(self) -> dict:
        return {"log_q": [float(v) for v in self.log_q], "rate": [float(v) for v in self.rate]}

    @classmethod
    def from_dict(cls, d: dict) -> RecessionBound:
        return cls(np.asarray(d["log_q"], dtype=np.float64), np.asarray(d["rate"], dtype=np.float64))


def fit_recession(q, n_classes: int = N_CLASSES, quantile: float = ENVELOPE_QUANTILE) -> RecessionBound | None:
    """The recession envelope of a daily flow series (the training years).

    Parameters
    ----------
    q : array_like, shape [T]
        Daily flow (m3/s), NaN where not observed; consecutive entries are consecutive days.

    Returns
    -------
    RecessionBound or None (fewer than ``MIN_FALLING_DAYS`` falling days with positive flows).
    """
    q = np.asarray(q, dtype=np.float64)
    a, b = q[:-1], q[1:]
    ok = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0) & (b < a)
    if ok.sum() < MIN_FALLING_DAYS:
        return None
    la, r = np.log(a[ok]), np.log(b[ok]) - np.log(a[ok])
    edges = np.quantile(la, np.linspace(0, 1, n_classes + 1))
    cls = np.clip(np.searchsorted(edges, la, side="right") - 1, 0, n_classes - 1)
    centres, rates = [], []
    for c in range(n_classes):
        sel = cls == c
        if sel.sum() >= 5:
            centres.append(np.median(la[sel]))
            rates.append(np.quantile(r[sel], quantile))
    centres, rates = np.asarray(centres), np.asarray(rates)
    order = np.argsort(centres)
    return RecessionBound(centres[order], rates[order])


def apply_bound(median, quantiles, bound):
    """Raise the median [n, L] and quantiles [n, L, Q] (m3/s) to at least ``bound`` [n, L]."""
    med = np.maximum(median, bound)
    qs = None if quantiles is None else np.maximum(quantiles, bound[..., None])
    return med, qs
