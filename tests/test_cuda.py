"""The model on a GPU: the same numbers as on the CPU, and a checkpoint trained there runs on a laptop.

On the CPU the recurrence runs in C++ (:mod:`sca2lstm.models.native`); on CUDA it runs the Python loops
of :mod:`sca2lstm.models.recurrence` on the GPU, so the two paths share no code inside the loop. These
tests need a CUDA device and are skipped where there is none (CI has no GPU); run them on a GPU machine
with ``python -m pytest tests/test_cuda.py``.
"""

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from test_recurrence import _batch, _loss_and_grads, _small_model, _tol
from tolerance import assert_scaled_close, recurrence_tol

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture()
def _full_float32_matmul():
    """cuBLAS may round float32 products to TF32 (10-bit mantissa) when a program allows it; the bound of
    tests/tolerance.py is for float32 rounding, so TF32 is switched off here and restored after."""
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = old


@pytest.mark.parametrize("q_obs", [True, False])
def test_cuda_matches_cpu_forward_and_gradients(q_obs, _full_float32_matmul):
    model = _small_model()
    batch = _batch(model, B=4, T=40)
    p_cpu, w_cpu, g_cpu = _loss_and_grads(model, batch, fused=True, q_obs=q_obs)
    gpu = copy.deepcopy(model).to("cuda")
    p_gpu, w_gpu, g_gpu = _loss_and_grads(gpu, [t.to("cuda") for t in batch], fused=True, q_obs=q_obs)
    assert p_gpu.is_cuda
    tol = _tol(model, batch)
    assert_scaled_close(p_gpu.cpu(), p_cpu, tol, "pred")
    assert_scaled_close(w_gpu.cpu(), w_cpu, tol, "weights")
    for name, g in g_cpu.items():
        assert_scaled_close(g_gpu[name].cpu(), g, tol, name)


def test_pretrained_on_cuda_predicts_on_cpu(tiny_cfg, tiny_data_dir, tmp_path, capsys, _full_float32_matmul):
    """Train on the GPU, forecast on a CPU-only machine: the checkpoint holds no CUDA tensors that a
    laptop cannot load, and both devices issue the same hindcast."""
    from sca2lstm.checkpoint import load_model
    from sca2lstm.cli.predict import main
    from sca2lstm.training.pretrain import pretrain

    out = tmp_path / "gpu" / "sca2lstm.pth"
    pretrain(tiny_cfg.replace(training={"device": "cuda"}), out, data_dir=tiny_data_dir, progress=False)
    ckpt = torch.load(out, map_location="cpu", weights_only=True)
    assert ckpt["config"]["training"]["device"] == "cuda"
    model, *_ = load_model(out)
    assert all(not p.is_cuda for p in model.parameters())
    series = {}
    for device in ("cpu", "cuda"):
        folder = tmp_path / device
        rc = main(["--model", str(out), "--basin", "32006", "--data_dir", str(tiny_data_dir), "--device", device,
                   "--output_dir", str(folder), "--quiet"])
        assert rc == 0, capsys.readouterr().err
        series[device] = pd.read_csv(folder / "basin_32006" / "series.csv")["predicted"].to_numpy()
    # each day's forecast is a seq_len-step recurrence; 4 * hidden_size (64) terms are more than any dot product of
    # the tiny model's forward pass has (46 at most: tolerance.forecast_tol), so the bound is on the safe side
    tol = recurrence_tol(torch.float32, tiny_cfg.training.seq_len, 4 * tiny_cfg.model.hidden_size)
    # each CSV rounds to 4 decimals (5e-5 each): up to 1e-4 apart on top of the recurrence's rounding
    np.testing.assert_allclose(series["cuda"], series["cpu"], rtol=0, atol=tol * np.abs(series["cpu"]).max() + 1e-4)
