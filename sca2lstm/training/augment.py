"""Training-time augmentation: hide observed discharge on random days, as a patchy gauge does.

A lead-1 forecast must still run when yesterday's flow is missing (a telemetry outage, a gap in the
record). A model that saw yesterday's flow on every training day leans on it and forecasts poorly
right after a gap; hiding it on a random tenth of the training days makes it learn the rainfall
path as well. The README ("Patchy records") gives the measured trade-off.
"""

from __future__ import annotations

import numpy as np


def hide_discharge(x: np.ndarray, x_missing: np.ndarray, q_obs: np.ndarray, p: float, lead: int,
                   column: int, rng: np.random.Generator):
    """Hide the observed discharge of random days from the inputs, never from the loss.

    A hidden day d disappears wherever the model would read obs(d) as an input: the lagged discharge
    feature at step d + lead (set to 0 and flagged missing, as a real gap is) and the residual
    feedback at step d + lead (``q_obs[d]`` set to NaN). The caller keeps its own target array, so
    the loss still scores day d. The SSI feature (a 30-day trailing mean of the flow) is left as it
    is: one hidden day barely moves it, and a real gap only shortens its averaging window.

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
    return x, x_missing, q_fb
