"""Scale-out: torchrun DDP pretraining on CPU, and parallel multi-basin fine-tuning with a failure."""

import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO, TINY_MODEL, TINY_PERIODS, TINY_TRAINING


def _torchrun(tiny_data_dir, tmp_path, *flags):
    """``sca2lstm.py`` pretraining the tiny config under torchrun, 2 processes of 1 thread; (result, checkpoint)."""
    conf = tmp_path / "tiny.yaml"
    conf.write_text(yaml.safe_dump({"data": {"data_dir": str(tiny_data_dir), **TINY_PERIODS},
                                    "training": TINY_TRAINING, "model": TINY_MODEL}))
    out = tmp_path / "ddp" / "sca2lstm.pth"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "sca2lstm.py"), "--config", str(conf), "--output", str(out), *flags]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r, out


@pytest.mark.slow
def test_torchrun_two_processes(tiny_data_dir, tmp_path):
    _, out = _torchrun(tiny_data_dir, tmp_path, "--epochs", "2", "--quiet")
    ck = torch.load(out, weights_only=True)  # loads in a single process, same format as a 1-process run
    assert not any(k.startswith("module.") for k in ck["model_state_dict"])
    from sca2lstm import SCA2LSTM
    from sca2lstm.config import Config
    SCA2LSTM(Config.from_dict(ck["config"])).load_state_dict(ck["model_state_dict"])
    # Only rank 0 wrote: one checkpoint, its forecast calibration, one run folder, each epoch logged once.
    assert sorted(p.name for p in out.parent.iterdir()) == ["sca2lstm.forecast_calibration.json", "sca2lstm.pth",
                                                            "sca2lstm_run"]
    log = (out.parent / "sca2lstm_run" / "train.log").read_text()
    assert sum(" epoch   1/2" in ln for ln in log.splitlines()) == 1
    assert len(pd.read_csv(out.parent / "sca2lstm_run" / "history.csv")) == 3


@pytest.mark.slow
def test_torchrun_prints_the_run_once_not_once_per_rank(tiny_data_dir, tmp_path):
    """docs/reference.md: only rank 0 logs. Without --quiet, the progress and result lines reach the console
    once, not once from each of the two processes."""
    r, _ = _torchrun(tiny_data_dir, tmp_path, "--epochs", "1")
    lines = [ln for ln in r.stdout.splitlines() if "data_summary.csv" not in ln]  # rank 0's closing summary
    for start in ("Prepared ", "Basins: training", "Best epoch 1"):
        assert sum(ln.startswith(start) for ln in lines) == 1, (start, r.stdout[-3000:])


@pytest.mark.slow
def test_parallel_finetune_one_bad_basin_never_costs_the_others(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """A data error (10002's file) and an unexpected OS error (10003's output folder is a file) each fail
    only their basin: 32006 still gets its checkpoint, the summary names both, the exit code is 1."""
    from sca2lstm.cli.finetune import main

    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    broken = next((data / "timeseries").glob("*_10002_*.csv"))
    broken.write_text("date,precipitation\n1971-01-01,abc\n")  # broken on purpose
    ft = tmp_path / "ft"
    ft.mkdir()
    (ft / "basin_10003").write_text("not a folder")  # makes the run folder fail with an OSError
    rc = main(["--target_basin", "32006", "10002", "10003", "--pretrained_model", str(pretrained_ckpt),
               "--data_dir", str(data), "--epochs", "1", "--jobs", "2", "--output_dir", str(ft), "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 1
    rows = {ln.split()[0]: ln for ln in out.splitlines() if ln.strip() and ln.split()[0].isdigit()}
    assert " ok " in rows["32006"]
    assert "failed" in rows["10002"]
    assert "failed" in rows["10003"] and "Error" in rows["10003"]
    assert "2 of 3 basins failed: 10002, 10003" in err
    assert len(list(ft.glob("basin_32006/*/best_model_basin_32006.pth"))) == 1
    assert not list(ft.glob("basin_10002/*/*.pth"))


@pytest.mark.parametrize("local, gpus, rank, expected", [(2, 2, 1, "cuda:1"), (2, 2, 0, "cuda:0"), (1, 1, 0, "cuda:0"),
                                                       (2, 4, 1, "cuda:1")])
def test_each_torchrun_rank_takes_its_own_gpu(monkeypatch, local, gpus, rank, expected):
    from sca2lstm.distributed import rank_device

    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setenv("WORLD_SIZE", str(max(local, 2)))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(local))
    monkeypatch.setenv("LOCAL_RANK", str(rank))
    assert str(rank_device(torch.device("cuda"))) == expected
    assert rank_device(torch.device("cpu")) == torch.device("cpu")


def test_more_ranks_than_gpus_is_a_usage_error(monkeypatch):
    """The README's `torchrun --nproc_per_node 2` with --device cuda on a one-GPU machine: NCCL cannot put two
    ranks on one GPU, so it stops with one line instead of a rank asking for a GPU that does not exist."""
    from sca2lstm.distributed import rank_device
    from sca2lstm.errors import UsageError

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(UsageError, match=r"started 2 processes .* 1 GPU\(s\): use --nproc_per_node 1, or --device cpu"):
        rank_device(torch.device("cuda"))


def test_outside_torchrun_the_device_is_unchanged(monkeypatch):
    from sca2lstm.distributed import rank_device

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert rank_device(torch.device("cuda")) == torch.device("cuda")


def test_auto_is_the_cpu_even_with_a_gpu(monkeypatch):
    """A GPU is slower than the CPU's C++ recurrence for this model (docs/experiments.md), so it is used
    only when asked for."""
    from sca2lstm.training.runtime import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cpu") == resolve_device(None)
    assert resolve_device("cuda") == torch.device("cuda")
