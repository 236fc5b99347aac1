"""Exceedance probabilities from quantile forecasts, first warning leads and the choice of warning probability."""

import numpy as np
import pytest
from scipy import stats

from sca2lstm.evaluation.exceedance import (
    DEFAULT_WARN_PROBABILITY,
    choose_warn_probabilities,
    choose_warn_probability,
    exceedance_probability,
    f1_by_threshold,
    first_warning_lead,
    pit,
)

TAUS = np.array([0.05, 0.25, 0.5, 0.75, 0.95])


def test_probability_agrees_with_every_quantile():
    rng = np.random.default_rng(0)
    q = np.sort(rng.gamma(2.0, 10.0, size=(50, 7, 5)), axis=-1)
    for j, t in enumerate(TAUS):
        assert np.allclose(exceedance_probability(q, TAUS, q[..., j]), 1 - t, atol=1e-12)


def test_probability_is_monotone_and_bounded_and_linear_between_quantiles():
    q = np.array([1.0, 2.0, 4.0, 6.0, 10.0])
    x = np.linspace(-1, 40, 2000)
    p = exceedance_probability(np.broadcast_to(q, (len(x), 5)), TAUS, x)
    assert np.all(np.diff(p) <= 0) and p.min() >= 0 and p.max() <= 1
    assert exceedance_probability(q, TAUS, 3.0) == pytest.approx(1 - (0.25 + 0.25 * 0.5))
    # exponential upper tail through q75 and q95: scale 4 / ln 5; at q95 + s ln 5 the probability is 0.01
    s = 4.0 / np.log(5.0)
    assert exceedance_probability(q, TAUS, 10.0 + s * np.log(5.0)) == pytest.approx(0.01)
    assert exceedance_probability(q, TAUS, -0.5) == 1.0


def test_tail_tracks_a_known_distribution_roughly():
    # quantiles of an exponential distribution: its tail is exactly what the upper tail assumes
    d = stats.expon(scale=5.0)
    q = d.ppf(TAUS)
    for x in (q[-1] + 1.0, q[-1] + 10.0):
        assert exceedance_probability(q, TAUS, x) == pytest.approx(d.sf(x), rel=1e-9)


def test_degenerate_and_missing_quantiles():
    q = np.array([[2.0, 2.0, 2.0, 2.0, 2.0], [np.nan, 1, 2, 3, 4]])
    p = exceedance_probability(q, TAUS, np.array([2.5, 1.0]))
    assert p[0] == 0.0 and np.isnan(p[1])
    assert pit(np.array([1.0, 2.0, 4.0, 6.0, 10.0]), TAUS, 4.0) == pytest.approx(0.5)


def test_first_warning_lead():
    p = np.array([[0.1, 0.2, 0.6, 0.9], [0.1, 0.1, 0.1, 0.1], [0.7, 0.1, 0.1, 0.1]])
    assert first_warning_lead(p, 0.5).tolist() == [3, 0, 1]
    assert first_warning_lead(p, np.array([0.95, 0.05, 0.8])).tolist() == [0, 1, 0]


def test_f1_by_threshold_hand_case():
    p = np.array([0.9, 0.6, 0.4, 0.2, 0.1])
    e = np.array([1, 0, 1, 0, 0])
    # g = 0.5: warnings on days 0, 1 -> tp 1, fp 1, fn 1 -> F1 = 2/4; g = 0.3: tp 2, fp 1 -> 4/5
    f1 = f1_by_threshold(p, e, grid=np.array([0.5, 0.3, 0.95]))
    assert f1 == pytest.approx([0.5, 0.8, 0.0])


def test_choose_warn_probability_maximises_f1_and_needs_events():
    rng = np.random.default_rng(1)
    truth = rng.uniform(size=20000)
    event = rng.uniform(size=20000) < truth  # calibrated probabilities
    p, f1, n = choose_warn_probability(truth, event)
    assert f1 == pytest.approx(np.nanmax(f1_by_threshold(truth, event)))
    assert 0.2 <= p <= 0.5 and n == event.sum()
    assert choose_warn_probability(truth[:50], np.zeros(50))[0] == DEFAULT_WARN_PROBABILITY


def test_a_lead_whose_own_choice_says_nothing_takes_the_probability_pooled_over_the_leads():
    """Lead 1 is calibrated; lead 2 never exceeds 0.05 on its event days (F1 0 at every threshold: the middle of
    that plateau was 0.5, an arbitrary figure); lead 3 has 5 event days (fewer than 10). Both take the pooled one."""
    rng = np.random.default_rng(3)
    truth = rng.uniform(size=4000)
    event1 = rng.uniform(size=4000) < truth
    p = np.stack([truth, np.where(event1, 0.01, 0.02), truth], axis=1)
    event3 = np.zeros(4000)
    event3[:5] = 1
    e = np.stack([event1, event1, event3], axis=1).astype(float)
    pooled, f1, n, by_lead = choose_warn_probabilities(p, e)
    assert (pooled, f1, n) == choose_warn_probability(p, e)
    assert by_lead[0] == choose_warn_probability(p[:, 0], e[:, 0])[0]
    assert np.nanmax(f1_by_threshold(p[:, 1], e[:, 1])) == 0.0
    assert by_lead[1] == pooled and by_lead[2] == pooled
    assert pooled != DEFAULT_WARN_PROBABILITY


def test_default_warning_probability_says_why_it_is_the_default():
    """A level without a calibrated probability gets the default, and the source names the reason."""
    from sca2lstm.evaluation.calibration import warn_probabilities
    from sca2lstm.evaluation.levels import Level

    alert = {"alert": Level("alert", 45.0, "user")}
    why = lambda calib: warn_probabilities(calib, alert)["alert"][1]  # noqa: E731
    assert why({}) == "default, as no calibration lies beside the model"
    assert why({"spread": {}}) == "default, as the calibration holds no warning probability"
    assert "gives no return-period level" in why({"warn_probability": {"q2y": {"warn_probability": 0.3}}})
    # said inside the level line's parentheses ("warn at P >= 0.50 (...)"): none of its own
    for calib in ({}, {"spread": {}}, {"warn_probability": {"q2y": {"warn_probability": 0.3}}}):
        assert "(" not in why(calib) and ")" not in why(calib)
    q2y = {"q2y": Level("q2y", 40.0, "gev"), **alert}
    took = warn_probabilities({"warn_probability": {"q2y": {"warn_probability": 0.3}}}, q2y)["alert"]
    assert took[:2] == (0.3, "as q2y, the nearest return-period level")


def test_a_forecast_of_levels_off_the_whole_percent_exceeds_each_quantile_at_its_own_level():
    """A model with model.quantiles 0.025 .. 0.975 (a 95 % interval): its table's columns must name those levels,
    so that P(flow > the 0.975-quantile) is 0.025 and P(flow > the 0.025-quantile) 0.975, not 0.02 and 0.98 as
    columns q02 and q98 made it."""
    import pandas as pd

    from sca2lstm.evaluation.levels import Level
    from sca2lstm.evaluation.operational import quantile_column
    from sca2lstm.evaluation.reforecast import Warnings, add_exceedance

    levels = [0.025, 0.25, 0.75, 0.975]
    values = [2.0, 4.0, 9.0, 15.0]
    table = pd.DataFrame({"lead_days": [1], "median": [6.0], **{quantile_column(t): [v] for t, v in zip(levels, values)}})
    warnings = Warnings({"low": Level("low", 2.0, "user", warn_probability=0.5),
                         "high": Level("high", 15.0, "user", warn_probability=0.5)})
    out = add_exceedance(table, warnings)
    assert out["p_exceed_low"].iloc[0] == pytest.approx(0.975)
    assert out["p_exceed_high"].iloc[0] == pytest.approx(0.025)
    assert [quantile_column(t) for t in (0.05, 0.5, 0.025, 0.975, 0.001)] == ["q05", "q50", "q025", "q975", "q001"]


def test_a_warning_probability_kept_from_the_pretrained_model_says_so():
    """A fine-tuned model keeps its pretrained model's warning probability where it rests on more event days
    (:func:`with_source_calibration`); its source said 'chosen on validation (F1)', as if chosen on the
    station's own validation days, where only 12 of them were floods."""
    from sca2lstm.evaluation.calibration import warn_probabilities, with_source_calibration
    from sca2lstm.evaluation.levels import Level

    own = {"warn_probability": {"q2y": {"warn_probability": 0.6, "event_days": 12},
                                "q5y": {"warn_probability": 0.4, "event_days": 30}}}
    src = {"warn_probability": {"q2y": {"warn_probability": 0.35, "event_days": 5663, "by_lead": [0.35] * 7},
                                "q5y": {"warn_probability": 0.45, "event_days": 20}}}
    levels = {"q2y": Level("q2y", 116.0, "glo"), "q5y": Level("q5y", 162.0, "glo")}
    got = warn_probabilities(with_source_calibration(own, src), levels)
    assert got["q2y"][:2] == (0.35, "chosen on validation (F1), taken from the pretrained model")
    assert got["q5y"][:2] == (0.4, "chosen on validation (F1)")   # its own, on more event days


@pytest.mark.parametrize("language, said", [("en", "warn at P >= 0.50 (default, as "), ("zh", "（默认值：")])
def test_a_default_warning_probability_is_said_in_one_pair_of_parentheses(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                           capsys, language, said):
    """The level line said where its warning probability came from in parentheses, and the default's source held
    its own reason in parentheses: "warn at P >= 0.50 (default (no calibration ...))". Worded once, in both
    languages."""
    from sca2lstm.cli.main import main

    assert main(["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
                 "--output_dir", str(tmp_path), "--issue_date", "1976-06-15", "--warning_levels", "alert=3.0",
                 "--language", language]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.lstrip().startswith("alert:"))
    assert said in line, line
    assert "((" not in line and "))" not in line and "（（" not in line and "））" not in line, line
