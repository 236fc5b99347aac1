"""Spread calibration of issue-time forecasts: each quantile's distance from the median, rescaled per lead.

The quantile head learns its spread on the training mixture (hindcasts, issue-time windows with and
without weather), so the issued intervals need not hold their nominal coverage at every lead: on the
validation years they were too wide at lead 1 (the observed flow below q05 on 1-2.5 % of days, not 5 %)
and too narrow at lead 7, and a model given an imperfect weather forecast trusts it as if it were
observed. This module rescales them the way conformalised quantile regression does, with factors fitted
on **validation** forecasts pooled over basins:

    q'_tau = m + f[lead, state, tau] * (q_tau - m)

with ``m`` the issued median (after the persistence blend). For ``tau > 0.5``, ``f`` is the ``tau``-quantile
of ``(obs - m) / (q_tau - m)`` over the validation forecasts; for ``tau < 0.5``, the ``(1 - tau)``-quantile of
``(m - obs) / (m - q_tau)``. On the days it is fitted on, the share of observations above ``q'_tau`` is
then ``1 - tau`` (below it ``tau``) at every lead: the 90 % interval holds 90 %, split 5 % / 5 %.

**State.** Wide intervals matter most where a flood is possible. The factors are fitted separately in
bins of the forecast's own state, the median over the basin's mean training flow (``STATE_EDGES``), so
a forecast in a wet state gets the tail that wet states needed on validation, and a dry one is not
widened for floods that do not come from dry states. A bin with fewer than ``MIN_DAYS`` validation
forecasts uses the factors of the lead pooled over bins.

**Unseen stations.** The calibration basins were in pretraining (only their validation years were not), so
their forecasts can err less than those of a station the model never saw. Each level is therefore fitted
``OUT_OF_SAMPLE_WIDEN[setting]`` times further from the median: 0.91 / 0.90 without weather (q05 / q95
fitted at 0.045 / 0.955), 1 with one weather forecast, 0.92 / 0.90 with an ensemble and 0.93 / 0.90 with the
observed weather, each the margin of 0.90 ... 0.93 whose 90 % interval held closest to 90 % on the validation
years of 30 held-out large-sample basins (docs/floods.md). The margin is largest where the weather is known
and the model's own error, smaller on the basins it trained on, is most of the error. Without weather, a
station the model never saw has these factors rescaled once more, per lead, to its own training years
(:func:`sca2lstm.evaluation.calibration.station_spread`).

**Weather.** The factors are fitted per weather setting (``none``: no weather after the issue date;
``forecast``: one deterministic weather forecast; ``ensemble``: a weather ensemble, whose members
already spread the flow; ``perfect``: the observed weather, for benchmarks), because each errs
differently. Where no real forecasts of the validation years exist, ``forecast`` and ``ensemble`` are
fitted on **emulated** forecasts (:mod:`sca2lstm.weather.emulator`), and the calibration says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Bin edges of the state ``median / mean training flow``.
STATE_EDGES = (0.5, 1.0, 2.0, 4.0)
#: Fewer validation forecasts than this in a (lead, state) bin: use the lead's factors over all states.
MIN_DAYS = 200
#: Factors are kept within these bounds (a degenerate head, or a bin of identical forecasts).
FACTOR_RANGE = (0.1, 25.0)
#: Weather settings a calibration can hold.
WEATHER_SETTINGS = ("none", "forecast", "ensemble", "perfect")
#: Each level tau is fitted at 0.5 + (tau - 0.5) * OUT_OF_SAMPLE_WIDEN[setting] (module docstring).
OUT_OF_SAMPLE_WIDEN = {"none": 0.91 / 0.90, "forecast": 1.0, "ensemble": 0.92 / 0.90, "perfect": 0.93 / 0.90}


@dataclass
class SpreadCalibration:
    """Factors ``f`` [leads, bins, Q] for quantile levels ``levels`` (1 at the median) and state bin
    edges ``edges``; ``days`` [leads, bins] validation forecasts per bin."""

    levels: list
    edges: list
    factors: np.ndarray
    days: np.ndarray

    def state_bin(self, median, scale) -> np.ndarray:
        """Bin of each forecast [n, L] from its median [n, L] and the basin's mean flow ``scale`` [n] or scalar."""
        s = np.asarray(scale, dtype=np.float64)
        s = s[:, None] if s.ndim == 1 else s
        with np.errstate(divide="ignore", invalid="ignore"):
            state = np.asarray(median, dtype=np.float64) / s
        return np.searchsorted(np.asarray(self.edges, dtype=np.float64), np.nan_to_num(state, nan=0.0), side="right")

    def apply(self, median, quantiles, levels, scale) -> np.ndarray:
        """Rescaled quantiles [n, L, Q] of forecasts ``median`` [n, L], ``quantiles`` [n, L, Q] at ``levels``.

        Levels the calibration does not hold, and leads past its last one (which take the last lead's
        factors), are handled so that a forecast is never left uncalibrated at one lead and calibrated at
        the next: a level without factors is left as it is.
        """
        med = np.asarray(median, dtype=np.float64)
        qs = np.asarray(quantiles, dtype=np.float64).copy()
        L = med.shape[1]
        lead = np.minimum(np.arange(L), self.factors.shape[0] - 1)
        b = self.state_bin(med, scale)                                        # [n, L]
        for j, tau in enumerate(levels):
            if tau == 0.5 or not any(np.isclose(tau, t) for t in self.levels):
                continue
            k = int(np.argmin(np.abs(np.asarray(self.levels) - tau)))
            f = self.factors[lead[None, :], b, k]                             # [n, L]
            qs[..., j] = med + f * (qs[..., j] - med)
        return qs

    def to_dict(self) -> dict:
        return {"levels": [float(t) for t in self.levels], "state_edges": [float(e) for e in self.edges],
                "factors": np.round(self.factors, 4).tolist(), "days": self.days.astype(int).tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> SpreadCalibration:
        return cls(list(d["levels"]), list(d["state_edges"]), np.asarray(d["factors"], dtype=np.float64),
                   np.asarray(d["days"], dtype=np.int64))


def _factor(ratio: np.ndarray, level: float) -> float:
    r = ratio[np.isfinite(ratio)]
    if r.size == 0:
        return 1.0
    return float(np.clip(np.quantile(r, level), *FACTOR_RANGE))


def fit_spread(median, quantiles, levels, observed, scale, edges=STATE_EDGES, min_days: int = MIN_DAYS,
               widen: float = 1.0) -> SpreadCalibration:
    """Fit the factors on validation forecasts pooled over basins.

    Parameters
    ----------
    median : array_like [n, L]
        Issued medians (after the blend), m3/s.
    quantiles : array_like [n, L, Q]
        Their quantiles at ``levels`` (the median's level may be among them).
    levels : sequence of float [Q]
    observed : array_like [n, L]
        The flows that came (NaN where not observed).
    scale : array_like [n]
        Each forecast's basin mean training flow (the state's unit).
    widen : float
        Level ``tau`` is fitted at ``0.5 + (tau - 0.5) * widen`` (1: exactly; the calibration passes its
        setting's :data:`OUT_OF_SAMPLE_WIDEN`).

    Returns
    -------
    SpreadCalibration
    """
    med = np.asarray(median, dtype=np.float64)
    qs = np.asarray(quantiles, dtype=np.float64)
    obs = np.asarray(observed, dtype=np.float64)
    n, L = med.shape
    cal = SpreadCalibration([float(t) for t in levels], [float(e) for e in edges],
                            np.ones((L, len(edges) + 1, len(levels))), np.zeros((L, len(edges) + 1), dtype=np.int64))
    b = cal.state_bin(med, scale)
    ok = np.isfinite(obs) & np.isfinite(med)
    for s in range(len(edges) + 1):
        cal.days[:, s] = (ok & (b == s)).sum(axis=0)
    for j, tau in enumerate(levels):
        if tau == 0.5:
            continue
        d = qs[..., j] - med if tau > 0.5 else med - qs[..., j]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(ok & (d > 1e-9), ((obs - med) if tau > 0.5 else (med - obs)) / d, np.nan)
        level = min(0.5 + abs(tau - 0.5) * widen, 1.0)
        for k in range(L):
            pooled = _factor(ratio[:, k], level)
            for s in range(len(edges) + 1):
                sel = ratio[b[:, k] == s, k]
                cal.factors[k, s, j] = _factor(sel, level) if np.isfinite(sel).sum() >= min_days else pooled
    return cal
