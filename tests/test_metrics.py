"""Metrics: hand-computed values, properties, vectorisation, NaN handling and a hydroeval cross-check."""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sca2lstm.evaluation import metrics as M

OBS = np.array([1.0, 2.0, 3.0, 4.0])
SIM = np.array([2.0, 2.0, 3.0, 5.0])


def test_hand_computed_values():
    # mean obs 2.5, SS_obs 5, SSE 2; mean sim 3, SS_sim 6, cross-products 5
    assert M.nse(OBS, SIM) == pytest.approx(0.6)
    assert M.rmse(OBS, SIM) == pytest.approx(math.sqrt(0.5))
    assert M.mae(OBS, SIM) == pytest.approx(0.5)
    assert M.pbias(OBS, SIM) == pytest.approx(20.0)  # sim total 12 vs obs 10: +20 % overestimation
    assert M.pbias(SIM, OBS) == pytest.approx(-100 * 2 / 12)
    r, alpha, beta = 5 / math.sqrt(30), math.sqrt(6 / 5), 1.2
    k = M.kge(OBS, SIM)
    assert k["r"] == pytest.approx(r)
    assert k["alpha"] == pytest.approx(alpha)
    assert k["beta"] == pytest.approx(beta)
    assert k["kge"] == pytest.approx(1 - math.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2))
    assert M.r2(OBS, SIM) == pytest.approx(5 / 6)


def test_scalar_results_are_python_floats():
    assert type(M.nse(OBS, SIM)) is float
    res = M.all_metrics(OBS, SIM)
    assert list(res) == list(M.METRIC_NAMES)
    assert type(res["n_days"]) is int and res["n_days"] == 4
    assert all(type(res[k]) is float for k in M.METRIC_NAMES if k != "n_days")


def test_perfect_simulation():
    obs = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0])
    res = M.all_metrics(obs, obs.copy())
    assert res["nse"] == 1.0
    assert res["kge"] == pytest.approx(1.0)
    assert res["r2"] == pytest.approx(1.0)
    assert res["rmse"] == 0.0 and res["mae"] == 0.0 and res["pbias"] == 0.0


def test_mean_prediction_gives_zero_nse():
    obs = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0])
    assert M.nse(obs, np.full_like(obs, obs.mean())) == pytest.approx(0.0, abs=1e-12)
    # a constant simulation has no correlation: r (and so KGE, r2) is undefined
    assert math.isnan(M.kge(obs, np.full_like(obs, obs.mean()))["r"])


def test_nan_positions_are_ignored():
    rng = np.random.default_rng(1)
    obs, sim = rng.gamma(2, 3, 50), rng.gamma(2, 3, 50)
    obs_n, sim_n = obs.copy(), sim.copy()
    obs_n[[3, 10, 11]] = np.nan
    sim_n[[20, 41]] = np.inf
    keep = np.ones(50, bool)
    keep[[3, 10, 11, 20, 41]] = False
    got, want = M.all_metrics(obs_n, sim_n), M.all_metrics(obs[keep], sim[keep])
    assert got["n_days"] == 45
    for k in M.METRIC_NAMES:
        assert got[k] == pytest.approx(want[k], rel=1e-12)


def test_2d_rows_equal_1d_results():
    rng = np.random.default_rng(2)
    obs, sim = rng.gamma(2, 3, (4, 40)), rng.gamma(2, 3, (4, 40))
    obs[0, :5] = np.nan
    sim[1, 30:] = np.nan
    obs[2, :] = np.nan          # no valid day
    obs[3, 1:] = obs[3, 0]      # constant obs
    res = M.all_metrics(obs, sim)
    assert res["nse"].shape == (4,)
    np.testing.assert_array_equal(res["n_days"], [35, 30, 0, 40])
    for i in range(4):
        one = M.all_metrics(obs[i], sim[i])
        for k in M.METRIC_NAMES:
            np.testing.assert_allclose(res[k][i], one[k], rtol=1e-12, equal_nan=True)
    assert math.isnan(res["nse"][3]) and math.isnan(res["kge"][3])
    assert math.isnan(res["rmse"][2]) and math.isnan(res["pbias"][2])


def test_undefined_cases_are_nan_not_errors():
    assert math.isnan(M.nse([1.0], [2.0]))
    assert math.isnan(M.nse([np.nan, np.nan], [1.0, 2.0]))
    assert math.isnan(M.nse([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]))
    assert math.isnan(M.pbias([0.0, 0.0], [1.0, 2.0]))
    assert math.isnan(M.kge([-1.0, 1.0], [0.0, 1.0])["beta"])  # zero observed mean
    assert M.rmse([1.0], [3.0]) == pytest.approx(2.0)
    assert M.all_metrics([], [])["n_days"] == 0


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="incompatible shapes"):
        M.nse([1.0, 2.0, 3.0], [1.0, 2.0])


def test_valid_mask():
    m = M.valid_mask([1.0, np.nan, 3.0, 4.0], [1.0, 2.0, np.inf, 4.0])
    np.testing.assert_array_equal(m, [True, False, False, True])


def test_paired_metrics_use_the_same_days():
    obs = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0])
    model = np.array([1.1, np.nan, 3.0, 4.2, 4.8, 6.1, 7.3])
    pers = np.array([np.nan, 1.0, 2.0, np.nan, 4.0, 5.0, 6.0])
    res = M.paired_metrics(obs, model, pers)
    days = [4, 5, 6]
    assert res["n_days"] == 3
    assert res["model"]["n_days"] == 3 and res["persistence"]["n_days"] == 3
    assert res["model"]["nse"] == pytest.approx(M.nse(obs[days], model[days]))
    assert res["persistence"]["rmse"] == pytest.approx(M.rmse(obs[days], pers[days]))


def test_metrics_table_flattens():
    res = M.paired_metrics(OBS, SIM, OBS)
    df = M.metrics_table({"basin_1": res, "basin_2": {"nse": 0.5}})
    assert list(df.index) == ["basin_1", "basin_2"]
    assert df.loc["basin_1", "model.nse"] == pytest.approx(0.6)
    assert df.loc["basin_1", "persistence.nse"] == 1.0
    assert df.loc["basin_2", "nse"] == 0.5


def test_agrees_with_hydroeval():
    he = pytest.importorskip("hydroeval")
    rng = np.random.default_rng(12345)
    obs = rng.gamma(2.0, 5.0, 365)
    sim = obs * rng.normal(1.05, 0.2, 365) + rng.normal(0, 1, 365)
    obs[[5, 50, 300]] = np.nan  # hydroeval also deletes pairwise
    assert M.nse(obs, sim) == pytest.approx(he.evaluator(he.nse, sim, obs)[0], rel=1e-10)
    assert M.rmse(obs, sim) == pytest.approx(he.evaluator(he.rmse, sim, obs)[0], rel=1e-10)
    # hydroeval.kge returns rows [kge, r, alpha, beta]
    kge_he = he.evaluator(he.kge, sim, obs)[:, 0]
    k = M.kge(obs, sim)
    np.testing.assert_allclose([k["kge"], k["r"], k["alpha"], k["beta"]], kge_he, rtol=1e-10)
    # hydroeval's pbias is 100 * sum(obs - sim) / sum(obs): the opposite sign of ours
    assert M.pbias(obs, sim) == pytest.approx(-he.evaluator(he.pbias, sim, obs)[0], rel=1e-10)


_finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.integers(2, 30), elements=_finite), st.data())
def test_nse_property(obs, data):
    assume(np.ptp(obs) > 1e-6 * max(1.0, np.abs(obs).max()))
    assert M.nse(obs, obs) == 1.0
    sim = data.draw(arrays(np.float64, obs.shape, elements=_finite))
    assert M.nse(obs, sim) <= 1.0


# ----------------------------------------------------------------------------- high flows and gaps
def _rows_with_gaps(seed=0, shape=(4, 300)):
    rng = np.random.default_rng(seed)
    obs = rng.gamma(0.8, 5.0, shape)
    sim = obs * rng.uniform(0.6, 1.3, shape) + rng.normal(0, 0.5, shape)
    obs[rng.random(shape) < 0.1] = np.nan
    sim[rng.random(shape) < 0.05] = np.inf
    return obs, sim


def test_fhv_hand_computed_and_ranked_separately():
    obs = np.arange(1.0, 101.0)                       # 100 days: the top 2 % are 100 and 99
    assert M.fhv(obs, obs * 1.1) == pytest.approx(10.0)
    assert M.fhv(obs, obs[::-1]) == pytest.approx(0.0)  # same flow duration curve, other days
    sim = obs.copy()
    sim[-2:] = [50.0, 49.5]                           # both floods missed: top of sim is now 98, 97
    assert M.fhv(obs, sim) == pytest.approx(100 * ((98 + 97) - (100 + 99)) / (100 + 99))
    assert M.fhv(obs[:50], obs[:50] * 2) == pytest.approx(100.0)   # h = ceil(0.02 * 50) = 1 day
    assert math.isnan(M.fhv([1.0], [2.0])) and math.isnan(M.fhv([0.0, 0.0], [1.0, 1.0]))
    with pytest.raises(ValueError, match="top"):
        M.fhv(obs, obs, top=0.0)


def test_fhv_vectorised_and_pairwise_deletion():
    obs, sim = _rows_with_gaps()
    rows = M.fhv(obs, sim)
    assert rows.shape == (4,)
    for i in range(4):
        ok = np.isfinite(obs[i]) & np.isfinite(sim[i])
        o, s = np.sort(obs[i][ok])[::-1], np.sort(sim[i][ok])[::-1]
        h = math.ceil(0.02 * ok.sum())
        assert rows[i] == pytest.approx(100 * (s[:h].sum() - o[:h].sum()) / o[:h].sum())


def _flood_stats_loop(obs, sim, top=0.01):
    """The benchmark's former per-basin code, as the reference."""
    ok = np.isfinite(obs) & np.isfinite(sim)
    obs, sim = obs[ok], sim[ok]
    flood = obs >= np.quantile(obs, 1 - top)
    sq = (sim - obs) ** 2
    return {"max_obs": obs.max(), "max_sim": sim.max(),
            "top_bias": (sim[flood] - obs[flood]).sum() / obs[flood].sum(),
            "top_sq_error_share": sq[flood].sum() / sq.sum() if sq.sum() > 0 else float("nan"),
            "n_top": int(flood.sum())}


def test_flood_stats_match_a_plain_loop_row_by_row():
    obs, sim = _rows_with_gaps(1)
    got = M.flood_stats(obs, sim)
    for i in range(obs.shape[0]):
        ref = _flood_stats_loop(obs[i], sim[i])
        one = M.flood_stats(obs[i], sim[i])
        for k, v in ref.items():
            assert got[k][i] == pytest.approx(v, rel=1e-12), k
            assert one[k] == pytest.approx(v, rel=1e-12), k
    assert type(one["top_bias"]) is float and type(one["n_top"]) is int


def test_flood_stats_properties():
    obs, _ = _rows_with_gaps(2, shape=(500,))
    exact = M.flood_stats(obs, obs)
    assert exact["top_bias"] == 0.0 and math.isnan(exact["top_sq_error_share"])
    assert exact["max_sim"] == exact["max_obs"] == np.nanmax(obs) and exact["n_top"] >= 1
    half = M.flood_stats(obs, obs * 0.5)
    assert half["top_bias"] == pytest.approx(-0.5)
    assert 0.01 <= half["top_sq_error_share"] <= 1        # the largest flows carry the largest errors
    empty = M.flood_stats([np.nan, np.nan], [1.0, 2.0])
    assert math.isnan(empty["max_obs"]) and math.isnan(empty["top_bias"]) and empty["n_top"] == 0


def test_after_gap_scores_on_the_same_days_and_vectorised():
    rng = np.random.default_rng(3)
    obs = rng.gamma(1.0, 3.0, (3, 400))
    pers = np.roll(obs, 1, axis=-1)
    sim = obs + rng.normal(0, 0.3, obs.shape)
    after = rng.random(obs.shape) < 0.15
    sim[after] += rng.normal(0, 3.0, int(after.sum()))   # worse right after a gap
    pers[:, :5] = np.nan
    got = M.after_gap_scores(obs, sim, pers, after)
    for i in range(3):
        ok = np.isfinite(pers[i])
        aft = ok & after[i]
        assert got["nse"][i] == pytest.approx(M.nse(obs[i][ok], sim[i][ok]))
        assert got["persistence_nse"][i] == pytest.approx(M.nse(obs[i][ok], pers[i][ok]))
        assert got["after_gap_nse"][i] == pytest.approx(M.nse(obs[i][aft], sim[i][aft]))
        assert got["after_gap_persistence_nse"][i] == pytest.approx(M.nse(obs[i][aft], pers[i][aft]))
        assert got["n_days"][i] == ok.sum() and got["n_after_gap"][i] == aft.sum()
    assert (got["after_gap_nse"] < got["nse"]).all()
    none = M.after_gap_scores(obs[0], sim[0], pers[0], np.zeros(400, bool))
    assert math.isnan(none["after_gap_nse"]) and none["n_after_gap"] == 0 and not math.isnan(none["nse"])


def test_median_interval_holds_the_sample_median_and_repeats_with_its_seed():
    v = np.random.default_rng(3).normal(0.7, 0.1, size=40)
    lo, hi = M.median_interval(v)
    assert v.min() <= lo <= np.median(v) <= hi <= v.max()
    assert (lo, hi) == M.median_interval(v)
    assert M.median_interval(np.append(v, [np.nan, np.nan])) == (lo, hi)  # NaN basins are left out


def test_median_interval_degenerate_samples():
    assert M.median_interval([0.8, 0.8, 0.8]) == (0.8, 0.8)
    assert all(math.isnan(x) for x in M.median_interval([0.5, np.nan, 0.9]))


def test_median_interval_covers_the_true_median_about_as_often_as_its_level():
    # 30 basins from a distribution with median 0; a 90 % interval should hold 0 in roughly 90 % of samples
    # (the percentile bootstrap of a median is a little off at this size: a band, not the exact level).
    rng = np.random.default_rng(0)
    hits = [lo <= 0.0 <= hi for lo, hi in (M.median_interval(rng.standard_normal(30), n_resamples=999, seed=i)
                                           for i in range(200))]
    assert 0.80 <= np.mean(hits) <= 0.97
