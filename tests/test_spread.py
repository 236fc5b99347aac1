"""Spread calibration: rescaled quantiles hold their levels on the forecasts they were fitted on."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sca2lstm.evaluation.spread import SpreadCalibration, fit_spread

LEVELS = [0.05, 0.25, 0.5, 0.75, 0.95]


def _forecasts(n, leads, sigma_true, sigma_head, seed=0, mean=10.0):
    """Medians m, head quantiles m + sigma_head z_tau, and observations m + sigma_true N(0, 1) per lead."""
    rng = np.random.default_rng(seed)
    m = rng.uniform(0.5 * mean, 1.5 * mean, size=(n, 1)) * np.ones((1, leads))
    z = stats.norm.ppf(LEVELS)
    qs = m[..., None] + np.asarray(sigma_head)[None, :, None] * z[None, None, :]
    obs = m + np.asarray(sigma_true)[None, :] * rng.standard_normal((n, leads))
    return m, qs, obs, np.full(n, mean)


def test_too_narrow_and_too_wide_quantiles_are_rescaled_to_their_levels():
    n, leads = 20000, 3
    sigma_true = np.array([1.0, 2.0, 4.0])
    sigma_head = np.array([2.0, 2.0, 2.0])      # too wide at lead 1, right at lead 2, too narrow at lead 3
    m, qs, obs, scale = _forecasts(n, leads, sigma_true, sigma_head)
    cal = fit_spread(m, qs, LEVELS, obs, scale, edges=(), widen=1.0)
    # The factor is the ratio of the true to the head's spread (sampling error of a quantile of n draws:
    # a few 1/sqrt(n); 0.05 is several times that).
    np.testing.assert_allclose(cal.factors[:, 0, [0, 1, 3, 4]], (sigma_true / sigma_head)[:, None] * np.ones(4),
                               atol=0.05)
    assert np.all(cal.factors[:, 0, 2] == 1.0)                     # the median is not moved
    # On fresh forecasts of the same kind, the rescaled quantiles hold their levels.
    m2, qs2, obs2, scale2 = _forecasts(n, leads, sigma_true, sigma_head, seed=1)
    q = cal.apply(m2, qs2, LEVELS, scale2)
    for j, tau in enumerate(LEVELS):
        below = (obs2 <= q[..., j]).mean(axis=0)
        np.testing.assert_allclose(below, tau, atol=4 * np.sqrt(tau * (1 - tau) / n))
    assert np.array_equal(q[..., 2], m2)


def test_factors_follow_the_state_of_the_forecast():
    """Forecasts in a wet state (median above twice the mean flow) err more: their bin gets wider factors."""
    n = 20000
    rng = np.random.default_rng(3)
    scale = np.full(n, 10.0)
    m = np.where(rng.random(n) < 0.5, 5.0, 40.0)[:, None]
    z = stats.norm.ppf(LEVELS)
    qs = m[..., None] + 1.0 * z[None, None, :]
    sd = np.where(m > 20, 3.0, 1.0)
    obs = m + sd * rng.standard_normal((n, 1))
    cal = fit_spread(m, qs, LEVELS, obs, scale, edges=(2.0,), widen=1.0)
    assert abs(cal.factors[0, 0, 4] - 1.0) < 0.1 and abs(cal.factors[0, 1, 4] - 3.0) < 0.2
    assert cal.days.tolist() == [[int((m < 20).sum()), int((m > 20).sum())]]


def test_out_of_sample_margin_fits_each_level_further_out():
    m, qs, obs, scale = _forecasts(20000, 1, [1.0], [1.0], seed=5)
    cal = fit_spread(m, qs, LEVELS, obs, scale, edges=(), widen=0.92 / 0.90)
    q = cal.apply(m, qs, LEVELS, scale)
    assert abs((obs < q[..., 0]).mean() - 0.04) < 0.006 and abs((obs > q[..., 4]).mean() - 0.04) < 0.006


def test_sparse_state_bins_fall_back_to_the_lead_over_all_states_and_dict_round_trip():
    m, qs, obs, scale = _forecasts(1000, 2, [2.0, 2.0], [1.0, 1.0])
    cal = fit_spread(m, qs, LEVELS, obs, scale, edges=(1.4,), min_days=1000)   # the bins hold ~90 % and ~10 %
    assert np.allclose(cal.factors[:, 0], cal.factors[:, 1])
    back = SpreadCalibration.from_dict(cal.to_dict())
    np.testing.assert_allclose(back.apply(m, qs, LEVELS, scale), cal.apply(m, qs, LEVELS, scale), atol=1e-3)


def test_unit_factors_leave_forecasts_unchanged_and_later_leads_use_the_last_lead():
    m, qs, _, scale = _forecasts(50, 4, [1.0] * 4, [1.0] * 4)
    cal = SpreadCalibration(LEVELS, [1.0], np.ones((2, 2, 5)), np.zeros((2, 2), dtype=int))
    np.testing.assert_array_equal(cal.apply(m, qs, LEVELS, scale), qs)
    cal.factors[1] = 2.0
    q = cal.apply(m, qs, LEVELS, scale)
    np.testing.assert_allclose(q[:, 3, 0], m[:, 3] + 2.0 * (qs[:, 3, 0] - m[:, 3]))


@pytest.mark.slow
def test_calibrate_cli_writes_every_setting_and_refuses_bad_input(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """`sca2lstm calibrate` fits a spread per weather setting beside a copy of a checkpoint; a bad value is
    refused in one line and leaves the earlier file as it was."""
    import json
    import shutil

    from sca2lstm.cli.main import main
    from sca2lstm.evaluation.calibration import calibration_path
    from sca2lstm.evaluation.spread import WEATHER_SETTINGS

    ckpt = tmp_path / "m.pth"
    shutil.copy(pretrained_ckpt, ckpt)
    assert main(["calibrate", "--model", str(ckpt), "--data_dir", str(tiny_data_dir), "--quiet"]) == 0
    doc = json.loads(calibration_path(ckpt).read_text())
    assert set(doc["spread"]) == set(WEATHER_SETTINGS)
    assert "emulated" in doc["spread_weather"]["forecast"] and "emulated" in doc["spread_weather"]["ensemble"]
    f = np.asarray(doc["spread"]["none"]["factors"])              # [leads, bins, Q]: the tiny model has 7 leads
    assert f.shape[0] == 7 and np.all(f[..., doc["spread"]["none"]["levels"].index(0.5)] == 1.0)
    before = calibration_path(ckpt).read_bytes()
    capsys.readouterr()
    assert main(["calibrate", "--model", str(ckpt), "--data_dir", str(tiny_data_dir), "--max_basins", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--max_basins" in err[0] and "'0'" in err[0] and "integer >= 1" in err[0]
    assert main(["calibrate", "--model", str(ckpt), "--data_dir", str(tiny_data_dir), "--max_basins", "abc"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'abc'" in err[0] and "integer >= 1" in err[0]
    assert main(["calibrate", "--model", str(ckpt), "--data_dir", str(tiny_data_dir), "--basins", "99999"]) == 1
    assert calibration_path(ckpt).read_bytes() == before


@pytest.mark.slow
def test_calibrate_with_some_settings_keeps_the_spreads_of_the_others(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """`--settings none` refits the no-weather spread: the forecast spread fitted before stays, rather than
    vanish from the file and leave forecasts with a weather forecast on the model's uncalibrated quantiles."""
    import json
    import shutil

    from sca2lstm.cli.main import main
    from sca2lstm.evaluation.calibration import calibration_path

    ckpt = tmp_path / "m.pth"
    shutil.copy(pretrained_ckpt, ckpt)
    argv = ["calibrate", "--model", str(ckpt), "--data_dir", str(tiny_data_dir)]
    assert main([*argv, "--settings", "none", "forecast", "--quiet"]) == 0
    before = json.loads(calibration_path(ckpt).read_text())
    capsys.readouterr()
    assert main([*argv, "--settings", "none", "--seed", "1", "--quiet"]) == 0
    assert "kept the earlier calibration's forecast (not in --settings)" in capsys.readouterr().out
    after = json.loads(calibration_path(ckpt).read_text())
    assert set(after["spread"]) == {"none", "forecast"}
    assert after["spread"]["forecast"]["factors"] == before["spread"]["forecast"]["factors"]
    assert after["weather_blend"]["forecast"] == before["weather_blend"]["forecast"]
    assert after["spread_weather"]["forecast"] == before["spread_weather"]["forecast"]


@pytest.mark.slow
def test_calibrate_names_per_setting_the_factors_at_a_bound_and_the_spreads_taken_from_the_pretrained_model(
        pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """The summary gave the largest q05 / q95 factor per lead only: a factor pinned at the floor of FACTOR_RANGE
    (a quantile squeezed onto the median) did not show, nor which settings' spreads a fine-tuned model took from
    its pretrained model. Each setting now says how many factors sit at each bound, and where its spread came
    from."""
    import json
    import re
    import shutil

    from sca2lstm.cli import finetune as finetune_cli
    from sca2lstm.cli.main import main
    from sca2lstm.evaluation.calibration import calibration_path
    from sca2lstm.evaluation.spread import FACTOR_RANGE

    def summary(model):
        """setting -> (at the floor, at the ceiling, of how many, origin) as the command printed them."""
        out = capsys.readouterr().out
        found = re.findall(r"^  (\w+) +largest q05 / q95 spread factor per lead: .*\n {12}(\d+) of (\d+) factors at "
                           rf"the floor {FACTOR_RANGE[0]:g} of the allowed range, (\d+) at its ceiling "
                           rf"{FACTOR_RANGE[1]:g}; (.*)$", out, flags=re.M)
        assert found, out
        doc = json.loads(calibration_path(model).read_text())
        assert sorted(w for w, *_ in found) == sorted(doc["spread"]), out
        return {w: (int(lo), int(hi), int(n), origin) for w, lo, n, hi, origin in found}, doc

    def at_bounds(sp):
        f = np.asarray(sp["factors"])[..., [j for j, t in enumerate(sp["levels"]) if t != 0.5]]
        return int(np.sum(f == FACTOR_RANGE[0])), int(np.sum(f == FACTOR_RANGE[1])), f.size

    pre = shutil.copy(pretrained_ckpt, tmp_path / "pre.pth")
    capsys.readouterr()
    assert main(["calibrate", "--model", str(pre), "--data_dir", str(tiny_data_dir), "--quiet",
                 "--settings", "none", "forecast"]) == 0
    said, doc = summary(pre)
    for w, sp in doc["spread"].items():
        assert said[w] == (*at_bounds(sp), "fitted in this run"), (w, said[w])
    assert finetune_cli.main(["--target_basin", "10002", "--pretrained_model", str(pre), "--epochs", "1",
                              "--data_dir", str(tiny_data_dir), "--output_dir", str(tmp_path / "ft"), "--quiet"]) == 0
    tuned = next((tmp_path / "ft").glob("basin_10002/*/best_model_basin_10002.pth"))
    capsys.readouterr()
    assert main(["calibrate", "--model", str(tuned), "--data_dir", str(tiny_data_dir), "--quiet"]) == 0
    said, doc = summary(tuned)
    for w, sp in doc["spread"].items():
        origin = ("taken from the pretrained model, not fitted in this run" if sp.get("from") == "the pretrained model"
                  else "fitted in this run")
        assert said[w] == (*at_bounds(sp), origin), (w, said[w])
    # one basin's validation year is under MIN_OWN_SPREAD_DAYS forecasts per lead: the pretrained model's spread
    # where it has one, the basin's own for the settings it has none of
    assert {w for w, sp in doc["spread"].items() if sp.get("from")} == {"none", "forecast"}, doc["spread"].keys()


def test_calibrate_counts_a_basin_named_twice_once(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """`--basins 10002 10002` is one basin: announced and reported as "1 basin", not "up to 2" then "1 basins"."""
    import json
    import shutil

    from sca2lstm.cli.main import main
    from sca2lstm.evaluation.calibration import calibration_path

    ckpt = tmp_path / "m.pth"
    shutil.copy(pretrained_ckpt, ckpt)
    assert main(["calibrate", "--model", str(ckpt), "--data_dir", str(tiny_data_dir), "--basins", "10002", "10002",
                 "--settings", "none"]) == 0
    out = capsys.readouterr().out
    assert "on the validation days of up to 1 basin (" in out and "Calibrated on 1 basin," in out, out
    assert json.loads(calibration_path(ckpt).read_text())["basins"] == 1


def test_calibrate_never_fits_on_days_the_model_trained_on(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """A data folder whose basins end before the configured validation period: their own-record validation part
    lies in the years the model trained on. Calibrating there would be in-sample, labelled "validation days":
    refused in one line, the earlier calibration left as it was."""
    import shutil

    import pandas as pd

    from sca2lstm.cli.main import main
    from sca2lstm.evaluation.calibration import calibration_path

    ckpt = tmp_path / "m.pth"
    shutil.copy(pretrained_ckpt, ckpt)
    assert main(["calibrate", "--model", str(ckpt), "--data_dir", str(tiny_data_dir), "--quiet",
                 "--settings", "none"]) == 0
    before = calibration_path(ckpt).read_bytes()
    short = tmp_path / "short"
    shutil.copytree(tiny_data_dir, short)
    for f in (short / "timeseries").glob("*.csv"):   # the tiny model trained on 1971-1974, validated on 1975
        df = pd.read_csv(f)
        df[df["date"] < "1975-01-01"].to_csv(f, index=False)
    capsys.readouterr()
    assert main(["calibrate", "--model", str(ckpt), "--data_dir", str(short), "--settings", "none"]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "nothing written" in err[0] and "did not train on" in err[0], err
    assert "days the model trained on" in captured.out               # each basin skipped says why
    assert calibration_path(ckpt).read_bytes() == before


def test_calibrate_cli_refits_a_fine_tuned_model_on_its_own_basin_as_fine_tuning_did(pretrained_ckpt, tiny_data_dir,
                                                                                    tmp_path, capsys):
    """A fine-tuned model's calibration rests on its own basin's validation days (completed from the pretrained
    model's): `sca2lstm calibrate` refits it the same way, not on every basin the pretrained model knew."""
    import json

    from sca2lstm.cli import finetune as finetune_cli
    from sca2lstm.cli.main import main
    from sca2lstm.evaluation.calibration import calibration_path

    import shutil

    pre = shutil.copy(pretrained_ckpt, tmp_path / "pre.pth")
    assert main(["calibrate", "--model", str(pre), "--data_dir", str(tiny_data_dir), "--quiet"]) == 0
    assert finetune_cli.main(["--target_basin", "10002", "--pretrained_model", str(pre), "--epochs", "1",
                              "--data_dir", str(tiny_data_dir), "--output_dir", str(tmp_path / "ft"), "--quiet"]) == 0
    tuned = next((tmp_path / "ft").glob("basin_10002/*/best_model_basin_10002.pth"))
    at_fine_tuning = json.loads(calibration_path(tuned).read_text())
    capsys.readouterr()
    glob = str(tmp_path / "ft" / "basin_10002" / "*" / "best_model_basin_10002.pth")   # quoted: the tool expands it
    assert main(["calibrate", "--model", glob, "--data_dir", str(tiny_data_dir)]) == 0
    assert "on the validation days of basin 10002, the one it was fine-tuned on" in capsys.readouterr().out
    again = json.loads(calibration_path(tuned).read_text())
    assert again["basins"] == at_fine_tuning["basins"] == 1 and list(again["issue_time_blend"]) == ["10002"]
    for key in ("issue_time_blend", "warn_probability", "spread", "validation_days"):
        assert again[key] == at_fine_tuning[key], key
    # other basins would replace the station's calibration with theirs: refused, the file left as it was
    before = calibration_path(tuned).read_bytes()
    assert main(["calibrate", "--model", glob, "--data_dir", str(tiny_data_dir), "--basins", "32006"]) == 2
    assert "is fine-tuned for basin 10002 and is calibrated on it alone" in capsys.readouterr().err
    assert calibration_path(tuned).read_bytes() == before


@pytest.mark.slow
def test_calibrate_cli_gives_a_fine_tuned_model_without_unseen_validation_days_the_pretrained_calibration(
        pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """A --test_start puts the whole validation part of a fine-tune in the pretraining years: `sca2lstm calibrate`
    writes the pretrained model's calibration, as fine-tuning did, over an earlier file fitted on those days
    (it refused, and the in-sample file stayed)."""
    import json
    import shutil

    from sca2lstm.cli.main import main
    from sca2lstm.evaluation.calibration import calibration_path, read_calibration, write_calibration
    from sca2lstm.training.finetune import finetune

    pre = shutil.copy(pretrained_ckpt, tmp_path / "pre.pth")
    assert main(["calibrate", "--model", str(pre), "--data_dir", str(tiny_data_dir), "--quiet"]) == 0
    r = finetune(pre, "32006", {"epochs": 0}, data_dir=tiny_data_dir, out_root=tmp_path / "ft", progress=False,
                 test_start="1975-01-01")
    tuned, src = r["checkpoint"], read_calibration(pre)
    at_fine_tuning = read_calibration(tuned)
    assert at_fine_tuning["validation_days"] is None and "32006" not in at_fine_tuning["issue_time_blend"]
    # a file fitted on the pretraining years, as fine-tuning wrote it before they were left out
    write_calibration(tuned, {**at_fine_tuning, "validation_days": "1974-02-24..1974-12-31",
                              "issue_time_blend": {"32006": [0.9] * len(src["weather_blend"]["none"])}})
    capsys.readouterr()
    assert main(["calibrate", "--model", str(tuned), "--data_dir", str(tiny_data_dir)]) == 0
    out = capsys.readouterr().out
    assert "Basin 32006 has no validation days outside the days the model trained on: its calibration is the " \
           "pretrained model's" in out, out
    again = json.loads(calibration_path(tuned).read_text())
    assert again["validation_days"] is None and again["issue_time_blend"] == {}
    assert again["spread"] == at_fine_tuning["spread"] == {w: {**sp, "from": "the pretrained model"}
                                                           for w, sp in src["spread"].items()}
    assert again["warn_probability"] == at_fine_tuning["warn_probability"]


def test_calibration_of_another_checkpoint_is_not_used(pretrained_ckpt, tmp_path, caplog):
    """A calibration is tied to the bytes of the checkpoint it was fitted for: once the model beside it is
    replaced (a run stopped after writing the model, before its calibration), it is ignored with a warning."""
    import logging
    import shutil

    import torch

    from sca2lstm.evaluation.calibration import calibration_path, read_calibration, write_calibration

    ckpt = tmp_path / "m.pth"
    shutil.copy(pretrained_ckpt, ckpt)
    write_calibration(ckpt, {"weather_blend": {"forecast": [1.0]}})
    assert read_calibration(ckpt)["weather_blend"] == {"forecast": [1.0]}
    legacy = tmp_path / "old.pth"                                 # written before the identity key: still used
    shutil.copy(pretrained_ckpt, legacy)
    calibration_path(legacy).write_text('{"weather_blend": {"forecast": [0.5]}}')
    assert read_calibration(legacy)["weather_blend"] == {"forecast": [0.5]}
    other = torch.load(pretrained_ckpt, weights_only=True)
    other["epoch"] = int(other.get("epoch") or 0) + 1             # another model at the same path
    torch.save(other, ckpt)
    with caplog.at_level(logging.WARNING):
        assert read_calibration(ckpt) == {}
    assert "fitted for another checkpoint" in caplog.text and "sca2lstm calibrate --model" in caplog.text


def test_calibration_file_is_strict_json_and_reads_back_nan_where_a_figure_could_not_be_computed(pretrained_ckpt,
                                                                                                   tmp_path):
    """A blend weight or spread factor that could not be computed is ``null`` in the calibration file (jq, R and
    browsers refuse ``NaN``), and the forecasts read it back as NaN, as they read the NaN before."""
    import json
    import shutil

    from sca2lstm.evaluation.calibration import calibration_path, read_calibration, write_calibration

    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    ckpt = tmp_path / "m.pth"
    shutil.copy(pretrained_ckpt, ckpt)
    spread = SpreadCalibration([0.05, 0.5, 0.95], [1.0], np.ones((2, 2, 3)), np.full((2, 2), 300)).to_dict()
    spread["factors"][1][0][2] = float("nan")
    write_calibration(ckpt, {"issue_time_blend": {"b": [0.5, float("nan")]}, "weather_blend": {"forecast": [np.inf]},
                             "spread": {"none": spread}})
    doc = json.loads(calibration_path(ckpt).read_text(encoding="utf-8"), parse_constant=refuse)
    assert doc["issue_time_blend"]["b"] == [0.5, None] and doc["weather_blend"]["forecast"] == [None]
    back = read_calibration(ckpt)
    alpha = np.asarray(back["issue_time_blend"]["b"], dtype=np.float64)    # as issue_setup reads a stored blend
    assert alpha[0] == 0.5 and np.isnan(alpha[1])
    factors = SpreadCalibration.from_dict(back["spread"]["none"]).factors
    assert np.isnan(factors[1, 0, 2]) and np.isfinite(np.delete(factors.ravel(), 1 * 6 + 0 * 3 + 2)).all()


def test_calibrate_cli_of_a_fine_tuned_model_runs_no_setting_whose_spread_it_takes_from_the_pretrained_model(
        pretrained_ckpt, tiny_data_dir, tmp_path, monkeypatch, capsys):
    """As fine-tuning does: a weather setting with fewer validation issue dates than its own spread needs (the
    tiny one-year validation part: every setting but ``none``) takes the pretrained model's spread, so it is not
    run (its runs were computed and thrown away), and the file written is the one fine-tuning wrote."""
    import json
    import shutil

    import sca2lstm.evaluation.calibration as cal_mod
    from sca2lstm.cli.main import main
    from sca2lstm.training.finetune import finetune

    pre = shutil.copy(pretrained_ckpt, tmp_path / "pre.pth")
    assert main(["calibrate", "--model", str(pre), "--data_dir", str(tiny_data_dir), "--quiet"]) == 0
    tuned = finetune(pre, "32006", {"epochs": 0}, data_dir=tiny_data_dir, out_root=tmp_path / "ft",
                     progress=False)["checkpoint"]
    at_fine_tuning = cal_mod.read_calibration(tuned)
    ran, real = [], cal_mod._setting_runs

    def spy(ctx, v0, v1, setting, seed):
        ran.append(setting)
        return real(ctx, v0, v1, setting, seed)

    monkeypatch.setattr(cal_mod, "_setting_runs", spy)
    assert main(["calibrate", "--model", str(tuned), "--data_dir", str(tiny_data_dir), "--quiet"]) == 0
    assert ran == ["none"]
    again = cal_mod.read_calibration(tuned)
    assert json.dumps(again, indent=2) == json.dumps(at_fine_tuning, indent=2)
