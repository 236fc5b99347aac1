"""Warned forecasts and reforecasts: the reforecast table equals single forecasts, the CLI writes what it says."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from sca2lstm.checkpoint import load_model
from sca2lstm.evaluation.calibration import adjust, calibrate, calibration_path, fit_lead_blend
from sca2lstm.evaluation.recession import fit_recession
from sca2lstm.evaluation.levels import Level
from sca2lstm.evaluation.reforecast import Warnings, add_exceedance, reforecast, warned_forecast, warning_sentence
from tolerance import HALF_4TH_DECIMAL, assert_forecasts_close, flow_tol, probability_tol, spread_gain

LEVELS = {"alert": 3.0, "danger": 6.0}


@pytest.fixture(scope="module")
def bundle(pretrained_ckpt):
    return load_model(pretrained_ckpt)


@pytest.mark.slow
def test_reforecast_table_equals_single_forecasts_on_sampled_days(bundle, pretrained_ckpt, tiny_data_dir):
    table, warnings = reforecast(bundle, "32006", "1976-03-01", "1976-05-31", data_dir=tiny_data_dir,
                                 model_path=pretrained_ckpt, user_levels=LEVELS)
    assert table["issue_date"].nunique() == 92 and set(table["lead_days"]) == set(range(1, 8))
    qcols, taus = ["q05", "q25", "median", "q75", "q95"], [0.05, 0.25, 0.5, 0.75, 0.95]
    pcols = ["p_exceed_alert", "p_exceed_danger"]
    for day in ("1976-03-01", "1976-04-17", "1976-05-31"):
        fc, _, first = warned_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=day, leads=7,
                                       model_path=pretrained_ckpt, user_levels=LEVELS)
        rows = table[table["issue_date"] == pd.Timestamp(day)].reset_index(drop=True)
        # float32 model outputs of one window in another batch (tests/tolerance.py): the flows within flow_tol
        # (the quantiles spread by the calibration), the probabilities within probability_tol of those shifts
        # plus one unit of the 4 decimals both are rounded to
        assert_forecasts_close(rows, fc.table, bundle, "32006", qcols, spread_from=pretrained_ckpt,
                               last_obs=rows["persistence"], msg=day)
        dq = flow_tol(bundle, "32006", np.r_[fc.table[qcols].to_numpy(float).ravel(), rows["persistence"]],
                      spread_gain(pretrained_ckpt))
        dp = probability_tol(dq, fc.table[qcols].to_numpy(float), taus) + 2 * HALF_4TH_DECIMAL
        assert dp < 0.02, dp  # tied quantiles (an infinite density) would make the check below vacuous
        np.testing.assert_allclose(rows[pcols].to_numpy(float), fc.table[pcols].to_numpy(float), rtol=0, atol=dp)
        # a warning follows from its probabilities: the same where both paths rounded them alike
        alike = (rows[pcols].to_numpy() == fc.table[pcols].to_numpy()).all(axis=1)
        assert alike.any() and (rows["warn_alert"] == fc.table["warn_alert"])[alike].all()
        assert (rows["valid_date"] == fc.table["valid_date"]).all()
    # the observed flow and persistence come from the record
    obs = table.loc[(table["issue_date"] == pd.Timestamp("1976-03-01")) & (table["lead_days"] == 1), "observed"]
    later = table.loc[(table["issue_date"] == pd.Timestamp("1976-03-02")) & (table["lead_days"] == 1), "persistence"]
    assert obs.iloc[0] == pytest.approx(later.iloc[0])


def test_blend_per_lead_fits_each_lead_and_shifts_quantiles_alike():
    rng = np.random.default_rng(0)
    n = 400
    pers = rng.gamma(2.0, 3.0, n)
    obs = np.stack([pers * (1 + 0.05 * k) + rng.normal(0, 0.1 + 0.2 * k, n) for k in range(3)], axis=1)
    model = obs + rng.normal(0, 2.0, (n, 3))  # a noisy model: persistence is worth weight at lead 1
    a = fit_lead_blend(model, obs, pers)
    assert a.shape == (3,) and np.all((a >= 0) & (a <= 1)) and a[0] < a[2]
    q = np.stack([model - 1, model, model + 1], axis=-1)
    med, qs = adjust(model, np.maximum(q, 0), pers, a)
    inner = (q[..., 0] > 0)
    assert np.allclose((qs[..., 2] - qs[..., 1])[inner & (med > 1)], 1.0)


def test_recession_bound_follows_the_fastest_recession():
    # a record that only ever falls by at most 10 % a day: the bound after k days from Q0 is ~ Q0 * 0.9^k
    rng = np.random.default_rng(0)
    q = [10.0]
    for _ in range(3000):
        q.append(q[-1] * rng.uniform(0.9, 0.999) if rng.uniform() < 0.8 else q[-1] * rng.uniform(1.0, 3.0))
    rb = fit_recession(np.array(q))
    b = rb.bound([20.0, np.nan], 5)
    assert np.all(np.diff(b[0]) < 0) and b[1].tolist() == [0.0] * 5
    assert np.allclose(b[0], 20.0 * 0.9 ** np.arange(1, 6), rtol=0.02)
    # two days since the last observation: the bound starts two steps further down
    assert b[0][2] == pytest.approx(rb.bound([20.0], 3, gap=2)[0][0])
    med, qs = adjust(np.array([[1.0, 30.0]]), np.array([[[0.5, 1.0, 2.0], [1.0, 30.0, 40.0]]]), [20.0],
                     bound=np.array([[18.0, 16.2]]))
    assert med.tolist() == [[18.0, 30.0]] and qs[0, 0].tolist() == [18.0, 18.0, 18.0]


def test_a_probability_written_as_the_warning_probability_warns():
    """P(exceed) is kept to the 4 decimals forecast.csv holds: a lead whose file says 0.1500 against a warning
    probability of 0.15 warns (0.149996 unrounded would not), and the printed line marks it."""
    table = pd.DataFrame({"lead_days": [1], "median": [9.0], "q05": [5.0], "q25": [8.0], "q75": [10.0],
                          "q95": [20.0]})
    # between q75 and q95 the CDF is linear: P(Q > 15.0002) = 0.25 - 0.2 * 0.50002 = 0.149996
    lv = Level("alert", 15.0002, "user", warn_probability=0.15)
    out = add_exceedance(table, Warnings({"alert": lv}))
    assert out["p_exceed_alert"].iloc[0] == 0.15 and bool(out["warn_alert"].iloc[0])


def _strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_levels_json_of_a_level_with_a_nan_interval_is_strict_json(tmp_path):
    """A level fitted on few annual maxima can have a NaN 90 % interval: levels.json (of a forecast and of a
    reforecast) says null there, as JSON has no NaN (jq, R and browsers refuse a file that writes it)."""
    from sca2lstm.evaluation.reforecast import write_reforecast

    lv = Level("q2y", 12.5, "glo, 1970-1975 (5 annual maxima)", ci=(float("nan"), float("inf")), warn_probability=0.3)
    w = Warnings({"q2y": lv}, {"q2y": "calibration"})
    doc = _strict_json(w.json_text({"q2y": None}))
    assert doc["q2y"]["ci90"] == [None, None] and doc["q2y"]["value"] == 12.5
    assert doc["q2y"]["first_warning_lead"] is None and doc["q2y"]["warn_probability"] == 0.3
    table = pd.DataFrame({"issue_date": ["2020-01-01"], "median": [np.nan]})
    table.attrs["weather"] = {"source": "archive", "rain_ratio": float("nan")}
    write_reforecast(table, w, tmp_path / "ref")
    assert _strict_json((tmp_path / "ref" / "levels.json").read_text())["q2y"]["ci90"] == [None, None]
    assert _strict_json((tmp_path / "ref" / "weather.json").read_text())["rain_ratio"] is None


def test_warning_sentence_says_which_levels_the_last_observed_flow_is_already_above():
    levels = {n: Level(n, v, "user", warn_probability=0.5) for n, v in (("alert", 10.0), ("danger", 20.0),
                                                                        ("extreme", 50.0))}
    table = pd.DataFrame({"valid_date": pd.to_datetime(["2020-06-02", "2020-06-03"]),
                          **{f"p_exceed_{n}": [0.1, 0.2] for n in levels}})
    none = {n: 0 for n in levels}
    falling = warning_sentence("b", none, Warnings(levels), table, (pd.Timestamp("2020-06-01"), 43.4))
    assert falling.endswith("next 2 days (levels: alert, danger, extreme). Observed on 2020-06-01: 43.4 m3/s, "
                            "above danger, alert."), falling
    assert "Observed" not in warning_sentence("b", none, Warnings(levels), table, (pd.Timestamp("2020-06-01"), 9.0))
    assert "Observed" not in warning_sentence("b", none, Warnings(levels), table, (pd.Timestamp("2020-06-01"), np.nan))
    assert warning_sentence("b", none, Warnings(levels), table) == warning_sentence("b", none, Warnings(levels), table,
                                                                                   None)


def test_a_warning_probability_for_a_forecast_without_levels_says_there_are_none(pretrained_ckpt, tiny_data_dir,
                                                                                 tmp_path, capsys):
    """--warn_probability for a station whose record fits no level and with none given is one line saying so and
    how to set one (it ended 'the levels are ' with nothing after it), exit 2, nothing written; with a level
    given, the line names the levels there are."""
    from sca2lstm.cli.main import main

    base = ["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
            "--issue_date", "1976-06-15", "--output_dir", str(tmp_path / "fc"), "--warn_probability", "danger=0.3"]
    assert main(base) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("--warn_probability: no level named 'danger'; this forecast has no level: "
                                             "none was fitted on the record and none given (--warning_levels "
                                             "NAME=VALUE sets one)"), err
    assert main([*base, "--warning_levels", "alert=3.0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("no level named 'danger'; the levels are alert"), err
    assert not (tmp_path / "fc").exists()


def test_levels_in_stage_without_warning_levels_is_refused_naming_both_flags(pretrained_ckpt, tiny_data_dir,
                                                                              tmp_path, capsys):
    """``--levels_in stage`` alone (a station with no water level stored): the water levels the user meant are
    nowhere, so the forecast is refused in one line naming both flags, exit 2, nothing written, rather than
    issued on flows only without a word."""
    from sca2lstm.cli.main import main

    assert main(["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
                 "--issue_date", "1976-06-15", "--output_dir", str(tmp_path / "fc"), "--levels_in", "stage"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--levels_in stage is the unit of --warning_levels, and none is given" in err[0], err
    assert not (tmp_path / "fc").exists()


@pytest.mark.slow
def test_cli_warns_writes_levels_and_reforecasts_then_verifies(bundle, pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    from sca2lstm.cli.main import main

    out = tmp_path / "fc"
    calibrate(bundle, pretrained_ckpt, data_dir=tiny_data_dir)
    assert calibration_path(pretrained_ckpt).is_file()
    base = ["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
            "--output_dir", str(out), "--quiet", "--warning_levels", "alert=3.0,danger=6.0"]
    assert main([*base, "--issue_date", "1976-06-15", "--warn_probability", "danger=0.01"]) == 0
    text = capsys.readouterr().out
    folder = out / "basin_32006_issued_1976-06-15"
    lv = json.loads((folder / "levels.json").read_text())
    t = pd.read_csv(folder / "forecast.csv")
    assert {"p_exceed_alert", "warn_alert", "p_exceed_danger", "warn_danger"} <= set(t.columns)
    # the user's warning probability decides: the first lead whose P(exceed) reaches it
    first = int(np.argmax(t["p_exceed_danger"].to_numpy() >= 0.01)) + 1
    assert lv["danger"]["warn_probability"] == 0.01 and lv["danger"]["first_warning_lead"] == first
    assert t["warn_danger"].tolist() == (t["p_exceed_danger"] >= 0.01).tolist() and t["warn_danger"].any()
    assert "warning for danger" in (folder / "warnings.txt").read_text() and "warning for danger" in text
    # four training years: why there is no q2y is said, not left to guess
    assert "no return-period levels (q2y ..): the training years hold fewer than 5 complete water years" in text
    assert "warning for danger" in (folder / "report.html").read_text()
    assert "Observed on" not in (folder / "warnings.txt").read_text()   # the river is below both levels
    # a level the river is already above is said so, beside what is forecast
    flows = pd.read_csv(next(tiny_data_dir.rglob("*32006*.csv")), index_col="date")["discharge_vol"]
    q0 = float(flows["1976-06-15"])
    assert q0 * 0.9 > flows.min()   # a level the record lets warn (not below every day)
    assert main(["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
                 "--output_dir", str(tmp_path / "low"), "--quiet", "--warning_levels", f"low={q0 * 0.9:.4f}",
                 "--issue_date", "1976-06-15"]) == 0
    said = next((tmp_path / "low").rglob("warnings.txt")).read_text()
    assert f"Observed on 1976-06-15: {q0:.1f} m3/s, above low." in said, said
    # a level typed in l/s (1000 times the flow) would never warn: refused in one line, as at import
    capsys.readouterr()
    assert main([*base[:-2], "--warning_levels", "alert=3.0,danger=6000", "--issue_date", "1976-06-15"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(r"--warning_levels danger=6000 m3/s is \d+ times the record's "
                                                    r"highest daily flow .*a level in l/s\?", err), err
    # where the blend and the intervals came from: 32006 is a calibration basin of this model
    assert "Blend with persistence: stored beside the model; intervals: pooled over the calibration basins" in text
    assert main([*base, "--from", "1976-02-01", "--to", "1976-11-30"]) == 0
    ref = out / "basin_32006_reforecast_1976-02-01_1976-11-30"
    assert f"score it with: sca2lstm verify {ref / 'reforecast.csv'}" in capsys.readouterr().out
    df = pd.read_csv(ref / "reforecast.csv", dtype={"basin": str})
    assert list(df.columns[:10]) == ["issue_date", "valid_date", "lead_days", "median", "q05", "q25", "q75", "q95",
                                     "observed", "persistence"] and df.columns[-1] == "basin"
    # the table and its levels name their station (as the single forecast's levels.json does): verify refuses
    # another station's levels in one line, writing no scores
    assert (df["basin"] == "32006").all()
    assert {d["basin"] for d in json.loads((ref / "levels.json").read_text()).values()} == {"32006"}
    assert {d["basin"] for d in lv.values()} == {"32006"}
    other = json.loads((ref / "levels.json").read_text())
    for d in other.values():
        d["basin"] = "10002"
    (tmp_path / "levels_10002.json").write_text(json.dumps(other))
    capsys.readouterr()
    assert main(["verify", str(ref / "reforecast.csv"), "--levels", str(tmp_path / "levels_10002.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the levels of basin 10002, but the table forecasts basin 32006" in err, err
    assert not (ref / "verify_per_lead.csv").exists()
    assert (df["weather_members"] == 0).all()   # no weather forecast: no weather run (verify reads past it)
    assert json.loads((ref / "levels.json").read_text())["alert"]["value"] == 3.0
    capsys.readouterr()
    assert main(["verify", str(ref / "reforecast.csv")]) == 0
    per_lead = pd.read_csv(ref / "verify_per_lead.csv")
    assert per_lead["lead"].tolist() == list(range(1, 8)) and per_lead["coverage90"].between(0, 1).all()
    # 1976 is this model's test year: out of sample, and verify says what the forecasts were allowed to see
    assert not df["in_sample"].any() and (per_lead["in_sample_share"] == 0).all()
    text = capsys.readouterr().out
    assert "forecasts issue-time (only what was known at issue time, no weather forecast)" in text
    assert "in-sample" not in text
    # a reforecast of training days (1971-1974) is marked, and verify warns that its scores are no test
    assert main([*base, "--from", "1974-02-01", "--to", "1974-06-30"]) == 0
    val = out / "basin_32006_reforecast_1974-02-01_1974-06-30"
    assert pd.read_csv(val / "reforecast.csv")["in_sample"].all()
    capsys.readouterr()
    assert main(["verify", str(val / "reforecast.csv")]) == 0
    assert "WARNING: up to 100% of the scored days per lead are days the model (or its blend, spread or levels) " \
           "learned from" in capsys.readouterr().out
    assert (pd.read_csv(val / "verify_per_lead.csv")["setting"] == "issue-time").all()
    # bad input: one line, non-zero, nothing written
    assert main([*base, "--from", "1976-02-01"]) == 2
    assert main([*base, "--warning_levels", "alert=-3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "alert=" in err[1]
    assert main(["verify", str(tmp_path / "nope.csv")]) == 1
    # a new reforecast of the same span replaces its folder whole: the old verify scores go with the old table
    assert main([*base, "--from", "1976-02-01", "--to", "1976-11-30"]) == 0
    assert (ref / "reforecast.csv").is_file() and not (ref / "verify_per_lead.csv").exists()


@pytest.mark.slow
def test_flood_benchmark_quick_mode_runs(tmp_path, capsys):
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("floods_bench", REPO / "bench" / "floods.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--quick", "--out", str(tmp_path)]) == 0
    t = pd.read_csv(tmp_path / "floods_summary.csv")
    assert set(t["forecaster"]) == {"issued", "today", "persistence"} and set(t["lead"]) == set(range(1, 8))
    assert set(t["setting"]) == {"no weather", "perfect weather"}
    assert t["coverage90"].dropna().between(0, 1).all() and "2-year level" in capsys.readouterr().out


def test_flood_benchmark_f1_interval_brackets_the_pooled_f1_and_its_margin():
    """bench/floods.py's basin-bootstrap interval: it holds the pooled F1 (hits 16, misses 4, false alarms 5:
    32 / 41) and the margin over a second forecaster on the same basins; all-zero counts or fewer than 3
    basins give NaN, no hit anywhere a zero-width interval at 0; the same seed gives the same interval."""
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("floods_bench", REPO / "bench" / "floods.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    c = np.array([[5, 1, 1], [0, 2, 0], [10, 0, 3], [1, 1, 1]], dtype=float)
    p = np.array([[3, 3, 3], [0, 2, 1], [6, 4, 4], [0, 2, 2]], dtype=float)
    f1_c = float(bench.pooled_f1(c[:, 0], c[:, 1], c[:, 2]))
    assert f1_c == pytest.approx(32 / 41)
    lo, hi = bench.f1_interval(c)
    assert lo <= f1_c <= hi and (lo, hi) == bench.f1_interval(c)
    margin = f1_c - float(bench.pooled_f1(p[:, 0], p[:, 1], p[:, 2]))
    mlo, mhi = bench.f1_interval(np.stack([c, p], axis=1))
    assert mlo <= margin <= mhi and mlo > 0  # better on every basin: the margin's interval stays above 0
    assert all(np.isnan(bench.f1_interval(np.zeros((5, 3)))))
    assert all(np.isnan(bench.f1_interval(c[:2])))
    # no hit on any basin: every resample's F1 is 0, an interval of zero width (not scipy's degenerate NaN)
    assert bench.f1_interval(np.array([[0, 2, 1], [0, 1, 0], [0, 3, 2]])) == (0.0, 0.0)


def test_warnings_use_the_probability_of_their_lead():
    from sca2lstm.evaluation.levels import Level
    from sca2lstm.evaluation.reforecast import Warnings, add_exceedance

    t = pd.DataFrame({"lead_days": [1, 2], "median": [10.0, 10.0], "q05": [5.0, 5.0], "q25": [8.0, 8.0],
                      "q75": [12.0, 12.0], "q95": [20.0, 20.0]})
    lv = Level("q2y", 12.0, "test", warn_probability=0.5, extra={"warn_probability_by_lead": [0.2, 0.3]})
    out = add_exceedance(t, Warnings({"q2y": lv}))
    assert out["p_exceed_q2y"].tolist() == pytest.approx([0.25, 0.25])  # q75 is the level
    assert out["warn_q2y"].tolist() == [True, False]


@pytest.mark.slow
def test_calibration_fits_each_weather_setting_with_its_own_out_of_sample_margin(bundle, tiny_data_dir, monkeypatch):
    from sca2lstm.evaluation import calibration as cal_mod
    from sca2lstm.evaluation.spread import OUT_OF_SAMPLE_WIDEN, WEATHER_SETTINGS, fit_spread

    seen = []

    def spy(*a, widen, **k):
        seen.append(widen)
        return fit_spread(*a, widen=widen, **k)

    monkeypatch.setattr(cal_mod, "fit_spread", spy)
    doc = cal_mod.calibrate(bundle, None, data_dir=tiny_data_dir)
    assert list(doc["spread"]) == list(WEATHER_SETTINGS)
    assert seen == [OUT_OF_SAMPLE_WIDEN[w] for w in WEATHER_SETTINGS]
    assert all(1.0 <= v <= 0.95 / 0.90 for v in seen) and len(set(seen)) > 1


def _runs_with_misses(n=400, below_lead2=48):
    """Validation runs of 2 leads: q05 = 1, median 2, q95 = 3 every day; the flow is 2, except below q05 on
    ``below_lead2`` days at lead 2 and above q95 on 20 days at lead 1."""
    from types import SimpleNamespace

    med = np.full((n, 2), 2.0)
    qs = np.broadcast_to(np.array([1.0, 1.5, 2.0, 2.5, 3.0]), (n, 2, 5)).copy()
    obs = np.full((n, 2), 2.0)
    obs[:below_lead2, 1] = 0.5
    obs[-20:, 0] = 4.0
    obs[200, 0] = np.nan                                            # an unobserved day counts nowhere
    return SimpleNamespace(median=med, quantiles=qs, observed=obs, last_obs=np.full(n, 2.0),
                           levels=[0.05, 0.25, 0.5, 0.75, 0.95])


def test_validation_tails_count_the_days_outside_the_interval_per_lead():
    from sca2lstm.evaluation.calibration import tail_note, validation_tails

    t = validation_tails(_runs_with_misses(), np.ones(2), None, None, 1.0, "2000-10-01..2005-09-30")
    assert t["days"] == [399, 400]
    assert t["below_q05"] == [0.0, round(48 / 400, 4)]
    assert t["above_q95"] == [round(20 / 399, 4), 0.0]
    assert t["below_median"] == [0.0, round(48 / 400, 4)]    # the days on the median are not below it
    note = tail_note("x1", t)
    assert note.startswith("basin x1: on its validation days 2000-10-01..2005-09-30 the flow fell below q05 on "
                           "12% of days at lead 2 (5 % expected)") and "fine_train.py" in note
    # at twice the nominal share or less, or on too few days, nothing is said
    assert tail_note("x1", validation_tails(_runs_with_misses(below_lead2=40), np.ones(2), None, None, 1.0, "")) is None
    assert tail_note("x1", validation_tails(_runs_with_misses(n=300), np.ones(2), None, None, 1.0, "")) is None


def test_a_station_without_a_stored_blend_gets_its_validation_tails_and_a_warning(bundle, tiny_data_dir, caplog,
                                                                                monkeypatch):
    """The blend of a station without a stored one is fitted on its validation days; the same forecasts say how
    its intervals fit, and a miss beyond twice the nominal share is logged once, with what to do."""
    from sca2lstm.evaluation import calibration as cal_mod
    from sca2lstm.evaluation.context import BasinContext

    ctx = BasinContext.resolve(bundle, tiny_data_dir, "32006")
    monkeypatch.setattr(cal_mod, "TAIL_MIN_DAYS", 1)
    monkeypatch.setattr(cal_mod, "TAIL_ALARM", -1.0)              # every lead "misses": the warning must appear
    with caplog.at_level("WARNING", logger="sca2lstm"):
        setup = cal_mod.issue_setup(ctx, 3, {}, "none")
        again = cal_mod.issue_setup(ctx, 3, {}, "none")
    t = setup.tails
    leads = ctx.cfg.training.forecast_leads
    assert again.tails is t and len(t["below_q05"]) == len(t["above_q95"]) == len(t["days"]) == leads
    v0, v1 = ctx.validation_days()
    runs = cal_mod.validation_runs(ctx, v0, v1)
    expected = cal_mod.validation_tails(runs, setup.alpha, setup.recession, None, setup.scale, t["validation_days"])
    assert t == expected
    notes = [r.getMessage() for r in caplog.records if "do not fit this station" in r.getMessage()]
    assert len(notes) == 1 and notes[0].startswith("basin 32006: on its validation days")


def test_a_calibration_without_the_settings_spread_is_named_as_such_not_as_no_calibration(bundle, tiny_data_dir):
    """A calibration fitted for some weather settings only: a forecast in another setting issues the model's own
    quantiles, and its source says the calibration lacks that setting (and how to fit it), not that there is none."""
    from sca2lstm.evaluation import calibration as cal_mod
    from sca2lstm.evaluation.context import BasinContext

    doc = cal_mod.calibrate(bundle, None, tiny_data_dir, ["32006"], settings=["none"])
    assert set(doc["spread"]) == {"none"}
    ctx = BasinContext.resolve(bundle, tiny_data_dir, "32006")
    setup = cal_mod.issue_setup(ctx, 3, doc, "forecast")
    assert setup.spread is None
    assert "no calibration stored" not in setup.spread_source
    assert "holds no 'forecast' spread" in setup.spread_source and "--settings forecast" in setup.spread_source
    bare = cal_mod.issue_setup(BasinContext.resolve(bundle, tiny_data_dir, "32006"), 3, {}, "forecast")
    assert bare.spread_source == "the model's own quantiles (no calibration stored beside the model)"


def test_validation_forecasts_never_score_a_lead_that_falls_after_the_validation_days(bundle, tiny_data_dir,
                                                                                      tmp_path):
    """The last validation issue dates' later leads fall on the first test days: their flows are not scored, so
    the blend fitted on validation does not move when those test days' flows change (here 50 times larger)."""
    import shutil

    from sca2lstm.data import reader
    from sca2lstm.evaluation import calibration as cal_mod
    from sca2lstm.evaluation.context import BasinContext

    def runs_and_blend(data_dir):
        ctx = BasinContext.resolve(bundle, data_dir, "32006")
        v0, v1 = ctx.validation_days()
        runs = cal_mod.validation_runs(ctx, v0, v1)
        return ctx, (v0, v1), runs, fit_lead_blend(runs.median, runs.observed, runs.last_obs)

    ctx, (v0, v1), runs, blend = runs_and_blend(tiny_data_dir)
    valid = runs.issue_days[:, None] + np.arange(1, runs.observed.shape[1] + 1)[None, :]
    assert (valid >= v1).any() and np.isnan(runs.observed[valid >= v1]).all()
    assert np.isfinite(runs.observed[valid < v1]).any()
    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    f = reader.timeseries_file(d, "32006")
    ts = pd.read_csv(f)
    test_days = ts["date"].isin([str(day) for day in ctx.record.dates[v1:v1 + 7]])   # datetime64[D]: 'YYYY-MM-DD'
    assert test_days.sum() == 7
    ts.loc[test_days, "discharge_vol"] *= 50.0
    ts.to_csv(f, index=False)
    _, span, _, blend2 = runs_and_blend(d)
    assert span == (v0, v1)
    np.testing.assert_array_equal(blend, blend2)


@pytest.fixture
def unseen_station_dir(tiny_data_dir, tmp_path):
    """The tiny basins plus 77002, a copy of 10003's record under an id the model was not trained on."""
    import shutil

    from sca2lstm.data import reader

    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    shutil.copyfile(reader.timeseries_file(d, "10003"), d / "timeseries" / "77002.csv")
    return d


def _pooled_spread(bundle, data_dir):
    from sca2lstm.evaluation.calibration import calibrate

    return calibrate(bundle, None, data_dir=data_dir, settings=["none"])


def test_a_single_forecast_of_days_the_model_learned_from_says_it_is_in_sample(bundle, tiny_data_dir):
    fc, _, _ = warned_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date="1973-06-15", leads=3)
    assert any("1973-06-16..1973-06-18 are days the model" in n and "in-sample" in n for n in fc.data["notes"])
    fc, _, _ = warned_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date="1976-06-15", leads=3)
    assert not any("in-sample" in n for n in fc.data["notes"])


def test_an_unseen_stations_training_years_are_in_sample_for_its_reforecasts(bundle, unseen_station_dir):
    """A station the model never saw still had its discharge scale, spread, recession bound and levels fitted
    on its training years: a reforecast of them is marked in-sample; its test year is not."""
    from sca2lstm.evaluation.context import BasinContext

    ctx = BasinContext.resolve(bundle, unseen_station_dir, "77002")
    assert not ctx.in_checkpoint
    t, _ = reforecast(bundle, "77002", "1973-02-01", "1973-03-31", data_dir=unseen_station_dir, context=ctx)
    assert t["in_sample"].all()
    t, _ = reforecast(bundle, "77002", "1976-02-01", "1976-03-31", data_dir=unseen_station_dir, context=ctx)
    assert not t["in_sample"].any()


def test_an_unseen_station_issues_the_pooled_spread_rescaled_to_its_training_years(bundle, unseen_station_dir):
    """For a station the model never saw, its training years are out of sample: the pooled factors times one
    factor per lead and level fitted on its own training-year forecasts, so that on those forecasts the
    issued q05 and q95 leave 5 % of the days below and above (pooled over states), as the pooled ones do
    on the calibration basins."""
    from sca2lstm.evaluation import calibration as cal_mod
    from sca2lstm.evaluation.context import BasinContext
    from sca2lstm.evaluation.spread import SpreadCalibration

    doc = _pooled_spread(bundle, unseen_station_dir)
    pooled = SpreadCalibration.from_dict(doc["spread"]["none"])
    ctx = BasinContext.resolve(bundle, unseen_station_dir, "77002")
    assert not ctx.in_checkpoint
    setup = cal_mod.issue_setup(ctx, 3, doc, "none")
    assert "training years" in ctx.blend.spread_source
    own = setup.spread
    assert own is not pooled and own.factors.shape == pooled.factors.shape
    ratio = own.factors / pooled.factors                      # one factor per lead and level, whatever the state
    assert np.allclose(ratio, ratio[:, :1, :])
    assert not np.allclose(ratio, 1.0)
    i0, i1 = ctx.training_days()
    runs = cal_mod.validation_runs(ctx, i0, i1)
    ok = np.isfinite(runs.observed)

    def shares(spread):
        _, qs = cal_mod.adjust(runs.median, runs.quantiles, runs.last_obs, setup.alpha, None, spread, runs.levels,
                               setup.scale)
        n = ok.sum(axis=0)
        return (np.where(ok, runs.observed < qs[..., 0], False).sum(axis=0) / n,
                np.where(ok, runs.observed > qs[..., -1], False).sum(axis=0) / n)

    below, above = shares(own)
    # The 5 % quantile of ~960 ratios is exact to 1/n on the days it was fitted on; days whose q05 sits on the
    # median (no ratio) and the clamp at zero flow move a few more: within one percentage point.
    assert np.all(np.abs(below - 0.05) <= 0.01) and np.all(np.abs(above - 0.05) <= 0.01), (below, above)
    pb, pa = shares(pooled)
    assert np.abs(pb - 0.05).mean() + np.abs(pa - 0.05).mean() > np.abs(below - 0.05).mean() + np.abs(above - 0.05).mean()
    # with weather the setting's own stored spread is issued (none here), and for a basin the model was
    # trained on, the pooled one
    assert list(doc["spread"]) == ["none"] and cal_mod.issue_setup(ctx, 3, doc, "perfect").spread is None
    seen = BasinContext.resolve(bundle, unseen_station_dir, "10003")
    assert cal_mod.station_spread(seen, pooled, setup.alpha)[0] is pooled
    # a blend stored for the station (sca2lstm calibrate --basins 77002) keeps the rescaling, with that blend
    stored = dict(doc, issue_time_blend={"77002": [1.0] * len(setup.alpha)})
    again = BasinContext.resolve(bundle, unseen_station_dir, "77002")
    with_stored = cal_mod.issue_setup(again, 3, stored, "none")
    assert with_stored.alpha_source == "stored beside the model" and "training years" in again.blend.spread_source
    assert not np.allclose(with_stored.spread.factors, pooled.factors)


def test_a_station_with_too_short_a_training_record_keeps_the_pooled_spread(bundle, unseen_station_dir, monkeypatch):
    from sca2lstm.evaluation import calibration as cal_mod
    from sca2lstm.evaluation.context import BasinContext
    from sca2lstm.evaluation.spread import SpreadCalibration

    monkeypatch.setattr(cal_mod, "MIN_OWN_SPREAD_DAYS", 2000)     # more than the tiny training part's 4 years
    doc = _pooled_spread(bundle, unseen_station_dir)
    pooled = SpreadCalibration.from_dict(doc["spread"]["none"])
    ctx = BasinContext.resolve(bundle, unseen_station_dir, "77002")
    spread, source = cal_mod.station_spread(ctx, pooled, np.ones(ctx.cfg.training.forecast_leads))
    assert spread is pooled and "training-year forecasts per lead" in source


def test_warnings_nest_and_the_printed_threshold_is_the_one_applied():
    """A warning for a higher level is one for every lower level, even where the lower level's own warning
    probability is not reached (a rare level warns at a lower probability); the per-lead thresholds applied are
    the ones printed."""
    from sca2lstm.cli.warnings_flags import threshold_text
    from sca2lstm.evaluation.levels import Level
    from sca2lstm.evaluation.reforecast import Warnings, add_exceedance

    q2y, q20y = Level("q2y", 10.0, "gev", warn_probability=0.5), Level("q20y", 30.0, "gev", warn_probability=0.05)
    q2y.extra["warn_probability_by_lead"] = [0.35, 0.5]
    w = Warnings({"q2y": q2y, "q20y": q20y}, {})
    # lead 1: median 9 (P(> 10) below 0.35) with a long upper tail (q95 40: P(> 30) above 0.05)
    t = pd.DataFrame({"lead_days": [1, 2], "median": [9.0, 1.0], "q05": [5.0, 0.5], "q25": [7.0, 0.8],
                      "q75": [9.5, 1.2], "q95": [40.0, 2.0]})
    out = add_exceedance(t, w)
    assert out["p_exceed_q2y"].iloc[0] < 0.35 and out["p_exceed_q20y"].iloc[0] >= 0.05
    assert out["warn_q20y"].tolist() == [True, False] and out["warn_q2y"].tolist() == [True, False]
    assert threshold_text(q2y) == "0.35/0.50 at leads 1-2" and threshold_text(q20y) == "0.05"


def test_missing_rare_levels_are_explained_with_the_number_of_annual_maxima():
    from sca2lstm.cli.warnings_flags import level_line, rare_levels_note
    from sca2lstm.evaluation.levels import Level

    six = {"q2y": Level("q2y", 40.0, "pe3, 2011-2017 (6 annual maxima)"), "q5y": Level("q5y", 60.0, "pe3")}
    assert rare_levels_note(six) == ["q10y, q20y: not given; the training years hold 6 annual maxima, and 10 are needed"]
    assert rare_levels_note({**six, "q10y": Level("q10y", 70.0, "pe3")}) == []
    assert level_line("alert", Level("alert", 62.009, "station metadata (water level)", stage=2.5)) == (
        "   alert:    62.009 m3/s daily mean (water level 2.5 m)")


def test_a_printed_fitted_level_says_it_is_a_daily_mean_and_gives_its_interval():
    """A fitted 20-year flow printed as a bare "m3/s" reads as the agency's 20-year (instantaneous) peak, which is
    higher: the line says daily mean, and gives the 90 % interval the fit has, as levels.json does."""
    from sca2lstm.cli.warnings_flags import level_line
    from sca2lstm.evaluation.levels import fit_return_levels

    maxima = np.random.default_rng(0).gumbel(30.0, 8.0, 30)
    q20 = fit_return_levels(maxima, "glo")["q20y"]
    lo, hi = q20.ci
    assert lo < q20.value < hi
    assert level_line("q20y", q20) == f"    q20y: {q20.value:9.3f} m3/s daily mean (90 % CI {lo:.3f}-{hi:.3f})"


def test_a_lead_whose_interval_was_raised_whole_to_the_recession_bound_is_named():
    from sca2lstm.cli.forecast import collapsed_leads

    t = pd.DataFrame({"lead_days": [1, 2, 3], "median": [2.0, 1.0, 1.0], "q05": [1.0, 1.0, 0.9],
                      "q95": [3.0, 1.0, 1.2], "q25": [1.5, 1.0, 1.0], "q75": [2.5, 1.0, 1.1]})
    assert collapsed_leads(t) == [2]


def test_a_reforecast_from_the_records_first_days_says_their_window_is_partly_empty(bundle, pretrained_ckpt,
                                                                                  tiny_data_dir, caplog):
    """Issue dates within the model's window of the record's start are issued, as a single forecast issues them,
    and said to be so in one line (as a single forecast says it): never silently less reliable."""
    import logging

    cfg = bundle[1]
    reads = cfg.training.seq_len - cfg.training.forecast_leads
    with caplog.at_level(logging.WARNING):
        reforecast(bundle, "32006", "1970-10-01", "1970-10-05", data_dir=tiny_data_dir, model_path=pretrained_ckpt)
    lines = [r.getMessage() for r in caplog.records if "partly empty window" in r.getMessage()]
    assert len(lines) == 1
    assert "5 issue date(s) 1970-10-01..1970-10-05" in lines[0] and f"than the {reads} the model reads" in lines[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        reforecast(bundle, "32006", "1976-03-01", "1976-03-03", data_dir=tiny_data_dir, model_path=pretrained_ckpt)
    assert not [r for r in caplog.records if "partly empty window" in r.getMessage()]


def test_a_reforecast_on_a_terminal_shows_its_progress_over_the_issue_dates_and_quiet_hides_it(
        pretrained_ckpt, tiny_data_dir, tmp_path, monkeypatch):
    """Years of issue dates take minutes with a full-size model: on a terminal a bar counts them; --quiet and a
    redirected stderr draw nothing."""
    import io
    import sys

    from sca2lstm.cli.main import main

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    base = ["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
            "--output_dir", str(tmp_path), "--from", "1976-03-01", "--to", "1976-03-05"]
    drawn = {}
    for name, extra, stream in (("tty", [], Terminal()), ("quiet", ["--quiet"], Terminal()),
                                ("pipe", [], io.StringIO())):
        monkeypatch.setattr(sys, "stderr", stream)
        assert main([*base, *extra]) == 0
        drawn[name] = stream.getvalue()
    monkeypatch.undo()
    assert re.search(r"issue dates: .*\d/5 \[", drawn["tty"]), drawn["tty"]   # a bar over the 5 issue dates
    assert "issue dates" not in drawn["quiet"] and "issue dates" not in drawn["pipe"]


def test_a_reforecast_over_a_gauges_gap_says_which_issue_dates_start_from_an_older_flow(bundle, pretrained_ckpt,
                                                                                      tiny_data_dir, tmp_path, caplog):
    """Flow missing from 1976-03-03 to 1976-04-20: issue dates up to 30 days into the gap are issued from the last
    flow before it (as a single forecast is, which says so) and the rest are left out; one line says the first
    were issued from an older flow and how old."""
    import logging
    import shutil

    from sca2lstm.data.reader import timeseries_file

    data = tmp_path / "camels"
    shutil.copytree(tiny_data_dir, data)
    f = timeseries_file(data, "32006")
    ts = pd.read_csv(f)
    ts.loc[(ts["date"] >= "1976-03-03") & (ts["date"] <= "1976-04-20"), ["discharge_vol", "discharge_spec"]] = np.nan
    ts.to_csv(f, index=False)
    with caplog.at_level(logging.WARNING):
        table, _ = reforecast(bundle, "32006", "1976-03-01", "1976-04-10", data_dir=data, model_path=pretrained_ckpt)
    issued = set(table["issue_date"].dt.strftime("%Y-%m-%d"))
    assert "1976-03-31" in issued and "1976-04-01" not in issued
    lines = [r.getMessage() for r in caplog.records if "have no flow observed on them" in r.getMessage()]
    assert len(lines) == 1
    assert "29 issue date(s) between 1976-03-03 and 1976-03-31" in lines[0] and "up to 29 day(s)" in lines[0]


def test_a_reforecast_asked_for_as_json_is_one_line_not_a_csv_without_a_word(pretrained_ckpt, tiny_data_dir,
                                                                             tmp_path, capsys):
    from sca2lstm.cli.main import main

    base = ["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
            "--output_dir", str(tmp_path), "--from", "1976-03-01", "--to", "1976-03-02", "--quiet"]
    assert main([*base, "--format", "json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--format json with --from/--to" in err[0] and "reforecast.csv" in err[0]
    assert not list(tmp_path.iterdir())
    assert main([*base, "--format", "csv"]) == 0
    assert (tmp_path / "basin_32006_reforecast_1976-03-01_1976-03-02" / "reforecast.csv").is_file()


def test_a_reforecast_span_written_year_first_with_slashes_or_dots_is_the_iso_span(bundle, pretrained_ckpt,
                                                                                   tiny_data_dir):
    """2012/11/20 and 2012.11.20 are unambiguous (year first) and read so in every table: --from/--to take them
    as the ISO day; a day-first date is still refused in one line, never guessed."""
    from sca2lstm.errors import UsageError

    kw = {"data_dir": tiny_data_dir, "model_path": pretrained_ckpt}
    iso, _ = reforecast(bundle, "32006", "1976-03-01", "1976-03-03", **kw)
    other, _ = reforecast(bundle, "32006", "1976/3/1", "1976.03.03", **kw)
    pd.testing.assert_frame_equal(iso, other)
    with pytest.raises(UsageError, match="--from '01/03/1976' is not a date; expected YYYY-MM-DD"):
        reforecast(bundle, "32006", "01/03/1976", "1976-03-03", **kw)


def test_a_reforecast_span_reaching_past_the_record_issues_the_days_it_holds_and_names_the_others(
        bundle, pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """A forecaster asks for the span up to today while the data end a few days earlier: the whole span was refused
    as "outside the data". The days the record holds are issued, the same rows as the span inside it, and the
    others are named among those left out; a span wholly outside the record is still one line, exit 1."""
    from sca2lstm.cli.main import main

    base = ["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
            "--output_dir", str(tmp_path), "--quiet"]
    assert main([*base, "--from", "1977-12-28", "--to", "1978-01-03"]) == 0   # the record ends 1977-12-31
    out = capsys.readouterr().out
    assert ("left out: 3 of 7 issue dates asked: 1978-01-01..1978-01-03 (outside the data of basin 32006, "
            "1970-10-01..1977-12-31)\n") in out, out
    got = pd.read_csv(tmp_path / "basin_32006_reforecast_1977-12-28_1977-12-31" / "reforecast.csv")
    inside, _ = reforecast(bundle, "32006", "1977-12-28", "1977-12-31", data_dir=tiny_data_dir,
                           model_path=pretrained_ckpt)
    assert sorted(got["issue_date"].unique()) == ["1977-12-28", "1977-12-29", "1977-12-30", "1977-12-31"]
    np.testing.assert_allclose(got["median"], inside["median"], atol=HALF_4TH_DECIMAL)
    # so on the record's first side (it begins 1970-10-01)
    assert main([*base, "--from", "1970-09-29", "--to", "1970-10-02"]) == 0
    assert "left out: 2 of 4 issue dates asked: 1970-09-29..1970-09-30 (outside the data of basin 32006, " \
           "1970-10-01..1977-12-31)" in capsys.readouterr().out
    assert main([*base, "--from", "1978-01-01", "--to", "1978-01-03"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--from 1978-01-01 --to 1978-01-03: outside the data of basin 32006 " \
                             "(1970-10-01..1977-12-31)" in err[0], err


def _stage_station(tiny_data_dir, tmp_path, rating: str):
    """Basin 32006's record as station ``st`` of water levels only, imported with the rating curve file ``rating``
    (power-law segments; those of 1976-06-01 on read the flows as 12.5 (h - 0.15)^1.6, those before as
    10 (h - 0.10)^1.6): its data folder."""
    from sca2lstm.cli.main import main

    flows = pd.read_csv(next(tiny_data_dir.rglob("*32006*.csv")), parse_dates=["date"])
    old = flows["date"] < "1976-06-01"
    q = flows["discharge_vol"].to_numpy()
    flows["stage"] = np.where(old, 0.10 + (q / 10.0) ** (1 / 1.6), 0.15 + (q / 12.5) ** (1 / 1.6))
    src = tmp_path / "station.csv"
    flows[["date", "precipitation", "temperature", "stage"]].to_csv(src, index=False, date_format="%Y-%m-%d")
    (tmp_path / "rating.csv").write_text(rating)
    data = tmp_path / "data"
    assert main(["station", "import", str(src), "--id", "st", "--out", str(data), "--lat", "52.39", "--lon", "-1.85",
                 "--map", "date=date,precipitation=precipitation,temperature=temperature,stage=stage",
                 "--rating", str(tmp_path / "rating.csv"), "--area_km2", "115.58"]) == 0
    return data


def test_a_water_level_warning_level_follows_the_rating_curve_valid_on_each_day_of_a_reforecast(
        bundle, pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """A station whose rating curve was refitted on 1976-06-01: its flows before are its stages through the old
    curve. A warning level given as a water level (0.6 m) was one flow, the latest curve's, on every day of a
    reforecast, while the table's water levels and the observed flows of the earlier days follow the old curve:
    a row whose median stood above 0.6 m had P(exceed) below 0.5, and verify counted the days above 0.6 m wrong.
    Each row now carries the level's flow of its valid day (``level_alert``), which its P(exceed) and verify use."""
    from sca2lstm.cli.main import main
    from sca2lstm.evaluation.exceedance import exceedance_probability
    from sca2lstm.evaluation.verify import verify

    data = _stage_station(tiny_data_dir, tmp_path, "a,b,h0,valid_from,valid_to\n10,1.6,0.10,1970-10-01,1976-05-31\n"
                                                   "12.5,1.6,0.15,1976-06-01,\n")
    capsys.readouterr()
    # 1976-04-29 and 05-01 flowed between the two curves' flows of 0.6 m: above the level by the old curve only
    tab, warnings = reforecast(bundle, "st", "1976-04-25", "1976-06-10", data_dir=data, model_path=pretrained_ckpt,
                               user_levels={"alert": 0.6}, levels_in="stage")
    before = pd.to_datetime(tab["valid_date"]) < "1976-06-01"
    # 0.6 m through each curve: 10 * 0.5^1.6 before, 12.5 * 0.45^1.6 from 1976-06-01 (the level's one flow)
    assert warnings.levels["alert"].value == pytest.approx(12.5 * 0.45 ** 1.6)
    np.testing.assert_allclose(tab["level_alert"], np.where(before, 10 * 0.5 ** 1.6, 12.5 * 0.45 ** 1.6), rtol=1e-12)
    quantiles = tab[["q05", "q25", "median", "q75", "q95"]].to_numpy()
    p = exceedance_probability(quantiles, np.array([0.05, 0.25, 0.5, 0.75, 0.95]), tab["level_alert"].to_numpy())
    np.testing.assert_allclose(tab["p_exceed_alert"], np.round(p, 4), atol=1e-12)
    # a median above 0.6 m is above the level on its day (the CDF passes 0.5 at the median, the curve rises)
    above = tab["stage_median"] > 0.6
    assert ((tab["p_exceed_alert"] >= 0.5) == above).all() and (above & before).any()
    # verify counts a day above the level by that day's flow of 0.6 m, the stage the station read
    per_lead, per_level = verify(tab, {"alert": warnings.levels["alert"].value})
    g = tab[tab["lead_days"] == 1]
    event = (g["observed"] > g["level_alert"]).to_numpy()
    warn = g["warn_alert"].to_numpy(bool)
    row = per_level[(per_level["lead"] == 1) & (per_level["forecast"] == "model") & (per_level["count"] == "day")]
    assert row["hits"].iloc[0] + row["misses"].iloc[0] == event.sum()
    assert row["hits"].iloc[0] == (warn & event).sum() and row["false_alarms"].iloc[0] == (warn & ~event).sum()
    assert event[pd.to_datetime(g["valid_date"]).isin(["1976-04-29", "1976-05-01"]).to_numpy()].all()
    # a single forecast issued on 1976-05-28 says the level's flow of its issue date, and its lead days theirs
    fc, one, _ = warned_forecast(bundle, "st", data_dir=data, issue_date="1976-05-28", model_path=pretrained_ckpt,
                                 user_levels={"alert": 0.6}, levels_in="stage")
    assert one.levels["alert"].value == pytest.approx(10 * 0.5 ** 1.6)
    days = pd.to_datetime(fc.table["valid_date"])
    np.testing.assert_allclose(fc.table["level_alert"], np.where(days < "1976-06-01", 10 * 0.5 ** 1.6,
                                                                 12.5 * 0.45 ** 1.6), rtol=1e-12)
    # the command names the flows the water level had over the span
    assert main(["forecast", "--model", str(pretrained_ckpt), "--basin", "st", "--data_dir", str(data), "--quiet",
                 "--from", "1976-04-25", "--to", "1976-06-10", "--warning_levels", "alert=0.6", "--levels_in", "stage",
                 "--output_dir", str(tmp_path / "fc")]) == 0
    assert ("   alert: water level 0.6 m is 3.299-3.484 m3/s over the span, through the rating curve valid on each "
            "valid day (reforecast.csv: level_alert)\n") in capsys.readouterr().out


def test_a_water_level_above_the_gauged_range_is_said_extrapolated_once(bundle, pretrained_ckpt, tiny_data_dir,
                                                                          tmp_path, caplog, monkeypatch):
    """A warning level given as a water level above the curve's highest gauged stage: the forecast said twice that
    its discharge is extrapolated (once checking the level against the record, once converting it)."""
    import logging

    data = _stage_station(tiny_data_dir, tmp_path, "a,b,h0,h_max,valid_from,valid_to\n"
                                                   "10,1.6,0.10,2.5,1970-10-01,1976-05-31\n12.5,1.6,0.15,2.5,1976-06-01,\n")
    monkeypatch.setattr(logging.getLogger("sca2lstm"), "propagate", True)   # the import's console set it off
    with caplog.at_level("WARNING"):
        reforecast(bundle, "st", "1976-06-01", "1976-06-03", data_dir=data, model_path=pretrained_ckpt,
                   user_levels={"alert": 0.6, "top": 3.0}, levels_in="stage")
    said = [r.getMessage() for r in caplog.records if "lies above the rating curve's highest gauged stage" in
            r.getMessage()]
    assert said == ["a water level of 3 m lies above the rating curve's highest gauged stage (2.5 m): its discharge is "
                    "extrapolated"], said


def test_the_fan_chart_of_a_stage_station_labels_each_level_with_its_flow_unit_and_water_level(
        pretrained_ckpt, tiny_data_dir, tmp_path, monkeypatch):
    """A level given as a water level was labelled ``alert (0.6 m) 3.5``: a flow without its unit beside a number in
    m. Each level now reads as the service's page gives it: its flow in m³/s, then its water level."""
    from sca2lstm.cli.main import main
    from sca2lstm.evaluation import plots

    data = _stage_station(tiny_data_dir, tmp_path, "a,b,h0,valid_from,valid_to\n10,1.6,0.10,1970-10-01,1976-05-31\n"
                                                   "12.5,1.6,0.15,1976-06-01,\n")
    labels, save = {}, plots._save

    def spy(fig, path):   # each figure's title and its first axes' texts (the level labels), before it is released
        labels[plots.figure_title(fig)] = [t.get_text() for t in fig.axes[0].texts]
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", spy)
    assert main(["forecast", "--model", str(pretrained_ckpt), "--basin", "st", "--data_dir", str(data), "--quiet",
                 "--issue_date", "1976-06-15", "--warning_levels", "alert=0.6", "--levels_in", "stage",
                 "--output_dir", str(tmp_path / "fc")]) == 0
    (fan,) = [v for k, v in labels.items() if k.startswith("Basin st: forecast issued 1976-06-15")]
    # 0.6 m through the curve valid on the issue date: 12.5 (0.6 - 0.15)^1.6 = 3.48 m3/s
    assert f"alert {12.5 * 0.45 ** 1.6:.1f} m³/s (water level 0.60 m)" in fan, fan
    assert all("m³/s (water level " in t for t in fan), fan
