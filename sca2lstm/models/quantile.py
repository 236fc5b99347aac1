"""Quantile head: forecast quantiles around the point forecast, never crossing.

One of the two heads ``model.head`` selects (the other: :mod:`sca2lstm.models.cmal`). Why pinball
(quantile) loss: it assumes no distribution family (distribution-free),
costs one small MLP and one loss term, and with the parametrisation below the quantiles cannot cross
by construction. The head reads *detached* inputs (LSTM2's state h2(t) and the point forecast
pred(t)), so its loss trains the head alone: the point forecast trains exactly as without it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

#: Cap of the "days since the last observed discharge" input (no observation in the window).
MAX_GAP_DAYS = 365


class QuantileHead(nn.Module):
    """Quantiles from a state, a point forecast, the days since the last observed discharge and the
    share of the inputs that are missing (both known at forecast time: together they tell a hindcast
    day, an issue-time lead day with a weather forecast, and one without, apart).

    ``q50 = point + d0``; upper quantiles ``q50 + cumsum(softplus(d_up))``, lower ones
    ``q50 - cumsum(softplus(d_low))`` outward from the median: strictly ordered.

    Parameters
    ----------
    state_size : int
        Size of the state input (LSTM2's hidden size in the model).
    quantiles : list of float
        Increasing, in (0, 1), including 0.5.
    hidden : int
        Width of the MLP's hidden layer.
    """

    def __init__(self, state_size: int, quantiles, hidden: int = 32):
        super().__init__()
        self.levels = [float(q) for q in quantiles]
        self.median_index = self.levels.index(0.5)
        self.net = nn.Sequential(nn.Linear(state_size + 3, hidden), nn.Tanh(), nn.Linear(hidden, len(self.levels)))

    def forward(self, state: torch.Tensor, point: torch.Tensor, gap_days: torch.Tensor,
                missing_share: torch.Tensor) -> torch.Tensor:
        """Quantiles in the units of ``point``.

        Parameters
        ----------
        state : Tensor [..., H]
        point : Tensor [...]
            The point forecast (detach it first where it must not learn from the head).
        gap_days : Tensor [...]
            Days since the last observed discharge the forecast could use (>= 0).
        missing_share : Tensor [...]
            Share of the dynamic input features that are missing on the day (0 .. 1).

        Returns
        -------
        Tensor [..., Q], increasing along the last axis.
        """
        z = torch.cat([state, point.unsqueeze(-1), torch.log1p(gap_days).unsqueeze(-1),
                       missing_share.unsqueeze(-1)], dim=-1)
        o = self.net(z)
        k = self.median_index
        q50 = point + o[..., k]
        up = q50.unsqueeze(-1) + torch.cumsum(F.softplus(o[..., k + 1:]), dim=-1)
        low = q50.unsqueeze(-1) - torch.flip(torch.cumsum(torch.flip(F.softplus(o[..., :k]), (-1,)), dim=-1), (-1,))
        return torch.cat([low, q50.unsqueeze(-1), up], dim=-1)

    def quantiles(self, raw: torch.Tensor, levels=None) -> torch.Tensor:
        """The quantiles from :meth:`forward`'s output (the head's own levels only): [..., Q]."""
        if levels is not None and [float(v) for v in levels] != self.levels:
            raise ValueError(f"a pinball head gives its trained levels {self.levels} only, not {list(levels)}")
        return raw


def days_since_observation(q_obs: torch.Tensor | None, lead: int, shape) -> torch.Tensor:
    """Days between each step t and the latest observed discharge at or before t - lead.

    Parameters
    ----------
    q_obs : Tensor [B, T] or None
        Observed discharge as the model reads it (NaN where unknown); None: nothing observed.
    lead : int
        Residual-feedback lag (the model reads obs(t - lead) at step t); 0: no discharge input.
    shape : (B, T)

    Returns
    -------
    Tensor [B, T] float, in [0, MAX_GAP_DAYS]; MAX_GAP_DAYS where no observation is in the window.
    """
    B, T = shape
    device = q_obs.device if q_obs is not None else None
    idx = torch.arange(T, device=device).expand(B, T)
    if q_obs is None or lead <= 0:
        return torch.full((B, T), float(MAX_GAP_DAYS), device=device)
    marks = torch.where(torch.isfinite(q_obs), idx, torch.full_like(idx, -MAX_GAP_DAYS))
    last = torch.cummax(marks, dim=1).values            # latest observed index <= s
    usable = torch.full_like(idx, -MAX_GAP_DAYS)
    usable[:, lead:] = last[:, :T - lead]
    return (idx - usable).clamp(max=MAX_GAP_DAYS).to(q_obs.dtype)
