"""Pretraining: checkpoint contents, artefacts, reproducibility, and the CLI on tiny data."""


import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from sca2lstm import SCA2LSTM
from sca2lstm.config import Config
from sca2lstm.training.pretrain import pretrain

from conftest import TINY_MODEL, TINY_PERIODS, TINY_TRAINING


def _plain(obj):
    """True if obj holds only tensors and plain Python types (what weights_only accepts by design)."""
    if isinstance(obj, dict):
        return all(isinstance(k, (str, int)) and _plain(v) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return all(_plain(v) for v in obj)
    return obj is None or isinstance(obj, (str, int, float, bool, torch.Tensor))


def test_checkpoint_contents(pretrained_ckpt):
    ck = torch.load(pretrained_ckpt, weights_only=True)
    for key in ("model_state_dict", "config", "scalers", "basins", "epoch", "optimizer_state_dict",
                "val_metrics", "model_args"):
        assert key in ck
    assert _plain(ck)
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in ck["model_state_dict"])
    assert all(v.device.type == "cpu" for v in ck["model_state_dict"].values())
    cfg = Config.from_dict(ck["config"])
    model = SCA2LSTM(cfg)
    model.load_state_dict(ck["model_state_dict"])
    assert set(ck["val_metrics"]) == {"32006", "10002", "10003"}


def test_the_pretraining_curve_names_the_model_and_its_basins(pretrained_ckpt):
    """Titled "Pretraining" alone, a curve mailed or kept beside another run's did not say whose it was."""
    from sca2lstm.evaluation.report import _png_title

    curve = pretrained_ckpt.with_name("sca2lstm_run") / "training_curve.png"
    assert _png_title(curve) == f"Pretraining {pretrained_ckpt.name} on 3 basins"


def test_run_artefacts(pretrained_ckpt):
    run = pretrained_ckpt.with_name("sca2lstm_run")
    for name in ("training_curve.png", "history.csv", "val_metrics.csv", "config.json", "report.html",
                 "last_state.pth", "data_summary.csv"):
        assert (run / name).is_file(), name
    hist = pd.read_csv(run / "history.csv")
    assert list(hist["epoch"]) == [0, 1, 2]
    assert {"train_loss", "val_loss", "val_nse_median", "lr", "seconds"} <= set(hist.columns)
    vm = pd.read_csv(run / "val_metrics.csv")
    assert {"nse", "kge", "persistence_nse", "n_days"} <= set(vm.columns)


@pytest.mark.slow
def test_same_seed_same_result(tiny_cfg, tiny_data_dir, tmp_path):
    a = pretrain(tiny_cfg, tmp_path / "a.pth", data_dir=tiny_data_dir, progress=False)
    b = pretrain(tiny_cfg, tmp_path / "b.pth", data_dir=tiny_data_dir, progress=False)
    assert [h["val_loss"] for h in a["history"]] == [h["val_loss"] for h in b["history"]]
    sa = torch.load(tmp_path / "a.pth", weights_only=True)["model_state_dict"]
    sb = torch.load(tmp_path / "b.pth", weights_only=True)["model_state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_cli_logs_one_line_per_epoch(tiny_data_dir, tmp_path, caplog, capsys):
    from sca2lstm.cli.train import main

    conf = tmp_path / "tiny.yaml"
    conf.write_text(yaml.safe_dump({"data": {"data_dir": str(tiny_data_dir), **TINY_PERIODS},
                                    "training": TINY_TRAINING, "model": TINY_MODEL}))
    out = tmp_path / "model_output" / "sca2lstm.pth"
    rc = main(["--config", str(conf), "--epochs", "2", "--output", str(out), "--quiet",
               "--basins", "32006", "10002"])
    assert rc == 0
    log = (out.with_name("sca2lstm_run") / "train.log").read_text()
    epoch_lines = [ln for ln in log.splitlines() if " epoch " in ln and "/2" in ln]
    assert len(epoch_lines) == 3  # epoch 0 (starting weights) + 2
    # the terse columns and the '*' are explained once, before the first epoch line
    key = next(i for i, ln in enumerate(log.splitlines()) if "epoch lines:" in ln)
    assert "'*': best so far" in log.splitlines()[key] and key < log.splitlines().index(epoch_lines[0])
    assert "val NSE median" in epoch_lines[-1]
    ck = torch.load(out, weights_only=True)
    assert ck["basins"] == ["32006", "10002"]
    # --quiet silences the progress, not the outcome: the console still says where the model went
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"saved {out}"]


@pytest.mark.slow
def test_trained_model_beats_persistence_on_synthetic(tiny_data_dir, tmp_path):
    """Sanity only: a few epochs on synthetic basins forecast better than persistence."""
    from conftest import make_tiny_config

    cfg = make_tiny_config(tiny_data_dir, training={"epochs": 8, "epoch_coverage": 2.0})
    res = pretrain(cfg, tmp_path / "m.pth", data_dir=tiny_data_dir, progress=False)
    ev = res["val"]
    assert ev.median("model", "nse") > ev.median("persistence", "nse")


@pytest.mark.slow
def test_trainer_trains_through_a_compiled_module(tiny_cfg, tiny_data_dir, tmp_path):
    """--compile hands the trainer a wrapper module: an epoch runs through it and trains the model's weights.

    The "eager" backend runs the real torch.compile graph capture without code generation (the C++
    toolchain would take minutes here)."""
    from sca2lstm.training.pretrain import prepare_pretraining_data, train_settings
    from sca2lstm.training.trainer import Trainer

    cfg = tiny_cfg.replace(training={"epochs": 1, "forecast_fraction": 0.0})
    prep = prepare_pretraining_data(cfg, tiny_data_dir)
    torch.manual_seed(0)
    model = SCA2LSTM(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    compiled = torch.compile(model, backend="eager", dynamic=False)
    calls = []
    compiled.register_forward_hook(lambda *_: calls.append(1))
    tr = Trainer(model, prep.data, prep.train_periods, prep.data, prep.val_periods, train_settings(cfg),
                 "cpu", tmp_path / "state.pth", {}, progress=False, ddp_model=compiled)
    hist = tr.fit()["history"]
    assert calls, "the training batches did not run through the compiled module"
    assert len(hist) == 2 and np.isfinite(hist[1]["train_loss"])
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert "lstm2.rec.weight" in changed


def test_checkpoint_reproduces_the_trained_models_validation_scores(pretrained_ckpt, tiny_cfg, tiny_data_dir):
    """The saved weights, config and scalers rebuild the model that was scored at the end of training."""
    from sca2lstm.checkpoint import load_model
    from sca2lstm.evaluation.evaluate import evaluate
    from sca2lstm.training.pretrain import prepare_pretraining_data

    ck = torch.load(pretrained_ckpt, weights_only=True)
    model, cfg, _, _ = load_model(pretrained_ckpt)
    prep = prepare_pretraining_data(cfg, tiny_data_dir)
    ev = evaluate(model, prep.data, prep.val_periods, cfg.training.seq_len, cfg.training.spinup, cfg.data.lead_days,
                  "cpu")
    assert set(ev.per_basin) == set(ck["val_metrics"]) == {"32006", "10002", "10003"}
    for b, m in ev.per_basin.items():
        assert m["model"]["nse"] == pytest.approx(ck["val_metrics"][b]["model"]["nse"], abs=1e-5), b


def test_history_logs_the_loss_parts_and_validates_the_training_mixture(pretrained_ckpt):
    """Early stopping follows the training objective on the validation days: MSE over hindcast and
    issue-time windows plus the quantile head's loss (pinball), each part logged per epoch."""
    ck = torch.load(pretrained_ckpt, weights_only=True)
    hist = ck["history"]
    assert Config.from_dict(ck["config"]).training.validation_loss == "training_mixture"
    for h in hist:
        assert h["val_loss"] == pytest.approx(h["val_mse"] + h["val_head"], rel=1e-9)
        assert h["val_head"] > 0 and np.isfinite(h["val_mse_issue"]) and np.isfinite(h["val_hindcast_mse"])
    for h in hist[1:]:
        assert h["train_loss"] == pytest.approx(h["train_mse"] + h["train_head"], rel=1e-9)
    best = min(hist, key=lambda h: h["val_loss"])["epoch"]
    assert ck["epoch"] == best


@pytest.mark.slow
def test_hindcast_validation_loss_follows_the_hindcast_mse(tiny_cfg, tiny_data_dir, tmp_path):
    cfg = tiny_cfg.replace(training={"epochs": 1, "validation_loss": "hindcast"})
    hist = pretrain(cfg, tmp_path / "m.pth", data_dir=tiny_data_dir, progress=False)["history"]
    assert [h["val_loss"] for h in hist] == [h["val_hindcast_mse"] for h in hist]


def test_run_config_json_is_strict_json_where_a_score_could_not_be_computed(tmp_path):
    """config.json of a run is strict JSON: a fine-tune's keep-or-discard score that could not be computed (NaN
    never wins) is null, as in val_metrics.json, and a path is its text."""
    import json
    from pathlib import Path

    from sca2lstm.training.outputs import write_training_artifacts

    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    config = {"source_checkpoint": Path("/models/sca2lstm.pth"),
              "kept": {"kept": "pretrained", "pretrained": float("nan"), "fine_tuned": np.float64(-np.inf)}}
    write_training_artifacts(tmp_path, [{"epoch": 1, "train_loss": 0.5, "val_loss": 0.4}], config,
                             pd.DataFrame({"basin": ["b"], "nse": [0.5]}), "val_metrics.csv", "Fine-tuning basin b")
    back = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"), parse_constant=refuse)
    assert back == {"source_checkpoint": "/models/sca2lstm.pth",
                    "kept": {"kept": "pretrained", "pretrained": None, "fine_tuned": None}}


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_new_model_that_fails_to_move_into_place_leaves_the_earlier_model_its_calibration(tmp_path, monkeypatch,
                                                                                           failure):
    """save_calibrated moves the new calibration, then the new model into place: where the model's move fails (or
    Ctrl-C comes between the two), the earlier model keeps its own calibration, byte for byte, not the new model's
    (which it would refuse as another checkpoint's, forecasting uncalibrated)."""
    import os

    from sca2lstm.evaluation.calibration import calibration_path, write_calibration
    from sca2lstm.training.outputs import save_calibrated

    out = tmp_path / "sca2lstm.pth"
    save_calibrated({"w": torch.zeros(3)}, out, lambda staged: write_calibration(staged, {"weather_blend": {"f": [1.0]}}))
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(before) == {out, calibration_path(out)}
    rename = os.replace

    def failing_model_move(src, dst):
        if os.fspath(dst) == os.fspath(out):
            raise failure
        rename(src, dst)

    monkeypatch.setattr(os, "replace", failing_model_move)
    with pytest.raises(type(failure)):
        save_calibrated({"w": torch.ones(3)}, out,
                        lambda staged: write_calibration(staged, {"weather_blend": {"f": [0.5]}}))
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before   # and nothing staged is left beside them


def test_two_runs_saving_the_same_model_at_once_each_stage_their_own_file(tmp_path):
    """Two runs writing the same output at once (the second saves while the first still calibrates): each stages
    its model under its own hidden name, so the second no longer overwrote the first's staged model, which then
    was gone when the first moved it in. Both finish; the model in place is the last one with its own
    calibration, and nothing staged is left."""
    import os

    from sca2lstm.evaluation.calibration import calibration_path, read_calibration, write_calibration
    from sca2lstm.training.outputs import save_calibrated

    out = tmp_path / "sca2lstm.pth"
    staged = []

    def calibrate(path, factor, then=None):
        staged.append(path)
        assert path.is_file() and path.parent == out.parent and path.name.startswith(".")
        assert f".{os.getpid()}." in path.name and path.suffix == ".pth"
        if then is not None:
            then()   # the other run saves now, while this one calibrates
        write_calibration(path, {"weather_blend": {"f": [factor]}})

    second = lambda: save_calibrated({"w": torch.ones(3)}, out, lambda p: calibrate(p, 0.5))  # noqa: E731
    assert save_calibrated({"w": torch.zeros(3)}, out, lambda p: calibrate(p, 1.0, then=second)) == out
    assert len(staged) == 2 and staged[0] != staged[1], staged
    assert torch.equal(torch.load(out, weights_only=True)["w"], torch.zeros(3))   # the first run moved in last
    assert read_calibration(out)["weather_blend"] == {"f": [1.0]}                 # with its own calibration
    assert sorted(tmp_path.iterdir()) == sorted([out, calibration_path(out)])     # nothing staged left
