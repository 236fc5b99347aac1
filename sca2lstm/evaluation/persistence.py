"""Never worse than persistence: a per-basin blend of the model with persistence, fitted on validation days.

The blended forecast of a basin ``b`` at lead ``L`` is

    blend(t) = a_b * model(t) + (1 - a_b) * obs(t - L)   where obs(t - L) is known,
    blend(t) = model(t)                                   where it is not,

with ``a_b`` in [0, 1] the least-squares weight on the basin's validation days (closed form below).
``a_b = 0`` is persistence itself and ``a_b = 1`` the raw model, so on the days it was fitted on the
blend's squared error is never above either of them. Because ``a + (1 - a) = 1``, the blend commutes
with the per-basin affine discharge scaling: the same ``a_b`` comes out of scaled or m3/s values.

Everything works along the last axis (time) and is vectorised over any leading axes (basins), like
:mod:`sca2lstm.evaluation.metrics`: a ``[B, T]`` input gives ``[B]`` results, a 1-D input floats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .metrics import skill_vs_persistence, valid_mask

__all__ = ["BlendFit", "apply_blend", "basin_alpha", "fit_blend", "fit_forecasts", "scaled_triplet",
           "skill_vs_persistence", "summary_line"]


@dataclass
class BlendFit:
    """Result of :func:`fit_blend`, one value per basin (floats for 1-D input, ``[B]`` arrays for 2-D).

    Attributes
    ----------
    alpha : float or ndarray
        Weight of the model in [0, 1]; 1 where there was nothing to fit on (no valid day, or the model
        equal to persistence on every valid day).
    n_days : int or ndarray
        Days where observation, model and persistence were all finite.
    skill_model, skill_blend : float or ndarray
        ``1 - MSE / MSE_persistence`` of the raw model and of the blend on those days (NaN when
        persistence has no error there or there are fewer than two days).
    """

    alpha: float | np.ndarray
    n_days: int | np.ndarray
    skill_model: float | np.ndarray
    skill_blend: float | np.ndarray

    def as_dict(self) -> dict:
        """Plain floats/ints for JSON and ``weights_only`` checkpoints (1-D fits only)."""
        return {"alpha": float(self.alpha), "n_days": int(self.n_days),
                "skill_model": float(self.skill_model), "skill_blend": float(self.skill_blend)}


def _out(x):
    x = np.asarray(x)
    return x.item() if x.ndim == 0 else x


def _triplet(obs, model, pers):
    obs, model, pers = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (obs, model, pers)))
    mask = valid_mask(obs, model, pers)
    z = [np.where(mask, a, 0.0) for a in (obs, model, pers)]
    return (*z, mask)


def fit_blend(obs, model, pers) -> BlendFit:
    """Least-squares weight of the model in the blend with persistence, clipped to [0, 1].

    With ``d = model - pers`` and ``r = obs - pers`` on the valid days, the squared error of
    ``pers + a * d`` is minimal at ``a = sum(d * r) / sum(d ** 2)``; the error is a parabola in ``a``,
    so clipping to [0, 1] gives the minimum over [0, 1].

    Parameters
    ----------
    obs, model, pers : array_like, shape [..., T]
        Observed discharge, the raw model forecast and persistence on the fitting days (scaled or
        m3/s, the same units for all three); non-finite days are left out.

    Returns
    -------
    BlendFit
        ``alpha`` etc. per leading index.
    """
    o, m, p, mask = _triplet(obs, model, pers)
    d, r = m - p, o - p
    num, den = (d * r).sum(axis=-1), np.square(d).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.clip(num / den, 0.0, 1.0)
    alpha = np.where(den > 0, a, 1.0)  # model == persistence on every valid day (or no day): keep it
    blend = apply_blend(np.where(mask, m, np.nan), np.where(mask, p, np.nan), alpha)
    obs_v = np.where(mask, o, np.nan)
    return BlendFit(_out(alpha), _out(mask.sum(axis=-1)), skill_vs_persistence(obs_v, m, p),
                    skill_vs_persistence(obs_v, blend, p))


def apply_blend(model, pers, alpha):
    """``alpha * model + (1 - alpha) * pers`` where ``pers`` is finite, ``model`` elsewhere.

    Parameters
    ----------
    model, pers : array_like, shape [..., T]
    alpha : float or array_like, shape [...]
        One weight per leading index (per basin).

    Returns
    -------
    ndarray [..., T], float64
    """
    model = np.asarray(model, dtype=np.float64)
    pers = np.asarray(pers, dtype=np.float64)
    a = np.asarray(alpha, dtype=np.float64)[..., None]
    return np.where(np.isfinite(pers), a * model + (1.0 - a) * pers, model)


def scaled_triplet(data, fc, lead_days: int):
    """Scaled (obs, model, persistence) of one :class:`~sca2lstm.evaluation.forecast.Forecast`.

    Parameters
    ----------
    data : SequenceData
        The sequences the forecast was made from (``data.y`` is the scaled, padded discharge).
    fc : Forecast
    lead_days : int

    Returns
    -------
    tuple of three float64 arrays [i1 - i0]
    """
    b = data.basins.index(fc.basin)
    o = data.offsets[b]
    obs = data.y[o + fc.i0:o + fc.i1].astype(np.float64)
    pers = data.y[o + fc.i0 - lead_days:o + fc.i1 - lead_days].astype(np.float64)
    return obs, fc.pred.astype(np.float64), pers


def fit_forecasts(data, forecasts, lead_days: int) -> dict:
    """Fit one blend weight per forecast basin, all basins in one vectorised call.

    Parameters
    ----------
    data : SequenceData
    forecasts : list of Forecast
        Forecasts of the fitting days (the validation period), one per basin.
    lead_days : int

    Returns
    -------
    dict
        ``basin -> BlendFit`` with plain float/int fields.
    """
    if not forecasts:
        return {}
    trip = [scaled_triplet(data, fc, lead_days) for fc in forecasts]
    t = max(len(x[0]) for x in trip)
    stack = np.full((3, len(trip), t), np.nan)  # padded with NaN: left out like any missing day
    for j, x in enumerate(trip):
        stack[:, j, :len(x[0])] = x
    fit = fit_blend(*stack)
    fields = [np.atleast_1d(v) for v in (fit.alpha, fit.n_days, fit.skill_model, fit.skill_blend)]
    return {fc.basin: BlendFit(float(fields[0][j]), int(fields[1][j]), float(fields[2][j]), float(fields[3][j]))
            for j, fc in enumerate(forecasts)}


def summary_line(fits: dict) -> str:
    """One log line: basins below persistence before/after the blend and the spread of the weights."""
    if not fits:
        return "persistence blend: no basin to fit"
    alphas = np.array([f.alpha for f in fits.values()])
    raw = [b for b, f in fits.items() if f.skill_model < 0]
    blended = [b for b, f in fits.items() if f.skill_blend < 0]
    return (f"persistence blend fitted on validation days: alpha median {np.median(alphas):.3f} "
            f"(min {alphas.min():.3f}); basins below persistence there: raw model {len(raw)}"
            f"{' (' + ', '.join(raw[:10]) + ')' if raw else ''}, blended {len(blended)}")


def basin_alpha(model, cfg, ckpt: dict, data, rec, device="cpu", val_period=None) -> tuple[float | None, str]:
    """The blend weight prediction applies to ``rec.basin``, and where it came from.

    - ``model.persistence_blend`` false (also every checkpoint written before the key existed):
      ``None``, the raw model.
    - the checkpoint stores a weight for the basin: that weight.
    - otherwise (a basin new to the model): fitted on the basin's configured validation period (never
      its test days) when it has at least two observed days there, else 1 (the raw model).

    Parameters
    ----------
    model : torch.nn.Module
    cfg : Config
        The checkpoint's config.
    ckpt : dict
        The loaded checkpoint (its ``persistence_blend`` is ``{basin: alpha}``).
    data : SequenceData
        Holding ``rec`` (one basin), scaled with the scalers in use.
    rec : BasinRecord
    val_period : (i0, i1), optional
        The basin's own validation days (a station whose periods do not follow the configured ones);
        default: the configured validation period.

    Returns
    -------
    (alpha or None, source) : the weight and a short phrase for the log and metrics.json.
    """
    from .forecast import forecast_periods

    if not cfg.model.persistence_blend:
        return None, "off (model.persistence_blend is false in the checkpoint's config)"
    stored = (ckpt or {}).get("persistence_blend") or {}
    if rec.basin in stored:
        return float(stored[rec.basin]), "stored in the checkpoint"
    d = cfg.data
    v0, v1 = val_period if val_period is not None else rec.period(d.val_start, d.val_end)
    if v1 - v0 < 2 or np.isfinite(rec.y[v0:v1]).sum() < 2:
        return 1.0, "raw model (fewer than two observed days in the validation period)"
    span = f"{rec.dates[v0]}..{rec.dates[v1 - 1]}"
    b = data.basins.index(rec.basin)
    fc = forecast_periods(model, data, [(v0, v1)], cfg.training.seq_len, cfg.training.spinup, device,
                          basin_indices=[b])[0]
    fit = fit_forecasts(data, [fc], d.lead_days)[rec.basin]
    if fit.n_days < 2:
        return 1.0, f"raw model (fewer than two scorable days in the validation period {span})"
    return fit.alpha, f"fitted on the validation period {span} ({fit.n_days} days)"
