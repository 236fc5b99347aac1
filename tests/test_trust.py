"""The trust in a station's weather forecasts learned from its archive: the walk-forward fit on hand cases,
causality, and the issued forecasts (reforecast and single forecast) that use it."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from sca2lstm.evaluation.trust import blend_readings, walk_forward_trust


def _pairs(n=400, leads=3, seed=0, a_true=0.6):
    """Readings whose best blend toward the unflagged one is ``a_true``: obs = f + a_true (u - f) + noise."""
    rng = np.random.default_rng(seed)
    f = rng.gamma(2.0, 5.0, (n, leads))
    u = f + rng.normal(0.0, 3.0, (n, leads))
    obs = f + a_true * (u - f) + rng.normal(0.0, 0.5, (n, leads))
    return f, u, obs, np.arange(n)


def test_hand_case_uses_only_forecasts_verified_by_the_issue_date():
    """Issue day 3 learns from lead 1 of days 0..2 (valid days 1..3) and lead 2 of days 0..1 (valid 2..3),
    pooled: sum x r / sum x^2 with x = u - f = 1; day 1 only from lead 1 of day 0."""
    f = np.zeros((4, 2))
    u = np.ones((4, 2))
    obs = np.array([[0.5, 0.2], [0.3, 0.4], [0.1, 9.0], [9.0, 9.0]])
    a = walk_forward_trust(f, u, obs, np.arange(4), min_pairs=0, shrink=0.0)
    assert a[3].tolist() == pytest.approx([(0.5 + 0.3 + 0.1 + 0.2 + 0.4) / 5] * 2)
    assert a[1].tolist() == pytest.approx([0.5, 0.5])
    assert a[0].tolist() == [0.0, 0.0]                       # nothing verified on the first issue day
    # shrunk by n / (n + shrink), n the verified pairs per lead (5 / 2 on day 3)
    b = walk_forward_trust(f, u, obs, np.arange(4), min_pairs=0, shrink=2.5)
    assert b[3, 0] == pytest.approx(a[3, 0] * 2.5 / 5.0)


def test_recovers_the_blend_and_shrinks_a_short_archive():
    f, u, obs, days = _pairs()
    a = walk_forward_trust(f, u, obs, days, shrink=0.0)
    assert np.allclose(a[-1], 0.6, atol=0.03)
    assert (a[:60] == 0).all()                               # below MIN_PAIRS verified forecasts: as flagged
    shrunk = walk_forward_trust(f, u, obs, days)
    n = (399 + 398 + 397) / 3                                # pairs per lead verified by the last issue day
    assert np.allclose(shrunk[-1], a[-1] * n / (n + 200.0))


def test_trust_stays_in_zero_one_and_is_zero_when_the_readings_agree():
    f, u, obs, days = _pairs(a_true=1.8)
    assert walk_forward_trust(f, u, obs, days).max() <= 1.0
    f, u, obs, days = _pairs(a_true=-0.7)
    assert walk_forward_trust(f, u, obs, days).min() == 0.0
    assert (walk_forward_trust(f, f, obs, days) == 0).all()


def test_future_flows_and_old_forecasts_do_not_move_the_trust():
    """Causal: the flows after the issue date do not move its trust; pairs issued more than history_days
    before it are not used."""
    f, u, obs, days = _pairs()
    a = walk_forward_trust(f, u, obs, days, history_days=100)
    later = obs.copy()
    later[250:] = 1e6                                        # flows valid from day 251 on
    b = walk_forward_trust(f, u, later, days, history_days=100)
    assert np.array_equal(a[:251], b[:251]) and not np.array_equal(a[251:], b[251:])
    old = obs.copy()
    old[:100] = -1e6                                         # forecasts issued before day 100
    c = walk_forward_trust(f, u, old, days, history_days=100)
    assert np.allclose(a[200:], c[200:], rtol=1e-9, atol=1e-12)   # a leak of -1e6 would move it by far more


def test_gaps_in_the_archive_count_as_missing():
    f, u, obs, days = _pairs()
    f2 = f.copy()
    f2[::2] = np.nan
    a = walk_forward_trust(f2, u, obs, days)
    assert a[100, 0] == 0.0 and a[-1, 0] > 0                 # 50 pairs at day 100: below MIN_PAIRS


def test_blend_readings_per_quantile():
    f, u = np.zeros((2, 3, 5)), np.ones((2, 3, 5))
    a = np.array([[0.0, 0.5, 1.0], [0.25, 0.25, 0.25]])
    out = blend_readings(f, u, a)
    assert np.allclose(out[..., 2], a) and np.allclose(out[..., 0], a)


@pytest.fixture(scope="module")
def flag_model(tiny_data_dir, tmp_path_factory):
    """A tiny model that flags forecasts (trained 1 epoch with emulated and perfect lead-day weather) and a
    copy of the data with an archive of the observed weather as forecasts (1971-1976, every day)."""
    from conftest import make_tiny_config

    from sca2lstm.training.pretrain import pretrain

    root = tmp_path_factory.mktemp("trust")
    cfg = make_tiny_config(tiny_data_dir, data={"forecast_flag": True},
                           training={"epochs": 1, "forecast_leads": 3, "forecast_fraction": 1.0,
                                     "forecast_weather_known": 1.0, "forecast_emulated": 0.5})
    ckpt = pretrain(cfg, root / "m.pth", data_dir=tiny_data_dir, progress=False)["checkpoint"]
    d = root / "data"
    shutil.copytree(tiny_data_dir, d)
    ts = pd.read_csv(next((d / "timeseries").glob("*32006*")), parse_dates=["date"]).set_index("date")
    rows = []
    for t0 in pd.date_range("1971-01-01", "1976-12-31"):
        for k in range(1, 4):
            v = t0 + pd.Timedelta(days=k)
            rows.append({"issue_date": t0.date(), "lead_days": k, "valid_date": v.date(),
                         "precipitation": ts.loc[v, "precipitation"], "temperature": ts.loc[v, "temperature"]})
    (d / "weather_archive").mkdir()
    pd.DataFrame(rows).to_csv(d / "weather_archive" / "32006.csv", index=False)
    return ckpt, d


@pytest.mark.slow
def test_reforecast_with_learned_trust_equals_single_forecasts_and_is_causal(flag_model, tmp_path):
    from sca2lstm.checkpoint import load_model
    from sca2lstm.evaluation.reforecast import reforecast, warned_forecast
    from sca2lstm.weather.files import read_forecast_file

    ckpt, d = flag_model
    bundle = load_model(ckpt)
    arch = read_forecast_file(d / "weather_archive" / "32006.csv")
    kw = dict(leads=3, data_dir=d, model_path=ckpt, weather_archive=arch)
    learned = reforecast(bundle, "32006", "1976-03-01", "1976-03-06", **kw)[0]
    plain = reforecast(bundle, "32006", "1976-03-01", "1976-03-06", learn_trust=False, **kw)[0]
    assert not np.allclose(learned["median"], plain["median"])          # the trust moved the forecasts
    # the first issue dates of the archive have nothing verified yet: issued as flagged
    early = reforecast(bundle, "32006", "1971-01-05", "1971-01-08", **kw)[0]
    early_plain = reforecast(bundle, "32006", "1971-01-05", "1971-01-08", learn_trust=False, **kw)[0]
    assert np.allclose(early["median"], early_plain["median"])
    # a single forecast issued from the archive, and one from a one-forecast table with the station's archive
    # beside it, learn the same trust
    one = warned_forecast(bundle, "32006", data_dir=d, issue_date="1976-03-04", leads=3, weather_forecast=arch,
                          model_path=ckpt)[0].table
    got = learned[learned["issue_date"] == "1976-03-04"].sort_values("lead_days")
    assert np.allclose(got["median"].to_numpy(), one["median"].to_numpy(), rtol=1e-4, atol=1e-4)
    assert np.allclose(got["q95"].to_numpy(), one["q95"].to_numpy(), rtol=1e-4, atol=1e-4)
    day = arch.table[arch.table["issue_date"] == pd.Timestamp("1976-03-04")]
    table = pd.DataFrame({"date": day["valid_date"].to_numpy(), "precipitation": day["precipitation"].to_numpy(),
                          "temperature": day["temperature"].to_numpy()})
    fresh = warned_forecast(bundle, "32006", data_dir=d, issue_date="1976-03-04", leads=3, weather_forecast=table,
                            model_path=ckpt)[0].table
    assert np.allclose(fresh["median"].to_numpy(), one["median"].to_numpy(), rtol=1e-4, atol=1e-4)
    # the flows after the last issue date do not move the reforecast
    ts_file = next((d / "timeseries").glob("*32006*"))
    changed = tmp_path / "data"
    shutil.copytree(d, changed)
    ts = pd.read_csv(ts_file, parse_dates=["date"])
    ts.loc[ts["date"] > "1976-03-06", ["discharge_spec", "discharge_vol"]] *= 3.0
    ts.to_csv(changed / "timeseries" / ts_file.name, index=False)
    after = reforecast(bundle, "32006", "1976-03-01", "1976-03-06", **{**kw, "data_dir": changed})[0]
    assert np.allclose(after["median"], learned["median"])
