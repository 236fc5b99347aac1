"""The CAMELS-GB reader and the basin loader on the real sample (../shared, read-only) and tiny copies.

Values are checked against the CSV read independently with the ``csv`` module, in both accepted
layouts; errors must be one-line DataErrors naming the problem; the feature cache must live under
$SCA2LSTM_CACHE_DIR and follow the file contents and the feature config.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import make_tiny_config
from sca2lstm.config import load_config
from sca2lstm.data import camels_gb
from sca2lstm.data import reader as reader_mod
from sca2lstm.data.dataset import (BasinRecord, cache_root, check_period_has_target, load_basin, load_static)
from sca2lstm.errors import DataError

REAL_IDS = ["10002", "10003", "22001", "32006", "39025", "42003", "51001", "75003", "79005"]
DATES = ["1970-10-01", "1995-06-15", "2015-09-30"]
COLUMNS = ["precipitation", "temperature", "discharge_vol"]
# Computed from observed discharge over 1970-2015: feeding them to the model leaks the test period.
DISCHARGE_DERIVED = {"q_mean", "runoff_ratio", "baseflow_index", "baseflow_index_ceh", "Q5", "Q95",
                     "high_q_freq", "high_q_dur", "low_q_freq", "low_q_dur", "zero_q_freq", "stream_elas",
                     "slope_fdc", "hfd_mean"}


# ------------------------------------------------------------------------------------------ helpers
def csv_rows(path: Path) -> dict:
    """{date string: {column: raw string}} read with the csv module, independent of the reader."""
    with open(path, newline="", encoding="utf-8") as f:
        return {row["date"]: row for row in csv.DictReader(f)}


def csv_float(s: str) -> float:
    return math.nan if s.strip() in ("", "NaN", "nan", "NA") else float(s)


def attribute_rows(path: Path) -> dict:
    with open(path, newline="", encoding="utf-8") as f:
        return {row["gauge_id"]: row for row in csv.DictReader(f)}


def official_layout(src: Path, dst: Path) -> Path:
    """The official EIDC layout: attribute CSVs at the top level beside (a link to) ``timeseries/``."""
    dst.mkdir(parents=True)
    (dst / "timeseries").symlink_to(src / "timeseries", target_is_directory=True)
    for f in sorted((src / "attributes").glob("CAMELS_GB_*_attributes.csv")):
        shutil.copy(f, dst / f.name)
    return dst


def copy_nh_layout(src: Path, dst: Path, basins=None) -> Path:
    """A writable NeuralHydrology-layout copy (all attributes, the timeseries of ``basins``)."""
    shutil.copytree(src / "attributes", dst / "attributes")
    (dst / "timeseries").mkdir(parents=True)
    for f in (src / "timeseries").glob("*.csv"):
        if basins is None or any(f"_{b}_" in f.name for b in basins):
            shutil.copy(f, dst / "timeseries" / f.name)
    return dst


def rewrite_csv(path: Path, edit) -> None:
    """Rewrite a CSV through the csv module; ``edit(header, rows)`` changes ``rows`` (lists) in place."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    out = edit(header, body)
    if out is not None:
        header, body = out
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(body)


@pytest.fixture()
def sca_log(caplog):
    """Capture the 'sca2lstm' logger even after a CLI run in this process set propagate=False."""
    logger = logging.getLogger("sca2lstm")
    old = logger.level, logger.propagate
    logger.addHandler(caplog.handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the handler is attached directly; avoid seeing each record twice
    caplog.clear()
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.setLevel(old[0])
    logger.propagate = old[1]


def warnings_of(caplog):
    # module loggers (getLogger(__name__)) are children of "sca2lstm"
    return [r for r in caplog.records
            if (r.name == "sca2lstm" or r.name.startswith("sca2lstm.")) and r.levelno == logging.WARNING]


# ------------------------------------------------------------------------------------------ layouts
@pytest.mark.parametrize("layout", ["neuralhydrology", "official"])
def test_timeseries_values_match_the_csv(shared_camels, tmp_path, layout):
    data_dir = shared_camels if layout == "neuralhydrology" else official_layout(shared_camels, tmp_path / "eidc")
    df = camels_gb.read_timeseries(data_dir, "32006")
    path = camels_gb.timeseries_file(shared_camels, "32006")
    rows = csv_rows(path)
    assert len(df) == len(rows) == 16436
    assert str(df.index[0].date()) == "1970-10-01" and str(df.index[-1].date()) == "2015-09-30"
    for day in DATES:
        for col in COLUMNS:
            want = csv_float(rows[day][col])
            got = df.loc[day, col]
            assert got == pytest.approx(want, abs=1e-9), (layout, day, col)
    # and the whole discharge column, not just three days
    want = np.array([csv_float(r["discharge_vol"]) for r in rows.values()])
    np.testing.assert_array_equal(df["discharge_vol"].to_numpy(), want)


def test_attributes_are_the_same_in_both_layouts(shared_camels, tmp_path):
    cfg = load_config()
    names = cfg.data.static_attributes + ["benchmark_catch", "gauge_lat", "q_mean"]
    nh = camels_gb.read_attributes(shared_camels, REAL_IDS, names)
    eidc = camels_gb.read_attributes(official_layout(shared_camels, tmp_path / "eidc"), REAL_IDS, names)
    assert list(nh.index) == REAL_IDS and list(nh.columns) == names
    assert nh.equals(eidc)
    # spot-check values against the CSV
    topo = attribute_rows(shared_camels / "attributes" / "CAMELS_GB_topographic_attributes.csv")
    clim = attribute_rows(shared_camels / "attributes" / "CAMELS_GB_climatic_attributes.csv")
    for b in ("32006", "10003"):
        assert nh.loc[b, "area"] == pytest.approx(float(topo[b]["area"]))
        assert nh.loc[b, "p_mean"] == pytest.approx(float(clim[b]["p_mean"]))
    assert all(dt == np.float64 for dt in nh.dtypes)


def test_benchmark_catch_y_n_becomes_1_0(shared_camels):
    hum = attribute_rows(shared_camels / "attributes" / "CAMELS_GB_humaninfluence_attributes.csv")
    got = camels_gb.read_attributes(shared_camels, REAL_IDS, ["benchmark_catch"])["benchmark_catch"]
    want = {b: {"Y": 1.0, "N": 0.0}[hum[b]["benchmark_catch"].strip()] for b in REAL_IDS}
    assert got.to_dict() == want
    assert set(want.values()) == {0.0, 1.0}  # the sample has both (22001 is Y, 32006 is N)


def test_missing_attribute_is_nan_and_flagged(shared_camels, tmp_path, sca_log):
    data_dir = copy_nh_layout(shared_camels, tmp_path / "camels", basins=["32006", "22001"])

    def blank(header, rows):
        j = header.index("p_mean")
        for r in rows:
            if r[0] == "32006":
                r[j] = ""
    rewrite_csv(data_dir / "attributes" / "CAMELS_GB_climatic_attributes.csv", blank)
    cfg = load_config()
    att = camels_gb.read_attributes(data_dir, ["32006", "22001"], cfg.data.static_attributes)
    assert np.isnan(att.loc["32006", "p_mean"])  # missing, not zero
    assert np.isfinite(att.loc["22001", "p_mean"])
    assert att.drop(columns="p_mean").notna().all().all()
    # a basin absent from the attribute files: all NaN, never zero
    att2 = camels_gb.read_attributes(data_dir, ["99999"], ["area", "benchmark_catch"])
    assert att2.isna().all().all()

    arr = load_static(data_dir, ["32006", "22001"], cfg)
    j = cfg.data.static_attributes.index("p_mean")
    assert np.isnan(arr[0, j]) and np.isfinite(arr).sum() == arr.size - 1
    (w,) = warnings_of(sca_log)
    assert "1 static attribute" in w.getMessage() and "32006" in w.getMessage() and "p_mean" in w.getMessage()


def test_list_basins_is_the_timeseries_present(shared_camels):
    assert camels_gb.list_basins(shared_camels) == REAL_IDS
    for group in camels_gb.ATTRIBUTE_GROUPS:
        rows = attribute_rows(camels_gb.attribute_file(shared_camels, group))
        assert len(rows) == 671, group
        assert set(REAL_IDS) <= set(rows)


def test_default_static_attributes_exclude_discharge_signatures(shared_camels):
    names = load_config().data.static_attributes
    assert names, "the default config should use static attributes"
    assert not DISCHARGE_DERIVED & set(names)
    headers = set()
    for group in camels_gb.ATTRIBUTE_GROUPS:
        with open(camels_gb.attribute_file(shared_camels, group), newline="", encoding="utf-8") as f:
            headers |= set(next(csv.reader(f)))
    assert DISCHARGE_DERIVED <= headers  # the exclusion list names real columns
    assert set(names) <= headers
    att = camels_gb.read_attributes(shared_camels, REAL_IDS, names)
    assert np.isfinite(att.to_numpy()).all()


# ------------------------------------------------------------------------------------------ quality control
def test_impossible_values_become_nan_with_one_counting_warning(tiny_data_dir, tmp_path, sca_log):
    data_dir = copy_nh_layout(tiny_data_dir, tmp_path / "camels", basins=["32006"])
    path = camels_gb.timeseries_file(data_dir, "32006")
    clean = camels_gb.read_timeseries(data_dir, "32006")
    assert not warnings_of(sca_log), "the clean synthetic file should pass quality control"
    bad = {"precipitation": ([10, 11], "-0.50"), "discharge_vol": ([20], "-1.00"),
           "temperature": ([30, 31, 32], "75.00")}

    def damage(header, rows):
        for col, (idx, val) in bad.items():
            for i in idx:
                rows[i][header.index(col)] = val
    rewrite_csv(path, damage)
    sca_log.clear()
    df = camels_gb.read_timeseries(data_dir, "32006")
    for col, (idx, _) in bad.items():
        newly = df[col].isna().to_numpy() & clean[col].notna().to_numpy()
        assert newly.nonzero()[0].tolist() == idx, col
    untouched = [c for c in df.columns if c not in bad]
    assert df[untouched].equals(clean[untouched])
    (w,) = warnings_of(sca_log)
    msg = w.getMessage()
    assert "32006" in msg and "6 physically impossible" in msg
    for part in ("precipitation: 2", "discharge_vol: 1", "temperature: 3"):
        assert part in msg


# ------------------------------------------------------------------------------------------ bad inputs
def assert_one_line(err: DataError, *parts: str) -> None:
    msg = str(err.value if hasattr(err, "value") else err)
    assert "\n" not in msg, msg
    for p in parts:
        assert p in msg, (p, msg)


def test_unknown_basin_lists_the_available_ids(shared_camels):
    cfg = load_config()
    with pytest.raises(DataError) as e:
        load_basin(shared_camels, "12345", cfg)
    assert_one_line(e, "12345", "available", "10002", "32006")


def test_missing_input_column_is_masked_with_one_line(tiny_data_dir, tmp_path, tiny_cfg, caplog):
    """A configured input the file lacks is all-missing (masked), said once; the target is still required."""
    data_dir = copy_nh_layout(tiny_data_dir, tmp_path / "camels", basins=["32006"])

    def drop(header, rows):
        j = header.index("temperature")
        return [h for i, h in enumerate(header) if i != j], [[v for i, v in enumerate(r) if i != j] for r in rows]
    rewrite_csv(camels_gb.timeseries_file(data_dir, "32006"), drop)
    with caplog.at_level(logging.WARNING, logger="sca2lstm"):
        rec = load_basin(data_dir, "32006", tiny_cfg, use_cache=False)
    lines = [r.getMessage() for r in caplog.records if "temperature" in r.getMessage()]
    assert lines == ["basin 32006: no value of temperature anywhere in its data (absent from its file, or "
                     "empty); masked as missing: the model runs without it, which can cost much accuracy"]
    j = tiny_cfg.data.dynamic_inputs.index("temperature")
    assert np.isnan(rec.x[:, j]).all()
    assert np.isfinite(rec.x[:, 0]).any() and np.isfinite(rec.y).any()

    def drop_q(header, rows):
        keep = [i for i, h in enumerate(header) if h not in ("discharge_vol", "discharge_spec")]
        return [header[i] for i in keep], [[r[i] for i in keep] for r in rows]
    rewrite_csv(camels_gb.timeseries_file(data_dir, "32006"), drop_q)
    with pytest.raises(DataError) as e:
        load_basin(data_dir, "32006", tiny_cfg, use_cache=False)
    assert_one_line(e, "basin 32006", "discharge_vol", "CAMELS_GB_hydromet_timeseries_32006")


def test_no_observed_discharge_in_the_training_period(shared_camels):
    # The real 10003 record starts on 1983-05-19: an earlier training period has no target.
    cfg = load_config()
    rec = load_basin(shared_camels, "10003", cfg)
    with pytest.raises(DataError) as e:
        check_period_has_target(rec, "1975-10-01", "1983-05-18", "training")
    assert_one_line(e, "10003", "no observed discharge", "training", "1975-10-01")
    assert check_period_has_target(rec, "1975-10-01", "1983-05-19", "training") == 1
    with pytest.raises(DataError) as e:  # a period outside the record
        check_period_has_target(rec, "2020-01-01", "2021-01-01", "training")
    assert_one_line(e, "10003", "outside")


def test_an_attribute_in_no_file_is_named_the_others_still_read(tiny_data_dir, tmp_path, tiny_cfg):
    """Without the soil file the soil attributes are in no file: an error naming them, not a guess."""
    data_dir = copy_nh_layout(tiny_data_dir, tmp_path / "camels")
    (data_dir / "attributes" / "CAMELS_GB_soil_attributes.csv").unlink()
    with pytest.raises(DataError) as e:
        load_static(data_dir, ["32006"], tiny_cfg)
    assert_one_line(e, "tawc", "not in any attribute file")
    got = camels_gb.read_attributes(data_dir, ["32006"], ["area", "dpsbar"])
    assert np.isfinite(got.to_numpy()).all()


def test_unknown_attribute_is_named(tiny_data_dir):
    with pytest.raises(DataError) as e:
        camels_gb.read_attributes(tiny_data_dir, ["32006"], ["area", "no_such_attr"])
    assert_one_line(e, "no_such_attr")


def test_missing_data_folder_and_timeseries_folder(tmp_path):
    with pytest.raises(DataError) as e:
        camels_gb.list_basins(tmp_path / "nope")
    assert_one_line(e, "does not exist")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as e:
        camels_gb.list_basins(tmp_path / "empty")
    assert_one_line(e, "timeseries")


# ------------------------------------------------------------------------------------------ cache
def _files(root: Path) -> set:
    return {p.relative_to(root) for p in root.rglob("*")}


def test_cache_serves_the_second_load_and_lives_in_the_cache_dir(tiny_data_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("SCA2LSTM_CACHE_DIR", str(cache))
    data_dir = copy_nh_layout(tiny_data_dir, tmp_path / "camels", basins=["32006"])
    cfg = make_tiny_config(data_dir)
    assert cfg.data.cache_dir is None and cache_root(cfg) == cache
    before = _files(data_dir)
    first = load_basin(data_dir, "32006", cfg)
    cached = list((cache / "features").glob("32006_*.npy"))
    assert len(cached) == 1
    assert _files(data_dir) == before  # nothing written beside the data

    def boom(*a, **k):
        raise AssertionError("read_timeseries called: the cache was not used")
    monkeypatch.setattr(reader_mod, "read_timeseries", boom)
    second = load_basin(data_dir, "32006", cfg)
    assert isinstance(second, BasinRecord)
    np.testing.assert_array_equal(first.dates, second.dates)
    np.testing.assert_array_equal(first.x, second.x)
    np.testing.assert_array_equal(first.y, second.y)
    assert second.x.dtype == np.float32 and second.dates.dtype == np.dtype("datetime64[D]")


class _CountingReader:
    def __init__(self):
        self.calls = 0
        self.real = reader_mod.read_timeseries

    def __call__(self, *a, **k):
        self.calls += 1
        return self.real(*a, **k)


def test_cache_follows_file_contents(tiny_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SCA2LSTM_CACHE_DIR", str(tmp_path / "cache"))
    data_dir = copy_nh_layout(tiny_data_dir, tmp_path / "camels", basins=["32006"])
    cfg = make_tiny_config(data_dir)
    reader = _CountingReader()
    monkeypatch.setattr(reader_mod, "read_timeseries", reader)
    a = load_basin(data_dir, "32006", cfg)
    path = camels_gb.timeseries_file(data_dir, "32006")
    os.utime(path)  # touched, same contents: still the same data, served from the cache
    load_basin(data_dir, "32006", cfg)
    assert reader.calls == 1
    st = path.stat()

    def change(header, rows):  # same length, one digit different, mtime restored: only contents differ
        j = header.index("discharge_vol")
        v = rows[100][j]
        rows[100][j] = v[:-1] + ("1" if v[-1] != "1" else "2")
    rewrite_csv(path, change)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size
    b = load_basin(data_dir, "32006", cfg)
    assert reader.calls == 2
    assert a.y[100] != b.y[100]
    np.testing.assert_array_equal(np.delete(a.y, 100), np.delete(b.y, 100))


def test_cache_follows_the_feature_config(tiny_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SCA2LSTM_CACHE_DIR", str(tmp_path / "cache"))
    cfg = make_tiny_config(tiny_data_dir)
    reader = _CountingReader()
    monkeypatch.setattr(reader_mod, "read_timeseries", reader)
    a = load_basin(tiny_data_dir, "10002", cfg)
    b = load_basin(tiny_data_dir, "10002", cfg.replace(data={"ssi_window": 10}))
    assert reader.calls == 2
    assert not np.array_equal(a.x[:, -1], b.x[:, -1], equal_nan=True)  # the SSI state changed
    c = load_basin(tiny_data_dir, "10002", cfg.replace(data={"lead_days": 2}))
    assert reader.calls == 3 and c.x.shape == a.x.shape
    load_basin(tiny_data_dir, "10002", cfg.replace(training={"epochs": 7}))  # not a feature key
    assert reader.calls == 3
    assert len(list((tmp_path / "cache" / "features").glob("10002_*.npy"))) == 3


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()],
                         ids=["disk-full", "ctrl-c"])
def test_a_failed_cache_write_leaves_no_staged_file(failure, tiny_data_dir, tmp_path, monkeypatch, sca_log):
    """The features are staged in a temp file, then renamed onto the cache file: a write that fails half-way (a
    full disk: the basin loads without the cache, with a warning; Ctrl-C: the interrupt goes on) removes its staged
    file, which was left in the cache folder for good."""
    from sca2lstm.data import dataset

    monkeypatch.setenv("SCA2LSTM_CACHE_DIR", str(tmp_path / "cache"))
    cfg = make_tiny_config(tiny_data_dir)
    real = np.save

    def half_written(file, arr, **k):  # part of the array reaches the disk, then the write fails
        Path(file).write_bytes(b"\x93NUMPY" + b"\0" * 64)
        raise failure

    monkeypatch.setattr(dataset.np, "save", half_written)
    if isinstance(failure, OSError):
        rec = load_basin(tiny_data_dir, "10002", cfg)
        assert len(rec.dates) and any("could not write feature cache" in w.getMessage() for w in warnings_of(sca_log))
    else:
        with pytest.raises(KeyboardInterrupt):
            load_basin(tiny_data_dir, "10002", cfg)
    assert _files(tmp_path / "cache" / "features") == set()
    monkeypatch.setattr(dataset.np, "save", real)
    load_basin(tiny_data_dir, "10002", cfg)  # the next load writes the cache whole, and only it
    assert [p.name.startswith("10002_") for p in (tmp_path / "cache" / "features").iterdir()] == [True]


def test_unreadable_cache_file_is_rebuilt(tiny_data_dir, tmp_path, monkeypatch, sca_log):
    monkeypatch.setenv("SCA2LSTM_CACHE_DIR", str(tmp_path / "cache"))
    cfg = make_tiny_config(tiny_data_dir)
    a = load_basin(tiny_data_dir, "10002", cfg)
    (cfile,) = (tmp_path / "cache" / "features").glob("10002_*.npy")
    cfile.write_bytes(b"not an npy file")
    b = load_basin(tiny_data_dir, "10002", cfg)
    np.testing.assert_array_equal(a.x, b.x)
    assert any("unreadable" in w.getMessage() for w in warnings_of(sca_log))
