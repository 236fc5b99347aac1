"""The emulated weather forecast: skill by lead, error structure, and forecasts put into model windows."""

from __future__ import annotations

import json
import numpy as np
import pandas as pd
import pytest

from sca2lstm.data.features import feature_names, raw_features
from sca2lstm.weather import emulator as em
from sca2lstm.weather.windows import LeadWeather
from tolerance import assert_forecasts_close


def _camels_series(data_dir):
    from sca2lstm.data import reader

    out = []
    for b in ["10002", "22001", "39025", "75003"]:
        df = reader.read_timeseries(data_dir, b, columns=["discharge_vol"])
        out.append({"precipitation": df["precipitation"].to_numpy(), "temperature": df["temperature"].to_numpy(),
                    "peti": df["peti"].to_numpy()})
    return out


@pytest.mark.slow
def test_precipitation_correlation_by_lead_is_nwp_like(shared_camels):
    """Mean per-basin correlation of emulated and observed daily rain at leads 1/3/7 is 0.88/0.71/0.51.

    Each basin gives ~4000 issue days (every 4th day). The correlation's sampling s.e. is about
    (1 - r^2) / sqrt(n) <= 0.012 per basin, 0.006 for the mean of four; the emulator's calibration table
    was measured on other draws (all nine basins), so the tolerance is 3 s.e. plus 0.01 for it.
    """
    rng = np.random.default_rng(3)
    cors = {1: [], 3: [], 7: []}
    for s in _camels_series(shared_camels):
        idx = np.arange(119, len(s["precipitation"]) - 8, 4)
        f = em.emulate_series(s, idx, 7, rng)
        for k in cors:
            o = s["precipitation"][idx + k]
            ok = np.isfinite(o)
            cors[k].append(np.corrcoef(f["precipitation"][ok, k - 1], o[ok])[0, 1])
    for k, target in ((1, 0.88), (3, 0.71), (7, 0.51)):
        assert abs(np.mean(cors[k]) - target) < 0.03, (k, np.mean(cors[k]))


def _synthetic_rain(n, rng):
    wet = rng.random(n) < 0.45
    return np.where(wet, rng.gamma(0.8, 6.0, n), 0.0)


def test_error_grows_with_lead_and_level_and_keeps_the_mean():
    rng = np.random.default_rng(0)
    p = _synthetic_rain(40000, rng)
    t = 10 + 5 * np.sin(np.arange(40000) / 58.0) + rng.normal(0, 2, 40000)
    s = {"precipitation": p, "temperature": t}
    idx = np.arange(119, 40000 - 8, 2)
    f = em.emulate_series(s, idx, 7, np.random.default_rng(1))
    obs = p[idx[:, None] + np.arange(1, 8)[None, :]]
    cor = [np.corrcoef(f["precipitation"][:, k], obs[:, k])[0, 1] for k in range(7)]
    assert all(a > b for a, b in zip(cor, cor[1:]))                     # skill falls with every lead
    # Unbiased in the mean: the relative bias stays within 4 s.e. of the mean of ~20000 days.
    se = obs.std() / np.sqrt(obs.shape[0])
    assert abs(f["precipitation"].mean() - obs.mean()) < 4 * se * 2
    # Missed and false rain both happen, more at lead 7 than at lead 1.
    missed = [np.mean((obs[:, k] > 5) & (f["precipitation"][:, k] < 0.1)) for k in (0, 6)]
    false = [np.mean((obs[:, k] == 0) & (f["precipitation"][:, k] > 5)) for k in (0, 6)]
    assert 0 < missed[0] < missed[1] and 0 < false[0] < false[1]
    # Temperature error sd by lead, within 5 % (sampling s.e. of an sd from 20000 draws is 0.5 %).
    tobs = t[idx[:, None] + np.arange(1, 8)[None, :]]
    sd = (f["temperature"] - tobs).std(axis=0)
    assert np.allclose(sd, [em.TEMP_ERROR_SD[k] for k in range(1, 8)], rtol=0.05)
    # Level 0 is the observed weather; level 2 has lower skill than level 1.
    f0 = em.emulate_series(s, idx, 7, np.random.default_rng(1), level=0.0)
    assert np.allclose(f0["precipitation"], obs) and np.allclose(f0["temperature"], tobs)
    f2 = em.emulate_series(s, idx, 7, np.random.default_rng(1), level=2.0)
    assert np.corrcoef(f2["precipitation"][:, 2], obs[:, 2])[0, 1] < cor[2] - 0.1


def test_ensemble_members_have_single_forecast_skill_and_the_observed_is_like_one_more_member():
    rng = np.random.default_rng(5)
    p = _synthetic_rain(30000, rng)
    idx = np.arange(119, 30000 - 8, 3)
    ens = em.emulate_series({"precipitation": p}, idx, 7, np.random.default_rng(2), members=10)
    obs = p[idx + 3]
    member = [np.corrcoef(m["precipitation"][:, 2], obs)[0, 1] for m in ens]
    # each member ~ the single-forecast target at lead 3 (s.e. ~0.005 per member with 10000 days)
    assert abs(np.mean(member) - em.lead_correlation(3)) < 0.04
    # two members agree with each other as well as one agrees with the observed (exchangeable; s.e. ~0.01) ...
    between = [np.corrcoef(ens[i]["precipitation"][:, 2], ens[i + 1]["precipitation"][:, 2])[0, 1] for i in range(9)]
    assert abs(np.mean(between) - np.mean(member)) < 0.03
    # ... which independent errors around the observed would not give (members closer to it than to each other)
    indep = [em.emulate_series({"precipitation": p}, idx, 7, np.random.default_rng(i))["precipitation"][:, 2]
             for i in (7, 8)]
    assert np.corrcoef(*indep)[0, 1] < np.mean(member) - 0.1
    # ... and the ensemble mean beats one member.
    mean = np.mean([m["precipitation"][:, 2] for m in ens], axis=0)
    assert np.corrcoef(mean, obs)[0, 1] > np.mean(member) + 0.02


def test_pet_follows_the_forecast_temperature_as_oudin_pet_does():
    from sca2lstm.data.pet import oudin_pet

    doy = np.arange(150, 157)
    t_obs, t_fc = np.full(7, 12.0), np.linspace(8.0, 16.0, 7)
    pet_obs = oudin_pet(t_obs, 52.0, doy)
    assert np.allclose(em.follow_pet(pet_obs[None], t_obs[None], t_fc[None])[0], oudin_pet(t_fc, 52.0, doy))


@pytest.mark.parametrize("lead_pos", [40, 52])
def test_forecast_in_a_window_matches_the_features_of_the_series_with_it(tiny_cfg, lead_pos):
    """LeadWeather.put on scaled windows == raw_features on the series with the forecast days replaced."""
    from sca2lstm.data.dataset import load_basin
    from sca2lstm.data.scaling import Scalers

    cfg = tiny_cfg
    rec = load_basin(cfg.data.data_dir, "10002", cfg, use_cache=False)
    names = feature_names(cfg)
    kinds = ["global"] * len(names)
    sc = Scalers.fit(names, kinds, [rec.x], [], np.zeros((1, 0)), {})
    lw = LeadWeather(sc.feature_names, sc.x_mean, sc.x_std, cfg.data.high_precip_mm, cfg.data.low_precip_mm)
    L, leads, start = 60, 7, 400
    dates = pd.DatetimeIndex(rec.dates)
    from sca2lstm.data import reader

    df = reader.read_timeseries(cfg.data.data_dir, "10002").reindex(dates)
    rng = np.random.default_rng(0)
    fc = {"precipitation": np.r_[0.0, 25.0, 12.0, 0.3, 0.0, 40.0, 2.0][:leads][None, :],
          "temperature": rng.normal(8, 3, (1, leads))}
    if "peti" in lw.col:
        fc["peti"] = rng.uniform(0, 3, (1, leads))
    # the series with the forecast on the lead days
    df2 = df.copy()
    lead_dates = dates[start + lead_pos + 1:start + lead_pos + 1 + leads]
    for n, v in fc.items():
        df2.loc[lead_dates, n] = v[0]
    x_ref, _ = raw_features(df2, cfg)
    xs = (rec.x - np.asarray(sc.x_mean)) / np.asarray(sc.x_std)   # every column scaled globally here
    xw = xs[start:start + L].astype(np.float32)[None]
    miss = np.isnan(xw)
    xw = np.where(miss, 0, xw).astype(np.float32)
    x_new, m_new = lw.put(xw, miss, lead_pos, fc)
    got = np.where(m_new[0], np.nan, x_new[0].astype(np.float64) * np.asarray(sc.x_std) + np.asarray(sc.x_mean))
    want = x_ref[start:start + L]
    # put changes only the lead days: days after them (a window longer than issue + leads) keep their values
    end = lead_pos + 1 + leads
    got, want = got[:end], want[:end]
    assert np.array_equal(np.isnan(got), np.isnan(want))
    # float32 scaling: |error| <= a few ulp of the scaled value times the scale
    tol = 4 * np.finfo(np.float32).eps * (np.abs(want) + np.abs(np.asarray(sc.x_mean))) + 1e-6
    ok = ~np.isnan(want)
    bad = np.argwhere(ok & (np.abs(got - want) > 1e-3 * (1 + np.abs(want))))
    assert bad.size == 0, [(r, names[c], got[r, c], want[r, c]) for r, c in bad[:6]]
    assert (np.abs(got - want)[ok] <= np.broadcast_to(tol, want.shape)[ok] + 1e-4 * np.abs(want[ok])).all()
    # and the lead days really changed (the test would pass on a no-op otherwise)
    assert not np.allclose(got[lead_pos + 1:lead_pos + 1 + leads], xs[start + lead_pos + 1:start + lead_pos + 1 + leads])


def test_hindcasts_with_a_level_0_emulated_forecast_equal_the_perfect_weather_ones(pretrained_ckpt, tiny_data_dir):
    """The emulated-forecast path (windows rebuilt with LeadWeather) at error 0 is the observed weather;
    at error 1 the forecasts differ; an emulated ensemble gives member quantiles and a mixture."""
    from sca2lstm.checkpoint import load_model
    from sca2lstm.data.dataset import SequenceData, load_basin, load_static
    from sca2lstm.evaluation.operational import issue_time_hindcasts
    from sca2lstm.weather.windows import EmulatedForecast

    model, cfg, sc, _ = load_model(pretrained_ckpt)
    recs = [load_basin(tiny_data_dir, "32006", cfg)]
    data = SequenceData(recs, load_static(tiny_data_dir, ["32006"], cfg), sc, pad=cfg.training.seq_len)
    i0 = recs[0].index_of("1976-03-01")
    kw = dict(seq_len=cfg.training.seq_len, lead_days=cfg.data.lead_days, basin_indices=[0])
    F = cfg.training.forecast_leads
    lw = LeadWeather.from_model(sc, cfg)
    perfect = issue_time_hindcasts(model, data, [(i0, i0 + 40)], F, "perfect", **kw)[0]
    level0 = issue_time_hindcasts(model, data, [(i0, i0 + 40)], F, "perfect", lead_weather=EmulatedForecast(lw, F, None, 0.0), **kw)[0]
    # the lead days' inputs rebuilt from the weather: the same up to their float32 rounding, one rounding more
    # before the recurrence (tests/tolerance.py)
    assert_forecasts_close({"median": level0.median}, {"median": perfect.median}, (model, cfg, sc), "32006")
    level1 = issue_time_hindcasts(model, data, [(i0, i0 + 40)], F, "perfect", lead_weather=EmulatedForecast(lw, F, None, 1.0), **kw)[0]
    assert not np.allclose(level1.median, perfect.median)
    ens = issue_time_hindcasts(model, data, [(i0, i0 + 40, )], F, "perfect",
                               lead_weather=EmulatedForecast(lw, F, 5, 1.0), stride=4, **kw)[0]
    assert ens.member_quantiles.shape == (10, F, 5, 5) and ens.quantiles.shape == (10, F, 5)
    assert (ens.quantiles[..., -1] >= ens.member_quantiles[..., 2].min(axis=-1) - 1e-9).all()


@pytest.mark.slow
def test_weather_benchmark_runs_every_setting_on_a_tiny_model(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """bench/weather.py end to end on the tiny model: every setting and lead scored, the curve written, the
    ensemble's control member scored on the same days. Its numbers mean nothing here."""
    import importlib
    import sys

    from conftest import REPO

    sys.path.insert(0, str(REPO / "bench"))
    bench = importlib.import_module("weather")
    rc = bench.main(["--model", str(pretrained_ckpt), "--data_dir", str(tiny_data_dir), "--stride", "20",
                     "--members", "3", "--out", str(tmp_path)])
    assert rc == 0 and "EMULATED" in capsys.readouterr().out
    s = pd.read_csv(tmp_path / "summary.csv")
    F = load_model_leads(pretrained_ckpt)
    assert set(s["setting"]) == {"no-weather", "perfect", "emulated", "emulated-ens3", "emulated-level0.5",
                                 "emulated-level1.5", "emulated-level2", "emulated-smoothed"}
    # the other error model reports the skill it reached, falling with the lead
    rho = s.loc[s["setting"] == "emulated-smoothed", "precip_corr"].to_numpy()
    assert rho[0] > rho[-1] and np.all((rho > 0) & (rho <= 1))
    assert (s.groupby("setting").size() == F).all()
    ens = s[s["setting"] == "emulated-ens3"]
    assert ens["crps_control_member_mean"].notna().all() and s.loc[s["setting"] == "emulated",
                                                                   "crps_control_member_mean"].isna().all()
    assert (tmp_path / "error_curve_lead3.png").is_file()
    # the median over basins sits inside its basin-bootstrap interval
    band = s.dropna(subset=["nse_median_lo90"])
    assert len(band) > 0  # three basins: every setting and lead has its interval
    assert (band["nse_median_lo90"] <= band["nse_median"] + 1e-12).all()
    assert (band["nse_median"] <= band["nse_median_hi90"] + 1e-12).all()


def test_weather_benchmark_without_the_curve_settings_writes_no_curve(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                      capsys):
    """A run of settings that are not on the error curve (here no weather alone) prints and saves no curve."""
    import importlib
    import sys

    from conftest import REPO

    sys.path.insert(0, str(REPO / "bench"))
    bench = importlib.import_module("weather")
    rc = bench.main(["--model", str(pretrained_ckpt), "--data_dir", str(tiny_data_dir), "--stride", "40",
                     "--settings", "no-weather", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0 and "no-weather" in out and "forecast error level" not in out
    assert (tmp_path / "summary.csv").is_file() and not (tmp_path / "error_curve_lead3.png").exists()


def load_model_leads(path):
    from sca2lstm.checkpoint import load_model

    return load_model(path)[1].training.forecast_leads


def _bench_archives():
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("archives_bench", REPO / "bench" / "archives.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_amount_kind_keeps_the_mean_and_missing_days_and_loses_skill_with_lead():
    """The ``amount`` kind: a constant rain stays constant in the mean (mean-one factor, plus the showers'
    mean on their share of days), a missing observed day stays missing, the correlation with a random rain
    series falls with the lead, and an unknown kind is refused."""
    rng = np.random.default_rng(3)
    n, L, F = 4000, 40, 7
    pos = L - 1 - F
    p = np.full((n, L), 4.0)
    p[:5, pos + 2] = np.nan
    P = em.degrade_amount(p, pos, F, rng)
    assert np.isnan(P[:5, 1]).all() and np.isfinite(P[5:]).all() and (P[5:] >= 0).all()
    k = np.arange(1, F + 1)
    q = em.SHOWER_SHARE[0] + em.SHOWER_SHARE[1] * k
    expected = 4.0 + q * em.SHOWER_MM
    # each lead's mean is that of ~4000 independent windows: 4 times a mean-one log-normal factor (variance
    # exp(s^2) - 1) plus a shower (share q, exponential of mean m: variance 2 m^2 q - (m q)^2); within 4 SE
    m = em.SHOWER_MM
    var = 16.0 * (np.exp((em.AMOUNT_SD[0] + em.AMOUNT_SD[1] * k) ** 2) - 1.0) + 2 * m * m * q - (m * q) ** 2
    assert np.all(np.abs(np.nanmean(P[5:], axis=0) - expected) < 4 * np.sqrt(var / (n - 5)))
    wet = rng.gamma(0.5, 6.0, (n, L)) * (rng.random((n, L)) < 0.5)
    P = em.emulate({"precipitation": wet}, pos, F, rng, kind="amount")["precipitation"]
    rho = [np.corrcoef(wet[:, pos + j], P[:, j - 1])[0, 1] for j in k]
    assert rho[0] > rho[2] > rho[6] > 0
    with pytest.raises(ValueError, match="expected one of"):
        em.emulate({"precipitation": wet}, pos, F, rng, kind="gauss")


@pytest.mark.slow
def test_archive_benchmark_scores_archives_through_the_reforecast_path(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                       capsys):
    """bench/archives.py on the tiny model: an archive per basin and error model, the reforecast of the
    product on it, every lead scored; the perfect archive's rain equals the observed (no correlation is
    reported for it), the emulated ones report theirs. Its numbers mean nothing here."""
    bench = _bench_archives()
    rc = bench.main(["--model", str(pretrained_ckpt), "--data_dir", str(tiny_data_dir), "--basins", "32006",
                     "--period", "test", "--stride", "5", "--errors", "perfect", "amount", "--out", str(tmp_path)])
    assert rc == 0 and "EMULATED" in capsys.readouterr().out
    s = pd.read_csv(tmp_path / "summary.csv")
    F = load_model_leads(pretrained_ckpt)
    assert (s.groupby("errors").size() == F).all() and set(s["errors"]) == {"perfect", "amount"}
    assert s.loc[s["errors"] == "perfect", "precip_corr"].isna().all()
    assert s.loc[s["errors"] == "amount", "precip_corr"].between(-1, 1).all()
    assert s["coverage90_mean"].between(0, 1).all() and s["nse_median"].notna().all()
    arch = pd.read_csv(tmp_path / "archives" / "amount" / "32006.csv")
    assert list(arch.columns) == ["issue_date", "lead_days", "valid_date", "precipitation", "temperature"]
    days = (pd.to_datetime(arch["valid_date"]) - pd.to_datetime(arch["issue_date"])).dt.days
    assert (days == arch["lead_days"]).all()
    ref = pd.read_csv(next((tmp_path / "reforecasts" / "amount").rglob("32006/*/reforecast.csv")))
    assert set(ref["issue_date"]) <= set(arch["issue_date"])


def test_wet_archive_is_the_swap_kind_scaled_by_its_bias():
    """bench/archives.py's ``wet`` error model: the same draws as ``emulator`` (the emulator's swap kind),
    every amount times WET_BIAS, the temperature unchanged."""
    bench = _bench_archives()
    rng = np.random.default_rng(0)
    n = 400
    p = rng.gamma(0.5, 6.0, n) * (rng.random(n) < 0.5)
    t = 10 + rng.normal(0, 3, n)
    dates = np.arange(np.datetime64("2000-01-01"), np.datetime64("2000-01-01") + n)
    issue = np.arange(200, 380, 2)
    swap = bench.make_archive("emulator", dates, p, t, issue, 7, 120, [0, 1])
    wet = bench.make_archive("wet", dates, p, t, issue, 7, 120, [0, 1])
    np.testing.assert_allclose(wet["precipitation"], swap["precipitation"] * bench.WET_BIAS)
    np.testing.assert_array_equal(wet["temperature"], swap["temperature"])


def _synthetic_weather(seed: int, years: int):
    """Daily rain of a two-state Markov chain (wet after wet 0.65, after dry 0.3) with gamma amounts and a
    seasonal cycle, and a seasonal temperature: a stationary series with serial correlation and heavy tails."""
    rng = np.random.default_rng(seed)
    n = 365 * years
    doy = np.arange(n) % 365
    wet = np.empty(n, dtype=bool)
    wet[0], v = True, rng.random(n)
    for i in range(1, n):
        wet[i] = v[i] < (0.65 if wet[i - 1] else 0.3)
    p = wet * rng.gamma(0.8, 6.0, n) * (1 + 0.3 * np.cos(2 * np.pi * doy / 365))
    t = 10 + 6 * np.sin(2 * np.pi * doy / 365) + rng.normal(0, 2, n)
    return np.arange(np.datetime64("1950-01-01"), np.datetime64("1950-01-01") + n), p, t


def _correlation_se(x, y) -> float:
    """Large-sample standard error of Pearson's r of ``x`` and ``y`` from their sample moments (the delta
    method; the normal-theory (1 - r^2) / sqrt(n) is 2-5 times too small for skewed rain)."""
    x, y = x - x.mean(), y - y.mean()

    def m(a, b):
        return np.mean(x ** a * y ** b)

    r2 = m(1, 1) ** 2 / (m(2, 0) * m(0, 2))
    var = r2 / 4 * (m(4, 0) / m(2, 0) ** 2 + m(0, 4) / m(0, 2) ** 2 + 2 * m(2, 2) / (m(2, 0) * m(0, 2))
                    + 4 * m(2, 2) / m(1, 1) ** 2 - 4 * m(3, 1) / (m(1, 1) * m(2, 0)) - 4 * m(1, 3) / (m(1, 1) * m(0, 2)))
    return float(np.sqrt(var / len(x)))


@pytest.mark.parametrize("kind", ["blend", "lognormal", "shift", "consistent"])
def test_generic_archive_reaches_the_target_rain_correlation_on_days_it_was_not_solved_on(kind):
    """bench/archives.py's generic error models (written without the emulator), on a 60-year synthetic
    series: the parameter is solved on the first 40 years; the archive issued every day of the last 20 has
    the documented columns and valid date = issue date + lead, and its rain correlates with the observed at
    0.88 / 0.71 / 0.51 at leads 1 / 3 / 7 within 4 standard errors. The error counts the scored sample's
    (n = 7300 days) and the solve's (14600 days: the same error scaled by sqrt(7300 / 14600)); over 30 seeds
    the reached correlations' deviations had a standard deviation of 0.7-1.2 of it. Changing the scored
    years' rain leaves the solved parameter as it was: no scored day sets it."""
    bench = _bench_archives()
    dates, p, t = _synthetic_weather(11, 60)
    train = (0, 40 * 365)
    issue = np.arange(train[1], len(p) - 8)
    tab = bench.make_archive(kind, dates, p, t, issue, 7, 0, [0, 1], train=train)
    assert list(tab.columns) == ["issue_date", "lead_days", "valid_date", "precipitation", "temperature"]
    assert len(tab) == 7 * len(issue) and (tab["precipitation"] >= 0).all()
    days = (pd.to_datetime(tab["valid_date"]) - pd.to_datetime(tab["issue_date"])).dt.days
    assert (days == tab["lead_days"]).all()
    reached = bench.correlation(p, tab, dates)
    for k, target in bench.TARGET_CORRELATION.items():
        rows = tab[tab["lead_days"] == k]
        obs = p[issue + k]
        se = _correlation_se(obs, rows["precipitation"].to_numpy()) * np.sqrt(1 + len(rows) / train[1])
        assert abs(reached[k] - target) < 4 * se, (kind, k, reached[k], target, se)
    changed = p.copy()
    changed[train[1]:] *= 3.0
    again = bench.make_archive(kind, dates, changed, t, issue, 7, 0, [0, 1], train=train)
    assert again.attrs["u"] == tab.attrs["u"] and np.all(np.diff(tab.attrs["u"]) > 0)


def test_consistent_archive_runs_of_one_day_share_their_error_and_lognormal_runs_do_not():
    """bench/archives.py's ``consistent`` kind: ``lognormal``'s formula with draws shared by the runs of a valid day
    (RUN_CORRELATION 0.7), so the errors (forecast - observed) of a day's lead-2 and lead-3 runs, issued a day apart,
    correlate (0.38 on this series) where ``lognormal``'s, drawn afresh for every run, hardly do (0.04: only through
    the day's amount, which scales both). 10 years of days: a standard error of about 0.02."""
    bench = _bench_archives()
    dates, p, t = _synthetic_weather(11, 30)
    train = (0, 20 * 365)
    issue = np.arange(train[1], len(p) - 8)
    pos = {str(d): i for i, d in enumerate(np.asarray(dates, dtype="datetime64[D]"))}
    shared = {}
    for kind in ("lognormal", "consistent"):
        tab = bench.make_archive(kind, dates, p, t, issue, 7, 0, [0, 1], train=train)
        runs = tab.pivot_table(index="valid_date", columns="lead_days", values="precipitation")
        err = runs.sub(p[[pos[v] for v in runs.index]], axis=0)
        shared[kind] = err[2].corr(err[3])
    assert shared["consistent"] > shared["lognormal"] + 0.2, shared


@pytest.mark.slow
def test_archive_finetune_benchmark_scores_three_models_on_the_same_archive_rows(pretrained_ckpt, tiny_data_dir,
                                                                                 tmp_path, capsys):
    """bench/archive_finetune.py on the tiny model: the pretrained model, a fine-tune without the archive and
    one with it, each reforecast on the same scored rows of one archive; the data folder with the archive links
    the original entries and holds the archive, which covers the training years."""
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("archive_finetune_bench", REPO / "bench" / "archive_finetune.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rc = bench.main(["--model", str(pretrained_ckpt), "--data_dir", str(tiny_data_dir), "--basins", "32006",
                     "--stride", "7", "--errors", "wet", "--out", str(tmp_path)])
    assert rc == 0 and "EMULATED" in capsys.readouterr().out
    s = pd.read_csv(tmp_path / "summary.csv")
    F = load_model_leads(pretrained_ckpt)
    assert sorted(s["setting"].unique()) == sorted(bench.SETTINGS)
    assert (s.groupby("setting").size() == F).all() and s["nse_median"].notna().all()
    full = pd.read_csv(tmp_path / "data" / "wet" / "weather_archive" / "32006.csv")
    scored = pd.read_csv(tmp_path / "archives" / "wet" / "32006.csv")
    assert full["issue_date"].min() < "1975-01-01" < "1976-01-01" <= scored["issue_date"].min()  # training years in it
    pd.testing.assert_frame_equal(scored.reset_index(drop=True),
                                  full[full["issue_date"].isin(set(scored["issue_date"]))].reset_index(drop=True))
    assert (tmp_path / "data" / "wet" / "timeseries").is_symlink()
    issued = [set(pd.read_csv(next((tmp_path / "reforecasts" / "wet" / m / "32006").rglob("reforecast.csv")))
                  ["issue_date"]) for m in bench.SETTINGS]
    assert issued[0] == issued[1] == issued[2] and issued[0] <= set(scored["issue_date"])


@pytest.mark.slow
def test_archive_benchmark_passes_precip_mapping_to_the_forecast_with_the_training_years_forecasts_ahead(
        pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """bench/archives.py --precip_mapping quantile: the reforecast maps the archive's rain (its weather.json says
    so), each lead ranked among the training years' forecasts written ahead of the scored ones, which alone
    are issued."""
    bench = _bench_archives()
    rc = bench.main(["--model", str(pretrained_ckpt), "--data_dir", str(tiny_data_dir), "--basins", "32006",
                     "--period", "test", "--stride", "5", "--errors", "amount", "--precip_mapping", "quantile",
                     "--out", str(tmp_path)])
    assert rc == 0 and "--precip_mapping quantile" in capsys.readouterr().out
    assert json.loads((tmp_path / "results.json").read_text())["precip_mapping"] == "quantile"
    ref = next((tmp_path / "reforecasts" / "amount").rglob("32006/*/reforecast.csv"))
    record = json.loads((ref.parent / "weather.json").read_text())
    assert record["precip_mapping"]["method"] == "quantile" and record["notes"] == []
    arch = pd.read_csv(tmp_path / "archives" / "amount" / "32006.csv")
    first = pd.read_csv(ref)["issue_date"].min()
    assert (arch.loc[arch["lead_days"] == 7, "issue_date"] < first).sum() >= 180
