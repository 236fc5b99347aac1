"""Forecasts from weather-forecast archives through the product's own reforecast path, per lead.

The checks of this project score the model through archives made by an error model it never saw. This
benchmark does the same on the large sample's held-out basins: per basin it writes an **emulated** archive
(``issue_date, lead_days, valid_date, precipitation, temperature``; no PET, so the model derives its own)
with one of the error models below, runs ``sca2lstm forecast --from --to --weather_forecast ARCHIVE``
in-process (stored calibration, blend, spread, recession bound: what a user gets), and scores the
``reforecast.csv`` with :func:`sca2lstm.evaluation.verify.verify`: NSE beside persistence (its median over
basins with a 90 % basin-bootstrap interval), CRPS, 90 %
coverage and the share below q05, per lead, with the precipitation correlation the archive reached.

Error models (every archive is emulated; none is a real weather forecast):

* ``emulator``: :mod:`sca2lstm.weather.emulator`'s ``swap`` kind, the one the calibration's ``forecast``
  spread was fitted on;
* ``amount``: the emulator's other kind (``kind="amount"``: timing blur, amount errors that persist over a
  storm's days, showers; same temperature error). The model of ``training.forecast_emulator: [swap]`` never
  saw it in training; one with ``[swap, amount]`` did, so its figures on it are in-family;
* ``wet``: the ``swap`` kind with every amount :data:`WET_BIAS` times too large: a station where the weather
  model is too wet throughout (as coarse models can be over hills). No training run sees a biased forecast;
  it is the case that ``bench/archive_finetune.py`` uses to show what fine-tuning on an archive learns;
* ``perfect``: the observed weather as an archive (checks the path: it should match ``bench/weather.py``'s
  ``perfect`` setting).

**Generic error models** (``blend``, ``lognormal``, ``shift``), written without :mod:`sca2lstm.weather.emulator`,
as an outside checker would write them. Each has one parameter ``u_k`` per lead k (0: the observed weather),
solved per basin by bisection so that the daily precipitation correlates with the observed at
:data:`TARGET_CORRELATION` (0.88 / 0.71 / 0.51 at leads 1 / 3 / 7, linear between, 0.51 beyond): the solve runs
the kind's own formula, with draws fixed across the steps, on the basin's **training years** only (every
training day a valid day), so no scored day sets it; the scored archives then report the correlation they
reached. ``P_obs`` is the observed rain of the valid day, a *wet* day has ``P_obs >= WET_MM`` (1 mm), and
*climate draws* are days of the same calendar month from the basin's training years.

* ``blend``: ``P_fc = (1 - u_k) P_obs + u_k P_clim``, ``P_clim`` the rain of a climate draw. The forecast
  keeps the observed amount's share and fills the rest with climate: peaks damped, dry days given drizzle,
  as a smoothed or ensemble-mean forecast does.
* ``lognormal``: ``P_fc = P_obs exp(s_k z - s_k^2 / 2)``, ``z ~ N(0, 1)`` per day (mean-one amount error),
  ``s_k = u_k``; then, with probability ``f_k = min(LOGNORMAL_FLIP u_k, 1)``, a wet day is set to 0 (missed
  rain) and a dry day gets the rain of a wet climate draw (false rain): the amount, hit and false-alarm
  errors of a categorical verification of a real forecast.
* ``shift``: the observed weather (rain and temperature) of the day ``d`` days off the valid day,
  ``d = +-1`` (equally likely) with probability ``q_k = min(u_k, 1)``, else 0, drawn per issue date and lead,
  times a mean-one log-normal amount error of ``s_k = SHIFT_SD u_k``: a front forecast a day early or late.

* ``consistent``: ``lognormal`` whose draws (amount, missed and false rain) are shared between the runs of one valid
  day: each run's normal deviates correlate at :data:`RUN_CORRELATION` with those of every other run of that day
  (uniforms through the normal distribution), as consecutive runs of a real model mostly keep their error for a
  day. The other kinds draw every run's error afresh, so a day's runs of consecutive issue dates err
  independently: their consensus is better than any one of them, which for real forecasts it is much less.

All four add independent Gaussian noise of standard deviation :data:`TEMP_NOISE_SD` (1 degC at lead 1 to
3 degC at lead 7, linear; 3 beyond) to the observed (for ``shift``, the shifted) temperature. The archive's
``precipitation`` is never negative; a day whose observed rain is missing has no row. On 29 held-out
large-sample basins the solve gave u = 0.35 / 0.50 / 0.63 at leads 1 / 3 / 7 for ``blend`` (what
``rho = (1 - u) / sqrt((1 - u)^2 + u^2)`` gives for a climate independent of the day), 0.17 / 0.38 / 0.64 for
``lognormal`` and 0.16 / 0.37 / 0.61 for ``shift`` (medians over the basins).

``--weather_lags none auto`` scores each archive twice, each day's run as given and combined with the same day's runs
of the archive's earlier issue dates (``forecast --weather_lags``, sca2lstm/weather/lagged.py; its default ``auto``).
The combination needs the runs of consecutive issue dates: give ``--stride 1`` (every day an issue date) and
``--history_stride 1`` (the training years' runs, written ahead of the scored ones, every day too); with the
default stride 3 a day's earlier runs are not in the archive and ``auto`` leaves it as given.

Example (4-5 min for 30 basins and two error models, one thread)::

    PYTHONPATH=. python bench/archives.py --model LARGE/model/sca2lstm.pth \\
        --data_dir ../shared/data/camels_gb_large --basins LARGE/holdout.json --max_basins 30
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from sca2lstm.checkpoint import load_model  # noqa: E402
from sca2lstm.cli.main import main as cli  # noqa: E402
from sca2lstm.data.dataset import load_basin  # noqa: E402
from sca2lstm.evaluation.verify import read_levels, read_reforecast, verify  # noqa: E402
from sca2lstm.weather.emulator import emulate_series  # noqa: E402
from weather import add_basin_args, nse_interval, resolve_basins  # noqa: E402  (bench/weather.py)

#: The generic error models (module docstring), made without the emulator.
GENERIC = ("blend", "lognormal", "shift", "consistent")
ERRORS = ("emulator", "amount", "wet", "perfect", *GENERIC)
#: The ``wet`` archive's precipitation factor.
WET_BIAS = 1.3
#: The generic kinds' target correlation of daily forecast and observed rain at these leads.
TARGET_CORRELATION = {1: 0.88, 3: 0.71, 7: 0.51}
#: Standard deviation (degC) of the generic kinds' temperature noise at leads 1 and 7.
TEMP_NOISE_SD = {1: 1.0, 7: 3.0}
WET_MM = 1.0           # a wet day's least rain (mm), the usual threshold of wet-day statistics
LOGNORMAL_FLIP = 0.4   # missed / false rain probability per unit of u (lognormal kind)
SHIFT_SD = 0.5         # log-normal amount error per unit of u (shift kind): timing errs most there
#: The largest u each generic kind's solve tries (blend: pure climate; lognormal: every day flipped).
U_MAX = {"blend": 1.0, "lognormal": 2.5, "shift": 1.0, "consistent": 2.5}
#: ``consistent``: correlation of the error draws of two runs of the same valid day.
RUN_CORRELATION = 0.7


def target_correlation(leads: int) -> np.ndarray:
    """The generic kinds' target precipitation correlation at leads 1..``leads``."""
    return np.interp(np.arange(1, leads + 1), list(TARGET_CORRELATION), list(TARGET_CORRELATION.values()))


def temperature_noise_sd(leads: int) -> np.ndarray:
    """Standard deviation (degC) of the generic kinds' temperature noise at leads 1..``leads``."""
    return np.interp(np.arange(1, leads + 1), list(TEMP_NOISE_SD), list(TEMP_NOISE_SD.values()))


def month_sampler(p: np.ndarray, months: np.ndarray, days: np.ndarray, wet: bool = False):
    """Climate draws from ``days`` (the training years; finite rain, and >= WET_MM with ``wet``) by calendar
    month: a function of (months [any shape], uniforms [same shape]) -> series positions. A month with no
    such day draws from all of them."""
    days = days[np.isfinite(p[days])]
    if wet:
        days = days[p[days] >= WET_MM]
    if len(days) == 0:
        raise ValueError(f"no {'wet ' if wet else ''}training day with rain observed to draw a climate from")
    order = days[np.argsort(months[days], kind="stable")]
    counts = np.bincount(months[order], minlength=12)
    starts = np.where(counts > 0, np.cumsum(counts) - counts, 0)
    counts = np.where(counts > 0, counts, len(order))
    return lambda m, v: order[starts[m] + np.minimum((v * counts[m]).astype(np.int64), counts[m] - 1)]


def generic_precipitation(kind: str, p: np.ndarray, months: np.ndarray, day: np.ndarray, u: np.ndarray,
                          draws: dict, climate, wet_climate) -> tuple[np.ndarray, np.ndarray]:
    """Forecast rain of the valid days ``day`` by generic error model ``kind`` (module docstring).

    Parameters
    ----------
    kind : {"blend", "lognormal", "shift"}
    p, months : numpy.ndarray [T]
        Observed rain (mm/d, NaN where missing) and calendar month (0-11) of the whole series.
    day : numpy.ndarray [n, leads] of int
        Valid days' positions.
    u : numpy.ndarray, broadcastable to ``day``
        The kind's parameter per lead.
    draws : dict of name -> numpy.ndarray [n, leads]
        ``z`` standard normal, ``v1``, ``v2``, ``v3`` uniform (fixed, so a solve over ``u`` is smooth).
    climate, wet_climate
        :func:`month_sampler` of the training days, all and wet.

    Returns
    -------
    precipitation, source : numpy.ndarray [n, leads]
        The forecast (>= 0, NaN where the observed is missing) and the day whose weather it took
        (``day`` except for ``shift``).
    """
    obs, src = p[day], day
    if kind == "consistent":   # lognormal's formula; its draws are shared between runs (_run_draws)
        kind = "lognormal"
    if kind == "blend":
        fc = (1.0 - u) * obs + u * p[climate(months[day], draws["v1"])]
    elif kind == "lognormal":
        s, flip = u, draws["v2"] < np.minimum(LOGNORMAL_FLIP * u, 1.0)
        fc = obs * np.exp(s * draws["z"] - 0.5 * s * s)
        fc = np.where(flip, np.where(obs >= WET_MM, 0.0, p[wet_climate(months[day], draws["v1"])]), fc)
    elif kind == "shift":
        d = np.where(draws["v2"] < np.minimum(u, 1.0), np.where(draws["v3"] < 0.5, -1, 1), 0)
        src = np.clip(day + d, 0, len(p) - 1)
        src = np.where(np.isfinite(p[src]), src, day)          # a missing neighbour: the day's own
        s = SHIFT_SD * u
        fc = p[src] * np.exp(s * draws["z"] - 0.5 * s * s)
    else:
        raise ValueError(f"error model {kind!r}; expected one of {GENERIC}")
    return np.where(np.isnan(obs), np.nan, np.maximum(fc, 0.0)), src


def _draws(rng: np.random.Generator, shape) -> dict:
    return {"z": rng.standard_normal(shape), "v1": rng.random(shape), "v2": rng.random(shape), "v3": rng.random(shape)}


def _run_draws(rng: np.random.Generator, day: np.ndarray, days: int) -> dict:
    """:func:`_draws` whose deviates of the runs of one valid day (``day`` [n, leads], positions < ``days``) correlate
    at :data:`RUN_CORRELATION`: a part shared by the day and a part of the run's own."""
    from scipy.stats import norm

    a, b = np.sqrt(RUN_CORRELATION), np.sqrt(1.0 - RUN_CORRELATION)
    shared = rng.standard_normal((days, 3))
    z = {n: a * shared[day, i] + b * rng.standard_normal(day.shape) for i, n in enumerate(("z", "v1", "v2"))}
    return {"z": z["z"], "v1": norm.cdf(z["v1"]), "v2": norm.cdf(z["v2"]), "v3": rng.random(day.shape)}


def _column_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column of ``a`` and ``b`` [n, k] (finite rows of both only)."""
    ok = np.isfinite(a) & np.isfinite(b)
    n = ok.sum(axis=0)
    a, b = np.where(ok, a, 0.0), np.where(ok, b, 0.0)
    ma, mb = a.sum(axis=0) / n, b.sum(axis=0) / n
    da, db = np.where(ok, a - ma, 0.0), np.where(ok, b - mb, 0.0)
    return (da * db).sum(axis=0) / np.sqrt((da * da).sum(axis=0) * (db * db).sum(axis=0))


def solve_parameter(kind: str, p: np.ndarray, months: np.ndarray, train: np.ndarray, target: np.ndarray,
                    rng: np.random.Generator, climate, wet_climate, steps: int = 30) -> np.ndarray:
    """The u per lead whose forecasts of the training days ``train`` correlate with the observed at
    ``target`` [leads] (bisection; the draws are fixed across the steps). A target the kind cannot reach
    gives ``U_MAX``."""
    day = train[(train >= 1) & (train < len(p) - 1) & np.isfinite(p[train])][:, None]
    draws = _draws(rng, day.shape)
    lo, hi = np.zeros(len(target)), np.full(len(target), U_MAX[kind])
    day = np.broadcast_to(day, (day.shape[0], len(target)))
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        fc, _ = generic_precipitation(kind, p, months, day, mid[None, :], draws, climate, wet_climate)
        good = _column_correlation(p[day], fc) > target   # still too good: more error
        lo, hi = np.where(good, mid, lo), np.where(good, hi, mid)
    return 0.5 * (lo + hi)


def make_archive(kind: str, dates, p, t, issue_idx, leads: int, history: int, seed: int,
                 train: tuple[int, int] | None = None) -> pd.DataFrame:
    """An archive table of the issue days ``issue_idx`` from the observed series, by error model ``kind``.

    A generic kind (:data:`GENERIC`) needs ``train``, the half-open index range of the training years its
    parameter is solved on and its climate drawn from; the parameter per lead is in ``table.attrs["u"]``.
    """
    rng = np.random.default_rng(seed)
    day = issue_idx[:, None] + np.arange(1, leads + 1)[None, :]
    u = None
    if kind == "perfect":
        P, T = p[day], t[day]
    elif kind in GENERIC:
        if train is None or train[1] <= train[0]:
            raise ValueError(f"error model {kind!r} needs the training years' index range; got train={train}")
        months = np.asarray(dates, dtype="datetime64[M]").astype(np.int64) % 12
        train_days = np.arange(*train)
        climate, wet_climate = month_sampler(p, months, train_days), month_sampler(p, months, train_days, wet=True)
        u = solve_parameter(kind, p, months, train_days, target_correlation(leads), rng, climate, wet_climate)
        draws = _run_draws(rng, day, len(p)) if kind == "consistent" else _draws(rng, day.shape)
        P, src = generic_precipitation(kind, p, months, day, u[None, :], draws, climate, wet_climate)
        T = t[src] + temperature_noise_sd(leads)[None, :] * rng.standard_normal(day.shape)
    else:
        fc = emulate_series({"precipitation": p, "temperature": t}, issue_idx, leads, rng, history=history,
                            kind="amount" if kind == "amount" else "swap")
        P, T = fc["precipitation"], fc["temperature"]
        if kind == "wet":
            P = P * WET_BIAS
    d = np.asarray(dates, dtype="datetime64[D]")
    tab = pd.DataFrame({"issue_date": np.repeat(d[issue_idx], leads).astype(str),
                        "lead_days": np.tile(np.arange(1, leads + 1), len(issue_idx)),
                        "valid_date": d[day.ravel()].astype(str), "precipitation": P.ravel(), "temperature": T.ravel()})
    tab = tab.dropna()
    if u is not None:
        tab.attrs["u"] = [float(x) for x in u]
    return tab


def reforecast_scores(model, basin: str, data_dir: Path, archive: Path, first, last, folder: Path,
                      label: str, precip_mapping: str = "none", weather_lags: str = "none") -> list[dict] | None:
    """``sca2lstm forecast --from first --to last --weather_forecast archive --precip_mapping precip_mapping``
    in-process, its table scored per lead with :func:`verify` (rows of dicts); None, logged with ``label``,
    where the forecast failed."""
    log = io.StringIO()
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        rc = cli(["forecast", "--model", str(model), "--basin", basin, "--data_dir", str(data_dir),
                  "--from", str(first), "--to", str(last), "--weather_forecast", str(archive),
                  "--precip_mapping", precip_mapping, "--weather_lags", weather_lags, "--output_dir", str(folder),
                  "--quiet"])
    if rc != 0:
        logging.info("%s: left out (%s)", label, log.getvalue().strip().splitlines()[-1:])
        return None
    table = next(folder.rglob("reforecast.csv"))
    per_lead, _ = verify(read_reforecast(table), read_levels(table.parent / "levels.json"))
    return per_lead.to_dict(orient="records")


def correlation(p: np.ndarray, tab: pd.DataFrame, dates) -> dict:
    """Correlation of the archive's precipitation with the observed, per lead."""
    pos = {str(d): i for i, d in enumerate(np.asarray(dates, dtype="datetime64[D]"))}
    obs = p[tab["valid_date"].map(pos).to_numpy()]
    out = {}
    for k, g in tab.assign(obs=obs).groupby("lead_days"):
        ok = np.isfinite(g["obs"]) & np.isfinite(g["precipitation"])
        out[int(k)] = float(np.corrcoef(g["obs"][ok], g["precipitation"][ok])[0, 1]) if ok.sum() > 2 else np.nan
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_basin_args(ap)
    ap.add_argument("--period", choices=["test", "val"], default="test")
    ap.add_argument("--stride", type=int, default=3, help="every n-th day is an issue date of the archive")
    ap.add_argument("--errors", nargs="+", choices=ERRORS, default=["emulator", "amount"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench_output/archives")
    ap.add_argument("--precip_mapping", choices=["none", "quantile", "auto"], default="auto",
                    help="passed to 'sca2lstm forecast' (its default auto maps a drizzly archive's precipitation per "
                         "lead to the basin's observed rain of its training years; quantile maps every archive; none "
                         "none; docs/weather.md)")
    ap.add_argument("--weather_lags", choices=["none", "auto"], nargs="+", default=["auto"],
                    help="passed to 'sca2lstm forecast' (auto: each day's forecast combined with the same day's forecasts "
                         "of the archive's earlier issue dates); several: each scored on the same archives")
    ap.add_argument("--history_stride", type=int, default=2,
                    help="with a mapping or lags, the training years' forecasts written ahead of the scored ones are "
                         "issued every n-th day (1: every day, so that each day has the runs of the days before; 0: "
                         "none written, an archive of the scored span only, as a station's first years of one)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    data_dir = Path(args.data_dir)
    _, cfg, _, _ = load_model(Path(args.model))
    F, L = cfg.training.forecast_leads, cfg.training.seq_len
    d = cfg.data
    start, end = (d.test_start, d.test_end) if args.period == "test" else (d.val_start, d.val_end)
    names = list(d.dynamic_inputs)
    rows, corr, seconds = [], {e: [] for e in args.errors}, {e: 0.0 for e in args.errors}
    params = {e: [] for e in args.errors if e in GENERIC}
    for b in resolve_basins(args.basins, data_dir, {})[:args.max_basins]:
        rec = load_basin(data_dir, b, cfg)
        p = rec.x[:, names.index("precipitation")].astype(np.float64)
        t = rec.x[:, names.index("temperature")].astype(np.float64)
        i0, i1 = rec.period(start, end)
        train = rec.period(d.train_start, d.train_end)
        issue = np.arange(max(i0 - 1, L), i1 - 1 - F, args.stride)
        if len(issue) == 0:
            continue
        for e in args.errors:
            tab = make_archive(e, rec.dates, p, t, issue, F, L - F, [args.seed, int(b) if b.isdigit() else 0],
                               train=train)
            scored = tab
            if (args.precip_mapping != "none" or "auto" in args.weather_lags) and e != "perfect" \
                    and args.history_stride > 0:
                # a mapping ranks each forecast among the archive's earlier ones: forecasts of the training years
                # (every 2nd day, their own draws, as the prototype had) go ahead of the scored ones, so that no
                # lead starts unmapped; the reforecast still issues only --period's dates
                past = np.arange(max(train[0], L - F + 1), min(train[1], issue[0]) - F - 1, args.history_stride)
                if len(past):
                    tab = pd.concat([make_archive(e, rec.dates, p, t, past, F, L - F,
                                                  [args.seed, int(b) if b.isdigit() else 0, 777], train=train),
                                     scored], ignore_index=True)
            if "u" in scored.attrs:
                params[e].append(scored.attrs["u"])
            if e != "perfect":
                corr[e].append(correlation(p, scored, rec.dates))
            arch = out / "archives" / e / f"{b}.csv"
            arch.parent.mkdir(parents=True, exist_ok=True)
            tab.to_csv(arch, index=False, float_format="%.3f")
            for lags in args.weather_lags:
                t0 = time.perf_counter()
                per_lead = reforecast_scores(args.model, b, data_dir, arch, rec.dates[issue[0]], rec.dates[issue[-1]],
                                             out / "reforecasts" / e / lags / b, f"{e} {b}", args.precip_mapping, lags)
                seconds[e] += time.perf_counter() - t0
                for r in per_lead or []:
                    rows.append({"errors": e, "weather_lags": lags, "basin": b, **r})
        logging.info("%s done", b)
    per = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    per.to_csv(out / "per_basin.csv", index=False, float_format="%.4f")
    above = {"coverage90_above_q2y_mean": ("coverage90_above_q2y", "mean")} if "coverage90_above_q2y" in per else {}
    summary = per.groupby(["errors", "weather_lags", "lead"]).agg(
        basins=("basin", "nunique"), nse_median=("nse", "median"), persistence_nse_median=("persistence_nse", "median"),
        crps_mean=("crps", "mean"), coverage90_mean=("coverage90", "mean"), below_q05_mean=("below_q05", "mean"),
        **above).reset_index()
    summary = summary.merge(nse_interval(per, ["errors", "weather_lags", "lead"]), on=["errors", "weather_lags", "lead"],
                            how="left")
    summary["precip_corr"] = [np.nanmean([c.get(k, np.nan) for c in corr.get(e, [])]) if corr.get(e) else np.nan
                              for e, k in zip(summary["errors"], summary["lead"])]
    summary.to_csv(out / "summary.csv", index=False, float_format="%.4f")
    pd.set_option("display.width", 200)
    print(f"\nModel {args.model}; {per['basin'].nunique()} basins; {args.period} period {start}..{end}; every "
          f"{args.stride}th day an issue date; through 'sca2lstm forecast --from --to --weather_forecast ARCHIVE "
          f"--precip_mapping {args.precip_mapping}'. "
          "Every archive is EMULATED.")
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    u_median = {e: [float(x) for x in np.median(v, axis=0)] for e, v in params.items() if v}
    for e, v in u_median.items():
        print(f"{e}: parameter u per lead (median over basins, solved on the training years) "
              + " ".join(f"{x:.3f}" for x in v))
    (out / "results.json").write_text(json.dumps({"model": args.model, "period": [args.period, start, end],
                                                  "stride": args.stride, "precip_mapping": args.precip_mapping,
                                                  "seconds": seconds, "u": u_median,
                                                  "summary": summary.to_dict(orient="records")}, indent=2,
                                                 default=float), encoding="utf-8")
    print(f"Saved to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
