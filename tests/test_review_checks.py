"""Prediction edge cases: the --end clip warning, lead-aware NetCDF attributes (and xarray as an optional
package), the lead/window bound, ambiguous timeseries files, the fine-tune split against pretraining
targets and the all-days score."""

import json
import logging
import shutil
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import make_tiny_config

from sca2lstm.config import load_config
from sca2lstm.data.camels_gb import timeseries_file
from sca2lstm.data.dataset import load_basin
from sca2lstm.errors import ConfigError, DataError
from sca2lstm.evaluation.metrics import all_metrics
from sca2lstm.evaluation.predict import Prediction, predict, write_prediction
from sca2lstm.training.finetune import chronological_split, finetune


def test_end_beyond_the_data_warns_with_the_last_day(pretrained_ckpt, tiny_data_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="sca2lstm"):
        p = predict(pretrained_ckpt, "32006", "1977-06-01", "1979-06-30", data_dir=tiny_data_dir)
    assert str(p.series["date"].iloc[-1].date()) == "1977-12-31"
    msgs = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("1979-06-30" in m and "1977-12-31" in m for m in msgs), msgs
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sca2lstm"):
        predict(pretrained_ckpt, "32006", data_dir=tiny_data_dir)  # inside the data: no warning
    assert not [r for r in caplog.records if "last day" in r.getMessage()]


def _hand_made_prediction(tmp_path, lead_days: int) -> Prediction:
    dates = pd.date_range("2000-01-01", periods=5, name="date")
    series = pd.DataFrame({"date": dates, "observed": [1.0, 2.0, np.nan, 4.0, 5.0], "predicted": 1.5,
                           "persistence": 1.0, "input_gap": [False, False, True, False, False]})
    m = {"model": {"nse": 0.5}, "persistence": {"nse": 0.4}}
    return Prediction("1", series, pd.DataFrame({"a": np.ones(5)}, index=dates), {"n_days": 4, **m}, 0,
                      tmp_path / "m.pth", 0.0, lead_days=lead_days)


def test_netcdf_holds_the_series_and_names_the_models_lead(tmp_path):
    xr = pytest.importorskip("xarray")  # the netcdf extra; the test extra installs it
    pred = _hand_made_prediction(tmp_path, lead_days=3)
    folder = write_prediction(pred, tmp_path / "out", "netcdf")
    with xr.open_dataset(folder / "series.nc") as ds:
        assert "lead-3" in ds["predicted"].attrs["long_name"]
        assert "3 days earlier" in ds["persistence"].attrs["long_name"]
        np.testing.assert_array_equal(ds["observed"].values, pred.series["observed"].to_numpy())
        assert ds["input_gap"].values.tolist() == [0, 0, 1, 0, 0]


def test_netcdf_without_xarray_is_one_line_before_any_work(pretrained_ckpt, tiny_data_dir, tmp_path, monkeypatch,
                                                           capsys):
    from sca2lstm.cli.predict import main

    monkeypatch.setitem(sys.modules, "xarray", None)  # as if the netcdf extra were not installed
    out = tmp_path / "out"
    rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
               "--output_dir", str(out), "--format", "netcdf"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert "--format netcdf needs xarray" in err and "pip install 'sca2lstm[netcdf]'" in err
    assert not out.exists()


def test_lead_days_must_leave_scored_steps():
    with pytest.raises(ConfigError) as e:
        load_config(overrides={"training": {"seq_len": 60, "spinup": 20}, "data": {"lead_days": 40}})
    msg = str(e.value)
    assert "data.lead_days=40" in msg and "seq_len" in msg and "spinup" in msg
    load_config(overrides={"training": {"seq_len": 60, "spinup": 20}, "data": {"lead_days": 39}})


def test_two_timeseries_files_for_one_basin_is_an_error(tiny_data_dir, tmp_path):
    d = tmp_path / "dup"
    shutil.copytree(tiny_data_dir, d)
    f = next((d / "timeseries").glob("*_32006_*.csv"))
    other = f.with_name("CAMELS_GB_hydromet_timeseries_32006_19000101-19991231.csv")
    shutil.copy(f, other)
    with pytest.raises(DataError) as e:
        timeseries_file(d, "32006")
    assert f.name in str(e.value) and other.name in str(e.value)


def test_finetune_validation_never_starts_before_pretraining_validation(tiny_data_dir):
    cfg = make_tiny_config(tiny_data_dir, finetune={"fine_tune_ratio": 0.5})
    rec = load_basin(tiny_data_dir, "32006", cfg)
    new = chronological_split(rec, cfg, in_pretraining=False)
    old = chronological_split(rec, cfg, in_pretraining=True)
    assert str(rec.dates[new.i_split]) < cfg.data.val_start       # a new basin: the ratio split
    assert str(rec.dates[old.i_split]) == cfg.data.val_start       # a pretrained one: not before val_start
    assert old.i0 == new.i0 and old.i1 == new.i1
    late = make_tiny_config(tiny_data_dir, finetune={"fine_tune_ratio": 0.95})
    assert (chronological_split(rec, late, in_pretraining=True).i_split
            == chronological_split(rec, late, in_pretraining=False).i_split)  # later than val_start: kept


def test_finetune_records_the_split_rule(pretrained_ckpt, tiny_data_dir, tmp_path):
    r = finetune(pretrained_ckpt, "32006", {"epochs": 0, "fine_tune_ratio": 0.5, "min_records": 0},
                 data_dir=tiny_data_dir, out_root=tmp_path, progress=False)
    rec = json.loads((r["run_dir"] / "config.json").read_text())
    assert rec["split"]["validation"][0] == "1975-01-01"
    assert "val_start" in rec["split"]["rule"]


@pytest.mark.slow
def test_all_days_score_beside_the_paired_one(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    gappy = tmp_path / "gappy"
    shutil.copytree(tiny_data_dir, gappy)
    f = next((gappy / "timeseries").glob("*_32006_*.csv"))
    df = pd.read_csv(f)
    df.loc[df["date"].isin(["1976-02-10", "1976-05-03", "1976-05-04", "1976-09-20"]), "discharge_vol"] = np.nan
    df.to_csv(f, index=False)
    p = predict(pretrained_ckpt, "32006", data_dir=gappy)
    s = p.series
    ok = np.isfinite(s["observed"]) & np.isfinite(s["predicted"])
    alld = p.metrics["model_all_days"]
    assert alld["n_days"] == int(ok.sum()) > p.metrics["n_days"]  # the days after a gap count here
    ref = all_metrics(s["observed"][ok].to_numpy(), s["predicted"][ok].to_numpy())
    assert alld["nse"] == pytest.approx(ref["nse"]) and alld["kge"] == pytest.approx(ref["kge"])
    out = write_prediction(p, tmp_path / "out")
    m = json.loads((out / "metrics.json").read_text())
    assert m["model_all_days"]["nse"] == pytest.approx(ref["nse"])
    assert "all days" in (out / "report.html").read_text()
    from sca2lstm.cli.predict import main
    assert main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(gappy),
                 "--output_dir", str(tmp_path / "cli")]) == 0
    table = capsys.readouterr().out
    assert "NSE all days" in table and f"{ref['nse']:.3f}" in table
