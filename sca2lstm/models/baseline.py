"""A plain single-LSTM baseline on the same inputs as SCA2LSTM (what the benchmark compares against).

One fused ``nn.LSTM`` reads, at every step, the scaled dynamic features x(t) (lagged observed
discharge included, as in SCA2LSTM's forecast mode), their missing flags, and the scaled static
attributes with their missing flags repeated over time; a linear head maps the hidden state to the
scaled discharge. This is the layout of NeuralHydrology's CudaLSTM. It has the forward signature of
:class:`~sca2lstm.models.sca2lstm.SCA2LSTM`, so the same trainer, evaluation and forecast code run it.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import Config
from ..data.features import feature_spec


class LSTMBaseline(nn.Module):
    """Single fused LSTM (``config.model.hidden_size`` units) and a linear head.

    Parameters
    ----------
    config : Config
        Sizes from ``config.model`` (hidden_size, dropout, initial_forget_bias); feature lists from
        ``config.data``.
    """

    def __init__(self, config: Config):
        super().__init__()
        m, d = config.model, config.data
        self.n_features = len(feature_spec(config))
        self.n_static = len(d.static_attributes)
        self.hidden_size = m.hidden_size
        self.lstm = nn.LSTM(2 * self.n_features + 2 * self.n_static, m.hidden_size, batch_first=True)
        self.dropout = nn.Dropout(m.dropout)
        self.head = nn.Linear(m.hidden_size, 1)
        with torch.no_grad():  # PyTorch gate order is [input, forget, cell, output]
            h = m.hidden_size
            self.lstm.bias_hh_l0.zero_()
            self.lstm.bias_ih_l0.zero_()
            self.lstm.bias_ih_l0[h:2 * h] = m.initial_forget_bias

    def forward(self, x: torch.Tensor, x_missing: torch.Tensor, static: torch.Tensor,
                static_missing: torch.Tensor, q_obs: torch.Tensor | None = None,
                return_weights: bool = False):
        """``pred`` [B, T] (scaled discharge at every step); ``(pred, None)`` if ``return_weights``.

        ``q_obs`` is ignored: the lagged observed discharge is already one of the features of ``x``.
        """
        B, T, _ = x.shape
        s = torch.cat([static, static_missing.to(static.dtype)], dim=-1).to(x.dtype)
        inp = torch.cat([x, x_missing.to(x.dtype), s.unsqueeze(1).expand(B, T, s.shape[-1])], dim=-1)
        out, _ = self.lstm(inp)
        pred = self.head(self.dropout(out)).squeeze(-1)
        return (pred, None) if return_weights else pred
