"""A model runs on the data it was trained on: the folder recorded in its checkpoint, never silently
on the built-in synthetic basins."""

import json
import shutil

import pytest
import torch

from sca2lstm.errors import DataError
from sca2lstm.evaluation.predict import predict
from sca2lstm.training.finetune import finetune

FT = {"epochs": 0, "batch_size": 8, "min_records": 0, "epoch_coverage": 0.5}


def _recorded_copy(src, dst, **keys):
    """A copy of checkpoint ``src`` whose config names no data_dir: only the recorded keys say where."""
    ck = torch.load(src, weights_only=True)
    ck["config"]["data"]["data_dir"] = None
    ck.update(keys)
    torch.save(ck, dst)
    return dst


@pytest.mark.slow
def test_finetune_and_predict_default_to_the_recorded_folder(pretrained_ckpt, tiny_data_dir, tmp_path):
    ck = torch.load(pretrained_ckpt, weights_only=True)
    assert ck["data_dir"] == str(tiny_data_dir) and ck["builtin_data"] is False
    model = _recorded_copy(pretrained_ckpt, tmp_path / "m.pth")
    r = finetune(model, "32006", FT, data_dir=None, out_root=tmp_path / "ft", progress=False)
    rec = json.loads((r["run_dir"] / "config.json").read_text())
    assert rec["data_dir"] == str(tiny_data_dir)
    ft = torch.load(r["checkpoint"], weights_only=True)
    assert ft["data_dir"] == str(tiny_data_dir) and ft["builtin_data"] is False  # carried on
    p = predict(r["checkpoint"], "32006")
    ref = predict(pretrained_ckpt, "32006", data_dir=tiny_data_dir)
    assert p.series["observed"].equals(ref.series["observed"])


def test_real_data_model_on_builtin_basins_is_one_line_error(pretrained_ckpt, tiny_data_dir, tmp_path):
    model = _recorded_copy(pretrained_ckpt, tmp_path / "m.pth")
    with pytest.raises(DataError) as e:
        predict(model, "32006", data_dir="builtin")
    msg = str(e.value)
    assert str(tiny_data_dir) in msg and "built-in synthetic" in msg and "\n" not in msg


def test_builtin_model_on_real_folder_is_an_error(pretrained_ckpt, tiny_data_dir, tmp_path):
    model = _recorded_copy(pretrained_ckpt, tmp_path / "m.pth", data_dir=str(tmp_path / "cache_gone"),
                           builtin_data=True)
    with pytest.raises(DataError) as e:
        predict(model, "32006", data_dir=tiny_data_dir)
    assert str(tiny_data_dir) in str(e.value) and "built-in synthetic" in str(e.value)
    with pytest.raises(DataError, match="built-in synthetic"):
        finetune(model, "32006", FT, data_dir=tiny_data_dir, out_root=tmp_path / "ft", progress=False)
    assert not (tmp_path / "ft").exists() or not any((tmp_path / "ft").rglob("*.pth"))


def test_explicit_other_real_folder_is_allowed(pretrained_ckpt, tiny_data_dir, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(tiny_data_dir, moved)
    model = _recorded_copy(pretrained_ckpt, tmp_path / "m.pth")
    p = predict(model, "32006", data_dir=moved)
    assert p.metrics["n_days"] > 300


def test_recorded_folder_gone_falls_back_to_the_environment(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                            monkeypatch):
    model = _recorded_copy(pretrained_ckpt, tmp_path / "m.pth", data_dir=str(tmp_path / "gone"))
    with pytest.raises(DataError) as e:  # nothing else configured: the built-in basins would be wrong
        predict(model, "32006")
    assert str(tmp_path / "gone") in str(e.value) and "--data_dir" in str(e.value)
    monkeypatch.setenv("SCA2LSTM_DATA_DIR", str(tiny_data_dir))
    assert predict(model, "32006").metrics["n_days"] > 300


def test_resolution_order_and_kinds(tiny_cfg, tiny_data_dir, tmp_path, monkeypatch):
    """resolve_data_dir alone: the recorded folder first, a built-in folder named by path is built-in."""
    from sca2lstm.data.dataset import resolve_data_dir
    built = tmp_path / "cache" / "synthetic" / "gb_n3_seed7_v2"
    (built / "timeseries").mkdir(parents=True)
    cfg = tiny_cfg.replace(data={"data_dir": None})
    assert resolve_data_dir(None, cfg, recorded=(str(built), True)) == (built, True)
    assert resolve_data_dir(str(built), cfg, recorded=(str(tmp_path / "old"), True)) == (built, True)
    assert resolve_data_dir(None, cfg, recorded=(str(tiny_data_dir), False)) == (tiny_data_dir, False)
    monkeypatch.setenv("SCA2LSTM_DATA_DIR", str(built))
    assert resolve_data_dir(None, cfg, recorded=(str(tiny_data_dir), False)) == (tiny_data_dir, False)
    with pytest.raises(DataError, match="built-in synthetic"):  # the environment names a built-in folder
        resolve_data_dir(None, cfg, recorded=(str(tmp_path / "gone"), False))
    assert resolve_data_dir(None, cfg) == (built, True)  # no model: as before, now with its kind right


@pytest.mark.slow
def test_builtin_model_gets_its_basins_regenerated(tiny_cfg, tmp_path):
    from sca2lstm.data.dataset import resolve_data_dir
    cfg = tiny_cfg.replace(data={"data_dir": None, "cache_dir": str(tmp_path / "cache"), "synthetic_basins": 1})
    # the cache folder of another machine or cache root: the same basins are made again here
    gone = tmp_path / "old_cache" / "synthetic" / "gb_n1_seed42_v2"
    path, builtin = resolve_data_dir(None, cfg, recorded=(str(gone), True))
    assert builtin and path == tmp_path / "cache" / "synthetic" / "gb_n1_seed42_v2"
    assert any((path / "timeseries").iterdir())


def test_relative_data_folder_is_recorded_absolute(pretrained_ckpt, tmp_path, monkeypatch):
    """A model trained with --data_dir my_stations still finds its folder from anywhere else."""
    from sca2lstm.checkpoint import build_checkpoint, load_model

    model, cfg, scalers, _ = load_model(pretrained_ckpt)
    monkeypatch.chdir(tmp_path)
    ck = build_checkpoint(model, cfg, scalers, [], 0, data_dir="my_stations", builtin_data=False)
    assert ck["data_dir"] == str(tmp_path / "my_stations")


def test_builtin_model_says_it_ignores_the_environment(tiny_cfg, tmp_path, monkeypatch, caplog):
    """$SCA2LSTM_DATA_DIR set to real data does not move a model trained on the built-in basins, and the
    log says so instead of scoring the synthetic basins without a word."""
    import logging

    from sca2lstm.data.dataset import resolve_data_dir
    built = tmp_path / "cache" / "synthetic" / "gb_n3_seed7_v2"
    (built / "timeseries").mkdir(parents=True)
    monkeypatch.setenv("SCA2LSTM_DATA_DIR", str(tmp_path / "camels_gb"))
    with caplog.at_level(logging.INFO):
        assert resolve_data_dir(None, tiny_cfg.replace(data={"data_dir": None}), recorded=(str(built), True)) \
            == (built, True)
    assert "not on $SCA2LSTM_DATA_DIR=" in caplog.text and "built-in synthetic basins" in caplog.text


def test_predict_names_the_models_synthetic_folder_once_for_several_basins(pretrained_ckpt, tiny_data_dir,
                                                                           tmp_path, monkeypatch, capsys):
    """The line saying a model runs on its built-in synthetic basins (and not on $SCA2LSTM_DATA_DIR) comes
    once per command; predict.py wrote both lines again for each basin."""
    from sca2lstm.cli import predict as predict_cli
    from sca2lstm.data.dataset import SYNTHETIC_MARKER

    synth = tmp_path / "synth"
    shutil.copytree(tiny_data_dir, synth)
    (synth / SYNTHETIC_MARKER).write_text("sca2lstm data synth\n")
    model = _recorded_copy(pretrained_ckpt, tmp_path / "m.pth", data_dir=str(synth), builtin_data=True)
    monkeypatch.setenv("SCA2LSTM_DATA_DIR", str(tiny_data_dir))
    assert predict_cli.main(["--model", str(model), "--basin", "32006", "10002", "--output_dir",
                             str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("data: the built-in synthetic basins the model was trained on") for line in out) == 1
    assert sum("not on $SCA2LSTM_DATA_DIR=" in line for line in out) == 1
    assert all((tmp_path / "out" / f"basin_{b}" / "series.csv").is_file() for b in ("32006", "10002"))


def test_forecast_names_the_models_synthetic_folder_once(pretrained_ckpt, tiny_data_dir, tmp_path, monkeypatch,
                                                          capsys):
    """`sca2lstm forecast` says once that a model runs on its built-in synthetic basins (and not on
    $SCA2LSTM_DATA_DIR); it resolved the folder, then again to read the basin, and wrote both lines twice."""
    from sca2lstm.cli import forecast as forecast_cli
    from sca2lstm.data.dataset import SYNTHETIC_MARKER

    synth = tmp_path / "synth"
    shutil.copytree(tiny_data_dir, synth)
    (synth / SYNTHETIC_MARKER).write_text("sca2lstm data synth\n")
    model = _recorded_copy(pretrained_ckpt, tmp_path / "m.pth", data_dir=str(synth), builtin_data=True)
    monkeypatch.setenv("SCA2LSTM_DATA_DIR", str(tiny_data_dir))
    assert forecast_cli.main(["--model", str(model), "--basin", "32006", "--leads", "2", "--output_dir",
                              str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("data: the built-in synthetic basins the model was trained on") for line in out) == 1
    assert sum("not on $SCA2LSTM_DATA_DIR=" in line for line in out) == 1
    assert list((tmp_path / "out").glob("basin_32006_issued_*/forecast.csv"))


def test_a_model_pretrained_on_the_builtin_basins_refused_on_a_station_folder_says_to_pretrain_on_real_data(
        pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """The guide's first pretraining with no data folder set learns the built-in basins; fine-tuning it on one's
    own station folder is refused, and the one line said only to pass the synthetic folder, which is no way to
    that station: it names the pretraining on real data the station needs."""
    from sca2lstm.cli import finetune as finetune_cli

    model = _recorded_copy(pretrained_ckpt, tmp_path / "m.pth", data_dir=str(tmp_path / "cache_gone"),
                           builtin_data=True)
    rc = finetune_cli.main(["--pretrained_model", str(model), "--target_basin", "32006", "--data_dir",
                            str(tiny_data_dir), "--epochs", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1, err
    assert "built-in synthetic" in err[0] and "pretrain on real data first" in err[0], err[0]
    assert "python sca2lstm.py --data_dir" in err[0]
