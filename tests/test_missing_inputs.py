"""Large-sample data as it comes: gzipped files with missing columns, PET from temperature, basins left
out with one line, inputs masked when a basin lacks them, and fixed-size epochs drawn fairly.

The fixtures are the tiny synthetic basins rewritten here (pandas, into tmp_path) into the large
sample's forms: CAMELS-GB naming gzipped with only date, precipitation, temperature, discharge_spec;
generic naming without temperature; one basin untouched.
"""

from __future__ import annotations

import gzip
import logging
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import make_tiny_config
from sca2lstm.config import ConfigError, load_config
from sca2lstm.data import reader
from sca2lstm.data.dataset import SequenceData, feature_cache_entry, load_basin
from sca2lstm.data.pet import oudin_pet
from sca2lstm.errors import DataError
from sca2lstm.evaluation.predict import predict
from sca2lstm.training.finetune import finetune
from sca2lstm.training.pretrain import pretrain, prepare_pretraining_data

LARGE_COLUMNS = ["date", "precipitation", "temperature", "discharge_spec"]


def _frame(src, basin) -> pd.DataFrame:
    return pd.read_csv(reader.timeseries_file(src, basin))


def _write_gz(path, df) -> None:
    path.write_bytes(gzip.compress(df.to_csv(index=False).encode()))


@pytest.fixture
def mixed_dir(tiny_data_dir, tmp_path):
    """32006: large-sample columns, gzipped; 10002: no temperature, generic name, gzipped; 10003: as is."""
    d = tmp_path / "mixed"
    shutil.copytree(tiny_data_dir / "attributes", d / "attributes")
    ts = d / "timeseries"
    ts.mkdir()
    _write_gz(ts / "CAMELS_GB_hydromet_timeseries_32006_19701001-19771231.csv.gz",
              _frame(tiny_data_dir, "32006")[LARGE_COLUMNS])
    _write_gz(ts / "10002.csv.gz", _frame(tiny_data_dir, "10002").drop(columns=["temperature"]))
    shutil.copy(reader.timeseries_file(tiny_data_dir, "10003"), ts / "10003.csv")
    return d


def test_large_sample_columns_read_with_oudin_pet_and_derived_discharge(mixed_dir, tiny_data_dir):
    cfg = make_tiny_config(mixed_dir)
    assert cfg.data.pet_from_temperature == "missing" and "peti" in cfg.data.dynamic_inputs
    rec = load_basin(mixed_dir, "32006", cfg, use_cache=False)
    full = reader.read_timeseries(tiny_data_dir, "32006")
    lat = reader.basin_attribute(mixed_dir, "32006", "gauge_lat")
    j = cfg.data.dynamic_inputs.index("peti")
    want = oudin_pet(full["temperature"].to_numpy(), lat, full.index.day_of_year.to_numpy())
    np.testing.assert_allclose(rec.x[:, j], want.astype(np.float32), rtol=1e-6)
    # discharge_vol = discharge_spec * area / 86.4, which agrees with the synthetic file's own
    # discharge_vol up to the 2 decimals both were written with.
    area = reader.basin_attribute(mixed_dir, "32006", "area")
    np.testing.assert_allclose(rec.y, (full["discharge_spec"] * area / 86.4).to_numpy(np.float32), rtol=1e-6)
    vol = full["discharge_vol"].to_numpy()
    ok = vol > 0.5
    assert np.median(np.abs(rec.y[ok] / vol[ok] - 1)) < 0.005
    # "never": the PET input of a file without it is masked instead.
    never = make_tiny_config(mixed_dir, data={"pet_from_temperature": "never"})
    assert np.isnan(load_basin(mixed_dir, "32006", never, use_cache=False).x[:, j]).all()
    # "always": a basin that has peti in its file gets Oudin's too.
    always = make_tiny_config(mixed_dir, data={"pet_from_temperature": "always"})
    r3 = load_basin(mixed_dir, "10003", always, use_cache=False)
    f3 = reader.read_timeseries(mixed_dir, "10003")
    lat3 = reader.basin_attribute(mixed_dir, "10003", "gauge_lat")
    np.testing.assert_allclose(r3.x[:, j], oudin_pet(f3["temperature"].to_numpy(), lat3,
                                                     f3.index.day_of_year.to_numpy()).astype(np.float32), rtol=1e-6)
    assert not np.allclose(r3.x[:, j], f3["peti"].to_numpy(np.float32), equal_nan=True)


def test_cache_key_follows_pet_mode_and_latitude(mixed_dir):
    cfg = make_tiny_config(mixed_dir)
    a = feature_cache_entry(mixed_dir, "32006", cfg)[1]
    assert feature_cache_entry(mixed_dir, "32006", cfg.replace(data={"pet_from_temperature": "always"}))[1] != a
    assert feature_cache_entry(mixed_dir, "32006", cfg.replace(data={"forecast_flag": True}))[1] != a
    topo = mixed_dir / "attributes" / "CAMELS_GB_topographic_attributes.csv"
    t = pd.read_csv(topo, dtype={"gauge_id": str})
    t.loc[t["gauge_id"] == "32006", "gauge_lat"] += 1.0
    t.to_csv(topo, index=False)
    assert feature_cache_entry(mixed_dir, "32006", cfg)[1] != a


@pytest.mark.slow
def test_a_basin_without_temperature_trains_and_predicts_with_zero_temperature_weight(mixed_dir, tmp_path, caplog):
    cfg = make_tiny_config(mixed_dir)
    out = tmp_path / "m.pth"
    with caplog.at_level(logging.INFO, logger="sca2lstm"):
        res = pretrain(cfg, out, data_dir=mixed_dir, progress=False)
    msgs = [r.getMessage() for r in caplog.records]
    assert [m for m in msgs if "10002" in m and "temperature" in m] == [
        "basin 10002: no value of temperature anywhere in its data (absent from its file, or empty); masked "
        "as missing: the model runs without it, which can cost much accuracy"]  # one line
    summary = pd.read_csv(res["run_dir"] / "data_summary.csv", dtype={"basin": str}).set_index("basin")
    assert summary.loc["10002", "empty_inputs"] == "temperature"
    assert "ETA" in next(m for m in msgs if m.startswith("epoch   1/2"))
    assert sorted(res["prepared"].basins) == ["10002", "10003", "32006"]
    pred = predict(out, "10002", data_dir=mixed_dir)
    w = pred.weights["temperature"].to_numpy()
    assert len(w) > 300 and np.all(w == 0.0)  # masked: exactly zero attention, every day
    assert np.isfinite(pred.series["predicted"]).sum() > 300
    assert (pred.weights["precipitation"] > 0).any()
    ft = finetune(out, "10002", {"epochs": 1, "batch_size": 8, "min_records": 0}, data_dir=mixed_dir,
                  out_root=tmp_path / "ft", progress=False)
    assert ft["checkpoint"].is_file()
    assert predict(ft["checkpoint"], "10002", data_dir=mixed_dir).weights["temperature"].eq(0.0).all()


@pytest.mark.slow
def test_a_basin_without_training_discharge_is_left_out_and_the_rest_train(tiny_data_dir, tmp_path, caplog):
    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    f = reader.timeseries_file(d, "10003")
    df = pd.read_csv(f)
    in_train = (df["date"] >= "1971-01-01") & (df["date"] <= "1974-12-31")
    df.loc[in_train, ["discharge_vol", "discharge_spec"]] = np.nan
    df.to_csv(f, index=False)
    cfg = make_tiny_config(d)
    out = tmp_path / "m.pth"
    with caplog.at_level(logging.INFO, logger="sca2lstm"):
        res = pretrain(cfg, out, data_dir=d, progress=False)
    msgs = [r.getMessage() for r in caplog.records]
    left = [m for m in msgs if m.startswith("basin 10003 left out")]
    assert left == ["basin 10003 left out of the run: no observed discharge in the training period "
                    "1971-01-01..1974-12-31 (data.min_train_flows: 365)"]
    assert sorted(res["prepared"].basins) == ["10002", "32006"] and out.is_file()
    assert any(m.startswith("Basins: training 2 used, 1 left out; validation 2 used, 1 left out") for m in msgs)
    summary = pd.read_csv(res["run_dir"] / "data_summary.csv", dtype={"basin": str}).set_index("basin")
    assert not summary.loc["10003", "used_training"] and "no observed discharge" in summary.loc["10003", "reason"]
    assert summary.loc[["10002", "32006"], "used_training"].all()
    assert summary["empty_inputs"].isna().all()  # every used basin has every input
    assert np.isfinite(predict(out, "10002", data_dir=d).series["predicted"]).sum() > 300
    # A second file for one basin: that basin is left out with the message naming both, the rest prepare.
    f2 = reader.timeseries_file(d, "32006")
    shutil.copy(f2, f2.parent / "32006.csv")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sca2lstm"):
        prep = prepare_pretraining_data(cfg, d)
    assert prep.basins == ["10002"]
    dup = [r.getMessage() for r in caplog.records if r.getMessage().startswith("basin 32006 left out")]
    assert len(dup) == 1 and "32006.csv and CAMELS_GB_hydromet_timeseries_32006_" in dup[0]


def test_too_few_training_flows_validation_gaps_and_unusable_runs(tiny_data_dir, tmp_path, caplog):
    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    f = reader.timeseries_file(d, "32006")
    df = pd.read_csv(f)
    df.loc[(df["date"] >= "1975-01-01") & (df["date"] <= "1975-12-31"), ["discharge_vol", "discharge_spec"]] = np.nan
    df.to_csv(f, index=False)
    observed = {}
    for b in ("10002", "10003", "32006"):
        q = reader.read_timeseries(d, b).loc["1971-01-01":"1974-12-31", "discharge_vol"]
        observed[b] = int(q.notna().sum())
    assert observed["10003"] < 1000 <= min(observed["10002"], observed["32006"])  # the synthetic gaps
    cfg = make_tiny_config(d, data={"min_train_flows": 1000})
    with caplog.at_level(logging.WARNING, logger="sca2lstm"):
        prep = prepare_pretraining_data(cfg, d)
    assert prep.basins == ["10002", "32006"]
    i = prep.basins.index("32006")
    assert prep.val_periods[i][0] == prep.val_periods[i][1]  # out of validation, still in training
    assert prep.train_periods[i][1] > prep.train_periods[i][0]
    assert [(s["basin"], s["period"]) for s in prep.skipped] == [("10003", "the run"), ("32006", "validation")]
    assert f"only {observed['10003']} days of observed discharge" in prep.skipped[0]["reason"]
    assert sum("left out" in r.getMessage() for r in caplog.records) == 2
    with pytest.raises(DataError) as e:
        prepare_pretraining_data(make_tiny_config(d, data={"min_train_flows": 2000}), d)
    msg = str(e.value)
    assert "no basin is usable for pretraining (3 left out" in msg and "\n" not in msg
    assert f"10002: only {observed['10002']} days of observed discharge" in msg


def test_an_input_without_values_in_any_basin_is_named(mixed_dir):
    cfg = make_tiny_config(mixed_dir, data={"dynamic_inputs": ["precipitation", "humidity"]})
    p = reader.timeseries_file(mixed_dir, "10003")
    pd.read_csv(p).drop(columns=["humidity"]).to_csv(p, index=False)
    p = reader.timeseries_file(mixed_dir, "10002")
    _write_gz(p, pd.read_csv(p).drop(columns=["humidity"]))
    with pytest.raises(DataError, match=r"\['humidity'\] have no values in the training period .* any of the 3"):
        prepare_pretraining_data(cfg, mixed_dir)


# ------------------------------------------------------------------------------- windows per epoch
def _data(lengths):
    from sca2lstm.data.dataset import BasinRecord
    from sca2lstm.data.scaling import Scalers

    recs = [BasinRecord(f"b{i}", np.arange(n).astype("datetime64[D]"), np.zeros((n, 1), np.float32),
                        np.ones(n, np.float32)) for i, n in enumerate(lengths)]
    y = np.arange(10, dtype=np.float32)
    sc = Scalers(["p"], ["global"], [0.0], [1.0], [], [], [],
                 {r.basin: Scalers.fit_basin(r.basin, r.x[:10], y, ["global"]) for r in recs})
    return SequenceData(recs, np.zeros((len(recs), 0)), sc, pad=10)


def test_fixed_windows_are_fair_uniform_and_deterministic():
    lengths = [3000, 400, 800, 50]
    periods = [(100, 3000), (0, 400), (0, 0), (0, 50)]  # basin 2 has no training days
    data = _data(lengths)
    seq, spin = 60, 20
    b, s = data.training_windows(periods, seq, spin, 1.0, np.random.default_rng([42, 1]), n_windows=10)
    counts = np.bincount(b, minlength=4)
    assert counts.sum() == 10 and counts[2] == 0
    assert sorted(counts[[0, 1, 3]]) == [3, 3, 4]  # 10 over 3 basins: +-1
    for bi, st in zip(b, s):
        i0, i1 = periods[bi]
        end = st + seq - 1
        assert i0 <= end < i1  # the window ends (its last loss step) inside the training days
    b2, s2 = data.training_windows(periods, seq, spin, 1.0, np.random.default_rng([42, 1]), n_windows=10)
    np.testing.assert_array_equal(b, b2)
    np.testing.assert_array_equal(s, s2)
    b3, s3 = data.training_windows(periods, seq, spin, 1.0, np.random.default_rng([42, 2]), n_windows=10)
    assert not (np.array_equal(b, b3) and np.array_equal(s, s3))
    # Uniform placement: over many windows, the ends of basin 0 spread evenly over its days.
    b, s = data.training_windows(periods, seq, spin, 1.0, np.random.default_rng(0), n_windows=30000)
    ends = s[b == 0] + seq - 1
    hist = np.histogram(ends, bins=4, range=(100 + seq - spin - 1, 3000))[0]
    assert hist.min() > 0.9 * hist.mean()
    # Fewer windows than basins: each basin at most one.
    b, _ = data.training_windows(periods, seq, spin, 1.0, np.random.default_rng(0), n_windows=2)
    assert len(b) == 2 and np.bincount(b).max() == 1


def test_new_config_keys_are_validated():
    with pytest.raises(ConfigError, match="windows_per_epoch"):
        load_config(overrides={"training": {"windows_per_epoch": 0}})
    with pytest.raises(ConfigError, match="one of missing, always, never"):
        load_config(overrides={"data": {"pet_from_temperature": "sometimes"}})
    assert load_config(overrides={"training": {"windows_per_epoch": 5000}}).training.windows_per_epoch == 5000
    assert load_config().training.windows_per_epoch is None


@pytest.mark.slow
def test_fixed_windows_resume_repeats_the_uninterrupted_run(tiny_data_dir, tmp_path):
    """windows_per_epoch draws per (seed, epoch): 1 epoch + --resume to 2 equals 2 epochs at once."""
    import torch

    cfg = make_tiny_config(tiny_data_dir, training={"windows_per_epoch": 24, "epochs": 2})
    a = pretrain(cfg, tmp_path / "a" / "m.pth", data_dir=tiny_data_dir, progress=False)
    one = cfg.replace(training={"epochs": 1})
    pretrain(one, tmp_path / "b" / "m.pth", data_dir=tiny_data_dir, progress=False)
    b = pretrain(cfg, tmp_path / "b" / "m.pth", data_dir=tiny_data_dir, progress=False, resume=True)
    assert [r["train_loss"] for r in a["history"]][1:] == [r["train_loss"] for r in b["history"]][1:]
    sa = torch.load(tmp_path / "a" / "m.pth", weights_only=True)["model_state_dict"]
    sb = torch.load(tmp_path / "b" / "m.pth", weights_only=True)["model_state_dict"]
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0)
