"""Hiding observed discharge in training (``training.discharge_dropout``): what is hidden, and where."""

import shutil

import numpy as np
import pandas as pd
import pytest

from sca2lstm.training.augment import hide_discharge
from sca2lstm.training.pretrain import pretrain

from conftest import make_tiny_config

B, T, N, COL, LEAD = 16, 120, 5, 3, 1


def _batch(seed=0, lead=LEAD):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, T, N)).astype(np.float32)
    miss = np.zeros((B, T, N), dtype=bool)
    q = rng.normal(size=(B, T)).astype(np.float32)
    q[:, ::17] = np.nan  # real gaps
    x[:, lead:, COL] = np.nan_to_num(q[:, :-lead])  # the lagged-discharge column reads obs(t - lead)
    miss[:, lead:, COL] = np.isnan(q[:, :-lead])
    return x, miss, q


def test_hidden_days_vanish_from_both_inputs_and_nothing_else_changes():
    x, miss, q = _batch()
    x0, miss0, q0 = x.copy(), miss.copy(), q.copy()
    xh, missh, qh = hide_discharge(x, miss, q, 0.3, LEAD, COL, np.random.default_rng(1))
    assert np.array_equal(x, x0) and np.array_equal(miss, miss0) and np.array_equal(q, q0, equal_nan=True)
    hidden = np.isnan(qh) & ~np.isnan(q)
    assert 0.25 < hidden.sum() / np.isfinite(q).sum() < 0.35
    at_step = np.zeros_like(hidden)
    at_step[:, LEAD:] = hidden[:, :-LEAD]
    assert np.all(xh[:, :, COL][at_step] == 0) and np.all(missh[:, :, COL][at_step])
    keep = ~at_step
    assert np.array_equal(xh[:, :, COL][keep], x[:, :, COL][keep])
    assert np.array_equal(missh[:, :, COL][keep], miss[:, :, COL][keep])
    others = [c for c in range(N) if c != COL]
    assert np.array_equal(xh[:, :, others], x[:, :, others]) and np.array_equal(missh[:, :, others], miss[:, :, others])
    assert np.array_equal(qh[~hidden], q[~hidden], equal_nan=True)


def test_zero_probability_hides_nothing():
    x, miss, q = _batch()
    xh, missh, qh = hide_discharge(x, miss, q, 0.0, LEAD, COL, np.random.default_rng(1))
    assert np.array_equal(xh, x) and np.array_equal(missh, miss) and np.array_equal(qh, q, equal_nan=True)


@pytest.mark.parametrize("lead", [1, 3])
def test_lead_shifts_the_hidden_input_step(lead):
    x, miss, q = _batch(lead=lead)
    xh, missh, qh = hide_discharge(x, miss, q, 0.5, lead, COL, np.random.default_rng(2))
    hidden = np.isnan(qh) & ~np.isnan(q)
    newly_missing = missh[:, :, COL] & ~miss[:, :, COL]
    assert np.array_equal(newly_missing[:, lead:], hidden[:, :-lead] & ~miss[:, lead:, COL])
    assert not newly_missing[:, :lead].any()


@pytest.mark.slow
def test_the_trainer_applies_it(tiny_data_dir, tmp_path):
    """Same seed, with and without hiding: the training losses differ, and both runs stay finite."""
    runs = {}
    for p in (0.0, 0.5):
        cfg = make_tiny_config(tiny_data_dir, training={"discharge_dropout": p})
        runs[p] = [h["train_loss"] for h in pretrain(cfg, tmp_path / f"{p}.pth", data_dir=tiny_data_dir,
                                                     progress=False)["history"][1:]]
    assert np.all(np.isfinite(runs[0.0] + runs[0.5]))
    assert runs[0.0] != runs[0.5]


# ---------------------------------------------------------------- the SSI channel
S0, L, P, SEED = 400, 150, 0.15, 3


def _ssi_setup(tiny_data_dir):
    from sca2lstm.training.pretrain import prepare_pretraining_data
    cfg = make_tiny_config(tiny_data_dir)
    prep = prepare_pretraining_data(cfg, tiny_data_dir, ["32006"])
    return cfg, prep


def _hide(cfg, data, scalers):
    from sca2lstm.data.features import BASIN_Q, BASIN_SSI
    x, miss, y, _, _ = data.gather(np.array([0]), np.array([S0]), L)
    bs = scalers.basins["32006"]
    scales = np.array([[bs.q_mean, bs.q_std, bs.ssi_mean, bs.ssi_std]])
    kinds = list(scalers.kinds)
    xh, mh, qh = hide_discharge(x, miss, y, P, cfg.data.lead_days, kinds.index(BASIN_Q),
                                np.random.default_rng(SEED), ssi_column=kinds.index(BASIN_SSI),
                                ssi_window=cfg.data.ssi_window, scales=scales)
    return (x, miss, y), (xh, mh, qh)


def _with_flow(tiny_data_dir, dst, cfg, prep, days, value):
    """The basin's record with the discharge of ``days`` replaced by ``value`` (NaN: a real gap)."""
    from sca2lstm.data.dataset import SequenceData, load_basin, load_static
    shutil.copytree(tiny_data_dir, dst)
    f = next((dst / "timeseries").glob("*_32006_*.csv"))
    df = pd.read_csv(f)
    df.loc[df["date"].isin([str(d) for d in days]), "discharge_vol"] = value
    df.to_csv(f, index=False)
    rec = load_basin(dst, "32006", cfg, use_cache=False)
    return SequenceData([rec], load_static(dst, ["32006"], cfg), prep.scalers, pad=cfg.training.seq_len)


def test_a_hidden_days_flow_leaves_every_input_unchanged(tiny_data_dir, tmp_path):
    """Change the flow of the hidden days: every model input of the batch stays the same (the SSI too)."""
    cfg, prep = _ssi_setup(tiny_data_dir)
    (x, _, y), (xh, mh, qh) = _hide(cfg, prep.data, prep.scalers)
    hidden = np.isnan(qh[0]) & np.isfinite(y[0])
    W = cfg.data.ssi_window
    assert hidden[:W].any() and hidden[W + 2:].any()  # windows starting before the batch, and inside it
    dates = prep.data.records[0].dates[S0:S0 + L][hidden]
    changed = _with_flow(tiny_data_dir, tmp_path / "changed", cfg, prep, dates, 1234.5)
    (x2, _, _), (xh2, mh2, qh2) = _hide(cfg, changed, prep.scalers)
    assert not np.array_equal(x, x2)  # without hiding, the change shows in the inputs
    assert np.array_equal(xh, xh2) and np.array_equal(mh, mh2) and np.array_equal(qh, qh2, equal_nan=True)


def test_hiding_a_day_is_a_gap_in_the_record(tiny_data_dir, tmp_path):
    """Where the whole SSI window lies in the batch, the recomputed SSI is that of a record with the
    hidden days missing; earlier steps whose window holds a hidden day are masked."""
    from sca2lstm.data.features import BASIN_SSI
    cfg, prep = _ssi_setup(tiny_data_dir)
    (x, _, y), (xh, mh, qh) = _hide(cfg, prep.data, prep.scalers)
    hidden = np.isnan(qh[0]) & np.isfinite(y[0])
    dates = prep.data.records[0].dates[S0:S0 + L][hidden]
    gap = _with_flow(tiny_data_dir, tmp_path / "gap", cfg, prep, dates, np.nan)
    xg, mg, _, _, _ = gap.gather(np.array([0]), np.array([S0]), L)
    c, W, lead = list(prep.scalers.kinds).index(BASIN_SSI), cfg.data.ssi_window, cfg.data.lead_days
    full = slice(lead + W - 1, L)
    np.testing.assert_allclose(xh[0, full, c], xg[0, full, c], rtol=1e-4, atol=1e-4)
    assert np.array_equal(mh[0, full, c], mg[0, full, c])
    h_idx = np.flatnonzero(hidden)
    early = np.arange(lead + W - 1)
    touched = np.array([((h_idx >= t - lead - W + 1) & (h_idx <= t - lead)).any() for t in early])
    assert mh[0, early[touched], c].all() and np.all(xh[0, early[touched], c] == 0)
    assert np.array_equal(xh[0, early[~touched], c], x[0, early[~touched], c])
