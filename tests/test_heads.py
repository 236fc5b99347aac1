"""The forecast-distribution heads (model.head): pinball quantiles on any grid and the CMAL mixture.

Checks that each head's quantiles are ordered, that the CMAL likelihood and quantiles agree with the
asymmetric Laplace distribution computed independently (by hand and with scipy.stats), that a model
trains with each head and that a checkpoint carries its head.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from sca2lstm.checkpoint import load_model
from sca2lstm.errors import ConfigError
from sca2lstm.models.cmal import CMALHead, mixture_cdf, mixture_quantiles
from sca2lstm.models.quantile import QuantileHead
from sca2lstm.training.loss import cmal_nll, masked_mse, pinball_loss
from sca2lstm.training.pretrain import pretrain

from conftest import make_tiny_config

DENSE = [0.02, 0.05, 0.1, 0.15, 0.25, 0.35, 0.5, 0.65, 0.75, 0.85, 0.9, 0.95, 0.98]


def _head_inputs(seed=0, shape=(4, 30), state=8):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, state, generator=g), 3 * torch.randn(*shape, generator=g),
            torch.rand(*shape, generator=g) * 10, torch.rand(*shape, generator=g))


@pytest.mark.parametrize("head", [QuantileHead(8, DENSE), CMALHead(8, DENSE, components=3)])
def test_quantiles_increase_along_the_levels(head):
    torch.manual_seed(1)
    for p in head.parameters():  # large random weights: spread-out, skewed outputs
        torch.nn.init.normal_(p, std=2.0)
    q = head.quantiles(head(*_head_inputs()))
    assert q.shape == (4, 30, len(DENSE))
    assert torch.isfinite(q).all()
    assert (q[..., 1:] >= q[..., :-1]).all()


def _one_component(mu, b, tau, dtype=torch.float64):
    """params [1, 4, 1] of a single asymmetric Laplace component."""
    return torch.tensor([[[mu], [b], [tau], [1.0]]], dtype=dtype)


def test_cmal_nll_of_one_component_equals_the_hand_computed_value():
    # mu 0.5, b 2, tau 0.25. log f(y) = log(tau (1 - tau) / b) - rho_tau((y - mu) / b):
    # y = 1.5: u = 0.5, rho = 0.5 x 0.25 = 0.125; y = -1.5: u = -1, rho = -1 x (0.25 - 1) = 0.75.
    params = _one_component(0.5, 2.0, 0.25).expand(3, 4, 1).unsqueeze(0)          # [1, 3, 4, 1]
    target = torch.tensor([[1.5, -1.5, 7.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, False]])                                       # the third is not scored
    log_c = math.log(0.25 * 0.75 / 2.0)
    expected = ((-log_c + 0.125) + (-log_c + 0.75)) / 2
    assert cmal_nll(params, target, mask).item() == pytest.approx(expected, rel=1e-12)
    # a NaN target is left out like a masked one
    target_nan = torch.tensor([[1.5, -1.5, float("nan")]], dtype=torch.float64)
    assert cmal_nll(params, target_nan, torch.ones(1, 3, dtype=torch.bool)).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("mu,b,tau", [(0.5, 2.0, 0.25), (-1.0, 0.3, 0.5), (3.0, 1.0, 0.9)])
def test_cmal_quantiles_of_one_component_equal_the_asymmetric_laplace_quantiles(mu, b, tau):
    # scipy's laplace_asymmetric(kappa, loc, scale) has decay rates kappa / scale above loc and
    # 1 / (kappa scale) below it; ours tau / b and (1 - tau) / b: kappa^2 = tau / (1 - tau), scale = kappa b / tau.
    kappa = math.sqrt(tau / (1 - tau))
    ref = stats.laplace_asymmetric(kappa, loc=mu, scale=kappa * b / tau)
    q = mixture_quantiles(_one_component(mu, b, tau), DENSE)[0].numpy()
    np.testing.assert_allclose(q, ref.ppf(DENSE), rtol=1e-9, atol=1e-9)
    assert ref.cdf(mu) == pytest.approx(tau)  # mu is the component's tau-quantile


def test_cmal_quantiles_of_a_mixture_invert_its_cdf():
    # Two well-separated components: the quantiles between them lie where the CDF is nearly flat.
    params = torch.tensor([[[-2.0, 4.0], [0.3, 1.5], [0.3, 0.6], [0.4, 0.6]]], dtype=torch.float64)
    q = mixture_quantiles(params, DENSE)
    np.testing.assert_allclose(mixture_cdf(q, params)[0].numpy(), DENSE, atol=1e-6)
    # and the mixture CDF agrees with scipy's components
    comps = [stats.laplace_asymmetric(math.sqrt(t / (1 - t)), loc=m, scale=math.sqrt(t / (1 - t)) * s / t)
             for m, s, t in ((-2.0, 0.3, 0.3), (4.0, 1.5, 0.6))]
    y = np.array([-3.0, -2.0, 0.0, 4.0, 9.0])
    ref = 0.4 * comps[0].cdf(y) + 0.6 * comps[1].cdf(y)
    np.testing.assert_allclose(mixture_cdf(torch.from_numpy(y[None]), params)[0].numpy(), ref, rtol=1e-12)


def test_peak_weight_weights_each_squared_error_by_the_flow():
    pred = torch.tensor([[0.0, 1.0, 0.0]])
    target = torch.tensor([[2.0, -1.0, float("nan")]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    # errors 2 and 2 over two valid days; weights 1 + 0.5 x max(y, 0) = 2 and 1
    assert masked_mse(pred, target, mask).item() == pytest.approx((4 + 4) / 2)
    assert masked_mse(pred, target, mask, peak_weight=0.5).item() == pytest.approx((2 * 4 + 1 * 4) / 2)


def test_an_unknown_head_is_refused_with_the_allowed_ones(tiny_data_dir):
    with pytest.raises(ConfigError, match=r"model.head='gmm'.*one of quantile, cmal"):
        make_tiny_config(tiny_data_dir, model={"head": "gmm"})


@pytest.mark.slow
@pytest.mark.parametrize("model", [{"quantiles": DENSE}, {"head": "cmal", "cmal_components": 2}],
                         ids=["dense-pinball", "cmal"])
def test_a_model_trains_one_epoch_with_each_head_and_its_checkpoint_keeps_it(tiny_data_dir, tmp_path, model):
    cfg = make_tiny_config(tiny_data_dir, model=model, training={"epochs": 1, "forecast_leads": 3})
    res = pretrain(cfg, tmp_path / "m.pth", data_dir=tiny_data_dir, progress=False)
    assert math.isfinite(res["history"][-1]["train_loss"])
    m, mcfg, _, _ = load_model(tmp_path / "m.pth")
    assert mcfg.model.head == cfg.model.head and mcfg.model.quantiles == cfg.model.quantiles
    assert isinstance(m.quantile_head, CMALHead if cfg.model.head == "cmal" else QuantileHead)
    x = torch.zeros(2, 40, m.n_features)
    out = m(x, torch.zeros_like(x, dtype=torch.bool), torch.zeros(2, m.n_static),
            torch.zeros(2, m.n_static, dtype=torch.bool), q_obs=torch.zeros(2, 40), return_quantiles=True,
            quantiles_from=30)[1]
    assert out.shape == (2, 40, len(cfg.model.quantiles))
    assert torch.isnan(out[:, :30]).all() and (out[:, 30:].diff(dim=-1) >= 0).all()


def test_a_checkpoint_from_before_the_choice_of_head_loads_with_the_pinball_head(pretrained_ckpt, tmp_path):
    ckpt = torch.load(pretrained_ckpt, weights_only=True)
    del ckpt["config"]["model"]["head"], ckpt["config"]["model"]["cmal_components"]
    del ckpt["config"]["training"]["peak_weight"]
    torch.save(ckpt, tmp_path / "old.pth")
    model, cfg, _, _ = load_model(tmp_path / "old.pth")
    assert cfg.model.head == "quantile" and cfg.training.peak_weight == 0.0
    assert isinstance(model.quantile_head, QuantileHead)


def _bench_heads():
    import importlib
    import sys

    from conftest import REPO

    if str(REPO / "bench") not in sys.path:
        sys.path.insert(0, str(REPO / "bench"))
    return importlib.import_module("heads")


def test_bench_crps_of_a_point_forecast_is_the_absolute_error():
    bench = _bench_heads()
    taus = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    q = np.full((2, 5), 3.0)
    np.testing.assert_allclose(bench.crps(np.array([5.0, 1.5]), q, taus), [2.0, 1.5], rtol=1e-12)


def test_bench_quantile_function_is_the_inverse_of_the_exceedance_probability():
    from sca2lstm.evaluation.exceedance import exceedance_probability

    bench = _bench_heads()
    taus = np.array(DENSE)
    q = np.array([[4.0, 4.5, 5.0, 5.4, 6.0, 6.5, 7.0, 8.0, 9.0, 11.0, 12.5, 15.0, 19.0]])
    qf = bench.quantile_function(q, taus)[0]                      # all above 0: nothing clipped
    p = exceedance_probability(np.repeat(q, len(qf), axis=0), taus, qf)
    np.testing.assert_allclose(p, 1 - bench.FINE, atol=1e-12)


def test_step_weights_scale_each_step_of_the_mse_and_the_pinball_loss():
    pred = torch.tensor([[0.0, 1.0, 0.0]])
    target = torch.tensor([[2.0, -1.0, float("nan")]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    w = torch.tensor([[3.0, 1.0, 7.0]])
    # squared errors 4 and 4 on two valid days, weights 3 and 1; the NaN day's weight does not count
    assert masked_mse(pred, target, mask, weight=w).item() == pytest.approx((3 * 4 + 4) / 2)
    q = torch.tensor([[[0.0], [0.0], [0.0]]])
    # tau 0.5: losses 0.5 x 2 = 1 and 0.5 x 1 = 0.5, weighted 3 and 1, over two valid days
    assert pinball_loss(q, target, mask, [0.5], weight=w).item() == pytest.approx((3 * 1 + 0.5) / 2)
    assert pinball_loss(q, target, mask, [0.5]).item() == pytest.approx((1 + 0.5) / 2)
