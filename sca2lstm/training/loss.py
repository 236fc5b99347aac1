"""Losses. Targets are standardised per basin, so plain masked MSE is the NSE-style loss of
Kratzert et al. (2019): squared error divided by the basin's discharge variance. Do not scale twice."""

from __future__ import annotations

import torch


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the positions where ``mask`` is True and the target is observed.

    Parameters
    ----------
    pred, target : Tensor [B, T]
        Scaled forecast and target (NaN where not observed).
    mask : Tensor [B, T] bool
        Steps that carry a loss (after spin-up, inside the training period).

    Returns
    -------
    Tensor, scalar
        NaN when no position is valid (the caller skips such a batch).
    """
    valid = mask & torch.isfinite(target)
    diff = torch.where(valid, pred - torch.nan_to_num(target), torch.zeros_like(pred))
    return diff.pow(2).sum() / valid.sum()


def pinball_loss(quantiles: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, levels) -> torch.Tensor:
    """Pinball (quantile) loss averaged over the quantile levels and the valid positions.

    Parameters
    ----------
    quantiles : Tensor [B, T, Q]
        Forecast quantiles (scaled units).
    target : Tensor [B, T]
        Scaled observed target, NaN where not observed.
    mask : Tensor [B, T] bool
        Steps that carry a loss.
    levels : sequence of float, length Q
        The quantile levels tau.

    Returns
    -------
    Tensor, scalar: mean over valid positions and levels of max(tau d, (tau - 1) d), d = target - q.
    NaN when no position is valid.
    """
    tau = torch.as_tensor(levels, dtype=quantiles.dtype, device=quantiles.device)
    valid = mask & torch.isfinite(target)
    d = torch.nan_to_num(target).unsqueeze(-1) - quantiles
    loss = torch.maximum(tau * d, (tau - 1) * d) * valid.unsqueeze(-1).to(quantiles.dtype)
    return loss.sum() / (valid.sum() * len(tau))
