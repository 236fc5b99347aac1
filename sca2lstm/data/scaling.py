"""Normalisation fitted on the training period only, stored with the model.

- Meteorological and derived inputs: one mean/std per feature, pooled over the training basins.
- Discharge (target and lagged input) and the SSI state: per basin. Per-basin standardised discharge
  turns plain MSE into the NSE-style loss of Kratzert et al. (2019), so the loss does not scale again.
- Static attributes: mean/std over the training basins.

Everything is stored as plain floats and lists so a checkpoint loads with ``weights_only=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError
from .features import BASIN_Q, BASIN_SSI, GLOBAL

MIN_SCALE_FLOWS = 2  # observed flows a basin's discharge scale needs (a mean and a standard deviation)


def _mean_std(a: np.ndarray, axis=0):
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(a, axis=axis) if np.isfinite(a).any() else np.zeros(a.shape[1:])
        std = np.nanstd(a, axis=axis) if np.isfinite(a).any() else np.ones(a.shape[1:])
    mean = np.nan_to_num(np.asarray(mean, dtype=np.float64), nan=0.0)
    std = np.nan_to_num(np.asarray(std, dtype=np.float64), nan=1.0)
    std[std == 0] = 1.0  # a constant feature carries no information; keep it finite
    return mean, std


@dataclass
class BasinScaler:
    q_mean: float
    q_std: float
    ssi_mean: float = 0.0
    ssi_std: float = 1.0


@dataclass
class Scalers:
    """All fitted statistics. ``kinds`` says how each dynamic feature is scaled."""

    feature_names: list
    kinds: list
    x_mean: list
    x_std: list
    static_names: list
    static_mean: list
    static_std: list
    basins: dict = field(default_factory=dict)  # basin id -> BasinScaler

    # ------------------------------------------------------------------ fitting
    @staticmethod
    def fit_basin(basin: str, x_train: np.ndarray, y_train: np.ndarray, kinds) -> BasinScaler:
        """Per-basin discharge (and SSI) statistics from the basin's training days only."""
        yv = y_train[np.isfinite(y_train)]
        if yv.size < MIN_SCALE_FLOWS:
            raise DataError(f"basin {basin}: no observed discharge in the training period; cannot fit its scaler")
        q_std = float(yv.std())
        if q_std == 0:
            raise DataError(f"basin {basin}: discharge is constant in the training period; cannot scale it")
        bs = BasinScaler(q_mean=float(yv.mean()), q_std=q_std)
        if BASIN_SSI in kinds:
            s = x_train[:, list(kinds).index(BASIN_SSI)]
            s = s[np.isfinite(s)]
            if s.size >= 2 and s.std() > 0:
                bs.ssi_mean, bs.ssi_std = float(s.mean()), float(s.std())
        return bs

    @classmethod
    def fit(cls, feature_names, kinds, x_trains, static_names, static_raw: np.ndarray, basin_scalers: dict):
        """Fit global input and static statistics on the training parts of the training basins.

        Parameters
        ----------
        x_trains : list of numpy.ndarray, each [T_b, N]
            Raw features of each training basin, restricted to its training period.
        static_raw : numpy.ndarray [B, S]
            Raw static attributes of the training basins (NaN allowed).
        """
        pooled = np.concatenate(x_trains, axis=0)
        x_mean, x_std = _mean_std(pooled)
        for j, k in enumerate(kinds):
            if k != GLOBAL:  # scaled per basin instead
                x_mean[j], x_std[j] = 0.0, 1.0
        s_mean, s_std = _mean_std(static_raw) if static_raw.size else (np.zeros(0), np.ones(0))
        return cls(list(feature_names), list(kinds), x_mean.tolist(), x_std.tolist(), list(static_names),
                   s_mean.tolist(), s_std.tolist(), dict(basin_scalers))

    # ------------------------------------------------------------------ applying
    def transform_x(self, x: np.ndarray, basin: str) -> np.ndarray:
        """Scale raw features [T, N] of ``basin`` (which must have a basin scaler). NaN stays NaN."""
        bs = self.basins[basin]
        mean = np.asarray(self.x_mean, dtype=np.float64).copy()
        std = np.asarray(self.x_std, dtype=np.float64).copy()
        for j, k in enumerate(self.kinds):
            if k == BASIN_Q:
                mean[j], std[j] = bs.q_mean, bs.q_std
            elif k == BASIN_SSI:
                mean[j], std[j] = bs.ssi_mean, bs.ssi_std
        return ((x - mean) / std).astype(np.float32)

    def transform_y(self, y: np.ndarray, basin: str) -> np.ndarray:
        bs = self.basins[basin]
        return ((y - bs.q_mean) / bs.q_std).astype(np.float32)

    def inverse_y(self, y_scaled, basin: str):
        """Back to m3/s."""
        bs = self.basins[basin]
        return y_scaled * bs.q_std + bs.q_mean

    def transform_static(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scale static attributes [..., S]; returns (values with missing set to 0, missing flags)."""
        missing = ~np.isfinite(s)
        z = (s - np.asarray(self.static_mean)) / np.asarray(self.static_std)
        z = np.where(missing, 0.0, z)
        return z.astype(np.float32), missing

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict:
        return {
            "feature_names": list(self.feature_names), "kinds": list(self.kinds),
            "x_mean": [float(v) for v in self.x_mean], "x_std": [float(v) for v in self.x_std],
            "static_names": list(self.static_names),
            "static_mean": [float(v) for v in self.static_mean],
            "static_std": [float(v) for v in self.static_std],
            "basins": {b: [s.q_mean, s.q_std, s.ssi_mean, s.ssi_std] for b, s in self.basins.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Scalers":
        basins = {str(b): BasinScaler(*map(float, v)) for b, v in d["basins"].items()}
        return cls(list(d["feature_names"]), list(d["kinds"]), list(d["x_mean"]), list(d["x_std"]),
                   list(d["static_names"]), list(d["static_mean"]), list(d["static_std"]), basins)
