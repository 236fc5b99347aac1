"""A forecast's warnings: which level each lead day warns on, and how a station's warning changed since
the last issue (what a duty officer is alerted to).

A level warns at a lead when P(Q > level) (:func:`sca2lstm.evaluation.exceedance.exceedance_probability`,
from the forecast's quantiles) reaches the level's warning probability. A lead's warning is the highest
level (by flow) that warns there; a station's warning is the highest over its leads. Between two issues,
a warning **starts** (none before), **rises** (a higher level than before), **falls** (a lower one) or
**ends** (none now).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CHANGES = ("start", "rise", "fall", "end")


def lead_warnings(table: pd.DataFrame, levels: dict) -> tuple[dict, list]:
    """P(Q > level) per lead for each level, and each lead's highest warned level.

    Parameters
    ----------
    table : pandas.DataFrame
        A forecast [leads rows] with ``p_exceed_<level>`` and ``warn_<level>`` columns
        (:func:`sca2lstm.evaluation.reforecast.add_exceedance`).
    levels : dict
        name -> :class:`sca2lstm.evaluation.levels.Level` (``value`` m3/s).

    Returns
    -------
    (dict, list)
        ``name -> ndarray [leads]`` of probabilities (NaN where the forecast has none), and ``[leads]``
        of the highest level warned at each lead (None where none).
    """
    probs = {name: table[f"p_exceed_{name}"].to_numpy(np.float64) for name in levels}
    highest: list = [None] * len(table)
    for name in sorted(levels, key=lambda n: float(levels[n].value)):  # ascending: the last hit wins
        for i in np.flatnonzero(table[f"warn_{name}"].to_numpy(bool)):
            highest[i] = name
    return probs, highest


def station_warning(highest: list, values: dict) -> tuple[str | None, int]:
    """The highest level warned over all leads and the first lead (1-based) it warns at; (None, 0).

    ``highest``: [leads] of :func:`lead_warnings`; ``values``: level name -> flow (m3/s)."""
    named = [(float(values[n]), i) for i, n in enumerate(highest) if n is not None and n in values]
    if not named:
        return None, 0
    top = max(v for v, _ in named)
    first = min(i for v, i in named if v == top)
    return highest[first], first + 1


def warning_change(previous: str | None, current: str | None, values: dict) -> str | None:
    """How a station's warning changed from ``previous`` to ``current``: one of :data:`CHANGES`, or None.

    ``values``: level name -> flow (m3/s). A previous level no longer defined counts as lower than any.
    """
    if previous == current:
        return None
    if previous is None:
        return "start"
    if current is None:
        return "end"
    before = float(values[previous]) if previous in values else -np.inf
    return "rise" if float(values[current]) > before else "fall"
