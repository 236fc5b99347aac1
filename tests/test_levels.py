"""Warning levels: return-period flows fitted on annual maxima, and the levels a user gives."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sca2lstm.data.station_meta import StationMeta, WarningLevel
from sca2lstm.errors import DataError, UsageError
from sca2lstm.evaluation import levels as lv

# Known distributions in each family's own parameterisation (GLO with k < 0 is a shifted log-logistic,
# scipy's fisk: c = -1/k, scale = -alpha/k, loc = xi + alpha/k).
TRUTH = {
    "gev": stats.genextreme(-0.1, loc=30.0, scale=8.0),
    "pe3": stats.pearson3(1.0, loc=40.0, scale=12.0),
    "glo": stats.fisk(1 / 0.15, loc=30.0 - 8.0 / 0.15, scale=8.0 / 0.15),
}


@pytest.mark.parametrize("dist", sorted(TRUTH))
def test_lmoment_fit_recovers_the_parameters_of_a_large_sample(dist):
    x = TRUTH[dist].rvs(200_000, random_state=np.random.default_rng(3))
    fitted = lv.quantile(dist, lv.fit_lmoments(dist, x), np.array([0.5, 0.9, 0.95]))
    assert np.allclose(fitted, TRUTH[dist].ppf([0.5, 0.9, 0.95]), rtol=0.01)


@pytest.mark.parametrize("dist", sorted(TRUTH))
def test_ten_year_flow_of_sixty_known_maxima_lies_in_its_interval(dist):
    # 60 annual maxima from a known distribution: the true 10-year flow must lie in the 90 % interval for
    # most seeds: a percentile bootstrap covers 84-89 % of 200 seeds here; of 20 seeds at least 14 (a biased
    # or too narrow fit covers far fewer).
    covered = 0
    for seed in range(20):
        x = TRUTH[dist].rvs(60, random_state=np.random.default_rng(seed))
        q10 = lv.fit_return_levels(x, dist)["q10y"]
        lo, hi = q10.ci
        assert lo < q10.value < hi
        covered += lo <= TRUTH[dist].ppf(0.9) <= hi
    assert covered >= 14


@pytest.mark.slow
@pytest.mark.parametrize("n", [30, 100])
@pytest.mark.parametrize("dist", sorted(TRUTH))
def test_every_return_periods_interval_covers_the_truth_about_as_often_as_it_says(dist, n):
    """200 records of n annual maxima from a known distribution, fitted with that distribution. Of 200 draws a
    90 % interval covers the truth 180 +- 4.2 times (binomial): the share must lie within 3 of those standard
    deviations of 0.90 (0.836-0.964), except at 30 years below: there the percentile bootstrap of a
    three-parameter fit covers the 10- and 20-year flows only 82-87 % of the time (it draws from the fitted
    distribution, and a short record whose fitted tail is too light gets too narrow an interval), so there 0.78 is
    the bound, as docs/floods.md says. The
    fitted flows are unbiased within their sampling error: the mean relative error lies within 3 standard
    errors of 0."""
    draws = 200
    periods = np.asarray(lv.RETURN_PERIODS)
    truth = TRUTH[dist].ppf(1 - 1 / periods)
    covered, rel = np.zeros(len(periods)), []
    for seed in range(draws):
        fit = lv.fit_return_levels(TRUTH[dist].rvs(n, random_state=np.random.default_rng(seed)), dist)
        levels = [fit[lv.return_period_name(t)] for t in periods]
        ci = np.array([level.ci for level in levels])
        covered += (ci[:, 0] <= truth) & (truth <= ci[:, 1])
        rel.append(np.array([level.value for level in levels]) / truth - 1)
    share, sd = covered / draws, np.sqrt(0.9 * 0.1 / draws)
    assert np.all(share <= 0.9 + 3 * sd), share
    assert np.all(share >= (0.9 - 3 * sd if n >= 100 else 0.78)), share
    rel = np.array(rel)
    assert np.all(np.abs(rel.mean(axis=0)) <= 3 * rel.std(axis=0, ddof=1) / np.sqrt(draws)), rel.mean(axis=0)


@pytest.mark.slow
@pytest.mark.parametrize("dist", sorted(TRUTH))
def test_a_river_dry_three_years_in_ten_gets_intervals_that_cover_like_a_record_of_its_wet_years(dist):
    """200 records of 30 years, each year dry (maximum 0) with probability 0.3, wet years from a known distribution
    shifted above 0: the true T-year flow is that distribution's quantile at (1 - 1/T - 0.3) / 0.7. The fitted 5- to
    20-year flows are unbiased within their sampling error and their intervals cover the truth at least 0.78 of the
    time, as for 30 maxima without dry years (measured 0.83-0.88: about 21 wet years); the 2-year flow is left out,
    as a record with 15 or more dry years rightly has none."""
    draws, p0, periods = 200, 0.3, np.array([5, 10, 20])
    truth = 30.0 + TRUTH[dist].ppf((1 - 1 / periods - p0) / (1 - p0))
    covered, rel = np.zeros(len(periods)), []
    for seed in range(draws):
        rng = np.random.default_rng(seed)
        x = np.where(rng.uniform(size=30) < p0, 0.0, 30.0 + TRUTH[dist].rvs(30, random_state=rng))
        levels = [lv.fit_return_levels(x, dist)[lv.return_period_name(t)] for t in periods]
        ci = np.array([level.ci for level in levels])
        covered += (ci[:, 0] <= truth) & (truth <= ci[:, 1])
        rel.append(np.array([level.value for level in levels]) / truth - 1)
    share = covered / draws
    assert np.all((share >= 0.78) & (share <= 0.9 + 3 * np.sqrt(0.9 * 0.1 / draws))), share
    rel = np.array(rel)
    assert np.all(np.abs(rel.mean(axis=0)) <= 3 * rel.std(axis=0, ddof=1) / np.sqrt(draws)), rel.mean(axis=0)


@pytest.mark.parametrize("shape", [(30,), (200, 30), (200, 5), (4, 3, 61), (400,), (2,), (1,)])
def test_lmoments_agree_with_scipys_within_the_rounding_of_their_sums(shape):
    """The L-moments are computed without scipy (importing scipy.stats took half a second of each forecast): they must
    be scipy.stats.lmoment's up to rounding. Each is a weighted sum of n values of at most M in size with weights of
    at most 6 (l3), so two ways of summing differ by at most about 16 n eps M; t3 = l3 / l2 by that over |l2|, times
    (1 + |t3|). Ties, zeros and a NaN (which makes its row NaN) included; a 2-D sample is the bootstrap's
    [n_boot, n]."""
    x = TRUTH["glo"].rvs(shape, random_state=np.random.default_rng(sum(shape)))
    x.flat[:3] = np.round(x.flat[:3])
    x.flat[-1] = 0.0
    n, eps = shape[-1], np.finfo(np.float64).eps
    for sample in (x, np.round(x), np.where(np.arange(x.size).reshape(shape) == x.size // 2, np.nan, x)):
        l1, l2, t3 = lv._lmoments(sample)
        with np.errstate(divide="ignore", invalid="ignore"):  # scipy's own warnings for fewer than 3 values
            ref = stats.lmoment(sample, order=[1, 2, 3], axis=-1, standardize=True)
        assert l1.shape == ref[0].shape
        tol = 16 * n * eps * np.abs(np.nan_to_num(sample)).max(axis=-1)   # a NaN row is NaN in both: no bound needed
        for ours, theirs, bound in ((l1, ref[0], tol), (l2, ref[1], tol),
                                    (t3, ref[2], tol * (1 + np.abs(ref[2])) / np.abs(ref[1]))):
            assert np.array_equal(np.isnan(ours), np.isnan(theirs))
            ok = ~np.isnan(theirs)
            assert np.all(np.abs(ours - theirs)[ok] <= bound[ok]), np.max(np.abs(ours - theirs)[ok])


@pytest.mark.parametrize("dist", sorted(TRUTH))
def test_levels_and_their_intervals_are_never_negative_flows(dist):
    """An ephemeral river: 3 of 12 water years without flow, the others small but for one flood. The fits can put a
    low quantile below 0; a level is clipped to 0 and so must its interval be (a 90 % interval of -0.1 to 0.02 m3/s
    is no flow's)."""
    fit = lv.fit_return_levels(np.r_[np.zeros(3), 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 3.0, 5.0, 50.0], dist)
    assert list(fit) == ["q2y", "q5y", "q10y", "q20y"]
    for level in fit.values():
        lo, hi = level.ci
        assert 0.0 <= lo <= level.value <= hi


@pytest.mark.parametrize("dist", sorted(TRUTH))
def test_a_river_dry_in_some_years_is_fitted_on_its_years_with_flow_and_its_share_of_dry_years(dist):
    """20 000 years, 60 % of them without flow (maximum 0), the others from a known distribution: P(max <= x) =
    0.6 + 0.4 F(x), so the 5-year flow (P = 0.8) is the wet years' median F = 0.5, the 10-year F = 0.75 and the
    20-year F = 0.875; the 2-year flow (P = 0.5) is 0 and gets no level. Fitted with the zeros, a continuous
    distribution would give a 5-year flow far below the median of the years that flow."""
    wet = 30.0 + TRUTH[dist].rvs(8000, random_state=np.random.default_rng(5))  # shifted: never 0 or below
    assert wet.min() > 0
    fit = lv.fit_return_levels(np.r_[np.zeros(12000), wet], dist, n_boot=0)
    assert list(fit) == ["q5y", "q10y", "q20y"]
    got = [fit[n].value for n in ("q5y", "q10y", "q20y")]
    assert np.allclose(got, 30.0 + TRUTH[dist].ppf([0.5, 0.75, 0.875]), rtol=0.02), got
    assert "(20000 annual maxima, 12000 without flow)" in fit["q5y"].source


def test_the_five_year_flow_of_a_river_dry_three_years_in_five_is_its_wet_years_median_with_an_interval(caplog):
    """30 years, 18 without flow: p0 = 0.6, so the 5-year flow is the fitted median of the 12 wet years' maxima, which
    for GLO is its location xi (hand-checkable); the 2-year flow is 0, refused with a note rather than set to a level of
    0 m3/s that would warn whenever the river runs. The interval (the number of dry years redrawn in each bootstrap
    record) holds the level and no negative flow."""
    wet = 30.0 + TRUTH["glo"].rvs(12, random_state=np.random.default_rng(2))
    with caplog.at_level("WARNING"):
        fit = lv.fit_return_levels(np.r_[np.zeros(18), wet], "glo")
    assert list(fit) == ["q5y", "q10y", "q20y"]
    assert fit["q5y"].value == pytest.approx(float(lv.fit_lmoments("glo", wet)["xi"]))
    assert "18 of 30 years had no flow, so the 2-year flow is 0 m3/s; no level is set for q2y" in caplog.text
    for level in fit.values():
        lo, hi = level.ci
        assert 0.0 <= lo < level.value < hi


def test_fewer_than_five_years_with_flow_give_no_levels(caplog):
    with caplog.at_level("WARNING"):
        assert lv.fit_return_levels(np.r_[np.zeros(26), 1.0, 2.0, 3.0, 9.0], "glo") == {}
    assert "only 4 of 30 years had any flow" in caplog.text


@pytest.mark.parametrize("dist", sorted(TRUTH))
def test_annual_maxima_that_do_not_vary_give_no_levels_rather_than_nan(dist, caplog):
    """A gauge capped at 20 m3/s, the cap reached every year: no distribution fits maxima without spread. NaN levels
    would be written to levels.json as NaN (not JSON) and never warn; there are none, and the log says why."""
    import json

    d = pd.date_range("1990-10-01", "2002-09-30")
    q = np.where(d.day_of_year == 40, 20.0, 1.0)
    with caplog.at_level("WARNING"):
        out = lv.station_levels(d, q, d[0], d[-1], dist=dist, user_levels={"alert": 15.0})
    assert list(out) == ["alert"]
    json.dumps({n: level.to_dict() for n, level in out.items()}, allow_nan=False)
    assert "all 12 are 20 m3/s; no distribution can be fitted to maxima that do not vary" in caplog.text


def test_glo_two_year_flow_is_its_location():
    p = {"xi": np.array(20.0), "alpha": np.array(5.0), "k": np.array(-0.2)}
    assert lv.quantile("glo", p, 0.5) == pytest.approx(20.0)


def test_fewer_than_ten_maxima_give_no_rare_levels_and_fewer_than_five_none():
    x = TRUTH["gev"].rvs(9, random_state=np.random.default_rng(0))
    assert list(lv.fit_return_levels(x, "gev")) == ["q2y", "q5y"]
    assert lv.fit_return_levels(x[:4], "gev") == {}
    assert list(lv.fit_return_levels(np.r_[x, 50.0], "gev")) == ["q2y", "q5y", "q10y", "q20y"]


def test_annual_maxima_follow_the_water_year_and_skip_gappy_years():
    d = pd.date_range("2000-10-01", "2003-09-30")
    q = np.ones(len(d))
    q[d == pd.Timestamp("2001-09-30")] = 9.0  # last day of water year 2000
    q[d == pd.Timestamp("2001-10-01")] = 7.0  # first day of water year 2001
    q[(d >= pd.Timestamp("2002-10-01")) & (d < pd.Timestamp("2002-12-01"))] = np.nan  # 2002: 61 days missing
    am = lv.annual_maxima(d, q, water_year_start=10)
    assert am.to_dict() == {2000: 9.0, 2001: 7.0}
    cal = lv.annual_maxima(d, q, water_year_start=1)  # calendar years: 2001 holds both peaks
    assert cal[2001] == 9.0


def test_record_levels_use_only_the_training_years():
    d = pd.date_range("1970-10-01", "2010-09-30")
    rng = np.random.default_rng(0)
    q = rng.gamma(2.0, 5.0, len(d))
    q[d >= pd.Timestamp("2000-10-01")] *= 100  # the later years must not move the levels
    fit = lv.record_levels(d, q, "1970-10-01", "2000-09-30", dist="gev")
    assert fit["q2y"].value < 200 and "1970-2000 (30 annual maxima)" in fit["q2y"].source
    cal = lv.record_levels(d, q, "1971-01-01", "2000-12-31", dist="pe3", water_year_start=1)
    assert "pe3, calendar years 1971-2000 (30 annual maxima)" in cal["q2y"].source


def test_user_and_station_levels_in_flow_and_stage():
    d = pd.date_range("1990-10-01", "2000-09-30")
    q = np.random.default_rng(1).gamma(2.0, 5.0, len(d))
    meta = StationMeta("s1", warning_levels={"alert": WarningLevel(30.0, "m3/s", 0.4)})
    out = lv.station_levels(d, q, "1990-10-01", "2000-09-30", meta=meta, user_levels={"danger": 80.0})
    assert out["alert"].value == 30.0 and out["alert"].warn_probability == 0.4
    assert out["danger"].value == 80.0 and out["danger"].source == "user"
    assert {"q2y", "q5y", "q10y", "q20y"} <= set(out)
    # water levels through a power-law rating curve Q = 2 (h - 0.5)^1.5: h = 2.5 m -> 2 * 2^1.5
    curve = {"kind": "power", "segments": [{"a": 2.0, "b": 1.5, "h0": 0.5}]}
    staged = lv.station_levels(d, q, "1990-10-01", "2000-09-30", meta=StationMeta("s1", rating_curve=curve),
                               user_levels={"danger": 2.5}, levels_in="stage")
    assert staged["danger"].value == pytest.approx(2 * 2 ** 1.5) and staged["danger"].stage == 2.5
    with pytest.raises(DataError, match="no rating curve"):
        lv.station_levels(d, q, "1990-10-01", "2000-09-30", user_levels={"danger": 3.2}, levels_in="stage")
    # A level stored as a water level, set again without --levels_in stage: refused, not read as 2.5 m3/s;
    # with the flag it replaces the stored one.
    meta = StationMeta("s1", rating_curve=curve, warning_levels={"alert": WarningLevel(2.5, "m")})
    with pytest.raises(UsageError, match="stored as 2.5 m; give --levels_in stage"):
        lv.station_levels(d, q, "1990-10-01", "2000-09-30", meta=meta, user_levels={"alert": 2.5})
    again = lv.station_levels(d, q, "1990-10-01", "2000-09-30", meta=meta, user_levels={"alert": 2.6}, levels_in="stage")
    assert again["alert"].stage == 2.6 and again["alert"].source == "user (water level)"


def test_levels_in_stage_without_levels_is_refused_unless_the_station_holds_water_levels():
    """``--levels_in stage`` is only the unit of ``--warning_levels``: alone, the forecast would warn on flows
    only without a word. It is refused in one line naming both flags, unless the station file holds water levels
    (which are then warned on)."""
    d = pd.date_range("1990-10-01", "2000-09-30")
    q = np.random.default_rng(1).gamma(2.0, 5.0, len(d))
    curve = {"kind": "power", "segments": [{"a": 2.0, "b": 1.5, "h0": 0.5}]}
    flows = StationMeta("s1", rating_curve=curve, warning_levels={"alert": WarningLevel(30.0, "m3/s")})
    for meta in (None, StationMeta("s1", rating_curve=curve), flows):
        with pytest.raises(UsageError, match=r"^--levels_in stage is the unit of --warning_levels, and none is "
                                             r"given .*leave --levels_in out$"):
            lv.station_levels(d, q, "1990-10-01", "2000-09-30", meta=meta, levels_in="stage", n_boot=10)
    stored = StationMeta("s1", rating_curve=curve, warning_levels={"alert": WarningLevel(2.5, "m")})
    out = lv.station_levels(d, q, "1990-10-01", "2000-09-30", meta=stored, levels_in="stage", n_boot=10)
    assert out["alert"].stage == 2.5


@pytest.mark.parametrize("text", ["alert", "alert=x", "alert=-1", "9a=3", "alert=1,alert=2", ""])
def test_bad_level_text_is_one_line_error(text):
    with pytest.raises(UsageError) as e:
        lv.parse_levels(text)
    assert "\n" not in str(e.value)


def test_level_names_differing_only_in_case_are_refused_naming_both():
    """alert and Alert would be two levels, each warned on: refused in one line naming both, wherever levels are
    parsed (a forecast's --warning_levels, an import's, a spec's mapping, the service's body), and a forecast level
    named like a stored one but for its case is refused too, rather than laid beside it."""
    from sca2lstm.data.station_options import parse_levels as import_levels

    with pytest.raises(UsageError, match=r"^--warning_levels: 'alert' and 'Alert' differ only in case; give the "
                                         r"name once$"):
        lv.parse_levels("alert=45,danger=80,Alert=50")
    for given in ("alert=45,ALERT=50", {"alert": 45.0, "ALERT": 50.0}):
        with pytest.raises(UsageError, match=r"'alert' and 'ALERT' differ only in case"):
            import_levels(given, "m3/s")
    with pytest.raises(UsageError, match=r"^--warn_probability: 'danger' and 'Danger' differ only in case"):
        lv.parse_probabilities("danger=0.3,Danger=0.4")
    assert list(lv.parse_levels("alert=45,alert2=50")) == ["alert", "alert2"]  # other names still pass
    d = pd.date_range("1990-10-01", "2000-09-30")
    q = np.random.default_rng(1).gamma(2.0, 5.0, len(d))
    meta = StationMeta("s1", warning_levels={"alert": WarningLevel(30.0, "m3/s")})
    with pytest.raises(UsageError, match=r"^--warning_levels Alert=40: the station's level is named 'alert', which "
                                         r"differs only in case; give alert=40 to set it"):
        lv.station_levels(d, q, "1990-10-01", "2000-09-30", meta=meta, user_levels={"Alert": 40.0}, n_boot=10)
    out = lv.station_levels(d, q, "1990-10-01", "2000-09-30", meta=meta, user_levels={"alert": 40.0}, n_boot=10)
    assert [n for n in out if n.casefold() == "alert"] == ["alert"] and out["alert"].value == 40.0


def test_a_level_of_ones_own_cannot_take_a_return_period_levels_name():
    """q2y .. q20y are fitted on the record: a level given so (at import, at a forecast) is refused in one line,
    not laid over the fitted one with the warning probability chosen for it; names merely like them are levels."""
    from sca2lstm.data.station_options import parse_levels as import_levels

    for parse in (lv.parse_levels, lambda t: import_levels(t, "m3/s"), lambda t: import_levels(t, "m")):
        with pytest.raises(UsageError, match=r"level name 'q2y' is the name of a return-period level fitted on the "
                                             r"record \(q2y, q5y, q10y, q20y\), which cannot be set") as e:
            parse("alert=40,q2y=50")
        assert "\n" not in str(e.value)
        with pytest.raises(UsageError, match="'q100y' is the name of a return-period level"):
            parse("q100y=50")
        # in any case: beside the fitted q2y it would be a second level differing only in case
        with pytest.raises(UsageError, match="'Q2Y' is the name of a return-period level"):
            parse("Q2Y=50")
    assert lv.parse_levels("q2=1,q2y_local=3,q2yr=4") == {"q2": 1.0, "q2y_local": 3.0, "q2yr": 4.0}


def test_parse_levels_and_probabilities():
    assert lv.parse_levels("alert=45.0, danger=80") == {"alert": 45.0, "danger": 80.0}
    assert lv.parse_probabilities("danger=0.3") == {"danger": 0.3}
    for bad in ("danger=1.0", "danger=0", "danger", "danger=0.3,danger=0.4"):
        with pytest.raises(UsageError):
            lv.parse_probabilities(bad)


def test_levels_read_alike_at_import_and_at_forecast():
    """One syntax for a station's levels wherever they are given, with a Chinese input method's full-width
    punctuation (，＝) read as , and =, and a name given twice refused in both places."""
    from sca2lstm.data.station_options import parse_levels as import_levels

    typed = "alert＝45.0，danger=80"
    assert lv.parse_levels(typed) == {"alert": 45.0, "danger": 80.0}
    assert {k: v.value for k, v in import_levels(typed, "m3/s").items()} == {"alert": 45.0, "danger": 80.0}
    assert lv.parse_probabilities("danger＝0.3") == {"danger": 0.3}
    for parse in (lv.parse_levels, lambda t: import_levels(t, "m3/s")):
        with pytest.raises(UsageError, match="'alert' given twice"):
            parse("alert=1,alert=2")


def test_a_level_written_as_yes_or_true_in_a_spec_or_json_is_not_read_as_one(tmp_path):
    """YAML reads a spec's `alert: yes` as True, which float() takes for 1: it is refused as no number, in one
    line, in either unit; a whole number stays a level."""
    from sca2lstm.data.station_options import parse_levels as import_levels

    for value in (True, False):
        for parse in (lambda d: import_levels(d, "m"), lambda d: import_levels(d, "m3/s")):
            with pytest.raises(UsageError, match=rf"level alert={value} is not a number") as e:
                parse({"alert": value, "danger": 1.8})
            assert "\n" not in str(e.value)
    assert {k: v.value for k, v in import_levels({"alert": 1, "danger": 1.8}, "m").items()} == {"alert": 1.0,
                                                                                                  "danger": 1.8}


def test_levels_written_as_a_list_in_a_spec_are_named_as_a_list():
    """A spec's `warning_levels: [45, 80]` gives values without names: one line saying it is a list and showing
    the NAME=VALUE form, not a complaint about an entry '[45'."""
    from sca2lstm.data.station_options import parse_levels as import_levels

    with pytest.raises(UsageError, match=r"--warning_levels \[45, 80\] is a list, not NAME=VALUE pairs; "
                                         r"e\.g\. alert=45\.0,danger=80\.0") as e:
        import_levels([45, 80], "m3/s")
    assert "\n" not in str(e.value)


def test_a_water_level_no_record_could_warn_on_is_refused_with_its_flow_through_the_curve():
    """A water level is compared as its flow: the refusal gives that flow (a stage of 0.6 m against a lowest
    flow of 0.13 m3/s reads as no comparison) and asks about the curve's datum, not for --levels_in stage,
    which was given; a flow level keeps its hint about the unit flags."""
    from sca2lstm.data.station_meta import check_level_flows

    q = np.array([0.5, 2.0, 3.0, 4.0])
    curve = {"kind": "power", "segments": [{"a": 2.0, "b": 1.5, "h0": 0.5}]}   # 0.6 m -> 2 * 0.1^1.5 = 0.0632
    with pytest.raises(DataError, match=r"alert=0\.6 m lies below every daily flow of the record \(lowest 0\.5 "
                                        r"m3/s\) through the rating curve \(0\.6 m = 0\.0632 m3/s\): it would warn "
                                        r"every day; is the level in m, on the curve's datum\?$"):
        check_level_flows(q, {"alert": WarningLevel(0.6, "m")}, curve)
    with pytest.raises(DataError, match=r"alert=10 m is 15 times the record's highest daily flow \(4 m3/s\) "
                                        r"through the rating curve \(10 m = 58\.6 m3/s\): it would never warn; "
                                        r"is the level in m, on the curve's datum\?$"):
        check_level_flows(q, {"alert": WarningLevel(10.0, "m")}, curve)      # 2 * 9.5^1.5 = 58.6
    with pytest.raises(DataError, match=r"alert=0\.1 m3/s lies below every daily flow of the record \(lowest 0\.5 "
                                        r"m3/s\): it would warn every day; levels are in m3/s, or water levels in m "
                                        r"with --levels_in stage$"):
        check_level_flows(q, {"alert": WarningLevel(0.1, "m3/s")}, curve)


def test_a_water_level_the_curve_cannot_convert_at_a_forecast_names_the_level():
    """At a forecast, as at the import, a water level below the rating curve or deeper than any river is one
    line naming the level, not only the stage."""
    d = pd.date_range("1990-10-01", "2000-09-30")
    q = np.random.default_rng(1).gamma(2.0, 5.0, len(d))
    meta = StationMeta("s1", rating_curve={"kind": "power", "segments": [{"a": 2.0, "b": 1.5, "h0": 0.5}]})
    for stage, said in ((0.1, "a water level of 0.1 m lies below the rating curve"),
                        (40.0, "a water level of 40 m lies 39.5 m above the rating curve's zero-flow stage")):
        with pytest.raises(UsageError, match=rf"^level minor={stage:g} m: {said}") as e:
            lv.station_levels(d, q, "1990-10-01", "2000-09-30", meta=meta, user_levels={"minor": stage},
                              levels_in="stage", n_boot=10)
        assert "\n" not in str(e.value)
    # the forecast's own check of the levels against the record (its first look at them) names them as well
    from sca2lstm.data.station_meta import check_level_flows

    with pytest.raises(UsageError, match=r"^--warning_levels minor=0\.1 m: a water level of 0\.1 m lies below the "
                                         r"rating curve"):
        check_level_flows(q, {"minor": WarningLevel(0.1, "m")}, meta.rating_curve)
