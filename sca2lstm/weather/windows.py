"""A weather forecast put into scaled model windows: the lead days' inputs and the features derived from them.

Training windows and benchmark windows are scaled arrays ``x [B, L, N]`` (0 where missing) with missing
flags. :class:`LeadWeather` replaces the meteorological inputs of the ``leads`` days after each window's
issue position by a forecast (emulated, archived or fetched) and recomputes what the model derives from
precipitation on those days, exactly as :func:`sca2lstm.data.features.raw_features` does on a series:
the 7- and 30-day sums (rescaled over the days with rain where a few are missing, missing below
:data:`~sca2lstm.data.features.PRECIP_SUM_MIN_SHARE` of the window), and the wet- and dry-day runs (continued from
the issue day's run; a missing day breaks a run). Everything else in the window is left as it is; the
caller then masks the window with :func:`sca2lstm.data.issue_time.mask_issue_time` with the weather known.
"""

from __future__ import annotations

import numpy as np

from ..data.features import PRECIP_DERIVED, rescaled_sum

#: Inputs a weather forecast carries (the rest of the window is unchanged by one).
WEATHER_INPUTS = ("precipitation", "temperature", "pet", "peti")


class LeadWeather:
    """Where a model's windows hold the weather, and how to put a forecast into them.

    Parameters
    ----------
    feature_names, x_mean, x_std : sequence
        The model's :class:`~sca2lstm.data.scaling.Scalers` fields (global scaling of the weather inputs).
    high_precip_mm, low_precip_mm : float
        ``data.high_precip_mm`` and ``data.low_precip_mm`` (wet- and dry-day thresholds).
    """

    def __init__(self, feature_names, x_mean, x_std, high_precip_mm: float = 10.0, low_precip_mm: float = 1.0):
        names = list(feature_names)
        self.col = {n: names.index(n) for n in WEATHER_INPUTS if n in names}
        self.derived = {n: names.index(n) for n in PRECIP_DERIVED if n in names}
        self.mean = np.asarray(x_mean, dtype=np.float64)
        self.std = np.asarray(x_std, dtype=np.float64)
        self.high, self.low = float(high_precip_mm), float(low_precip_mm)

    @classmethod
    def from_model(cls, scalers, cfg) -> LeadWeather:
        return cls(scalers.feature_names, scalers.x_mean, scalers.x_std, cfg.data.high_precip_mm,
                   cfg.data.low_precip_mm)

    @property
    def inputs(self) -> list[str]:
        """The weather inputs of the model, in feature order."""
        return sorted(self.col, key=self.col.get)

    def raw(self, x: np.ndarray, miss: np.ndarray, name: str) -> np.ndarray:
        """Unscaled values [B, L] of input ``name``, NaN where missing."""
        j = self.col.get(name, self.derived.get(name))
        v = x[:, :, j].astype(np.float64) * self.std[j] + self.mean[j]
        if name == "precipitation":
            v = np.maximum(v, 0.0)
            v[v < 1e-6] = 0.0  # float32 scaling leaves ~1e-7 on a dry day
        return np.where(miss[:, :, j], np.nan, v)

    def observed(self, x: np.ndarray, miss: np.ndarray) -> dict:
        """The windows' weather inputs unscaled: name -> [B, L] (NaN where missing)."""
        return {n: self.raw(x, miss, n) for n in self.inputs}

    def put(self, x: np.ndarray, miss: np.ndarray, pos, forecast: dict, rows=None):
        """Windows with ``forecast`` (name -> [B', leads], NaN: missing) on the days after ``pos``.

        Parameters
        ----------
        x, miss : numpy.ndarray [B, L, N]
            Scaled windows and missing flags (not modified).
        pos : int or numpy.ndarray [B']
            Issue position of each window that gets a forecast.
        forecast : dict
            Values per weather input of the model; an input it lacks keeps the window's own values.
        rows : numpy.ndarray [B'] of int or bool [B], optional
            Which windows get the forecast (default: all).

        Returns
        -------
        x, miss
            New arrays.
        """
        x, miss = x.copy(), miss.copy()
        rows = np.arange(x.shape[0]) if rows is None else np.flatnonzero(rows) if np.asarray(rows).dtype == bool \
            else np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return x, miss
        leads = next(iter(forecast.values())).shape[1]
        L = x.shape[1]
        pos = np.broadcast_to(np.asarray(pos, dtype=np.int64), rows.shape)
        day = pos[:, None] + np.arange(1, leads + 1)[None, :]             # [B', leads]
        if (day >= L).any():
            raise ValueError("a forecast's lead days run past the end of the window")
        r = rows[:, None]
        p = None
        if "precipitation" in self.col and self.derived:
            p = self.raw(x[rows], miss[rows], "precipitation")              # [B', L] before the change
        for name, j in self.col.items():
            if name not in forecast:
                continue
            v = np.asarray(forecast[name], dtype=np.float64)
            bad = ~np.isfinite(v)
            x[r, day, j] = np.where(bad, 0.0, (v - self.mean[j]) / self.std[j]).astype(x.dtype)
            miss[r, day, j] = bad
            if name == "precipitation" and p is not None:
                p[np.arange(len(rows))[:, None], day] = v
        if p is not None and "precipitation" in forecast:
            self._derive(x, miss, rows, pos, day, p)
        return x, miss

    def _derive(self, x, miss, rows, pos, day, p) -> None:
        """Recompute the precipitation-derived features of the lead days in place (module docstring)."""
        n, leads = day.shape
        r, i = rows[:, None], np.arange(n)[:, None]
        c = np.concatenate([np.zeros((n, 1)), np.cumsum(np.nan_to_num(p), axis=1)], axis=1)   # [n, L+1]
        gaps = np.concatenate([np.zeros((n, 1)), np.cumsum(np.isnan(p), axis=1)], axis=1)
        vals = {}
        for name, width in (("precip_sum_7d", 7), ("precip_sum_30d", 30)):
            lo = day - width + 1
            ok = lo >= 0
            lo = np.maximum(lo, 0)
            s = c[i, day + 1] - c[i, lo]
            known = width - (gaps[i, day + 1] - gaps[i, lo])
            vals[name] = np.where(ok, rescaled_sum(s, known, width), np.nan)   # as features.precip_sum
        for name, wet in (("high_precip_days", True), ("low_precip_days", False)):
            if name not in self.derived:
                continue
            run_prev = self.raw(x[rows], miss[rows], name)[np.arange(n), pos]
            run_prev = np.where(np.isfinite(run_prev), np.round(run_prev), 0.0)
            out = np.empty((n, leads))
            for k in range(leads):
                pk = p[np.arange(n), day[:, k]]
                cond = (pk >= self.high) if wet else (pk < self.low)
                run_prev = np.where(np.isnan(pk), np.nan, np.where(cond, np.nan_to_num(run_prev) + 1.0, 0.0))
                out[:, k] = run_prev
                run_prev = np.where(np.isnan(pk), 0.0, run_prev)
            vals[name] = out
        for name, v in vals.items():
            j = self.derived.get(name)
            if j is None:
                continue
            bad = ~np.isfinite(v)
            x[r, day, j] = np.where(bad, 0.0, (v - self.mean[j]) / self.std[j]).astype(x.dtype)
            miss[r, day, j] = bad


class EmulatedForecast:
    """Emulated weather forecasts for the lead days of batches of windows (the benchmark's settings).

    Called as ``f(x, miss, b, t, pos)`` (windows [B, L, N] of basin index ``b``, issued at basin days
    ``t`` [B], issue position ``pos``), it returns one (x, miss) per member: the windows with an
    emulated forecast (:mod:`sca2lstm.weather.emulator`) of error ``level`` in place of the observed
    weather; ``members=None`` gives one deterministic forecast, an int an emulated ensemble. The draws
    are seeded by (seed, basin index, first issue day), so a rerun gives the same forecasts.
    """

    def __init__(self, lead_weather: LeadWeather, leads: int, members: int | None = None, level: float = 1.0,
                 seed: int = 0):
        self.lw, self.leads, self.members, self.level, self.seed = lead_weather, int(leads), members, level, seed

    def __call__(self, x, miss, b, t, pos):
        from .emulator import emulate, emulate_ensemble

        rng = np.random.default_rng([self.seed, int(b), int(np.asarray(t).ravel()[0]) if np.size(t) else 0])
        obs = self.lw.observed(x, miss)
        if self.members is None:
            fcs = [emulate(obs, pos, self.leads, rng, level=self.level)]
        else:
            fcs = emulate_ensemble(obs, pos, self.leads, rng, members=self.members, level=self.level)
        return [self.lw.put(x, miss, pos, fc) for fc in fcs]
