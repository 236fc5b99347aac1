"""Scores of a reforecast table on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sca2lstm.evaluation.verify import contingency, event_contingency, quantile_score, verify


def test_contingency_by_day_hand_case():
    warn = np.array([1, 1, 0, 0, 1, 0], bool)
    event = np.array([1, 0, 1, 0, 1, 0], bool)
    r = contingency(warn, event)  # hits 2, misses 1, false alarms 1
    assert (r["hits"], r["misses"], r["false_alarms"]) == (2, 1, 1)
    assert r["pod"] == pytest.approx(2 / 3) and r["far"] == pytest.approx(1 / 3)
    assert r["csi"] == pytest.approx(2 / 4) and r["f1"] == pytest.approx(4 / 6)


def test_contingency_by_event_within_one_day():
    #          0  1  2  3  4  5  6  7  8  9 10 11
    event = np.array([0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0], bool)  # events [1-2] and [7]
    warn = np.array([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1], bool)   # warnings [3] (a day late) and [10-11]
    r = event_contingency(warn, event)
    # event [1-2] is hit by the warning on day 3 (within +-1 day); event [7] is missed;
    # warning [10-11] has no event within a day: one false alarm of two warnings
    assert (r["hits"], r["misses"], r["false_alarms"]) == (1, 1, 1)
    assert r["pod"] == 0.5 and r["far"] == 0.5
    assert r["csi"] == pytest.approx(1 / 3) and r["f1"] == pytest.approx(0.5)
    assert event_contingency(warn, event, tolerance=0)["hits"] == 0


def test_no_event_and_no_warning_is_undefined_not_perfect():
    r = contingency(np.zeros(5, bool), np.zeros(5, bool))
    assert np.isnan(r["pod"]) and np.isnan(r["f1"])


def test_quantile_score_of_a_point_is_twice_mean_pinball():
    obs = np.array([1.0, 3.0])
    q = np.array([[2.0], [2.0]])
    assert quantile_score(obs, q, [0.5]) == pytest.approx(1.0)  # = mean absolute error


def _table(obs, med, lo, hi, p, warn, pers):
    n = len(obs)
    d = pd.date_range("2000-01-01", periods=n)
    return pd.DataFrame({"issue_date": d - pd.Timedelta(days=1), "valid_date": d, "lead_days": 1, "median": med,
                         "q05": lo, "q25": med, "q75": med, "q95": hi, "observed": obs, "persistence": pers,
                         "p_exceed_flood": p, "warn_flood": warn})


def test_verify_hand_case():
    obs = np.array([1.0, 2.0, 10.0, 2.0])
    med = np.array([1.0, 2.0, 8.0, 2.0])
    t = _table(obs, med, med - 0.5, med + 0.5, p=[0.0, 0.0, 1.0, 0.0], warn=[False, False, True, False],
               pers=[1.0, 1.0, 2.0, 10.0])
    per_lead, per_level = verify(t, {"flood": 5.0})
    r = per_lead.iloc[0]
    assert r["coverage90"] == pytest.approx(0.75) and r["above_q95"] == pytest.approx(0.25)
    assert r["below_q05"] == 0.0 and r["coverage90_above_flood"] == 0.0
    # NSE of the median: 1 - 4 / sum((obs - 3.75)^2)
    assert r["nse"] == pytest.approx(1 - 4 / np.sum((obs - obs.mean()) ** 2))
    m = per_level[(per_level["forecast"] == "model") & (per_level["count"] == "day")].iloc[0]
    assert m["pod"] == 1.0 and m["far"] == 0.0 and m["brier_skill"] == pytest.approx(1.0)
    p = per_level[(per_level["forecast"] == "persistence") & (per_level["count"] == "day")].iloc[0]
    assert p["pod"] == 0.0 and p["far"] == 1.0  # persistence warns a day late
    pe = per_level[(per_level["forecast"] == "persistence") & (per_level["count"] == "event")].iloc[0]
    assert pe["pod"] == 1.0  # ... which by event, within one day, is a hit


def test_a_forecast_of_other_quantile_levels_is_scored_on_its_own_intervals():
    """A model trained with levels 0.1/0.9 writes q10/q90: its 80 % interval is scored (overall and above each
    level) and its reliability at its own levels, instead of no coverage at all."""
    obs = np.array([1.0, 2.0, 10.0, 2.0])
    med = np.array([1.0, 2.0, 8.0, 2.0])
    t = _table(obs, med, med - 0.5, med + 0.5, p=[0.0, 0.0, 1.0, 0.0], warn=[False, False, True, False],
               pers=[1.0, 1.0, 2.0, 10.0])
    t = t.drop(columns=["q05", "q25", "q75", "q95"]).assign(q10=med - 0.5, q90=med + 0.5)
    r = verify(t, {"flood": 5.0})[0].iloc[0]
    assert r["coverage80"] == pytest.approx(0.75) and r["coverage80_above_flood"] == 0.0   # 10 > 8.5: outside
    assert r["below_q10"] == 0.0 and r["below_median"] == 0.0 and r["above_q90"] == pytest.approx(0.25)
    assert "coverage90" not in r.index and "above_q95" not in r.index   # not said of levels it lacks


def test_crps_of_a_calibrated_gaussian_forecast_is_its_exact_crps_and_persistence_scores_the_same_days():
    """Five quantiles of N(mu, 1) against draws from it: the CRPS of the distribution they define is the exact
    Gaussian CRPS up to its interpolation (about 0.2 % for these levels; asserted within 1 %), where the mean
    pinball loss over the five levels reads about 12 % low. Persistence's CRPS is its mean absolute error on the
    same days: a day without persistence, or without quantiles, is left out of both."""
    from scipy.stats import norm

    rng = np.random.default_rng(0)
    n = 20000
    mu = rng.uniform(5.0, 10.0, n)
    obs = mu + rng.standard_normal(n)
    taus = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    q = mu[:, None] + norm.ppf(taus)[None, :]
    pers = obs + rng.normal(0.0, 2.0, n)
    pers[0], q[1, 0] = np.nan, np.nan
    t = _table(obs, q[:, 2], q[:, 0], q[:, 4], p=np.zeros(n), warn=np.zeros(n, bool), pers=pers)
    t["q25"], t["q75"] = q[:, 1], q[:, 3]
    r = verify(t)[0].iloc[0]
    z = (obs - mu)[2:]
    exact = np.mean(z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))
    assert r["crps"] == pytest.approx(exact, rel=0.01)
    assert quantile_score(obs[2:], q[2:], taus) < 0.9 * exact
    assert r["persistence_crps"] == pytest.approx(np.mean(np.abs(obs[2:] - pers[2:])), rel=1e-12)
    # reliability at the levels given: the share below each quantile is its level (binomial sd < 0.004)
    for c, tau in (("below_q05", 0.05), ("below_q25", 0.25), ("below_median", 0.5), ("below_q75", 0.75)):
        assert r[c] == pytest.approx(tau, abs=0.015)


def test_in_sample_days_are_counted_per_lead():
    t = _years_table(1)
    t["in_sample"] = np.arange(len(t)) < 73      # the first fifth of the days
    assert verify(t)[0].iloc[0]["in_sample_share"] == pytest.approx(73 / 365)
    assert "in_sample_share" not in verify(_years_table(1))[0].columns


def _years_table(years: int, seed: int = 0, perfect: bool = False):
    """``years`` x 365 days of lead-1 forecasts: seasonal flow with floods above 10 m3/s, a median that errs
    (or equals the flow), warnings where the median is above 10."""
    rng = np.random.default_rng(seed)
    n = 365 * years
    obs = 5 + 3 * np.sin(np.arange(n) * 2 * np.pi / 365) + rng.gamma(0.3, 4.0, n)
    med = obs if perfect else obs + rng.normal(0, 1.5, n)
    pers = np.r_[obs[0], obs[:-1]]
    return _table(obs, med, med - 2, med + 2, p=(med > 10).astype(float), warn=med > 10, pers=pers)


def test_verify_intervals_over_years_bracket_the_scores():
    """The per-lead NSE and the by-day F1 lie inside their year-bootstrap intervals; the by-event rows have
    none; the interval is the same on a second run (fixed seed)."""
    per_lead, per_level = verify(_years_table(6), {"flood": 10.0})
    r = per_lead.iloc[0]
    assert r["nse_lo90"] < r["nse"] < r["nse_hi90"] <= 1.0
    day = per_level[per_level["count"] == "day"]
    assert len(day) == 2 and (day["f1_lo90"] <= day["f1"]).all() and (day["f1"] <= day["f1_hi90"]).all()
    assert per_level.loc[per_level["count"] == "event", "f1_lo90"].isna().all()
    again = verify(_years_table(6), {"flood": 10.0})[0].iloc[0]
    assert (again["nse_lo90"], again["nse_hi90"]) == (r["nse_lo90"], r["nse_hi90"])


def test_verify_interval_of_a_perfect_forecast_is_one_and_needs_three_years():
    per_lead, per_level = verify(_years_table(4, perfect=True), {"flood": 10.0})
    assert per_lead.iloc[0][["nse", "nse_lo90", "nse_hi90"]].tolist() == pytest.approx([1.0, 1.0, 1.0])
    m = per_level[(per_level["forecast"] == "model") & (per_level["count"] == "day")].iloc[0]
    assert (m["f1"], m["f1_lo90"], m["f1_hi90"]) == (1.0, 1.0, 1.0)
    short = verify(_years_table(2), {"flood": 10.0})[0].iloc[0]  # two years: no interval
    assert np.isnan(short["nse_lo90"]) and np.isnan(short["nse_hi90"])


def test_nse_from_year_sums_equals_the_nse_of_the_days():
    from sca2lstm.evaluation.metrics import nse
    from sca2lstm.evaluation.verify import _nse_of_sums, _year_sums

    t = _years_table(3, seed=4)
    o, m = t["observed"].to_numpy(), t["median"].to_numpy()
    sums = _year_sums(t["valid_date"], np.stack([np.ones_like(o), o, o * o, (m - o) ** 2], axis=1))
    assert sums.shape == (4, 3) and sums[0].sum() == len(o)
    assert float(_nse_of_sums(*sums)) == pytest.approx(float(nse(o, m)), rel=1e-9)


def test_f1_interval_leaves_out_resamples_without_a_flood():
    """All floods in one of six years: a third of the resampled sets of years hold none (F1 undefined there);
    the interval comes from the others, where every flood day was warned: [1, 1], not NaN."""
    t = _years_table(6, seed=1)
    t["observed"] = np.where((t["valid_date"].dt.year == 2002) & (t["observed"] > 10), t["observed"], 5.0)
    t["median"] = t["observed"]
    t["warn_flood"] = t["median"] > 10
    per_level = verify(t, {"flood": 10.0})[1]
    m = per_level[(per_level["forecast"] == "model") & (per_level["count"] == "day")].iloc[0]
    assert m["hits"] > 0 and (m["f1"], m["f1_lo90"], m["f1_hi90"]) == (1.0, 1.0, 1.0)


def test_verify_reads_a_table_saved_again_as_gbk(tmp_path, capsys):
    """A reforecast table a forecaster annotated in a spreadsheet and saved as GBK is read (the encoding is
    detected); an encoding given with --encoding that does not fit is one line naming the flag."""
    from sca2lstm.cli.main import main

    obs = np.array([1.0, 2.0, 10.0, 2.0])
    t = _table(obs, obs, obs - 0.5, obs + 0.5, p=[0.0, 0.0, 1.0, 0.0], warn=[False, False, True, False],
               pers=[1.0, 1.0, 2.0, 10.0]).assign(备注=["", "", "洪峰", ""])
    f = tmp_path / "reforecast.csv"
    f.write_bytes(t.to_csv(index=False).encode("gbk"))
    assert main(["verify", str(f), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["verify", str(f), "--encoding", "utf-8"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not UTF-8 text" in err[0] and "--encoding" in err[0]


def test_a_table_saved_with_semicolons_and_decimal_commas_scores_as_the_comma_table(tmp_path, capsys):
    """A reforecast table saved again from a spreadsheet set to a European locale (semicolons, decimal commas) is
    read as the forecast side reads such tables and scores as the original (it was "missing column(s)
    issue_date, ..." without a word of its one 'issue_date;valid_date;...' column); a table it still cannot
    split is one line saying how it was read and the column(s) it found."""
    from sca2lstm.cli.main import main

    obs = np.array([1.0, 2.5, 10.25, 2.0])
    t = _table(obs, obs + 0.3, obs - 0.5, obs + 0.5, p=[0.0, 0.1, 0.9, 0.0], warn=[False, False, True, False],
               pers=[1.0, 1.0, 2.5, 10.25])
    scores = {}
    for name, kw in (("comma", {}), ("semicolon", {"sep": ";", "decimal": ","})):
        (tmp_path / name).mkdir()
        t.to_csv(tmp_path / name / "reforecast.csv", index=False, **kw)
        assert main(["verify", str(tmp_path / name / "reforecast.csv"), "--quiet"]) == 0, capsys.readouterr().err
        scores[name] = pd.read_csv(tmp_path / name / "verify_per_lead.csv")
    assert "2,5" in (tmp_path / "semicolon" / "reforecast.csv").read_text()
    pd.testing.assert_frame_equal(scores["semicolon"], scores["comma"])
    capsys.readouterr()
    (tmp_path / "piped").mkdir()
    t.to_csv(tmp_path / "piped" / "reforecast.csv", index=False, sep="|")
    assert main(["verify", str(tmp_path / "piped" / "reforecast.csv")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing column(s) issue_date, valid_date" in err[0], err
    assert "read with commas between columns, it has 1 column(s): 'issue_date|valid_date|lead_days|" in err[0], err
    assert sorted(q.name for q in (tmp_path / "piped").iterdir()) == ["reforecast.csv"]


@pytest.mark.parametrize("level,needle", [
    ('{"flood": {"value": NaN}}', "level 'flood' has value NaN; a level is a flow in m3/s, a finite number above 0"),
    ('{"flood": {"value": -5}}', "level 'flood' has value -5; a level is a flow in m3/s"),
    ('{"flood": {"value": 0}}', "level 'flood' has value 0; a level is a flow in m3/s"),
    ('{"flood": {"value": "high"}}', "level 'flood' has value \"high\"; a level is a flow in m3/s"),
    ('{"flood": {"value": true}}', "level 'flood' has value true; a level is a flow in m3/s"),
    ('{"flood": {"value": Infinity}}', "level 'flood' has value Infinity; a level is a flow"),
    ('{"flood": {"value": 1.2, "unit": "m"}}', "level 'flood' is in \"m\"; verify compares levels with the "
                                             "table's flows, in m3/s"),
    ('{"flood": 5.0}', "level 'flood' is 5.0; expected {\"value\": flow in m3/s, ...}"),
    ('[5.0]', "not a levels.json; expected {name: {\"value\": flow in m3/s, ...}}, found a JSON list"),
])
def test_a_level_whose_value_is_no_flow_is_one_line_naming_it_and_no_scores(tmp_path, capsys, level, needle):
    """A levels.json whose level is NaN, negative, zero, text, true or in another unit is refused in one line
    naming the level and its value, exit 1, and no score is written (NaN and negative values were scored
    without a word: no day above NaN, every day above -5; true was taken for 1 m3/s)."""
    from sca2lstm.cli.main import main

    obs = np.array([1.0, 2.0, 10.0, 2.0])
    t = _table(obs, obs, obs - 0.5, obs + 0.5, p=[0.0, 0.0, 1.0, 0.0], warn=[False, False, True, False],
               pers=[1.0, 1.0, 2.0, 10.0])
    f = tmp_path / "reforecast.csv"
    t.to_csv(f, index=False)
    (tmp_path / "levels.json").write_text(level)
    assert main(["verify", str(f)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{tmp_path / 'levels.json'}: " in err[0] and needle in err[0], err
    assert sorted(q.name for q in tmp_path.iterdir()) == ["levels.json", "reforecast.csv"]
    (tmp_path / "levels.json").write_text('{"flood": {"value": "5.0", "unit": "m3/s"}}')  # a number as text is one
    assert main(["verify", str(f), "--quiet"]) == 0
    per_level = pd.read_csv(tmp_path / "verify_per_level.csv")
    assert (per_level["level"] == "flood").all() and per_level["hits"].max() == 1


@pytest.mark.parametrize("edit,needle", [
    ({"issue_date": pd.date_range("2000-01-01", periods=4)},   # the valid day written as the issue date
     "row 2 is issued 2000-01-01, valid 2000-01-01 (0 day(s) later) with lead_days 1; a row's valid_date is its "
     "issue_date + lead_days, leads from 1 (4 such rows)"),
    ({"lead_days": [1, 1, 2, 1]}, "row 4 is issued 2000-01-02, valid 2000-01-03 (1 day(s) later) with lead_days 2"),
])
def test_a_row_whose_valid_date_is_not_its_issue_date_plus_its_lead_is_one_line(tmp_path, capsys, edit, needle):
    """A row whose valid_date is not issue_date + lead_days (a valid day on its issue date, a lead that does not
    fit its dates) is refused in one line naming the row, its dates and its lead, exit 1, no score written; it
    was scored at the lead it claimed, with persistence taken on the wrong day."""
    from sca2lstm.cli.main import main

    obs = np.array([1.0, 2.0, 10.0, 2.0])
    t = _table(obs, obs, obs - 0.5, obs + 0.5, p=[0.0, 0.0, 1.0, 0.0], warn=[False, False, True, False],
               pers=[1.0, 1.0, 2.0, 10.0])
    f = tmp_path / "reforecast.csv"
    t.assign(**edit).to_csv(f, index=False)
    assert main(["verify", str(f)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert [q.name for q in tmp_path.iterdir()] == ["reforecast.csv"]
    t.to_csv(f, index=False)
    assert main(["verify", str(f), "--quiet"]) == 0


def test_a_table_with_no_rows_or_no_observed_flow_is_one_line_and_no_scores(tmp_path, capsys):
    """A header-only table, or a reforecast of days not yet observed, is refused in one line, exit 1, and no
    score file is written (an earlier one stays)."""
    from sca2lstm.cli.main import main

    obs = np.array([1.0, 2.0, 10.0, 2.0])
    t = _table(obs, obs, obs - 0.5, obs + 0.5, p=[0.0, 0.0, 1.0, 0.0], warn=[False, False, True, False],
               pers=[1.0, 1.0, 2.0, 10.0])
    for name, table, text in (("empty", t.iloc[:0], "has no rows"),
                              ("future", t.assign(observed=np.nan), "no row has an observed flow")):
        f = tmp_path / name / "reforecast.csv"
        f.parent.mkdir()
        table.to_csv(f, index=False)
        (f.parent / "verify_per_lead.csv").write_text("earlier\n")
        assert main(["verify", str(f)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and text in err[0]
        assert (f.parent / "verify_per_lead.csv").read_text() == "earlier\n"


@pytest.mark.parametrize("column,cell,needle", [
    ("observed", "--", "column 'observed' holds '--' on row 3, not a number"),
    ("q05", "low", "column 'q05' holds 'low' on row 3, not a number"),
    ("p_exceed_flood", "high", "column 'p_exceed_flood' holds 'high' on row 3, not a number"),
    ("lead_days", "one", "column 'lead_days' holds 'one' on row 3, not a number"),
    ("lead_days", "1.5", "column 'lead_days' holds 1.5 on row 3; every row needs its lead, a whole number"),
    ("lead_days", "", "column 'lead_days' holds an empty cell on row 3; every row needs its lead"),
])
def test_a_cell_typed_over_in_a_spreadsheet_is_one_line_naming_it_and_no_scores(tmp_path, capsys, column, cell,
                                                                                needle):
    """A hand-edited table with a note in a number's cell, or a lead that is no whole day, is refused in one line
    naming the column, the cell and its row (it was a traceback, or a row silently left out), exit 1, and an
    earlier score file stays; an empty flow cell is a gap, as before."""
    from sca2lstm.cli.main import main

    obs = np.array([1.0, 2.0, 10.0, 2.0])
    t = _table(obs, obs, obs - 0.5, obs + 0.5, p=[0.0, 0.0, 1.0, 0.0], warn=[False, False, True, False],
               pers=[1.0, 1.0, 2.0, 10.0]).astype({column: object})
    t.loc[1, column] = cell
    f = tmp_path / "reforecast.csv"
    t.to_csv(f, index=False)
    (tmp_path / "verify_per_lead.csv").write_text("earlier\n")
    assert main(["verify", str(f)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert (tmp_path / "verify_per_lead.csv").read_text() == "earlier\n"
    t.loc[1, column] = "" if column != "lead_days" else 1
    t.to_csv(f, index=False)
    assert main(["verify", str(f), "--quiet"]) == 0
    assert pd.read_csv(tmp_path / "verify_per_lead.csv")["lead"].tolist() == [1]


def test_a_table_pasted_below_itself_scores_as_once_and_two_different_forecasts_of_a_day_are_one_line(tmp_path,
                                                                                                       capsys):
    """The same rows twice count once (the scores are those of the table alone); two different forecasts of one
    valid day at one lead (two runs joined) are refused in one line naming the day, the lead and the issue
    dates, exit 1, with no score written (both were a traceback)."""
    from sca2lstm.cli.main import main

    obs = np.array([1.0, 2.0, 10.0, 2.0])
    t = _table(obs, obs + 0.3, obs - 0.5, obs + 0.5, p=[0.0, 0.0, 1.0, 0.0], warn=[False, False, True, False],
               pers=[1.0, 1.0, 2.0, 10.0])
    scores = {}
    for name, table in (("once", t), ("twice", pd.concat([t, t]))):
        (tmp_path / name).mkdir()
        table.to_csv(tmp_path / name / "reforecast.csv", index=False)
        assert main(["verify", str(tmp_path / name / "reforecast.csv"), "--quiet"]) == 0
        scores[name] = pd.read_csv(tmp_path / name / "verify_per_lead.csv")
    capsys.readouterr()
    pd.testing.assert_frame_equal(scores["twice"], scores["once"])
    other = t.iloc[[2]].assign(median=3.0)   # lead 1 of the same issue date again, from another run
    (tmp_path / "joined").mkdir()
    pd.concat([t, other]).to_csv(tmp_path / "joined" / "reforecast.csv", index=False)
    assert main(["verify", str(tmp_path / "joined" / "reforecast.csv")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "two different rows for lead 1, valid 2000-01-03 (issued 2000-01-02; 2 such rows)" \
                             in err[0], err
    assert sorted(q.name for q in (tmp_path / "joined").iterdir()) == ["reforecast.csv"]


def test_a_table_of_medians_only_is_one_line_naming_the_quantile_columns(tmp_path, capsys):
    """A table without its quantile columns (only the median kept) is refused in one line naming them and the
    columns it has, exit 1, nothing written (the line was an internal 'quantiles (last axis 1) and levels ((1,))',
    exit 2)."""
    from sca2lstm.cli.main import main

    obs = np.array([1.0, 2.0, 10.0, 2.0])
    t = _table(obs, obs, obs - 0.5, obs + 0.5, p=[0.0, 0.0, 1.0, 0.0], warn=[False, False, True, False],
               pers=[1.0, 1.0, 2.0, 10.0]).drop(columns=["q05", "q25", "q75", "q95"])
    t.to_csv(tmp_path / "reforecast.csv", index=False)
    assert main(["verify", str(tmp_path / "reforecast.csv")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "reforecast.csv: no quantile column (q05, q25, q75, q95 beside the median); verify " \
                             "scores a forecast's distribution; the table has issue_date, valid_date, lead_days, " \
                             "median, observed" in err[0], err
    assert [q.name for q in tmp_path.iterdir()] == ["reforecast.csv"]


def test_the_reforecast_folder_given_for_its_table_names_the_table(tmp_path, capsys):
    """forecast --from/--to prints the reforecast's folder: given to verify, it is said to be a folder and the
    table in it is named (it was 'no such file'); nothing is written."""
    from sca2lstm.cli.main import main

    folder = tmp_path / "basin_32006_reforecast_2010-10-01_2015-09-30"
    folder.mkdir()
    assert main(["verify", str(folder)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{folder} is a folder, not a reforecast table; it holds no reforecast.csv" in err[0]
    (folder / "reforecast.csv").write_text("issue_date\n")
    assert main(["verify", str(folder)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"give the table in it, {folder / 'reforecast.csv'}" in err[0]
    assert sorted(p.name for p in folder.iterdir()) == ["reforecast.csv"]


def test_verify_draws_its_scores_beside_persistence_and_the_quantiles_reliability(tmp_path, monkeypatch, capsys):
    """verify.png: NSE by lead (model and persistence), F1 by day of the levels that had an event or a warning,
    and the share of days below each quantile against its level."""
    import json

    from sca2lstm.cli.main import main
    from sca2lstm.evaluation import plots as P

    obs = np.array([1.0, 2.0, 10.0, 2.0])
    med = np.array([1.0, 2.0, 8.0, 2.0])
    t = _table(obs, med, med - 0.5, med + 0.5, p=[0.0, 0.0, 1.0, 0.0], warn=[False, False, True, False],
               pers=[1.0, 1.0, 2.0, 10.0]).assign(p_exceed_never=0.0, warn_never=False)
    folder = tmp_path / "basin_32006_reforecast_2000-01-01_2000-01-04"
    folder.mkdir()
    t.to_csv(folder / "reforecast.csv", index=False)
    (folder / "levels.json").write_text(json.dumps({"flood": {"value": 5.0}, "never": {"value": 50.0}}))
    figs = []   # the figure as drawn (the real _save clears it after writing)
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append((fig, path)) or fig.savefig(path) or path)
    assert main(["verify", str(folder / "reforecast.csv"), "--quiet"]) == 0
    assert (folder / "verify.png").stat().st_size > 0 and "verify.png" in capsys.readouterr().out
    fig, _ = figs[0]
    ax_nse, ax_f1, ax_rel = fig.axes
    per_lead, _ = verify(t, {"flood": 5.0})
    lines = {ln.get_label(): ln for ln in ax_nse.get_lines()}
    assert lines["model (median)"].get_ydata()[0] == pytest.approx(per_lead["nse"].iloc[0])
    assert lines["persistence"].get_ydata()[0] == pytest.approx(1 - np.sum((obs - [1, 1, 2, 10]) ** 2)
                                                                / np.sum((obs - obs.mean()) ** 2))
    names = [ln.get_label() for ln in ax_f1.get_lines()]
    # "never": no event, no warning, nothing drawn; the model's line says how many days were above (one: 10 > 5)
    assert names == ["flood (1 day above), model", "flood, persistence"]
    lead1 = next(ln for ln in ax_rel.get_lines() if ln.get_label() == "lead 1")
    # below q05, q25 (= median here), median, q75 (= median): no flow fell below (three equal the median, 10 is
    # above 8); 1 - the share above q95 (10 > 8.5): 0.75
    assert list(lead1.get_xdata()) == [0.05, 0.25, 0.5, 0.75, 0.95]
    assert list(lead1.get_ydata()) == pytest.approx([0.0, 0.0, 0.0, 0.0, 0.75])
    assert "basin_32006" in fig.get_suptitle()


def test_a_level_never_reached_has_no_f1_rather_than_zero_and_verify_says_why(tmp_path, capsys):
    """A level no verified day reached, warned twice: there was no flood to detect, so POD, CSI and F1 are
    undefined (NaN, never a 0 that reads as floods missed); FAR shows the two false alarms and one line
    says so."""
    from sca2lstm.cli.main import main

    obs = np.array([1.0, 2.0, 3.0, 2.0])
    t = _table(obs, obs, obs - 0.5, obs + 0.5, p=[0.0, 0.6, 0.7, 0.0], warn=[False, True, True, False],
               pers=[1.0, 1.0, 2.0, 3.0])
    per_level = verify(t, {"flood": 50.0})[1]
    for count in ("day", "event"):
        m = per_level[(per_level["forecast"] == "model") & (per_level["count"] == count)].iloc[0]
        assert m["false_alarms"] >= 1 and m["far"] == 1.0
        assert np.isnan(m["pod"]) and np.isnan(m["csi"]) and np.isnan(m["f1"])
        assert np.isnan(m["f1_lo90"]) and np.isnan(m["f1_hi90"])
    f = tmp_path / "reforecast.csv"
    t.to_csv(f, index=False)
    (tmp_path / "levels.json").write_text('{"flood": {"value": 50.0, "unit": "m3/s"}}')
    assert main(["verify", str(f)]) == 0
    out = capsys.readouterr().out
    line = [x for x in out.splitlines() if x.startswith("flood (50 m3/s): no observed day above it")]
    assert len(line) == 1 and "lead(s) 1," in line[0] and "2 warned day(s)" in line[0] and "not 0" in line[0]
    written = pd.read_csv(tmp_path / "verify_per_level.csv")
    assert written.loc[written["forecast"] == "model", "f1"].isna().all()


def test_a_level_the_table_warns_on_but_the_levels_file_lacks_is_named_not_dropped(tmp_path, capsys):
    """warn_flood in the table, a levels.json of other levels: its warnings cannot be scored (no flow tells
    the days above it), and one line names it instead of leaving it out of the scores without a word."""
    from sca2lstm.cli.main import main

    obs = np.array([1.0, 2.0, 10.0, 2.0])
    t = _table(obs, obs, obs - 0.5, obs + 0.5, p=[0.0, 0.0, 1.0, 0.0], warn=[False, False, True, False],
               pers=[1.0, 1.0, 2.0, 10.0])
    f = tmp_path / "reforecast.csv"
    t.to_csv(f, index=False)
    (tmp_path / "levels.json").write_text('{"alert": {"value": 5.0, "unit": "m3/s"}}')
    assert main(["verify", str(f)]) == 0
    out = capsys.readouterr().out
    line = [x for x in out.splitlines() if x.startswith("not scored:")]
    assert len(line) == 1 and "warnings of flood " in line[0] and "levels.json" in line[0]
    (tmp_path / "levels.json").write_text('{"flood": {"value": 5.0, "unit": "m3/s"}}')
    assert main(["verify", str(f)]) == 0
    assert "not scored" not in capsys.readouterr().out


@pytest.mark.parametrize("yes, no", [(1, 0), ("TRUE", "FALSE"), ("1.0", "0.0")])
def test_warnings_written_as_one_and_zero_score_as_true_and_false(tmp_path, capsys, yes, no):
    """A table whose warn_ column another tool or a spreadsheet wrote as 1/0 (or TRUE/FALSE) scores as the
    reforecast's true/false: its warnings are not read as never issued."""
    from sca2lstm.cli.main import main

    obs = np.array([1.0, 2.0, 10.0, 2.0])
    warn = [False, False, True, False]
    t = _table(obs, obs, obs - 0.5, obs + 0.5, p=[0.0, 0.0, 1.0, 0.0], warn=warn, pers=[1.0, 1.0, 2.0, 10.0])
    (tmp_path / "levels.json").write_text('{"flood": {"value": 5.0, "unit": "m3/s"}}')
    t.assign(warn_flood=[yes if w else no for w in warn]).to_csv(tmp_path / "reforecast.csv", index=False)
    assert main(["verify", str(tmp_path / "reforecast.csv"), "--quiet"]) == 0
    capsys.readouterr()
    s = pd.read_csv(tmp_path / "verify_per_level.csv")
    m = s[(s["forecast"] == "model") & (s["count"] == "day")].iloc[0]
    assert (m["hits"], m["false_alarms"], m["pod"], m["f1"]) == (1, 0, 1.0, 1.0)


def test_a_warning_cell_that_is_no_yes_or_no_is_one_line_naming_it_and_no_scores(tmp_path, capsys):
    """WAHR/FALSCH from a German spreadsheet would read as never warned: refused in one line naming the cell."""
    from sca2lstm.cli.main import main

    obs = np.array([1.0, 2.0, 10.0, 2.0])
    t = _table(obs, obs, obs - 0.5, obs + 0.5, p=[0.0, 0.0, 1.0, 0.0], warn=["FALSCH", "FALSCH", "WAHR", "FALSCH"],
               pers=[1.0, 1.0, 2.0, 10.0])
    t.to_csv(tmp_path / "reforecast.csv", index=False)
    assert main(["verify", str(tmp_path / "reforecast.csv")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "column 'warn_flood' holds 'FALSCH' on row 2" in err[0]
    assert not (tmp_path / "verify_per_level.csv").exists()


def test_dates_that_do_not_show_day_against_month_are_read_with_the_date_format_the_error_names(tmp_path, capsys):
    """A table saved again from a spreadsheet as 02/01/2000 .. 05/01/2000: the one line says to give
    --date_format, and verify has that flag, which reads the table as the ISO one."""
    from sca2lstm.cli.main import main

    obs = np.array([1.0, 2.0, 10.0, 2.0])
    t = _table(obs, obs, obs - 0.5, obs + 0.5, p=[0.0, 0.0, 1.0, 0.0], warn=[False, False, True, False],
               pers=[1.0, 1.0, 2.0, 10.0])
    (tmp_path / "levels.json").write_text('{"flood": {"value": 5.0, "unit": "m3/s"}}')
    iso, dmy = tmp_path / "iso" / "reforecast.csv", tmp_path / "dmy" / "reforecast.csv"
    for f in (iso, dmy):
        f.parent.mkdir()
        (f.parent / "levels.json").write_text('{"flood": {"value": 5.0, "unit": "m3/s"}}')
    t.to_csv(iso, index=False)
    t.to_csv(dmy, index=False, date_format="%d/%m/%Y")
    assert main(["verify", str(dmy)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--date_format" in err[0]
    assert main(["verify", str(dmy), "--date_format", "%d/%m/%Y", "--quiet"]) == 0
    assert main(["verify", str(iso), "--quiet"]) == 0
    capsys.readouterr()
    for name in ("verify_per_lead.csv", "verify_per_level.csv"):
        assert (dmy.parent / name).read_text() == (iso.parent / name).read_text()


def test_a_lead_without_any_observed_flow_is_named_and_not_called_a_level_never_reached(tmp_path, capsys):
    """Lead 2's valid days all unobserved: one line names the lead as unscored, and the line for a level no
    verified day reached does not claim that lead (it was not observed, not dry)."""
    from sca2lstm.cli.main import main

    obs = np.array([1.0, 2.0, 10.0, 2.0])
    one = _table(obs, obs, obs - 0.5, obs + 0.5, p=[0.0, 0.0, 1.0, 0.0], warn=[False, False, True, False],
                 pers=[1.0, 1.0, 2.0, 10.0])
    two = one.assign(lead_days=2, issue_date=one["issue_date"] - pd.Timedelta(days=1), observed=np.nan)
    f = tmp_path / "reforecast.csv"
    pd.concat([one, two]).to_csv(f, index=False)
    (tmp_path / "levels.json").write_text('{"flood": {"value": 50.0, "unit": "m3/s"}}')
    assert main(["verify", str(f)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [x for x in out if x.startswith("lead(s) 2: no row has an observed flow")]
    never = [x for x in out if x.startswith("flood (50 m3/s): no observed day above it")]
    assert len(never) == 1 and "at lead(s) 1," in never[0]


def test_warnings_without_their_probabilities_are_scored_with_no_brier_skill(tmp_path):
    """A table of yes/no warnings without p_exceed_ (another tool's): POD, FAR, CSI and F1 are scored as with the
    probabilities, and only the Brier skill, which needs them, is NaN; before, the level was left out unscored."""
    obs = np.array([1.0, 2.0, 10.0, 2.0])
    t = _table(obs, obs, obs - 0.5, obs + 0.5, p=[0.0, 0.0, 1.0, 0.0], warn=[False, False, True, False],
               pers=[1.0, 1.0, 2.0, 10.0])
    full = verify(t, {"flood": 5.0})[1]
    bare = verify(t.drop(columns=["p_exceed_flood"]), {"flood": 5.0})[1]
    assert len(bare) == len(full) == 4
    cols = ["hits", "misses", "false_alarms", "pod", "far", "csi", "f1"]
    pd.testing.assert_frame_equal(bare[cols], full[cols])
    assert bare["brier_skill"].isna().all() and full["brier_skill"].iloc[0] == pytest.approx(1.0)


def _issued_record():
    """Eight days at lead 1 of a service's record: the first two issued before the level 'flood' was set (its cells
    empty), then issued with it at 5 m3/s, the last two after it was moved to 8 m3/s."""
    obs = np.array([9.0, 9.0, 6.0, 1.0, 2.0, 7.0, 9.0, 1.0])
    t = _table(obs, obs, obs - 0.5, obs + 0.5, p=[np.nan, np.nan, 0.9, 0.1, 0.6, 0.2, 0.8, 0.7],
               warn=[None, None, True, False, True, False, True, True], pers=[1.0, 9.0, 9.0, 6.0, 1.0, 2.0, 7.0, 9.0])
    t.insert(len(t.columns) - 2, "level_flood", [np.nan, np.nan, 5.0, 5.0, 5.0, 5.0, 8.0, 8.0])
    return t


def test_each_row_is_scored_against_the_level_it_was_issued_with_and_rows_issued_without_it_are_left_out():
    """Against its own value, rows 3..8 have events on rows 3, 6, 7 (6 > 5, 7 > 5, 9 > 8) and warnings on rows 3, 5,
    7, 8: 2 hits, 1 miss (row 6), 2 false alarms (5, 8). The first two rows (9 m3/s, issued without the level)
    are no misses: left out. Against today's 8 m3/s for every row with empty cells as no warning, it would read
    1 hit, 2 misses, 3 false alarms."""
    t = _issued_record()
    _, per_level = verify(t, {"flood": 8.0})
    m = per_level[(per_level["forecast"] == "model") & (per_level["count"] == "day")].iloc[0]
    assert (m["hits"], m["misses"], m["false_alarms"]) == (2, 1, 2)
    assert m["pod"] == pytest.approx(2 / 3) and m["far"] == pytest.approx(0.5)
    assert m["n_left_out"] == 2 and m["values"] == "5, 8"
    # Brier on the six rows issued with it: ((0.1)^2 + 0.1^2 + 0.6^2 + 0.8^2 + 0.2^2 + 0.7^2) / 6 against the
    # base rate 3/6
    assert m["brier"] == pytest.approx(1.55 / 6, rel=1e-12)
    assert m["brier_skill"] == pytest.approx(1 - (1.55 / 6) / 0.25, rel=1e-12)
    # persistence (the day before's flow) against the same values: warns rows 3, 4, 8; hits 3, misses 6, 7
    p = per_level[(per_level["forecast"] == "persistence") & (per_level["count"] == "day")].iloc[0]
    assert (p["hits"], p["misses"], p["false_alarms"]) == (1, 2, 2)


def test_verify_says_how_many_rows_were_issued_without_a_level_and_the_values_each_was_scored_against(tmp_path,
                                                                                                    capsys):
    """The record as issued.csv writes it (empty cells where a forecast had no such level), with a levels.json
    of today's value: one line names the rows left out and why, one the values the rows were scored against."""
    from sca2lstm.cli.main import main

    f = tmp_path / "reforecast.csv"
    _issued_record().to_csv(f, index=False)
    assert ",,," in f.read_text()   # the level, p_exceed and warn cells of the first rows: empty
    (tmp_path / "levels.json").write_text('{"flood": {"value": 8.0, "unit": "m3/s"}}')
    assert main(["verify", str(f)]) == 0
    out = capsys.readouterr().out
    left = [x for x in out.splitlines() if x.startswith("flood: 2 of 8 rows")]
    assert len(left) == 1 and "2 issue date(s), 1999-12-31 .. 2000-01-01" in left[0] and "without this level" in left[0]
    values = [x for x in out.splitlines() if x.startswith("flood: each forecast scored against the value")]
    assert len(values) == 1 and values[0].endswith("5 m3/s (issue dates 2000-01-02 .. 2000-01-05), 8 m3/s "
                                                   "(issue dates 2000-01-06 .. 2000-01-07)")
    s = pd.read_csv(tmp_path / "verify_per_level.csv")
    m = s[(s["forecast"] == "model") & (s["count"] == "day")].iloc[0]
    assert (m["hits"], m["misses"], m["false_alarms"], m["n_left_out"]) == (2, 1, 2, 2)
    # without a levels file the table's own values score it all the same
    (tmp_path / "levels.json").unlink()
    assert main(["verify", str(f), "--quiet"]) == 0
    s = pd.read_csv(tmp_path / "verify_per_level.csv")
    assert s.loc[(s["forecast"] == "model") & (s["count"] == "day"), "hits"].iloc[0] == 2


def test_a_level_value_that_is_no_flow_is_refused_in_one_line(tmp_path, capsys):
    from sca2lstm.cli.main import main

    t = _issued_record()
    t.loc[3, "level_flood"] = -5.0
    t.to_csv(tmp_path / "reforecast.csv", index=False)
    assert main(["verify", str(tmp_path / "reforecast.csv")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "column 'level_flood' holds -5 on row 5" in err[0]


def test_verify_refuses_the_levels_of_another_station_and_a_table_of_several_and_reads_files_without_an_id(
        tmp_path, capsys):
    """reforecast.csv (column ``basin``) and levels.json (each level's ``basin``) name their station: verify refuses
    in one line, writing no scores, a levels file of another station (given with --levels: the warnings would be
    scored against another river's flows without a word), one of several stations, and a table whose rows are of
    several stations; the station's own levels, and files written before they named it (no id), score as before.
    The id is text: 032006 is not 32006."""
    import json

    from sca2lstm.cli.main import main

    obs = np.array([1.0, 2.0, 10.0, 2.0])
    t = _table(obs, obs, obs - 0.5, obs + 0.5, p=[0.0, 0.0, 1.0, 0.0], warn=[False, False, True, False],
               pers=[1.0, 1.0, 2.0, 10.0])
    f = tmp_path / "reforecast.csv"
    t.insert(0, "basin", "032006")
    t.to_csv(f, index=False)

    def levels(name, *basins):
        doc = {f"flood{i}" if i else "flood": {"value": 5.0, "unit": "m3/s", **({"basin": b} if b else {})}
               for i, b in enumerate(basins or [None])}
        (tmp_path / name).write_text(json.dumps(doc))
        return str(tmp_path / name)

    def refused(argv, needle):
        rc = main(["verify", str(f), *argv])
        err = capsys.readouterr().err
        assert rc == 1 and len(err.strip().splitlines()) == 1 and needle in err, err
        assert not (tmp_path / "verify_per_lead.csv").exists()

    refused(["--levels", levels("other.json", "10002")], "other.json: the levels of basin 10002, but the table "
            "forecasts basin 032006; give basin 032006's levels with --levels")
    refused(["--levels", levels("zero.json", "32006")], "the levels of basin 32006, but the table forecasts basin "
            "032006")
    refused(["--levels", levels("two.json", "032006", "10002")], "two.json: levels of 2 stations (basin 032006, "
            "10002); a levels file holds one station's levels")
    for name, ids in (("own.json", ["032006"]), ("old.json", [])):
        assert main(["verify", str(f), "--levels", levels(name, *ids)]) == 0, name
        assert "flood" in set(pd.read_csv(tmp_path / "verify_per_level.csv")["level"]), name
        (tmp_path / "verify_per_lead.csv").unlink()
    capsys.readouterr()
    old = tmp_path / "old.csv"    # a table written before tables named their station, any station's levels
    t.drop(columns="basin").to_csv(old, index=False)
    assert main(["verify", str(old), "--levels", levels("other.json", "10002")]) == 0
    (tmp_path / "verify_per_lead.csv").unlink()
    both = t.copy()
    both["basin"] = "10002"
    both["issue_date"] += pd.Timedelta(days=10)
    both["valid_date"] += pd.Timedelta(days=10)
    pd.concat([t, both]).to_csv(f, index=False)
    refused([], "reforecast.csv: rows of 2 stations (column 'basin': 032006, 10002); verify scores one station's "
            "forecasts: keep the rows of one station")


def test_verify_names_the_station_in_its_heading_and_says_when_the_other_file_names_none(tmp_path, capsys):
    """The heading names the station of a table that names it; checked against a levels file that names none (an
    old one), or a table naming none against levels that do, one line says the levels are taken unchecked; where
    both name it (or neither), no such line."""
    import json

    from sca2lstm.cli.main import main

    obs = np.array([1.0, 2.0, 10.0, 2.0])
    t = _table(obs, obs, obs - 0.5, obs + 0.5, p=[0.0, 0.0, 1.0, 0.0], warn=[False, False, True, False],
               pers=[1.0, 1.0, 2.0, 10.0])
    named, old = tmp_path / "reforecast.csv", tmp_path / "old.csv"
    t.assign(basin="032006").to_csv(named, index=False)
    t.to_csv(old, index=False)
    own, unnamed = tmp_path / "own.json", tmp_path / "unnamed.json"
    own.write_text(json.dumps({"flood": {"value": 5.0, "unit": "m3/s", "basin": "032006"}}))
    unnamed.write_text(json.dumps({"flood": {"value": 5.0, "unit": "m3/s"}}))

    def out(table, levels):
        assert main(["verify", str(table), "--levels", str(levels), "--output_dir", str(tmp_path / "v")]) == 0
        return capsys.readouterr().out.splitlines()

    def unchecked(lines):
        return [ln for ln in lines if "unchecked" in ln]

    lines = out(named, own)
    assert any(ln.startswith(f"{named}: basin 032006, 4 issue dates") for ln in lines) and not unchecked(lines)
    assert unchecked(out(named, unnamed)) == [f"{unnamed} names no station (written before levels named theirs): its "
                                              "levels are taken as basin 032006's, unchecked"]
    assert unchecked(out(old, own)) == [f"{old} names no station (written before tables named theirs): the levels of "
                                        "basin 032006 are taken as its, unchecked"]
    lines = out(old, unnamed)
    assert any(ln.startswith(f"{old}: 4 issue dates") for ln in lines) and not unchecked(lines)
