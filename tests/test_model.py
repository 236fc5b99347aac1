"""SCA2LSTM model properties: shapes, masked attention, memory, causality, groups, overfitting."""

import re

import pytest
import torch

from sca2lstm import SCA2LSTM, load_config
from tolerance import sum_tol

SMALL = {"hidden_size": 12, "attention_hidden_size": 8, "embedding_size": 4, "dropout": 0.0}


def _model(seed=0, **model):
    torch.manual_seed(seed)
    cfg = load_config(overrides={"model": {**SMALL, **model}})
    return SCA2LSTM(cfg), cfg


def _inputs(m, B=3, T=20, seed=1, p_missing=0.2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, m.n_features, generator=g)
    miss = torch.rand(B, T, m.n_features, generator=g) < p_missing
    x = x.masked_fill(miss, 0.0)
    st = torch.randn(B, m.n_static, generator=g)
    stm = torch.zeros(B, m.n_static, dtype=torch.bool)
    q = torch.randn(B, T, generator=g)
    q[:, 5] = float("nan")  # an unobserved day
    return x, miss, st, stm, q


def test_shapes_and_weights_returned():
    m, _ = _model()
    x, miss, st, stm, q = _inputs(m)
    pred = m(x, miss, st, stm, q_obs=q)
    assert pred.shape == (3, 20)
    pred2, w = m(x, miss, st, stm, q_obs=q, return_weights=True)
    assert w.shape == (3, 20, m.n_features)
    assert torch.equal(pred, pred2)                 # the same loop, with and without weights
    assert torch.isfinite(pred).all()


def test_attention_sums_to_one_over_present_and_zero_on_masked():
    m, _ = _model()
    x, miss, st, stm, q = _inputs(m, p_missing=0.4)
    miss[0, 3, :] = True  # a step where every feature is missing: defined result, not 0/0
    x = x.masked_fill(miss, 0.0)
    pred, w = m(x, miss, st, stm, q_obs=q, return_weights=True)
    assert torch.isfinite(w).all() and torch.isfinite(pred).all()
    assert (w[miss] == 0).all()
    some = ~miss.all(-1)
    assert torch.allclose(w.sum(-1)[some], torch.ones(int(some.sum())), rtol=0, atol=sum_tol(w.dtype, w.shape[-1]))
    assert (w[0, 3] == 0).all()


def test_gradients_finite_with_all_missing_step():
    m, _ = _model()
    x, miss, st, stm, q = _inputs(m)
    miss[:, 2, :] = True
    x = x.masked_fill(miss, 0.0)
    m(x, miss, st, stm, q_obs=q).pow(2).mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)


def test_memory_perturbing_step_zero_changes_last_step():
    m, _ = _model()
    m.eval()
    x, miss, st, stm, q = _inputs(m, T=40, p_missing=0.0)
    base = m(x, miss, st, stm, q_obs=q)[:, -1]
    x2 = x.clone()
    x2[:, 0] += 3.0
    assert not torch.allclose(base, m(x2, miss, st, stm, q_obs=q)[:, -1])


@pytest.mark.parametrize("k", [0, 7, 15])
def test_residual_feedback_is_causal(k):
    """pred(t) may use obs only up to t - lead: changing obs(k) leaves pred(0..k+lead-1) unchanged."""
    m, cfg = _model()
    m.eval()
    lead = cfg.data.lead_days
    x, miss, st, stm, q = _inputs(m, p_missing=0.0)
    base = m(x, miss, st, stm, q_obs=q)
    q2 = q.clone()
    q2[:, k] += 5.0
    out = m(x, miss, st, stm, q_obs=q2)
    # bit-equal, not close: the same batch through the same code, and a row's steps before k + lead read the
    # same inputs (no later step and no other row enters their arithmetic)
    assert torch.equal(base[:, :k + lead], out[:, :k + lead])
    assert not torch.allclose(base[:, k + lead:], out[:, k + lead:])


def test_freezable_groups_partition_parameters():
    m, _ = _model()
    assert m.FREEZABLE_GROUPS == ("embedding", "lstm1", "weight_head", "lstm2", "predict_head")
    ids = [id(p) for g in m.FREEZABLE_GROUPS for p in m.group_parameters(g)]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in m.parameters()}
    with pytest.raises(ValueError, match="unknown group"):
        m.group_parameters("decoder")


def test_builds_from_config_alone_and_state_dict_fits_default():
    a = SCA2LSTM(load_config())
    b = SCA2LSTM(load_config())
    b.load_state_dict(a.state_dict())  # same shapes from the same config: no data dependence


def test_weights_of_a_model_with_another_config_are_refused_in_one_line_naming_load_model():
    # the guide's snippet (the default config) with weights of a model built with another config
    other, _ = _model(hidden_size=13)
    mine, _ = _model()
    with pytest.raises(RuntimeError) as e:
        mine.load_state_dict(other.state_dict())
    text = str(e.value)
    assert "\n" not in text and "another config" in text and "load_model(path)" in text
    # a named tensor's shape in the weights and in this model
    shapes = re.search(r"is (\[[\d, ]+\]) in them, (\[[\d, ]+\]) in this model", text)
    assert shapes and shapes.group(1) != shapes.group(2)
    mine.load_state_dict(_model(seed=1)[0].state_dict())  # same config: loads as before


def test_overfits_a_tiny_batch(tiny_cfg, tiny_data_dir):
    """On a few synthetic windows the training loss falls at least tenfold."""
    from sca2lstm.training.loss import masked_mse
    from sca2lstm.training.pretrain import prepare_pretraining_data
    import numpy as np

    prep = prepare_pretraining_data(tiny_cfg, tiny_data_dir)
    torch.manual_seed(0)
    cfg = tiny_cfg.replace(model={"dropout": 0.0})
    m = SCA2LSTM(cfg)
    b = np.array([0, 1, 2, 0])
    s = np.array([100, 200, 300, 400])
    L, spin = 40, 10
    x, miss, y, st, stm = (torch.from_numpy(a) for a in prep.data.gather(b, s, L))
    mask = torch.zeros(4, L, dtype=torch.bool)
    mask[:, spin:] = True
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(150):
        loss = masked_mse(m(x, miss, st, stm, q_obs=y), y, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] <= losses[0] / 10, (losses[0], losses[-1])
