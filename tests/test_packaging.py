"""The package and the user's-guide scripts as a user meets them, from the repository root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

GUIDE_FLAGS = {
    "sca2lstm.py": ["--epochs", "--parallel", "--data_dir", "--no_cuda"],
    "fine_train.py": ["--target_basin", "--pretrained_model", "--epochs", "--batch_size", "--learning_rate",
                      "--weight_decay", "--patience", "--fine_tune_ratio", "--unfreeze_embedding",
                      "--unfreeze_lstm1", "--unfreeze_weight_head", "--no_cuda", "--seed"],
    "predict.py": ["--model", "--basin", "--no_cuda"],
}


def run_py(*args, timeout=120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_import_from_the_repo_root_resolves_to_the_package():
    r = run_py("-c", "import sca2lstm, sys; print(sca2lstm.__file__)")
    assert r.returncode == 0, r.stderr
    got = Path(r.stdout.strip()).resolve()
    assert got == (REPO / "sca2lstm" / "__init__.py").resolve()
    assert got != (REPO / "sca2lstm.py").resolve()


@pytest.mark.parametrize("script", sorted(GUIDE_FLAGS))
def test_guide_scripts_help(script):
    r = run_py(script, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: {script} [-h]") and r.stderr == ""
    for flag in GUIDE_FLAGS[script]:
        assert flag in r.stdout, (script, flag)


@pytest.mark.parametrize("command, script", [("train", "sca2lstm.py"), ("finetune", "fine_train.py"),
                                             ("predict", "predict.py")])
def test_a_guide_command_called_through_sca2lstm_shows_that_call_in_its_usage_and_errors(command, script, capsys):
    # 'sca2lstm train --help' answered 'usage: sca2lstm.py ...', a command the user had not typed
    r = run_py("-m", "sca2lstm", command, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: sca2lstm {command} [-h]") and script not in r.stdout.split("\n\n")[0]
    from sca2lstm.cli import main as cli_main

    assert cli_main.main([command, "--no_such_flag"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sca2lstm {command}: error: ") and "--no_such_flag" in err, err


@pytest.mark.slow
def test_finetune_without_flags_trains_with_the_guides_defaults(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                monkeypatch):
    """The guide's line with only the required flags: at most 20 epochs, batches of 16, learning rate 1e-4,
    weight decay 1e-5, early stopping after 8 epochs without improvement, seed 42, LSTM1 frozen."""
    from sca2lstm.cli.finetune import main

    monkeypatch.chdir(tmp_path)  # no ./sca2lstm.yaml here
    assert main(["--target_basin", "32006", "--pretrained_model", str(pretrained_ckpt), "--data_dir",
                 str(tiny_data_dir), "--quiet"]) == 0
    (run,) = (tmp_path / "model_output" / "fine_tune" / "basin_32006").iterdir()
    st = torch.load(run / "last_state.pth", weights_only=True)
    hist = st["history"]
    assert 1 <= len(hist) - 1 <= 20
    if len(hist) - 1 < 20:  # stopped early: 8 epochs after the best one
        assert len(hist) - 1 - st["best_epoch"] == 8
    for h in hist[1:]:
        assert h["train_batches"] == -(-h["train_windows"] // 16)
    assert hist[1]["lr"] == pytest.approx(1e-4)
    assert st["optimizer_state_dict"]["param_groups"][0]["weight_decay"] == pytest.approx(1e-5)
    assert st["meta"]["config"]["training"]["seed"] == 42
    ck = torch.load(next(run.glob("best_model_basin_32006.pth")), weights_only=True)
    pre = torch.load(pretrained_ckpt, weights_only=True)
    assert torch.equal(ck["model_state_dict"]["lstm1.rec.weight"], pre["model_state_dict"]["lstm1.rec.weight"])


@pytest.mark.slow
def test_pretrain_without_output_writes_the_guides_checkpoint_path(tiny_data_dir, tmp_path, monkeypatch):
    from failure_helpers import tiny_yaml
    from sca2lstm.cli.train import main

    monkeypatch.chdir(tmp_path)
    assert main(["--config", str(tiny_yaml(tmp_path / "tiny.yaml")), "--data_dir", str(tiny_data_dir),
                 "--epochs", "1", "--quiet"]) == 0
    assert (tmp_path / "model_output" / "sca2lstm.pth").is_file()
    assert (tmp_path / "model_output" / "sca2lstm_run" / "report.html").is_file()


@pytest.mark.slow
def test_pretrain_with_the_basins_flag_repeated_reads_every_id_it_names(tiny_data_dir, tmp_path, monkeypatch, capsys):
    """--basins given twice: both ids count. The first is not in the data, so the run is refused naming it,
    where keeping only the last id would pretrain on 32006 alone and succeed."""
    from failure_helpers import tiny_yaml
    from sca2lstm.cli.train import main

    monkeypatch.chdir(tmp_path)
    rc = main(["--config", str(tiny_yaml(tmp_path / "tiny.yaml")), "--data_dir", str(tiny_data_dir),
               "--epochs", "1", "--basins", "99999", "--basins", "32006", "--quiet"])
    assert rc != 0 and "99999" in capsys.readouterr().err
    assert not (tmp_path / "model_output" / "sca2lstm.pth").exists()


def test_predict_parser_takes_the_guides_flags():
    from sca2lstm.cli.predict import build_parser

    a = build_parser().parse_args(["--model", "m.pth", "--basin", "32006"])
    assert a.basin == ["32006"]


def test_public_api_imports():
    import torch

    from sca2lstm import SCA2LSTM, load_config
    from sca2lstm.models.sca2lstm import SCA2LSTM as Direct

    assert SCA2LSTM is Direct and issubclass(SCA2LSTM, torch.nn.Module)
    assert callable(load_config)
