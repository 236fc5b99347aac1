"""CMAL head: the forecast distribution as a countable mixture of asymmetric Laplace distributions.

A mixture density head in the manner of NeuralHydrology's CMAL (Klotz et al., 2022, "Uncertainty
estimation with deep learning for rainfall-runoff modelling"): for every step it gives K components,
each with a location ``mu``, a scale ``b > 0``, an asymmetry ``tau`` in (0, 1) and a weight ``pi``
(the weights sum to 1). One asymmetric Laplace component has the density

    f(y) = tau (1 - tau) / b * exp(-rho_tau((y - mu) / b)),   rho_tau(u) = u (tau - 1[u < 0]),

whose ``mu`` is its own tau-quantile, and the closed-form distribution function

    F(y) = tau exp((1 - tau) (y - mu) / b)              for y < mu,
    F(y) = 1 - (1 - tau) exp(-tau (y - mu) / b)         for y >= mu.

Why a mixture and not more quantiles: one head gives the whole distribution, so the probability of
any flow (a warning level above q95 included) and any quantile come from it, with exponential tails
whose weight the likelihood fits; two or three components give the skewed, sometimes two-humped
spread of a day that may or may not see the rain. It is trained with the negative log-likelihood
(:func:`sca2lstm.training.loss.cmal_nll`). As the pinball head does, it reads LSTM2's state and the
point forecast detached, so the point forecast trains exactly as without it; the locations are offsets
from the point forecast.

Quantiles of a mixture have no closed form: :func:`mixture_quantiles` finds them on the mixture CDF
by bisection inside a tight bracket, vectorised over all steps and levels.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

#: Floor of the scale and distance of tau (and of the weights) from 0 and 1, as NeuralHydrology uses:
#: keeps log-densities finite.
EPS = 1e-5
#: Bisection steps of :func:`mixture_quantiles` after bracketing, per dtype: the bracket shrinks by 2 to the
#: mantissa's bits, to the resolution of the dtype.
BISECTION_STEPS = {torch.float32: 24, torch.float64: 53}
#: Levels at which the components' quantiles serve as candidate brackets in :func:`mixture_quantiles`.
BRACKET_LEVELS = tuple(float(v) for v in [0.001, 0.003, 0.01, 0.03, *[i / 20 for i in range(1, 20)], 0.97, 0.99,
                                            0.997, 0.999])


class CMALHead(nn.Module):
    """Mixture parameters from a state, a point forecast, the days since the last observed discharge
    and the share of missing inputs (the same inputs as :class:`~sca2lstm.models.quantile.QuantileHead`).

    Parameters
    ----------
    state_size : int
        Size of the state input (LSTM2's hidden size in the model).
    quantiles : list of float
        The levels :meth:`quantiles` returns (the model's ``model.quantiles``), increasing, in (0, 1).
    components : int
        K, the number of asymmetric Laplace components.
    hidden : int
        Width of the MLP's hidden layer.
    """

    def __init__(self, state_size: int, quantiles, components: int = 3, hidden: int = 32):
        super().__init__()
        self.levels = [float(q) for q in quantiles]
        self.components = int(components)
        self.net = nn.Sequential(nn.Linear(state_size + 3, hidden), nn.Tanh(), nn.Linear(hidden, 4 * self.components))

    def forward(self, state: torch.Tensor, point: torch.Tensor, gap_days: torch.Tensor,
                missing_share: torch.Tensor) -> torch.Tensor:
        """Mixture parameters in the units of ``point``.

        Parameters
        ----------
        state : Tensor [..., H]
        point : Tensor [...]
        gap_days : Tensor [...]
        missing_share : Tensor [...]

        Returns
        -------
        Tensor [..., 4, K]: ``mu``, ``b`` (> 0), ``tau`` (in (0, 1)) and ``pi`` (summing to 1 over K).
        """
        z = torch.cat([state, point.unsqueeze(-1), torch.log1p(gap_days).unsqueeze(-1),
                       missing_share.unsqueeze(-1)], dim=-1)
        o = self.net(z).unflatten(-1, (4, self.components))
        mu = point.unsqueeze(-1) + o[..., 0, :]
        b = F.softplus(o[..., 1, :]) + EPS
        tau = (1 - 2 * EPS) * torch.sigmoid(o[..., 2, :]) + EPS
        pi = (1 - EPS * self.components) * torch.softmax(o[..., 3, :], dim=-1) + EPS
        return torch.stack([mu, b, tau, pi], dim=-2)

    def quantiles(self, params: torch.Tensor, levels=None) -> torch.Tensor:
        """The mixture's quantiles at ``levels`` (default: the head's levels): Tensor [..., Q], increasing."""
        return mixture_quantiles(params, self.levels if levels is None else levels)


def ald_cdf(y: torch.Tensor, mu: torch.Tensor, b: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """Distribution function of the asymmetric Laplace distribution (broadcasting arguments).

    One exp per element: on each side of mu, F is affine in the same exponential, whose exponent is
    <= 0 there (never overflows)."""
    u = (y - mu) / b
    left = u < 0
    e = torch.exp(torch.where(left, (1 - tau) * u, -tau * u))
    return torch.where(left, tau * e, 1 - (1 - tau) * e)


def ald_quantile(p: torch.Tensor, mu: torch.Tensor, b: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`ald_cdf`: the p-quantile (broadcasting arguments, p in (0, 1))."""
    below = mu + b / (1 - tau) * torch.log(p / tau)
    above = mu - b / tau * torch.log((1 - p) / (1 - tau))
    return torch.where(p <= tau, below, above)


def ald_log_density(y: torch.Tensor, mu: torch.Tensor, b: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """log f(y) of the asymmetric Laplace distribution (broadcasting arguments)."""
    u = (y - mu) / b
    rho = u * (tau - (u < 0).to(u.dtype))
    return torch.log(tau) + torch.log1p(-tau) - torch.log(b) - rho


def mixture_cdf(y: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """P(Y <= y) under the mixture.

    Parameters
    ----------
    y : Tensor [..., M]
        M values per step.
    params : Tensor [..., 4, K]
        As :meth:`CMALHead.forward` returns.

    Returns
    -------
    Tensor [..., M]
    """
    mu, b, tau, pi = (params[..., i, :].unsqueeze(-2) for i in range(4))  # each [..., 1, K]
    return (pi * ald_cdf(y.unsqueeze(-1), mu, b, tau)).sum(-1)


@torch.no_grad()
def mixture_quantiles(params: torch.Tensor, levels, steps: int | None = None) -> torch.Tensor:
    """Quantiles of the mixture, all steps and levels at once (no gradient: training uses the
    likelihood, not the quantiles).

    1. Bracket: the mixture CDF is evaluated at candidate points, the components' own quantiles at
       ``levels`` and at a fixed grid of levels (the mixture's quantile at p lies between the
       smallest and the largest component quantile at p, both candidates); the two sorted candidates
       around p bracket the root tightly.
    2. Bisection inside that bracket: each step halves it, whatever the shape of the CDF (a mixture's
       CDF can be nearly flat between components, where Newton steps go astray).

    Parameters
    ----------
    params : Tensor [..., 4, K]
    levels : sequence of float, length Q, in (0, 1)
    steps : int, optional
        Bisection steps (default: ``BISECTION_STEPS`` of the dtype, 24 for float32).

    Returns
    -------
    Tensor [..., Q], non-decreasing along the last axis.
    """
    p = torch.as_tensor(levels, dtype=params.dtype, device=params.device)          # [Q]
    mu, b, tau, pi = (params[..., i, :].unsqueeze(-2) for i in range(4))           # [..., 1, K]
    grid = torch.cat([p, torch.as_tensor(BRACKET_LEVELS, dtype=p.dtype, device=p.device)])
    cand = ald_quantile(grid[:, None], mu, b, tau).flatten(-2)                     # [..., C]
    cand = torch.sort(cand, dim=-1).values
    f_cand = mixture_cdf(cand, params)                                             # [..., C], increasing
    j = torch.searchsorted(f_cand.contiguous(), p.expand(*f_cand.shape[:-1], -1).contiguous())  # first F >= p
    last = cand.shape[-1] - 1
    hi = torch.gather(cand, -1, j.clamp(max=last))
    lo = torch.gather(cand, -1, (j - 1).clamp(min=0))
    for _ in range(BISECTION_STEPS.get(params.dtype, 24) if steps is None else steps):
        mid = 0.5 * (lo + hi)
        below = mixture_cdf(mid, params) < p
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    x = 0.5 * (lo + hi)
    # Two levels closer than the result's precision could cross by rounding: keep them ordered.
    return torch.cummax(x, dim=-1).values
