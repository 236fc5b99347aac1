"""Hiding observed discharge in training (``training.discharge_dropout``): what is hidden, and where."""

import numpy as np
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
