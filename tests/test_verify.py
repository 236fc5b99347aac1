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
