"""The package and the user's-guide scripts as a user meets them, from the repository root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert "usage:" in r.stdout and r.stderr == ""
    for flag in GUIDE_FLAGS[script]:
        assert flag in r.stdout, (script, flag)


def test_finetune_defaults_are_the_guides(tmp_path, monkeypatch):
    """Flags not given stay None; with no config file the effective settings are the guide's."""
    from sca2lstm.cli.finetune import build_parser, settings
    from sca2lstm.config import Config

    monkeypatch.chdir(tmp_path)  # no ./sca2lstm.yaml here
    a = build_parser().parse_args(["--target_basin", "32006", "--pretrained_model", "m.pth"])
    assert a.target_basin == ["32006"] and a.pretrained_model == "m.pth"
    assert settings(a) == ({}, 42)  # nothing overridden: the checkpoint's finetune section, seed 42
    f = Config.from_dict({}).finetune  # the built-in finetune section a default checkpoint stores
    assert (f.epochs, f.batch_size, f.learning_rate, f.weight_decay, f.patience, f.fine_tune_ratio) == \
        (20, 16, 1e-4, 1e-5, 8, 0.8)
    assert not (f.unfreeze_embedding or f.unfreeze_lstm1 or f.unfreeze_weight_head or a.no_cuda)


def test_pretrain_defaults_are_the_guides():
    from sca2lstm.cli.train import build_parser
    from sca2lstm.config import Config

    a = build_parser().parse_args([])
    assert a.epochs is None and a.output == "./model_output/sca2lstm.pth" and a.parallel is False
    assert Config.from_dict({}).training.epochs == 60  # what an epochs flag not given leaves
    assert build_parser().parse_args(["--epochs", "3", "--parallel"]).parallel is True


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
