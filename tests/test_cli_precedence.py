"""Flag > config file > built-in default, for pretraining and fine-tuning.

The command bodies are replaced by recorders: these tests check which settings reach the training
functions, not the training itself.
"""

import pytest

from sca2lstm.cli import finetune as ft_cli
from sca2lstm.cli import train as train_cli


@pytest.fixture()
def pretrain_calls(monkeypatch, tmp_path):
    import sca2lstm.training.pretrain as mod
    calls = []
    monkeypatch.setattr(mod, "pretrain", lambda cfg, output, **kw: calls.append(cfg))
    monkeypatch.chdir(tmp_path)
    return calls


@pytest.fixture()
def finetune_calls(monkeypatch, tmp_path):
    import sca2lstm.training.finetune as mod
    calls = []

    def record(model, basin, overrides=None, **kw):
        calls.append({"overrides": dict(overrides or {}), **kw})
        return {}
    monkeypatch.setattr(mod, "finetune", record)
    monkeypatch.chdir(tmp_path)
    return calls


def test_pretrain_config_file_beats_builtin_and_flag_beats_file(pretrain_calls, tmp_path):
    (tmp_path / "c.yaml").write_text("training:\n  epochs: 3\n  batch_size: 4\n")
    assert train_cli.main(["--config", "c.yaml", "--output", "m.pth"]) == 0
    assert (pretrain_calls[-1].training.epochs, pretrain_calls[-1].training.batch_size) == (3, 4)
    assert train_cli.main(["--config", "c.yaml", "--epochs", "5", "--output", "m.pth"]) == 0
    assert (pretrain_calls[-1].training.epochs, pretrain_calls[-1].training.batch_size) == (5, 4)
    (tmp_path / "sca2lstm.yaml").write_text("training:\n  epochs: 7\n")  # picked up when present
    assert train_cli.main(["--output", "m.pth"]) == 0
    assert pretrain_calls[-1].training.epochs == 7
    (tmp_path / "sca2lstm.yaml").unlink()
    assert train_cli.main(["--output", "m.pth"]) == 0
    assert pretrain_calls[-1].training.epochs == 60  # the guide's default


def test_finetune_flag_beats_file_which_beats_checkpoint(finetune_calls, tmp_path):
    (tmp_path / "c.yaml").write_text("finetune:\n  epochs: 3\n  learning_rate: 0.001\n"
                                     "training:\n  seed: 5\n")
    argv = ["--target_basin", "32006", "--pretrained_model", "x.pth"]
    assert ft_cli.main(argv + ["--config", "c.yaml", "--batch_size", "4", "--epochs", "9"]) == 0
    call = finetune_calls[-1]
    assert call["overrides"] == {"epochs": 9, "learning_rate": 0.001, "batch_size": 4}
    assert call["seed"] == 5
    # no flag, no file: nothing is overridden, so the checkpoint's stored finetune section applies
    assert ft_cli.main(argv) == 0
    assert finetune_calls[-1]["overrides"] == {} and finetune_calls[-1]["seed"] == 42
    assert ft_cli.main(argv + ["--unfreeze_lstm1", "--seed", "1"]) == 0
    assert finetune_calls[-1]["overrides"] == {"unfreeze_lstm1": True} and finetune_calls[-1]["seed"] == 1
    (tmp_path / "sca2lstm.yaml").write_text("finetune:\n  patience: 2\n")  # picked up when present
    assert ft_cli.main(argv) == 0
    assert finetune_calls[-1]["overrides"] == {"patience": 2}


def test_finetune_bad_config_file_is_one_line(finetune_calls, tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("finetune:\n  epochz: 3\n")
    rc = ft_cli.main(["--target_basin", "32006", "--pretrained_model", "x.pth", "--config", "c.yaml"])
    err = capsys.readouterr().err
    assert rc == 2 and "finetune.epochz" in err and len(err.strip().splitlines()) == 1
    assert not finetune_calls


def test_help_still_shows_the_guide_defaults(capsys):
    assert ft_cli.main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in ("default 20", "default 16", "default 1e-4", "default 1e-5", "default 8", "default 0.8",
                 "default 42"):
        assert text in out, text
    assert train_cli.main(["--help"]) == 0
    assert "default 60" in " ".join(capsys.readouterr().out.split())


@pytest.mark.slow
def test_stored_finetune_section_applies_without_flags(pretrained_ckpt, tiny_data_dir, tmp_path):
    """The checkpoint's finetune section sits under the config file and the flags."""
    import torch

    from sca2lstm.training.finetune import finetune
    ck = torch.load(pretrained_ckpt, weights_only=True)
    ck["config"]["finetune"].update({"epochs": 1, "batch_size": 8, "min_records": 0, "epoch_coverage": 0.5})
    torch.save(ck, tmp_path / "m.pth")
    r = finetune(tmp_path / "m.pth", "32006", {}, data_dir=tiny_data_dir, out_root=tmp_path, progress=False)
    assert r["config"].finetune.epochs == 1 and r["config"].finetune.batch_size == 8


@pytest.mark.parametrize("module, argv, dest, expected", [
    ("calibrate", ["--model", "m.pth", "--basins", "1", "2", "--basins", "3"], "basins", ["1", "2", "3"]),
    ("predict", ["--basin", "1", "--model", "a.pth", "--model", "b.pth"], "model", ["a.pth", "b.pth"]),
    ("forecast", ["--basin", "1", "--model", "a.pth", "--model", "b.pth"], "model", ["a.pth", "b.pth"]),
    ("weather", ["fetch", "--basin", "1", "--model", "a.pth", "--model", "b.pth", "--models", "x", "--models", "y"],
     "models", ["x", "y"]),
])
def test_a_repeated_list_flag_adds_its_values_rather_than_keeping_the_last(module, argv, dest, expected):
    import importlib

    args = importlib.import_module(f"sca2lstm.cli.{module}").build_parser().parse_args(argv)
    assert getattr(args, dest) == expected
    if module == "weather":
        assert args.model == ["a.pth", "b.pth"]


@pytest.mark.parametrize("module, from_config", [("train", True), ("tune", True), ("finetune", False),
                                                 ("predict", False), ("forecast", False)])
def test_the_device_help_names_the_default_each_command_uses(module, from_config):
    """pretraining and tuning take a --device left out from the config's training.device; the commands that run a
    trained model (and fine-tuning) use 'auto', the CPU: the help says which, not "the config's" for all."""
    import importlib

    parser = importlib.import_module(f"sca2lstm.cli.{module}").build_parser()
    text = next(a.help for a in parser._actions if a.dest == "device")
    assert ("the config's training.device" in text) is from_config and "'auto': the CPU" in text


def test_pretrainings_parallel_flag_given_to_fine_tuning_points_to_jobs(capsys):
    """The guide pretrains with --parallel; the same word on fine_train.py is answered with its own flag, --jobs."""
    assert ft_cli.main(["--target_basin", "32006", "--pretrained_model", "m.pth", "--parallel"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unrecognized arguments: --parallel" in err and "did you mean --jobs N" in err
