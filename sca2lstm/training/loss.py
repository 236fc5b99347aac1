"""Losses. Targets are standardised per basin, so plain masked MSE is the NSE-style loss of
Kratzert et al. (2019): squared error divided by the basin's discharge variance. Do not scale twice."""

from __future__ import annotations

import torch

from ..models.cmal import ald_log_density


def weighted_squared_errors(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, peak_weight: float = 0.0,
                            weight: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The squared errors of :func:`masked_mse`, per step, and the steps that count.

    Parameters
    ----------
    pred, target, mask, peak_weight, weight
        As in :func:`masked_mse`.

    Returns
    -------
    sq : Tensor [B, T]
        Weighted squared error, 0 where not valid.
    valid : Tensor [B, T] bool
        ``mask`` where the target is observed.
    """
    valid = mask & torch.isfinite(target)
    y = torch.nan_to_num(target)
    sq = torch.where(valid, pred - y, torch.zeros_like(pred)).pow(2)
    if peak_weight:
        sq = sq * (1 + peak_weight * y.clamp(min=0))
    if weight is not None:
        sq = sq * weight
    return sq, valid


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, peak_weight: float = 0.0,
               weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over the positions where ``mask`` is True and the target is observed.

    Parameters
    ----------
    pred, target : Tensor [B, T]
        Scaled forecast and target (NaN where not observed).
    mask : Tensor [B, T] bool
        Steps that carry a loss (after spin-up, inside the training period).
    peak_weight : float
        ``training.peak_weight``: a day's squared error is weighted by 1 + peak_weight x max(target, 0)
        (the target is standardised per basin, so the weight grows with the flow above the basin's
        mean) and the sum divided by the number of valid days, not the weights: 0 is the plain MSE.
    weight : Tensor [B, T], optional
        A further weight per step (the lead days of issue-time windows, ``training.lead_weight``), applied
        the same way: the sum is still divided by the number of valid days.

    Returns
    -------
    Tensor, scalar
        NaN when no position is valid (the caller skips such a batch).
    """
    sq, valid = weighted_squared_errors(pred, target, mask, peak_weight, weight)
    return sq.sum() / valid.sum()


def pinball_loss(quantiles: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, levels,
                 weight: torch.Tensor | None = None) -> torch.Tensor:
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
    weight : Tensor [B, T], optional
        A weight per step, as in :func:`masked_mse` (the mean is still over the valid positions).

    Returns
    -------
    Tensor, scalar: mean over valid positions and levels of max(tau d, (tau - 1) d), d = target - q.
    NaN when no position is valid.
    """
    tau = torch.as_tensor(levels, dtype=quantiles.dtype, device=quantiles.device)
    valid = mask & torch.isfinite(target)
    d = torch.nan_to_num(target).unsqueeze(-1) - quantiles
    loss = torch.maximum(tau * d, (tau - 1) * d) * valid.unsqueeze(-1).to(quantiles.dtype)
    if weight is not None:
        loss = loss * weight.unsqueeze(-1)
    return loss.sum() / (valid.sum() * len(tau))


def cmal_nll(params: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
             weight: torch.Tensor | None = None) -> torch.Tensor:
    """Negative log-likelihood of the target under a mixture of asymmetric Laplace distributions.

    Parameters
    ----------
    params : Tensor [B, T, 4, K]
        ``mu, b, tau, pi`` per component, as :class:`sca2lstm.models.cmal.CMALHead` gives them.
    target : Tensor [B, T]
        Scaled observed target, NaN where not observed.
    mask : Tensor [B, T] bool
        Steps that carry a loss.
    weight : Tensor [B, T], optional
        A weight per step, as in :func:`masked_mse`.

    Returns
    -------
    Tensor, scalar: mean over valid positions of -log sum_k pi_k f_k(target); NaN when none is valid.
    """
    valid = mask & torch.isfinite(target)
    mu, b, tau, pi = params.unbind(-2)                                  # each [B, T, K]
    log_f = ald_log_density(torch.nan_to_num(target).unsqueeze(-1), mu, b, tau)
    nll = -torch.logsumexp(torch.log(pi) + log_f, dim=-1)              # [B, T]
    if weight is not None:
        nll = nll * weight
    return torch.where(valid, nll, torch.zeros_like(nll)).sum() / valid.sum()


def head_loss(kind: str, head_output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, levels,
              weight: torch.Tensor | None = None) -> torch.Tensor:
    """The loss of the quantile head ``model.head``: pinball over ``levels`` (``quantile``) or the
    mixture's negative log-likelihood (``cmal``). ``head_output`` is the model's ``return_head`` output;
    ``weight`` [B, T] weights the steps as in :func:`masked_mse`."""
    if kind == "cmal":
        return cmal_nll(head_output, target, mask, weight)
    return pinball_loss(head_output, target, mask, levels, weight)
