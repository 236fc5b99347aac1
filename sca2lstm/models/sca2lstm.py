"""The SCA2LSTM model: an attention LSTM steering a prediction LSTM, with causal residual feedback.

At every step t (all states carry across the whole window; nothing is reset, nothing is clamped):

1. **LSTM1 (attention LSTM)** reads the dynamic features x(t), their missing flags m(t), the basin
   embedding e, LSTM2's previous state h2(t-1) and, in forecast mode, the residual of the forecast
   made ``lead_days`` steps ago, pred(t-L) - obs(t-L), with a flag saying whether obs(t-L) exists.
2. **Weight head**: a softmax over the N features from h1(t). Weights of missing features are exactly
   0 and the rest are renormalised; a step with every feature missing gets all-zero weights.
3. **LSTM2 (prediction LSTM)** reads the weighted features N * w(t) * x(t) (scaled by N so uniform
   weights leave the inputs' magnitude unchanged), h1(t) and e.
4. **Prediction head** maps h2(t) to the scaled discharge at t; with ``model.cell_readout`` (the
   default) it also reads LSTM2's cell state: pred(t) = head(h2(t)) + v . c2(t), v starting at 0.
   The dropout mask of a unit applies to both its h2 and c2. With ``model.persistence_skip`` the
   head forecasts the change from the last observation: pred(t) = obs(t-L) + head(h2(t)) where
   obs(t-L) is known, and the level itself where it is not. Predictions exist at every step, which
   the residual feedback needs and which lets the loss use every step after a spin-up.
5. **Quantile head** (``model.quantiles``): forecast quantiles from the detached h2(t), the detached
   pred(t), the days since the last observed discharge and the share of missing inputs (what tells
   hindcast and issue-time lead days apart); its loss leaves the point forecast's training unchanged.
   ``model.head`` picks a pinball head, one output per level (:mod:`sca2lstm.models.quantile`), or a
   CMAL head, a mixture of asymmetric Laplace distributions trained by likelihood, whose quantiles are
   found on its CDF (:mod:`sca2lstm.models.cmal`).

**Basin embedding.** An MLP encoder of the static attributes and their missing flags. It has no
per-basin lookup table, so a basin never seen in pretraining gets an embedding from its attributes,
and no parameter shape depends on the data: ``SCA2LSTM(load_config())`` always fits a checkpoint made
with the same config.

**Speed.** The parts of each LSTM's input that do not depend on the recurrence (x, m, e) are projected
for all steps in one matrix product before the loop; each step then does one small product per cell.
The loop itself runs by default as one custom autograd Function with hand-written backpropagation
through time (:mod:`sca2lstm.models.recurrence`), whose two sequential loops run in C++ on the CPU
when a compiler is available (built once, on first use): a training step is several times faster than
the eager loop, which records ~30 autograd nodes per step. The eager loop stays as the readable reference
(``model.use_fused_recurrence = False``) and is used automatically under autocast, ``torch.compile``
and when gradients with respect to ``x`` or ``q_obs`` are asked for. Both give the same results up to
float rounding, except that in training mode the fused path draws its dropout mask explicitly from
torch's global RNG (reproducible with ``torch.manual_seed``, but not the same draws as ``nn.Dropout``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import Config
from ..data.features import feature_spec
from .cmal import CMALHead
from .quantile import QuantileHead, days_since_observation
from .recurrence import DualRecurrence, run_recurrence


def shape_mismatches(module: nn.Module, state: dict) -> list[tuple[str, tuple, tuple]]:
    """``(name, shape in state, shape in module)`` of each tensor of ``state`` whose shape is not the module's
    parameter's of that name, in the module's order (names only one side has are not listed)."""
    own = module.state_dict()
    return [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in own.items()
            if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)]


class ModelConfigMismatch(RuntimeError):
    """Weights loaded into a model whose config gives other sizes (a RuntimeError, as torch's own)."""


class SCA2LSTM(nn.Module):
    """Dual-LSTM attention model.

    Parameters
    ----------
    config : Config
        Only the config is needed: sizes come from ``config.model`` and the feature lists of
        ``config.data``. The model reads no files.
    """

    #: Module groups that fine-tuning freezes or trains as units.
    FREEZABLE_GROUPS = ("embedding", "lstm1", "weight_head", "lstm2", "predict_head")

    #: Run the recurrence through :mod:`sca2lstm.models.recurrence` (same results, several times
    #: faster); False runs the eager reference loop. A plain attribute: not part of the state_dict.
    use_fused_recurrence: bool = True

    def __init__(self, config: Config):
        super().__init__()
        m, d = config.model, config.data
        self.n_features = len(feature_spec(config))
        self.n_static = len(d.static_attributes)
        self.lead = d.lead_days if d.use_discharge_input else 0
        self.persistence_skip = bool(m.persistence_skip and self.lead > 0)
        h1, h2, emb = m.attention_hidden_size, m.hidden_size, m.embedding_size
        self.h1_size, self.h2_size = h1, h2

        # embedding: static attributes (+ missing flags) -> e
        if self.n_static:
            self.embedding = nn.Sequential(nn.Linear(2 * self.n_static, 32), nn.Tanh(), nn.Linear(32, emb))
        else:
            self.embedding = _ConstantEmbedding(emb)
        # lstm1: input projection for all steps, and the recurrent product [h1, h2, residual, flag]
        self.lstm1 = nn.ModuleDict({
            "inp": nn.Linear(2 * self.n_features + emb, 4 * h1),
            "rec": nn.Linear(h1 + h2 + 2, 4 * h1, bias=False),
        })
        self.weight_head = nn.Linear(h1, self.n_features)
        # lstm2: static part (e, with the bias) and the recurrent product [weighted x, h1, h2]
        self.lstm2 = nn.ModuleDict({
            "inp": nn.Linear(emb, 4 * h2),
            "rec": nn.Linear(self.n_features + h1 + h2, 4 * h2, bias=False),
        })
        self.dropout = nn.Dropout(m.dropout)
        self.predict_head = nn.Linear(h2, 1)
        # The cell readout v (no bias: the head has one). Zero at the start, so training begins from
        # the plain h2 readout; part of the "predict_head" group.
        self.cell_head = None
        if m.cell_readout:
            self.cell_head = nn.Linear(h2, 1, bias=False)
            nn.init.zeros_(self.cell_head.weight)
        # Forecast quantiles (model.quantiles) from detached states: part of the "predict_head" group.
        self.quantiles = list(m.quantiles)
        self.head_kind = m.head
        self.quantile_head = None
        if self.quantiles:
            self.quantile_head = (CMALHead(h2, self.quantiles, m.cmal_components) if m.head == "cmal"
                                  else QuantileHead(h2, self.quantiles))
        self._init_forget_bias(m.initial_forget_bias)

    def _init_forget_bias(self, value: float) -> None:
        # Gate order in each 4H block is [input, forget, output, cell]; a positive forget bias starts
        # the cells with long memory.
        with torch.no_grad():
            for blk, h in ((self.lstm1["inp"], self.h1_size), (self.lstm2["inp"], self.h2_size)):
                blk.bias[h:2 * h] = value

    def group_parameters(self, group: str):
        """Parameters of one of :attr:`FREEZABLE_GROUPS`."""
        if group not in self.FREEZABLE_GROUPS:
            raise ValueError(f"unknown group {group!r}; expected one of {self.FREEZABLE_GROUPS}")
        params = list(getattr(self, group).parameters())
        if group == "predict_head":
            for extra in (self.cell_head, self.quantile_head):
                if extra is not None:
                    params += list(extra.parameters())
        return params

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """:meth:`torch.nn.Module.load_state_dict`, with one line where the weights are of a model of other sizes.

        The guide's snippet builds the model from the *default* config; a checkpoint pretrained with another
        config (the large sample's adds an input) has other shapes, and torch's message, a line per tensor,
        does not say what to do.

        Raises
        ------
        ModelConfigMismatch
            A weight's shape differs from this model's (a ``RuntimeError``, as torch's own).
        """
        wrong = shape_mismatches(self, state_dict)
        if wrong:
            name, given, own = wrong[0]
            raise ModelConfigMismatch(
                f"these weights are of a model built with another config: {name} is {list(given)} in them, "
                f"{list(own)} in this model ({len(wrong)} such tensors); build the model from the checkpoint's own "
                "config: sca2lstm.checkpoint.load_model(path)")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    @staticmethod
    def _cell(gates: torch.Tensor, c: torch.Tensor, h_size: int):
        sig = torch.sigmoid(gates[:, :3 * h_size])
        g = torch.tanh(gates[:, 3 * h_size:])
        c = sig[:, h_size:2 * h_size] * c + sig[:, :h_size] * g
        h = sig[:, 2 * h_size:] * torch.tanh(c)
        return h, c

    def forward(self, x: torch.Tensor, x_missing: torch.Tensor, static: torch.Tensor,
                static_missing: torch.Tensor, q_obs: torch.Tensor | None = None,
                return_weights: bool = False, return_quantiles: bool = False, return_head: bool = False,
                quantiles_from: int = 0):
        """Run the window.

        Parameters
        ----------
        x : Tensor [B, T, N]
            Scaled dynamic features, 0 where missing.
        x_missing : Tensor [B, T, N] bool
            True where a feature is missing.
        static : Tensor [B, S]
            Scaled static attributes, 0 where missing.
        static_missing : Tensor [B, S] bool
        q_obs : Tensor [B, T], optional
            Scaled observed target (NaN where not observed), for the residual feedback in forecast
            mode: step t uses pred(t-L) - q_obs(t-L) only, which is known at forecast time.
        return_weights : bool
            Also return the attention weights.
        return_quantiles : bool
            Also return the forecast quantiles of the quantile head (``model.quantiles``).
        return_head : bool
            Also return the head's own output, what its loss reads (training): the quantiles
            [B, T, Q] of a pinball head, the mixture parameters [B, T, 4, K] of a CMAL head.
        quantiles_from : int
            The quantiles of the steps before this one are not computed (NaN): a CMAL head's
            quantiles cost a root search per step, and a forecast reads only its lead days.

        Returns
        -------
        pred : Tensor [B, T]
            Scaled discharge forecast at every step.
        weights : Tensor [B, T, N], only if ``return_weights``
            Attention weights; sum to 1 over present features, exactly 0 on missing ones.
        quantiles : Tensor [B, T, Q], only if ``return_quantiles``
            Scaled forecast quantiles, increasing along the last axis. The head reads LSTM2's
            state and the point forecast detached: its loss never changes the point forecast.
        head : Tensor, only if ``return_head``
        """
        if (return_quantiles or return_head) and self.quantile_head is None:
            raise ValueError("this model has no quantile head (model.quantiles is empty)")
        B, T, N = x.shape
        dtype = x.dtype
        miss = x_missing.to(dtype)
        e = self.embedding(torch.cat([static, static_missing.to(static.dtype)], dim=-1))  # [B, E]
        g1_pre = self.lstm1["inp"](torch.cat([x, miss, e.unsqueeze(1).expand(B, T, e.shape[-1])], dim=-1))
        g2_pre = self.lstm2["inp"](e)
        # Masked softmax pieces for all steps: -inf on missing features; all-missing steps get finite
        # logits (no 0/0) and are then zeroed.
        all_miss = x_missing.all(dim=-1, keepdim=True)
        neg = torch.zeros_like(x).masked_fill(x_missing & ~all_miss, float("-inf"))
        keep = (~all_miss).to(dtype)
        # Residual-feedback inputs known before the loop: which obs(t-L) exist and their values.
        use_res = self.lead > 0 and q_obs is not None
        if use_res:
            known = torch.isfinite(q_obs)
            obs0 = torch.where(known, q_obs, torch.zeros_like(q_obs))
            known_f = known.to(dtype)
        else:
            obs0 = known_f = None
        base = None
        if self.persistence_skip:
            if not use_res:
                raise ValueError("this model forecasts the change from the last observation: pass q_obs")
            # base(t) = obs(t-L) where known, else 0 (then the head forecasts the level itself).
            base = torch.zeros_like(obs0)
            base[:, self.lead:] = (obs0 * known_f)[:, :T - self.lead]

        if self._fused_ok(x, q_obs):
            pred, weights, h2 = self._fused_recurrence(x, g1_pre, g2_pre, neg, keep, obs0, known_f, use_res, base)
        else:
            pred, weights, h2 = self._reference_recurrence(x, g1_pre, g2_pre, neg, keep, obs0, known_f, use_res,
                                                           base, return_weights or return_quantiles or return_head)
        out = (pred,)
        if return_weights:
            out += (weights,)
        if return_quantiles or return_head:
            gap = days_since_observation(q_obs if use_res else None, self.lead, (B, T)).to(x.device, dtype)
            raw = self.quantile_head(h2.detach(), pred.detach(), gap, miss.mean(-1))
            if return_quantiles:
                qs = raw.new_full((B, T, len(self.quantiles)), float("nan"))
                qs[:, quantiles_from:] = self.quantile_head.quantiles(raw[:, quantiles_from:])
                out += (qs,)
            if return_head:
                out += (raw,)
        return out[0] if len(out) == 1 else out

    def _fused_ok(self, x: torch.Tensor, q_obs: torch.Tensor | None) -> bool:
        if not self.use_fused_recurrence:
            return False
        if torch.is_autocast_enabled(x.device.type) or torch.compiler.is_compiling():
            return False
        # The Function gives no gradient to x or q_obs (the reference does, through N*w*x and the residual).
        return not (torch.is_grad_enabled() and (x.requires_grad or (q_obs is not None and q_obs.requires_grad)))

    def _fused_recurrence(self, x, g1_pre, g2_pre, neg, keep, obs0, known_f, use_res, base):
        B, T, _ = x.shape
        p = self.dropout.p
        mask = None
        if self.training and p > 0:
            # Explicit dropout mask on h2 (drawn from torch's RNG: reproducible with torch.manual_seed).
            mask = (x.new_zeros(B, T, self.h2_size) if p >= 1 else
                    x.new_empty(B, T, self.h2_size).bernoulli_(1 - p).div_(1 - p))
        params = (g1_pre, g2_pre, self.lstm1["rec"].weight, self.weight_head.weight, self.weight_head.bias,
                  self.lstm2["rec"].weight, self.predict_head.weight, self.predict_head.bias,
                  None if self.cell_head is None else self.cell_head.weight)
        lead = self.lead if use_res else 0
        if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in params):
            return DualRecurrence.apply(*params, x, neg, keep, obs0, known_f, mask, lead, None, base)
        return run_recurrence(*params, x, neg, keep, obs0, known_f, mask, lead, base=base)

    def _reference_recurrence(self, x, g1_pre, g2_pre, neg, keep, obs0, known_f, use_res, base, keep_states):
        """The eager per-step loop: the readable definition the fused recurrence must match.

        Returns pred [B, T] and, if ``keep_states``, weights [B, T, N] and h2 [B, T, H2] (else None).
        """
        B, T, N = x.shape
        zeros2 = x.new_zeros(B, 2)
        h1 = x.new_zeros(B, self.h1_size)
        c1 = torch.zeros_like(h1)
        h2 = x.new_zeros(B, self.h2_size)
        c2 = torch.zeros_like(h2)
        preds, weights, h2s = [], [], []
        for t in range(T):
            if use_res and t >= self.lead:
                s = t - self.lead
                # The fed-back forecast is detached: it is an input signal, not a path for gradients.
                r = (preds[s].detach() - obs0[:, s]) * known_f[:, s]
                res = torch.stack([r, known_f[:, s]], dim=1)
            else:
                res = zeros2
            g1 = g1_pre[:, t] + self.lstm1["rec"](torch.cat([h1, h2, res], dim=1))
            h1, c1 = self._cell(g1, c1, self.h1_size)
            w = torch.softmax(self.weight_head(h1) + neg[:, t], dim=-1) * keep[:, t]
            g2 = g2_pre + self.lstm2["rec"](torch.cat([N * w * x[:, t], h1, h2], dim=1))
            h2, c2 = self._cell(g2, c2, self.h2_size)
            if self.cell_head is None:
                p = self.predict_head(self.dropout(h2)).squeeze(-1)
            else:  # one dropout mask per unit, on its h2 and c2 alike (as the fused loop does)
                keep_unit = self.dropout(torch.ones_like(h2))
                p = (self.predict_head(h2 * keep_unit) + self.cell_head(c2 * keep_unit)).squeeze(-1)
            preds.append(p if base is None else p + base[:, t])
            if keep_states:
                weights.append(w)
                h2s.append(h2)
        pred = torch.stack(preds, dim=1)
        if keep_states:
            return pred, torch.stack(weights, dim=1), torch.stack(h2s, dim=1)
        return pred, None, None


class _ConstantEmbedding(nn.Module):
    """A learned embedding shared by all basins, for configs with no static attributes."""

    def __init__(self, size: int):
        super().__init__()
        self.value = nn.Parameter(torch.zeros(size))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.value.expand(s.shape[0], -1)
