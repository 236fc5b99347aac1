"""Figures of hyper-parameter searches: one study's optimisation history, and best-so-far curves of
several samplers side by side (bench/tuning.py). Written like the other figures (plots.py): object
API, Agg backend, one PNG written atomically."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import blended_transform_factory

from .plots import _new_figure, _save


def _legend_beside(ax) -> None:
    """The legend right of the axes: trials fill the whole axes, so inside it hid some (loc="best" too)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=8)


def best_so_far(values: Sequence[float], minimize: bool = True) -> np.ndarray:
    """Running best of ``values`` (NaN, e.g. a pruned trial, is skipped; NaN until the first value).

    Parameters
    ----------
    values : sequence of float, shape [n_trials]

    Returns
    -------
    np.ndarray, shape [n_trials]
    """
    v = np.asarray(values, dtype=np.float64)
    fill = np.inf if minimize else -np.inf
    run = (np.minimum if minimize else np.maximum).accumulate(np.where(np.isfinite(v), v, fill))
    return np.where(np.isfinite(run), run, np.nan)


def plot_optimization_history(numbers, values, states, path, objective: str, minimize: bool = True,
                              title: str = "Optimisation history"):
    """Each finished trial's value (dots), pruned trials at their last reported value (crosses) and the
    best so far (line).

    Parameters
    ----------
    numbers : sequence of int, shape [n]
        Trial numbers.
    values : sequence of float, shape [n]
        The objective of finished trials; for pruned ones their last intermediate value; NaN if none.
    states : sequence of str, shape [n]
        ``COMPLETE``, ``PRUNED``, ``FAIL``, ... and ``DIVERGED`` (a pruned trial whose training diverged): drawn
        as a mark at the top of the axes, not at its value (1e16, say, which flattened every other trial).
    """
    numbers = np.asarray(numbers)
    values = np.asarray(values, dtype=np.float64)
    states = np.asarray(states)
    fig = _new_figure((8.5, 4))
    fig.set_layout_engine("constrained")  # room for the legend beside the axes
    ax = fig.add_subplot(1, 1, 1)
    done = states == "COMPLETE"
    ax.plot(numbers[done], values[done], "o", color="tab:blue", ms=4, label="finished trial")
    pruned = states == "PRUNED"
    if pruned.any():
        ax.plot(numbers[pruned], values[pruned], "x", color="tab:gray", ms=5, label="pruned (last epoch reported)")
    diverged = states == "DIVERGED"
    if diverged.any():  # x in trials, y in the axes: the marks take no part in the value axis's limits
        ax.plot(numbers[diverged], np.full(int(diverged.sum()), 0.97), "v", color="tab:orange", ms=6, clip_on=False,
                transform=blended_transform_factory(ax.transData, ax.transAxes), label="diverged (off the scale)")
    ax.step(numbers, best_so_far(np.where(done, values, np.nan), minimize), where="post", color="tab:red",
            label="best so far")
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trials are numbered: no tick at trial 0.5
    ax.set_ylabel(f"{objective} (validation)")
    ax.set_title(title)
    _legend_beside(ax)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_best_so_far(curves: dict, path, ylabel: str, title: str = "Best so far per trial"):
    """Mean best-so-far curve of each sampler over seeds, with the range of the seeds shaded.

    Parameters
    ----------
    curves : dict
        ``{sampler: array [n_seeds, n_trials]}`` of best-so-far values.
    """
    fig = _new_figure((8.5, 4))
    fig.set_layout_engine("constrained")
    ax = fig.add_subplot(1, 1, 1)
    for name, c in curves.items():
        c = np.asarray(c, dtype=np.float64)
        x = np.arange(1, c.shape[1] + 1)
        line = ax.plot(x, np.nanmean(c, axis=0), lw=1.6, label=f"{name} (mean of {c.shape[0]} seeds)")[0]
        ax.fill_between(x, np.nanmin(c, axis=0), np.nanmax(c, axis=0), color=line.get_color(), alpha=0.15)
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    _legend_beside(ax)
    ax.grid(alpha=0.3)
    return _save(fig, path)
