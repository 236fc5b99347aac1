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
