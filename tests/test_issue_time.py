"""Issue-time forecasting: the masking rule, the quantile head and a training step in forecast mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sca2lstm.config import load_config
from sca2lstm.data.features import feature_spec
from sca2lstm.data.issue_time import issue_time_columns, mask_issue_time
from sca2lstm.models.quantile import QuantileHead, days_since_observation
from sca2lstm.models.sca2lstm import SCA2LSTM
from sca2lstm.training.loss import masked_mse, pinball_loss

SMALL = {"hidden_size": 12, "attention_hidden_size": 6, "embedding_size": 4}


def _cols(cfg):
    spec = feature_spec(cfg)
    return [n for n, _ in spec], issue_time_columns([n for n, _ in spec], [k for _, k in spec])


def test_columns_come_from_the_feature_names():
    cfg = load_config()
    names, cols = _cols(cfg)
    assert [names[i] for i in cols.weather] == ["precipitation", "peti", "temperature", "precip_sum_7d",
                                                "precip_sum_30d", "high_precip_days", "low_precip_days"]
    assert [names[i] for i in cols.discharge] == ["discharge_lag1", "ssi"]
    with pytest.raises(ValueError, match="'snow_depth'"):
        issue_time_columns(names + ["snow_depth"], [k for _, k in feature_spec(cfg)] + ["global"])


@pytest.mark.parametrize("weather_known", [False, True])
def test_mask_hides_exactly_the_unknown(weather_known):
    cfg = load_config()
    names, cols = _cols(cfg)
    L, N, t0 = 20, len(names), 12
    rng = np.random.default_rng(0)
    x = rng.normal(size=(L, N)).astype(np.float32)
    miss = np.zeros((L, N), dtype=bool)
    q = rng.normal(size=L).astype(np.float32)
    x2, m2, q2 = mask_issue_time(x, miss, q, t0, cols, lead_days=1, weather_known=weather_known)
    assert not miss.any() and np.isfinite(q).all()                      # arguments untouched
    assert np.isfinite(q2[:t0 + 1]).all() and np.isnan(q2[t0 + 1:]).all()
    for j, n in enumerate(names):
        if n in ("discharge_lag1", "ssi"):        # Q(t0) feeds day t0 + 1: known; later days not
            hidden = np.arange(L) >= t0 + 2
        elif n in ("doy_sin", "doy_cos") or weather_known:
            hidden = np.zeros(L, dtype=bool)
        else:
            hidden = np.arange(L) > t0
        assert np.array_equal(m2[:, j], hidden), n
        assert np.all(x2[hidden, j] == 0) and np.array_equal(x2[~hidden, j], x[~hidden, j]), n


@pytest.mark.parametrize("weather_known,weather_forecast,flagged", [(False, False, False), (False, True, False),
                                                                    (True, False, False), (True, True, True)])
def test_forecast_flag_marks_only_lead_days_with_forecast_weather(weather_known, weather_forecast, flagged):
    cfg = load_config(overrides={"data": {"forecast_flag": True}})
    names, cols = _cols(cfg)
    assert names[cols.forecast_flag] == "weather_is_forecast"
    assert cols.forecast_flag not in cols.weather and cols.forecast_flag not in cols.discharge
    L, N, t0 = 20, len(names), 12
    x = np.zeros((L, N), dtype=np.float32)
    x2, m2, _ = mask_issue_time(x, np.zeros((L, N), dtype=bool), np.zeros(L, dtype=np.float32), t0, cols, 1,
                                weather_known=weather_known, weather_forecast=weather_forecast)
    f = x2[:, cols.forecast_flag]
    assert not m2[:, cols.forecast_flag].any()                       # never missing
    assert np.all(f[:t0 + 1] == 0)                                   # observed days: 0
    assert np.all(f[t0 + 1:] == (1.0 if flagged else 0.0))


def test_forecast_flag_per_window():
    cfg = load_config(overrides={"data": {"forecast_flag": True}})
    names, cols = _cols(cfg)
    B, L, N = 3, 10, len(names)
    x = np.zeros((B, L, N), dtype=np.float32)
    x2, _, _ = mask_issue_time(x, np.zeros_like(x, dtype=bool), np.zeros((B, L), dtype=np.float32),
                               np.array([4, 6, 9]), cols, 1, weather_known=True,
                               weather_forecast=np.array([True, False, True]))
    f = x2[:, :, cols.forecast_flag]
    assert f[0].tolist() == [0] * 5 + [1] * 5
    assert not f[1].any()
    assert not f[2].any()                                            # issued on the last day: no lead days


def test_mask_batched_per_window_issue_positions():
    cfg = load_config()
    names, cols = _cols(cfg)
    B, L, N = 3, 15, len(names)
    x = np.ones((B, L, N), np.float32)
    q = np.ones((B, L), np.float32)
    t0 = np.array([L - 1, 5, 9])
    _, m2, q2 = mask_issue_time(x, np.zeros_like(x, dtype=bool), q, t0, cols, 1, np.array([False, True, False]))
    assert not m2[0].any() and np.isfinite(q2[0]).all()                 # t0 = L - 1: a hindcast window
    p = names.index("precipitation")
    assert not m2[1, :, p].any() and m2[2, 10:, p].all() and not m2[2, :10, p].any()
    assert np.isnan(q2[1, 6:]).all() and np.isfinite(q2[1, :6]).all()


def test_days_since_observation():
    q = torch.tensor([[1.0, float("nan"), 2.0, float("nan"), float("nan"), float("nan")]])
    d = days_since_observation(q, 1, (1, 6))
    # step t reads obs up to t - 1: t=1 -> obs 0 (1 day), t=2 -> obs 0 (2), t=3 -> obs 2 (1), t=4 -> 2, t=5 -> 3
    assert d[0, 1:].tolist() == [1, 2, 1, 2, 3]
    assert d[0, 0] == 365                                                # nothing observed before step 0


def _model(seed=0, **model):
    torch.manual_seed(seed)
    cfg = load_config(overrides={"model": {**SMALL, **model}})
    return SCA2LSTM(cfg).double(), cfg


def _batch(m, B=3, T=24, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, m.n_features, generator=g, dtype=torch.float64)
    miss = torch.rand(B, T, m.n_features, generator=g) < 0.2
    x = x.masked_fill(miss, 0.0)
    st = torch.randn(B, m.n_static, generator=g, dtype=torch.float64)
    stm = torch.zeros(B, m.n_static, dtype=torch.bool)
    q = torch.randn(B, T, generator=g, dtype=torch.float64)
    q[torch.rand(B, T, generator=g) < 0.3] = float("nan")
    return x, miss, st, stm, q


def test_quantiles_ordered_and_same_on_fused_and_eager_paths():
    m, _ = _model()
    m.eval()  # no dropout: the two paths draw different masks
    with torch.no_grad():  # a head far from its start, so ordering is not an accident of the init
        for p in m.quantile_head.parameters():
            p.normal_(0.0, 2.0)
    x, miss, st, stm, q = _batch(m)
    outs = []
    for fused in (True, False):
        m.use_fused_recurrence = fused
        with torch.no_grad():
            outs.append(m(x, miss, st, stm, q_obs=q, return_quantiles=True))
    (_, q_f), (_, q_e) = outs
    assert q_f.shape == (3, 24, 5)
    # float64: the two loops sum in different orders, so equal to ~1e-12, far below any real effect
    torch.testing.assert_close(q_f, q_e, rtol=0, atol=1e-10)
    assert (torch.diff(q_f, dim=-1) > 0).all()


def test_quantile_head_leaves_point_gradients_unchanged():
    m, _ = _model(dropout=0.0)
    x, miss, st, stm, q = _batch(m)
    mask = torch.ones(q.shape, dtype=torch.bool)
    grads = []
    for with_head in (False, True):
        m.zero_grad(set_to_none=True)
        pred, qs = m(x, miss, st, stm, q_obs=q, return_quantiles=True)
        loss = masked_mse(pred, q, mask)
        if with_head:
            loss = loss + pinball_loss(qs, q, mask, m.quantiles)
        loss.backward()
        grads.append({n: p.grad for n, p in m.named_parameters() if not n.startswith("quantile_head.")})
        if with_head:
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.quantile_head.parameters())
    for n, g in grads[0].items():
        assert torch.equal(g, grads[1][n]), n


def test_model_without_quantiles():
    m, _ = _model(quantiles=[])
    x, miss, st, stm, q = _batch(m)
    assert m.quantile_head is None
    with pytest.raises(ValueError, match="no quantile head"):
        m(x, miss, st, stm, q_obs=q, return_quantiles=True)


def test_pinball_loss_value():
    qs = torch.tensor([[[0.0, 1.0]]])
    y = torch.tensor([[0.5]])
    # tau 0.1 at q=0: 0.1 * 0.5; tau 0.9 at q=1: (0.9 - 1) * (-0.5) = 0.05 -> mean 0.05
    assert pinball_loss(qs, y, torch.ones(1, 1, dtype=torch.bool), [0.1, 0.9]).item() == pytest.approx(0.05)


def test_coverage_on_synthetic_data_is_near_nominal():
    """y = sin(3 x) + N(0, sigma): given the true mean as the point forecast, the head fitted with the
    pinball loss must cover the new points at the nominal rates. Bound: 3 binomial standard errors
    sqrt(p (1 - p) / n) for n test points (the quantile estimates' own error from 4000 training
    points is ~0.003 per tail, small beside it)."""
    g = torch.Generator().manual_seed(0)
    levels = [0.05, 0.25, 0.5, 0.75, 0.95]
    sigma, n_train, n_test = 0.3, 4000, 2000
    torch.manual_seed(0)
    head = QuantileHead(1, levels, hidden=16)

    def sample(n):
        x = torch.rand(n, 1, generator=g) * 4 - 2
        mean = torch.sin(3 * x[:, 0])
        return x, mean, mean + sigma * torch.randn(n, generator=g)

    xs, mean, y = sample(n_train)
    gap = torch.ones(n_train)
    opt = torch.optim.Adam(head.parameters(), lr=0.04)
    ok = torch.ones(1, n_train, dtype=torch.bool)
    for _ in range(150):
        opt.zero_grad()
        loss = pinball_loss(head(xs, mean, gap, 0 * gap).unsqueeze(0), y.unsqueeze(0), ok, levels)
        loss.backward()
        opt.step()
    xt, mt, yt = sample(n_test)
    with torch.no_grad():
        qt = head(xt, mt, torch.ones(n_test), torch.zeros(n_test))
    for lo, hi, p in ((0, 4, 0.9), (1, 3, 0.5)):
        cover = ((yt >= qt[:, lo]) & (yt <= qt[:, hi])).double().mean().item()
        bound = 3 * (p * (1 - p) / n_test) ** 0.5
        assert abs(cover - p) <= bound, (p, cover, bound)


@pytest.mark.slow
def test_training_in_forecast_mode_masks_issue_windows(tiny_data_dir, tmp_path, monkeypatch):
    """Every window an issue-time forecast (fraction 1): the trainer masks each batch at t0 = L - 1 - leads
    and trains the quantile head; the run completes with a loadable checkpoint."""
    from conftest import make_tiny_config

    from sca2lstm.training import trainer as trainer_mod
    from sca2lstm.training.pretrain import pretrain
    from sca2lstm.checkpoint import load_model

    seen = []
    real = trainer_mod.mask_issue_time

    def spy(x, miss, q, t0, cols, lead, weather, forecast=False):
        seen.append((np.asarray(t0).copy(), np.asarray(weather).copy()))
        return real(x, miss, q, t0, cols, lead, weather, forecast)

    monkeypatch.setattr(trainer_mod, "mask_issue_time", spy)
    cfg = make_tiny_config(tiny_data_dir, training={"epochs": 1, "forecast_leads": 5, "forecast_fraction": 1.0,
                                                     "forecast_weather_known": 0.5})
    r = pretrain(cfg, tmp_path / "m.pth", data_dir=tiny_data_dir, progress=False)
    assert seen and all((t0 == cfg.training.seq_len - 1 - 5).all() for t0, _ in seen)
    weather = np.concatenate([w for _, w in seen])
    assert 0 < weather.mean() < 1                       # both settings drawn
    assert np.isfinite(r["history"][-1]["train_loss"])
    model, cfg2, _, _ = load_model(r["checkpoint"])
    assert cfg2.training.forecast_leads == 5 and model.quantile_head is not None


def test_training_flags_the_windows_that_see_an_emulated_forecast(tiny_data_dir, tmp_path, monkeypatch):
    """With data.forecast_flag, the windows given an emulated forecast (and only those) are masked as
    forecast weather; the flag is an input of the saved model."""
    from conftest import make_tiny_config

    from sca2lstm.checkpoint import load_model
    from sca2lstm.training import trainer as trainer_mod
    from sca2lstm.training.pretrain import pretrain

    seen = []
    real = trainer_mod.mask_issue_time

    def spy(x, miss, q, t0, cols, lead, weather, forecast=False):
        out = real(x, miss, q, t0, cols, lead, weather, forecast)
        seen.append((np.asarray(weather).copy(), np.asarray(forecast).copy(), out[0][:, :, cols.forecast_flag].copy(),
                     np.asarray(t0).copy()))
        return out

    monkeypatch.setattr(trainer_mod, "mask_issue_time", spy)
    cfg = make_tiny_config(tiny_data_dir, data={"forecast_flag": True},
                           training={"epochs": 1, "forecast_leads": 3, "forecast_fraction": 1.0,
                                     "forecast_weather_known": 1.0, "forecast_emulated": 0.5})
    r = pretrain(cfg, tmp_path / "m.pth", data_dir=tiny_data_dir, progress=False)
    forecast = np.concatenate([f for _, f, _, _ in seen])
    assert 0 < forecast.mean() < 1                                   # emulated and observed weather both drawn
    for _, f, flag, t0 in seen:
        lead_days = np.arange(flag.shape[1])[None, :] > t0[:, None]
        assert np.array_equal(flag > 0, lead_days & f[:, None])
    _, cfg2, scalers, _ = load_model(r["checkpoint"])
    assert cfg2.data.forecast_flag and scalers.feature_names[-3] == "weather_is_forecast"


def test_checkpoint_from_before_the_quantile_head_loads_as_hindcast_only(pretrained_ckpt, tmp_path):
    from sca2lstm.checkpoint import load_model

    ck = torch.load(pretrained_ckpt, weights_only=True)
    del ck["config"]["model"]["quantiles"], ck["config"]["training"]["forecast_leads"]
    ck["model_state_dict"] = {k: v for k, v in ck["model_state_dict"].items() if not k.startswith("quantile_head.")}
    torch.save(ck, tmp_path / "old.pth")
    model, cfg, _, _ = load_model(tmp_path / "old.pth")
    assert model.quantile_head is None and cfg.model.quantiles == [] and cfg.training.forecast_leads == 0


def test_training_draws_each_emulated_error_kind_listed(tiny_data_dir, tmp_path, monkeypatch):
    """``training.forecast_emulator: [swap, amount]``: emulated windows of both kinds are drawn; with one kind
    only that one; an unknown kind is refused at load, naming the allowed ones."""
    from conftest import make_tiny_config

    from sca2lstm.errors import ConfigError
    from sca2lstm.training import trainer as trainer_mod
    from sca2lstm.training.pretrain import pretrain

    kinds = []
    real = trainer_mod.emulate

    def spy(obs, pos, leads, rng, kind="swap", **kw):
        kinds.append(kind)
        return real(obs, pos, leads, rng, kind=kind, **kw)

    monkeypatch.setattr(trainer_mod, "emulate", spy)
    for listed in (["swap", "amount"], ["amount"]):
        kinds.clear()
        cfg = make_tiny_config(tiny_data_dir, data={"forecast_flag": True},
                               training={"epochs": 1, "forecast_leads": 3, "forecast_fraction": 1.0,
                                         "forecast_weather_known": 1.0, "forecast_emulated": 1.0,
                                         "forecast_emulator": listed})
        pretrain(cfg, tmp_path / f"{len(listed)}.pth", data_dir=tiny_data_dir, progress=False)
        assert set(kinds) == set(listed)
    with pytest.raises(ConfigError, match="swap"):
        load_config(overrides={"training": {"forecast_emulator": ["gauss"]}})


def test_lead_weight_weighs_the_lead_days_of_issue_time_windows_only(tiny_data_dir, tmp_path, monkeypatch):
    """``training.lead_weight``: in every training batch the MSE's step weights are ``lead_weight`` on the
    last ``forecast_leads`` steps of the windows masked at an issue date, 1 on every other step; the
    checkpoint keeps the key."""
    from conftest import make_tiny_config

    from sca2lstm.checkpoint import load_model
    from sca2lstm.training import trainer as trainer_mod
    from sca2lstm.training.pretrain import pretrain

    events = []
    real_mask, real_mse = trainer_mod.mask_issue_time, trainer_mod.masked_mse

    def spy_mask(x, miss, q, t0, cols, lead, weather, forecast=False):
        events.append(("mask", np.broadcast_to(np.asarray(t0), (len(x),)).copy(), x.shape[1]))
        return real_mask(x, miss, q, t0, cols, lead, weather, forecast)

    def spy_mse(pred, target, mask, peak_weight=0.0, weight=None):
        events.append(("mse", None if weight is None else weight.numpy().copy(), None))
        return real_mse(pred, target, mask, peak_weight, weight)

    monkeypatch.setattr(trainer_mod, "mask_issue_time", spy_mask)
    monkeypatch.setattr(trainer_mod, "masked_mse", spy_mse)
    cfg = make_tiny_config(tiny_data_dir, training={"epochs": 1, "forecast_leads": 3, "forecast_fraction": 0.5,
                                                     "lead_weight": 4.0})
    r = pretrain(cfg, tmp_path / "m.pth", data_dir=tiny_data_dir, progress=False)
    pairs = [(events[i - 1], e) for i, e in enumerate(events) if e[0] == "mse" and i and events[i - 1][0] == "mask"]
    assert pairs and len(pairs) == sum(e[0] == "mse" for e in events)
    for (_, t0, length), (_, w, _) in pairs:
        issue = t0 < length - 1
        expected = np.ones((len(t0), length), dtype=np.float32)
        expected[issue, -3:] = 4.0
        if issue.any():
            np.testing.assert_array_equal(w, expected)
        else:
            assert w is None
    _, cfg2, _, _ = load_model(r["checkpoint"])
    assert cfg2.training.lead_weight == 4.0


def test_lead_weight_one_leaves_the_loss_unweighted_and_a_non_positive_one_is_refused(tiny_data_dir):
    from conftest import make_tiny_config

    from sca2lstm.errors import ConfigError
    from sca2lstm.training.pretrain import train_settings
    from sca2lstm.training.trainer import Trainer

    cfg = make_tiny_config(tiny_data_dir, training={"forecast_leads": 3})
    assert cfg.training.lead_weight == 1.0
    holder = type("T", (), {"s": train_settings(cfg), "device": torch.device("cpu")})
    assert Trainer._step_weights(holder, np.array([True, False]), 10) is None
    with pytest.raises(ConfigError, match="lead_weight"):
        make_tiny_config(tiny_data_dir, training={"lead_weight": 0})
