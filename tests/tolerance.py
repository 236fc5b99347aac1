"""Comparison bounds for floating-point results computed in another order, derived from the arithmetic.

Two implementations of the same recurrence (the C++ loops and the Python ones, or the fused Function
and the eager model) round differently: their dot products are summed in another order (vector width,
FMA contraction, tiles, rows split over threads), and which order a CPU gets depends on its vector
units. A fixed relative bound such as 1e-5 held on one CPU and failed on another (AMD EPYC: 1.3e-5),
so the bounds here follow from the unit roundoff ``eps`` of the dtype and the sizes of the sums.

* One dot product of length ``K``: its rounding error is at most ``K * eps`` times the sum of the
  terms' magnitudes (the deterministic bound), and in practice grows like ``sqrt(K) * eps`` (the
  errors of the partial sums are independent and cancel like a random walk; Higham, *Accuracy and
  Stability of Numerical Algorithms*, 2002, section 4.2, and Higham & Mary 2019).
* A recurrence of ``T`` steps (forward, then backpropagation through time): each step adds its own
  rounding to what the previous steps carried in; the LSTM's gates contract (sigmoid, tanh slopes
  <= 1), so the carried errors add up rather than grow: ``T * sqrt(K) * eps`` relative to the largest
  value of the output.
* ``MARGIN`` = 4: measured on AMD EPYC (this project's CI machine), the worst output of every case
  reached about 0.35 of ``T * sqrt(K) * eps`` in float32 and 0.25 in float64, so 4 leaves an order of
  magnitude for other CPUs, while a real bug (a wrong index, a missing term) is off by 1e-2 or more of
  the scale, far above the float32 bound (3e-4 at T = 40, K = 256).
"""

from __future__ import annotations

import math

import numpy as np
import torch

MARGIN = 4.0


def eps(dtype: torch.dtype) -> float:
    """Unit roundoff of ``dtype`` (float32: 1.19e-7, float64: 2.22e-16)."""
    return torch.finfo(dtype).eps


def recurrence_tol(dtype: torch.dtype, steps: int, width: int) -> float:
    """Relative bound (to the output's largest magnitude) for a ``steps``-step recurrence whose widest
    dot product has ``width`` terms: ``MARGIN * steps * sqrt(width) * eps``."""
    return MARGIN * steps * math.sqrt(width) * eps(dtype)


def sum_tol(dtype: torch.dtype, n: int) -> float:
    """Absolute bound for a sum of ``n`` values in [0, 1] that add up to 1 (softmax weights): each
    of the ``n`` values carries up to a few ulp and the sum adds ``n - 1`` roundings, so ``2 n eps``."""
    return 2 * n * eps(dtype)


def assert_scaled_close(actual: torch.Tensor, expected: torch.Tensor, tol: float, msg: str = "") -> None:
    """``max |actual - expected| <= tol * max |expected|`` (gradients reach the hundreds, weights are
    below 1: each tensor is compared against its own scale). NaN anywhere fails."""
    assert actual.shape == expected.shape, f"{msg}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    diff = (actual.double() - expected.double()).abs().max().item()
    scale = max(expected.double().abs().max().item(), torch.finfo(expected.dtype).tiny)
    assert diff <= tol * scale, f"{msg}: max |diff| {diff:.3g} > {tol:.3g} x scale {scale:.3g}"


# ----------------------------------------------------------------------------- forecasts of the model
#: Half a unit of the 4th decimal: what rounding to 4 decimals moves a value by at most (a flow read back from a
#: CSV written with ``%.4f``: forecast.csv, reforecast.csv, series.csv; the tables' exceedance probabilities).
#: Two roundings of nearly equal values can still differ by a whole unit (one each side of a rounding edge).
HALF_4TH_DECIMAL = 0.5e-4


def forecast_tol(model: torch.nn.Module, steps: int) -> float:
    """Relative bound (to ``max(1, |output|)``, see :func:`flow_tol`) for a float32 output of ``model`` over a
    window of ``steps`` days, computed for the same window by another path: in another batch (a reforecast's
    issue dates, 512 windows against 2, one member of an ensemble alone), by the other loop (C++ or Python)
    or on another device.

    The window's inputs are the same, but a product over a batch's rows (the input projection, the heads; the
    Python loops' per-step products too) may be summed in another order for another number of rows: BLAS
    (MKL, oneDNN) picks its kernel, tile and vector width by the matrix's size and by the CPU. Each such
    rounding runs through the recurrence as in :func:`recurrence_tol`, whose width is here the widest dot
    product of the forward pass: the largest ``in_features`` of the model's layers (backpropagation's 4 H
    products are not in a forecast). The tiny test model (seq_len 60, widest 46): 1.9e-4.
    """
    width = max(m.in_features for m in model.modules() if isinstance(m, torch.nn.Linear))
    return recurrence_tol(torch.float32, steps, width)


def flow_tol(bundle, basin, flows, gain: float = 1.0) -> float:
    """Absolute bound (m3/s) on the difference of forecast flows of ``basin`` made by two paths
    (:func:`forecast_tol`), for a ``bundle`` of :func:`sca2lstm.checkpoint.load_model`.

    The model forecasts the standardised flow ``y = (flow - q_mean) / q_std`` (unit variance; its hidden states in
    (-1, 1)), so its rounding is relative to ``max(1, |y|)``: ``forecast_tol * q_std * max(1, max |y|)`` with
    ``y`` over ``flows`` (the compared flows, and the last observation where a blend mixes it in). What an
    issued forecast does after the model never magnifies a change (the blend with persistence has weights in
    [0, 1]; clamping at 0, sorting, the recession bound and the mixture of members are 1-Lipschitz), except
    the spread calibration, ``q' = m + f (q - m)``: pass ``gain=`` :func:`spread_gain` for its quantiles.
    """
    model, cfg, scalers = bundle[0], bundle[1], bundle[2]
    q = scalers.basins[str(basin)]
    y = (np.asarray(flows, dtype=np.float64) - q.q_mean) / q.q_std
    return forecast_tol(model, cfg.training.seq_len) * gain * q.q_std * max(1.0, float(np.nanmax(np.abs(y))))


def spread_gain(model_path) -> float:
    """``1 + 2 f`` for the largest spread factor ``f`` of the calibration beside ``model_path`` (1 without one):
    a quantile spread around the median, ``m + f (q - m)``, moves by at most ``(1 + 2 f)`` times the larger
    change of ``q`` and ``m``."""
    from sca2lstm.evaluation.calibration import read_calibration

    factors = [0.0]

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "factors":
                    factors.append(float(np.max(v)))
                else:
                    walk(v)

    walk(read_calibration(model_path))
    return 1.0 + 2.0 * max(factors)


def probability_tol(flow_bound: float, quantiles, taus) -> float:
    """Absolute bound on ``P(Q > level)`` (:func:`sca2lstm.evaluation.exceedance.exceedance_probability`) when each
    quantile of a row moves by at most ``flow_bound``: the predictive CDF moves by at most its largest density
    times the shift, twice over for the tails (their scale moves with the two outer quantiles). The density is
    largest on the narrowest interval between quantiles, ``(tau_j+1 - tau_j) / (q_j+1 - q_j)``, or at the top or
    bottom quantile, ``(1 - tau_Q) ln((1 - tau_Q-1) / (1 - tau_Q)) / (q_Q - q_Q-1)`` (its mirror below)."""
    q = np.sort(np.atleast_2d(np.asarray(quantiles, dtype=np.float64)), axis=-1)
    t = np.asarray(taus, dtype=np.float64)
    with np.errstate(divide="ignore"):
        inner = np.diff(t) / np.diff(q, axis=-1)
        top = (1 - t[-1]) * np.log((1 - t[-2]) / (1 - t[-1])) / (q[:, -1] - q[:, -2])
        low = t[0] * np.log(t[1] / t[0]) / (q[:, 1] - q[:, 0])
    density = max(float(np.max(inner)), float(np.max(top)), float(np.max(low)))
    return 2.0 * density * flow_bound


def assert_forecasts_close(got, want, bundle, basin, columns=("median",), spread_from=None, last_obs=None,
                           rounding: float = 0.0, msg: str = "") -> None:
    """Flow columns of one forecast made by two paths (tables, or anything indexable by the column names) agree
    within :func:`flow_tol`, over the want side's flows and ``last_obs`` (the persistence a blend mixes in):
    the median as it is, the quantile columns times :func:`spread_gain` of ``spread_from`` (the model path of a
    forecast issued with the calibration's spread; None: the model's own quantiles), plus ``rounding`` where
    a side was read back from a CSV."""
    w = {c: np.asarray(want[c], dtype=np.float64) for c in columns}
    flows = np.concatenate([*(v.ravel() for v in w.values()), np.ravel(np.asarray(
        [] if last_obs is None else last_obs, dtype=np.float64))])
    for c in columns:
        gain = spread_gain(spread_from) if spread_from is not None and c != "median" else 1.0
        tol = flow_tol(bundle, basin, flows, gain) + rounding
        np.testing.assert_allclose(np.asarray(got[c], dtype=np.float64), w[c], rtol=0, atol=tol,
                                   err_msg=f"{msg} {c}: bound {tol:.3g} m3/s")
