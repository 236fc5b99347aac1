"""Training-time augmentation: hide observed discharge on random days, as a patchy gauge does.

A lead-1 forecast must still run when yesterday's flow is missing (a telemetry outage, a gap in the
record). A model that saw yesterday's flow on every training day leans on it and forecasts poorly
right after a gap; hiding it on a random tenth of the training days makes it learn the rainfall
path as well. The README ("Patchy records") gives the measured trade-off.
"""

from __future__ import annotations

import numpy as np

from ..data.features import SSI_EPS


def hide_discharge(x: np.ndarray, x_missing: np.ndarray, q_obs: np.ndarray, p: float, lead: int,
                   column: int, rng: np.random.Generator, ssi_column: int | None = None, ssi_window: int = 30,
                   scales: np.ndarray | None = None):
    """Hide the observed discharge of random days from the inputs, never from the loss.

    A hidden day d disappears wherever the model would read obs(d) as an input: the lagged discharge
    feature at step d + lead (set to 0 and flagged missing, as a real gap is), the residual feedback
    at step d + lead (``q_obs[d]`` set to NaN), and the SSI state, a trailing mean of the lagged flow
    over ``ssi_window`` days: without this, SSI(t) - SSI(t-1) would carry the hidden flow. At every
    step whose SSI window lies inside the batch and holds a hidden day, the SSI is recomputed from
    the batch's discharge without the hidden days, exactly as :func:`sca2lstm.data.features.raw_features`
    does for a real gap (mean of the observed days, at least ``ssi_window // 2`` of them, else
    missing; log(mean + SSI_EPS); the basin's SSI scaler). A step whose window starts before the
    batch cannot be recomputed (its earlier days are not in the batch): if its window holds a hidden
    day, its SSI is masked as missing. The caller keeps its own target array, so the loss still
    scores day d.

    Parameters
    ----------
    x : numpy.ndarray [B, T, N] float32
        Scaled features, 0 where missing.
    x_missing : numpy.ndarray [B, T, N] bool
    q_obs : numpy.ndarray [B, T] float32
        Scaled observed discharge (NaN where not observed): the residual-feedback input.
    p : float in [0, 1)
        Probability that a day is hidden.
    lead : int >= 1
        Forecast lead in days: obs(d) is an input at step d + lead.
    column : int
        Index of the lagged discharge feature among the N features.
    rng : numpy.random.Generator
    ssi_column : int, optional
        Index of the SSI feature (None: the features have none).
    ssi_window : int
        ``data.ssi_window``.
    scales : numpy.ndarray [B, 4] float, optional
        Per window: the basin's ``q_mean, q_std, ssi_mean, ssi_std``; required with ``ssi_column``.

    Returns
    -------
    x, x_missing, q_obs
        New arrays with the hidden days applied; the arguments are not modified.
    """
    hidden = rng.random(q_obs.shape) < p                       # [B, T]: obs(d) hidden
    q_fb = np.where(hidden, np.float32(np.nan), q_obs).astype(q_obs.dtype, copy=False)
    at_step = np.zeros_like(hidden)                            # [B, T]: steps that read a hidden obs
    at_step[:, lead:] = hidden[:, :hidden.shape[1] - lead]
    x, x_missing = x.copy(), x_missing.copy()
    x[:, :, column][at_step] = 0.0
    x_missing[:, :, column][at_step] = True
    if ssi_column is not None and hidden.any():
        _recompute_ssi(x, x_missing, q_fb, hidden, lead, ssi_column, ssi_window, scales)
    return x, x_missing, q_fb


def _recompute_ssi(x, x_missing, q_fb, hidden, lead, column, window, scales) -> None:
    """Replace, in place, the SSI of the steps whose window holds a hidden day (see hide_discharge)."""
    if scales is None:
        raise ValueError("hide_discharge: ssi_column needs the basins' scales")
    sc = np.asarray(scales, dtype=np.float64)
    q_mean, q_std, ssi_mean, ssi_std = (sc[:, k:k + 1] for k in range(4))  # each [B, 1]
    n_steps = hidden.shape[1]
    q = q_fb.astype(np.float64) * q_std + q_mean                # [B, T] m3/s, NaN: unobserved or hidden
    seen = np.isfinite(q)

    def window_sums(a):  # [B, T]: sum of a over each step's window days [t-lead-window+1, t-lead]
        c = np.concatenate([np.zeros((a.shape[0], 1)), np.cumsum(a, axis=1)], axis=1)
        return c[:, hi] - c[:, lo]

    t = np.arange(n_steps)
    hi = np.clip(t - lead + 1, 0, n_steps)                     # one past the window's last day
    lo = np.clip(t - lead + 1 - window, 0, n_steps)            # its first day, clipped to the batch
    touched = window_sums(hidden.astype(np.float64)) > 0       # [B, T]
    inside = (t - lead + 1 - window >= 0)[None, :]             # the whole window is in the batch
    count = window_sums(seen.astype(np.float64))
    total = window_sums(np.where(seen, q, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (np.log(total / np.maximum(count, 1) + SSI_EPS) - ssi_mean) / ssi_std
    ok = touched & inside & (count >= max(1, window // 2)) & np.isfinite(value)
    gone = touched & ~ok                                       # too few days left, or not recomputable
    col, miss = x[:, :, column], x_missing[:, :, column]
    col[ok] = value[ok].astype(x.dtype)
    miss[ok] = False
    col[gone] = 0.0
    miss[gone] = True
