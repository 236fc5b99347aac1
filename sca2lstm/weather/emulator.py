"""Emulated weather forecasts: observed weather turned into a forecast as skilful as a global NWP model.

Where a station has no archive of the forecasts it really had, training and the benchmark need forecasts
with a realistic error. This module degrades the observed weather of the lead days by an error model
whose size grows with lead time. For each lead day, independently:

1. **Timing shift.** With probability ``0.5 u`` the rain of the day before or after (equally likely; the
   day before at the window's end) is forecast instead of the day's own: rain a day early or late.
2. **Missed and false rain.** With probability ``u`` the day's forecast is replaced by the rain of a
   random earlier day of the same window (a draw from the recent climate): a wet day can come out dry
   (missed rain) and a dry day wet (false rain), with the station's own wet-day frequency and amounts.
3. **Amount error.** The result is multiplied by a log-normal factor ``exp(s z - s^2 / 2)``,
   ``s = 0.6 u``, ``z ~ N(0, 1)`` (mean 1, so the amounts stay unbiased).

One parameter ``u`` in [0, 1] sets all three; it is chosen per lead so that the daily precipitation of
the forecast correlates with the observed at ``LEAD_CORRELATION`` (0.88 / 0.71 / 0.51 at leads 1 / 3 / 7,
about the skill of a global NWP model's daily precipitation over mid-latitude land, e.g. ECMWF's
high-resolution forecast in its annual verification reports). The map from a target correlation to
``u`` (``_U_TABLE``) was measured on the nine CAMELS-GB sample basins (docs/weather.md); the tests
check that the correlations come out at the targets within their sampling error.

Temperature gets an additive error that grows with lead, ``TEMP_ERROR_SD`` (degC, daily mean), with an
AR(1) correlation of 0.6 from one lead day to the next (an error in the large-scale flow persists).
PET, where the window carries it, follows the forecast temperature the way Oudin PET does:
``PET_f = PET_obs (T_f + 5) / (T_obs + 5)`` (the radiation term of the day is unchanged), so a model
on Oudin or CAMELS PET sees a PET consistent with its forecast temperature.

``level`` scales the error: the forecast correlation at level ``s`` is ``1 - s (1 - rho_k)`` and the
temperature error ``s`` times its standard deviation (0: a perfect forecast; 1: NWP-like; 2: twice the
error). The benchmark's error curve varies it.

**A second kind of error, ``amount``** (:func:`degrade_amount`), for training that should not learn one
error model only: the observed rain blurred in time (a Gaussian kernel over +-3 days of width
``0.33 + 0.09 k`` days at lead k), times a mean-one log-normal factor of standard deviation
``0.38 + 0.08 k`` whose unit normal deviate is AR(1) over the lead days (0.7: a storm forecast too wet is too
wet on all its days), plus a shower (exponential, mean 2.5 mm) on a share ``0.03 + 0.01 k`` of the days.
Its parameters were set on the training years of 30 held-out large-sample basins, where its daily
precipitation correlated with the observed at 0.86 / 0.72 / 0.50 at leads 1 / 3 / 7 (the targets above:
0.88 / 0.71 / 0.51). The ``swap`` kind errs mostly by timing and replacement, with small amount errors; this
one errs mostly by amounts, and at the same correlation it cost a model trained on ``swap`` alone far more
skill (docs/experiments.md, "Forecast errors of two kinds in training"). ``level`` scales its kernel width,
its log-normal standard deviation and its shower share.

An ensemble (:func:`emulate_ensemble`) shares part of the error between its members, as a real one
does: a central forecast is emulated from the observed at correlation ``sqrt(rho)``, then each member
from the central one at ``sqrt(rho)`` again, so every member (and a control drawn the same way) has the
skill ``rho`` of a single forecast, and the observed weather is statistically one more member.
"""

from __future__ import annotations

import numpy as np

#: Target correlation of daily forecast and observed precipitation by lead day (1-based). Leads 2, 4-6:
#: interpolated; beyond 7 the skill keeps falling by 0.04 a day down to 0.2.
LEAD_CORRELATION = {1: 0.88, 2: 0.795, 3: 0.71, 4: 0.66, 5: 0.61, 6: 0.56, 7: 0.51}
#: Standard deviation of the daily mean temperature error (degC) by lead day.
TEMP_ERROR_SD = {1: 0.9, 2: 1.1, 3: 1.3, 4: 1.5, 5: 1.7, 6: 1.9, 7: 2.1}
TEMP_ERROR_AR = 0.6
SHIFT_SHARE = 0.5      # timing-shift probability per unit of u
SIGMA_PER_U = 0.6      # log-normal amount error per unit of u
#: Error kinds of :func:`emulate`: ``swap`` (timing shifts, replaced days, small amount errors) and ``amount``.
KINDS = ("swap", "amount")
#: The ``amount`` kind at lead k: kernel width (days), log-normal sd, shower share: a + b k each.
BLUR_DAYS, AMOUNT_SD, SHOWER_SHARE = (0.33, 0.09), (0.38, 0.08), (0.03, 0.01)
AMOUNT_AR, SHOWER_MM = 0.7, 2.5

# Correlation reached by the error model at each u, measured on the nine CAMELS-GB sample basins
# (1970-2015, 120-day windows; docs/weather.md). Monotone: inverted by interpolation.
# Mean over the basins of each basin's correlation, every day of 1970-2015 an issue day, seed 0.
_U_TABLE = np.array([0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5,
                     0.6, 0.7, 0.8, 1.0])
_RHO_TABLE = np.array([1.0, 0.964, 0.932, 0.903, 0.864, 0.839, 0.800, 0.732, 0.668, 0.616, 0.547, 0.501,
                       0.443, 0.392, 0.301, 0.207, 0.132, 0.008])


def lead_correlation(lead: int, level: float = 1.0) -> float:
    """Target precipitation correlation at ``lead`` (>= 1 day) for error ``level`` (1: NWP-like)."""
    lead = int(lead)
    if lead < 1:
        raise ValueError(f"lead {lead}: expected >= 1")
    rho = LEAD_CORRELATION.get(lead, max(0.2, LEAD_CORRELATION[7] - 0.04 * (lead - 7)))
    return float(np.clip(1.0 - level * (1.0 - rho), 0.0, 1.0))


def temperature_sd(lead: int, level: float = 1.0) -> float:
    """Standard deviation (degC) of the temperature error at ``lead`` for error ``level``."""
    lead = int(lead)
    return float(level * TEMP_ERROR_SD.get(lead, TEMP_ERROR_SD[7] + 0.2 * (lead - 7)))


def u_for_correlation(rho) -> np.ndarray:
    """The error parameter u that gives precipitation correlation ``rho`` (array_like in [0, 1])."""
    r = np.clip(np.asarray(rho, dtype=np.float64), 0.0, 1.0)
    return np.interp(-r, -_RHO_TABLE, _U_TABLE)


def degrade_precipitation(p: np.ndarray, pos, leads: int, u, rng: np.random.Generator) -> np.ndarray:
    """Forecast precipitation of the ``leads`` days after each issue position, from the observed.

    Parameters
    ----------
    p : numpy.ndarray [B, L]
        Precipitation (mm/d) of each window, NaN where missing; the days after ``pos`` hold the observed
        (or, for an ensemble member, the central forecast's) values to degrade.
    pos : int or numpy.ndarray [B]
        Issue position in each window; ``pos + leads < L``.
    leads : int
    u : float or numpy.ndarray [leads]
        Error parameter per lead (:func:`u_for_correlation`).
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray [B, leads]
        Forecast precipitation (>= 0; NaN where the observed day is missing).
    """
    p = np.asarray(p, dtype=np.float64)
    B, L = p.shape
    pos = np.broadcast_to(np.asarray(pos, dtype=np.int64), (B,))
    u = np.broadcast_to(np.asarray(u, dtype=np.float64), (leads,))[None, :]
    k = np.arange(1, leads + 1)[None, :]
    day = pos[:, None] + k                                     # [B, leads] the lead days' positions
    rows = np.arange(B)[:, None]
    # 1. timing: the day before or after (the day before where the window ends).
    shift = rng.random((B, leads)) < SHIFT_SHARE * u
    step = np.where(rng.random((B, leads)) < 0.5, -1, 1)
    step = np.where(day + 1 >= L, -1, step)
    src = np.where(shift, day + step, day)
    out = p[rows, src]
    out = np.where(np.isnan(out), p[rows, day], out)           # a missing neighbour: keep the day's own
    # 2. missed and false rain: a random earlier day of the window (finite values only).
    replace = rng.random((B, leads)) < u
    if replace.any():
        hist = np.isfinite(p) & (np.arange(L)[None, :] <= pos[:, None])
        n_hist = hist.sum(axis=1)
        order = np.argsort(~hist, axis=1, kind="stable")       # finite history days first
        pick = (rng.random((B, leads)) * np.maximum(n_hist, 1)[:, None]).astype(np.int64)
        draw = p[rows, order[rows, pick]]
        ok = replace & (n_hist > 0)[:, None]
        out = np.where(ok, draw, out)
    # 3. amount: a mean-one log-normal factor.
    s = SIGMA_PER_U * u
    out = out * np.exp(s * rng.standard_normal((B, leads)) - 0.5 * s * s)
    return np.where(np.isnan(p[rows, day]), np.nan, np.maximum(out, 0.0))


def degrade_amount(p: np.ndarray, pos, leads: int, rng: np.random.Generator, level: float = 1.0) -> np.ndarray:
    """The ``amount`` kind of forecast precipitation (module docstring), arguments as :func:`degrade_precipitation`.

    The blur uses the days of the window only (its weights renormalised where a day is missing or past
    the window's end). Returns [B, leads] (>= 0; NaN where the observed day is missing).
    """
    p = np.asarray(p, dtype=np.float64)
    B, L = p.shape
    pos = np.broadcast_to(np.asarray(pos, dtype=np.int64), (B,))
    rows = np.arange(B)[:, None]
    js = np.arange(-3, 4)
    out = np.empty((B, leads))
    eps = np.zeros(B)
    for k in range(1, leads + 1):
        day = pos + k
        idx = day[:, None] + js[None, :]
        inside = (idx >= 0) & (idx < L)
        pv = np.where(inside, p[rows, np.clip(idx, 0, L - 1)], np.nan)
        width = max(level * (BLUR_DAYS[0] + BLUR_DAYS[1] * k), 1e-3)
        w = np.where(np.isfinite(pv), np.exp(-0.5 * (js / width) ** 2)[None, :], 0.0)
        blurred = np.nansum(pv * w, axis=1) / np.maximum(w.sum(axis=1), 1e-12)
        z = rng.standard_normal(B)
        eps = z if k == 1 else AMOUNT_AR * eps + np.sqrt(1.0 - AMOUNT_AR ** 2) * z  # unit variance at every lead
        s = level * (AMOUNT_SD[0] + AMOUNT_SD[1] * k)
        shower = rng.random(B) < level * (SHOWER_SHARE[0] + SHOWER_SHARE[1] * k)
        fc = blurred * np.exp(s * eps - 0.5 * s * s) + shower * rng.exponential(SHOWER_MM, B)
        out[:, k - 1] = np.where(np.isnan(p[np.arange(B), day]), np.nan, np.maximum(fc, 0.0))
    return out


def degrade_temperature(t_lead: np.ndarray, sd, rng: np.random.Generator) -> np.ndarray:
    """Add an AR(1) error over the lead days: ``t_lead`` [B, leads] degC, ``sd`` [leads] degC."""
    t_lead = np.asarray(t_lead, dtype=np.float64)
    B, leads = t_lead.shape
    sd = np.broadcast_to(np.asarray(sd, dtype=np.float64), (leads,))
    z = rng.standard_normal((B, leads))
    e = np.empty_like(z)
    e[:, 0] = z[:, 0]
    a = TEMP_ERROR_AR
    for j in range(1, leads):  # unit-variance AR(1) across the lead days
        e[:, j] = a * e[:, j - 1] + np.sqrt(1.0 - a * a) * z[:, j]
    return t_lead + e * sd[None, :]


def follow_pet(pet_lead: np.ndarray, t_obs: np.ndarray, t_fc: np.ndarray) -> np.ndarray:
    """PET of the forecast temperature, as Oudin PET scales: ``PET (T_f + 5) / (T_obs + 5)``.

    Where ``T_obs + 5 <= 0`` (Oudin PET is 0 there) the observed PET is kept. Arrays [B, leads].
    """
    t_obs = np.asarray(t_obs, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.maximum(np.asarray(t_fc, dtype=np.float64) + 5.0, 0.0) / (t_obs + 5.0)
    return np.where(t_obs + 5.0 > 0.0, np.asarray(pet_lead, dtype=np.float64) * ratio, pet_lead)


def emulate(weather: dict, pos, leads: int, rng: np.random.Generator, level: float = 1.0,
            correlation=None, temp_sd=None, kind: str = "swap") -> dict:
    """An emulated forecast of the lead days of each window.

    Parameters
    ----------
    weather : dict of name -> numpy.ndarray [B, L]
        Observed daily weather of the windows: ``precipitation`` (mm/d) and, if present, ``temperature``
        (degC) and a PET column (``pet`` or ``peti``, mm/d); other names are left as observed.
    pos : int or numpy.ndarray [B]
        Issue position of each window.
    leads : int
    rng : numpy.random.Generator
    level : float
        Error level (1: NWP-like, 0: perfect).
    correlation, temp_sd : array_like [leads], optional
        Override the per-lead precipitation correlation and temperature error (used by the ensemble).
    kind : {"swap", "amount"}
        The precipitation's error model (module docstring); temperature and PET err alike for both.

    Returns
    -------
    dict of name -> numpy.ndarray [B, leads]
        The forecast of the lead days, one array per name of ``weather``.
    """
    pos_b = np.broadcast_to(np.asarray(pos, dtype=np.int64), (next(iter(weather.values())).shape[0],))
    B = pos_b.shape[0]
    day = pos_b[:, None] + np.arange(1, leads + 1)[None, :]
    rows = np.arange(B)[:, None]
    if correlation is None:
        correlation = [lead_correlation(k, level) for k in range(1, leads + 1)]
    if temp_sd is None:
        temp_sd = [temperature_sd(k, level) for k in range(1, leads + 1)]
    out = {name: np.asarray(a, dtype=np.float64)[rows, day] for name, a in weather.items()}
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}; expected one of {KINDS}")
    if "precipitation" in weather and kind == "amount":
        out["precipitation"] = degrade_amount(weather["precipitation"], pos_b, leads, rng, level)
    elif "precipitation" in weather:
        out["precipitation"] = degrade_precipitation(weather["precipitation"], pos_b, leads,
                                                     u_for_correlation(correlation), rng)
    if "temperature" in weather:
        t_obs = out["temperature"]
        out["temperature"] = degrade_temperature(t_obs, temp_sd, rng)
        for pet in ("pet", "peti"):
            if pet in out:
                out[pet] = follow_pet(out[pet], t_obs, out["temperature"])
    return out


def emulate_ensemble(weather: dict, pos, leads: int, rng: np.random.Generator, members: int = 20,
                     level: float = 1.0) -> list[dict]:
    """``members`` emulated members sharing a central error (module docstring); each as :func:`emulate`."""
    rho = np.array([lead_correlation(k, level) for k in range(1, leads + 1)])
    sd = np.array([temperature_sd(k, level) for k in range(1, leads + 1)])
    rho_half, sd_half = np.sqrt(rho), sd / np.sqrt(2.0)
    central = emulate(weather, pos, leads, rng, correlation=rho_half, temp_sd=sd_half)
    pos_b = np.broadcast_to(np.asarray(pos, dtype=np.int64), (central["precipitation"].shape[0],)
                            if "precipitation" in central else (next(iter(central.values())).shape[0],))
    day = pos_b[:, None] + np.arange(1, leads + 1)[None, :]
    rows = np.arange(len(pos_b))[:, None]
    base = {}
    for name, a in weather.items():  # the windows with the central forecast in place of the lead days
        b = np.array(a, dtype=np.float64, copy=True)
        b[rows, day] = central[name]
        base[name] = b
    return [emulate(base, pos_b, leads, rng, correlation=rho_half, temp_sd=sd_half) for _ in range(members)]


def emulate_series(series: dict, issue_idx, leads: int, rng: np.random.Generator, history: int = 120,
                   level: float = 1.0, members: int | None = None, kind: str = "swap"):
    """Emulated forecasts issued on days ``issue_idx`` of whole series (name -> [T]).

    Returns a dict name -> [n, leads] (or, with ``members``, a list of them), lead k of row i valid on
    day ``issue_idx[i] + k``. Each forecast sees the ``history`` days up to its issue day (its climate).
    """
    issue_idx = np.asarray(issue_idx, dtype=np.int64)
    T = len(next(iter(series.values())))
    if issue_idx.min() < history - 1 or issue_idx.max() + leads >= T + 0:
        raise ValueError("issue days need `history` days before and `leads` days after them in the series")
    idx = issue_idx[:, None] - (history - 1) + np.arange(history + leads)[None, :]
    win = {n: np.asarray(a, dtype=np.float64)[idx] for n, a in series.items()}
    if members is None:
        return emulate(win, history - 1, leads, rng, level=level, kind=kind)
    return emulate_ensemble(win, history - 1, leads, rng, members=members, level=level)
