"""One basin context for every command: the same discharge scale, in-sample days labelled, whole missing
inputs named (and refused for precipitation), and fine-tuning that keeps the better model on validation.

Fixtures are the tiny synthetic basins copied into tmp_path and edited with pandas: a station of its own
(a copy of 10003 under a new id, with no discharge before the end of the configured training period),
a basin whose record ends before the test years, and a file without its precipitation column.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import TINY_PERIODS
from sca2lstm.checkpoint import atomic_torch_save, load_model
from sca2lstm.data import reader
from sca2lstm.data.scaling import Scalers
from sca2lstm.errors import DataError
from sca2lstm.evaluation.context import BasinContext
from sca2lstm.evaluation.operational import issue_forecast
from sca2lstm.evaluation.predict import predict
from sca2lstm.training.finetune import FINE_TUNED, PRETRAINED, finetune, keep_better

STATION = "77001"  # not in the checkpoint


def _copy(tiny_data_dir, tmp_path, name="data"):
    d = tmp_path / name
    shutil.copytree(tiny_data_dir, d)
    return d


def _rewrite(data_dir, basin, edit):
    f = reader.timeseries_file(data_dir, basin)
    df = edit(pd.read_csv(f))
    f.unlink()
    df.to_csv(data_dir / "timeseries" / f"{basin}.csv", index=False)


@pytest.fixture
def station_dir(tiny_data_dir, tmp_path):
    """The tiny basins plus STATION: 10003's record from 1975 on (none in the training years)."""
    d = _copy(tiny_data_dir, tmp_path)
    df = pd.read_csv(reader.timeseries_file(d, "10003"))
    df.loc[df["date"] <= TINY_PERIODS["train_end"], "discharge_vol"] = np.nan
    df.to_csv(d / "timeseries" / f"{STATION}.csv", index=False)
    return d


@pytest.mark.slow
def test_new_station_gets_one_discharge_scale_from_every_command(pretrained_ckpt, station_dir, tmp_path,
                                                                 monkeypatch):
    """predict, forecasts at two issue dates, and a fine-tune fit the station's scale on the same days."""
    fitted = []
    fit_basin = Scalers.fit_basin

    def recording(basin, x_train, y_train, kinds):
        bs = fit_basin(basin, x_train, y_train, kinds)
        if basin == STATION:
            fitted.append((bs.q_mean, bs.q_std))
        return bs

    monkeypatch.setattr(Scalers, "fit_basin", staticmethod(recording))
    bundle = load_model(pretrained_ckpt)
    predict(pretrained_ckpt, STATION, data_dir=station_dir, model_bundle=bundle)
    for issue in ("1976-03-01", "1977-10-01"):
        issue_forecast(bundle, STATION, data_dir=station_dir, issue_date=issue, leads=3)
    r = finetune(pretrained_ckpt, STATION, {"epochs": 0}, data_dir=station_dir, out_root=tmp_path / "ft",
                 progress=False)
    tuned = torch.load(r["checkpoint"], weights_only=True)["scalers"]["basins"][STATION][:2]
    assert len(fitted) >= 3
    assert all(f == fitted[0] for f in fitted), fitted
    assert tuple(tuned) == fitted[0]
    assert STATION not in bundle[2].basins  # the caller's bundle is never changed


def _predict_cli(argv, capsys):
    from sca2lstm.cli.predict import main

    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def _metrics(out_dir, basin):
    return json.loads((out_dir / f"basin_{basin}" / "metrics.json").read_text())


@pytest.mark.slow
def test_test_days_inside_the_training_days_are_labelled_in_sample(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                    capsys):
    out = tmp_path / "pred"
    rc, printed, _ = _predict_cli(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir",
                                   str(tiny_data_dir), "--test_start", "1973-01-01", "--output_dir", str(out)],
                                  capsys)
    assert rc == 0
    m = _metrics(out, "32006")
    rec = reader.read_timeseries(tiny_data_dir, "32006")
    q = rec["discharge_vol"]
    n_train = int(q.loc["1973-01-01":TINY_PERIODS["train_end"]].notna().sum())
    n_val = int(q.loc[TINY_PERIODS["val_start"]:TINY_PERIODS["val_end"]].notna().sum())
    assert m["in_sample"]["in_sample"] is True
    assert (m["in_sample"]["train_days"], m["in_sample"]["validation_days"]) == (n_train, n_val)
    assert m["scores_are"].startswith("in-sample")
    assert "IN-SAMPLE" in printed

    # The configured test period is out of sample.
    out2 = tmp_path / "pred2"
    assert _predict_cli(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
                         "--output_dir", str(out2)], capsys)[0] == 0
    m2 = _metrics(out2, "32006")
    assert m2["in_sample"] == {"in_sample": False, "train_days": 0, "validation_days": 0, "spans": []}
    assert m2["scores_are"] == "out-of-sample"

    # A checkpoint written before it recorded its training days: derived from its basins and config.
    legacy = tmp_path / "legacy.pth"
    ck = torch.load(pretrained_ckpt, weights_only=True)
    del ck["trained_on"]
    atomic_torch_save(ck, legacy)
    p = predict(legacy, "32006", data_dir=tiny_data_dir, test_start="1973-01-01")
    assert p.metrics["in_sample"] == m["in_sample"]


def test_pretrained_basin_whose_record_ends_before_the_test_years_is_labelled(pretrained_ckpt, tiny_data_dir,
                                                                               tmp_path):
    d = _copy(tiny_data_dir, tmp_path)
    _rewrite(d, "32006", lambda df: df[df["date"] <= "1975-06-30"])
    p = predict(pretrained_ckpt, "32006", data_dir=d)
    assert p.periods["rule"] == "station"  # its record does not reach the configured test period
    assert p.metrics["in_sample"]["in_sample"] is True
    assert p.metrics["in_sample"]["train_days"] > 0


@pytest.mark.slow
def test_precipitation_absent_from_the_whole_file_is_refused_unless_allowed(pretrained_ckpt, tiny_data_dir,
                                                                            tmp_path, capsys):
    from sca2lstm.cli.finetune import main as finetune_main
    from sca2lstm.cli.forecast import main as forecast_main

    d = _copy(tiny_data_dir, tmp_path)
    _rewrite(d, "32006", lambda df: df.drop(columns=["precipitation"]))
    base = ["--data_dir", str(d)]
    rc, _, err = _predict_cli(["--model", str(pretrained_ckpt), "--basin", "32006", *base,
                               "--output_dir", str(tmp_path / "p")], capsys)
    assert rc == 1 and "precipitation" in err and "--allow_missing_inputs" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "p").exists()
    assert forecast_main(["--model", str(pretrained_ckpt), "--basin", "32006", *base,
                          "--output_dir", str(tmp_path / "f")]) == 1
    assert "precipitation" in capsys.readouterr().err
    assert finetune_main(["--target_basin", "32006", "--pretrained_model", str(pretrained_ckpt), *base,
                          "--epochs", "0", "--output_dir", str(tmp_path / "ft")]) == 1
    assert "precipitation" in capsys.readouterr().err
    assert not any((tmp_path / "ft").rglob("*.pth"))

    rc, printed, _ = _predict_cli(["--model", str(pretrained_ckpt), "--basin", "32006", *base,
                                   "--output_dir", str(tmp_path / "p"), "--allow_missing_inputs"], capsys)
    assert rc == 0 and "NO PRECIPITATION" in printed
    assert _metrics(tmp_path / "p", "32006")["missing_inputs"] == ["precipitation"]


def test_another_input_absent_is_named_without_refusing(pretrained_ckpt, tiny_data_dir, tmp_path, caplog):
    d = _copy(tiny_data_dir, tmp_path)
    _rewrite(d, "10002", lambda df: df.drop(columns=["temperature"]))
    cfg = load_model(pretrained_ckpt)[1]
    assert "temperature" in cfg.data.dynamic_inputs
    with caplog.at_level("WARNING", logger="sca2lstm"):
        p = predict(pretrained_ckpt, "10002", data_dir=d)
    assert p.metrics["missing_inputs"] == ["temperature"]
    assert any("temperature" in r.getMessage() and "no value of temperature anywhere" in r.getMessage()
               for r in caplog.records)


def test_keep_better_keeps_the_pretrained_model_unless_fine_tuning_beats_it():
    assert keep_better(0.50, 0.51) == FINE_TUNED
    assert keep_better(0.50, 0.50) == PRETRAINED  # a tie is no reason to change the model
    assert keep_better(0.50, 0.49) == PRETRAINED
    assert keep_better(0.50, float("nan")) == PRETRAINED
    assert keep_better(float("nan"), -3.0) == FINE_TUNED


@pytest.mark.slow
def test_fine_tuning_reports_and_writes_the_model_it_kept(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    from sca2lstm.cli.finetune import main as finetune_main

    # No epoch: nothing beats the pretrained weights, which must be what the run keeps and says it kept.
    r = finetune(pretrained_ckpt, "10002", {"epochs": 0}, data_dir=tiny_data_dir, out_root=tmp_path / "a",
                 progress=False)
    assert r["kept"] == PRETRAINED
    vm = json.loads((r["run_dir"] / "val_metrics.json").read_text())
    assert vm["kept"]["kept"] == PRETRAINED
    assert json.loads((r["run_dir"] / "config.json").read_text())["kept"]["kept"] == PRETRAINED
    ck, pre = (torch.load(p, weights_only=True) for p in (r["checkpoint"], pretrained_ckpt))
    assert all(torch.equal(ck["model_state_dict"][k], v) for k, v in pre["model_state_dict"].items())

    # A run that trains: whichever it keeps is the better on validation, and its weights are the ones saved.
    rc = finetune_main(["--target_basin", "10002", "10003", "--pretrained_model", str(pretrained_ckpt),
                        "--data_dir", str(tiny_data_dir), "--epochs", "2", "--learning_rate", "0.01",
                        "--output_dir", str(tmp_path / "b"), "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    for basin in ("10002", "10003"):
        run = next((tmp_path / "b" / f"basin_{basin}").iterdir())
        dec = json.loads((run / "val_metrics.json").read_text())["kept"]
        assert dec["kept"] == keep_better(dec["pretrained"], dec["fine_tuned"])
        ck = torch.load(run / f"best_model_basin_{basin}.pth", weights_only=True)
        same = all(torch.equal(ck["model_state_dict"][k], v) for k, v in pre["model_state_dict"].items())
        assert same == (dec["kept"] == PRETRAINED)
        assert ck["kept"] == dec["kept"]
        assert any(line.split()[0] == basin and line.rstrip().endswith(dec["kept"]) for line in printed.splitlines()
                   if line.strip())
        # The guide's predict command reads the kept model.
        assert predict(run / f"best_model_basin_{basin}.pth", basin, data_dir=tiny_data_dir).metrics["n_days"] > 0


def test_the_fingerprint_follows_the_metadata_files_contents_not_only_its_size_and_time(tiny_data_dir, tmp_path):
    """Levels rewritten to the same size within one tick of a coarse file clock (a few ms on many kernels; here
    the time is put back by hand) are a new fingerprint: the service keys its cached and stored forecasts on it."""
    import os

    from sca2lstm.data.station_meta import StationMeta, WarningLevel, meta_path, write_station_meta
    from sca2lstm.evaluation.context import fingerprint

    d = _copy(tiny_data_dir, tmp_path)
    without = fingerprint(d, "10002", "rec")
    write_station_meta(d, StationMeta("10002", warning_levels={"alert": WarningLevel(12.5)}))
    path = meta_path(d, "10002")
    before, st = fingerprint(d, "10002", "rec"), path.stat()
    assert before != without and fingerprint(d, "10002", "rec") == before
    write_station_meta(d, StationMeta("10002", warning_levels={"alert": WarningLevel(13.5)}))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert fingerprint(d, "10002", "rec") != before


def test_context_fingerprint_follows_the_files_and_carries_metadata(pretrained_ckpt, tiny_data_dir, tmp_path):
    from sca2lstm.data.station_meta import WarningLevel, read_station_meta, write_station_meta

    d = _copy(tiny_data_dir, tmp_path)
    bundle = load_model(pretrained_ckpt)
    ctx = BasinContext.resolve(bundle, d, "10002")
    assert ctx.in_checkpoint and ctx.blend.per_lead is None
    assert ctx.static.shape == ctx.static_missing.shape == (1, len(ctx.cfg.data.static_attributes))
    assert ctx.meta.warning_levels == {}
    assert BasinContext.resolve(bundle, d, "10002").fingerprint == ctx.fingerprint

    meta = read_station_meta(d, "10002")
    meta.warning_levels["alert"] = WarningLevel(12.5)
    write_station_meta(d, meta)
    with_meta = BasinContext.resolve(bundle, d, "10002")
    assert with_meta.meta.warning_levels["alert"].value == 12.5
    assert with_meta.fingerprint != ctx.fingerprint

    _rewrite(d, "10002", lambda df: df.assign(discharge_vol=df["discharge_vol"] * 1.01))
    assert BasinContext.resolve(bundle, d, "10002").fingerprint != with_meta.fingerprint

    with pytest.raises(DataError, match="unknown basin '99999'"):
        BasinContext.resolve(bundle, d, "99999")


@pytest.mark.slow
def test_fine_tune_whose_test_part_lies_in_the_pretraining_days_warns_and_predict_labels_it(
        pretrained_ckpt, tiny_data_dir, tmp_path, caplog):
    with caplog.at_level("WARNING", logger="sca2lstm"):
        r = finetune(pretrained_ckpt, "32006", {"epochs": 0}, data_dir=tiny_data_dir, out_root=tmp_path,
                     progress=False, test_start="1973-01-01")
    assert any("pretrained model was trained on" in m.getMessage() for m in caplog.records)
    p = predict(r["checkpoint"], "32006", data_dir=tiny_data_dir)
    assert p.periods["test"][0] == "1973-01-01"
    assert p.metrics["in_sample"]["in_sample"] and p.metrics["in_sample"]["train_days"] > 0


def test_a_basin_without_an_input_column_is_warned_about_once_through_forecast(pretrained_ckpt, tiny_data_dir,
                                                                               tmp_path, capsys):
    """The data layer names the absent column in one line; the basin context, the forecast's frame and the
    printed result do not repeat it (a fresh process: the in-process caches are cleared)."""
    from sca2lstm.cli.forecast import main as forecast_main
    from sca2lstm.evaluation.context import clear_caches

    d = _copy(tiny_data_dir, tmp_path)
    _rewrite(d, "10002", lambda df: df.drop(columns=["temperature"]))
    clear_caches()
    argv = ["--model", str(pretrained_ckpt), "--basin", "10002", "--data_dir", str(d), "--issue_date", "1976-06-15"]
    assert forecast_main([*argv, "--output_dir", str(tmp_path / "f")]) == 0
    cap = capsys.readouterr()
    lines = [ln for ln in (cap.out + cap.err).splitlines() if "temperature" in ln.lower()]
    assert len(lines) == 1, lines
    assert "10002" in lines[0] and "masked" in lines[0]
    # The context still refuses a basin without precipitation unless allowed (one line, exit 1).
    _rewrite(d, "10003", lambda df: df.drop(columns=["precipitation"]))
    assert forecast_main(["--model", str(pretrained_ckpt), "--basin", "10003", "--data_dir", str(d),
                          "--output_dir", str(tmp_path / "g")]) == 1
    err = capsys.readouterr().err.strip()
    assert "--allow_missing_inputs" in err and len(err.splitlines()) == 1


def test_a_callers_table_without_an_input_is_named_once_however_often_it_is_forecast(pretrained_ckpt, tiny_data_dir,
                                                                                      caplog):
    """The service forecasts from parts of a station's record held in memory: each request's part is
    another table, but the absent input is named once."""
    from sca2lstm.evaluation.context import clear_caches

    clear_caches()
    bundle = load_model(pretrained_ckpt)
    ts = reader.read_timeseries(tiny_data_dir, "10002").drop(columns=["temperature"])
    with caplog.at_level("WARNING", logger="sca2lstm"):
        for end in ("1977-06-30", "1977-12-31"):
            fc = issue_forecast(bundle, "10002", data_dir=tiny_data_dir, timeseries=ts.loc[:end], leads=3)
            assert fc.missing_inputs == ["temperature"]
    assert len([r for r in caplog.records if "temperature" in r.getMessage()]) == 1


@pytest.mark.parametrize("column,factor,text", [("discharge_vol", 1000.0, "the model learned them as"),
                                                ("precipitation", 0.001, "its attribute p_mean is")])
def test_data_in_another_unit_are_named_when_the_basin_is_resolved(column, factor, text, pretrained_ckpt, tiny_data_dir,
                                                                    tmp_path, caplog, monkeypatch):
    """Flows in l/s for a basin the model learned in m3/s, or rain in m: one warning line naming the
    numbers; the same data in the right unit say nothing."""
    import logging

    from sca2lstm.data import reader
    from sca2lstm.evaluation.context import BasinContext, clear_caches

    monkeypatch.setattr(logging.getLogger("sca2lstm"), "propagate", True)
    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    caplog.set_level(logging.WARNING)
    BasinContext.resolve(pretrained_ckpt, data, "32006")
    assert "another unit" not in caplog.text
    f = reader.timeseries_file(data, "32006")
    df = pd.read_csv(f)
    df[column] = df[column] * factor
    df.to_csv(f, index=False)
    clear_caches()
    BasinContext.resolve(pretrained_ckpt, data, "32006")
    assert "basin 32006:" in caplog.text and text in caplog.text and "data in another unit?" in caplog.text


def test_a_model_fine_tuned_for_another_basin_says_so(pretrained_ckpt, tiny_data_dir, tmp_path, caplog, monkeypatch):
    import logging

    from sca2lstm.evaluation.context import BasinContext

    monkeypatch.setattr(logging.getLogger("sca2lstm"), "propagate", True)
    ckpt = torch.load(pretrained_ckpt, weights_only=True)
    ckpt["finetuned_basin"] = "10002"
    path = atomic_torch_save(ckpt, tmp_path / "best_model_basin_10002.pth")
    caplog.set_level(logging.WARNING)
    BasinContext.resolve(path, tiny_data_dir, "10002")
    assert "fine-tuned for basin" not in caplog.text
    BasinContext.resolve(path, tiny_data_dir, "32006")
    assert "the model was fine-tuned for basin 10002; basin 32006 runs on its weights" in caplog.text


def test_a_record_of_the_recent_days_only_is_no_change_of_the_fine_tuned_flows(caplog, monkeypatch):
    """The service reads the recent part of a station's record: no record of the fine-tuning days is not a change."""
    import logging

    from sca2lstm.data.dataset import BasinRecord
    from sca2lstm.evaluation.context import changed_flows_notes

    monkeypatch.setattr(logging.getLogger("sca2lstm"), "propagate", True)
    dates = np.arange(np.datetime64("2010-01-01"), np.datetime64("2011-01-01"))
    full = BasinRecord("b", np.arange(np.datetime64("2000-01-01"), np.datetime64("2011-01-01")),
                       np.zeros((4018, 1)), np.linspace(1, 2, 4018), "sha-of-the-file")
    ckpt = {"finetuned_basin": "b", "finetune_flows": full.flows_digest("2000-01-01", "2005-12-31")}
    recent = BasinRecord("b", dates, np.zeros((len(dates), 1)), np.ones(len(dates)), "sha-of-the-recent-part")
    caplog.set_level(logging.WARNING)
    assert changed_flows_notes(ckpt, "b", recent, "DIR") == [] and changed_flows_notes(ckpt, "b", full, "DIR") == [None]
    assert "differ from those" not in caplog.text
    changed = BasinRecord("b", full.dates, full.x, 2 * full.y, "sha-of-the-file-imported-again")  # other data
    note = changed_flows_notes(ckpt, "b", changed, "DIR")
    assert "differ from those the model was fine-tuned on" in note[0] and note[0] in caplog.text
    caplog.clear()
    assert changed_flows_notes(ckpt, "b", changed, "DIR") == note and caplog.text == ""   # said once, kept


@pytest.mark.parametrize("start,end", [("1970-10-01", "1975-06-30"), ("1973-01-01", "1975-12-31")])
def test_a_blend_fitted_at_the_first_forecast_never_uses_days_the_model_trained_on(start, end, pretrained_ckpt,
                                                                                    tiny_data_dir, tmp_path, caplog):
    """A pretraining basin without a stored blend whose record is shifted off the configured periods: its own-record
    validation part (1973-10..1974-07, or 1974-12..1975-05) lies wholly or partly in the years the model trained on
    (1971-1974). The blend is fitted only on the other days, or is the raw model where fewer than two remain, with
    a line saying why."""
    d = _copy(tiny_data_dir, tmp_path)
    _rewrite(d, "32006", lambda df: df[(df["date"] >= start) & (df["date"] <= end)])
    model, cfg, scalers, ckpt = load_model(pretrained_ckpt)
    assert "32006" in ckpt["persistence_blend"]
    ckpt = {**ckpt, "persistence_blend": {b: a for b, a in ckpt["persistence_blend"].items() if b != "32006"}}
    ctx = BasinContext.resolve((model, cfg, scalers, ckpt), d, "32006")
    v0, v1 = ctx.validation_days()
    assert ctx.periods.rule == "station" and str(ctx.record.dates[v0]) <= "1974-12-31"  # the in-sample case
    with caplog.at_level("INFO", logger="sca2lstm"):
        blend = ctx.blend
    if str(ctx.record.dates[v1 - 1]) <= "1974-12-31":  # every validation day trained on: the raw model
        assert blend.alpha == 1.0 and "fewer than two" in blend.source, blend
    else:                                           # fitted on its 1975 validation days only
        assert blend.source.startswith("fitted on the validation period 1975-"), blend
        assert blend.source.split("..")[1].startswith(str(ctx.record.dates[v1 - 1])), blend
    said = [r.getMessage() for r in caplog.records if "observed days the model trained on" in r.getMessage()]
    assert len(said) == 1 and "32006" in said[0], said


def test_a_station_named_without_its_data_dir_is_refused_saying_to_add_it(pretrained_ckpt, tmp_path, capsys):
    """A station imported into a folder of its own, named without --data_dir (the model's folder is read): the
    one line says to add --data_dir, for fine_train.py (one basin and several), predict.py and forecast, not only
    the model's ids nearest to it; nothing is written."""
    from sca2lstm.cli.finetune import main as finetune_main
    from sca2lstm.cli.forecast import main as forecast_main
    from sca2lstm.cli.predict import main as predict_main

    runs = [lambda: finetune_main(["--target_basin", "zhen-01", "--pretrained_model", str(pretrained_ckpt),
                                   "--epochs", "0", "--output_dir", str(tmp_path / "ft")]),
            lambda: finetune_main(["--target_basin", "32006", "zhen-01", "--pretrained_model", str(pretrained_ckpt),
                                   "--epochs", "0", "--output_dir", str(tmp_path / "ft")]),
            lambda: predict_main(["--model", str(pretrained_ckpt), "--basin", "zhen-01", "--output_dir",
                                  str(tmp_path / "p")]),
            lambda: forecast_main(["--model", str(pretrained_ckpt), "--basin", "zhen-01", "--output_dir",
                                   str(tmp_path / "f")])]
    for run in runs:
        assert run() == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "unknown basin 'zhen-01'" in err[0] and "add --data_dir" in err[0], err
    assert not any(tmp_path.iterdir())


def test_changed_flows_and_data_in_another_unit_are_said_in_chinese_too(pretrained_ckpt, tiny_data_dir, tmp_path):
    """The notes of a station whose flows changed since fine-tuning, or whose rain is in another unit, keep their
    English sentence and can be said in Chinese (the service's page and alerts, sca2lstm/notes.py)."""
    from sca2lstm.data import reader
    from sca2lstm.data.dataset import BasinRecord
    from sca2lstm.evaluation.context import BasinContext, changed_flows_notes, clear_caches

    full = BasinRecord("b", np.arange(np.datetime64("2000-01-01"), np.datetime64("2011-01-01")),
                       np.zeros((4018, 1)), np.linspace(1, 2, 4018), "sha-zh")
    ckpt = {"finetuned_basin": "b", "finetune_flows": full.flows_digest("2000-01-01", "2005-12-31")}
    [note] = changed_flows_notes(ckpt, "b", BasinRecord("b", full.dates, full.x, 2 * full.y, "sha-zh-2"), "DIR")
    assert note.startswith("basin b: the flows of 2000-01-01..2005-12-31 in DIR differ from those the model was "
                           "fine-tuned on (mean ") and note.endswith("belong to the old flows: fine-tune again")
    assert "(mean 1.273 m3/s over 2192 days then, 2.545 m3/s over 2192 days now)" in note
    assert note.said_in("zh").startswith("测站 b：DIR 中 2000-01-01..2005-12-31 的流量与模型微调时所用的不同（当时 2192 天平均 "
                                         "1.273 m3/s，现在 2192 天平均 2.545 m3/s）：")
    assert note.said_in("zh").endswith("请重新微调")
    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    f = reader.timeseries_file(data, "32006")
    df = pd.read_csv(f)
    df["precipitation"] = df["precipitation"] * 0.001  # rain in m
    df.to_csv(f, index=False)
    clear_caches()
    [note] = BasinContext.resolve(pretrained_ckpt, data, "32006").notes
    assert note.startswith("basin 32006: its precipitation averages ") and "but its attribute p_mean is" in note
    assert note.endswith("mm/d: data in another unit? Forecasts from them are not to be trusted")
    assert note.said_in("zh").startswith("测站 32006：降水平均为 ") and note.said_in("zh").endswith("数据单位不同？据此做出的预报不可信")


def test_a_foreign_id_note_without_named_sources_is_all_chinese_for_a_chinese_reader(tmp_path):
    """A station whose import names no source file, sharing its id with a basin of a checkpoint that names no
    data folder: a reader who prefers Chinese reads the note with its fallbacks in Chinese too, from the note
    computed and from the one stored, not "a file" and "built-in data" inside a Chinese sentence."""
    from sca2lstm.data.station_meta import StationMeta
    from sca2lstm.evaluation.context import foreign_id_note
    from sca2lstm.notes import note_of

    meta = StationMeta(station_id="32006", provenance={"source_sha256": "ab" * 32})
    note = foreign_id_note({}, "32006", meta, tmp_path)
    assert "imported from a file" in note and "(from built-in data)" in note   # the English text, as before
    for said in (note.said_in("zh"), note_of(json.loads(json.dumps(note.record()))).said_in("zh")):
        assert "导入自 某个文件" in said and "来自 内置数据" in said, said
        assert "a file" not in said and "built-in" not in said, said


@pytest.mark.slow
def test_rain_in_another_unit_since_fine_tuning_is_said_though_the_flows_and_p_mean_agree(pretrained_ckpt,
                                                                                           tiny_data_dir, tmp_path):
    """A station imported again with its rain in 0.1 mm read as mm: its flows are those it was fine-tuned on, and
    the import computes p_mean from the same (ten times too large) rain, so neither the flows' check nor the p_mean
    check could tell, and the fine-tuned model read ten times the rain without a word. The checkpoint keeps the
    fine-tuning days' mean rain; a rain 3 times off it is said (in Chinese too), rain as it was is not."""
    from sca2lstm.evaluation.context import clear_caches

    d = _copy(tiny_data_dir, tmp_path)
    r = finetune(pretrained_ckpt, "32006", {"epochs": 0}, data_dir=d, out_root=tmp_path / "ft", progress=False)
    kept = torch.load(r["checkpoint"], weights_only=True)["finetune_rain"]
    rain = pd.read_csv(reader.timeseries_file(d, "32006"), index_col="date")["precipitation"]
    assert kept["mean"] == pytest.approx(rain.loc[kept["start"]:kept["end"]].mean(), rel=1e-12)
    assert BasinContext.resolve(r["checkpoint"], d, "32006").notes == []
    _rewrite(d, "32006", lambda df: df.assign(precipitation=df["precipitation"] * 10))
    att = d / "attributes" / "CAMELS_GB_climatic_attributes.csv"
    table = pd.read_csv(att, dtype={"gauge_id": str})
    table.loc[table["gauge_id"] == "32006", "p_mean"] *= 10  # as a new import computes it from its rain
    table.to_csv(att, index=False)
    clear_caches()
    [note] = BasinContext.resolve(r["checkpoint"], d, "32006").notes
    assert note.startswith(f"basin 32006: the precipitation of {kept['start']}..{kept['end']} in {d} averages "), note
    assert f"but {kept['mean']:.4g} mm/d when the model was fine-tuned on it: rain in another unit" in note
    assert note.said_in("zh").startswith("测站 32006：") and "降水单位不同" in note.said_in("zh")


def _move_gauge(data_dir, basin, lat, lon):
    topo = data_dir / "attributes" / "CAMELS_GB_topographic_attributes.csv"
    t = pd.read_csv(topo, dtype={"gauge_id": str})
    t.loc[t["gauge_id"] == basin, ["gauge_lat", "gauge_lon"]] = [lat, lon]
    t.to_csv(topo, index=False)


def test_a_gauge_of_the_models_id_somewhere_else_is_another_river_run_as_a_new_station(pretrained_ckpt, tiny_data_dir,
                                                                                       tmp_path):
    """A folder of one's own in the layout (not imported) with a station given the guide's id 32006: the model ran it
    on CAMELS 32006's discharge scale and blend, labelled its days as the model's training days, and said nothing.
    The checkpoint keeps where its basins' gauges are; a gauge of the same id 25 km or more away is another river:
    it runs as a station the model never saw, with a note (in Chinese too). A position rounded otherwise is none."""
    from sca2lstm.evaluation.context import clear_caches

    d = _copy(tiny_data_dir, tmp_path)
    lat, lon = torch.load(pretrained_ckpt, weights_only=True)["basin_places"]["32006"]
    assert [lat, lon] == [reader.basin_attribute(d, "32006", k) for k in ("gauge_lat", "gauge_lon")]
    _move_gauge(d, "32006", round(lat + 0.005, 3), round(lon - 0.005, 3))  # under a kilometre: the same gauge
    clear_caches()
    ctx = BasinContext.resolve(pretrained_ckpt, d, "32006")
    assert (ctx.basin_in_model(), ctx.notes, ctx.in_sample("1971-01-01", "1971-12-31")["in_sample"]) == (
        "pretrained", [], True)
    _move_gauge(d, "32006", 30.58, 114.27)  # a station of one's own on another river, given the id 32006
    clear_caches()
    ctx = BasinContext.resolve(pretrained_ckpt, d, "32006")
    assert ctx.basin_in_model() == "unseen" and ctx.scale_source.startswith("fitted on its training days")
    assert not ctx.in_sample("1971-01-01", "1971-12-31")["in_sample"]
    [note] = ctx.notes
    assert note == (f"basin 32006's gauge in {d} (30.58, 114.3) lies {note.values['km']} km from that of the basin "
                    f"32006 the model learned ({lat:.4g}, {lon:.4g}, in {tiny_data_dir}): another river under the same "
                    "id; it is treated as a new station (its own discharge scale and blend). Give your station an id "
                    "of its own to keep the two apart")
    assert note.values["km"] > 8000 and note.said_in("zh").startswith(f"{d} 中测站 32006 的测站位置（30.58, 114.3）")
