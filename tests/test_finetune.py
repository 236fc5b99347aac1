"""Fine-tuning: freezing, unfreeze flags, chronological split, test-period isolation, guide snippet."""

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sca2lstm import SCA2LSTM, load_config
from sca2lstm.training.finetune import apply_freezing, chronological_split, finetune
from sca2lstm.training.pretrain import pretrain

from conftest import TINY_PERIODS, TINY_TRAINING

FT = {"epochs": 2, "batch_size": 8, "min_records": 0, "epoch_coverage": 1.0}


def _state(path):
    return torch.load(path, weights_only=True)["model_state_dict"]


@pytest.mark.slow
def test_frozen_bit_identical_trainable_changed(pretrained_ckpt, tiny_data_dir, tmp_path):
    r = finetune(pretrained_ckpt, "32006", {**FT, "learning_rate": 1e-3}, data_dir=tiny_data_dir,
                 out_root=tmp_path, progress=False)
    before, after = _state(pretrained_ckpt), _state(r["checkpoint"])
    model = r["model"]
    for group in model.FREEZABLE_GROUPS:
        names = [n for n, p in model.named_parameters() if any(p is q for q in model.group_parameters(group))]
        same = [torch.equal(before[n], after[n]) for n in names]
        if group in ("lstm2", "predict_head"):
            assert not all(same), f"{group} should have trained"
        else:
            assert all(same), f"{group} should be frozen"
    assert r["checkpoint"].name == "best_model_basin_32006.pth"
    run = r["run_dir"]
    for name in ("training_curve.png", "performance_chart.png", "history.csv", "config.json", "finetune.log",
                 "val_metrics.json", "val_metrics_before_after.csv", "report.html"):
        assert (run / name).is_file(), name
    assert run.parent.name == "basin_32006" and len(run.name) == 15  # YYYYmmdd_HHMMSS


@pytest.mark.parametrize("flag,group", [("unfreeze_embedding", "embedding"), ("unfreeze_lstm1", "lstm1"),
                                        ("unfreeze_weight_head", "weight_head")])
def test_each_unfreeze_flag_releases_exactly_its_group(flag, group):
    cfg = load_config(overrides={"finetune": {flag: True}})
    model = SCA2LSTM(cfg)
    state = apply_freezing(model, cfg)
    expected = {"embedding": False, "lstm1": False, "weight_head": False, "lstm2": True, "predict_head": True,
                group: True}
    assert state == expected
    for g, on in expected.items():
        assert all(p.requires_grad == on for p in model.group_parameters(g))


def test_default_freezing():
    cfg = load_config()
    model = SCA2LSTM(cfg)
    assert apply_freezing(model, cfg) == {"embedding": False, "lstm1": False, "weight_head": False,
                                          "lstm2": True, "predict_head": True}


def test_split_is_chronological(tiny_cfg, tiny_data_dir):
    from sca2lstm.data.dataset import load_basin

    rec = load_basin(tiny_data_dir, "32006", tiny_cfg)
    sp = chronological_split(rec, tiny_cfg)
    n = sp.i1 - sp.i0
    assert sp.i_split - sp.i0 == int(np.floor(n * tiny_cfg.finetune.fine_tune_ratio))
    assert str(rec.dates[sp.i0]) == TINY_PERIODS["train_start"]
    assert str(rec.dates[sp.i1 - 1]) == TINY_PERIODS["val_end"]
    assert rec.dates[sp.i_split - 1] < rec.dates[sp.i_split]  # train part strictly before validation


@pytest.mark.slow
def test_test_period_never_used(pretrained_ckpt, tiny_data_dir, tmp_path):
    """Garbage in the test period changes nothing in the fine-tuned model."""
    changed = tmp_path / "data"
    shutil.copytree(tiny_data_dir, changed)
    f = next((changed / "timeseries").glob("*_32006_*.csv"))
    df = pd.read_csv(f)
    test = df["date"] >= TINY_PERIODS["test_start"]
    df.loc[test, "discharge_vol"] = df.loc[test, "discharge_vol"] * 7 + 3
    df.loc[test, "precipitation"] = 99.0
    df.to_csv(f, index=False)
    a = finetune(pretrained_ckpt, "32006", FT, data_dir=tiny_data_dir, out_root=tmp_path / "a", progress=False)
    b = finetune(pretrained_ckpt, "32006", FT, data_dir=changed, out_root=tmp_path / "b", progress=False)
    sa, sb = _state(a["checkpoint"]), _state(b["checkpoint"])
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.slow
def test_never_worse_than_pretrained_on_validation(pretrained_ckpt, tiny_data_dir, tmp_path):
    r = finetune(pretrained_ckpt, "10002", FT, data_dir=tiny_data_dir, out_root=tmp_path, progress=False)
    assert r["after"].loss <= r["before"].loss + 1e-12
    # One year of validation days is too few for the basin's own spread: the pretrained model's, over many
    # basins, is kept for every weather setting.
    from sca2lstm.evaluation.calibration import read_calibration

    own, src = read_calibration(r["checkpoint"]), read_calibration(pretrained_ckpt)
    assert set(own["spread"]) == set(src["spread"])
    for w, sp in own["spread"].items():
        assert sp["from"] == "the pretrained model" and sp["factors"] == src["spread"][w]["factors"]


@pytest.mark.slow
def test_the_blend_line_names_the_model_the_run_kept(pretrained_ckpt, tiny_data_dir, tmp_path, caplog):
    """No epoch: the pretrained weights are kept, and the line on their blend with persistence says so; it
    spoke of 'the fine-tuned model' whichever model the run kept."""
    with caplog.at_level(logging.INFO, logger="sca2lstm"):
        r = finetune(pretrained_ckpt, "32006", {**FT, "epochs": 0}, data_dir=tiny_data_dir, out_root=tmp_path,
                     progress=False)
    assert r["kept"] == "pretrained"
    lines = [m for m in (rec.getMessage() for rec in caplog.records)
             if m.startswith("basin 32006: ") and ("persistence blend alpha=" in m or "alone is worse" in m)]
    assert len(lines) == 1 and "the pretrained model" in lines[0] and "fine-tuned" not in lines[0], lines
    # its calibration is fitted on that one basin, and the line says so (it said "up to 1 basins")
    assert any("on the validation days of basin 32006;" in rec.getMessage() for rec in caplog.records)


@pytest.mark.slow
def test_the_performance_chart_names_the_nse_the_run_reports(pretrained_ckpt, tiny_data_dir, tmp_path, monkeypatch):
    """The before/after chart's legends give the validation NSE of val_metrics.json (and of the log line and
    the csv); they scored the drawn series floored at 0 m3/s on other days, another number for the same models. Its
    title gives persistence's NSE on those days."""
    import json

    from sca2lstm.evaluation import plots

    legends, titles, real_save = {}, {}, plots._save

    def save(fig, path):
        legends[Path(path).name] = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        titles[Path(path).name] = fig.get_suptitle()
        return real_save(fig, path)

    # gaps in the validation year: the days after them have no persistence, and are not scored beside it
    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    f = next((data / "timeseries").glob("*_32006_*.csv"))
    df = pd.read_csv(f)
    gaps = df.index[df["date"].between(TINY_PERIODS["val_start"], TINY_PERIODS["val_end"])][::4]
    df.loc[gaps, "discharge_vol"] = np.nan
    df.to_csv(f, index=False)
    monkeypatch.setattr(plots, "_save", save)
    r = finetune(pretrained_ckpt, "32006", FT, data_dir=data, out_root=tmp_path / "ft", progress=False)
    vm = json.loads((r["run_dir"] / "val_metrics.json").read_text())
    expected = [f"before (NSE {vm['before']['model']['nse']:.3f})", f"after (NSE {vm['after']['model']['nse']:.3f})"]
    assert legends["performance_chart.png"][1:3] == expected
    # and persistence's NSE on the same days, the score a fine-tuned model must beat
    assert titles["performance_chart.png"].endswith(f"persistence NSE {vm['after']['persistence']['nse']:.3f}")
    assert (r["run_dir"] / "performance_chart.png").stat().st_size > 0


@pytest.mark.slow
def test_too_little_data_warns_and_no_data_errors(pretrained_ckpt, tiny_data_dir, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="sca2lstm"):
        r = finetune(pretrained_ckpt, "32006", {**FT, "epochs": 1, "min_records": 5000}, data_dir=tiny_data_dir,
                     out_root=tmp_path / "w", progress=False)
    # the guide's 5000 are counted on the training part only, and the line says so: its observed days, by name
    split = json.loads((r["run_dir"] / "config.json").read_text())["split"]
    ts = pd.read_csv(next((tiny_data_dir / "timeseries").glob("*_32006_*.csv")), parse_dates=["date"])
    q = ts.set_index("date")["discharge_vol"]
    n_train = int(q[split["train"][0]:split["train"][1]].notna().sum())
    n_val = int(q[split["validation"][0]:split["validation"][1]].notna().sum())
    few = [m.getMessage() for m in caplog.records if "are recommended" in m.getMessage()]
    assert few == [f"basin 32006: only {n_train} valid training records (observed days of the training part "
                   f"{split['train'][0]}..{split['train'][1]}; the validation part's {n_val} are not counted); "
                   f"at least 5000 are recommended (finetune.min_records)"]

    empty = tmp_path / "empty"
    shutil.copytree(tiny_data_dir, empty)
    f = next((empty / "timeseries").glob("*_10003_*.csv"))
    df = pd.read_csv(f)
    df.loc[df["date"] < TINY_PERIODS["val_end"], "discharge_vol"] = np.nan
    df.to_csv(f, index=False)
    from sca2lstm.errors import DataError
    # Its record no longer covers the configured periods: the station rule names its minimum.
    with pytest.raises(DataError, match="687 days of observed discharge .* the minimum is 730 days"):
        finetune(pretrained_ckpt, "10003", FT, data_dir=empty, out_root=tmp_path / "e", progress=False)
    assert not (tmp_path / "e").exists() or not any((tmp_path / "e").rglob("*.pth"))


def test_the_fine_tune_says_how_many_days_of_each_part_lack_discharge_and_are_left_out(pretrained_ckpt,
                                                                                      tiny_data_dir, tmp_path, caplog):
    """A patchy gauge: the line that starts the fine-tune counts the days with observed discharge out of all the days
    of its training and validation parts, and says the others are left out, whatever the guide's 5000 records."""
    gappy = tmp_path / "gappy"
    shutil.copytree(tiny_data_dir, gappy)
    f = next((gappy / "timeseries").glob("*_32006_*.csv"))
    df = pd.read_csv(f)
    df.loc[np.random.default_rng(5).random(len(df)) < 0.3, "discharge_vol"] = np.nan
    df.to_csv(f, index=False)
    with caplog.at_level(logging.INFO, logger="sca2lstm"):
        r = finetune(pretrained_ckpt, "32006", {**FT, "epochs": 0}, data_dir=gappy, out_root=tmp_path / "w",
                     progress=False)
    split = json.loads((r["run_dir"] / "config.json").read_text())["split"]
    q = pd.read_csv(f, parse_dates=["date"]).set_index("date")["discharge_vol"]
    counts = []
    for part in ("train", "validation"):
        days = q[split[part][0]:split[part][1]]
        counts.append((int(days.notna().sum()), len(days)))
        assert 0 < counts[-1][0] < 0.8 * counts[-1][1]
    (line,) = [m.getMessage() for m in caplog.records if m.getMessage().startswith("Fine-tuning basin 32006")]
    assert (f"train {split['train'][0]}..{split['train'][1]} ({counts[0][0]} of {counts[0][1]} days with observed "
            f"discharge), validate {split['validation'][0]}..{split['validation'][1]} ({counts[1][0]} of "
            f"{counts[1][1]}); the days without it are left out of the loss and the scores") in line


@pytest.mark.slow
def test_keep_or_discard_compares_only_days_the_pretrained_model_did_not_train_on(pretrained_ckpt, tiny_data_dir,
                                                                                  tmp_path, caplog):
    """A --test_start and ratio that move a pretraining basin's validation part into the pretrained model's
    training years: the pretrained model is scored only where it did not learn the flows."""
    import json

    from sca2lstm.checkpoint import load_model
    from sca2lstm.evaluation.context import BasinContext
    from sca2lstm.evaluation.evaluate import evaluate
    from sca2lstm.training.finetune import validation_score

    trained_until = max(np.datetime64(sp["end"]) for sp in torch.load(pretrained_ckpt, weights_only=False)
                        ["trained_on"] if sp["role"] == "train" and "32006" in sp["basins"])
    with caplog.at_level(logging.INFO, logger="sca2lstm"):
        r = finetune(pretrained_ckpt, "32006", {"epochs": 0, "fine_tune_ratio": 0.5}, data_dir=tiny_data_dir,
                     out_root=tmp_path / "a", progress=False, test_start="1977-01-01")
    kept_lines = [m for m in caplog.messages if "kept the pretrained model (validation" in m]
    caplog.clear()
    val_start, val_end = json.loads((r["run_dir"] / "config.json").read_text())["split"]["validation"]
    assert np.datetime64(val_start) < trained_until  # the validation part overlaps the pretraining years
    unseen_start = str(trained_until + 1)
    dec = json.loads((r["run_dir"] / "val_metrics.json").read_text())["kept"]
    assert dec["score_days"]["spans"] == [f"{unseen_start}..{val_end}"]
    assert dec["score_days"]["left_out"] == [f"{val_start}..{trained_until}"]
    assert not dec["score_days"]["in_sample_for_pretrained"]
    # the log names those days and what their number counts (observed days; fewer are scored, persistence needs
    # the day before observed too)
    assert len(kept_lines) == 1
    assert f"on {unseen_start}..{val_end} ({dec['score_days']['observed_days']} observed days): pretrained " \
        in kept_lines[0], kept_lines
    # the recorded score is the pretrained model's on those days, not on the whole validation part
    bundle = load_model(pretrained_ckpt)
    ctx = BasinContext.resolve(bundle, tiny_data_dir, "32006", test_start="1977-01-01")
    cfg, data, rec = ctx.cfg, ctx.sequence_data(), ctx.record
    va = rec.period(val_start, val_end)
    ev = evaluate(ctx.model, data, [va], cfg.training.seq_len, cfg.training.spinup, cfg.data.lead_days, "cpu")
    unseen = rec.dates[va[0]:va[1]] > trained_until
    assert dec["pretrained"] == pytest.approx(validation_score(cfg, data, ev, "32006", unseen), abs=1e-6)
    assert dec["pretrained"] != pytest.approx(validation_score(cfg, data, ev, "32006"), abs=1e-4)
    # the blend weight the kept model forecasts with is fitted on the same days, not on those it learned
    from sca2lstm.evaluation.persistence import fit_forecasts
    blend = json.loads((r["run_dir"] / "val_metrics.json").read_text())["persistence_blend"]
    fc = ev.forecasts[0]
    on_unseen = fit_forecasts(data, [dataclasses.replace(fc, pred=np.where(unseen, fc.pred, np.nan))],
                              cfg.data.lead_days)["32006"]
    assert r["kept"] == "pretrained" and blend["n_days"] == on_unseen.n_days < len(unseen)
    assert blend["alpha"] == pytest.approx(float(on_unseen.alpha), abs=1e-6)
    assert float(torch.load(r["checkpoint"], weights_only=False)["persistence_blend"]["32006"]) == \
        pytest.approx(blend["alpha"], abs=1e-9)

    # Too few days outside them: every validation day is compared, and a warning says it is in-sample.
    with caplog.at_level(logging.WARNING, logger="sca2lstm"):
        r = finetune(pretrained_ckpt, "32006", {"epochs": 0}, data_dir=tiny_data_dir, out_root=tmp_path / "b",
                     progress=False, test_start="1975-04-01")
    val_start, val_end = json.loads((r["run_dir"] / "config.json").read_text())["split"]["validation"]
    dec = json.loads((r["run_dir"] / "val_metrics.json").read_text())["kept"]
    assert dec["score_days"]["spans"] == [f"{val_start}..{val_end}"] and dec["score_days"]["left_out"] == []
    assert dec["score_days"]["in_sample_for_pretrained"]
    assert len([m for m in caplog.messages if "in-sample for the pretrained model" in m]) == 1


def _stored_blend_is_fitted_on(checkpoint, data_dir, span):
    """Whether the per-lead blend stored beside a fine-tuned ``checkpoint`` is the one its validation forecasts
    of the days ``span`` ("start..end") give."""
    from sca2lstm.checkpoint import load_model
    from sca2lstm.evaluation.calibration import fit_lead_blend, read_calibration, validation_runs
    from sca2lstm.evaluation.context import BasinContext

    ctx = BasinContext.resolve(load_model(checkpoint), data_dir, "32006")
    runs = validation_runs(ctx, *ctx.record.period(*span.split("..")))
    stored = read_calibration(checkpoint)["issue_time_blend"]["32006"]
    return np.allclose(stored, fit_lead_blend(runs.median, runs.observed, runs.last_obs), atol=1e-9)


@pytest.mark.slow
def test_a_fine_tune_in_the_guides_periods_is_calibrated_on_its_whole_validation_part(pretrained_ckpt, tiny_data_dir,
                                                                                      tmp_path, caplog):
    """The guide's flow: a pretraining basin's validation part starts at data.val_start, after the pretraining
    years, and its calibration is fitted on all of it, as before the days the model trained on were left out."""
    from sca2lstm.evaluation.calibration import read_calibration

    with caplog.at_level(logging.INFO, logger="sca2lstm"):
        r = finetune(pretrained_ckpt, "32006", FT, data_dir=tiny_data_dir, out_root=tmp_path, progress=False)
    val_start, val_end = json.loads((r["run_dir"] / "config.json").read_text())["split"]["validation"]
    assert val_start == TINY_PERIODS["val_start"]
    cal = read_calibration(r["checkpoint"])
    assert cal["validation_days"] == f"{val_start}..{val_end}"
    assert _stored_blend_is_fitted_on(r["checkpoint"], tiny_data_dir, cal["validation_days"])
    assert not [m for m in caplog.messages if "days the model trained on" in m]


@pytest.mark.slow
@pytest.mark.parametrize("ratio,test_start", [(0.5, "1977-01-01"), (0.8, "1975-01-01")])
def test_a_fine_tune_moved_into_the_pretraining_years_is_calibrated_only_outside_them(ratio, test_start,
                                                                                    pretrained_ckpt, tiny_data_dir,
                                                                                    tmp_path, caplog):
    """A --test_start (and ratio) moving fine-tuning's validation part into the years the pretrained model trained
    on: its forecast calibration (blend and spread per lead) is fitted only on the days after them, the days its
    blend is fitted on; where none remain, one line says so and the pretrained model's calibration is used."""
    from sca2lstm.evaluation.calibration import MIN_OWN_SPREAD_DAYS, read_calibration

    trained_until = max(np.datetime64(sp["end"]) for sp in torch.load(pretrained_ckpt, weights_only=False)
                        ["trained_on"] if sp["role"] == "train" and "32006" in sp["basins"])
    with caplog.at_level(logging.INFO, logger="sca2lstm"):
        r = finetune(pretrained_ckpt, "32006", {**FT, "fine_tune_ratio": ratio}, data_dir=tiny_data_dir,
                     out_root=tmp_path, progress=False, test_start=test_start)
    val_start, val_end = json.loads((r["run_dir"] / "config.json").read_text())["split"]["validation"]
    assert np.datetime64(val_start) < trained_until  # the validation part overlaps the pretraining years
    cal, src = read_calibration(r["checkpoint"]), read_calibration(pretrained_ckpt)
    fitted = np.datetime64(val_end) > trained_until
    if fitted:  # fitted on the days after the pretraining years alone
        assert cal["validation_days"] == f"{trained_until + 1}..{val_end}"
        assert _stored_blend_is_fitted_on(r["checkpoint"], tiny_data_dir, cal["validation_days"])
        assert not _stored_blend_is_fitted_on(r["checkpoint"], tiny_data_dir, f"{val_start}..{val_end}")
    else:  # every validation day trained on: nothing is fitted on them
        assert cal["validation_days"] is None and "32006" not in cal["issue_time_blend"]
        assert any("validation days none of its own) saved to" in m for m in caplog.messages)
    # Fewer forecasts per lead than its own spread needs: the pretrained model's, and one line says so
    assert cal["spread"]["none"]["from"] == "the pretrained model"
    assert cal["spread"]["none"]["factors"] == src["spread"]["none"]["factors"]
    said = [m for m in caplog.messages if m.startswith("calibration: basin 32006: its validation part")]
    assert len(said) == 1, caplog.messages
    assert f"{val_start}..{val_end}" in said[0] and f"fewer than the {MIN_OWN_SPREAD_DAYS}" in said[0]
    assert ("its blend per lead is fitted on them" if fitted else "its blend per lead is the raw model") in said[0]


@pytest.fixture(scope="module")
def default_model_ckpt(tiny_data_dir, tmp_path_factory):
    """Pretrained with the DEFAULT model config on two basins (10003 is left out)."""
    cfg = load_config(overrides={"data": {"data_dir": str(tiny_data_dir), **TINY_PERIODS},
                                 "training": {**TINY_TRAINING, "epochs": 1}})
    out = tmp_path_factory.mktemp("default_model") / "sca2lstm.pth"
    pretrain(cfg, out, data_dir=tiny_data_dir, basins=["32006", "10002"], progress=False)
    return out


@pytest.mark.parametrize("basin", ["32006", "10003"])  # in the pretraining set, and new to it
def test_guide_snippet_loads_finetuned_checkpoint(default_model_ckpt, tiny_data_dir, tmp_path, basin,
                                                  monkeypatch):
    r = finetune(default_model_ckpt, basin, {**FT, "epochs": 1}, data_dir=tiny_data_dir,
                 out_root=tmp_path / "model_output" / "fine_tune", progress=False)
    monkeypatch.chdir(tmp_path)
    # The guide's snippet, as written (only the path differs):
    config = load_config()
    model = SCA2LSTM(config)
    checkpoint = torch.load(r["checkpoint"])
    model.load_state_dict(checkpoint["model_state_dict"])
    model.eval()
    assert basin in checkpoint["scalers"]["basins"]
    assert checkpoint["finetuned_basin"] == basin


def test_new_basin_starts_from_exactly_the_zero_shot_model(default_model_ckpt, tiny_data_dir, tmp_path):
    """10003 was not pretrained on: zero-shot prediction and the fine-tune fit its discharge scale on the
    same days, so a fine-tune that keeps the pretrained weights forecasts exactly what zero-shot does
    (one scale: 'no improvement' cannot change a forecast)."""
    from sca2lstm.evaluation.predict import predict

    r = finetune(default_model_ckpt, "10003", {**FT, "epochs": 0}, data_dir=tiny_data_dir, out_root=tmp_path,
                 progress=False)
    ft = torch.load(r["checkpoint"], weights_only=True)
    pre = torch.load(default_model_ckpt, weights_only=True)
    assert all(torch.equal(ft["model_state_dict"][k], v) for k, v in pre["model_state_dict"].items())
    zero_shot = predict(default_model_ckpt, "10003", data_dir=tiny_data_dir)
    tuned = predict(r["checkpoint"], "10003", data_dir=tiny_data_dir)
    # The model itself (before the persistence blend, whose weight each fits on its own validation days:
    # zero-shot on the configured validation period, the fine-tune on its validation part).
    assert np.array_equal(zero_shot.predicted_raw, tuned.predicted_raw, equal_nan=True)
    assert zero_shot.metrics["model_raw"]["nse"] == tuned.metrics["model_raw"]["nse"]


def test_new_station_opened_after_the_training_period(default_model_ckpt, tiny_data_dir, tmp_path):
    """No discharge in the training period: the basin follows its own record (data.periods): zero-shot
    scores the last 20 % of its observed days with a scale fitted on its own training part, and a
    fine-tune reads only the days before that test part and stores it for predict."""
    from sca2lstm.evaluation.predict import predict

    late = tmp_path / "late"
    shutil.copytree(tiny_data_dir, late)
    f = next((late / "timeseries").glob("*_10003_*.csv"))
    df = pd.read_csv(f)
    df.loc[df["date"] <= TINY_PERIODS["train_end"], "discharge_vol"] = np.nan
    df.to_csv(f, index=False)
    zero_shot = predict(default_model_ckpt, "10003", data_dir=late)
    assert zero_shot.periods["rule"] == "station"
    observed = df.loc[df["discharge_vol"].notna(), "date"].to_numpy()
    test_start = zero_shot.periods["test"][0]
    assert (observed >= test_start).sum() == pytest.approx(0.2 * len(observed), abs=1)
    r = finetune(default_model_ckpt, "10003", {**FT, "epochs": 1, "fine_tune_ratio": 0.95}, data_dir=late,
                 out_root=tmp_path / "ft", progress=False)
    ckpt = torch.load(r["checkpoint"], weights_only=True)
    assert "10003" in ckpt["scalers"]["basins"]
    assert ckpt["periods"]["test"] == zero_shot.periods["test"]
    assert ckpt["periods"]["fine_tune"][1] < test_start
    tuned = predict(r["checkpoint"], "10003", data_dir=late)
    assert str(tuned.series["date"].iloc[0].date()) == test_start


def test_config_keys_a_fine_tune_cannot_change_are_named(tmp_path, caplog, monkeypatch):
    """data.lead_days or model.hidden_size in fine_train.py's --config are fixed by the pretrained model: one
    warning names them; the finetune: section and training.seed apply as before."""
    from sca2lstm.cli import finetune as cli

    monkeypatch.setattr(logging.getLogger("sca2lstm"), "propagate", True)
    f = tmp_path / "ft.yaml"
    f.write_text("data: {lead_days: 3}\nmodel: {hidden_size: 32}\ntraining: {seed: 5}\nfinetune: {epochs: 4}\n")
    args = cli.build_parser().parse_args(["--target_basin", "32006", "--pretrained_model", "m.pth",
                                          "--config", str(f)])
    with caplog.at_level(logging.WARNING):
        overrides, seed = cli.settings(args)
    assert overrides["epochs"] == 4 and seed == 5
    assert "data.lead_days, model.hidden_size ignored" in caplog.text and "training.seed" not in caplog.text.split(
        "ignored")[0]
    # the ./sca2lstm.yaml read without --config is named as the file it is, not as "--config None"
    monkeypatch.chdir(tmp_path)
    f.rename(tmp_path / "sca2lstm.yaml")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        cli.settings(cli.build_parser().parse_args(["--target_basin", "32006", "--pretrained_model", "m.pth"]))
    assert "sca2lstm.yaml: data.lead_days, model.hidden_size ignored" in caplog.text and "None" not in caplog.text


def test_a_repeated_target_basin_flag_fine_tunes_every_id_it_names(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                   capsys):
    """--target_basin given twice (as predict.py's --basin may be): both ids count. The first is mistyped, so
    the run is refused naming it, where keeping only the last id would fine-tune 32006 alone and succeed."""
    from sca2lstm.cli.finetune import main

    ft = tmp_path / "ft"
    rc = main(["--target_basin", "32060", "--target_basin", "32006", "--pretrained_model", str(pretrained_ckpt),
               "--data_dir", str(tiny_data_dir), "--epochs", "1", "--output_dir", str(ft), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "unknown basin '32060'" in err[0], err
    assert not ft.exists()


def test_a_mistyped_basin_among_several_is_refused_before_any_fine_tune(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                        capsys):
    """Several basins, one id not in the data folder (a typo): one line naming it and the known ones, before the
    other basins' fine-tunes run (each minutes on a real station), and no run folder made."""
    from sca2lstm.cli.finetune import main

    ft = tmp_path / "ft"
    rc = main(["--target_basin", "32006", "32060", "--pretrained_model", str(pretrained_ckpt), "--data_dir",
               str(tiny_data_dir), "--epochs", "1", "--output_dir", str(ft), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "unknown basin '32060'" in err[0], err
    assert not ft.exists()


@pytest.mark.slow
def test_a_fine_tuned_forecast_says_whose_intervals_it_issues(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """A fine-tuned model's forecast named its intervals 'pooled over the calibration basins' whether they
    were the pretrained model's (too few validation days of its own) or fitted on its own basin alone."""
    from sca2lstm.checkpoint import load_model
    from sca2lstm.cli.main import main
    from sca2lstm.evaluation.calibration import calibrate, read_calibration

    r = finetune(pretrained_ckpt, "10002", FT, data_dir=tiny_data_dir, out_root=tmp_path, progress=False)
    assert read_calibration(r["checkpoint"])["spread"]["none"]["from"] == "the pretrained model"
    base = ["forecast", "--model", str(r["checkpoint"]), "--basin", "10002", "--data_dir", str(tiny_data_dir),
            "--issue_date", "1976-06-15", "--quiet"]
    capsys.readouterr()
    assert main([*base, "--output_dir", str(tmp_path / "a")]) == 0
    said = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("Blend with persistence:")]
    assert len(said) == 1 and "intervals: taken from the pretrained model." in said[0], said
    # refitted on its own basin alone (as with 730 validation forecasts per lead or more): said so, with the days
    own = calibrate(load_model(r["checkpoint"]), r["checkpoint"], data_dir=tiny_data_dir, basins=["10002"])
    assert own["basins"] == 1 and "from" not in own["spread"]["none"]
    assert main([*base, "--output_dir", str(tmp_path / "b")]) == 0
    said = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("Blend with persistence:")]
    assert len(said) == 1 and f"intervals: fitted on this basin's validation days {own['validation_days']}." in said[0]


@pytest.mark.slow
@pytest.mark.parametrize("own_days,whose", [(None, "the pretrained model's"), (1, "its own")])
def test_the_calibration_line_names_whose_spread_a_fine_tune_stored(own_days, whose, pretrained_ckpt, tiny_data_dir,
                                                                    tmp_path, caplog, monkeypatch):
    """The line saying the fine-tuned model's calibration was saved named the blend and the warning
    probabilities only, not the spread, nor whether it was fitted on the basin (enough validation forecasts per
    lead; here the threshold lowered so one year suffices) or kept from the pretrained model."""
    from sca2lstm.evaluation import calibration
    from sca2lstm.evaluation.calibration import read_calibration

    if own_days is not None:
        monkeypatch.setattr(calibration, "MIN_OWN_SPREAD_DAYS", own_days)
    with caplog.at_level(logging.INFO, logger="sca2lstm"):
        r = finetune(pretrained_ckpt, "10002", FT, data_dir=tiny_data_dir, out_root=tmp_path, progress=False)
    assert ("from" in read_calibration(r["checkpoint"])["spread"]["none"]) == (own_days is None)
    said = [m for m in caplog.messages if m.startswith("forecast calibration (") and " saved to " in m]
    assert len(said) == 1 and f"(blend per lead, {whose} spread per lead, warning probabilities;" in said[0], said


@pytest.mark.parametrize("min_own_days", [730, 200])
def test_a_fine_tunes_calibration_runs_no_setting_whose_spread_it_takes_from_the_pretrained_model(
        min_own_days, pretrained_ckpt, tiny_data_dir, tmp_path, monkeypatch):
    """A weather setting with fewer validation issue dates than its own spread needs (the ensemble's every third
    day; with the tiny one-year validation part, at 730, every setting but ``none``) takes the pretrained model's
    spread: it is not run, and the calibration written is the one running it and replacing it gave, key order
    included."""
    import sca2lstm.evaluation.calibration as cal_mod
    from sca2lstm.checkpoint import load_model

    monkeypatch.setattr(cal_mod, "MIN_OWN_SPREAD_DAYS", min_own_days)
    ran = []
    real = cal_mod._setting_runs

    def spy(ctx, v0, v1, setting, seed):
        ran.append(setting)
        return real(ctx, v0, v1, setting, seed)

    monkeypatch.setattr(cal_mod, "_setting_runs", spy)
    r = finetune(pretrained_ckpt, "32006", {**FT, "epochs": 0}, data_dir=tiny_data_dir, out_root=tmp_path,
                 progress=False)
    written = cal_mod.read_calibration(r["checkpoint"])
    short = {"none"} if min_own_days == 730 else {"none", "forecast", "perfect"}
    assert set(ran) == short
    assert written["spread"]["ensemble"]["from"] == "the pretrained model"

    # every setting run, then completed from the pretrained model's calibration
    monkeypatch.setattr(cal_mod, "_setting_runs", real)
    full = cal_mod.calibrate(load_model(r["checkpoint"]), None, tiny_data_dir, ["32006"])
    cal_mod.with_source_calibration(full, cal_mod.read_calibration(pretrained_ckpt))
    written.pop("model_sha256")
    assert json.dumps(written, indent=2) == json.dumps(full, indent=2)
