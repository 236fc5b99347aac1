"""Tests of the built-in synthetic dataset in CAMELS-GB layout (tiny: 3 basins x 3 years, fixed seeds)."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pandas as pd
import pytest

from sca2lstm.data import synthetic
from sca2lstm.data.synthetic import builtin_dataset_dir, generate_synthetic, synthetic_gauge_ids
from sca2lstm.errors import DataError, UsageError

REAL = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "camels_gb"
REAL_IDS = ["32006", "10002", "10003", "22001", "39025", "42003", "51001", "75003", "79005"]
GROUPS = ("climatic", "humaninfluence", "hydrogeology", "hydrologic", "hydrometry", "landcover", "soil",
          "topographic")
START, END, STAMP = "2000-10-01", "2003-09-30", "20001001-20030930"
MET = ["precipitation", "pet", "temperature", "peti", "humidity", "shortwave_rad", "longwave_rad",
       "windspeed"]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic") / "data"
    ids = generate_synthetic(out, n_basins=3, seed=7, start=START, end=END)
    return out, ids


def _tree(root: pathlib.Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _series(root: pathlib.Path, gid: str) -> pd.DataFrame:
    return pd.read_csv(root / "timeseries" / f"CAMELS_GB_hydromet_timeseries_{gid}_{STAMP}.csv")


def _attributes(root: pathlib.Path, group: str) -> pd.DataFrame:
    return pd.read_csv(root / "attributes" / f"CAMELS_GB_{group}_attributes.csv", dtype={"gauge_id": str})


def test_gauge_ids_start_with_the_real_sample_and_stay_unique():
    assert synthetic_gauge_ids(12)[:9] == REAL_IDS
    assert synthetic_gauge_ids(3) == REAL_IDS[:3]
    ids = synthetic_gauge_ids(671)
    assert len(set(ids)) == 671 and all(re.fullmatch(r"\d{5}", i) for i in ids)
    assert ids[:100] == synthetic_gauge_ids(100)
    with pytest.raises(UsageError):
        synthetic_gauge_ids(0)
    with pytest.raises(UsageError):
        generate_synthetic("unused", n_basins=1, seed=-1)


def test_layout_matches_the_neuralhydrology_camels_gb_layout(small):
    root, ids = small
    assert ids == ["32006", "10002", "10003"]
    assert sorted(p.name for p in (root / "attributes").iterdir()) == sorted(
        f"CAMELS_GB_{g}_attributes.csv" for g in GROUPS)
    assert sorted(p.name for p in (root / "timeseries").iterdir()) == sorted(
        f"CAMELS_GB_hydromet_timeseries_{i}_{STAMP}.csv" for i in ids)
    assert [p.name for p in root.parent.iterdir()] == ["data"]  # no temporary folder left behind
    for group in GROUPS:
        assert _attributes(root, group)["gauge_id"].tolist() == ids


@pytest.mark.skipif(not REAL.is_dir(), reason="real CAMELS-GB sample not available")
def test_headers_match_the_real_files(small):
    root, ids = small
    for group in GROUPS:
        name = f"CAMELS_GB_{group}_attributes.csv"
        real = (REAL / "attributes" / name).read_text().splitlines()[0]
        assert (root / "attributes" / name).read_text().splitlines()[0] == real, group
    real = next((REAL / "timeseries").glob("*.csv")).read_text().splitlines()[0]
    ours = root / "timeseries" / f"CAMELS_GB_hydromet_timeseries_{ids[0]}_{STAMP}.csv"
    assert ours.read_text().splitlines()[0] == real


def test_series_are_daily_with_two_decimals(small):
    root, ids = small
    text = (root / "timeseries" / f"CAMELS_GB_hydromet_timeseries_{ids[2]}_{STAMP}.csv").read_text()
    lines = text.splitlines()[1:]
    assert [ln.split(",", 1)[0] for ln in lines] == list(pd.date_range(START, END).strftime("%Y-%m-%d"))
    fields = [f for ln in lines for f in ln.split(",")[1:]]
    assert all(re.fullmatch(r"-?\d+\.\d\d|NaN", f) for f in fields)
    assert "NaN" in fields and "-0.00" not in fields


def test_same_seed_gives_identical_bytes_and_other_seed_differs(small, tmp_path):
    root, ids = small
    generate_synthetic(tmp_path / "again", n_basins=3, seed=7, start=START, end=END)
    assert _tree(tmp_path / "again") == _tree(root)
    generate_synthetic(tmp_path / "other", n_basins=3, seed=8, start=START, end=END)
    other = _tree(tmp_path / "other")
    for key, data in _tree(root).items():
        if key.startswith("timeseries/"):
            assert other[key] != data, key


def test_a_basin_does_not_depend_on_how_many_are_generated(small, tmp_path):
    root, ids = small
    generate_synthetic(tmp_path / "one", n_basins=1, seed=7, start=START, end=END)
    name = f"timeseries/CAMELS_GB_hydromet_timeseries_32006_{STAMP}.csv"
    assert _tree(tmp_path / "one")[name] == _tree(root)[name]
    pd.testing.assert_frame_equal(_attributes(tmp_path / "one", "soil"), _attributes(root, "soil").iloc[:1])


def test_gaps_only_in_discharge_and_in_range(small):
    root, ids = small
    for gid in ids:
        df = _series(root, gid)
        assert not df[MET].isna().any().any(), gid
        assert (df["discharge_spec"].isna() == df["discharge_vol"].isna()).all()
        frac = df["discharge_spec"].isna().mean()
        low, high = (0.18, 0.35) if gid == "10003" else (0.005, 0.10)
        assert low <= frac <= high, (gid, frac)


def test_water_balance_and_attribute_consistency(small):
    root, ids = small
    topo = _attributes(root, "topographic").set_index("gauge_id")
    clim = _attributes(root, "climatic").set_index("gauge_id")
    hydro = _attributes(root, "hydrologic").set_index("gauge_id")
    for gid in ids:
        df = _series(root, gid)
        q, area = df["discharge_spec"], topo.loc[gid, "area"]
        assert (q.dropna() >= 0).all() and q.mean() < df["precipitation"].mean()
        assert (df["precipitation"] >= 0).all() and (df["peti"] >= df["pet"]).all()
        assert np.nanmax(np.abs(df["discharge_vol"] - q * area / 86.4)) <= 0.01 + 0.006 * area / 86.4
        assert clim.loc[gid, "p_mean"] == pytest.approx(df["precipitation"].mean(), abs=0.006)
        aridity = df["pet"].mean() / df["precipitation"].mean()
        assert clim.loc[gid, "aridity"] == pytest.approx(aridity, abs=0.01)
        assert hydro.loc[gid, "q_mean"] == pytest.approx(q.mean(), abs=0.006)
        assert hydro.loc[gid, "Q5"] <= hydro.loc[gid, "Q95"]
    for group, columns in (("landcover", slice(1, 9)), ("hydrogeology", slice(1, 10))):
        sums = _attributes(root, group).iloc[:, columns].sum(axis=1)
        assert np.allclose(sums, 100, atol=0.1), group
    soil = _attributes(root, "soil")
    assert np.allclose(soil[["sand_perc", "silt_perc", "clay_perc"]].sum(axis=1), 100, atol=0.05)
    assert set(_attributes(root, "humaninfluence")["benchmark_catch"]) <= {"Y", "N"}
    assert set(clim["high_prec_timing"].dropna()) <= {"djf", "mam", "jja", "son"}


def _gr4j_reference(p, e, x1, x2, x3, x4):
    """Plain one-basin GR4J (Perrin et al. 2003) with explicit unit-hydrograph state vectors."""
    def sh1(t):
        return 0.0 if t <= 0 else min(t / x4, 1.0) ** 2.5

    def sh2(t):
        if t <= 0:
            return 0.0
        if t < x4:
            return 0.5 * (t / x4) ** 2.5
        return 1.0 if t >= 2 * x4 else 1.0 - 0.5 * (2.0 - t / x4) ** 2.5

    nh = int(np.ceil(2 * x4)) + 1
    uh1 = [sh1(j) - sh1(j - 1) for j in range(1, nh + 1)]
    uh2 = [sh2(j) - sh2(j - 1) for j in range(1, nh + 1)]
    st1, st2, s, r, out = [0.0] * nh, [0.0] * nh, 0.3 * x1, 0.5 * x3, []
    for pt, et in zip(p, e):
        pn, en = (pt - et, 0.0) if pt >= et else (0.0, et - pt)
        ps = x1 * (1 - (s / x1) ** 2) * np.tanh(pn / x1) / (1 + s / x1 * np.tanh(pn / x1))
        es = s * (2 - s / x1) * np.tanh(en / x1) / (1 + (1 - s / x1) * np.tanh(en / x1))
        s += ps - es
        perc = s * (1 - (1 + (4 / 9 * s / x1) ** 4) ** -0.25)
        s -= perc
        pr = perc + pn - ps
        st1 = [a + u * 0.9 * pr for a, u in zip(st1, uh1)]
        st2 = [a + u * 0.1 * pr for a, u in zip(st2, uh2)]
        q9, q1, st1, st2 = st1[0], st2[0], st1[1:] + [0.0], st2[1:] + [0.0]
        f = x2 * (r / x3) ** 3.5
        r = max(0.0, r + q9 + f)
        qr = r * (1 - (1 + (r / x3) ** 4) ** -0.25)
        r -= qr
        out.append(qr + max(0.0, q1 + f))
    return np.array(out)


def test_vectorised_gr4j_matches_a_plain_one_basin_implementation():
    rng = np.random.default_rng(0)
    n = 500
    precip = (rng.random((n, 3)) < 0.5) * rng.gamma(0.7, 6.0, (n, 3))
    pet = np.tile(1.5 + np.sin(np.arange(n) / 58.0)[:, None], (1, 3))
    temp = np.full((n, 3), 10.0)  # no snow: the reference has no snow bucket
    b = dict(x1=np.array([150.0, 400.0, 900.0]), x2=np.array([-1.0, 0.0, 0.3]),
             x3=np.array([20.0, 80.0, 250.0]), x4=np.array([1.3, 2.7, 3.9]), ddf=np.full(3, 3.0))
    q = synthetic._gr4j(precip, pet, temp, b)
    warm = 365  # _gr4j runs the first year twice to spin up its stores
    for j in range(3):
        ref = _gr4j_reference(np.r_[precip[:warm, j], precip[:, j]], np.r_[pet[:warm, j], pet[:, j]],
                              *(b[k][j] for k in ("x1", "x2", "x3", "x4")))[warm:]
        np.testing.assert_allclose(q[:, j], ref, rtol=1e-9, atol=1e-12)


def test_refuses_to_overwrite_and_rejects_bad_periods(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match=re.escape(str(full))):
        generate_synthetic(full, n_basins=1, start=START, end="2000-12-31")
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert generate_synthetic(empty, n_basins=1, start=START, end="2000-12-31") == ["32006"]
    with pytest.raises(DataError):
        generate_synthetic(tmp_path / "x", n_basins=1, start="2001-01-01", end="2000-01-01")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "full"]


@pytest.mark.slow
def test_builtin_dataset_dir_generates_once(tmp_path):
    path = builtin_dataset_dir(tmp_path, n_basins=1, seed=3)
    assert path == tmp_path / "synthetic" / "gb_n1_seed3_v2"
    series = path / "timeseries" / "CAMELS_GB_hydromet_timeseries_32006_19701001-20150930.csv"
    stamp = series.stat().st_mtime_ns
    assert builtin_dataset_dir(tmp_path, n_basins=1, seed=3) == path
    assert series.stat().st_mtime_ns == stamp
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_builtin_dataset_dir_keeps_the_copy_of_a_process_that_won_the_race(tmp_path, monkeypatch):
    target = tmp_path / "synthetic" / "gb_n2_seed5_v2"
    real = synthetic.generate_synthetic

    def racing(out_dir, n_basins, seed):  # the other process finishes while we are generating
        ids = real(out_dir, n_basins, seed, start=START, end="2000-12-31")
        real(target, n_basins, seed, start=START, end="2000-12-31")
        (target / "winner").write_text("")
        return ids

    monkeypatch.setattr(synthetic, "generate_synthetic", racing)
    assert builtin_dataset_dir(tmp_path, n_basins=2, seed=5) == target
    assert (target / "winner").exists()
    assert [p.name for p in target.parent.iterdir()] == [target.name]
    (target / "attributes").rename(target / "moved")  # now a non-empty folder that is not a dataset
    (target / "timeseries").rename(target / "moved2")
    with pytest.raises(DataError, match="gb_n2_seed5_v2"):
        builtin_dataset_dir(tmp_path, n_basins=2, seed=5)
