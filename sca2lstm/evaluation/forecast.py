"""Batched forecasting of whole periods, the same way the model was trained.

Each day is forecast by exactly one window: windows of ``seq_len`` days are laid end to end with a
stride of ``seq_len - spinup``, each warming up on the ``spinup`` days before the days it forecasts.
All windows of all basins run as one batch, so a sequential pass costs ``seq_len`` steps whatever the
length of the record (45 years of one basin is ~90 windows of 270 steps).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.dataset import SequenceData, chunk_starts


@dataclass
class Forecast:
    """Scaled forecast of one basin over [i0, i1): ``pred`` [n], ``weights`` [n, N] or None."""

    basin: str
    i0: int
    i1: int
    pred: np.ndarray
    weights: np.ndarray | None


@torch.no_grad()
def forecast_periods(model: torch.nn.Module, data: SequenceData, periods: list[tuple[int, int]],
                     seq_len: int, spinup: int, device: torch.device | str = "cpu", batch_size: int = 512,
                     return_weights: bool = False, basin_indices=None) -> list[Forecast]:
    """Forecast every day of each basin's period.

    Parameters
    ----------
    periods : list of (i0, i1)
        Half-open day ranges, one per basin in ``basin_indices`` (default: every basin of ``data``).

    Returns
    -------
    list of Forecast, one per period; days no window could forecast stay NaN.
    """
    was_training = model.training
    model.eval()
    if basin_indices is None:
        basin_indices = list(range(len(data.basins)))
    k = seq_len - spinup
    b_list, s_list, owner = [], [], []
    for j, (b, (i0, i1)) in enumerate(zip(basin_indices, periods)):
        st = chunk_starts(i0, i1, seq_len, spinup)
        b_list.append(np.full(len(st), b, dtype=np.int64))
        s_list.append(st)
        owner.append(np.full(len(st), j, dtype=np.int64))
    outs = [Forecast(data.basins[b], i0, i1, np.full(i1 - i0, np.nan, dtype=np.float32),
                     np.full((i1 - i0, len(data.scalers.feature_names)), np.nan, dtype=np.float32)
                     if return_weights else None)
            for b, (i0, i1) in zip(basin_indices, periods)]
    if not b_list:
        return outs
    b_all, s_all, o_all = np.concatenate(b_list), np.concatenate(s_list), np.concatenate(owner)
    for lo in range(0, len(b_all), batch_size):
        bb, ss, oo = b_all[lo:lo + batch_size], s_all[lo:lo + batch_size], o_all[lo:lo + batch_size]
        x, miss, y, st, stm = data.gather(bb, ss, seq_len)
        args = [torch.from_numpy(a).to(device) for a in (x, miss, st, stm, y)]
        res = model(*args[:4], q_obs=args[4], return_weights=return_weights)
        pred, w = (res if return_weights else (res, None))
        pred = pred[:, spinup:].float().cpu().numpy()
        w = w[:, spinup:].float().cpu().numpy() if w is not None else None
        for r in range(len(bb)):
            f = outs[oo[r]]
            first = ss[r] + spinup - f.i0  # position of this window's first forecast day in the output
            n = min(k, len(f.pred) - first)
            f.pred[first:first + n] = pred[r, :n]
            if w is not None:
                f.weights[first:first + n] = w[r, :n]
    model.train(was_training)
    return outs
