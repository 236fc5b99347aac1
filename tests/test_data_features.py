"""Features are causal, scalers see only the training period, and missing data stays flagged.

- Causality: changing anything after day t (forcings and discharge) leaves every feature up to and
  including day t unchanged; observed discharge of day t reaches the features only at t + lead_days.
- Scalers: changing the validation and test periods of a copy of the data changes no fitted statistic.
- Gaps: the target is NaN exactly where the CSV has no discharge, the lagged discharge exactly one
  day later, and the model sees those inputs as 0 with a missing flag.
"""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import make_tiny_config
from sca2lstm.config import load_config
from sca2lstm.data import camels_gb
from sca2lstm.data.dataset import load_basin
from sca2lstm.data.features import feature_names, raw_features
from sca2lstm.training.loss import masked_mse

T_CUTS = [0, 1, 6, 29, 30, 31, 400, 2000]  # around the 7/30-day windows and the SSI window


@pytest.fixture(scope="module")
def real_32006():
    from conftest import SHARED_CAMELS
    if not (SHARED_CAMELS / "timeseries").is_dir():
        pytest.skip("the CAMELS-GB sample is not available")
    return camels_gb.read_timeseries(SHARED_CAMELS, "32006")


@pytest.fixture(scope="module")
def synthetic_10002(tiny_data_dir):
    return camels_gb.read_timeseries(tiny_data_dir, "10002")


def _perturb_after(df: pd.DataFrame, t: int, how: str) -> pd.DataFrame:
    out = df.copy()
    tail = out.iloc[t + 1:]
    if how == "scale":
        out.iloc[t + 1:] = tail * 3.0 + 7.0
    elif how == "nan":
        out.iloc[t + 1:] = np.nan
    elif how == "zero":
        out.iloc[t + 1:] = 0.0
    return out


def _eq(a, b):
    return np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("source", ["real", "synthetic"])
@pytest.mark.parametrize("lead", [1, 3])
def test_features_up_to_day_t_ignore_everything_after_t(source, lead, request):
    df = request.getfixturevalue("real_32006" if source == "real" else "synthetic_10002")
    cfg = load_config(overrides={"data": {"lead_days": lead}})
    names = feature_names(cfg)
    for derived in ("precip_sum_7d", "precip_sum_30d", "high_precip_days", "low_precip_days", "ssi",
                    f"discharge_lag{lead}"):
        assert derived in names
    x, y = raw_features(df, cfg)
    assert x.shape == (len(df), len(names)) and y.shape == (len(df),)
    for t in T_CUTS:
        for how in ("scale", "nan", "zero"):
            x2, y2 = raw_features(_perturb_after(df, t, how), cfg)
            assert _eq(x[:t + 1], x2[:t + 1]), (source, t, how, names)
            assert _eq(y[:t + 1], y2[:t + 1])
            # the perturbation does reach the later days (the check above is not vacuous)
            assert not _eq(x[t + 1:], x2[t + 1:])


@pytest.mark.parametrize("source", ["real", "synthetic"])
@pytest.mark.parametrize("lead", [1, 2])
def test_discharge_of_day_t_enters_the_features_at_t_plus_lead(source, lead, request):
    df = request.getfixturevalue("real_32006" if source == "real" else "synthetic_10002")
    cfg = load_config(overrides={"data": {"lead_days": lead}})
    names = feature_names(cfg)
    j_lag, j_ssi = names.index(f"discharge_lag{lead}"), names.index("ssi")
    met = [i for i, n in enumerate(names) if n not in (f"discharge_lag{lead}", "ssi")]
    x, _ = raw_features(df, cfg)
    q = df["discharge_vol"].to_numpy()
    for t0 in [40, 500, 2500]:
        t = t0 + int(np.isfinite(q[t0:]).argmax())  # the first observed day from t0 on
        assert np.isfinite(q[t]) and t + lead < len(q)
        df2 = df.copy()
        df2.iloc[t, df2.columns.get_loc("discharge_vol")] = q[t] * 5 + 1
        x2, y2 = raw_features(df2, cfg)
        # nothing on or before t + lead - 1 changes: the forecast made at t may not see Q(t)
        assert _eq(x[:t + lead], x2[:t + lead]), (source, t)
        # at t + lead the lagged discharge is exactly the new Q(t), and the SSI state moves
        assert x2[t + lead, j_lag] == np.float32(q[t] * 5 + 1)
        assert x[t + lead, j_lag] == np.float32(q[t])
        assert x2[t + lead, j_ssi] != x[t + lead, j_ssi]
        # the meteorological features never depend on discharge
        assert _eq(x[:, met], x2[:, met])
        assert y2[t] == np.float32(q[t] * 5 + 1)


def test_derived_features_values(synthetic_10002):
    """Spot-check the derived features against a direct computation (trailing windows only)."""
    df = synthetic_10002
    cfg = load_config()
    names = feature_names(cfg)
    x, _ = raw_features(df, cfg)
    p = df["precipitation"].to_numpy()
    q = df["discharge_vol"].to_numpy()
    for t in [29, 30, 100, 1000, len(df) - 1]:
        assert x[t, names.index("precip_sum_7d")] == pytest.approx(p[t - 6:t + 1].sum(), rel=1e-5)
        assert x[t, names.index("precip_sum_30d")] == pytest.approx(p[t - 29:t + 1].sum(), rel=1e-5)
        dry = 0
        while t - dry >= 0 and p[t - dry] < cfg.data.low_precip_mm:
            dry += 1
        assert x[t, names.index("low_precip_days")] == dry
        wet = 0
        while t - wet >= 0 and p[t - wet] >= cfg.data.high_precip_mm:
            wet += 1
        assert x[t, names.index("high_precip_days")] == wet
        w = q[t - 30:t]  # the 30 days before t (lead 1), NaN skipped
        if np.isfinite(w).sum() >= 15:
            assert x[t, names.index("ssi")] == pytest.approx(np.log(np.nanmean(w) + 1e-3), rel=1e-5, abs=1e-6)
    assert np.isnan(x[:6, names.index("precip_sum_7d")]).all()  # no partial sums at the start


# ------------------------------------------------------------------------------------------ scalers
def _scale_rows_from(path, first_day: str, factor: float) -> int:
    """Multiply every value on and after ``first_day`` (forcings and discharge) by ``factor``."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    n = 0
    for r in rows[1:]:
        if r[0] >= first_day:
            r[1:] = [f"{float(v) * factor:.2f}" if v not in ("", "NaN") else v for v in r[1:]]
            n += 1
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return n


def test_scalers_ignore_the_validation_and_test_periods(tiny_data_dir, tmp_path):
    from sca2lstm.training.pretrain import prepare_pretraining_data

    cfg = make_tiny_config(tiny_data_dir)
    assert cfg.data.val_start > cfg.data.train_end
    base = prepare_pretraining_data(cfg, tiny_data_dir)
    changed = tmp_path / "camels"
    shutil.copytree(tiny_data_dir, changed)
    for f in (changed / "timeseries").glob("*.csv"):
        assert _scale_rows_from(f, cfg.data.val_start, 1.7) > 365
    other = prepare_pretraining_data(make_tiny_config(changed), changed)
    assert base.scalers.to_dict() == other.scalers.to_dict()
    # the copy really differs after the training period
    for r0, r1 in zip(base.data.records, other.data.records):
        i = r0.index_of(cfg.data.val_start)
        assert _eq(r0.x[:i], r1.x[:i]) and not _eq(r0.x[i:], r1.x[i:])


# ------------------------------------------------------------------------------------------ gaps
def _csv_discharge_missing(path) -> np.ndarray:
    with open(path, newline="", encoding="utf-8") as f:
        return np.array([r["discharge_vol"].strip() in ("", "NaN", "nan") for r in csv.DictReader(f)])


@pytest.fixture(params=["real", "synthetic"])
def gap_basin(request, tiny_data_dir):
    """10003 from the real sample (4613 missing days, one block at the start) or the tiny synthetic
    data (scattered gaps and outages), with the config to use."""
    if request.param == "real":
        data_dir = request.getfixturevalue("shared_camels")
        cfg = load_config()
    else:
        data_dir, cfg = tiny_data_dir, make_tiny_config(tiny_data_dir)
    return request.param, data_dir, cfg


def test_gaps_in_discharge_are_nan_and_shift_into_the_lagged_input(gap_basin):
    source, data_dir, cfg = gap_basin
    rec = load_basin(data_dir, "10003", cfg)
    miss = _csv_discharge_missing(camels_gb.timeseries_file(data_dir, "10003"))
    assert len(miss) == len(rec.y)
    if source == "real":
        assert miss.sum() == 4613
    else:
        first_obs = int((~miss).argmax())
        assert miss[first_obs:].any(), "the synthetic 10003 should have gaps inside its record"
    np.testing.assert_array_equal(np.isnan(rec.y), miss)
    lag = np.isnan(rec.x[:, feature_names(cfg).index("discharge_lag1")])
    assert lag[0]
    np.testing.assert_array_equal(lag[1:], miss[:-1])
    # meteorological inputs are complete in both sources
    assert np.isfinite(rec.x[:, :len(cfg.data.dynamic_inputs)]).all()


def test_gathered_windows_flag_missing_inputs_and_keep_observed_targets(gap_basin):
    from sca2lstm.training.pretrain import prepare_pretraining_data

    source, data_dir, cfg = gap_basin
    prep = prepare_pretraining_data(cfg, data_dir, basins=["10003"])
    data, rec = prep.data, prep.data.records[0]
    j_lag = feature_names(cfg).index("discharge_lag1")
    n = len(rec.dates)
    x, xm, y, st, stm = data.gather(np.array([0]), np.array([0]), n)
    lag_nan = np.isnan(rec.x[:, j_lag])
    np.testing.assert_array_equal(xm[0, :, j_lag], lag_nan)
    np.testing.assert_array_equal(xm[0], np.isnan(rec.x))
    assert (x[0][xm[0]] == 0).all() and np.isfinite(x).all()
    np.testing.assert_array_equal(np.isnan(y[0]), np.isnan(rec.y))
    assert st.shape == stm.shape == (1, len(cfg.data.static_attributes)) and not stm.any()

    # Training windows: every window has loss steps inside the training period after spin-up, and
    # windows whose inputs have gaps are kept when their targets are observed.
    seq, spin = cfg.training.seq_len, cfg.training.spinup
    rng = np.random.default_rng(0)
    b, s = data.training_windows(prep.train_periods, seq, spin, coverage=4.0, rng=rng)
    mask = data.loss_mask(b, s, seq, spin, prep.train_periods)
    i0, i1 = prep.train_periods[0]
    day = s[:, None] + np.arange(seq)[None, :]
    assert not mask[:, :spin].any()
    assert ((day >= i0) & (day < i1))[mask].all()
    assert mask.any(axis=1).all()
    xb, xmb, yb, _, _ = data.gather(b, s, seq)
    target_seen = mask & np.isfinite(yb)
    gappy = xmb[:, :, j_lag] & target_seen  # lagged discharge missing, target observed, in the loss
    assert gappy.any(), "windows with missing inputs but observed targets should be trained on"
    pred = torch.randn(yb.shape)
    loss = masked_mse(pred, torch.from_numpy(yb), torch.from_numpy(mask))
    want = ((pred.numpy() - yb)[target_seen] ** 2).mean()
    assert torch.isfinite(loss) and loss.item() == pytest.approx(float(want), rel=1e-5)


# ------------------------------------------------------------------------------------------ loss
def test_masked_mse_ignores_nan_targets_and_positions_outside_the_mask():
    target = torch.tensor([[1.0, float("nan"), 3.0, 4.0], [float("nan"), 2.0, 0.0, 5.0]])
    mask = torch.tensor([[True, True, True, False], [True, True, False, True]])
    pred = torch.tensor([[2.0, 100.0, 3.0, -50.0], [7.0, 0.0, 9.0, 5.0]], requires_grad=True)
    loss = masked_mse(pred, target, mask)
    # valid: (0,0) err 1, (0,2) err 0, (1,1) err -2, (1,3) err 0 -> (1 + 0 + 4 + 0) / 4
    assert loss.item() == pytest.approx(1.25)
    loss.backward()
    g = pred.grad
    assert torch.isfinite(g).all()
    assert (g[~(mask & torch.isfinite(target))] == 0).all()
    # changing predictions where the target is NaN or outside the mask changes nothing
    pred2 = pred.detach().clone()
    pred2[0, 1], pred2[0, 3], pred2[1, 0], pred2[1, 2] = 1e6, -1e6, float("nan"), 1e6
    assert masked_mse(pred2, target, mask).item() == pytest.approx(1.25)
    # nothing valid: NaN, so the trainer can skip the batch
    assert torch.isnan(masked_mse(pred, target, torch.zeros_like(mask)))


# ------------------------------------------------------------------------------------ rain sums with gaps
def test_a_rain_sum_with_a_few_days_missing_is_the_sum_of_the_days_present_rescaled_to_the_window():
    """A window short of a few days of rain gives the sum of the days present times days / present (6 of 7 days,
    24 of 30 at least), below that it is missing; rain in whole numbers keeps every sum exact."""
    from sca2lstm.data.features import precip_sum, precip_sum_min_days

    assert (precip_sum_min_days(7), precip_sum_min_days(30)) == (6, 24)
    p = pd.Series(np.arange(1.0, 41.0))
    p[[10, 12]] = np.nan
    s7 = precip_sum(p, 7)
    assert np.isnan(s7[:6]).all()                                   # no sum before the first whole window
    assert s7[9] == 4 + 5 + 6 + 7 + 8 + 9 + 10                      # whole: the plain sum
    assert s7[10] == (5 + 6 + 7 + 8 + 9 + 10) * 7 / 6               # day 10 missing: 6 of 7 present
    assert s7[11] == (6 + 7 + 8 + 9 + 10 + 12) * 7 / 6
    assert np.isnan(s7[12:17]).all()                                # days 10 and 12 both in the window: 5 of 7
    assert s7[17] == (12 + 14 + 15 + 16 + 17 + 18) * 7 / 6
    q = pd.Series(np.ones(40))
    q[[0, 5, 10, 15, 20, 25]] = np.nan                              # 24 of the first 30 days present
    assert precip_sum(q, 30)[29] == 30.0
    q[29] = np.nan                                                  # 23 of 30: too few
    assert np.isnan(precip_sum(q, 30)[29])


def test_whole_rain_windows_give_the_plain_sum_bit_for_bit(synthetic_10002):
    """Where every day of a window has rain the sum is that of ``rolling(days).sum()`` bit for bit, with or without
    gaps elsewhere in the record: models trained on complete records read what they always read."""
    cfg = load_config()
    names = feature_names(cfg)
    df = synthetic_10002.copy()
    p = df["precipitation"].copy()
    x, _ = raw_features(df, cfg)
    gappy = df.assign(precipitation=p.mask(np.arange(len(p)) % 97 == 5))
    xg, _ = raw_features(gappy, cfg)
    for days in (7, 30):
        j = names.index(f"precip_sum_{days}d")
        plain = p.rolling(days, min_periods=days).sum().to_numpy().astype(np.float32)
        assert np.array_equal(x[:, j], plain, equal_nan=True)
        whole = gappy["precipitation"].rolling(days, min_periods=days).sum().to_numpy()
        at = np.isfinite(whole)
        assert np.array_equal(xg[at, j], whole[at].astype(np.float32))
        assert np.isfinite(xg[days - 1:, j]).all()                  # one gap in 97 days never leaves a sum missing


def test_a_forecasts_lead_days_take_the_rain_sums_of_the_series_with_gaps_before_the_issue_day():
    """The lead days' sums rebuilt in model windows (a weather forecast put in) equal ``precip_sum`` of the observed
    rain followed by the forecast's: a gap before the issue day is rescaled over, as in the record's features."""
    from sca2lstm.data.features import precip_sum
    from sca2lstm.weather.windows import LeadWeather

    names = ["precipitation", "precip_sum_7d", "precip_sum_30d"]
    lw = LeadWeather(names, np.zeros(3), np.ones(3))
    L, pos, leads = 45, 37, 7
    rain = np.arange(L, dtype=np.float64) % 5                       # whole numbers: every sum is exact
    x = np.zeros((1, L, 3), dtype=np.float32)
    miss = np.zeros((1, L, 3), dtype=bool)
    x[0, :, 0] = rain
    gaps = [20, 30, 36]                                             # observed days without rain data
    miss[0, gaps, 0] = True
    forecast = {"precipitation": np.array([[3.0, 0.0, 1.0, 4.0, 2.0, 0.0, 5.0]])}
    x2, m2 = lw.put(x, miss, pos, forecast)
    series = pd.Series(rain)
    series[gaps] = np.nan
    series[pos + 1:pos + 1 + leads] = forecast["precipitation"][0]
    day = np.arange(pos + 1, pos + 1 + leads)
    for j, days in ((1, 7), (2, 30)):
        want = precip_sum(series, days)[day]
        assert np.isfinite(want).all()
        assert np.array_equal(x2[0, day, j], want.astype(np.float32))
        assert not m2[0, day, j].any()
