"""Gradient-boosted trees as a reference for the lead-L forecast: what a user might pick instead.

One LightGBM model pooled over all basins (the basin id is a categorical feature), on hand-made
causal features: precipitation of the last 8 days and its sums over 3 to 180 days, the other
meteorological inputs of the config and their 30-day means, the observed discharge lagged by L to
L + 6 days, its last change, its 7-day minimum and 30-day mean, and the day of the year. Discharge
is standardised per basin with its training-period mean and standard deviation (as the neural models'
scalers are), and the trees forecast the change from the last observation, z(t) - z(t - L): trees
predict piecewise constants, so a level target would cap every forecast at the largest training flow.
Training uses the training period; early stopping the validation period; the test period is only
forecast.

LightGBM is an optional dependency of the benchmarks (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Days of precipitation kept as separate lags, and the windows of the precipitation sums.
PRECIP_LAGS = 8
PRECIP_SUMS = (3, 7, 14, 30, 60, 90, 180)
#: Lags of observed discharge, counted from the lead: L, L + 1, ..., L + Q_LAGS - 1.
Q_LAGS = 7

LGB_PARAMS = dict(objective="regression", learning_rate=0.03, num_leaves=63, min_data_in_leaf=40,
                  feature_fraction=0.8, bagging_fraction=0.8, bagging_freq=1, verbose=-1)


def lag_features(df: pd.DataFrame, z: pd.Series, inputs, lead: int) -> pd.DataFrame:
    """Causal features of one basin: row t uses meteorology up to t and discharge up to t - ``lead``.

    Parameters
    ----------
    df : DataFrame [days, columns]
        Daily meteorology (``precipitation`` and the other ``inputs``), gap-free daily index.
    z : Series [days]
        Standardised observed discharge (NaN where not observed), same index.
    inputs : sequence of str
        Meteorological columns of the config; ``precipitation`` gets lags and sums, the others their
        value and 30-day mean.
    lead : int
        Forecast lead L >= 1 in days.

    Returns
    -------
    DataFrame [days, features]
    """
    X = pd.DataFrame(index=df.index)
    p = df["precipitation"]
    for k in range(PRECIP_LAGS):
        X[f"p_lag{k}"] = p.shift(k)
    for w in PRECIP_SUMS:
        X[f"p_sum{w}"] = p.rolling(w, min_periods=1).sum()
    for c in inputs:
        if c != "precipitation":
            X[c] = df[c]
            X[f"{c}_mean30"] = df[c].rolling(30, min_periods=1).mean()
    last = z.shift(lead)
    for k in range(Q_LAGS):
        X[f"q_lag{lead + k}"] = z.shift(lead + k)
    X["q_change"] = last - z.shift(lead + 1)
    X["q_min7"] = last.rolling(7, min_periods=1).min()
    X["q_mean30"] = last.rolling(30, min_periods=1).mean()
    doy = 2 * np.pi * df.index.day_of_year.to_numpy() / 365.25
    X["doy_sin"], X["doy_cos"] = np.sin(doy), np.cos(doy)
    return X


def gbm_forecasts(cfg, data_dir, basins, threads: int = 0) -> dict:
    """Train the pooled trees and forecast every basin's test period.

    Parameters
    ----------
    cfg : Config
        Periods, inputs, lead and target come from ``cfg.data``; the seed from ``cfg.training``.
    data_dir : path
        CAMELS-GB folder.
    basins : sequence of str
    threads : int
        LightGBM threads (0: its default).

    Returns
    -------
    forecasts : dict
        ``{basin: DataFrame(date, observed, predicted, persistence)}`` over the test period, in the
        target's units (m3/s for discharge_vol); ``predicted`` is NaN where the last observation is
        missing (the trees forecast a change from it).
    n_trees : int
        Trees kept by early stopping.
    """
    import lightgbm as lgb

    from sca2lstm.data.camels_gb import read_timeseries

    d = cfg.data
    lead = d.lead_days
    parts, scale = [], {}
    for i, b in enumerate(basins):
        df = read_timeseries(data_dir, b, list(dict.fromkeys(["precipitation", *d.dynamic_inputs, d.target])))
        q = df[d.target]
        train = q.loc[d.train_start:d.train_end]
        mu, sd = float(train.mean()), float(train.std())
        scale[b] = (mu, sd)
        z = (q - mu) / sd
        X = lag_features(df, z, d.dynamic_inputs, lead)
        X["basin"] = i
        X["_z"] = z
        X["_target"] = z - z.shift(lead)
        X["_basin"] = b
        parts.append(X)
    A = pd.concat(parts)
    A["basin"] = A["basin"].astype("category")
    feats = [c for c in A.columns if not c.startswith("_")]
    when = A.index

    def rows(start, end):
        return (when >= pd.Timestamp(start)) & (when <= pd.Timestamp(end))

    tr = rows(d.train_start, d.train_end) & A["_target"].notna().to_numpy()
    va = rows(d.val_start, d.val_end) & A["_target"].notna().to_numpy()
    params = dict(LGB_PARAMS, seed=cfg.training.seed,
                  **({"num_threads": threads} if threads > 0 else {}))
    model = lgb.train(params, lgb.Dataset(A.loc[tr, feats], A.loc[tr, "_target"]), num_boost_round=3000,
                      valid_sets=[lgb.Dataset(A.loc[va, feats], A.loc[va, "_target"])],
                      callbacks=[lgb.early_stopping(100, verbose=False)])
    te = A[rows(d.test_start, d.test_end)]
    change = model.predict(te[feats], num_iteration=model.best_iteration)
    out = {}
    for b, g in te.assign(_change=change).groupby("_basin", sort=False):
        mu, sd = scale[b]
        last = g[f"q_lag{lead}"]
        out[b] = pd.DataFrame({"date": g.index,
                               "observed": _unscale(g["_z"], mu, sd),
                               "predicted": _unscale(last + g["_change"], mu, sd),
                               "persistence": _unscale(last, mu, sd)}).reset_index(drop=True)
    return out, int(model.best_iteration)


def _unscale(z: pd.Series, mu: float, sd: float) -> np.ndarray:
    return (z.to_numpy(dtype=np.float64) * sd) + mu
