"""A model's forecasts of a period, scored beside persistence: what validation, fine-tuning's
before/after comparison and the benchmarks all use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..data.dataset import SequenceData
from .forecast import forecast_periods
from .metrics import paired_metrics


@dataclass
class EvalResult:
    """Validation/test scores. ``per_basin``: basin -> paired_metrics (model vs persistence, m3/s)."""

    loss: float
    per_basin: dict
    forecasts: list = field(default_factory=list)

    def median(self, who: str, metric: str) -> float:
        vals = [m[who][metric] for m in self.per_basin.values() if m["n_days"] > 1]
        return float(np.nanmedian(vals)) if vals else float("nan")


def evaluate(model, data: SequenceData, periods, seq_len: int, spinup: int, lead_days: int, device,
             return_weights: bool = False) -> EvalResult:
    """Forecast each basin's period and score it against the observations and persistence.

    The loss is the mean squared scaled error over all scored days (the training loss, on new days).
    Model and persistence are scored on the same days: obs, forecast and obs(t - lead) all present.
    """
    fcs = forecast_periods(model, data, periods, seq_len, spinup, device, return_weights=return_weights)
    sq, n, per = 0.0, 0, {}
    for b, fc in enumerate(fcs):
        o = data.offsets[b]
        obs = data.y[o + fc.i0:o + fc.i1].astype(np.float64)
        pers = data.y[o + fc.i0 - lead_days:o + fc.i1 - lead_days].astype(np.float64)
        pred = fc.pred.astype(np.float64)
        ok = np.isfinite(obs) & np.isfinite(pred) & np.isfinite(pers)
        sq += float(((pred[ok] - obs[ok]) ** 2).sum())
        n += int(ok.sum())
        inv = data.scalers.inverse_y
        per[fc.basin] = paired_metrics(inv(obs, fc.basin), inv(pred, fc.basin), inv(pers, fc.basin))
    return EvalResult(sq / n if n else float("nan"), per, fcs)
